"""Prefect settings for runs started from the command line (set before prefect is imported).

Without PREFECT_API_URL, Prefect starts a temporary local API; its database is kept under AILOG_HOME so that
two AILOG_HOMEs share nothing and `PREFECT_HOME=$AILOG_HOME/prefect prefect server start` shows the runs.
That temporary API is a second Python process that imports Prefect's server (most of its start-up): it is
started in the background as soon as the command starts, so it comes up while the command imports its own
code, and the flow call waits for it (`wait_for_api`). With PREFECT_API_URL set (a running `prefect server
start`), none of this happens: the fastest start Prefect allows.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_api_start: threading.Thread | None = None


def prepare_prefect_env() -> None:
    home = Path(os.environ.get("AILOG_HOME") or "~/.ailog").expanduser()
    if not os.environ.get("PREFECT_API_URL"):
        os.environ.setdefault("PREFECT_HOME", str(home / "prefect"))
        Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
        _start_temporary_api()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "ailog,tasks,flows")
    os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_SERVER_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING" if os.environ.get("AILOG_QUIET") else "INFO")


def _start_temporary_api() -> None:
    """Start Prefect's temporary API now, in a background thread (the same singleton the flow call uses)."""
    global _api_start
    if _api_start is not None or os.environ.get("AILOG_PREFECT_EARLY_START", "1") == "0":
        return

    def start() -> None:
        try:
            from prefect.server.api.server import SubprocessASGIServer

            SubprocessASGIServer().start()
        except Exception:  # noqa: S110 - the flow call starts it again and reports the error
            pass

    _api_start = threading.Thread(target=start, name="ailog-prefect-api", daemon=True)
    _api_start.start()


def wait_for_api() -> None:
    """Before the first flow call: the temporary API started in the background is up (or failed)."""
    if _api_start is not None:
        _api_start.join()


def run_flow(flow_fn, **params):
    """Call a flow and return its result; a failed flow raises its original exception (one line in the CLI)."""
    wait_for_api()
    return flow_fn(**params)
