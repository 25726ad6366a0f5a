"""Prefect block: where the report files go (the reports directory)."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field


class AilogReports(Block):
    """Report files for people (JSON, Markdown, charts, CSVs). Later runs read everything from PostgreSQL, so in
    Kubernetes this may be scratch space (/tmp) or a mounted volume that keeps the files."""

    _block_type_name = "AI Log Analyzer Reports"
    _block_type_slug = "ailog-reports"

    directory: str = Field(default="/tmp/ailog/reports",
                           description="A writable directory in the pod, e.g. a PVC mounted at /var/ailog/reports")
