"""Detection in a real PostgreSQL when windows are judged late, re-judged with late logs, split over several
problem ids, or quiet again — and on over-dispersed (negative-binomial) baselines with graded incidents."""

from __future__ import annotations

import math
import random
from datetime import timedelta

import pytest

from tasks.detection import detect_window
from tasks.detection.live import Liveness, judge_liveness
from tasks.models import Window
from tests.test_detection import DAY0, RULES, STEP, history, store

LIVE = timedelta(hours=2)


def judge(conn, start, mode="catchup", now=None):
    window = Window(start, start + STEP)
    return detect_window(conn, window, rules=RULES, mode=mode, liveness=judge_liveness(mode, window, now, LIVE))


def test_catchup_windows_alert_while_recent_marked_late_and_older_ones_are_summarised(db):
    key = ("PAY", "payments")
    with db.connect() as conn:
        t = history(conn, 1, {key: 2})
        store(conn, t, {key: 300})
        (alert,) = judge(conn, t, now=t + STEP + timedelta(minutes=35)).alerts
        assert alert.late_minutes == 35 and alert.alert_number == 1
        # a re-run of the same window later repeats the same key: never a second alert
        assert [a.idempotency_key for a in judge(conn, t, now=t + timedelta(hours=1)).alerts] == [alert.idempotency_key]
        # another problem, judged three hours late: not alerted alone, told in the late summary
        store(conn, t + STEP, {key: 2, ("LEDGER", "ledger"): 0})
        judge(conn, t + STEP, now=t + timedelta(minutes=40))
        old = t + 2 * STEP
        store(conn, old, {key: 2, ("CARD", "cards"): 400})
        result = judge(conn, old, now=old + timedelta(hours=3))
        assert result.alerts == [] and [m["app"] for m in result.missed] == ["cards"]
        assert result.missed[0]["late_minutes"] == 165
        # backfill never alerts and never summarises
        store(conn, old + STEP, {key: 2, ("FX", "fx"): 400})
        result = judge(conn, old + STEP, mode="backfill", now=old)
        assert result.alerts == [] and result.missed == []


def test_late_events_make_a_known_rise_critical_and_it_alerts_once(db):
    key = ("PAY", "payments")
    with db.connect() as conn:
        t = history(conn, 1, {key: 2})
        store(conn, t, {key: 40})  # two thirds of the events: a sizeable rise, not critical
        first = judge(conn, t, mode="regular")
        assert [p.severity for p in first.peaks] == ["high"] and first.alerts == []
        store(conn, t + STEP, {key: 2})
        assert judge(conn, t + STEP, mode="regular").alerts == []
        store(conn, t, {key: 60})  # the late third arrives; the look-back re-reads the window
        (alert,) = judge(conn, t, now=t + 2 * STEP).alerts
        assert alert.late_minutes == 15 and alert.count == 60
        again = judge(conn, t, now=t + 3 * STEP)  # the next run's look-back: the same alert key, nothing new
        assert [a.idempotency_key for a in again.alerts] == [alert.idempotency_key]
        assert conn.execute("SELECT alerts_sent FROM incidents WHERE alerts_sent > 0").fetchall() == [(1,)]


def test_one_failure_under_several_problem_ids_is_one_message_unless_clearly_worse(db):
    a, b, c = ("VAL-1", "payments"), ("VAL-2", "payments"), ("VAL-3", "payments")
    with db.connect() as conn:
        t = history(conn, 1, {a: 1, b: 1, c: 1})
        store(conn, t, {a: 120, b: 1, c: 1})
        assert len(judge(conn, t, mode="regular").alerts) == 1
        store(conn, t + STEP, {a: 1, b: 130, c: 1})  # the same failure, now logged under another id
        later = judge(conn, t + STEP, mode="regular")
        assert later.alerts == [] and any("already alerted" in r for p in later.peaks for r in p.reasons)
        for i in range(2, 6):  # it goes on under the other id for an hour: still the same incident
            store(conn, t + i * STEP, {a: 1, b: 140, c: 1})
            assert judge(conn, t + i * STEP, mode="regular").alerts == []
        store(conn, t + 6 * STEP, {a: 1, b: 1, c: 900})  # clearly worse: an update
        assert len(judge(conn, t + 6 * STEP, mode="regular").alerts) == 1


def test_two_critical_problems_of_one_app_in_one_window_are_one_alert_listing_both(db):
    a, b = ("DB-POOL", "ledger"), ("DB-READ", "ledger")
    with db.connect() as conn:
        t = history(conn, 1, {a: 1, b: 1})
        store(conn, t, {a: 200, b: 150})
        (alert,) = judge(conn, t, mode="regular").alerts
        assert sorted(m["problem_id"] for m in alert.members) == ["DB-POOL", "DB-READ"]


