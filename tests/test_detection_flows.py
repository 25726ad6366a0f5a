"""The regular flow through a real Prefect API, a real PostgreSQL, NDJSON input and a local Teams webhook, when
a run fails (the source is down) over a critical burst, and when a third of a window's events arrive late."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from tests.fakes.teams_server import FakeTeams
from tests.test_flows_end_to_end import env  # noqa: F401 - the shared environment fixture

T0 = datetime(2026, 11, 10, tzinfo=UTC)
STEP = timedelta(minutes=15)
INCIDENT = T0 + timedelta(hours=8)  # the window holding the incident


@pytest.fixture
def teams(request) -> FakeTeams:
    """The local Teams webhook of the end-to-end tests' environment (real PostgreSQL, Prefect, settings)."""
    return request.getfixturevalue("env")["teams"]


def doc(ts: datetime, app: str, message: str, error_type: str) -> bytes:
    return orjson.dumps({"@timestamp": ts.isoformat().replace("+00:00", "Z"), "message": message,
                         "log": {"level": "ERROR"}, "service": {"name": app},
                         "kubernetes": {"pod": {"name": f"{app}-1"}},
                         "error": {"type": error_type, "message": message}}) + b"\n"


def background(end: datetime) -> list[bytes]:
    """Two steady errors: a busy one (two a minute, so the completeness check sees a live source) and a
    quiet one (two a window)."""
    lines, t, i = [], T0, 0
    while t < end:
        lines.append(doc(t, "accounts", f"Read timed out calling customer {10000 + i % 977}",
                         "java.net.SocketTimeoutException"))
        if i % 15 == 3:
            lines.append(doc(t, "ledger", f"Ledger posting failed for entry {50000 + i}: balance mismatch",
                             "com.bank.LedgerException"))
        t += timedelta(seconds=30)
        i += 1
    return lines


