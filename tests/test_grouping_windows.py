"""Grouping inside real analysed windows (backfill flow, real Prefect API, real PostgreSQL, NDJSON input):
merges never double count and re-runs give byte-identical reports; poison input never fails a window."""

from __future__ import annotations

import json
import random
import string
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from blocks.settings import ElasticsearchSettings
from tasks.models import Window
from tests.test_flows_end_to_end import env  # noqa: F401 (the same environment: real DB, local fakes)

DAY = date(2026, 11, 2)
FIELDS = ElasticsearchSettings().fields  # the ECS defaults
T0 = datetime(2026, 11, 2, tzinfo=UTC)


def doc(ts: datetime, message, app: str = "shop", **extra) -> dict:
    return {"@timestamp": ts.isoformat().replace("+00:00", "Z"), "message": message, "log": {"level": "ERROR"},
            "service": {"name": app}, **extra}


def merging_logs(path: Path, days: int = 2) -> int:
    """Logs whose word variables make problems merge mid-day: a validation error carrying a field name and a
    value, user/project names, and steady messages around them."""
    rng = random.Random(7)

    def word() -> str:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 8)))

    lines = []
    for d in range(days):
        for minute in range(0, 24 * 60, 7):
            ts = T0 + timedelta(days=d, minutes=minute, seconds=rng.randint(0, 59))
            lines.append(doc(ts, f"Validation failed: field {word()} has invalid value {word()} in request"))
            if minute % 3 == 0:
                lines.append(doc(ts, f"User {word()} cannot open project {word()} now", app="portal"))
            lines.append(doc(ts, f"Payment {rng.choice(['declined', 'approved'])} by acquirer for order {minute}"))
            lines.append(doc(ts, "Connection to 10.0.0.7:5432 refused", app="db-client"))
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return len(lines)


def registry_sums(db) -> tuple[int, int, int]:
    with db.connect() as conn:
        total = conn.execute("SELECT coalesce(sum(count_total), 0) FROM problems").fetchone()[0]
        stored = conn.execute("SELECT coalesce(sum(count), 0) FROM window_counts").fetchone()[0]
        aliases = conn.execute("SELECT count(*) FROM problem_aliases").fetchone()[0]
    return total, stored, aliases


def report_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


def test_merges_never_double_count_and_reruns_give_identical_reports(prefect_api, env, tmp_path):  # noqa: F811
    from flows.backfill import backfill

    db = env["db"]

    logs = tmp_path / "merging.ndjson"
    events = merging_logs(logs)
    out = tmp_path / "reports"
    runs = []
    for _ in range(3):
        summary = backfill(start=DAY, end=DAY + timedelta(days=1), input_paths=[str(logs)], output_dir=str(out),
                           publish=False)
        assert summary["successful_days"] == ["2026-11-02", "2026-11-03"]
        total, stored, aliases = registry_sums(db)
        assert aliases > 0, "the test must exercise merges"
        assert stored == events
        assert total == events, f"count_total sums to {total}, {events} events stored"
        runs.append(report_bytes(out))
    assert runs[1] == runs[2]  # re-running the same days on the same database: the same bytes
    # the first run wrote the last day's reports with everything stored, merges folded in: the same bytes too
    # (earlier days' files differ by design: they were written before the later days were stored)
    last = {k: v for k, v in runs[0].items() if "2026-11-02" not in k}
    assert last and last == {k: v for k, v in runs[1].items() if "2026-11-02" not in k}
    with db.connect() as conn:
        left = conn.execute("SELECT count(*) FROM problems WHERE problem_id IN (SELECT alias_id FROM problem_aliases)"
                            ).fetchone()[0]
        apart = conn.execute("SELECT count(*) FROM problems WHERE template LIKE 'Payment % by acquirer%'").fetchone()[0]
    assert left == 0  # no registry row for an id that was merged away
    assert apart == 2  # declined / approved keep two problems