def test_a_quiet_alerted_incident_is_recovered_once(db):
    key = ("PAY", "payments")
    with db.connect() as conn:
        t = history(conn, 1, {key: 2})
        store(conn, t, {key: 300})
        assert judge(conn, t, mode="regular").alerts
        recovered = []
        for i in range(1, 8):
            store(conn, t + i * STEP, {key: 2})
            recovered += judge(conn, t + i * STEP, mode="regular").recovered
        assert [r["app"] for r in recovered] == ["payments"] and recovered[0]["alerts_sent"] == 1
        # one short note to the same channel; never twice, never from a backfill, off when configured so
        from blocks.settings import load_settings
        from tasks.detection.notices import queue_recovered

        env = {"TEAMS_WEBHOOK_URL": "http://127.0.0.1:9/hook", "AILOG_USE_BLOCKS": "false"}
        settings = load_settings(env)
        assert queue_recovered(conn, settings, recovered, "backfill") == 0
        off = load_settings({**env, "AILOG_RECOVERED_MESSAGES": "false"})
        assert queue_recovered(conn, off, recovered, "regular") == 0
        assert queue_recovered(conn, settings, recovered, "regular") == 1
        assert queue_recovered(conn, settings, recovered, "catchup") == 0
        (title,) = conn.execute("SELECT payload->>'title' FROM outbox WHERE kind = 'recovered'").fetchone()
        assert title == "Recovered: payments"


def nb(r: random.Random, mean: float, k: float = 3.0) -> int:
    """Negative-binomial draw (gamma-Poisson), as real error counts are over-dispersed."""
    lam = r.gammavariate(k, mean / k)
    n, p, target = 0, math.exp(-lam), r.random()
    cumulative = p
    while cumulative < target:
        n += 1
        p *= lam / n
        cumulative += p
    return n


@pytest.mark.parametrize("seed", [1, 2])
def test_graded_incidents_on_negative_binomial_baselines(db, seed):
    """Incidents from 2× to 40× of an over-dispersed baseline: the large ones alert, the small ones never."""
    r = random.Random(seed)
    factors = {"G2": 2, "G3": 3, "G5": 5, "G15": 15, "G25": 25, "G40": 40}
    mean = 30.0  # every incident is large in events: only its size against the noisy baseline decides
    with db.connect() as conn:
        t = DAY0
        while t < DAY0 + timedelta(days=3):
            store(conn, t, {(pid, f"app-{pid}"): nb(r, mean) for pid in factors})
            t += STEP
        store(conn, t, {(pid, f"app-{pid}"): nb(r, mean) + int(mean * (f - 1)) for pid, f in factors.items()})
        result = judge(conn, t, mode="regular")
        alerted = {a.problem_id for a in result.alerts}
        assert alerted == {"G15", "G25", "G40"}, [(p.problem_id, p.count, p.baseline, p.severity) for p in result.peaks]


def test_liveness_of_each_mode():
    w = Window(DAY0, DAY0 + STEP)
    assert judge_liveness("regular", w, None, LIVE) == Liveness(alert=True)
    assert judge_liveness("backfill", w, DAY0, LIVE) == Liveness(alert=False)
    assert judge_liveness("catchup", w, w.end + timedelta(minutes=20), LIVE) == Liveness(alert=True, late_minutes=20)
    assert judge_liveness("catchup", w, w.end + timedelta(hours=5), LIVE).summarise


def test_day_report_counts_incidents_not_rows_and_known_peaks_as_expected(db):
    from tasks.reports.daily_report import build_daily_report

    batch = ("BATCH", "settlement")
    keys = [(f"P{i}", f"app{i}") for i in range(6)]
    with db.connect() as conn:
        t = DAY0
        while t < DAY0 + timedelta(days=4, hours=10):
            is_batch = t.hour == 2 and t.minute == 0
            store(conn, t, {batch: 150 if is_batch else 1, **{k: 1 for k in keys}})
            if is_batch:
                judge(conn, t, mode="backfill")
            t += STEP
        store(conn, t, {batch: 1, **{k: 100 for k in keys}})  # a cascade of six problems in six apps
        assert len(judge(conn, t, mode="regular").alerts) == 1
        totals = build_daily_report(conn, t.date())["totals"]
    assert totals["peaks"] == 8  # the known batch peak, six members and their cascade
    assert (totals["critical_peaks"], totals["expected_peaks"], totals["alerts"]) == (1, 1, 1)


