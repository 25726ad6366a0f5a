"""Events between the read-ahead processes: a batch as one JSON array, each repeated value sent once.

The feeding process sends every event of a backfill to the grouping one (tasks.read_ahead). Pickling a batch of
tuples cost about 2.1 µs an event, half of it for the timestamps (a datetime pickles through its `__reduce__`);
orjson writes the rows, timestamps as ISO 8601, in a fraction of that, and `datetime.fromisoformat` reads them
back exactly (microseconds and offset). Most of an event's text repeats: its app, level, namespace, pod, host,
version and error type, and its stack trace's frames (every line after the first) come from a few thousand
values a day, so each is sent once and then as its number in a table both ends keep — about 600 bytes of JSON an
event become about 185, and the values the grouping process counts are the same objects event after event. A
stack trace whose first line is ``<error type>: <message>`` (what Java's loggers write) sends that line as 1.
The table is bounded in characters: once over, the next batch starts a new one and says so. A batch orjson refuses
(a string it cannot encode) travels pickled instead, with the same contents.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from datetime import datetime
from typing import Final

import orjson

from tasks.models import LogEvent

ROWS: Final = b"J"  # first byte of a JSON batch; a pickle starts with its protocol opcode, 0x80
TABLE_CHARS: Final = 16 * 1024 * 1024  # characters of repeated values each end keeps before starting anew
SAME_HEAD: Final = 1  # a stack trace's first line that is "<error type>: <message>"


class EventEncoder:
    """The feeding process's side: `add` events, `encode` them as one message."""

    def __init__(self, table_chars: int = TABLE_CHARS) -> None:
        self._numbers: dict[str, int] = {}  # value -> its number in the table (0 stands for None)
        self._size = 0  # characters in the table
        self._limit = table_chars
        self._new: list[str] = []  # values numbered since the last batch, in number order
        self._rows: list[tuple] = []
        self._fresh = True  # the next batch starts a table (the first one does)

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, e: LogEvent) -> int:
        """Add an event to the batch; returns how many it holds now."""
        number = self._number
        trace = e.stack_trace
        head: str | int | None = trace
        tail = 0
        if trace:
            cut = trace.find("\n")
            if cut >= 0:
                head, tail = trace[:cut], number(trace[cut + 1:])
            if e.error_type and head == f"{e.error_type}: {e.message}":
                head = SAME_HEAD
        self._rows.append((e.timestamp, e.message, number(e.app), number(e.level), number(e.namespace),
                           number(e.pod), number(e.host), number(e.version), number(e.error_type), head, tail,
                           e.trace_id))
        return len(self._rows)

    def _number(self, value: str | None) -> int:
        if value is None:
            return 0
        number = self._numbers.get(value)
        if number is None:
            number = self._numbers[value] = len(self._numbers) + 1
            self._new.append(value)
            self._size += len(value)
        return number

    def encode(self) -> bytes:
        """The events added since the last call, and the values they numbered first, as one message."""
        batch = (self._fresh, self._new, self._rows)
        try:
            data = ROWS + orjson.dumps(batch)
        except TypeError:  # orjson.JSONEncodeError, e.g. a lone surrogate from a user's replacement text
            data = pickle.dumps(("events", batch), protocol=pickle.HIGHEST_PROTOCOL)
        self._new, self._rows, self._fresh = [], [], False
        if self._size > self._limit:  # the batch just encoded still used the full table; the next starts anew
            self._numbers.clear()
            self._size, self._fresh = 0, True
        return data


class EventDecoder:
    """The grouping process's side: the events of each message, in the order they were added."""

    def __init__(self) -> None:
        self._table: list[str | None] = [None]

    def decode(self, data: bytes) -> Iterator[LogEvent]:
        """The events of a JSON message (`ROWS` first)."""
        return self.events(orjson.loads(memoryview(data)[1:]), datetime.fromisoformat)

    def events(self, batch, parse=None) -> Iterator[LogEvent]:
        """The events of a decoded batch (``parse`` reads a JSON timestamp; a pickled one holds datetimes)."""
        fresh, new, rows = batch
        table = self._table
        if fresh:
            del table[1:]
        table.extend(new)
        for ts, message, app, level, namespace, pod, host, version, error_type, head, tail, trace_id in rows:
            error = table[error_type]
            if type(head) is int:  # SAME_HEAD
                head = f"{error}: {message}"
            yield LogEvent(parse(ts) if parse is not None else ts, message, table[app], table[level],
                           table[namespace], table[pod], table[host], table[version], error,
                           f"{head}\n{table[tail]}" if tail else head, trace_id)
