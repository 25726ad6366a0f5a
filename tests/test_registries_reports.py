"""Registries and reports on a multi-day history in a real PostgreSQL, checked against values computed
independently here; YAML backup round trip; CSVs that pandas and the csv module read back; determinism."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from tasks.counting import count_events
from tasks.detection import detect_window, load_detection_rules
from tasks.models import LogEvent, SourceStats, Window
from tasks.registries import known_errors
from tasks.registries.backup import export_registries, import_registries
from tasks.registries.known_errors import refresh_problems
from tasks.registries.retention import prune
from tasks.reports.csv_export import ERRORS_COLUMNS, PEAKS_COLUMNS
from tasks.reports.daily_report import build_daily_report
from tasks.reports.writer import write_day_reports
from tasks.store import replace_window_counts

DAY0 = datetime(2026, 11, 10, tzinfo=UTC)
STEP = timedelta(minutes=15)
HOSTILE = '=cmd|\' /C calc\'!A0, "quoted", comma, newline\nsecond line <script>'
PROBLEMS = {"PA": ("payments", "Timeout after <*> ms"), "PB": ("accounts", HOSTILE), "PC": ("cards", "Disk full")}


def build_history(conn, days: int = 3, seed: int = 1) -> list[tuple[datetime, str, str]]:
    """Events for `days` days; PC appears only on the last day (new). Returns every event written."""
    rng = random.Random(seed)
    rules = load_detection_rules(None)
    written = []
    t = DAY0
    while t < DAY0 + timedelta(days=days):
        grouped = []
        for pid, (app, template) in PROBLEMS.items():
            if pid == "PC" and t < DAY0 + timedelta(days=days - 1):
                continue
            n = rng.randint(0, 4) + (200 if pid == "PA" and t == DAY0 + timedelta(days=days - 1, hours=10) else 0)
            for _ in range(n):
                ts = t + timedelta(seconds=rng.randint(0, 899))
                grouped.append((LogEvent(timestamp=ts, message=template, app=app, pod=f"{app}-1"), pid, template))
                written.append((ts, pid, app))
        counts = count_events(grouped, Window(t, t + STEP))
        replace_window_counts(conn, counts, SourceStats(events_read=counts.events))
        detect_window(conn, Window(t, t + STEP), rules=rules, mode="backfill")
        refresh_problems(conn, counts.problem_ids, counts.templates, t + STEP)
        t += STEP
    conn.commit()
    return written


def test_daily_report_fields_match_independent_computation(db):
    with db.connect() as conn:
        events = build_history(conn)
        day = (DAY0 + timedelta(days=2)).date()
        report = build_daily_report(conn, day)
    start = DAY0 + timedelta(days=2)
    today = [e for e in events if start <= e[0] < start + timedelta(days=1)]
    yesterday = [e for e in events if start - timedelta(days=1) <= e[0] < start]
    t = report["totals"]
    assert t["events"] == len(today) and t["previous_day_events"] == len(yesterday)
    assert t["problems"] == len({e[1] for e in today})
    assert t["change_vs_previous_day"] == round((len(today) - len(yesterday)) / len(yesterday), 4)
    assert t["same_weekday_last_week_events"] == 0 and t["change_vs_last_week"] is None
    assert [p["problem_id"] for p in report["new_problems"]] == ["PC"] and t["new_problems"] == 1
    per_problem = {pid: sum(1 for e in today if e[1] == pid) for pid in PROBLEMS}
    assert {p["problem_id"]: p["count"] for p in report["top_problems"]} == {k: v for k, v in per_problem.items() if v}
    assert [p["problem_id"] for p in report["top_problems"]] == sorted(
        [k for k, v in per_problem.items() if v], key=lambda k: (-per_problem[k], k))
    hourly = {h["hour"]: h["events"] for h in report["hourly"]}
    for h in range(24):
        hour = start + timedelta(hours=h)
        assert hourly[hour.isoformat().replace("+00:00", "Z")] == sum(
            1 for e in today if hour <= e[0] < hour + timedelta(hours=1))
    apps = {a["app"]: (a["events"], a["problems"]) for a in report["applications"]}
    assert apps == {app: (sum(1 for e in today if e[2] == app), len({e[1] for e in today if e[2] == app}))
                    for app in {e[2] for e in today}}
    assert [a["app"] for a in report["applications"]] == sorted(apps)
    assert any(p["kind"] == "spike" and p["problem_id"] == "PA" for p in report["peaks"])
    assert report["data_quality"]["windows_processed"] == 96 and report["data_quality"]["windows_missing"] == []
    assert report["schema_version"] == "1.0"


def test_reports_and_csvs_are_deterministic_and_hostile_text_is_safe(db, tmp_path):
    with db.connect() as conn:
        build_history(conn)
    day = (DAY0 + timedelta(days=2)).date()
    a = write_day_reports(db, day, str(tmp_path / "a"))
    b = write_day_reports(db, day, str(tmp_path / "b"))
    for key in ("report", "markdown", "errors_table", "peaks_table"):
        assert open(a[key], "rb").read() == open(b[key], "rb").read(), key
    charts_a = sorted((tmp_path / "a" / "charts").glob("*.png"))
    assert charts_a and all(p.read_bytes() == (tmp_path / "b" / "charts" / p.name).read_bytes() for p in charts_a)
    frame = pd.read_csv(a["errors_table"], dtype=str, keep_default_na=False)
    assert list(frame.columns[:11]) == ERRORS_COLUMNS[:11]
    hostile = frame[frame.problem_id == "PB"].iloc[0]
    assert hostile.template == "'" + HOSTILE  # formula neutralised, everything else intact
    with open(a["errors_table"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[[r["problem_id"] for r in rows].index("PB")]["template"] == "'" + HOSTILE
    peaks = pd.read_csv(a["peaks_table"], dtype=str, keep_default_na=False)
    assert list(peaks.columns[:13]) == PEAKS_COLUMNS[:13]
    assert set(peaks.known) <= {"true", "false"} and all(s.endswith("Z") for s in peaks.start)
    assert peaks.start.tolist() == sorted(peaks.start.tolist(), reverse=True)
    assert (tmp_path / "a" / f"errors_table_{day}.csv").read_bytes() == open(a["errors_table"], "rb").read()
    md = (tmp_path / "a" / f"daily_report_{day}.md").read_text()
    assert "<script>" not in md


def test_edits_survive_runs_and_yaml_round_trip_is_lossless(db, pg_template, tmp_path):
    from tests.conftest import clone_database

    with db.connect() as conn:
        build_history(conn, days=2)
        known_errors.mute(conn, "PA", "oncall", "known batch noise")
        known_errors.rename(conn, "PB", "Accounts: hostile text")
        known_errors.annotate(conn, "PC", note="see runbook", ticket="OPS-42")
        refresh_problems(conn, ["PA", "PB", "PC"], {}, DAY0 + timedelta(days=2))  # a later run
        conn.commit()
        row = conn.execute("SELECT muted, muted_by, muted_reason FROM problems WHERE problem_id = 'PA'").fetchone()
        assert row == (True, "oncall", "known batch noise")
        exported = export_registries(conn)
    with pytest.raises(Exception, match="no problem"):
        with db.connect() as conn:
            known_errors.mute(conn, "NOPE", "x", None)
    empty = clone_database(pg_template, f"restore_{tmp_path.name[-8:]}")
    with empty.connect() as conn:
        import_registries(conn, exported)
        import_registries(conn, exported)  # twice is harmless
        conn.commit()
        assert export_registries(conn) == exported
        assert conn.execute("SELECT ticket FROM problems WHERE problem_id = 'PC'").fetchone()[0] == "OPS-42"


def test_bad_backup_is_a_clear_error(db):
    from core.errors import AilogError

    with db.connect() as conn:
        with pytest.raises(AilogError, match="not an ailog registry backup"):
            import_registries(conn, {"problems": []})
        with pytest.raises(AilogError, match="unknown field"):
            import_registries(conn, {"format": "ailog-registries/1", "problems": [{"problem_id": "x", "colour": 1}]})


def test_retention_prunes_counts_but_keeps_registries_and_totals(db):
    with db.connect() as conn:
        build_history(conn, days=2)
        before = dict(conn.execute("SELECT problem_id, count_total FROM problems").fetchall())
        removed = prune(conn, DAY0 + timedelta(days=1))
        assert removed["window_totals"] > 0
        refresh_problems(conn, list(before), {}, DAY0 + timedelta(days=2))
        after = dict(conn.execute("SELECT problem_id, count_total FROM problems").fetchall())
        assert after == before
        assert conn.execute("SELECT min(window_start) FROM windows").fetchone()[0] == DAY0 + timedelta(days=1)


def test_csv_module_round_trip_of_cells():
    from tasks.reports.csv_export import render_csv

    raw = render_csv(["a", "b"], [["x,y", 'he said "hi"\nbye'], ["+1", "@x"]])
    rows = list(csv.reader(io.StringIO(raw.decode())))
    assert rows == [["a", "b"], ["x,y", 'he said "hi"\nbye'], ["'+1", "'@x"]]


def test_an_unwritable_reports_directory_is_reported_and_the_report_is_still_stored(db):
    """In a pod the reports directory may not be writable: the run goes on, the day's report is in PostgreSQL."""
    from datetime import date

    from tasks import steps
    from tasks.reports.writer import stored_day_report, write_day_reports

    day, nowhere = date(2026, 11, 2), "/proc/ailog-no-such-dir/reports"  # mkdir fails even as root
    files = write_day_reports(db, day, nowhere)
    assert "files_error" in files and "AILOG_REPORTS_DIR" in files["files_error"]
    assert stored_day_report(db, day, dry_run=True)["date"] == day.isoformat()
    exported = steps.export_tables.fn(db, day, nowhere)
    assert "AILOG_REPORTS_DIR" in exported["files_error"]
