"""Read ahead (tasks.read_ahead): windows counted in a second process (read there, or by a third, feeding one) are
stored exactly as if counted in this one — also when a window's transaction fails and is retried, when a
read-ahead process dies, or when it fails — and the log text it reads is scrubbed of the run's secrets like this
process's.

The logs are real (Loghub, five systems interleaved), in time order over eight windows, so new templates keep
appearing and merging in later windows: what grouping learns in a window must be stored with that window."""

from __future__ import annotations

import csv
import itertools
import logging
import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.models import LogEvent, Window
from tests.conftest import clone_database
from tests.test_fanout import rows

DATA = Path(__file__).parent / "data" / "loghub2k"
SYSTEMS = ("HDFS", "Spark", "OpenStack", "Hadoop", "Thunderbird")
T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
WINDOWS = [Window(T0 + timedelta(minutes=15 * i), T0 + timedelta(minutes=15 * (i + 1))) for i in range(8)]
SECRET = "Zq8-vault-Lk27x"  # no default pattern matches it: only the secret registry masks it


def write_logs(path: Path, per_window: int = 60, secret: str | None = None) -> Path:
    lines = {s: [r["Content"] for r in csv.DictReader((DATA / s / f"{s}_2k.log_structured.csv").open())]
             for s in SYSTEMS}
    with path.open("wb") as fh:
        for w, window in enumerate(WINDOWS):
            for i in range(per_window):
                system = SYSTEMS[(i + w) % len(SYSTEMS)]
                message = lines[system][(w * per_window + i) % len(lines[system])]
                if secret and i == 7:
                    message = f"{message} upstream answered {secret}"
                ts = window.start + timedelta(seconds=i * 900 / per_window)
                fh.write(orjson.dumps({"@timestamp": ts.isoformat(), "message": message, "log": {"level": "ERROR"},
                                       "service": {"name": system.lower()}}) + b"\n")
    return path


def open_run(db, path: Path, *, read_ahead: bool, feed: bool = False, started=None):
    """``feed``: as in a pod with two CPUs or more, reading and scrubbing run in a feeding process of their own."""
    from blocks.settings import load_settings
    from tasks.analysis import prepare_context
    from tasks.read_ahead import FEED_MIN_CPUS, MIN_CPUS
    from tasks.source import open_source

    settings = load_settings(use_blocks=False)
    ctx = prepare_context(settings, db, open_source(settings, [str(path)]), "test-run", dry_run=False,
                          read_ahead=read_ahead, input_paths=[str(path)], started=started)
    if read_ahead and started is None:
        ctx.read_ahead.cpus = FEED_MIN_CPUS if feed else MIN_CPUS
    return ctx


def analyse(ctx, windows=WINDOWS) -> None:
    from tasks.analysis import analyse_window

    ctx.plan(windows)
    for window in windows:
        analyse_window(ctx, window, mode="backfill")


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return write_logs(tmp_path / "logs.ndjson")


