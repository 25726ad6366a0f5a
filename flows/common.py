"""What the three flows share: settings, database, source, run records, logical time, progress, metrics."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, date, datetime, timedelta

from blocks.settings import Settings, load_settings
from core.db import Database, open_database
from core.db.migrate import require_migrated

log = logging.getLogger("ailog.flows")


def tell(message: str) -> None:
    """Say something to the person running the command (stdout) and to the Prefect UI (the run's log)."""
    from core.redact import redact

    message = redact(message)
    print(message, flush=True)
    try:
        from prefect import get_run_logger

        get_run_logger().info(message)
    except Exception:  # noqa: S110 - outside a run: stdout is enough
        pass


def current_run_id() -> str:
    """The Prefect flow-run id when there is one, so runs in the DB and in the UI match."""
    try:
        from prefect.runtime import flow_run

        if flow_run.id:
            return str(flow_run.id)
    except Exception:  # noqa: S110 - outside a flow run
        pass
    return str(uuid.uuid4())


def logical_now() -> datetime:
    """The scheduled start time of a deployment run (so a late run processes the right windows), else now."""
    try:
        from prefect.runtime import flow_run

        scheduled = flow_run.scheduled_start_time
        if scheduled is not None and flow_run.deployment_id:
            return datetime.fromisoformat(str(scheduled)).astimezone(UTC)
    except Exception:  # noqa: S110 - outside a deployment run
        pass
    return datetime.now(UTC)


def logical_today() -> date:
    return logical_now().date()


def in_deployment_run() -> bool:
    """True inside a run started from a deployment (a pod), where nothing local survives the run."""
    try:
        from prefect.runtime import flow_run

        return bool(flow_run.deployment_id)
    except Exception:
        return False


def open_state(dry_run: bool) -> tuple[Settings, Database]:
    """Settings and a migrated database (the embedded server migrates itself on first use)."""
    from core.errors import ConfigError

    settings = load_settings()
    if settings.database.embedded and in_deployment_run():
        raise ConfigError("no database configured for a deployment run: set DB_HOST (and DB_PORT, DB_NAME, DB_USER, "
                          "DB_PASSWORD) or an ailog-postgres block; the embedded PostgreSQL is for local commands "
                          "only and would die with the pod, taking the run's results with it")
    db = open_database(settings)
    try:
        require_migrated(db)
    except ConfigError as exc:
        if "cannot connect" in str(exc):
            try:
                from core.ops.events import emit

                emit("ailog.database.unreachable", str(exc))
            except Exception:  # noqa: S110 - the event is best effort; the run fails anyway
                pass
        raise
    return settings, db


def record_run_start(db: Database, run_id: str, flow: str, params: dict, dry_run: bool) -> None:
    if dry_run:
        return
    from tasks.store import start_run

    with db.connect() as conn:
        start_run(conn, run_id, flow, params)
        conn.commit()


def record_run_end(db: Database, run_id: str, status: str, summary: dict, error: str | None, dry_run: bool) -> None:
    if dry_run:
        return
    from tasks.store import finish_run

    try:
        with db.connect() as conn:
            finish_run(conn, run_id, status, summary, error)
            conn.commit()
    except Exception as exc:  # the run's outcome matters more than its record
        log.warning("could not record the end of run %s: %s", run_id, type(exc).__name__)


def push_metrics(settings: Settings, flow: str, outcome: str, duration_s: float, figures: dict) -> None:
    """Push the run's metrics to the Pushgateway when one is configured; never fails the run."""
    try:
        from core.ops.metrics import push_run_metrics
    except ImportError:
        return
    push_run_metrics(flow, outcome, duration_s, figures, settings.analysis.pushgateway_url)


def parse_day(value: str | date | None, name: str) -> date | None:
    from core.errors import ConfigError

    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{name} must be a date like 2026-11-27, got {value!r}") from None


def parse_instant(value: str | datetime | None, name: str) -> datetime | None:
    from core.errors import ConfigError

    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{name} must be an ISO-8601 time like 2026-11-27T10:15:00Z, got {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def refuse_future(now: datetime, **instants: datetime | None) -> None:
    """--at/--end after now would advance the watermark past data that does not exist yet."""
    from core.errors import ConfigError

    for name, value in instants.items():
        if value is not None and value > now:
            raise ConfigError(f"--{name} {value.isoformat()} is in the future (now is {now.isoformat()}): windows "
                              "can only be analysed once they are over; the regular schedule picks them up then")


def days_to_process(days: int | None, start: date | None, end: date | None, today: date) -> list[date]:
    """Whole UTC days: the N days before today, or start..end (both included)."""
    from core.errors import ConfigError

    if start or end:
        if not (start and end):
            raise ConfigError("--start and --end go together (both are calendar days, UTC, included)")
        if end < start:
            raise ConfigError(f"--end {end} is before --start {start}")
        if end >= today:
            raise ConfigError(f"--end {end} is not a whole past day yet (today is {today}, UTC)")
        return [start + timedelta(days=i) for i in range((end - start).days + 1)]
    n = 1 if days is None else days
    if n < 1:
        raise ConfigError(f"--days must be at least 1, got {n}")
    return [today - timedelta(days=i) for i in range(n, 0, -1)]
