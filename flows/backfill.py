"""Backfill flow (placeholder until the flows land)."""

from __future__ import annotations

from datetime import date

from prefect import flow


@flow(name="backfill", log_prints=True)
def backfill(days: int = 1, start: date | None = None, end: date | None = None, dry_run: bool = False,
             publish: bool = True, output_dir: str = "reports", input_paths: list[str] | None = None) -> dict:
    raise NotImplementedError("the backfill flow has not landed yet")
