"""`ailog teams-test`: the user's test 5 — a "backfill completed" notification with sample figures, sent directly."""

from __future__ import annotations

import orjson

from blocks.settings import load_settings
from core.errors import ConfigError

SAMPLE = {"days_processed": 1, "successful_days": ["2026-11-27"], "failed_days": [], "incidents": 4, "saved_rows": 1287,
          "problems_new": 3, "peaks": 9, "duration_s": 42.5}


def run(args) -> int:
    from tasks.publish.teams import messages
    from tasks.publish.teams.sender import TeamsSender

    settings = load_settings().teams
    message = messages.backfill_completed(SAMPLE)
    message["title"] = "Backfill completed (test notification from ailog teams-test)"
    if not settings.enabled:
        raise ConfigError("TEAMS_ENABLED is false: nothing is sent; set TEAMS_ENABLED=true to test the webhook")
    if settings.webhook_url is None:
        if args.dry_run:
            from tasks.publish.teams.cards import render

            print(orjson.dumps(render(message, "teams-test", "workflow"), option=orjson.OPT_INDENT_2).decode())
            return 0
        raise ConfigError("TEAMS_WEBHOOK_URL is not set: give the Teams webhook URL (Workflows or legacy connector)")
    sender = TeamsSender(settings)
    if args.dry_run:
        print(orjson.dumps(sender.payload(message, "teams-test"), option=orjson.OPT_INDENT_2).decode())
        return 0
    sender.send(message, "teams-test")
    print(f"sent a test notification to the Teams webhook ({sender.kind} card)")
    return 0
