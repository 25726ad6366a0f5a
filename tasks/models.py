"""Data passed between the pipeline stages.

Plain dataclasses: every stage takes and returns these, so each stage can be tested
without Prefect, a database or a network.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

WINDOW_MINUTES = 15


@dataclass(slots=True)
class LogEvent:
    """One error log document, normalised from ECS (file or Elasticsearch)."""

    timestamp: datetime  # timezone-aware UTC
    message: str  # first line / main message (error.message when message is absent)
    app: str = "unknown"  # service.name
    level: str | None = None  # log.level
    namespace: str | None = None  # kubernetes.namespace
    pod: str | None = None  # kubernetes.pod.name
    host: str | None = None  # host.name
    version: str | None = None  # service.version
    error_type: str | None = None  # error.type
    stack_trace: str | None = None  # error.stack_trace
    trace_id: str | None = None  # trace.id


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open interval [start, end) of UTC time; regular windows are 15 minutes, aligned."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware (UTC)")
        if self.end <= self.start:
            raise ValueError(f"window end {self.end.isoformat()} is not after its start {self.start.isoformat()}")

    @classmethod
    def ending_at(cls, end: datetime, minutes: int = WINDOW_MINUTES) -> Window:
        return cls(end - timedelta(minutes=minutes), end)

    def minute_slot(self, minute: datetime) -> int:
        """The minute's position in the window, clamped to it: an event the source gave for this window whose
        own timestamp lies outside it (a clock or format its range query read otherwise) counts in the first
        or last minute, never in another window's."""
        span = int((self.end - self.start).total_seconds()) // 60
        return min(max(int((minute - self.start).total_seconds()) // 60, 0), max(span - 1, 0))

    @property
    def label(self) -> str:
        return f"{iso_z(self.start)}/{iso_z(self.end)}"


@dataclass(slots=True)
class SourceStats:
    """What a source read for one window: events accepted and bad documents by reason."""

    events_read: int = 0
    bad_documents: Counter[str] = field(default_factory=Counter)
    samples: dict[str, str] = field(default_factory=dict)  # reason -> one example (truncated, for the report)

    def reject(self, reason: str, example: str = "") -> None:
        self.bad_documents[reason] += 1
        if reason not in self.samples and example:
            self.samples[reason] = example[:200]

    @property
    def bad_total(self) -> int:
        return sum(self.bad_documents.values())


@dataclass(slots=True)
class Peak:
    """A detected rise of one problem in one application (or a cascade of many)."""

    peak_id: str
    problem_id: str
    app: str
    kind: str  # spike | burst | new | regression | cascade
    start: datetime
    end: datetime
    count: int
    baseline: float
    ratio: float
    severity: str  # critical | high | medium | low
    known: bool = False
    alerted: bool = False
    known_peak_id: str | None = None
    incident_id: str | None = None
    explanation: list[dict] = field(default_factory=list)  # [{"field": "pod", "value": "x", "share": 0.92}]
    reasons: list[str] = field(default_factory=list)  # why this severity, in words
    members: list[dict] = field(default_factory=list)  # cascades: the (problem, app) peaks they group


def utc(dt: datetime) -> datetime:
    """Return dt as an aware UTC datetime (naive input is taken as UTC)."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def iso_z(dt: datetime) -> str:
    """ISO-8601 UTC with a trailing Z, the only timestamp format the outputs use."""
    return utc(dt).isoformat().replace("+00:00", "Z")
