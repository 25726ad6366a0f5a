"""NDJSON log files (optionally gzipped), for local runs, the demo and evaluation.

The files are scanned once per run: each line's timestamp is read and lines are bucketed per window by byte
offset, so a backfill of 96 windows reads each file sequentially twice (index, then per-window reads of only
the lines that belong to it) instead of 96 times. Memory: one (offset) integer per event line.
"""

from __future__ import annotations

import gzip
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import orjson

from ailog.errors import AilogError
from tasks.models import LogEvent, SourceStats, Window
from tasks.source.documents import get_field, parse_timestamp, to_event

BUCKET = timedelta(minutes=1)


class FileSource:
    """Reads windows from NDJSON files; bad lines are counted in the window their timestamp belongs to."""

    def __init__(self, paths: list[str], fields: dict[str, str]) -> None:
        self.paths = [Path(p) for p in paths]
        self.fields = fields
        self._index: dict[datetime, list[tuple[int, int, int]]] | None = None  # minute -> (file, offset, length)
        self._undated: list[tuple[int, int, int, str]] = []  # lines without a usable timestamp

    def check(self) -> None:
        for p in self.paths:
            if not p.is_file():
                raise AilogError(f"input file {p} does not exist or is not a file")
            try:
                with _open(p) as fh:
                    fh.read(1)
            except (OSError, gzip.BadGzipFile) as exc:
                raise AilogError(f"input file {p} cannot be read ({exc})") from None

    def describe(self) -> str:
        return f"{len(self.paths)} NDJSON file(s): " + ", ".join(p.name for p in self.paths[:5])

    def _build_index(self) -> None:
        index: dict[datetime, list[tuple[int, int, int]]] = defaultdict(list)
        ts_field = self.fields["timestamp"]
        for file_no, path in enumerate(self.paths):
            offset = 0
            with _open(path) as fh:
                for raw in fh:
                    length = len(raw)
                    ts = None
                    try:
                        doc = orjson.loads(raw)
                        ts = parse_timestamp(get_field(doc, ts_field)) if isinstance(doc, dict) else None
                    except orjson.JSONDecodeError:
                        ts = _timestamp_prefix(raw)
                    if ts is not None:
                        index[ts.replace(second=0, microsecond=0)].append((file_no, offset, length))
                    elif raw.strip():
                        self._undated.append((file_no, offset, length, "undated"))
                    offset += length
        self._index = index

    def read_window(self, window: Window, stats: SourceStats) -> Iterator[LogEvent]:
        if self._index is None:
            self._build_index()
        assert self._index is not None
        wanted: list[tuple[int, int, int]] = []
        minute = window.start.replace(second=0, microsecond=0)
        while minute < window.end:
            wanted.extend(self._index.get(minute, ()))
            minute += BUCKET
        wanted.sort()
        for file_no, group in _by_file(wanted):
            with _open(self.paths[file_no]) as fh:
                for offset, length in group:
                    fh.seek(offset)
                    raw = fh.read(length)
                    event = _decode(raw, self.fields, stats)
                    if event is not None and window.start <= event.timestamp < window.end:
                        stats.events_read += 1
                        yield event

    def undated_lines(self) -> int:
        """Lines no window can claim (no parsable timestamp at all); reported by the backfill."""
        if self._index is None:
            self._build_index()
        return len(self._undated)


def _decode(raw: bytes, fields: dict[str, str], stats: SourceStats) -> LogEvent | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        stats.reject("invalid_utf8", raw[:200].decode("utf-8", "replace"))
        return None
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        stats.reject("not_json", text[:200])
        return None
    return to_event(doc, fields, stats)


def _timestamp_prefix(raw: bytes) -> datetime | None:
    """For a line that is not valid JSON (e.g. invalid UTF-8 inside), find its window from the timestamp text."""
    marker = raw.find(b'"@timestamp"')
    if marker < 0:
        return None
    start = raw.find(b'"', raw.find(b":", marker) + 1)
    end = raw.find(b'"', start + 1)
    if start < 0 or end < 0:
        return None
    return parse_timestamp(raw[start + 1:end].decode("ascii", "replace"))


def _by_file(entries: list[tuple[int, int, int]]):
    current, group = None, []
    for file_no, offset, length in entries:
        if file_no != current and group:
            yield current, group
            group = []
        current = file_no
        group.append((offset, length))
    if group:
        yield current, group


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
