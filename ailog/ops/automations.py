"""Prefect automations as code: alerts on the jobs themselves, created idempotently (read by name, then
update or create). Hooks run inside the flow process and cannot see OOM kills or evictions; these can."""

from __future__ import annotations

from datetime import timedelta

from prefect.automations import Automation
from prefect.events.actions import CallWebhook
from prefect.events.schemas.automations import EventTrigger, Posture

PREFIX = "ailog: "


def _tag(flow_tag: str) -> dict:
    return {"prefect.resource.id": f"prefect.tag.{flow_tag}", "prefect.resource.role": "tag"}


def definitions(webhook_block_id) -> list[Automation]:
    """The alerts MISSION.md asks for, each calling the Teams webhook block."""
    def act(title: str):
        return [CallWebhook(block_document_id=webhook_block_id,
                            payload=('{"type": "message", "attachments": [{"contentType": '
                                     '"application/vnd.microsoft.card.adaptive", "content": {"type": "AdaptiveCard", '
                                     '"version": "1.4", "body": [{"type": "TextBlock", "wrap": true, "weight": "Bolder", '
                                     f'"text": "{title}"}}, {{"type": "TextBlock", "wrap": true, "text": '
                                     '"{{ event.resource.name }} {{ event.event }}"}]}}]}'))]
    return [
        Automation(name=PREFIX + "backfill failing repeatedly", description="3 failed or crashed backfills within 3 days",
                   trigger=EventTrigger(match={"prefect.resource.id": "prefect.flow-run.*"}, match_related=_tag("backfill"),
                                        expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
                                        posture=Posture.Reactive, threshold=3, within=timedelta(days=3)),
                   actions=act("Backfill failed 3 times in a row")),
        Automation(name=PREFIX + "regular phase not completing", description="no completed regular run for 30 minutes",
                   trigger=EventTrigger(match={"prefect.resource.id": "prefect.flow-run.*"}, match_related=_tag("regular"),
                                        expect={"prefect.flow-run.Completed"}, posture=Posture.Proactive,
                                        threshold=1, within=timedelta(minutes=30)),
                   actions=act("Regular phase has not completed for 30 minutes")),
        Automation(name=PREFIX + "crashed runs", description="a run crashed (OOM kill, eviction, lost pod)",
                   trigger=EventTrigger(match={"prefect.resource.id": "prefect.flow-run.*"}, match_related=_tag("ailog"),
                                        expect={"prefect.flow-run.Crashed"}, posture=Posture.Reactive, threshold=1,
                                        within=timedelta(0)),
                   actions=act("An AI Log Analyzer run crashed")),
        Automation(name=PREFIX + "zombie runs", description="a run started but did not finish within 3 hours",
                   trigger=EventTrigger(match={"prefect.resource.id": "prefect.flow-run.*"}, match_related=_tag("ailog"),
                                        after={"prefect.flow-run.Running"},
                                        expect={"prefect.flow-run.Completed", "prefect.flow-run.Failed",
                                                "prefect.flow-run.Crashed", "prefect.flow-run.Cancelled"},
                                        for_each={"prefect.resource.id"}, posture=Posture.Proactive, threshold=1,
                                        within=timedelta(hours=3)),
                   actions=act("An AI Log Analyzer run is stuck (zombie)")),
        Automation(name=PREFIX + "Confluence unreachable", description="publishing to Confluence failed",
                   trigger=EventTrigger(match={"prefect.resource.id": "ailog.app"},
                                        expect={"ailog.confluence.unreachable"}, posture=Posture.Reactive,
                                        threshold=1, within=timedelta(0)),
                   actions=act("Confluence is unreachable")),
        Automation(name=PREFIX + "database connection lost", description="a run could not reach PostgreSQL",
                   trigger=EventTrigger(match={"prefect.resource.id": "ailog.app"},
                                        expect={"ailog.database.unreachable"}, posture=Posture.Reactive,
                                        threshold=1, within=timedelta(0)),
                   actions=act("The database connection was lost")),
    ]


def apply_automations(webhook_block_id) -> list[str]:
    """Create or update each automation by name: running it twice leaves exactly one of each."""
    from prefect.exceptions import ObjectNotFound

    done = []
    for wanted in definitions(webhook_block_id):
        try:
            existing = Automation.read(name=wanted.name)
        except (ValueError, ObjectNotFound):
            existing = None
        if existing is None:
            wanted.create()
            done.append(f"created {wanted.name}")
        else:
            wanted.id = existing.id
            wanted.update()
            done.append(f"updated {wanted.name}")
    return done
