"""Every credential form is masked where it is stored or printed: URL user-info (with or without
a password), credential query parameters, ``--set key=value`` words, log records, the folder lock,
and the parameters the pipeline hands to Prefect (stored in its database)."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from zppo_core import locks
from zppo_core.locks import LOCK_NAME, folder_lock
from zppo_core.redact import (SECRETS_ENV, install_log_redaction, mask_url_credentials, masked_values, redact,
                              redact_argv, unmask)


@pytest.mark.parametrize("raw, masked", [
    ("http://alice:s3cret@judge:8000/v1", "http://***@judge:8000/v1"),
    ("https://hf_TOKEN@host/x", "https://***@host/x"),
    ("https://host/v1?api_key=abc&n=2", "https://host/v1?api_key=***&n=2"),
    ("see https://h/p?x=1&access_token=t#frag", "see https://h/p?x=1&access_token=***#frag"),
    ("s3://b/k?X-Amz-Signature=ab", "s3://b/k?X-Amz-Signature=***"),
    ("http://127.0.0.1:5000/path?page=2", "http://127.0.0.1:5000/path?page=2"),
    ("https://h/a@b and git@github.com:o/r", "https://h/a@b and git@github.com:o/r"),
])
def test_url_credential_forms(raw, masked):
    assert mask_url_credentials(raw) == masked
    assert redact({"model": {"judge_url": raw}}) == {"model": {"judge_url": masked}}


def test_command_line_words_are_masked():
    argv = ["--set", "tracking.api_token=xyz", "--set", "model.judge_url=https://T@h", "--output", "D"]
    assert redact_argv(argv) == ["--set", "tracking.api_token=***", "--set", "model.judge_url=https://***@h",
                                 "--output", "D"]


def test_unmask_restores_only_masked_entries():
    real = {"model": {"judge_url": "http://u:p@h", "teacher_url": "http://h"}, "n": 1}
    secrets = masked_values({"model.judge_url": "http://u:p@h", "model.teacher_url": "http://h"})
    assert secrets == {"model.judge_url": "http://u:p@h"}
    assert unmask(redact(real), secrets) == real
    assert unmask({"model.judge_url": "http://***@h"}, secrets) == {"model.judge_url": "http://u:p@h"}
    assert unmask({"model": {"judge_url": "http://other"}}, secrets) == {"model": {"judge_url": "http://other"}}


def test_log_records_are_masked_for_every_handler(caplog):
    install_log_redaction()
    install_log_redaction()  # idempotent
    logging.getLogger("zppo.test").warning("judge at %s", "http://u:pw@h?token=t")
    assert caplog.records[-1].getMessage() == "judge at http://***@h?token=***"


def test_lock_file_and_busy_message_hold_no_credentials(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["zppo", "train", "--set", "model.judge_url=http://u:PW42@h", "--set",
                                      "tracking.api_token=TOK42"])
    with folder_lock(tmp_path, "zppo train") as path:
        text = path.read_text()
        assert "PW42" not in text and "TOK42" not in text and "http://***@h" in text
    (tmp_path / LOCK_NAME).write_text("123 (zppo train: zppo train --set x=https://TOKEN@h)\n")  # an older lock
    assert locks._holder(tmp_path / LOCK_NAME) == "123 (zppo train: zppo train --set x=https://***@h)"


def test_pipeline_hands_prefect_masked_overrides_and_the_real_values_by_environment(tmp_path, monkeypatch):
    import argparse

    import flows.cli as cli
    import flows.zppo_full as zf

    seen = {}

    def fake_flow(**kw):
        seen.update(kw["overrides"])
        seen["env"] = json.loads(__import__("os").environ[SECRETS_ENV])
        raise RuntimeError("stop")

    monkeypatch.setattr(zf, "zppo_full", fake_flow)
    monkeypatch.setattr(cli, "prepare_environment", lambda out: None)
    monkeypatch.setenv(SECRETS_ENV, "{}")  # restored afterwards
    args = argparse.Namespace(config=None, profile="tiny", students=None, teacher=None, methods=None,
                              benchmarks=None, seeds=None)
    rc = cli._run_locked(args, {"model.judge_url": "http://u:pw@h", "schedule.total_steps": 2}, tmp_path)
    assert rc == 1
    assert seen == {"model.judge_url": "http://***@h", "schedule.total_steps": 2,
                    "env": {"model.judge_url": "http://u:pw@h"}}
