"""One raw log document (ES `_source` or an NDJSON line) → a LogEvent, or a counted rejection.

Field names come from configuration (ECS by default); both nested (`{"log": {"level": ..}}`) and dotted
(`"log.level"`) keys are understood. Bad documents never crash a run and never vanish: they are counted by reason.
"""

from __future__ import annotations

import json
import reprlib
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final

import orjson

from tasks.models import LogEvent, SourceStats
from tasks.text import clean_text, truncate

MAX_MESSAGE_CHARS = 100_000  # longer messages are cut with a marker and still analysed (never dropped)
MAX_TRACE_CHARS = 200_000  # the same for stack traces
MAX_FIELD_CHARS = 1_000  # app, pod, host, version …
# LogEvent's fields after its message, in its order (to_event fills them positionally)
OPTIONAL = ("app", "level", "namespace", "pod", "host", "version", "error_type", "stack_trace", "trace_id")
# their positions among an event's values (the timestamp and the message come first)
_APP: Final = 2 + OPTIONAL.index("app")
_STACK: Final = 2 + OPTIONAL.index("stack_trace")
# a short field's value (app, level, namespace, pod, host, version, error type) -> that value made safe (tasks.text):
# a day holds a few thousand of them, each in thousands of documents. Cleaned once, and the same string object
# every time, whose hash the events' encoding (tasks.event_rows) and counting then find already computed
_SHORT_VALUES: Final[dict[str, str]] = {}
MAX_SHORT_VALUES: Final = 20_000  # distinct values kept (then forgotten at once) ...
SHORT_VALUE_CHARS: Final = 200  # ... of at most this length: a few MB at most, whatever the documents hold
_PREVIEW = reprlib.Repr()  # bounded depth and size: deeply nested values cannot blow the stack
_PREVIEW.maxlevel, _PREVIEW.maxstring, _PREVIEW.maxother, _PREVIEW.maxdict, _PREVIEW.maxlist = 3, 160, 160, 6, 6


