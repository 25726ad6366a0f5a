"""`ailog regular [--window 15] [--at TIME | --start TIME --end TIME] [--input PATH...] [--output DIR] [--dry-run]`."""

from __future__ import annotations

from ailog.commands._prefect_env import prepare_prefect_env


def run(args) -> int:
    prepare_prefect_env()
    from flows.common import parse_instant
    from flows.regular import regular, regular_rerun

    if args.window < 1 or 60 % args.window:
        from core.errors import ConfigError

        raise ConfigError(f"--window must divide an hour (e.g. 5, 15, 30), got {args.window}")
    from prefect.exceptions import CancelledRun

    flow_fn = regular_rerun if args.start or args.end else regular
    try:
        flow_fn(window=args.window, at=parse_instant(args.at, "--at"), start=parse_instant(args.start, "--start"),
                end=parse_instant(args.end, "--end"), dry_run=args.dry_run, output_dir=args.output,
                input_paths=args.input)
    except CancelledRun as exc:  # another run holds the lock: not a success, not a crash
        print(str(exc))
        return 75  # EX_TEMPFAIL
    return 0
