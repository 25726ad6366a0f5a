"""Read ahead: a second process reads, scrubs, groups and counts the next windows while this one stores and judges
the current one, so a backfill uses two cores (and the time PostgreSQL works on a window is not idle here).

The second process is a fresh interpreter (spawn: nothing of this process's threads, sockets or Prefect state is
inherited) that opens its own source and loads the grouping engine from PostgreSQL, exactly as a new pod would.
It sends each window back as a `CountedWindow` (counts plus the template rows its grouping learned), in plan
order, at most about one window ahead (the pipe's buffer is the queue). Analysing a window stays one code path
(tasks.analysis.analyse_window); only where its counting ran differs.

State stays in PostgreSQL: when a window's transaction fails, the process (whose engine already knows templates
that were just rolled back) is stopped, and the retry starts a new one from the stored state. When it dies on
its own (killed, out of memory), the run goes on in this process with a freshly loaded engine, and says so.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

from tasks.models import Window
from tasks.stage_times import StageTimes

log = logging.getLogger("ailog.read_ahead")

MIN_PLAN = 4  # fewer windows than this (a regular run's one or three) are counted in-process: a start costs ~1 s
MIN_CPUS = 1.5  # below this (a pod limited to one CPU) the two processes would only take turns on one core
STOP_SECONDS = 5.0


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

    def __init__(self, recipe: Recipe, cpus: float | None = None) -> None:
        self._recipe = recipe
        self.cpus = usable_cpus() if cpus is None else cpus
        self._process = None
        self._pipe = None
        self._plan: list[Window] = []  # the last plan, kept to restart from any of its windows
        self._sent: deque[Window] = deque()  # asked of the running process, not taken yet (in order)
        self._reading = False  # the current plan is read here
        self.failed = False  # it died on its own: the rest of the run counts in-process
        self.peak_rss_mib = 0.0  # the second process's own peak (the bench adds it to this process's)

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

    def stop(self) -> None:
        """Stop the second process (it may be blocked sending a window nobody will take)."""
        process, pipe = self._process, self._pipe
        self._process = self._pipe = None
        self._sent.clear()
        if process is None:
            return
        try:
            pipe.send(None)
        except OSError:
            pass
        pipe.close()  # a process blocked in send() gets a broken pipe and ends
        process.join(STOP_SECONDS)
        if process.is_alive():
            process.kill()
            process.join(STOP_SECONDS)

    def _send(self, windows: list[Window]) -> None:
        if self._process is None:
            context = multiprocessing.get_context("spawn")
            self._pipe, child = context.Pipe()
            self._process = context.Process(target=serve, args=(child, self._recipe), name="ailog-read-ahead",
                                            daemon=True)
            self._process.start()
            child.close()
        try:
            self._pipe.send(windows)
        except OSError:
            self._died()
            return
        self._sent.extend(windows)

    def _died(self) -> None:
        code = self._process.exitcode if self._process is not None else None
        self.stop()
        self.failed = True
        log.warning("the read-ahead process ended unexpectedly (exit code %s); the rest of the run reads in this "
                    "process", code)


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


def serve(pipe, recipe: Recipe) -> None:
    """The second process: open the source and engine, then count each planned window and send it back."""
    from core.redact import register_secret
    from tasks.analysis import count_window, open_grouping

    for secret in recipe.secrets:
        register_secret(secret)
    lock = threading.Lock()
    logging.getLogger().addHandler(_PipeHandler(pipe, lock))
    logging.getLogger().setLevel(logging.WARNING)
    try:
        source, engine = open_grouping(recipe.settings, recipe.input_paths)
    except Exception as exc:  # e.g. the database or a rule file: the parent raises it for the window it wants
        _send_error(pipe, exc, lock)
        return
    try:
        while True:
            try:
                windows = pipe.recv()
            except (EOFError, OSError):
                return
            if windows is None:
                return
            for window in windows:
                times = StageTimes()
                try:
                    counted = count_window(source, engine, window, times)
                except Exception as exc:
                    _send_error(pipe, exc, lock)
                    return  # its engine may hold half a window: the parent starts a new process
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                try:
                    with lock:
                        pipe.send(("counted", (counted, dict(times), rss)))
                except OSError:  # the parent stopped listening (stop(), or it died)
                    return
    finally:
        getattr(source, "close", lambda: None)()


def _send_error(pipe, exc: Exception, lock: threading.Lock) -> None:
    """The exception itself when it pickles (so the parent's retry rules see its type), else its text."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        exc = RuntimeError(f"{type(exc).__name__}: {exc}")
    try:
        with lock:
            pipe.send(("error", exc))
    except OSError:
        pass
