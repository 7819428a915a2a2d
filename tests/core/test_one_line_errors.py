"""User-fixable failures end in one line naming the file or setting, not a traceback: malicious
YAML, a pickle-only model folder, a model needing remote code, a full disk, a server answering
non-JSON, a corrupt or 0-byte parquet file; and MM-Vet's judge score is a whole number word."""

from __future__ import annotations

import errno
import json

import httpx
import pytest

from zppo_core.config import ConfigError, load_config
from zppo_core.errors import UserError, format_error, is_expected


def test_malicious_yaml_is_refused_in_one_line(tmp_path):
    p = tmp_path / "evil.yaml"
    marker = tmp_path / "ran"
    p.write_text(f"optim:\n  lr: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value).startswith(f"{p}: not a plain YAML config (line 2): ")
    assert "\n" not in str(e.value) and not marker.exists()


def test_pickle_only_and_remote_code_model_folders(tmp_path):
    from transformers import AutoModelForCausalLM

    from zppo_core.engines.hf import from_pretrained_checked

    pk = tmp_path / "pickled"
    pk.mkdir()
    (pk / "config.json").write_text(json.dumps({"model_type": "qwen3"}))
    (pk / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(UserError, match=r"pickled: only pickled weights \(pytorch_model.bin\)"):
        from_pretrained_checked(AutoModelForCausalLM, str(pk))
    rc = tmp_path / "custom"
    rc.mkdir()
    (rc / "config.json").write_text(json.dumps({"model_type": "zppo-custom", "auto_map": {
        "AutoConfig": "c.C", "AutoModelForCausalLM": "m.M"}}))
    (rc / "model.safetensors").write_bytes(b"")
    with pytest.raises(UserError, match="custom: the model needs its own Python code to load; set "
                                        "model.trust_remote_code"):
        from_pretrained_checked(AutoModelForCausalLM, str(rc), trust_remote_code=False)


def test_disk_full_is_one_line():
    e = OSError(errno.ENOSPC, "No space left on device", "/runs/x/metrics.jsonl")
    assert is_expected(e)
    assert format_error("train", e) == ("zppo train: error: no space left on the device writing "
                                        "/runs/x/metrics.jsonl: free space or choose another output folder")
    assert not is_expected(OSError(errno.EIO, "I/O error"))


def test_a_server_answering_non_json_is_one_backend_error():
    from zppo_core.engines.base import BackendError
    from zppo_core.engines.openai_compat import OpenAIBackend

    html = httpx.MockTransport(lambda r: httpx.Response(200, text="<html>\n<body>proxy login</body></html>"))
    b = OpenAIBackend("http://127.0.0.1:1/v1", "m", transport=html)
    with pytest.raises(BackendError, match=r"/v1/models: HTTP 200 with a body that is not JSON: "
                                           r"'<html> <body>proxy login</body></html>'"):
        b._call("GET", "/models")


@pytest.mark.parametrize("content", [b"", b"PAR1 not really parquet"])
def test_corrupt_or_empty_parquet_names_the_file(tmp_path, content):
    from data_prep.schemas import SourceSchemaError
    from data_prep.sources import SourcePart
    from zppo_core.engines.base import BackendError
    from zppo_core.engines.recorded import RecordedBackend

    p = tmp_path / "part-0.parquet"
    p.write_bytes(content)
    with pytest.raises(SourceSchemaError, match=f"^{p}: not a readable parquet file"):
        SourcePart(source="vero", name=str(p), path=p).schema()
    with pytest.raises(BackendError, match=f"{p}: cannot read parquet"):
        RecordedBackend.from_file(p)


@pytest.mark.parametrize("text, score, malformed", [
    ("1e-9", 1e-9, False), ("1/2", 0.0, True), ("0.5x", 0.0, True), ("0.7.", 0.7, False),
    (".3 partly right", 0.3, False), ("1", 1.0, False), ("2", 0.0, True),
])
def test_mmvet_score_is_the_first_word_as_a_number(text, score, malformed):
    from eval.judges import parse_mmvet

    v = parse_mmvet(text)
    assert (v.score, v.malformed) == (score, malformed)