def test_an_incomplete_newest_window_waits_for_a_later_run(db, tmp_path):
    from blocks.settings import ElasticsearchSettings
    from tasks.detection.live import looks_incomplete
    from tasks.source.files import FileSource
    from tests.test_detection_flows import doc

    with db.connect() as conn:
        t = history(conn, 1, {("BUSY", "a"): 60})  # the source usually holds four events a minute
        window = Window(t, t + STEP)
        path = tmp_path / "logs.ndjson"

        def source_until(last: timedelta) -> FileSource:
            minutes = int(last.total_seconds() // 60)
            path.write_bytes(b"".join(doc(t + timedelta(minutes=m, seconds=5), "a", "busy", "E")
                                      for m in range(minutes)))
            return FileSource([str(path)], ElasticsearchSettings().fields)

        wait = timedelta(minutes=15)
        behind = source_until(timedelta(minutes=10))  # ingestion has reached minute 10 of 15
        assert looks_incomplete(conn, behind, window, window.end + timedelta(minutes=5), wait)
        assert not looks_incomplete(conn, behind, window, window.end + wait, wait)  # never postponed for long
        assert not looks_incomplete(conn, source_until(STEP), window, window.end + timedelta(minutes=5), wait)


def test_delayed_and_rechecked_windows_are_metrics():
    from prometheus_client import generate_latest

    from core.ops.metrics import build_registry

    text = generate_latest(build_registry("regular", "completed", 1.0, {"windows_delayed": 1, "windows_rechecked": 2}))
    assert b'ailog_windows_delayed{flow="regular"} 1.0' in text
    assert b'ailog_windows_rechecked{flow="regular"} 2.0' in text


def test_an_error_spread_over_several_problems_is_judged_on_its_combined_rise(db):
    """Eight problems (one error with an enumerated field name), each too small alone to be a peak."""
    keys = [(f"FIELD-{i}", "payments") for i in range(8)]
    with db.connect() as conn:
        t, n = DAY0, 0
        while t < DAY0 + timedelta(days=1):
            store(conn, t, {k: (n + i) % 2 for i, k in enumerate(keys)})  # about one event every other window
            t, n = t + STEP, n + 1
        store(conn, t, {k: 2 for k in keys})  # a 4x rise: sixteen events, no incident
        quiet = judge(conn, t, mode="regular")
        assert quiet.alerts == [] and all(p.kind != "cascade" for p in quiet.peaks)
        store(conn, t + STEP, {k: 8 for k in keys})  # a 16x rise: 64 events, each problem below the peak minimum
        result = judge(conn, t + STEP, mode="regular")
        (alert,) = result.alerts
        assert alert.apps == ["payments"] and len(alert.members) == 8 and alert.count == 64


def test_small_rises_of_noisy_problems_do_not_add_up_to_an_incident(db):
    """Four over-dispersed problems each a little above usual: their sum is within the noise, no group."""
    r = random.Random(5)
    keys = [(f"NOISY-{i}", "ledger") for i in range(4)]
    with db.connect() as conn:
        t = DAY0
        while t < DAY0 + timedelta(days=1):
            store(conn, t, {k: nb(r, 5.0, k=2.0) for k in keys})
            t += STEP
        store(conn, t, {k: 16 for k in keys})
        result = judge(conn, t, mode="regular")
        assert [p for p in result.peaks if p.kind == "cascade"] == [], [(p.kind, p.count, p.baseline) for p in result.peaks]


def test_a_deploy_that_permanently_raises_a_level_is_one_notice_not_daily_alerts(db):
    key = ("CHATTY", "payments")
    with db.connect() as conn:
        t = history(conn, 3, {key: 2})
        alerts = []
        for _ in range(2 * 96):  # two days at the new level
            store(conn, t, {key: 60})
            alerts += judge(conn, t, mode="regular").alerts
            t += STEP
        assert len(alerts) == 1, [(a.window, a.alert_number, a.reasons) for a in alerts]
        store(conn, t, {key: 700})  # a real incident on top of the new level still alerts
        assert len(judge(conn, t, mode="regular").alerts) == 1


def test_a_later_incident_of_the_same_app_is_not_hidden_by_an_earlier_one(db):
    a, oom = ("NPE", "fx-rates"), ("OOM", "fx-rates")
    with db.connect() as conn:
        t = history(conn, 1, {a: 2, oom: 0})
        store(conn, t, {a: 150, oom: 0})
        assert len(judge(conn, t, mode="regular").alerts) == 1
        for i in range(1, 5):  # quiet again for an hour (not yet closed)
            store(conn, t + i * STEP, {a: 2, oom: 0})
            judge(conn, t + i * STEP, mode="regular")
        store(conn, t + 5 * STEP, {a: 2, oom: 7}, error_type="java.lang.OutOfMemoryError")
        (alert,) = judge(conn, t + 5 * STEP, mode="regular").alerts
        assert alert.problem_id == "OOM"