def incident(window: datetime, n: int, app: str = "ledger", offset: int = 0, every: int = 1) -> list[bytes]:
    """n events of the quiet ledger error spread over the window (every ``every``-th of a regular grid)."""
    out = []
    for k in range(offset, n * every, every):
        ts = window + timedelta(seconds=(k * 897) // (n * every) + 1)
        out.append(doc(ts, app, f"Ledger posting failed for entry {90000 + k}: balance mismatch",
                       "com.bank.LedgerException"))
    return out


def write(path: Path, lines: list[bytes]) -> str:
    path.write_bytes(b"".join(sorted(lines)))
    return str(path)


def run_at(monkeypatch, now: datetime, **kwargs) -> dict:
    from flows.regular import regular

    monkeypatch.setattr("flows.regular.logical_now", lambda: now)
    return regular(output_dir=kwargs.pop("output_dir"), **kwargs)


def critical(teams: FakeTeams) -> list[dict]:
    return [p for key, p in teams.unique.items() if key.startswith("alert:")]


def test_a_failed_run_over_a_critical_burst_is_alerted_once_by_the_next_run_marked_late(
        prefect_api, teams, db, monkeypatch, tmp_path):
    from tasks import steps

    logs = write(tmp_path / "logs.ndjson", background(INCIDENT + 4 * STEP) + incident(INCIDENT, 400))
    out = str(tmp_path / "reports")
    run_at(monkeypatch, INCIDENT, start=T0, end=INCIDENT, input_paths=[logs], output_dir=out)  # the history
    assert critical(teams) == []
    # the run due just after the burst's window finds the source down and fails
    monkeypatch.setattr(steps, "check_source", steps.check_source.with_options(retries=0))
    monkeypatch.setenv("ES_HOST", "http://127.0.0.1:1")
    with pytest.raises(Exception):  # noqa: B017 - whatever the client raises, the run fails
        run_at(monkeypatch, INCIDENT + STEP + timedelta(minutes=6), output_dir=out)
    assert critical(teams) == []
    monkeypatch.delenv("ES_HOST")
    # the next run catches the window up: one alert, marked late
    summary = run_at(monkeypatch, INCIDENT + 2 * STEP + timedelta(minutes=6), input_paths=[logs], output_dir=out)
    assert summary["windows"] >= 2
    (alert,) = critical(teams)
    assert "late by 21 min" in json.dumps(alert)
    # later runs (look-back re-reads the window again) never repeat it
    run_at(monkeypatch, INCIDENT + 3 * STEP + timedelta(minutes=6), input_paths=[logs], output_dir=out)
    assert len(critical(teams)) == 1 and teams.duplicates == 0


def test_a_third_of_a_window_arriving_late_is_counted_and_its_incident_alerted_once(
        prefect_api, teams, db, monkeypatch, tmp_path):
    on_time = background(INCIDENT + 4 * STEP) + incident(INCIDENT, 20, every=3) + incident(INCIDENT, 20, offset=1, every=3)
    late = incident(INCIDENT, 20, offset=2, every=3)  # every third event reaches the source after the first run
    first = write(tmp_path / "on_time.ndjson", on_time)
    second = write(tmp_path / "late.ndjson", late)
    out = str(tmp_path / "reports")
    run_at(monkeypatch, INCIDENT, start=T0, end=INCIDENT, input_paths=[first], output_dir=out)
    run_at(monkeypatch, INCIDENT + STEP + timedelta(minutes=6), input_paths=[first], output_dir=out)
    assert critical(teams) == []  # two thirds of the incident: a sizeable rise, not critical
    run_at(monkeypatch, INCIDENT + 2 * STEP + timedelta(minutes=6), input_paths=[first, second], output_dir=out)
    with db.connect() as conn:
        stored = conn.execute("SELECT sum(count) FROM window_counts WHERE window_start = %s", (INCIDENT,)).fetchone()[0]
        peaks = conn.execute("SELECT kind, severity, alerted, count, baseline, reasons, app FROM peaks WHERE window_start = %s",
                             (INCIDENT,)).fetchall()
    truth = sum(1 for line in on_time + late if INCIDENT <= datetime.fromisoformat(
        orjson.loads(line)["@timestamp"].replace("Z", "+00:00")) < INCIDENT + STEP)
    assert stored == truth
    assert [p for p in peaks if p[2]] and all(p[1] == "critical" for p in peaks if p[2]), [(p[0], p[1], p[3], p[6]) for p in peaks]
    (alert,) = critical(teams)
    assert "late by" in json.dumps(alert)
    run_at(monkeypatch, INCIDENT + 3 * STEP + timedelta(minutes=6), input_paths=[first, second], output_dir=out)
    assert len(critical(teams)) == 1 and teams.duplicates == 0


def test_windows_caught_up_too_late_to_alert_are_told_in_one_summary_not_silence(
        prefect_api, teams, db, monkeypatch, tmp_path):
    logs = write(tmp_path / "logs.ndjson", background(INCIDENT + 14 * STEP) + incident(INCIDENT, 400))
    out = str(tmp_path / "reports")
    run_at(monkeypatch, INCIDENT, start=T0, end=INCIDENT, input_paths=[logs], output_dir=out)
    # nothing ran for three hours: the burst's window is far past the live-alert period
    run_at(monkeypatch, INCIDENT + timedelta(hours=3, minutes=6), input_paths=[logs], output_dir=out)
    assert critical(teams) == []
    (summary,) = [p for key, p in teams.unique.items() if key.startswith("late_summary:")]
    text = json.dumps(summary, ensure_ascii=False)
    assert "ledger" in text and "171 min late" in text, text
    run_at(monkeypatch, INCIDENT + timedelta(hours=3, minutes=21), input_paths=[logs], output_dir=out)
    assert len([key for key in teams.unique if key.startswith("late_summary:")]) == 1
    assert teams.duplicates == 0
