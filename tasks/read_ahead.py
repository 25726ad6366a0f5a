"""Read ahead: two more processes read, scrub, group and count the next windows while this one stores and judges
the current one, so a backfill uses more than one core (and the time PostgreSQL works on a window is not idle).

- the feeding process (`feed`) reads and scrubs the planned windows and sends their events in batches;
- the grouping process (`serve`) groups and counts them and sends each window back as a `CountedWindow` (counts
  plus the template rows its grouping learned), in plan order.

Both are fresh interpreters (spawn: nothing of this process's threads, sockets or Prefect state is inherited);
the feeding one opens its own source, the grouping one loads the grouping engine from PostgreSQL, exactly as a new
pod would. Each sends from a thread with a short queue (`_Sender`): a stage runs at most a window or two ahead of
the next. Grouping stays in one process, in window order, so problem ids are the ones a single process gives.
Analysing a window stays one code path (tasks.analysis.analyse_window); only where its counting ran differs.

State stays in PostgreSQL: when a window's transaction fails, both processes (whose engine already knows
templates that were just rolled back) are stopped, and the retry starts new ones from the stored state. When one
dies on its own (killed, out of memory), the run goes on in this process with a freshly loaded engine, and says so.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import queue
import resource
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

from tasks.event_rows import ROWS, EventDecoder, EventEncoder
from tasks.models import SourceStats, Window
from tasks.stage_times import StageTimes

log = logging.getLogger("ailog.read_ahead")

MIN_PLAN = 4  # fewer windows than this (a regular run's one or three) are counted in-process: a start costs ~1 s
MIN_CPUS = 1.5  # below this (a pod limited to one CPU) the two processes would only take turns on one core
# reading and scrubbing in a process of their own, from this many CPUs: on two cores a 1M-event day took 2.2 s
# less (5 %) than with two processes, faster in each of five alternating pairs (bench/README.md, "eleventh
# step"), for about 186 MiB more — the flow's process waits for PostgreSQL part of the time, a third one fills it
FEED_MIN_CPUS = 2.0
STOP_SECONDS = 5.0
FEED_BATCH = 1000  # events per message from the feeding process (one JSON array per batch: tasks.event_rows)
FEED_QUEUE = 16  # batches the feeding process may have queued (about 3 MB, a window and a half at 1M a day)
GROUP_QUEUE = 2  # counted windows the grouping process may have queued (about 2 MB each, pickled)


def usable_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> float:
    """The CPUs this process may use: its affinity, capped by the container's CPU limit (cgroup v2 `cpu.max`,
    or v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`; a Kubernetes `limits.cpu` ends up there)."""
    cpus = float(len(os.sched_getaffinity(0)))
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        try:
            quota = (cgroup / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (cgroup / "cpu" / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return cpus
    try:
        if quota not in ("max", "-1") and int(period) > 0:
            cpus = min(cpus, int(quota) / int(period))
    except ValueError:
        pass
    return cpus


@dataclass(frozen=True)
class Recipe:
    """What the second process needs to open the same source and engine: plain, picklable data."""

    settings: object  # blocks.settings.Settings, with the database settings resolved (the embedded server's socket)
    input_paths: tuple[str, ...] | None
    secrets: tuple[str, ...]  # the secret registry (core.redact): scrubbed from log text in that process too


def recipe_for(settings, db, input_paths: list[str] | None) -> Recipe:
    from core.redact import Redactor

    db.conninfo()  # resolves the embedded server's socket into db.settings
    return Recipe(replace(settings, database=db.settings), tuple(input_paths) if input_paths else None,
                  Redactor().known)


class ReadAhead:
    """The parent's side: send plans of windows, take their counts in order, restart on any deviation."""

    def __init__(self, recipe: Recipe | None = None, cpus: float | None = None) -> None:
        self._recipe = recipe  # None until `prepare`: processes started before it wait for it
        self.cpus = usable_cpus() if cpus is None else cpus
        self._process = None  # the grouping process (serve)
        self._feeder = None  # the feeding process (feed)
        self._pipe = None
        self._plan: list[Window] = []  # the last plan, kept to restart from any of its windows
        self._sent: deque[Window] = deque()  # asked of the running process, not taken yet (in order)
        self._reading = False  # the current plan is read here
        self._ending: list = []  # processes told to end (`release`), joined by `stop`
        self.failed = False  # it died on its own: the rest of the run counts in-process
        self.peak_rss_mib = 0.0  # the second process's own peak (the bench adds it to this process's)

    def start(self) -> None:
        """Start the processes before there is a plan — a backfill starts them before it opens its database, with
        no recipe yet — so their start (a fresh interpreter's imports, then the grouping engine loaded once the
        recipe comes) is not waited for. They read nothing until `plan`; a process not wanted after all goes with
        `stop`."""
        if self._process is None and not self.failed and self.cpus >= MIN_CPUS:
            self._spawn()

    @property
    def started(self) -> bool:
        return self._process is not None

    def prepare(self, recipe: Recipe) -> None:
        """The recipe, once the database is open: sent to processes started before it (later ones get it as
        they start)."""
        waiting = self._pipe is not None and self._recipe is None
        self._recipe = recipe
        if waiting:
            self._send_recipe()

    def _send_recipe(self) -> None:
        try:
            self._pipe.send(self._recipe)
        except OSError:
            self._died()

    def plan(self, windows: list[Window]) -> None:
        """The windows about to be analysed, in order. Starts reading them unless too few or it failed before."""
        if self._sent:  # the previous plan was not taken to its end: whatever it read ahead is not wanted
            self.stop()
        self._plan = list(windows)
        self._reading = not self.failed and bool(windows) and (
            self._process is not None or (len(windows) >= MIN_PLAN and self.cpus >= MIN_CPUS))
        if self._reading:
            self._send(self._plan)
            self._reading = not self.failed

    def take(self, window: Window, times: StageTimes):
        """The window's `CountedWindow`, or None when it is not read here (the caller counts it in-process).
        Raises what reading or grouping raised in the second process (the task's retry starts a new one)."""
        if self.failed or not self._reading or window not in self._plan:
            return None
        if not self._sent or self._sent[0] != window:
            self.stop()  # a retry, or windows skipped: read from this window on with the stored state
            self._send(self._plan[self._plan.index(window):])
            if self.failed:
                return None
        waited = time.perf_counter()
        try:
            kind, payload = self._pipe.recv()
            while kind == "log":  # its warnings, told here: this process's handlers reach the run's log
                relay(payload)
                kind, payload = self._pipe.recv()
        except (EOFError, OSError):
            self._died()
            return None
        times["read-ahead wait"] += time.perf_counter() - waited
        if kind == "error":
            self.stop()
            raise payload
        self._sent.popleft()
        counted, stage_seconds, rss_mib = payload
        for stage, seconds in stage_seconds.items():
            times[stage] += seconds
        self.peak_rss_mib = max(self.peak_rss_mib, rss_mib)
        return counted

    def release(self) -> None:
        """No more plans come: both processes are told to end and do so while this one finishes its own work
        (their exit — an interpreter freeing the engine and its caches — took about 0.4 s of a backfill's end
        when `stop` waited for it). `stop` still waits for them; a later `plan` starts new ones."""
        process, feeder, pipe = self._process, self._feeder, self._pipe
        self._process = self._feeder = self._pipe = None
        self._sent.clear()
        if process is None:
            return
        try:
            pipe.send(None)
        except OSError:
            pass
        pipe.close()  # a process blocked in send() gets a broken pipe and ends; so does its feeder then
        self._ending += [p for p in (process, feeder) if p is not None]

    def stop(self) -> None:
        """Stop both processes (the grouping one may be blocked sending a window nobody will take)."""
        self.release()
        ending, self._ending = self._ending, []
        for proc in ending:
            proc.join(STOP_SECONDS)
            if proc.is_alive():
                proc.kill()
                proc.join(STOP_SECONDS)

    def _spawn(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        feeding, fed = context.Pipe() if self.cpus >= FEED_MIN_CPUS else (None, None)
        if feeding is not None:
            self._feeder = context.Process(target=feed, args=(feeding,), daemon=True,
                                           name="ailog-read-ahead-feed")
            self._feeder.start()
        self._process = context.Process(target=serve, args=(child, fed), name="ailog-read-ahead",
                                        daemon=True)
        self._process.start()
        for end in (child, feeding, fed):
            if end is not None:
                end.close()
        if self._recipe is not None:  # else `prepare` sends it
            self._send_recipe()

    def _send(self, windows: list[Window]) -> None:
        if self._recipe is None:
            raise RuntimeError("read-ahead: a plan before the recipe (prepare)")
        if self._process is None:
            self._spawn()
        if self.failed:
            return
        try:
            self._pipe.send(windows)
        except OSError:
            self._died()
            return
        self._sent.extend(windows)

    def _died(self) -> None:
        processes = (("grouping", self._process), ("feeding", self._feeder))
        self.stop()
        self.failed = True
        ended = ", ".join(f"{name} process exit code {p.exitcode}" for name, p in processes if p is not None)
        log.warning("a read-ahead process ended unexpectedly (%s); the rest of the run reads in this process", ended)


def relay(record: tuple[str, int, str]) -> None:
    """A warning of the second process, logged here under its logger's name (and redacted like any other)."""
    name, level, text = record
    logging.getLogger(name).log(level, "%s", text)


class _PipeHandler(logging.Handler):
    """Sends the second process's warnings to the first: its own stderr is not the run's log (Prefect's
    handlers live in the first process). A lock: the Elasticsearch source's slice threads may log too."""

    def __init__(self, pipe, lock: threading.Lock) -> None:
        super().__init__(logging.WARNING)
        self._pipe, self._lock = pipe, lock

    def emit(self, record: logging.LogRecord) -> None:
        try:
            with self._lock:
                self._pipe.send(("log", (record.name, record.levelno, record.getMessage())))
        except Exception:  # noqa: S110 - the first process is gone or stopped listening: nothing to tell
            pass


def _start_child(pipe, recipe: Recipe) -> threading.Lock:
    """What both processes do first: the run's secrets registered, warnings sent up the pipe (the grouping process
    relays the feeding one's to the first)."""
    from core.redact import register_secret

    for secret in recipe.secrets:
        register_secret(secret)
    lock = threading.Lock()
    logging.getLogger().addHandler(_PipeHandler(pipe, lock))
    logging.getLogger().setLevel(logging.WARNING)
    return lock


def _recipe(pipe) -> Recipe | None:
    """The first message: what to open (the parent sends it once its database is open; see `ReadAhead.start`).
    None when the parent stopped first."""
    try:
        recipe = pipe.recv()
    except (EOFError, OSError):
        return None
    return recipe if isinstance(recipe, Recipe) else None


def _plans(pipe) -> Iterator[list[Window]]:
    """The plans sent down the pipe, until None (stop) or the sender is gone."""
    while True:
        try:
            windows = pipe.recv()
        except (EOFError, OSError):
            return
        if windows is None:
            return
        yield windows


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Sender:
    """Sends a process's messages down its pipe from a thread of its own, in order, up to ``depth`` queued: the
    process goes on reading or grouping while the next stage is busy, instead of waiting in send() each time its
    message does not fit the socket's buffer (a batch of events is about 200 kB, a counted window 2 MB; the
    buffer about 200 kB). Only pickled or encoded bytes are queued: the sending thread holds no GIL while it
    waits. `put` raises _PipeClosed once the other end is gone."""

    def __init__(self, pipe, lock: threading.Lock, depth: int) -> None:
        self._pipe, self._lock = pipe, lock
        self._queue: queue.Queue[bytes | None] = queue.Queue(depth)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ailog-read-ahead-send", daemon=True)
        self._thread.start()

    def put(self, message) -> float:
        """Queue a message (bytes as they are, anything else pickled); returns the seconds it waited for room."""
        data = message if isinstance(message, bytes) else ForkingPickler.dumps(message)
        began = time.perf_counter()
        while True:
            if self._closed.is_set():
                raise _PipeClosed
            try:
                self._queue.put(data, timeout=0.2)
                return time.perf_counter() - began
            except queue.Full:
                continue

    def close(self) -> None:
        """Send what is queued (unless the other end is gone or stops reading), then end the thread."""
        deadline = time.monotonic() + STOP_SECONDS
        while not self._closed.is_set() and time.monotonic() < deadline:
            try:
                self._queue.put(None, timeout=0.2)
                break
            except queue.Full:
                continue
        self._thread.join(max(deadline - time.monotonic(), 0.0))

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            try:
                with self._lock:
                    self._pipe.send_bytes(data)
            except OSError:  # the other process is gone (stopped, or it died)
                self._closed.set()
                return
        self._closed.set()


def feed(pipe) -> None:
    """The feeding process: read and scrub each planned window and send its events to the grouping process, in
    batches, then the window's source stats ("end"). Plans come from the grouping process, in its order."""
    from tasks.analysis import open_scrubbed_source

    recipe = _recipe(pipe)
    if recipe is None:
        return
    lock = _start_child(pipe, recipe)
    try:
        source = open_scrubbed_source(recipe.settings, recipe.input_paths)
    except Exception as exc:  # e.g. a missing input file: raised for the window the run wants
        _send_error(pipe, exc, lock)
        return
    clock = time.perf_counter
    sender = _Sender(pipe, lock, FEED_QUEUE)
    send = sender.put
    batch = EventEncoder()
    add = batch.add
    try:
        for windows in _plans(pipe):
            for window in windows:
                stats, began, blocked = SourceStats(), clock(), 0.0
                try:
                    for event in source.read_window(window, stats):
                        if add(event) >= FEED_BATCH:
                            blocked += send(batch.encode())
                    if len(batch):
                        blocked += send(batch.encode())
                    send(("end", (window, stats, clock() - began - blocked, _rss_mib())))
                except _PipeClosed:
                    return
                except Exception as exc:
                    try:
                        send(_error(exc))
                    except _PipeClosed:
                        pass
                    return
    finally:
        sender.close()
        getattr(source, "close", lambda: None)()


class _PipeClosed(Exception):
    """The process at the other end of the pipe is gone."""


class FeederGone(Exception):
    """The feeding process ended without a word (killed): the grouping process ends too, and the run counts in
    its own process."""


class FedSource:
    """The grouping process's source: the feeding process's events of each window, in plan order."""

    def __init__(self, pipe) -> None:
        self._pipe = pipe
        self._events = EventDecoder()  # the feeding process's EventEncoder, its table included
        self.read_seconds = 0.0  # the feeding process's reading and scrubbing, summed
        self.rss_mib = 0.0  # its peak RSS

    def plan(self, windows: list[Window]) -> None:
        try:
            self._pipe.send(windows)
        except OSError:
            raise FeederGone from None

    def read_window(self, window: Window, stats: SourceStats):
        while True:
            try:
                data = self._pipe.recv_bytes()
            except (EOFError, OSError):
                raise FeederGone from None
            if data[:1] == ROWS:
                yield from self._events.decode(data)
                continue
            kind, payload = pickle.loads(data)
            if kind == "events":
                yield from self._events.events(payload)
            elif kind == "end":
                done, read, seconds, rss = payload
                if done != window:
                    raise RuntimeError(f"read-ahead: fed {done.label} while grouping {window.label}")
                stats.events_read += read.events_read
                stats.bad_documents.update(read.bad_documents)
                stats.samples = {**read.samples, **stats.samples}
                self.read_seconds += seconds
                self.rss_mib = max(self.rss_mib, rss)
                return
            elif kind == "log":
                relay(payload)  # its warnings go on to the first process (this one's handler)
            else:
                raise payload

    def close(self) -> None:
        try:
            self._pipe.send(None)
        except OSError:
            pass
        self._pipe.close()


def serve(pipe, feeding) -> None:
    """The grouping process: load the engine, then group and count each planned window — read here, or as the
    feeding process sends its events (``feeding``: its pipe) — and send it back."""
    from core.db import Database
    from tasks.analysis import count_window, load_grouping_engine, open_scrubbed_source, tune_gc
    from tasks.store.window_counts import render_for_store

    recipe = _recipe(pipe)
    if recipe is None:
        return
    if feeding is not None:
        try:
            feeding.send(recipe)
        except OSError:
            return  # the feeding process is gone already: the parent sees this one end and counts in-process
    lock = _start_child(pipe, recipe)
    tune_gc()
    source = None
    try:
        source = FedSource(feeding) if feeding is not None else open_scrubbed_source(recipe.settings,
                                                                                     recipe.input_paths)
        engine = load_grouping_engine(recipe.settings, Database(recipe.settings.database))
    except Exception as exc:  # e.g. the database or a rule file: the parent raises it for the window it wants
        _send_error(pipe, exc, lock)
        getattr(source, "close", lambda: None)()
        return
    fed = feeding is not None
    sender = _Sender(pipe, lock, GROUP_QUEUE)
    try:
        for windows in _plans(pipe):
            if fed:
                source.plan(windows)
            for window in windows:
                times = StageTimes()
                try:
                    counted = count_window(source, engine, window, times)
                except FeederGone:
                    return  # the parent sees this process end: it counts the rest itself
                except Exception as exc:
                    sender.put(_error(exc))  # after the windows counted before it
                    return  # its engine may hold half a window: the parent starts new processes
                counted.pending = None  # this engine's own objects: a rollback over there restarts this process
                render_for_store(counted.counts)  # text crosses the pipe cheaper than nested dicts
                rss = _rss_mib()
                if fed:
                    times["feed wait"] = times.pop("read")  # waiting for the feeding process's events
                    times["read"], source.read_seconds = source.read_seconds, 0.0
                    rss += source.rss_mib  # the pod holds both
                try:
                    sender.put(("counted", (counted, dict(times), rss)))
                except _PipeClosed:  # the parent stopped listening (stop(), or it died)
                    return
    except (FeederGone, _PipeClosed):
        return
    finally:
        sender.close()
        getattr(source, "close", lambda: None)()


def _error(exc: Exception) -> tuple[str, Exception]:
    """The message for an exception: itself when it pickles (so the parent's retry rules see its type), else
    its text."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        exc = RuntimeError(f"{type(exc).__name__}: {exc}")
    return "error", exc


def _send_error(pipe, exc: Exception, lock: threading.Lock) -> None:
    """An exception sent at once (before a process has its `_Sender`)."""
    try:
        with lock:
            pipe.send(_error(exc))
    except OSError:
        pass
