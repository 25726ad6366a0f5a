"""Remove secret values from text before it reaches a log line, a report, an artifact, a message or an error.

One registry holds every configured secret: the values of the secret environment variables, and everything
`register_settings` finds in the loaded configuration (SecretStr fields, whichever source — environment or
Prefect blocks — they came from, and passwords inside URLs). On top of the known values, any `user:pass@`
in a URL and any `sig=`/`token=`/`password=`-style query parameter is masked, so a secret nobody registered
still does not leak through a URL.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
from urllib.parse import quote, quote_plus, urlsplit

MASK = "**********"
SECRET_ENV = ("DB_PASSWORD", "DB_DDL_PASSWORD", "ES_PASSWORD", "ES_API_KEY", "TEAMS_WEBHOOK_URL",
              "CONFLUENCE_PASSWORD", "CONFLUENCE_TOKEN")
_SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|TOKEN|API_KEY|SECRET|WEBHOOK_URL)$")
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]{0,20}://)[^/\s:@\"'<>]+:[^/\s@\"'<>]+@", re.IGNORECASE)
# what credentials in a URL need: an @ after the `://`, with no slash or space between. Searched first: the pattern
# itself tries a scheme of up to 21 characters at every position of the text (about 55 µs on a 340-character
# stack trace), this probe runs at the speed of a substring search
URL_CREDENTIALS_PROBE = re.compile(r"://[^/\s@]*@")
_SIG = re.compile(r"(?P<k>[?&](?:sig|token|api_key|apikey|access_token|password|secret)=)[^&\s\"'<>]+", re.IGNORECASE)
MIN_LEN = 4

_registry: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a secret value (and its URL-encoded forms) so that every later redact() masks it."""
    if not value or len(value) < MIN_LEN:
        return
    with _lock:
        _registry.update({value, quote(value, safe=""), quote_plus(value)})


def register_settings(settings) -> None:
    """Every SecretStr in the configuration (env or blocks), and credentials inside configured URLs."""
    for value in _walk(settings):
        if hasattr(value, "get_secret_value"):
            secret = value.get_secret_value()
            register_secret(secret)
            _register_url_parts(secret)
        elif isinstance(value, str) and "://" in value:
            _register_url_parts(value)


def _register_url_parts(text: str) -> None:
    try:
        parts = urlsplit(text)
    except ValueError:
        return
    if parts.password:
        register_secret(parts.password)
    for key, _, val in (p.partition("=") for p in parts.query.split("&")):
        if key.lower() in ("sig", "token", "api_key", "apikey", "access_token", "password", "secret"):
            register_secret(val)


def _walk(obj, depth: int = 0):
    if depth > 4 or obj is None:
        return
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from _walk(getattr(obj, f.name), depth + 1)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _walk(v, depth + 1)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _walk(v, depth + 1)
    else:
        yield obj


_cache: dict = {"key": None, "values": [], "names": SECRET_ENV}


def _env_key(names: tuple[str, ...]) -> tuple:
    """What the secret list depends on, read from the raw environment mapping (no decoding: a hot path); the
    registry by value, not by size (one secret forgotten and another learned must not look unchanged)."""
    raw = getattr(os.environ, "_data", None)
    if raw is not None and isinstance(next(iter(raw), b""), bytes):
        return (len(raw), hash(frozenset(_registry)), *(raw.get(n.encode()) for n in names))
    return (len(os.environ), hash(frozenset(_registry)), *(os.environ.get(n) for n in names))


def _known_values(extra: tuple[str, ...]) -> list[str]:
    """Registered and environment secrets, longest first (a secret containing another is masked whole);
    recomputed only when the environment or the registry changed."""
    with _lock:
        key = _env_key(_cache["names"])
        if _cache["key"] != key:
            values = set(_registry)
            names = [n for n in os.environ if n in SECRET_ENV or _SECRET_NAME.search(n)]
            for name in names:
                value = os.environ[name]
                if name in SECRET_ENV or len(value) >= 8:
                    values.add(value)
            _cache["names"] = tuple(sorted(set(names) | set(SECRET_ENV)))
            _cache["key"] = _env_key(_cache["names"])
            _cache["values"] = sorted((v for v in values if v and len(v) >= MIN_LEN), key=len, reverse=True)
        known = _cache["values"]
    if extra:
        known = sorted({*known, *(v for v in extra if v and len(v) >= MIN_LEN)}, key=len, reverse=True)
    return known


class Redactor:
    """redact() with the secret list read once: for hot loops (one list per window, not one per text)."""

    def __init__(self, extra: tuple[str, ...] = ()) -> None:
        self.known = tuple(_known_values(extra))
        # no secret holds a line break: redacting each line of a text apart gives what redacting it whole gives
        # (the URL and signature patterns never match across one), so cached lines may be redacted on their own
        self.line_wise = not any("\n" in value for value in self.known)

    def __call__(self, text: str) -> str:
        if not isinstance(text, str):
            text = str(text)
        for value in self.known:
            if value in text:
                text = text.replace(value, MASK)
        if URL_CREDENTIALS_PROBE.search(text):
            text = _URL_CREDENTIALS.sub(r"\g<scheme>****:****@", text)
        return _SIG.sub(r"\g<k>****", text) if "=" in text and ("?" in text or "&" in text) else text


def redact(text: str, extra: tuple[str, ...] = ()) -> str:
    """Replace known secret values, URL credentials and signature parameters with ****."""
    return Redactor(extra)(text)


def redact_value(obj):
    """redact() every string inside dicts, lists and tuples (artifact tables, message payloads)."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {k: redact_value(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(redact_value(v) for v in obj)
    return obj


class RedactingFilter(logging.Filter):
    """Put on a handler: the record's message and exception text are redacted before any formatter sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what there is
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactingFilter()


def install_redaction() -> int:
    """Add the redacting filter to every handler of every logger that exists now (Prefect's API log handler
    and console handlers included). Idempotent; returns how many handlers were newly covered."""
    loggers = [logging.getLogger()] + [lg for lg in logging.root.manager.loggerDict.values()
                                       if isinstance(lg, logging.Logger)]
    added = 0
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(_FILTER)
                added += 1
    return added
