"""`ailog serve`: the three flows served locally on their schedules (prefect serve), to try the whole system.

Start a Prefect server first (`prefect server start`) and point PREFECT_API_URL at it to watch the runs in the UI.
"""

from __future__ import annotations

import os

from ailog.commands._prefect_env import prepare_prefect_env


def build_deployments(input_paths: list[str] | None):
    from flows.backfill import backfill
    from flows.publish import publish
    from flows.regular import regular

    extra = {"input_paths": input_paths} if input_paths else {}
    return [
        backfill.to_deployment(name="backfill-local", cron="0 9 * * *", parameters={"days": 1, **extra},
                               tags=["ailog", "backfill"]),
        regular.to_deployment(name="regular-local", cron="5-59/15 * * * *", parameters=dict(extra),
                              tags=["ailog", "regular"], concurrency_limit=1),
        publish.to_deployment(name="publish-local", tags=["ailog", "publish"]),
    ]


def run(args) -> int:
    prepare_prefect_env()
    from prefect import serve

    if not os.environ.get("PREFECT_API_URL"):
        print("note: PREFECT_API_URL is not set; runs go to a temporary local API. To watch them in the UI, run "
              "`prefect server start` in another terminal and `export PREFECT_API_URL=http://127.0.0.1:4200/api`.")
    paths = [os.path.abspath(p) for p in args.input] if args.input else None
    print("serving backfill (09:00 UTC daily), regular (every 15 minutes) and publish (on demand); Ctrl-C stops")
    serve(*build_deployments(paths))
    return 0
