"""Prefect events for failures our own code sees (Confluence unreachable, database connection lost), so that
automations can alert on them (ailog/ops/automations.py)."""

from __future__ import annotations

from core.redact import redact

RESOURCE = {"prefect.resource.id": "ailog.app", "prefect.resource.name": "AI Log Analyzer"}


def emit(event: str, detail: str) -> None:
    from prefect.events import emit_event

    emit_event(event=event, resource=RESOURCE, payload={"detail": redact(detail)[:500]})
