"""Readable flow-run names for the Prefect UI ("backfill 2026-11-27", "regular 10:15Z", "publish 2026-11-27").

Prefect calls these when it creates a run; they read the run's parameters and never raise (a name is not worth
a failed run).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta


def _params() -> dict:
    from prefect.runtime import flow_run

    return dict(flow_run.parameters or {})


def _hhmm(value) -> str:
    from flows.common import parse_instant

    t = parse_instant(value, "time").astimezone(UTC)
    return t.strftime("%H:%MZ") if t.date() == datetime.now(UTC).date() else t.strftime("%Y-%m-%d %H:%MZ")


def backfill_run_name() -> str:
    try:
        from flows.common import logical_today

        p = _params()
        start, end = p.get("day") or p.get("start"), p.get("day") or p.get("end")
        if not start:
            days = int(p.get("days") or 1)
            today = logical_today()
            start, end = today - timedelta(days=days), today - timedelta(days=1)
        start, end = str(start), str(end or start)
        suffix = " (dry run)" if p.get("dry_run") else ""
        return f"backfill {start}{suffix}" if start == end else f"backfill {start} … {end}{suffix}"
    except Exception:
        return "backfill"


def regular_run_name() -> str:
    try:
        from flows.common import logical_now

        p = _params()
        suffix = " (dry run)" if p.get("dry_run") else ""
        if p.get("at"):
            return f"regular {_hhmm(p['at'])}{suffix}"
        if p.get("start") and p.get("end"):
            return f"regular {_hhmm(p['start'])} … {_hhmm(p['end'])}{suffix}"
        return f"regular {_hhmm(logical_now())}{suffix}"
    except Exception:
        return "regular"


def publish_run_name() -> str:
    try:
        from flows.common import logical_today

        p = _params()
        day = p.get("day") or (logical_today() - timedelta(days=1))
        return f"publish {day.isoformat() if isinstance(day, date) else day}" + (" (dry run)" if p.get("dry_run") else "")
    except Exception:
        return "publish"