def test_poison_documents_never_stall_a_window(prefect_api, env, tmp_path):  # noqa: F811
    from flows.backfill import backfill

    db = env["db"]

    t = T0 + timedelta(hours=10)
    poison = [
        doc(t, "NUL in the first line \x00 of the message"),
        doc(t + timedelta(seconds=1), "Control \x07\x1b[31m characters"),
        doc(t + timedelta(seconds=2), "Huge " + "x" * 10_000_000),
        doc(t + timedelta(seconds=3), 404),
        doc(t + timedelta(seconds=4), {"nested": {"deeper": ["no", "text"]}}),
        {"@timestamp": int((t + timedelta(seconds=5)).timestamp()), "message": "epoch seconds"},
        {"@timestamp": int((t + timedelta(seconds=6)).timestamp() * 1000), "message": "epoch milliseconds"},
    ]
    lines = [json.dumps(p) for p in poison]
    # a lone surrogate as Elasticsearch and JSON decoders hand it over (an escaped half of a pair)
    lines.append(json.dumps(doc(t + timedelta(seconds=7), "Lone PLACEHOLDER surrogate")).replace("PLACEHOLDER", "\\ud83d"))
    nested: object = "deep"
    for _ in range(200):
        nested = {"a": nested}
    lines.append(json.dumps(doc(t + timedelta(seconds=8), nested)))
    logs = tmp_path / "poison.ndjson"
    logs.write_text("\n".join(lines) + "\n")
    out = tmp_path / "reports"
    summary = backfill(start=DAY, end=DAY, input_paths=[str(logs)], output_dir=str(out), publish=False)
    assert summary["successful_days"] == ["2026-11-02"] and not summary["failed_days"]
    report = json.loads((out / "problem_report_2026-11-02.json").read_text())
    assert report["data_quality"]["windows_processed"] == 96
    # the lone surrogate is read as the Elasticsearch client reads it, then replaced: grouped, not rejected
    assert report["data_quality"]["bad_documents"] == {"wrong_type_message": 2}
    assert report["totals"]["events"] == 7
    with db.connect() as conn:
        samples = [r[0] for r in conn.execute("SELECT sample_message FROM window_problem_samples")]
        templates = [r[0] for r in conn.execute("SELECT template FROM grouping_templates")]
        epoch = conn.execute("SELECT first_seen FROM problems WHERE template LIKE 'epoch%' ORDER BY 1").fetchall()
    assert any("NUL in the first line \ufffd" in s for s in samples)
    assert any(s.startswith("Huge xxx") for s in samples)
    assert any(s == "Lone \ufffd surrogate" for s in samples)
    assert all("\x00" not in t for t in templates)
    assert [r[0] for r in epoch] == [t + timedelta(seconds=5), t + timedelta(seconds=6)]

    # the Elasticsearch client's JSON decoder keeps lone surrogates: the same window through the shared
    # analysis path, with documents decoded that way
    analysed = analyse_decoded(db, [json.loads(line) for line in lines],
                               Window(T0 + timedelta(hours=10), T0 + timedelta(hours=10, minutes=15)))
    assert analysed.events == 7 and analysed.bad_documents == 2
    with db.connect() as conn:
        samples = [r[0] for r in conn.execute("SELECT sample_message FROM window_problem_samples")]
    assert any(s.startswith("Lone \ufffd surrogate") for s in samples)


class DecodedSource:
    """Documents as a JSON decoder hands them over, through the real document decoder (tasks.source)."""

    def __init__(self, docs: list) -> None:
        self.docs = docs

    def read_window(self, window, stats):
        from tasks.source.documents import to_event

        for item in self.docs:
            event = to_event(item, FIELDS, stats)
            if event is not None and window.start <= event.timestamp < window.end:
                stats.events_read += 1
                yield event


def analyse_decoded(db, docs: list, window):
    from blocks.settings import load_settings
    from tasks.analysis import analyse_window, prepare_context

    settings = load_settings(use_blocks=False)
    ctx = prepare_context(settings, db, DecodedSource(docs), "test-run", dry_run=False)
    return analyse_window(ctx, window, mode="backfill")


def test_a_window_whose_transaction_failed_keeps_its_new_templates_for_the_retry(db, monkeypatch):
    """The engine learns in memory, the template store is written in the window's transaction: when that
    transaction fails after the write (here: detection), the retry must write the templates again — its
    messages now come from the engine's cache as known, and without the rollback being undone in memory the
    store would lose them (the next run would not know those problems' templates)."""
    import tasks.analysis as analysis
    from blocks.settings import load_settings
    from tasks.analysis import analyse_window, prepare_context

    window = Window(T0 + timedelta(hours=3), T0 + timedelta(hours=3, minutes=15))
    docs = [{"@timestamp": (window.start + timedelta(seconds=i)).isoformat(), "message": text,
             "log": {"level": "ERROR"}, "kubernetes": {"container": {"name": "api"}}}
            for i, text in enumerate(["Payment gateway refused card for order 4411",
                                      "Ledger lock wait exceeded on account 77",
                                      "Session store unavailable, retrying in 5 s"])]
    ctx = prepare_context(load_settings(use_blocks=False), db, DecodedSource(docs), "test-run", dry_run=False)
    judge = analysis._judge

    def failing(*args, **kwargs):
        raise RuntimeError("connection lost during detection")

    monkeypatch.setattr(analysis, "_judge", failing)
    with pytest.raises(RuntimeError):
        analyse_window(ctx, window, mode="backfill")
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM grouping_templates").fetchone()[0] == 0  # rolled back
    monkeypatch.setattr(analysis, "_judge", judge)
    analyse_window(ctx, window, mode="backfill")  # the task's retry, same context
    with db.connect() as conn:
        stored = {r[0] for r in conn.execute("SELECT problem_id FROM window_problem_samples")}
        known = {r[0] for r in conn.execute("SELECT problem_id FROM grouping_templates")}
    assert len(stored) == 3 and stored <= known
