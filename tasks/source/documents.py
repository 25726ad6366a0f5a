"""One raw log document (ES `_source` or an NDJSON line) → a LogEvent, or a counted rejection.

Field names come from configuration (ECS by default); both nested (`{"log": {"level": ..}}`) and dotted
(`"log.level"`) keys are understood. Bad documents never crash a run and never vanish: they are counted by reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from tasks.models import LogEvent, SourceStats

MAX_MESSAGE_BYTES = 1_000_000  # larger messages are counted as bad (message_too_large), not analysed
OPTIONAL = ("level", "app", "namespace", "pod", "host", "version", "error_type", "stack_trace", "trace_id")


def get_field(doc: dict, name: str) -> Any:
    """Value of a dotted field name, looked up dotted first, then nested, then mixed."""
    if name in doc:
        return doc[name]
    parts, keys = _segments(name)
    if len(parts) == 1:
        return None
    node: Any = doc
    i = 0
    while i < len(parts):
        if not isinstance(node, dict):
            return None
        # try the longest dotted key first (e.g. {"kubernetes": {"pod.name": ...}})
        for key, j in keys[i]:
            if key in node:
                node = node[key]
                i = j
                break
        else:
            return None
    return node


@lru_cache(maxsize=1024)
def _segments(name: str) -> tuple[list[str], list[list[tuple[str, int]]]]:
    """The dotted keys to try from each position, longest first (computed once per field name)."""
    parts = name.split(".")
    return parts, [[(".".join(parts[i:j]), j) for j in range(len(parts), i, -1)] for i in range(len(parts))]


def parse_timestamp(value: Any) -> datetime | None:
    """ISO-8601 (Z or offset, any fraction, nanoseconds) or epoch milliseconds → aware UTC."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value / 1000.0, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or len(value) > 64:
        return None
    if value[-1:] == "Z":  # the usual form, e.g. 2026-11-20T10:00:00.123Z: parsed as is (3.11 truncates nanoseconds)
        try:
            return datetime.fromisoformat(value).astimezone(UTC)
        except ValueError:
            pass
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if "." in text:  # Python takes at most 6 fraction digits: trim nanoseconds
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        tz = rest[len(digits):]
        text = f"{head}.{digits[:6]}{tz}"
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        if text.isdigit():
            return parse_timestamp(int(text))
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def to_event(doc: Any, fields: dict[str, str], stats: SourceStats) -> LogEvent | None:
    """Normalise a document; on a bad one, record why in ``stats`` and return None."""
    if not isinstance(doc, dict):
        stats.reject("not_an_object", repr(doc)[:200])
        return None
    raw_ts = get_field(doc, fields["timestamp"])
    if raw_ts is None:
        stats.reject("no_timestamp", _preview(doc))
        return None
    ts = parse_timestamp(raw_ts)
    if ts is None:
        stats.reject("bad_timestamp", str(raw_ts)[:200])
        return None
    message = get_field(doc, fields["message"])
    if message is None or message == "":
        message = get_field(doc, fields["error_message"])
    if message is None or message == "":
        stats.reject("no_message", _preview(doc))
        return None
    if not isinstance(message, str):
        if isinstance(message, list) and message and all(isinstance(m, str) for m in message):
            message = "\n".join(message)  # ES sometimes stores multi-valued message fields
        else:
            stats.reject("wrong_type_message", repr(message)[:200])
            return None
    if len(message) > MAX_MESSAGE_BYTES // 4 and len(message.encode("utf-8", "replace")) > MAX_MESSAGE_BYTES:
        stats.reject("message_too_large", message[:200])
        return None
    values: dict[str, str | None] = {}
    for key in OPTIONAL:
        value = get_field(doc, fields[key])
        if value is None or isinstance(value, str):
            values[key] = value or None
        elif isinstance(value, int | float) and not isinstance(value, bool):
            values[key] = str(value)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            values[key] = "\n".join(value) if key == "stack_trace" else (value[0] if value else None)
        else:
            stats.reject(f"wrong_type_{key}", repr(value)[:200])
            return None
    stack = values.pop("stack_trace")
    if stack and len(stack) > MAX_MESSAGE_BYTES:
        stack = stack[:MAX_MESSAGE_BYTES]
    app = values.pop("app") or "unknown"
    return LogEvent(timestamp=ts, message=message, app=app, stack_trace=stack, **values)


def _preview(doc: dict) -> str:
    return str({k: doc[k] for k in list(doc)[:4]})[:200]
