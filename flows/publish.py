"""Publish flow (placeholder until the flows land)."""

from __future__ import annotations

from datetime import date

from prefect import flow


@flow(name="publish", log_prints=True)
def publish(day: date | None = None, dry_run: bool = False, output_dir: str = "reports") -> dict:
    raise NotImplementedError("the publish flow has not landed yet")
