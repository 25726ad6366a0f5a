"""Logs: one JSON line per event when asked, per-job files, secrets redacted."""

from __future__ import annotations

import json
import logging

from core.ops.logging import configure_logging


def test_json_lines_and_job_files_without_secrets(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("AILOG_LOG_FORMAT", "json")
    monkeypatch.setenv("AILOG_LOG_DIR", str(tmp_path))
    monkeypatch.setenv("DB_PASSWORD", "pw-Secret-999")
    configure_logging("regular")
    configure_logging("regular")  # idempotent
    logging.getLogger("ailog.flows").warning("cannot connect with pw-Secret-999\nsecond line")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["level"] == "warning" and entry["flow"] == "regular" and "pw-Secret-999" not in lines[0]
    text = (tmp_path / "regular.log").read_text()
    assert text.count("\n") == 1 and "**********" in text and "pw-Secret-999" not in text
    for name in ("ailog", "tasks", "flows"):
        for h in list(logging.getLogger(name).handlers):
            if getattr(h, "_ailog_tag", "").startswith("ailog-regular"):
                logging.getLogger(name).removeHandler(h)
