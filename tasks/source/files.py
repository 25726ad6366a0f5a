"""NDJSON log files (optionally gzipped), for local runs, the demo and evaluation.

Each file is scanned once per run to learn which byte ranges hold which minute (from the leading
`"@timestamp"` when lines start with it, without parsing them); consecutive lines of the same
minute form one range, so a time-ordered file (the usual export) costs one entry per minute, not per line.
Windows are then read from handles kept open for the whole run: asked in time order, every file is read
forward once more, so a backfill of 96 windows reads each file sequentially twice instead of 96 times. A
gzipped file cannot seek backwards cheaply (it re-decompresses from the start): when its lines are not in time
order it is decompressed once into a temporary file that is seeked instead.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import orjson

from core.errors import AilogError
from tasks.models import LogEvent, SourceStats, Window
from tasks.source.documents import get_field, parse_json, parse_timestamp, to_event

BUCKET = timedelta(minutes=1)


class FileSource:
    """Reads windows from NDJSON files; bad lines are counted in the window their timestamp belongs to."""

    def __init__(self, paths: list[str], fields: dict[str, str]) -> None:
        self.paths = [Path(p) for p in paths]
        self.fields = fields
        self._index: dict[datetime, list[tuple[int, int, int]]] | None = None  # minute -> (file, start, end) ranges
        self._undated: list[tuple[int, int, int, str]] = []  # lines without a usable timestamp
        self._handles: dict[int, object] = {}
        self._readable: dict[int, Path] = {}  # file number -> the path that is seeked (a temporary copy for gz)
        self._spool_dir: str | None = None

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
            run_minute, run_start = None, 0
            ordered, last_minute = True, None
            with _open(path) as fh:
                for raw in fh:
                    length = len(raw)
                    ts = _leading_timestamp(raw) if ts_field == "@timestamp" else None
                    if ts is None:
                        try:
                            doc = orjson.loads(raw)
                            ts = parse_timestamp(get_field(doc, ts_field)) if isinstance(doc, dict) else None
                        except orjson.JSONDecodeError:
                            ts = _timestamp_prefix(raw)
                    minute = ts.replace(second=0, microsecond=0) if ts is not None else None
                    if minute != run_minute or minute is None:
                        if run_minute is not None:
                            index[run_minute].append((file_no, run_start, offset))
                        run_minute, run_start = minute, offset
                    if minute is not None:
                        if last_minute is not None and minute < last_minute:
                            ordered = False
                        last_minute = minute
                    elif raw.strip():
                        self._undated.append((file_no, offset, length, "undated"))
                    offset += length
            if run_minute is not None:
                index[run_minute].append((file_no, run_start, offset))
            self._readable[file_no] = path if ordered or path.suffix != ".gz" else self._spool(path)
        self._index = index

    def _spool(self, path: Path) -> Path:
        """Decompress an out-of-order gzip file once, so windows can seek in it without re-decompressing."""
        if self._spool_dir is None:
            self._spool_dir = tempfile.mkdtemp(prefix="ailog-input-")
        target = Path(self._spool_dir) / f"{len(os.listdir(self._spool_dir))}-{path.stem}"
        with gzip.open(path, "rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        return target

    def _handle(self, file_no: int):
        fh = self._handles.get(file_no)
        if fh is None:
            fh = self._handles[file_no] = _open(self._readable[file_no])
        return fh

    def read_window(self, window: Window, stats: SourceStats) -> Iterator[LogEvent]:
        if self._index is None:
            self._build_index()
        assert self._index is not None
        wanted: list[tuple[int, int, int]] = []
        minute = window.start.replace(second=0, microsecond=0)
        while minute < window.end:
            wanted.extend(self._index.get(minute, ()))
            minute += BUCKET
        for file_no, start, end in _coalesce(sorted(wanted)):
            fh = self._handle(file_no)
            fh.seek(start)
            position = start
            while position < end:
                raw = fh.readline()
                if not raw:
                    break
                position += len(raw)
                event = _decode(raw, self.fields, stats)
                if event is not None and window.start <= event.timestamp < window.end:
                    stats.events_read += 1
                    yield event

    def undated_lines(self) -> int:
        """Lines no window can claim (no parsable timestamp at all); reported by the backfill."""
        if self._index is None:
            self._build_index()
        return len(self._undated)

    def close(self) -> None:
        """Close the open handles and remove decompressed copies (also safe to call twice)."""
        for fh in self._handles.values():
            fh.close()
        self._handles.clear()
        if self._spool_dir is not None:
            shutil.rmtree(self._spool_dir, ignore_errors=True)
            self._spool_dir = None
            self._index = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: S110 - interpreter shutdown
            pass


def _coalesce(ranges: list[tuple[int, int, int]]) -> Iterator[tuple[int, int, int]]:
    """Adjacent byte ranges of one file become one sequential read."""
    current: list[int] | None = None
    for file_no, start, end in ranges:
        if current is not None and current[0] == file_no and current[2] == start:
            current[2] = end
            continue
        if current is not None:
            yield current[0], current[1], current[2]
        current = [file_no, start, end]
    if current is not None:
        yield current[0], current[1], current[2]


def _decode(raw: bytes, fields: dict[str, str], stats: SourceStats) -> LogEvent | None:
    try:
        doc = parse_json(raw)
    except ValueError:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            stats.reject("invalid_utf8", raw[:200].decode("utf-8", "replace"))
            return None
        stats.reject("not_json", text[:200])
        return None
    return to_event(doc, fields, stats)


def _leading_timestamp(raw: bytes) -> datetime | None:
    """The index pass without parsing the line: `{"@timestamp":"…"` first and only once (as exporters and
    ECS loggers write it) is unambiguously the document's own timestamp. Anything else is parsed in full."""
    if not raw.startswith(b'{"@timestamp":"') or raw.count(b'"@timestamp"') != 1:
        return None
    end = raw.find(b'"', 15)
    if end < 0 or end > 80:
        return None
    return parse_timestamp(raw[15:end].decode("ascii", "replace"))


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


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
