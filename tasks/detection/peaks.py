"""Finding peaks of one window: spike, burst (also across the window boundary), new, regression."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tasks.detection.baseline import Baseline
from tasks.detection.rules import DetectionRules


@dataclass
class Candidate:
    problem_id: str
    app: str
    kind: str
    start: datetime
    end: datetime
    count: int
    expected: float
    z: float = 0.0
    reasons: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.count / max(self.expected, 0.05)


def peak_id(problem_id: str, app: str, kind: str, window_start: datetime) -> str:
    """Deterministic: re-running a window replaces the same peaks."""
    raw = f"{problem_id}|{app}|{kind}|{window_start.isoformat()}"
    return "K" + hashlib.sha1(raw.encode()).hexdigest()[:15]


def find_spike(problem_id: str, app: str, start: datetime, end: datetime, count: int, baseline: Baseline,
               rules: DetectionRules) -> Candidate | None:
    z = baseline.z_score(count)
    ratio = count / max(baseline.expected, 0.05)
    if count >= rules.t("spike_min_count") and ratio >= rules.t("spike_min_ratio") and z >= rules.t("spike_min_z"):
        return Candidate(problem_id, app, "spike", start, end, count, baseline.expected, z,
                         [f"{count} events vs {baseline.expected:.1f} expected ({ratio:.1f}×, z={z:.1f})"])
    return None


def find_burst(problem_id: str, app: str, window_start: datetime, minutes: list[int], tail: list[int],
               baseline: Baseline, rules: DetectionRules) -> Candidate | None:
    """The densest few minutes, including the last minutes of the previous window (pass an empty tail when
    the previous window already reported this rise)."""
    width = int(rules.t("burst_minutes"))
    series = [*tail, *minutes]
    min_count = rules.t("burst_min_count")
    if sum(series) < min_count:  # no few minutes can hold more than all of them (most pairs, every window)
        return None
    offset = len(tail)
    best_sum, best_at = 0, 0
    s = sum(series[:width])  # the sum of series[i:i + width], slid one minute at a time
    for i in range(0, max(1, len(series) - width + 1)):
        if i:
            s += series[i + width - 1] - series[i - 1]
        # the burst must reach into this window
        if i + width > offset and s > best_sum:
            best_sum, best_at = s, i
    if best_sum < min_count:
        return None
    scale = width / max(len(minutes), 1)
    z = baseline.z_score(best_sum, scale)
    ratio = best_sum / max(baseline.expected * scale, 0.05)
    if ratio < rules.t("burst_min_ratio") or z < rules.t("burst_min_z"):
        return None
    start = window_start + timedelta(minutes=best_at - offset)
    return Candidate(problem_id, app, "burst", start, start + timedelta(minutes=width), best_sum,
                     baseline.expected * scale, z,
                     [f"{best_sum} events in {width} minutes vs {baseline.expected * scale:.2f} expected"])
