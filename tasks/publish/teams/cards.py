"""Render a neutral message as a legacy Office 365 MessageCard (pymsteams) or a Workflows Adaptive Card.

Workflows (Power Automate) webhooks accept only Adaptive Cards in the message envelope; legacy connector URLs
accept both, so Adaptive is the default and MessageCard is used only for legacy URLs when asked. Cards stay
under the size budget (Teams rejects ~28 KB): long text is cut and rows dropped, with a pointer to the report.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

import orjson
import pymsteams

SIZE_BUDGET = 24_000  # bytes of UTF-8 JSON
MAX_TEXT = 1500
LEGACY_HOSTS = re.compile(r"(^|\.)(webhook\.office\.com|outlook\.office(365)?\.com)$", re.IGNORECASE)
COLOURS = {"critical": "E81123", "high": "FF8C00", "medium": "0078D7", "low": "107C10", "info": "0078D7"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def endpoint_kind(url: str, configured: str = "auto") -> str:
    """legacy for Office 365 connector URLs, workflow for everything else (Power Automate / Logic Apps)."""
    if configured in ("legacy", "workflow"):
        return configured
    host = urlparse(url).hostname or ""
    return "legacy" if LEGACY_HOSTS.search(host) else "workflow"


def escape(text: str, limit: int = MAX_TEXT) -> str:
    """Plain text for Teams Markdown: no control characters, no markup, no mentions, bounded length."""
    text = _CONTROL.sub("", str(text))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = re.sub(r"([\\`*_\[\]()#|~])", r"\\\1", text)
    if len(text) > limit:
        text = text[:limit] + " …(truncated)"
    return text


def adaptive_card(msg: dict, key: str, limit: int = MAX_TEXT, max_lines: int = 15) -> dict:
    body: list[dict] = [
        {"type": "TextBlock", "text": escape(msg["title"], 200), "weight": "Bolder", "size": "Medium", "wrap": True,
         "color": "Attention" if msg["severity"] == "critical" else "Default"},
        {"type": "TextBlock", "text": escape(msg["summary"], 400), "wrap": True, "isSubtle": True},
    ]
    if msg["facts"]:
        body.append({"type": "FactSet", "facts": [{"title": escape(k, 80), "value": escape(v, limit)}
                                                  for k, v in msg["facts"]]})
    for section in msg["sections"]:
        body.append({"type": "TextBlock", "text": escape(section["title"], 120), "weight": "Bolder", "wrap": True})
        for line in section["lines"][:max_lines]:
            body.append({"type": "TextBlock", "text": escape(line, limit), "wrap": True, "fontType": "Monospace",
                         "size": "Small"})
    body.append({"type": "TextBlock", "text": f"ailog · {escape(key, 120)}", "size": "Small", "isSubtle": True,
                 "wrap": True})
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard", "version": "1.4",
            "body": body}
    if msg["links"]:
        card["actions"] = [{"type": "Action.OpenUrl", "title": escape(t, 60), "url": u} for t, u in msg["links"]]
    return {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                                 "contentUrl": None, "content": card}]}


def message_card(msg: dict, key: str, limit: int = MAX_TEXT, max_lines: int = 15) -> dict:
    card = pymsteams.connectorcard(None)
    card.title(escape(msg["title"], 200))
    card.summary(escape(msg["summary"], 200))
    card.text(escape(msg["summary"], 400))
    card.color(COLOURS.get(msg["severity"], "0078D7"))
    if msg["facts"]:
        facts = pymsteams.cardsection()
        for k, v in msg["facts"]:
            facts.addFact(escape(k, 80), escape(v, limit))
        card.addSection(facts)
    for section in msg["sections"]:
        s = pymsteams.cardsection()
        s.activityTitle(escape(section["title"], 120))
        s.text("\n\n".join(escape(line, limit) for line in section["lines"][:max_lines]))
        card.addSection(s)
    footer = pymsteams.cardsection()
    footer.text(f"ailog · {escape(key, 120)}")
    card.addSection(footer)
    for t, u in msg["links"]:
        card.addLinkButton(escape(t, 60), u)
    payload = dict(card.payload)
    payload.update({"@type": "MessageCard", "@context": "http://schema.org/extensions"})
    return payload


def render(msg: dict, key: str, kind: str) -> dict:
    """The payload for the endpoint kind, shrunk until it fits the size budget (never fails on size)."""
    build = message_card if kind == "legacy" else adaptive_card
    for limit, lines in ((MAX_TEXT, 15), (600, 10), (300, 5), (120, 3), (60, 1)):
        payload = build(msg, key, limit, lines)
        if len(orjson.dumps(payload)) <= SIZE_BUDGET:
            return payload
    slim = dict(msg, sections=[{"title": "Details", "lines": ["too large for Teams: see the daily report"]}],
                facts=msg["facts"][:6])
    return build(slim, key, 60, 1)
