"""One message for the alerts that waited too long (an outage): what happened, not a flood of stale cards."""

from __future__ import annotations

from datetime import datetime

from tasks.publish.teams.messages import message

MAX_LINES = 15


def alert_digest(alerts: list[tuple[dict, datetime]]) -> dict:
    """`alerts`: (queued alert message, when it was queued), oldest first."""
    def fact(payload: dict, name: str) -> str:
        return next((v for k, v in payload.get("facts", []) if k == name), "")

    lines = [f"{queued:%Y-%m-%d %H:%M}Z · {payload.get('title', 'alert')} · {fact(payload, 'Problem')} · "
             f"{fact(payload, 'Events')} · "
             f"window {fact(payload, 'Window')}" for payload, queued in alerts[:MAX_LINES]]
    if len(alerts) > MAX_LINES:
        lines.append(f"… and {len(alerts) - MAX_LINES} more (see the Known peaks page)")
    first, last = alerts[0][1], alerts[-1][1]
    summary = (f"{len(alerts)} alert(s) raised between {first:%Y-%m-%d %H:%M}Z and {last:%H:%M}Z could not be "
               "delivered in time (Teams was unreachable); they are summarised here instead of sent one by one")
    return message("alert_digest", f"{len(alerts)} delayed alert(s) from a Teams outage", summary, "high",
                   [("Alerts", len(alerts)), ("Oldest", f"{first:%Y-%m-%d %H:%M}Z")],
                   [{"title": "Delayed alerts", "lines": lines}])
