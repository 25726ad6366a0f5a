"""Regular-phase flow (placeholder until the flows land)."""

from __future__ import annotations

from datetime import datetime

from prefect import flow


@flow(name="regular", log_prints=True)
def regular(window: int = 15, at: datetime | None = None, start: datetime | None = None, end: datetime | None = None,
            dry_run: bool = False, output_dir: str = "reports", input_paths: list[str] | None = None) -> dict:
    raise NotImplementedError("the regular flow has not landed yet")
