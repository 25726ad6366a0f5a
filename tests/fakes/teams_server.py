"""A local Teams webhook: Workflows (202, empty) or legacy connector (200 `1`, 200 JSON, 200 carrying an error,
400, 413, 429 + Retry-After, slow answers), scripted per test. Records what arrives and de-duplicates by the
`X-Ailog-Idempotency-Key` header, as a receiver that honours idempotency keys would."""

from __future__ import annotations

import json
import time

from tests.fakes.http import FakeServer, Response

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
        payload = json.loads(request["body"])
        if self.kind == "workflow" and payload.get("type") != "message":
            return Response(400, "workflow expects an Adaptive Card message envelope")
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
