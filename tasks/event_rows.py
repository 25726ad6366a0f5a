"""Events between the read-ahead processes: rows of their fields, a batch as one JSON array.

The feeding process sends every event of a backfill to the grouping one (tasks.read_ahead). Pickling a batch of
tuples cost about 2.1 µs an event, half of it for the timestamps (a datetime pickles through its `__reduce__`);
orjson writes the same rows, timestamps as ISO 8601, in 0.6 µs, and `datetime.fromisoformat` reads them back
exactly (microseconds and offset). A batch orjson refuses (a string it cannot encode) travels pickled instead.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from dataclasses import fields
from datetime import datetime

import orjson

from tasks.models import LogEvent

EVENT_FIELDS = tuple(f.name for f in fields(LogEvent))
ROWS = b"J"  # first byte of a JSON batch; a pickle starts with its protocol opcode, 0x80


def event_row(e: LogEvent) -> tuple:
    """The event's fields in `EVENT_FIELDS` order (attribute by attribute: four times faster than attrgetter)."""
    return (e.timestamp, e.message, e.app, e.level, e.namespace, e.pod, e.host, e.version, e.error_type,
            e.stack_trace, e.trace_id)


def encode_events(rows: list[tuple]) -> bytes:
    """A batch as one message: JSON, or a pickle of ``("events", rows)`` when orjson refuses a value."""
    try:
        return ROWS + orjson.dumps(rows)
    except TypeError:  # orjson.JSONEncodeError, e.g. a lone surrogate from a user's replacement text
        return pickle.dumps(("events", rows), protocol=pickle.HIGHEST_PROTOCOL)


def decode_events(data: bytes) -> Iterator[list]:
    """The rows of a JSON batch, each a list of `EVENT_FIELDS` values with its timestamp a datetime again."""
    parse = datetime.fromisoformat
    for values in orjson.loads(memoryview(data)[1:]):
        values[0] = parse(values[0])
        yield values
