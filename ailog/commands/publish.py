"""`ailog publish [--date DATE] [--output DIR] [--dry-run]`."""

from __future__ import annotations

from ailog.commands._prefect_env import prepare_prefect_env, wait_for_api


def run(args) -> int:
    prepare_prefect_env()
    from flows.common import parse_day
    from flows.publish import publish

    wait_for_api()
    summary = publish(day=parse_day(args.date, "--date"), dry_run=args.dry_run, output_dir=args.output or "reports")
    print(f"publish {summary['day']}: Teams {summary['teams']}; Confluence {summary['confluence']}")
    return 0
