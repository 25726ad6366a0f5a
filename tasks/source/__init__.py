"""Sources: where a window's error logs come from (Elasticsearch, or NDJSON files)."""

from __future__ import annotations

from typing import Protocol

from blocks.settings import Settings
from core.errors import ConfigError
from tasks.models import LogEvent, SourceStats, Window


class LogSource(Protocol):
    def read_window(self, window: Window, stats: SourceStats): ...  # -> Iterator[LogEvent]
    def check(self) -> None: ...
    def describe(self) -> str: ...


def open_source(settings: Settings, input_paths: list[str] | None) -> LogSource:
    """Files when --input is given, else Elasticsearch when configured, else a clear error."""
    if input_paths:
        from tasks.source.files import FileSource

        return FileSource(list(input_paths), settings.elasticsearch.fields)
    if settings.elasticsearch.configured:
        from tasks.source.elasticsearch import ElasticsearchSource

        return ElasticsearchSource(settings.elasticsearch)
    raise ConfigError("no log source: set ES_HOST (and ES_INDEX) to read Elasticsearch, or pass --input FILE.ndjson")


__all__ = ["LogEvent", "LogSource", "open_source"]
