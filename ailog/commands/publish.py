"""`ailog publish [--date DATE] [--output DIR] [--dry-run]`."""

from __future__ import annotations

from ailog.commands._prefect_env import prepare_prefect_env


def run(args) -> int:
    prepare_prefect_env()
    from flows.common import parse_day
    from flows.publish import publish

    summary = publish(day=parse_day(args.date, "--date"), dry_run=args.dry_run, output_dir=args.output)
    print(f"publish {summary['day']}: Teams {summary['teams']}; Confluence {summary['confluence']}")
    return 0
