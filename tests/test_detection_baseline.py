"""The baseline's statistics from one sort of each series (sums of the winsorized values) give what the plain
definitions give: checked against the previous, straightforward implementation on random series (hypothesis),
sparse and dense, with excluded peak windows and several weeks of history."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.detection.baseline import (
    MIN_RATE,
    Baseline,
    compute_baseline,
    estimate_dispersion,
    level_shift,
    slot_frame,
    trimmed_mean,
)

SLOT = timedelta(minutes=15)
T0 = datetime(2026, 10, 1, tzinfo=UTC)


# -- the definitions, as written before the one-sort rewrite -------------------------------------------------
def winsorize(values, upper=0.9):
    if len(values) < 5:
        return list(values)
    ordered = sorted(values)
    cap = ordered[min(len(ordered) - 1, int(len(ordered) * upper))]
    return [min(v, cap) for v in values]


def reference_trimmed_mean(values):
    if not values:
        return 0.0
    kept = winsorize(values)
    return sum(kept) / len(kept)


def reference_dispersion(values):
    if len(values) < 8:
        return 0.5
    kept = winsorize(values, 0.98)
    mu = sum(kept) / len(kept)
    if mu <= 0:
        return 0.5
    var = sum((v - mu) ** 2 for v in kept) / (len(kept) - 1)
    return min(max((var - mu) / (mu * mu), 0.25), 2.0)


def reference_baseline(window_start, processed, series, exclude, min_days=3, min_windows=24):
    usable = [w for w in processed if w not in exclude]
    if len(usable) < min_windows:
        return None
    days_back = (window_start - usable[0]).days
    frame = slot_frame(window_start, processed)
    same_slot = [series.get(w, 0) for w in frame.same_slot if w not in exclude]
    weekday = [series.get(w, 0) for w in frame.weekday if w not in exclude]
    recent = [series.get(w, 0) for w in usable[-96 * 2:]]
    dispersion = reference_dispersion(recent)
    if days_back >= min_days and len(same_slot) >= 3 * min_days:
        expected = reference_trimmed_mean(same_slot[-3 * 14:])
        if days_back >= 21 and len(weekday) >= 9:
            expected = max(expected, reference_trimmed_mean(weekday[-9:]))
        expected = max(expected, 0.5 * reference_trimmed_mean(recent[-96:]))
        usual = Baseline(max(expected, MIN_RATE), dispersion, len(same_slot), True)
    else:
        usual = Baseline(max(reference_trimmed_mean(recent), MIN_RATE), dispersion, len(recent), False)
    return level_shift(processed, series, usual) or usual
# ------------------------------------------------------------------------------------------------------------


counts = st.lists(st.one_of(st.just(0), st.integers(0, 5), st.integers(0, 100_000)), max_size=250)


@settings(max_examples=400, deadline=None)
@given(counts)
def test_one_sort_statistics_equal_the_definitions(values):
    assert trimmed_mean(sorted(values)) == reference_trimmed_mean(values)
    assert math.isclose(estimate_dispersion(sorted(values)), reference_dispersion(values), rel_tol=1e-9)


@st.composite
def histories(draw):
    """Up to 30 days of windows with gaps, sparse or dense counts and some excluded (peak) windows; the
    per-window values come from a drawn random generator seeded by hypothesis (drawing each one would exceed its budget)."""
    rnd = random.Random(draw(st.integers(0, 2**32)))
    span = draw(st.integers(0, 30)) * 96 + draw(st.integers(0, 95))
    gaps, density = draw(st.sampled_from([0.0, 0.1, 0.5])), draw(st.sampled_from([0.02, 0.3, 1.0]))
    level = draw(st.integers(1, 500))
    processed = [T0 + i * SLOT for i in range(span) if rnd.random() >= gaps]
    series = {w: rnd.randint(1, level) for w in processed if rnd.random() < density}
    excluded = draw(st.sampled_from([0.0, 0.01, 0.2]))
    exclude = {w for w in processed if rnd.random() < excluded}
    return T0 + span * SLOT, processed, series, exclude


@settings(max_examples=250, deadline=None)
@given(histories())
def test_baselines_equal_the_previous_implementation(history):
    window_start, processed, series, exclude = history
    got = compute_baseline(window_start, processed, series, exclude, frame=slot_frame(window_start, processed))
    want = reference_baseline(window_start, processed, series, exclude)
    assert (got is None) == (want is None)
    if got is not None:
        assert (got.samples, got.seasonal) == (want.samples, want.seasonal)
        assert got.expected == want.expected
        assert math.isclose(got.dispersion, want.dispersion, rel_tol=1e-9)
