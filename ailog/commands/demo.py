"""`ailog demo`: the main job end to end on embedded defaults.

Generates a realistic multi-day sample of error logs with incidents, backfills all but its last day, runs the
regular phase window by window over the last day, writes the reports and says where to look.
Its state lives in its own AILOG_HOME (``<AILOG_HOME>/demo``) so a demo never mixes with real data.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ailog.commands._prefect_env import prepare_prefect_env


def run(args) -> int:
    base_home = Path(os.environ.get("AILOG_HOME") or "~/.ailog").expanduser()
    home = base_home / "demo"
    os.environ["AILOG_HOME"] = str(home)
    for name in [k for k in os.environ if k.startswith(("DB_", "ES_", "TEAMS_", "CONFLUENCE_"))]:
        del os.environ[name]  # the demo runs on embedded defaults only: never touches real systems
    prepare_prefect_env()
    output = Path(args.output or "reports").resolve()
    days = args.days or 8
    began = time.monotonic()

    from ailog.simulation import generate
    from core.db.embedded import start_embedded

    print(f"1/4 generating {days} days of sample error logs with incidents …")
    today = datetime.now(UTC).date()
    start_day = today - timedelta(days=days)
    logs_dir = output / "sample-logs"
    data = generate(start_day, days, args.seed, logs_dir)
    inputs = [str(p) for p in data.files]

    start_embedded(home)
    _reset_demo_database(home)
    from flows.backfill import backfill
    from flows.regular import regular_rerun

    last_day = today - timedelta(days=1)
    print(f"2/4 backfill {start_day} … {last_day - timedelta(days=1)} (history, no alerts) …")
    backfill(start=start_day, end=last_day - timedelta(days=1), output_dir=str(output), input_paths=inputs,
             publish=False)
    print(f"3/4 regular phase over {last_day}, window by window, as live runs would …")
    day_start = datetime(last_day.year, last_day.month, last_day.day, tzinfo=UTC)
    summary = regular_rerun(start=day_start, end=day_start + timedelta(days=1), output_dir=str(output), input_paths=inputs)
    print("4/4 report of the last day …")
    from flows.publish import publish

    publish(day=last_day, output_dir=str(output))
    _print_summary(output, home, last_day, summary, time.monotonic() - began)
    return 0


def _reset_demo_database(home: Path) -> None:
    """A demo starts from an empty database so its figures are reproducible."""
    from blocks.settings import DatabaseSettings
    from core.db import Database
    from core.db.migrate import migrate

    db = Database(DatabaseSettings(), home)
    db.conninfo()
    with db.connect(ddl=True, autocommit=True, dbname="postgres") as conn:
        conn.execute("DROP DATABASE IF EXISTS ailog WITH (FORCE)")
    migrate(db)


def _print_summary(output: Path, home: Path, day, summary: dict, seconds: float) -> None:
    from blocks.settings import DatabaseSettings
    from core.db import Database

    db = Database(DatabaseSettings(), home)
    with db.connect() as conn:
        problems = conn.execute("SELECT count(*) FROM problems").fetchone()[0]
        peaks = conn.execute("SELECT count(*), count(*) FILTER (WHERE known) FROM peaks").fetchone()
        alerts = conn.execute(
            "SELECT p.kind, p.app, p.problem_id, left(coalesce(pr.template, ''), 90), p.start_ts"
            " FROM peaks p LEFT JOIN problems pr USING (problem_id) WHERE p.alerted ORDER BY p.start_ts").fetchall()
    print()
    print(f"Demo finished in {seconds:.0f} s.")
    print(f"  problems (distinct errors): {problems}; peaks: {peaks[0]} ({peaks[1]} known recurring, not alerted)")
    print(f"  critical alerts the regular phase would have sent to Teams on {day}: {len(alerts)}")
    for kind, app, problem_id, template, start in alerts[:10]:
        print(f"    {start:%H:%M}Z {kind:<10} {app:<22} {problem_id}  {template}")
    print()
    print("Where to look:")
    print(f"  daily report     {output / f'problem_report_{day}.json'}  (and daily_report_{day}.md)")
    print(f"  known errors     {output / 'errors_table_latest.csv'}")
    print(f"  peaks            {output / 'peaks_table_latest.csv'}")
    print(f"  sample logs      {output / 'sample-logs'}")
    print(f"  Prefect UI       PREFECT_HOME={home / 'prefect'} prefect server start   (then open http://127.0.0.1:4200)")