@pytest.fixture
def serial(pg_template, logs):
    """The same logs analysed in this process, in a database of their own: the rows to match."""
    other = clone_database(pg_template, f"serial{os.getpid()}")
    ctx = open_run(other, logs, read_ahead=False)
    try:
        analyse(ctx)
    finally:
        ctx.close()
    assert ctx.read_ahead is None and "read-ahead wait" not in ctx.times
    yield rows(other)
    with pg_template.connect(ddl=True, autocommit=True, dbname="postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{other.settings.name}" WITH (FORCE)')


@pytest.mark.parametrize("feed", [False, True], ids=["two processes", "three processes"])
def test_windows_counted_in_the_read_ahead_process_store_the_same_rows(db, logs, serial, feed):
    ctx = open_run(db, logs, read_ahead=True, feed=feed)
    try:
        analyse(ctx)
    finally:
        ctx.close()
    assert ctx.times["read-ahead wait"] > 0 and ctx.read_ahead.peak_rss_mib > 0  # counted over there
    assert ctx.times["read"] > 0 and ("feed wait" in ctx.times) == feed  # read in the feeding process or not
    assert ctx.engine_stale and not ctx.read_ahead.failed
    got = rows(db)
    assert len(got["grouping_templates"]) > 20 and len(got["window_counts"]) > 100
    assert got == serial


def test_processes_started_before_the_database_was_open_wait_for_their_recipe(db, logs, serial):
    """A backfill starts both processes first (`start_read_ahead`) and gives them the recipe once its database is
    open: they store the same rows. Processes stopped before any recipe came end cleanly."""
    from tasks.read_ahead import FEED_MIN_CPUS, ReadAhead

    unused = ReadAhead(cpus=FEED_MIN_CPUS)
    unused.start()
    processes = [unused._process, unused._feeder]
    unused.stop()
    assert [p.exitcode for p in processes] == [0, 0]

    early = ReadAhead(cpus=FEED_MIN_CPUS)
    early.start()
    assert early.started and early._feeder is not None
    ctx = open_run(db, logs, read_ahead=True, started=early)
    try:
        assert ctx.read_ahead is early
        analyse(ctx)
    finally:
        ctx.close()
    assert ctx.times["feed wait"] > 0 and not early.failed
    assert rows(db) == serial


def test_released_processes_end_on_their_own_and_a_later_plan_starts_new_ones(db, logs, serial):
    """A backfill's last day taken, `stop_reading` tells both processes to end without waiting for them (they exit
    while the reports are written); a plan after that (another day) starts new ones from the stored state."""
    ctx = open_run(db, logs, read_ahead=True, feed=True)
    try:
        analyse(ctx, WINDOWS[:4])
        processes = [ctx.read_ahead._process, ctx.read_ahead._feeder]
        ctx.stop_reading()
        for process in processes:
            process.join(10)
            assert process.exitcode == 0  # ended by itself: nobody joined or killed it
        analyse(ctx, WINDOWS[4:])
        assert ctx.read_ahead._process is not None and ctx.read_ahead._process not in processes
    finally:
        ctx.close()
    assert not ctx.read_ahead.failed and ctx.read_ahead._ending == []
    assert rows(db) == serial


@pytest.mark.parametrize("feed", [False, True], ids=["two processes", "three processes"])
def test_a_window_whose_transaction_failed_is_stored_whole_by_the_retry(db, logs, serial, monkeypatch, feed):
    """Window 4's transaction fails after the second process has grouped it (and gone on to the next ones):
    its templates were rolled back, so the retry must not take them from a process that already knows them."""
    import tasks.analysis as analysis

    judge, calls = analysis._judge, []

    def failing_once(ctx, conn, window, *args):
        calls.append(window)
        if window == WINDOWS[3] and calls.count(window) == 1:
            raise RuntimeError("connection lost during detection")
        return judge(ctx, conn, window, *args)

    monkeypatch.setattr(analysis, "_judge", failing_once)
    ctx = open_run(db, logs, read_ahead=True, feed=feed)
    try:
        with pytest.raises(RuntimeError, match="connection lost"):
            analyse(ctx)
        for window in WINDOWS[3:]:  # the task's retry: the same context, from the failed window on
            analysis.analyse_window(ctx, window, mode="backfill")
    finally:
        ctx.close()
    assert calls.count(WINDOWS[3]) == 2 and not ctx.read_ahead.failed
    assert rows(db) == serial


@pytest.mark.parametrize(("which", "feed"), [("grouping", False), ("grouping", True), ("feeding", True)])
def test_when_the_read_ahead_process_dies_the_run_goes_on_in_this_process(db, logs, serial, caplog, which, feed):
    """A read-ahead process killed between two plans (a backfill's days): the next plan finds it gone and the
    run goes on here, with an engine loaded from what is stored."""
    from tasks.analysis import analyse_window

    ctx = open_run(db, logs, read_ahead=True, feed=feed)
    try:
        for day, plan in enumerate((WINDOWS[:4], WINDOWS[4:])):
            if day:
                process = ctx.read_ahead._process if which == "grouping" else ctx.read_ahead._feeder
                os.kill(process.pid, signal.SIGKILL)
                process.join(10)
            with caplog.at_level(logging.WARNING, logger="ailog.read_ahead"):
                ctx.plan(plan)
                for window in plan:
                    analyse_window(ctx, window, mode="backfill")
    finally:
        ctx.close()
    assert ctx.read_ahead.failed and f"{which} process exit code -9" in caplog.text
    assert rows(db) == serial


def test_a_feeding_process_killed_before_the_first_window_is_taken(db, logs, serial, caplog):
    """Killed while the grouping process waits for its first events (or is handing it the plan): the grouping
    process ends too, and the run counts every window here, storing the same rows."""
    from tasks.analysis import analyse_window

    ctx = open_run(db, logs, read_ahead=True, feed=True)
    try:
        with caplog.at_level(logging.WARNING, logger="ailog.read_ahead"):
            ctx.plan(WINDOWS)
            os.kill(ctx.read_ahead._feeder.pid, signal.SIGKILL)
            for window in WINDOWS:
                analyse_window(ctx, window, mode="backfill")
    finally:
        ctx.close()
    assert ctx.read_ahead.failed and "feeding process exit code -9" in caplog.text
    assert rows(db) == serial


def test_an_error_in_the_read_ahead_process_reaches_the_run_with_its_type(db, logs, tmp_path):
    """The input vanishes after the run opened it: the window fails as it would in this process (same type and
    words), so the task's retry rules (a configuration error is not retried) see the same exception."""
    from tasks.analysis import analyse_window

    errors = []
    for read_ahead, feed in ((False, False), (True, False), (True, True)):
        ctx = open_run(db, logs, read_ahead=read_ahead, feed=feed)
        moved = logs.rename(tmp_path / "moved.ndjson")
        try:
            ctx.plan(WINDOWS)
            with pytest.raises(Exception) as caught:
                analyse_window(ctx, WINDOWS[0], mode="backfill")
            errors.append((type(caught.value), str(caught.value)))
            assert not (read_ahead and ctx.read_ahead.failed)  # it came through the pipe, not from a fallback
        finally:
            ctx.close()
            moved.rename(logs)
    assert errors[0] == errors[1] == errors[2], errors
    assert str(logs) in errors[1][1]


@pytest.mark.parametrize("feed", [False, True], ids=["two processes", "three processes"])
def test_the_read_ahead_process_scrubs_the_secrets_this_run_registered(db, tmp_path, feed):
    from core.redact import _registry, register_secret

    logs = write_logs(tmp_path / "secret.ndjson", secret=SECRET)
    assert SECRET.encode() in logs.read_bytes()
    register_secret(SECRET)  # e.g. a password read from a Prefect block: not in this process's environment
    try:
        ctx = open_run(db, logs, read_ahead=True, feed=feed)
        try:
            analyse(ctx)
        finally:
            ctx.close()
    finally:
        _registry.difference_update({SECRET})
    assert ctx.times["read-ahead wait"] > 0
    stored = repr(rows(db))
    assert "upstream answered" in stored and SECRET not in stored


@pytest.mark.parametrize("files, limit", [({"cpu.max": "max 100000\n"}, None), ({"cpu.max": "100000 100000\n"}, 1.0),
                                          ({"cpu.max": "150000 100000\n"}, 1.5),
                                          ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 0.5),
                                          ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
                                          ({}, None), ({"cpu.max": "garbage\n"}, None)])
