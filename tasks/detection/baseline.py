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


def winsorize(values: list[float], upper: float = 0.9) -> list[float]:
    """Values above the `upper` quantile are set to it: an incident that slipped past the peak exclusion
    cannot inflate a baseline, while the skew of ordinary counts is kept (dropping the top would bias low)."""
    if len(values) < 5:
        return list(values)
    ordered = sorted(values)
    cap = ordered[min(len(ordered) - 1, int(len(ordered) * upper))]
    return [min(v, cap) for v in values]


def trimmed_mean(values: list[float]) -> float:
    if not values:
        return 0.0
    kept = winsorize(values)
    return sum(kept) / len(kept)


def estimate_dispersion(values: list[float]) -> float:
    """Method-of-moments φ (var = μ + φμ²) of the winsorized series, clamped to a sane range; error counts are
    over-dispersed, so the floor is well above Poisson."""
    if len(values) < 8:
        return 0.5
    kept = winsorize(values, 0.98)
    mu = sum(kept) / len(kept)
    if mu <= 0:
        return 0.5
    var = sum((v - mu) ** 2 for v in kept) / (len(kept) - 1)
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
    values = sorted(series.get(w, 0) for w in recent)
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
    same_slot = [get(w, 0) for w in slot_windows]
    weekday = [get(w, 0) for w in weekday_windows]
    recent = [series.get(w, 0) for w in usable[-96 * 2:]]  # the last two days (history.RECENT_DAYS)
    dispersion = estimate_dispersion(recent)
    if days_back >= min_days and len(same_slot) >= 3 * min_days:
        expected = trimmed_mean(same_slot[-3 * 14:])
        if days_back >= 21 and len(weekday) >= 9:
            expected = max(expected, trimmed_mean(weekday[-9:]))
        # a level shift in the last day (e.g. a new release that logs more) lifts the floor
        expected = max(expected, 0.5 * trimmed_mean(recent[-96:]))
        usual = Baseline(expected=max(expected, MIN_RATE), dispersion=dispersion, samples=len(same_slot), seasonal=True)
    else:
        usual = Baseline(expected=max(trimmed_mean(recent), MIN_RATE), dispersion=dispersion, samples=len(recent),
                         seasonal=False)
    return level_shift(processed, series, usual) or usual
