"""Stored stage results are read back as plain JSON only, whatever serializer the file names."""

from __future__ import annotations

import json

import pytest
from prefect.results import ResultStore
from prefect.serializers import JSONSerializer, PickleSerializer

from prefect._internal.result_records import ResultRecord, ResultRecordMetadata
from tasks.results import JsonResultStorage, StoredResultRejected, json_only_record


class _Payload:
    """Unpickling it creates ``marker`` (what a tampered result file would run)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _record(obj, serializer) -> bytes:
    return ResultRecord(metadata=ResultRecordMetadata(serializer=serializer), result=obj).serialize()


def test_a_result_file_naming_pickle_is_refused_and_never_unpickled(tmp_path, caplog):
    marker = tmp_path / "ran"
    store_dir = tmp_path / "results"
    store_dir.mkdir()
    (store_dir / "key-evil").write_bytes(_record(_Payload(str(marker)), PickleSerializer()))
    (store_dir / "key-good").write_bytes(_record({"steps": 3, "final_model": "m"}, JSONSerializer()))
    store = ResultStore(result_storage=JsonResultStorage(basepath=str(store_dir)))

    assert store.exists("key-evil") is False  # a cache miss: the stage runs again
    assert not marker.exists()
    assert "key-evil: it names serializer 'pickle'" in caplog.text
    with pytest.raises(StoredResultRejected):
        store.read("key-evil")
    assert not marker.exists()

    assert store.exists("key-good") is True
    assert store.read("key-good").result == {"steps": 3, "final_model": "m"}


def test_a_json_record_with_its_own_object_decoder_is_read_without_it(tmp_path):
    rec = json.loads(_record({"__class__": "os.system", "data": "x"}, JSONSerializer()))
    rec["metadata"]["serializer"]["object_decoder"] = "builtins.exec"
    out = json.loads(json_only_record("f", json.dumps(rec).encode()))
    assert out["metadata"]["serializer"]["object_decoder"] is None
    assert out["metadata"]["serializer"]["type"] == "json"
    with pytest.raises(StoredResultRejected, match="f: not a JSON result record"):
        json_only_record("f", b"\x80\x04not json")


def test_every_stage_module_registers_the_storage_block_class():
    """A process-pool worker imports only the task's module: it must still find the block class
    by its slug (else every cached evaluation fails with UnknownBlockType)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for module in ("tasks.evaluate", "tasks.train", "tasks.curate", "tasks.report"):
        code = (f"import {module}; from prefect.blocks.core import Block; "
                "print(Block.get_block_class_from_key('zppo-json-result-storage').__name__)")
        out = subprocess.run([sys.executable, "-c", code], cwd=str(root), capture_output=True, text=True,
                             env={**__import__("os").environ, "PYTHONPATH": str(root)})
        assert out.stdout.strip() == "JsonResultStorage", (module, out.stderr[-2000:])