def test_the_usable_cpus_are_capped_by_the_container_limit(tmp_path, files, limit):
    from tasks.read_ahead import usable_cpus

    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    cpus = float(len(os.sched_getaffinity(0)))
    assert usable_cpus(tmp_path) == (cpus if limit is None else min(cpus, limit))


def test_a_pod_limited_to_one_cpu_counts_in_this_process(db, logs, serial):
    """Two processes on one core only take turns: the windows are counted here, and stored the same."""
    from tasks.read_ahead import ReadAhead

    ctx = open_run(db, logs, read_ahead=True)
    ctx.read_ahead = ReadAhead(ctx.read_ahead._recipe, cpus=1.0)
    try:
        analyse(ctx)
    finally:
        ctx.close()
    assert ctx.read_ahead._process is None and "read-ahead wait" not in ctx.times
    assert rows(db) == serial


def test_a_warning_in_the_read_ahead_process_reaches_the_run_log(db, logs, caplog):
    """The Elasticsearch source warns when it cannot close a point in time (every close answers 503 here): read
    ahead, the warning is logged in the second process, and must reach this one's log."""
    from dataclasses import replace

    from blocks.settings import load_settings
    from tasks.source import open_source
    from tests.fakes.elasticsearch_server import FakeElasticsearch
    from tests.test_source_files_and_es import es_settings

    docs = [orjson.loads(line) for line in logs.read_bytes().splitlines()]
    with FakeElasticsearch(docs) as es:
        es.close_faults = 10**6
        settings = load_settings(use_blocks=False)
        settings = replace(settings, elasticsearch=es_settings(es.url, page_size=50, max_retries=0))
        from tasks.analysis import prepare_context
        from tasks.read_ahead import FEED_MIN_CPUS

        ctx = prepare_context(settings, db, open_source(settings, None), "test-run", dry_run=False, read_ahead=True)
        ctx.read_ahead.cpus = FEED_MIN_CPUS  # read in the feeding process: two pipes to the run's log
        try:
            with caplog.at_level(logging.WARNING):
                analyse(ctx)
        finally:
            ctx.close()
    assert ctx.times["read-ahead wait"] > 0 and not ctx.read_ahead.failed
    closes = [r for r in caplog.records if "could not close the point in time" in r.getMessage()]
    assert len(closes) == len(WINDOWS) and closes[0].name == "ailog.source.elasticsearch"