def parse_json(data: bytes | str) -> Any:
    """One JSON document, as both sources read it: orjson, and Python's reader for what orjson refuses but
    producers and Elasticsearch send — an escaped lone surrogate (`"\\ud83d"`), replaced later (tasks.text).
    Raises ValueError when neither can read it, nesting too deep for Python's reader included."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            return json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


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


@lru_cache(maxsize=1024)
def field_getter(name: str) -> Callable[[dict], Any]:
    """``get_field(doc, name)`` as one function per field name, unrolled for names of one to three segments
    (every ECS field the sources read): eleven fields per document make the general walk a per-event cost."""
    parts = name.split(".")
    if len(parts) == 1:
        return lambda doc: doc.get(name)
    if len(parts) == 2:
        a, b = parts

        def two(doc: dict) -> Any:
            if name in doc:
                return doc[name]
            node = doc.get(a)
            return node.get(b) if isinstance(node, dict) else None
        return two
    if len(parts) == 3:
        a, b, c = parts
        ab, bc = f"{a}.{b}", f"{b}.{c}"

        def three(doc: dict) -> Any:
            if name in doc:
                return doc[name]
            if ab in doc:
                node = doc[ab]
                return node.get(c) if isinstance(node, dict) else None
            node = doc.get(a)
            if not isinstance(node, dict):
                return None
            if bc in node:
                return node[bc]
            node = node.get(b)
            return node.get(c) if isinstance(node, dict) else None
        return three
    return lambda doc: get_field(doc, name)


def parse_timestamp(value: Any) -> datetime | None:
    """ISO-8601 (Z or offset, any fraction, nanoseconds) or an epoch number → aware UTC.

    Epoch numbers are read by magnitude: seconds below 1e11 (until the year 5138), milliseconds below 1e14,
    microseconds below 1e17, nanoseconds above — the units ECS producers actually emit."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        try:
            size = abs(value)
            scale = 1.0 if size < 1e11 else 1e3 if size < 1e14 else 1e6 if size < 1e17 else 1e9
            return datetime.fromtimestamp(value / scale, tz=UTC)
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
    if text.isascii() and text.isdigit():
        return parse_timestamp(int(text))
    if "." in text:  # Python takes at most 6 fraction digits: trim nanoseconds
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        tz = rest[len(digits):]
        text = f"{head}.{digits[:6]}{tz}"
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def to_event(doc: Any, fields: dict[str, str], stats: SourceStats) -> LogEvent | None:
    """Normalise a document; on a bad one, record why in ``stats`` and return None.

    Never raises on any JSON-like input: text is made safe to store and hash (tasks.text), huge messages are
    cut with a marker (and still grouped), numbers in text fields become text."""
    if not isinstance(doc, dict):
        stats.reject("not_an_object", _preview(doc))
        return None
    timestamp, message_of, error_message_of, optional = _plan(fields)
    raw_ts = timestamp(doc)
    if raw_ts is None:
        stats.reject("no_timestamp", _preview(doc))
        return None
    ts = parse_timestamp(raw_ts)
    if ts is None:
        stats.reject("bad_timestamp", _preview(raw_ts))
        return None
    message = message_of(doc)
    if message is None or message == "":
        message = error_message_of(doc)
    if message is None or message == "":
        stats.reject("no_message", _preview(doc))
        return None
    message = clean_text(message) if type(message) is str else _text(message, join="\n")
    if message is None:
        stats.reject("wrong_type_message", _preview(message_of(doc) or doc))
        return None
    values: list[Any] = [ts, truncate(message, MAX_MESSAGE_CHARS)]  # positional: no keyword dict per event
    for key, get in optional:
        value = get(doc)
        if value is None:
            values.append(None)
            continue
        if key == "stack_trace":
            text = clean_text(value) if type(value) is str else _text(value, join="\n")
        elif type(value) is str and len(value) <= SHORT_VALUE_CHARS and key != "trace_id":  # ids: new every time
            text = _SHORT_VALUES.get(value)
            if text is None:
                text = clean_text(value)
                if len(_SHORT_VALUES) >= MAX_SHORT_VALUES:
                    _SHORT_VALUES.clear()
                _SHORT_VALUES[value] = text
        else:
            text = clean_text(value) if type(value) is str else _text(value, join=None)
            if text and len(text) > MAX_FIELD_CHARS:
                text = text[:MAX_FIELD_CHARS]
        if text is None and value != []:
            stats.reject(f"wrong_type_{key}", _preview(value))
            return None
        values.append(text or None)
    if values[_STACK]:
        values[_STACK] = truncate(values[_STACK], MAX_TRACE_CHARS)
    if not values[_APP]:
        values[_APP] = "unknown"
    return LogEvent(*values)


_PLANS: dict[int, tuple[dict[str, str], tuple]] = {}


def _plan(fields: dict[str, str]) -> tuple:
    """The getters for one field mapping (the settings' own dict, looked up by identity, checked by value)."""
    entry = _PLANS.get(id(fields))
    if entry is None or entry[0] != fields:
        plan = (field_getter(fields["timestamp"]), field_getter(fields["message"]),
                field_getter(fields["error_message"]), tuple((key, field_getter(fields[key])) for key in OPTIONAL))
        entry = _PLANS[id(fields)] = (dict(fields), plan)
    return entry[1]


def _text(value: Any, *, join: str | None) -> str | None:
    """A text field's value as safe text: strings (cleaned), numbers (as text), lists of strings (joined with
    ``join``, or their first item); None for anything else."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value) if not isinstance(value, int) or value.bit_length() < 256 else None
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return clean_text(join.join(value) if join is not None else value[0])
    return None


def _preview(value: Any) -> str:
    """A short, safe description of a bad value for the report (bounded depth and length, never raises)."""
    try:
        text = _PREVIEW.repr(value)
    except (RecursionError, ValueError, TypeError):
        text = f"<{type(value).__name__}>"
    return clean_text(text[:200])
