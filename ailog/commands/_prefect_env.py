"""Prefect settings for runs started from the command line (set before prefect is imported).

Without PREFECT_API_URL, Prefect starts a temporary local API; its database is kept under AILOG_HOME so that
two AILOG_HOMEs share nothing and `PREFECT_HOME=$AILOG_HOME/prefect prefect server start` shows the runs.
"""

from __future__ import annotations

import os
from pathlib import Path


def prepare_prefect_env() -> None:
    home = Path(os.environ.get("AILOG_HOME") or "~/.ailog").expanduser()
    if not os.environ.get("PREFECT_API_URL"):
        os.environ.setdefault("PREFECT_HOME", str(home / "prefect"))
        Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "ailog,tasks,flows")
    os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_SERVER_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING" if os.environ.get("AILOG_QUIET") else "INFO")
    if not os.environ.get("AILOG_VERBOSE"):
        # The terminal gets ailog's own progress and one result or error line; Prefect's run and task logs
        # (retries, tracebacks) still reach the run's log in the Prefect UI, and the terminal with --verbose.
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")


def run_flow(flow_fn, **params):
    """Call a flow and return its result; a failed flow raises its original exception (one line in the CLI)."""
    return flow_fn(**params)
