"""Detection on stored history in a real PostgreSQL: each peak kind, robust baselines, known peaks, severity
rules and the alert policy (one alert per incident, re-alert when much worse, idempotent re-runs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.counting.counts import ProblemSample, WindowCounts
from tasks.detection import detect_window, load_detection_rules
from tasks.detection.rules import _parse, default_rules
from tasks.models import SourceStats, Window
from tasks.store import replace_window_counts

DAY0 = datetime(2026, 11, 1, tzinfo=UTC)
STEP = timedelta(minutes=15)
RULES = load_detection_rules(None)


def store(conn, start: datetime, counts: dict[tuple[str, str], int | list[int]], *, error_type: str | None = None,
          pod: str = "pod-a") -> None:
    """One processed window: totals spread evenly over its minutes, or explicit per-minute lists."""
    wc = WindowCounts(window=Window(start, start + STEP))
    for (pid, app), value in counts.items():
        per_minute = value if isinstance(value, list) else [value // 15 + (1 if m < value % 15 else 0) for m in range(15)]
        while per_minute and not per_minute[-1]:
            per_minute = per_minute[:-1]  # stored up to the last minute with events
        total = sum(per_minute)
        if total:
            wc.minutes[(pid, app)] = list(per_minute)
            wc.dimensions[(pid, app)] = {"pod": {pod: total}}
            wc.samples[pid] = ProblemSample(start, start + timedelta(minutes=14), f"sample of {pid}", None, error_type)
            wc.templates[pid] = f"template of {pid}"
    replace_window_counts(conn, wc, SourceStats(events_read=sum(map(sum, wc.minutes.values()))))


def history(conn, days: int, level: dict[tuple[str, str], int], *, skip: set[datetime] = frozenset()) -> datetime:
    """`days` days of flat history; returns the start of the first window after it."""
    t = DAY0
    while t < DAY0 + timedelta(days=days):
        if t not in skip:
            store(conn, t, dict(level))
        t += STEP
    return t


def detect(conn, start: datetime, mode: str = "regular", rules=RULES):
    return detect_window(conn, Window(start, start + STEP), rules=rules, mode=mode)


def test_spike_is_found_and_critical_and_alerted_once_per_incident(db):
    key = ("PAY", "payments")
    with db.connect() as conn:
        t = history(conn, 4, {key: 2})
        store(conn, t, {key: 120}, pod="pod-x")
        result = detect(conn, t)
        (peak,) = result.peaks
        assert (peak.kind, peak.severity, peak.count) == ("spike", "critical", 120)
        assert 1.5 <= peak.baseline <= 3 and peak.explanation[0]["value"] == "pod-x"
        assert len(result.alerts) == 1 and result.alerts[0].idempotency_key.endswith(":1")
        # the incident continues at the same level: no second alert
        store(conn, t + STEP, {key: 130})
        assert detect(conn, t + STEP).alerts == []
        # several times worse: re-alert, saying how many events happened since the last alert
        store(conn, t + 2 * STEP, {key: 500})
        (again,) = detect(conn, t + 2 * STEP).alerts
        assert again.alert_number == 2 and again.events_since_last_alert == 130 + 500
        # re-running a window gives the same peaks and the same alert key, never a new alert
        rerun = detect(conn, t + 2 * STEP)
        assert [a.idempotency_key for a in rerun.alerts] == [again.idempotency_key]
        assert conn.execute("SELECT count(*) FROM incidents").fetchone()[0] == 1


def test_backfill_and_catchup_never_alert(db):
    key = ("PAY", "payments")
    with db.connect() as conn:
        t = history(conn, 4, {key: 2})
        store(conn, t, {key: 300})
        assert detect(conn, t, "backfill").alerts == [] and detect(conn, t, "catchup").alerts == []
        assert detect(conn, t, "backfill").peaks[0].severity == "critical"


def test_baseline_is_robust_to_earlier_incidents(db):
    key = ("PAY", "payments")
    with db.connect() as conn:
        t = history(conn, 4, {key: 2})
        # yesterday at the same time there was an incident; it was detected and must not raise today's baseline
        yesterday = t - timedelta(days=1)
        store(conn, yesterday, {key: 400})
        detect(conn, yesterday, "backfill")
        store(conn, t, {key: 120})
        (peak,) = detect(conn, t).peaks
        assert peak.baseline < 5


def test_quiet_noise_makes_no_peak_and_sparse_problems_are_sensible(db):
    with db.connect() as conn:
        t = history(conn, 4, {("BUSY", "a"): 20})
        for day in range(4):  # a problem seen twice a day
            for hour in (3, 15):
                w = DAY0 + timedelta(days=day, hours=hour)
                store(conn, w, {("BUSY", "a"): 20, ("RARE", "b"): 1})
        store(conn, t, {("BUSY", "a"): 26, ("RARE", "b"): 2})
        assert detect(conn, t).peaks == []


def test_burst_across_the_window_boundary(db):
    key = ("PAY", "payments")
    with db.connect() as conn:
        t = history(conn, 4, {key: 1})
        store(conn, t - STEP, {key: [0] * 13 + [40, 40]})  # starts in the last minutes of the previous window
        store(conn, t, {key: [45] + [0] * 14})
        (peak,) = detect(conn, t).peaks
        assert peak.kind == "burst" and peak.start == t - timedelta(minutes=2) and peak.count == 125



@settings(max_examples=400, deadline=None)
@given(minutes=st.lists(st.integers(0, 40), max_size=16), tail=st.lists(st.integers(0, 40), max_size=4),
       width=st.integers(1, 6), min_count=st.integers(1, 60), expected=st.sampled_from([0.05, 0.5, 3.0, 25.0]))
def test_a_burst_is_the_densest_minutes_that_reach_into_the_window(minutes, tail, width, min_count, expected):
    """`find_burst` slides one running sum and gives up early when all the minutes together are too few: it must
    find what summing every `width` minutes that reach into the window finds — the first densest, its start and
    count — or nothing exactly when that is below the minimum or not far enough above the baseline."""
    from tasks.detection.baseline import Baseline
    from tasks.detection.peaks import find_burst

    rules = _parse({"thresholds": {"burst_minutes": width, "burst_min_count": min_count}}, "test", default_rules())
    baseline = Baseline(expected=expected, dispersion=0.5, samples=96, seasonal=False)
    series, offset = tail + minutes, len(tail)
    sums = [(sum(series[i:i + width]), i) for i in range(max(1, len(series) - width + 1)) if i + width > offset]
    best, at = max(sums, key=lambda s: (s[0], -s[1]), default=(0, 0))
    scale = width / max(len(minutes), 1)
    wanted = best >= min_count and best / max(expected * scale, 0.05) >= rules.t("burst_min_ratio") and \
        baseline.z_score(best, scale) >= rules.t("burst_min_z")
    found = find_burst("P", "app", DAY0, minutes, tail, baseline, rules)
    assert (found is not None) == wanted
    if found is not None:
        assert (found.count, found.start) == (best, DAY0 + timedelta(minutes=at - offset))

def test_new_problems_after_warmup_only(db):
    with db.connect() as conn:
        store(conn, DAY0, {("OLD", "a"): 3})
        store(conn, DAY0 + STEP, {("NEW1", "a"): 200})
        assert detect(conn, DAY0 + STEP).peaks == []  # cold start: no flood of "new"
        t = history(conn, 1, {("OLD", "a"): 3})
        store(conn, t, {("NEW2", "a"): 150})
        (peak,) = detect(conn, t).peaks
        assert (peak.kind, peak.severity) == ("new", "critical")


def test_regression_after_quiet_days(db):
    with db.connect() as conn:
        store(conn, DAY0, {("BACK", "a"): 5})
        t = history(conn, 9, {("OTHER", "a"): 2}, skip={DAY0})
        store(conn, t, {("BACK", "a"): 20, ("OTHER", "a"): 2})
        assert [p.kind for p in detect(conn, t).peaks] == ["regression"]


def test_cascade_is_one_incident_not_many_alerts(db):
    keys = [(f"P{i}", f"app{i}") for i in range(6)]
    with db.connect() as conn:
        t = history(conn, 4, {k: 1 for k in keys})
        store(conn, t, {k: 100 for k in keys})
        result = detect(conn, t)
        assert [p.kind for p in result.peaks].count("cascade") == 1
        assert len(result.alerts) == 1 and result.alerts[0].kind == "cascade"
        assert len(result.alerts[0].members) == 6


def test_recurring_peak_becomes_known_and_is_not_alerted_unless_much_larger(db):
    key = ("BATCH", "settlement")
    batch = DAY0 + timedelta(hours=2)
    with db.connect() as conn:
        t = DAY0
        while t < DAY0 + timedelta(days=6):
            store(conn, t, {key: 150 if t.time() == batch.time() else 1})
            detect(conn, t, "backfill")
            t += STEP
        known = conn.execute("SELECT times_seen, minute_of_day FROM known_peaks").fetchall()
        assert known and known[0][1] == 120
        day7 = batch + timedelta(days=6)
        while t < day7:
            store(conn, t, {key: 1})
            t += STEP
        store(conn, day7, {key: 160})
        (peak,) = detect(conn, day7).peaks
        assert peak.known and not peak.alerted
        store(conn, day7 + timedelta(days=1), {key: 2000})  # clearly larger than usual: alert anyway
        (big,) = detect(conn, day7 + timedelta(days=1)).peaks
        assert not big.known and big.alerted


def test_muted_problems_never_alert(db):
    key = ("PAY", "payments")
    with db.connect() as conn:
        t = history(conn, 4, {key: 2})
        conn.execute("INSERT INTO problems (problem_id, template, muted, muted_by) VALUES ('PAY', 't', true, 'ops')")
        store(conn, t, {key: 300})
        result = detect(conn, t)
        assert result.peaks and result.alerts == []


def test_always_serious_errors_alert_from_a_few_events(db):
    with db.connect() as conn:
        t = history(conn, 4, {("OOM", "ledger"): 0, ("X", "ledger"): 1})
        store(conn, t, {("OOM", "ledger"): 3, ("X", "ledger"): 1}, error_type="java.lang.OutOfMemoryError")
        (peak,) = detect(conn, t).peaks
        assert peak.severity == "critical" and peak.alerted


def test_rules_yaml_overrides_and_rejects_bad_input():
    from core.errors import ConfigError

    rules = _parse({"thresholds": {"spike_min_count": 500}, "severity": [{"level": "high", "min_count": 1}]},
                   "test", default_rules())
    assert rules.t("spike_min_count") == 500 and rules.t("spike_min_ratio") == 3.0
    assert rules.classify(kind="spike", count=10_000, ratio=100, apps=1, error_type=None, text="")[0] == "high"
    with pytest.raises(ConfigError, match="unknown thresholds setting"):
        _parse({"thresholds": {"spike_min_cnt": 5}}, "test", default_rules())
    with pytest.raises(ConfigError, match="level"):
        _parse({"severity": [{"level": "urgent"}]}, "test", default_rules())


def test_several_problems_of_one_app_rising_together_are_judged_together(db):
    keys = [("S1", "ledger"), ("S2", "ledger"), ("S3", "ledger")]
    with db.connect() as conn:
        t = history(conn, 4, {k: 1 for k in keys})
        store(conn, t, {k: 22 for k in keys})
        result = detect(conn, t)
        assert sorted(p.severity for p in result.peaks if p.kind == "spike") == ["high", "high", "high"]
        (group,) = [p for p in result.peaks if p.kind == "cascade"]
        assert group.app == "ledger" and group.count == 66 and group.severity == "critical"
        assert len(result.alerts) == 1 and result.alerts[0].apps == ["ledger"]
        store(conn, t + STEP, {k: 25 for k in keys})  # still going: the same incident, no second alert
        assert detect(conn, t + STEP).alerts == []
