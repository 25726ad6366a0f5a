"""A local Teams webhook: Workflows (202, empty) or legacy connector (200 `1`, 200 JSON, 200 carrying an error,
400, 413, 429 + Retry-After, slow answers), scripted per test. Adaptive Cards are validated (envelope,
content type, version, element and action types and their required fields, 28 KB) and refused with 400/413. Records what arrives and de-duplicates by the
`X-Ailog-Idempotency-Key` header, as a receiver that honours idempotency keys would."""

from __future__ import annotations

import json
import re
import time

from tests.fakes.http import FakeServer, Response

ADAPTIVE = "application/vnd.microsoft.card.adaptive"
ELEMENTS = {"TextBlock": ("text",), "FactSet": ("facts",), "Container": ("items",), "ColumnSet": (),
            "Image": ("url",), "RichTextBlock": ("inlines",), "ActionSet": ("actions",)}
ACTIONS = {"Action.OpenUrl": ("url",), "Action.ShowCard": ("card",), "Action.ToggleVisibility": ("targetElements",)}
SIZE_LIMIT = 28 * 1024


def card_error(payload: dict) -> str | None:
    """Why a Workflows endpoint / Teams would refuse this message (Adaptive Card envelope and schema), or None."""
    if payload.get("type") != "message" or not isinstance(payload.get("attachments"), list) or not payload["attachments"]:
        return "expected a message envelope: {'type': 'message', 'attachments': [...]}"
    for att in payload["attachments"]:
        if att.get("contentType") != ADAPTIVE:
            return f"attachment contentType must be {ADAPTIVE}"
        card = att.get("content")
        if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
            return "attachment content must be an AdaptiveCard"
        if not isinstance(card.get("version"), str) or not re.fullmatch(r"1\.[0-6]", card["version"]):
            return f"unsupported Adaptive Card version {card.get('version')!r}"
        for element in card.get("body", []):
            required = ELEMENTS.get(element.get("type"))
            if required is None:
                return f"unknown element type {element.get('type')!r}"
            for name in required:
                if name not in element:
                    return f"{element['type']} requires '{name}'"
            if element["type"] == "TextBlock" and not isinstance(element["text"], str):
                return "TextBlock.text must be a string"
            if element["type"] == "FactSet" and not all(isinstance(f.get("title"), str) and isinstance(f.get("value"), str)
                                                        for f in element["facts"]):
                return "each fact needs a string title and value"
        for action in card.get("actions", []):
            required = ACTIONS.get(action.get("type"))
            if required is None:
                return f"action {action.get('type')!r} is not supported in Teams webhooks"
            if any(name not in action for name in required):
                return f"{action['type']} requires {required}"
    return None


LEGACY_JSON_OK = json.dumps({"version": "1.1", "statusCode": 200, "isSuccessStatusCode": True})


class FakeTeams(FakeServer):
    def __init__(self, kind: str = "workflow") -> None:
        super().__init__()
        self.kind = kind
        self.script: list[tuple[int, str, dict] | str] = []  # consumed per POST; "slow" sleeps
        self.received: list[dict] = []  # accepted payloads
        self.unique: dict[str, dict] = {}  # idempotency key -> first payload
        self.duplicates = 0
        self.down = False

    def handle(self, request: dict) -> Response:
        if self.down:
            return Response(502, "Bad Gateway")
        step = self.script.pop(0) if self.script else None
        if step == "slow":
            time.sleep(3)
            step = None
        if step is not None:
            status, body, headers = step
            if not 200 <= status < 300 or "HTTP error" in body:
                return Response(status, body, headers)
        if len(request["body"]) > SIZE_LIMIT:
            return Response(413, "Webhook message delivery failed with error: payload is too large (over 28 KB)")
        payload = json.loads(request["body"])
        problem = card_error(payload) if self.kind == "workflow" or "attachments" in payload else None
        if problem:
            return Response(400, {"error": {"code": "InvalidRequestContent", "message": problem}})
        if self.kind == "legacy" and not (payload.get("text") or payload.get("summary") or payload.get("attachments")):
            return Response(400, "Summary or Text is required.")
        key = {k.lower(): v for k, v in request["headers"].items()}.get("x-ailog-idempotency-key", "")
        self.received.append(payload)
        if key in self.unique:
            self.duplicates += 1
        else:
            self.unique[key] = payload
        if step is not None:
            return Response(step[0], step[1], step[2])
        return Response(202, b"") if self.kind == "workflow" else Response(200, "1")
