"""`ailog backfill [--days N | --start DATE --end DATE] [--input PATH...] [--output DIR] [--dry-run] [--no-publish]`."""

from __future__ import annotations

from ailog.commands._prefect_env import prepare_prefect_env


def run(args) -> int:
    prepare_prefect_env()
    from flows.backfill import backfill

    if args.start and not args.end:
        from core.errors import ConfigError

        raise ConfigError("--start needs --end (calendar days, UTC, both included)")
    if args.days is not None and args.days < 1:
        from core.errors import ConfigError

        raise ConfigError(f"--days must be at least 1, got {args.days}")
    backfill(days=args.days or 1, start=args.start, end=args.end, dry_run=args.dry_run, publish=not args.no_publish,
             output_dir=args.output, input_paths=args.input)
    return 0