def test_the_read_ahead_process_warnings_travel_as_log_messages(caplog):
    """Its own stderr is not the run's log: a warning logged there (e.g. the Elasticsearch source's) travels
    through the pipe and is logged here under the same logger, ahead of the window it came with."""
    import multiprocessing
    import threading

    from tasks.read_ahead import _PipeHandler, relay

    here, there = multiprocessing.Pipe()
    logger = logging.getLogger("ailog.source.test")
    handler = _PipeHandler(there, threading.Lock())
    logger.addHandler(handler)
    try:
        logger.warning("could not close the point in time (%s)", "ConnectionError")
        logger.info("not sent: below a warning")
    finally:
        logger.removeHandler(handler)
    kind, payload = here.recv()
    assert kind == "log" and not here.poll(0.2)
    caplog.clear()  # the warning as logged over there (here, in this test)
    with caplog.at_level(logging.WARNING, logger="ailog.source.test"):
        relay(payload)
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("ailog.source.test", logging.WARNING, "could not close the point in time (ConnectionError)")]


_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
_VALUE = st.none() | st.sampled_from(["", "payments", "pod-1", "ERROR"]) | _TEXT  # repeats, as in real logs
_TRACE = st.none() | _TEXT | st.builds("\n".join, st.lists(st.sampled_from(["\tat a.B.c(B.java:1)", ""]) | _TEXT,
                                                              min_size=2, max_size=4))


@st.composite
def _events(draw) -> LogEvent:
    """Any event; its stack trace may start with "<error type>: <message>" (sent as a mark, rebuilt)."""
    ts = draw(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)))
    message, app = draw(_TEXT), draw(st.sampled_from(["payments", "unknown"]) | _TEXT)
    level, namespace, pod, host, version, error_type, trace_id = (draw(_VALUE) for _ in range(7))
    trace = draw(_TRACE)
    if trace is not None and draw(st.booleans()):
        cut = trace.find("\n")
        trace = f"{error_type}: {message}" + (trace[cut:] if cut >= 0 else "")
    return LogEvent(ts, message, app, level, namespace, pod, host, version, error_type, trace, trace_id)


@settings(max_examples=80, deadline=None)
@given(st.lists(_events(), max_size=30), st.lists(st.integers(1, 8), min_size=1, max_size=8),
       st.sampled_from([0, 30, 10_000]), st.booleans())
def test_events_cross_between_the_read_ahead_processes_unchanged(events, batch_sizes, table_chars, unencodable):
    """Events travel from the feeding to the grouping process in batches (tasks.event_rows): JSON rows with
    timestamps as ISO 8601, each repeated value sent once and then by number, a stack trace's "<error type>:
    <message>" first line as a mark; a batch orjson refuses (a lone surrogate, which a user's replacement text
    could hold) goes pickled with the same contents. Through a real pipe into `FedSource`, every event comes out
    equal to what was sent — any text, any microsecond, None fields — over batches of any size and whatever
    number of times the table started anew (a budget of 0 or 30 characters starts one nearly every batch)."""
    from multiprocessing import Pipe

    from tasks.event_rows import ROWS, EventEncoder
    from tasks.models import SourceStats
    from tasks.read_ahead import FedSource

    if unencodable and events:
        events[-1].message += "\ud800"
    window = Window(T0, T0 + timedelta(minutes=15))
    ours, theirs = Pipe()
    encoder, sizes, as_json = EventEncoder(table_chars), itertools.cycle(batch_sizes), []

    def send() -> None:
        data = encoder.encode()
        as_json.append(data[:1] == ROWS)
        theirs.send_bytes(data)

    pending = next(sizes)
    for event in events:
        if encoder.add(event) >= pending:
            send()
            pending = next(sizes)
    if len(encoder):
        send()
    assert as_json == [True] * (len(as_json) - 1) + [not unencodable] * bool(as_json)
    theirs.send(("end", (window, SourceStats(events_read=len(events)), 0.0, 0.0)))
    stats = SourceStats()
    assert list(FedSource(ours).read_window(window, stats)) == events
    assert stats.events_read == len(events)


def test_a_backfill_whose_database_cannot_be_opened_stops_the_processes_it_started(monkeypatch):
    """The backfill starts its read-ahead processes before it opens the database: when that fails, they are
    stopped, not left waiting for a recipe that never comes."""
    import flows.backfill as backfill_flow
    from core.errors import ConfigError
    from tasks.read_ahead import FEED_MIN_CPUS, ReadAhead

    processes = []

    def start():
        read_ahead = ReadAhead(cpus=FEED_MIN_CPUS)
        read_ahead.start()
        processes.extend([read_ahead._process, read_ahead._feeder])
        return read_ahead

    def unreachable(dry_run):
        raise ConfigError("cannot connect to the database at 127.0.0.1:1")

    monkeypatch.setattr(backfill_flow, "start_read_ahead", start)
    monkeypatch.setattr(backfill_flow, "open_state", unreachable)
    with pytest.raises(ConfigError, match="cannot connect"):
        backfill_flow.backfill.fn(days=1, publish=False)
    assert len(processes) == 2 and all(p is not None and p.exitcode is not None for p in processes)
