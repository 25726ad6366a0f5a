"""Logs for `kubectl logs` and per job: one line per event, secrets redacted.

`AILOG_LOG_FORMAT=json` writes our loggers (ailog, tasks, flows) as JSON lines to stdout (for log shippers);
`AILOG_LOG_DIR=/var/log/ailog` also appends them to `<dir>/<flow>.log` (the user's per-job log files).
Prefect's own run logs go to stdout and the UI as configured by PREFECT_LOGGING_* settings; every handler
(Prefect's API log handler included) gets the redacting filter, so a secret never reaches a log line.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from core.redact import RedactingFilter, install_redaction, redact

OUR_LOGGERS = ("ailog", "tasks", "flows")


class JsonFormatter(logging.Formatter):
    def __init__(self, flow: str) -> None:
        super().__init__()
        self.flow = flow

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
                 "level": record.levelname.lower(), "logger": record.name, "flow": self.flow,
                 "message": redact(record.getMessage())}
        if record.exc_info:
            entry["error"] = redact(self.formatException(record.exc_info)).splitlines()[-1]
        return json.dumps(entry, ensure_ascii=False)


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record)).replace("\n", " ⏎ ")


def configure_logging(flow: str) -> None:
    """Idempotent: handlers are added once per process and flow."""
    handlers: list[logging.Handler] = []
    if os.environ.get("AILOG_LOG_FORMAT", "").lower() == "json":
        h = logging.StreamHandler(sys.stdout)
        h.setFormatter(JsonFormatter(flow))
        handlers.append(h)
    log_dir = os.environ.get("AILOG_LOG_DIR")
    if log_dir:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        h = logging.FileHandler(Path(log_dir) / f"{flow}.log", encoding="utf-8")
        h.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        handlers.append(h)
    for name in OUR_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        for h in handlers:
            tag = f"ailog-{flow}-{type(h).__name__}"
            if not any(getattr(x, "_ailog_tag", None) == tag for x in logger.handlers):
                h._ailog_tag = tag
                h.addFilter(RedactingFilter())
                logger.addHandler(h)
    install_redaction()  # every other handler too: Prefect's console and API log handlers included
