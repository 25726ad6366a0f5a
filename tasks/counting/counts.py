"""Aggregate a window's grouped events in memory.

Memory is bounded by the window's distinct (problem, app, minute) keys and field values, not by its events.
Samples are chosen deterministically (the earliest event, ties broken by text) so that re-running a window
stores the same rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from tasks.models import LogEvent, Window

# the field values peaks are explained by (tasks.detection.explain); a problem's error type is in its sample
DIMENSIONS = ("pod", "host", "version", "namespace")
MAX_SAMPLE_CHARS = 4000


@dataclass(slots=True)
class ProblemSample:
    first_ts: datetime
    last_ts: datetime
    sample_message: str
    sample_trace_id: str | None
    error_type: str | None


@dataclass
class WindowCounts:
    window: Window
    minutes: Counter = field(default_factory=Counter)  # (problem_id, app, minute) -> count
    dimensions: Counter = field(default_factory=Counter)  # (problem_id, app, dimension, value) -> count
    samples: dict[str, ProblemSample] = field(default_factory=dict)
    templates: dict[str, str] = field(default_factory=dict)
    events: int = 0

    @property
    def problem_ids(self) -> set[str]:
        return set(self.samples)

    def per_problem(self) -> Counter:
        totals: Counter = Counter()
        for (problem_id, _app, _minute), n in self.minutes.items():
            totals[problem_id] += n
        return totals

    def per_problem_app(self) -> Counter:
        totals: Counter = Counter()
        for (problem_id, app, _minute), n in self.minutes.items():
            totals[(problem_id, app)] += n
        return totals

    def apps_per_problem(self) -> dict[str, set[str]]:
        apps: dict[str, set[str]] = {}
        for problem_id, app, _minute in self.minutes:
            apps.setdefault(problem_id, set()).add(app)
        return apps


def count_events(grouped: Iterable[tuple[LogEvent, str, str]], window: Window) -> WindowCounts:
    """Count ``(event, problem_id, template)`` triples of one window at 1-minute resolution.

    The per-event work is kept to dictionary updates: a sample's text (message + stack trace) is only built
    when the event could replace the problem's sample (it is not later than the current one).
    """
    counts = WindowCounts(window=window)
    minutes, dimensions, samples, templates = counts.minutes, counts.dimensions, counts.samples, counts.templates
    combinations: dict[tuple, int] = {}  # (problem_id, app, *the DIMENSIONS' values) -> count
    # one object per minute shared by every key of that minute: the window is pickled to the process that stores
    # it (tasks.read_ahead), and pickle writes a shared object once, not once per key (about 40 % of the dump)
    shared_minutes: dict[datetime, datetime] = {}
    events = 0
    for event, problem_id, template in grouped:
        ts = event.timestamp
        minute = ts.replace(second=0, microsecond=0)
        minute = shared_minutes.setdefault(minute, minute)
        app = event.app or "unknown"
        key = (problem_id, app, minute)
        minutes[key] = minutes.get(key, 0) + 1
        events += 1
        if problem_id not in templates:
            templates[problem_id] = template
        # one count per combination of field values; split into one count per value once per combination
        ckey = (problem_id, app, event.pod, event.host, event.version, event.namespace)
        combinations[ckey] = combinations.get(ckey, 0) + 1
        sample = samples.get(problem_id)
        if sample is None:
            message = event.message if not event.stack_trace else f"{event.message}\n{event.stack_trace}"
            samples[problem_id] = ProblemSample(ts, ts, message[:MAX_SAMPLE_CHARS], event.trace_id, event.error_type)
            continue
        if ts <= sample.first_ts:
            message = event.message if not event.stack_trace else f"{event.message}\n{event.stack_trace}"
            if (ts, message) < (sample.first_ts, sample.sample_message):
                sample.first_ts = ts
                sample.sample_message = message[:MAX_SAMPLE_CHARS]
                sample.sample_trace_id = event.trace_id
                sample.error_type = event.error_type or sample.error_type
        if ts > sample.last_ts:
            sample.last_ts = ts
    for (problem_id, app, *values), n in combinations.items():
        for dim, value in zip(DIMENSIONS, values, strict=True):
            if value:
                dkey = (problem_id, app, dim, str(value)[:200])
                dimensions[dkey] = dimensions.get(dkey, 0) + n
    counts.events = events
    return counts
