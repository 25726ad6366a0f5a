"""Post a rendered card to a Teams webhook with pymsteams, with the failure handling pymsteams lacks.

- a legacy connector's 200 whose body reports an error ("… returned HTTP error 429") is a failure;
- a Workflows 202 (accepted, empty body) is a success;
- 429/5xx/timeouts are retried with exponential backoff and jitter, honouring Retry-After (capped);
- 400/404/413 are permanent; a client-side gap between posts respects Teams' rate limits.
The webhook URL is a secret (its `sig=` authorises posting): it never appears in an error or a log line.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from email.utils import parsedate_to_datetime

import pymsteams
import requests

from blocks.settings import TeamsSettings
from core.errors import AilogError
from core.redact import redact
from tasks.publish.teams.cards import endpoint_kind, render

log = logging.getLogger("ailog.publish.teams")
PERMANENT = {400, 401, 403, 404, 410, 413}
MIN_GAP_S = 0.3
MAX_RETRY_AFTER_S = 120.0


class TeamsDeliveryError(AilogError):
    def __init__(self, message: str, *, permanent: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status = status  # the HTTP status, so the outbox can judge each message (tasks/outbox)


class TeamsSender:
    _lock = threading.Lock()
    _last_post = 0.0

    def __init__(self, settings: TeamsSettings, *, attempts: int = 4, backoff_s: float = 2.0) -> None:
        if settings.webhook_url is None:
            raise AilogError("TEAMS_WEBHOOK_URL is not set: give the Teams webhook URL, or set TEAMS_ENABLED=false")
        self.settings = settings
        self.url = settings.webhook_url.get_secret_value()
        self.kind = endpoint_kind(self.url, settings.kind)
        self.attempts = attempts
        self.backoff_s = backoff_s

    def payload(self, message: dict, idempotency_key: str) -> dict:
        return render(message, idempotency_key, self.kind)

    def send(self, message: dict, idempotency_key: str) -> None:
        payload = self.payload(message, idempotency_key)
        last_error = "not sent"
        for attempt in range(1, self.attempts + 1):
            wait = self._post_once(payload, idempotency_key)
            if wait is None:
                return
            last_error, delay, permanent = wait
            if permanent or attempt == self.attempts:
                status = re.match(r"HTTP (\d+)", last_error)
                raise TeamsDeliveryError(f"Teams rejected the {message.get('kind', 'message')} ({last_error})",
                                         permanent=permanent, status=int(status.group(1)) if status else None)
            time.sleep(delay if delay is not None else self.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random()))  # noqa: S311
        raise TeamsDeliveryError(f"Teams delivery failed ({last_error})")

    def _post_once(self, payload: dict, key: str) -> tuple[str, float | None, bool] | None:
        """None on success, else (reason, delay or None, permanent)."""
        self._throttle()
        card = pymsteams.connectorcard(self.url, http_timeout=self.settings.timeout)
        card.payload = payload
        try:
            _send_with_headers(card, key)
        except pymsteams.TeamsWebhookException:
            response = card.last_http_response
            status = response.status_code if response is not None else 0
            reason = f"HTTP {status}: {redact(response.text[:200]) if response is not None else ''}"
            return reason, _retry_after(response), status in PERMANENT
        except requests.Timeout:
            return "timed out", None, False
        except requests.RequestException as exc:
            return f"{type(exc).__name__}", None, False
        body = card.last_http_response.text if card.last_http_response is not None else ""
        if "HTTP error" in body:  # legacy connectors report throttling/size errors in a 200 body
            status = 429 if "429" in body else 413 if "413" in body else 500
            return f"HTTP 200 carrying an error: {redact(body[:200])}", None, status == 413
        return None

    def _throttle(self) -> None:
        with TeamsSender._lock:
            gap = time.monotonic() - TeamsSender._last_post
            if gap < MIN_GAP_S:
                time.sleep(MIN_GAP_S - gap)
            TeamsSender._last_post = time.monotonic()


def _send_with_headers(card: pymsteams.connectorcard, key: str) -> None:
    """pymsteams.send() without a way to add headers: same request, plus the idempotency key header."""
    headers = {"Content-Type": "application/json", "X-Ailog-Idempotency-Key": key}
    r = requests.post(card.hookurl, json=card.payload, headers=headers, proxies=card.proxies,
                      timeout=card.http_timeout, verify=card.verify)
    card.last_http_response = r
    if not 200 <= r.status_code < 300:
        raise pymsteams.TeamsWebhookException(r.text)


def _retry_after(response) -> float | None:
    if response is None:
        return None
    raw = response.headers.get("Retry-After")
    if not raw:
        return None
    try:
        return min(float(raw), MAX_RETRY_AFTER_S)
    except ValueError:
        try:
            return min(max(parsedate_to_datetime(raw).timestamp() - time.time(), 0.0), MAX_RETRY_AFTER_S)
        except (TypeError, ValueError):
            return None
