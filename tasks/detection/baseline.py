"""Baselines per problem and application from stored history.

Expected count for a window = a robust level of the same time of day (±1 window) on earlier days — and the
same weekday once three weeks of history exist — from windows that held no peak, so incidents never inflate
their own baseline. Zero-filled (a processed window without the problem counts as 0), so sparse problems get a
small rate instead of a median of 0. With too little history there is no baseline (warm-up), never a guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import repeat
from operator import mul

SLOT = timedelta(minutes=15)
MIN_RATE = 0.05  # events per window: the floor for never/rarely seen problems


@dataclass
class Baseline:
    expected: float  # events expected in the window
    dispersion: float  # φ in var = μ + φ·μ² (over-dispersion of the series)
    samples: int  # how many past windows support it
    seasonal: bool

    def z_score(self, observed: float, scale: float = 1.0) -> float:
        """How many standard deviations above expectation (negative-binomial variance)."""
        mu = max(self.expected * scale, MIN_RATE * scale)
        var = mu + self.dispersion * mu * mu
        return (observed - mu) / math.sqrt(var)


def winsorized_sums(ordered: list[int], upper: float) -> tuple[int, int]:
    """Sum and sum of squares of ``ordered`` (ascending) with the values above its ``upper`` quantile set to it:
    an incident that slipped past the peak exclusion cannot inflate a baseline, while the skew of ordinary
    counts is kept (dropping the top would bias low). Fewer than five values are kept as they are.
    From the sorted values, so one sort serves every statistic of a series; the few capped values are taken
    off whole sums (integers: exact) rather than the kept ones copied."""
    if not ordered:
        return 0, 0
    top, cap = _capped(ordered, upper)
    n = len(top)
    return sum(ordered) - sum(top) + cap * n, sum(map(mul, ordered, ordered)) - sum(map(mul, top, top)) + cap * cap * n


def _capped(ordered: list[int], upper: float) -> tuple[list[int], int]:
    """The values above the ``upper`` quantile of ascending values, and the value they are set to."""
    n = len(ordered)
    i = n - 1 if n < 5 else min(n - 1, int(n * upper))
    return ordered[i + 1:], ordered[i]


def trimmed_mean(ordered: list[int]) -> float:
    """The winsorized mean of ascending values (0 for none): `winsorized_sums`' sum alone."""
    if not ordered:
        return 0.0
    top, cap = _capped(ordered, 0.9)
    return (sum(ordered) - sum(top) + cap * len(top)) / len(ordered)


def estimate_dispersion(ordered: list[int]) -> float:
    """Method-of-moments φ (var = μ + φμ²) of the winsorized ascending values, clamped to a sane range; error
    counts are over-dispersed, so the floor is well above Poisson."""
    n = len(ordered)
    if n < 8:
        return 0.5
    total, squares = winsorized_sums(ordered, 0.98)
    mu = total / n
    if mu <= 0:
        return 0.5
    var = (n * squares - total * total) / (n * (n - 1))  # counts are integers: one rounding, no cancellation
    return min(max((var - mu) / (mu * mu), 0.25), 2.0)


LEVEL_SHIFT_WINDOWS = 12  # three hours at a new level (e.g. after a deploy): that level is the baseline now
LEVEL_SHIFT_FACTOR = 3.0


def level_shift(processed: list[datetime], series: dict[datetime, int], usual: Baseline) -> Baseline | None:
    """A problem that stayed far above its usual level in nearly every window of the last hours has a new
    level (a deploy that logs more, a new customer): it was told once, and from now on that level is its
    baseline, so it is not alerted again day after day. A shorter incident never qualifies."""
    recent = processed[-LEVEL_SHIFT_WINDOWS:]
    if len(recent) < LEVEL_SHIFT_WINDOWS:
        return None
    values = sorted(map(series.get, recent, repeat(0)))
    if values[LEVEL_SHIFT_WINDOWS // 4] < LEVEL_SHIFT_FACTOR * usual.expected:  # nine in twelve windows high
        return None
    return Baseline(expected=max(trimmed_mean(values), MIN_RATE), dispersion=estimate_dispersion(values),
                    samples=len(values), seasonal=False)


@dataclass
class SlotFrame:
    """What every (problem, app) of one window shares: the processed windows at the same time of day (±1
    window) and those of them on the same weekday, found once per window instead of once per pair."""

    processed: list[datetime]
    same_slot: list[datetime]
    weekday: list[datetime]


def slot_frame(window_start: datetime, processed: list[datetime]) -> SlotFrame:
    tod = window_start.hour * 60 + window_start.minute
    same_slot, weekday = [], []
    for w in processed:
        delta = abs((w.hour * 60 + w.minute) - tod)
        if min(delta, 1440 - delta) <= 15:
            same_slot.append(w)
            if w.weekday() == window_start.weekday():
                weekday.append(w)
    return SlotFrame(processed, same_slot, weekday)


def compute_baseline(window_start: datetime, processed: list[datetime], series: dict[datetime, int],
                     exclude: set[datetime], *, min_days: int = 3, min_windows: int = 24,
                     frame: SlotFrame | None = None) -> Baseline | None:
    """The expected count of one (problem, app) in the window starting at ``window_start``; ``frame`` is
    `slot_frame(window_start, processed)` when the caller judges many pairs of one window."""
    if frame is None or frame.processed is not processed:
        frame = slot_frame(window_start, processed)
    if exclude:
        usable = [w for w in processed if w not in exclude]
        slot_windows = [w for w in frame.same_slot if w not in exclude]
        weekday_windows = [w for w in frame.weekday if w not in exclude]
    else:
        usable, slot_windows, weekday_windows = processed, frame.same_slot, frame.weekday
    if len(usable) < min_windows:
        return None
    days_back = (window_start - usable[0]).days
    get = series.get
    recent = list(map(get, usable[-96 * 2:], repeat(0)))  # the last two days (history.RECENT_DAYS)
    ordered_recent = sorted(recent)
    dispersion = estimate_dispersion(ordered_recent)
    if days_back >= min_days and len(slot_windows) >= 3 * min_days:
        expected = trimmed_mean(sorted(map(get, slot_windows[-3 * 14:], repeat(0))))
        if days_back >= 21 and len(weekday_windows) >= 9:
            expected = max(expected, trimmed_mean(sorted(map(get, weekday_windows[-9:], repeat(0)))))
        # a level shift in the last day (e.g. a new release that logs more) lifts the floor
        expected = max(expected, 0.5 * trimmed_mean(sorted(recent[-96:])))
        usual = Baseline(expected=max(expected, MIN_RATE), dispersion=dispersion, samples=len(slot_windows),
                         seasonal=True)
    else:
        usual = Baseline(expected=max(trimmed_mean(ordered_recent), MIN_RATE), dispersion=dispersion,
                         samples=len(recent), seasonal=False)
    return level_shift(processed, series, usual) or usual
