"""Aggregate a window's grouped events in memory.

Memory is bounded by the window's distinct (problem, app) pairs and field values, not by its events.
Samples are chosen deterministically (the earliest event, ties broken by text) so that re-running a window
stores the same rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tasks.models import LogEvent, Window

# the field values peaks are explained by (tasks.detection.explain); a problem's error type is in its sample
DIMENSIONS = ("pod", "host", "version", "namespace")
MAX_SAMPLE_CHARS = 4000
MAX_VALUE_CHARS = 200  # a field value longer than this is stored cut


@dataclass(slots=True)
class ProblemSample:
    first_ts: datetime
    last_ts: datetime
    sample_message: str
    sample_trace_id: str | None
    error_type: str | None


@dataclass
class WindowCounts:
    """A window's counts in the shapes it is stored in (migration 0014) and judged from: per (problem, app), the
    events of each minute (position i = minute i of the window, up to its last minute with events) and the
    field values behind them, ``{dimension: {value: n}}``. The grouping process sends it to the storing one
    (tasks.read_ahead): a list of small ints per pair pickles several times faster than a count per
    (problem, app, minute) key."""

    window: Window
    minutes: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    dimensions: dict[tuple[str, str], dict[str, dict[str, int]]] = field(default_factory=dict)
    samples: dict[str, ProblemSample] = field(default_factory=dict)
    templates: dict[str, str] = field(default_factory=dict)
    events: int = 0
    # ``dimensions`` as the text the store writes, when rendered where the counting ran (tasks.read_ahead): a dict
    # of strings crosses to the storing process several times cheaper than the nested dicts it replaces
    rendered_dimensions: dict[tuple[str, str], str] | None = None

    @property
    def problem_ids(self) -> set[str]:
        return set(self.samples)

    def per_problem(self) -> Counter:
        totals: Counter = Counter()
        for (problem_id, _app), slots in self.minutes.items():
            totals[problem_id] += sum(slots)
        return totals

    def per_problem_app(self) -> dict[tuple[str, str], int]:
        return {key: sum(slots) for key, slots in self.minutes.items()}

    def apps_per_problem(self) -> dict[str, set[str]]:
        apps: dict[str, set[str]] = {}
        for problem_id, app in self.minutes:
            apps.setdefault(problem_id, set()).add(app)
        return apps

    def minute_rows(self) -> dict[tuple[str, str, datetime], int]:
        """``(problem, app, minute) -> n`` for every minute with events: the rows of the `window_counts` view."""
        start = self.window.start
        return {(p, a, start + timedelta(minutes=i)): n for (p, a), slots in self.minutes.items()
                for i, n in enumerate(slots) if n}

    def dimension_rows(self) -> dict[tuple[str, str, str, str], int]:
        """``(problem, app, dimension, value) -> n``: the rows of the `window_dimension_rows` view."""
        if self.rendered_dimensions is not None:
            raise ValueError("the field values were rendered for the store: read them back from it")
        return {(p, a, d, v): n for (p, a), dims in self.dimensions.items() for d, values in dims.items()
                for v, n in values.items()}


def count_events(grouped: Iterable[tuple[LogEvent, str, str]], window: Window) -> WindowCounts:
    """Count ``(event, problem_id, template)`` triples of one window at 1-minute resolution.

    The per-event work is kept to dictionary updates on the (problem, app)'s own record — its minutes and one
    count per field value — and a sample's text (message + stack trace) is only built when the event could
    replace the problem's sample (it is not later than the current one). Counting values per record, not per
    combination of values, is what the data asks for: in the scale bench's day seven events in ten carry a
    combination (pod, host, version, namespace) of their own. An event whose own timestamp lies outside the
    window (the source gave it for this window: a clock or format its range query read otherwise) counts in the
    window's first or last minute (`Window.minute_slot`), and its time in the sample is the window's first or
    last instant.
    """
    counts = WindowCounts(window=window)
    minutes, samples, templates = counts.minutes, counts.samples, counts.templates
    # (problem_id, app) -> its minutes and a {value: n} per DIMENSIONS entry, in that order
    records: dict[tuple[str, str], tuple[list[int], dict, dict, dict, dict]] = {}
    start = window.start
    span = max(int((window.end - start).total_seconds()) // 60, 1)
    last = span - 1
    events = 0
    for event, problem_id, template in grouped:
        ts = event.timestamp
        app = event.app or "unknown"
        key = (problem_id, app)
        record = records.get(key)
        if record is None:
            record = records[key] = ([0] * span, {}, {}, {}, {})
            minutes[key] = record[0]
            if problem_id not in templates:
                templates[problem_id] = template
        slots, pods, hosts, versions, namespaces = record
        since = ts - start
        i = since.seconds // 60 if since.days == 0 else (0 if since.days < 0 else last)
        slots[i if i < last else last] += 1
        events += 1
        if value := event.pod:
            pods[value] = pods.get(value, 0) + 1
        if value := event.host:
            hosts[value] = hosts.get(value, 0) + 1
        if value := event.version:
            versions[value] = versions.get(value, 0) + 1
        if value := event.namespace:
            namespaces[value] = namespaces.get(value, 0) + 1
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
    for slots in minutes.values():  # stored up to the last minute with events
        while not slots[-1]:
            slots.pop()
    # the sample's times lie in the window, as its counts do (its earliest and latest window then hold a problem's
    # first and last event: migration 0016)
    final = window.end - timedelta(microseconds=1)
    for sample in samples.values():
        if sample.first_ts < start or sample.last_ts > final:
            sample.first_ts = min(max(sample.first_ts, start), final)
            sample.last_ts = min(max(sample.last_ts, start), final)
    dimensions = counts.dimensions
    for key, (_, *values) in records.items():
        per_app = {dim: _stored_values(counted) for dim, counted in zip(DIMENSIONS, values, strict=True) if counted}
        if per_app:
            dimensions[key] = per_app
    counts.events = events
    return counts


def _stored_values(counted: dict) -> dict[str, int]:
    """A dimension's counts as stored: values as text of at most 200 characters (values equal once cut add up)."""
    if all(type(value) is str and len(value) <= MAX_VALUE_CHARS for value in counted):
        return counted
    stored: dict[str, int] = {}
    for value, n in counted.items():
        value = str(value)[:MAX_VALUE_CHARS]
        stored[value] = stored.get(value, 0) + n
    return stored
