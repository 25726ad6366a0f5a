"""Realistic error logs with ground truth, for the demo, the end-to-end tests and the detection benchmark.

Dozens of applications throw realistic exceptions (stack traces, variable ids, amounts, IPs, UUIDs) at rates
with daily and weekly seasonality and over-dispersed (negative-binomial) noise, plus sparse rare errors. On top:
incidents of every kind (spike, burst, deploy-induced new error, regression, cascade, and non-critical rises),
and recurring daily batch peaks. Everything is deterministic for a seed. Output: one NDJSON file per day (ECS
fields, CONTRACTS.md) and `truth.json`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson

from ailog.simulation.catalogue import APP_NAMES, CATALOGUE, DEPLOY_ERRORS, ErrorKind, stack_trace

WINDOW = timedelta(minutes=15)


@dataclass
class Series:
    app: str
    kind: ErrorKind
    rate: float  # mean events per 15-minute window at the daily peak
    silent: list[tuple[datetime, datetime]] = field(default_factory=list)


@dataclass
class GeneratedData:
    files: list[Path]
    truth_path: Path
    truth: dict
    events: int


def _season(t: datetime) -> float:
    """Business hours (CET) busier than nights; weekends quieter."""
    hour = (t.hour + 1) % 24 + t.minute / 60
    day = 0.3 + 1.0 * math.exp(-((hour - 13.0) ** 2) / (2 * 3.2 ** 2))
    return day * (0.55 if t.weekday() >= 5 else 1.0)


# Grading of incident sizes against the default severity rules (critical: >= 50 events and >= 10x): clearly
# critical above, clearly not below, and a grey zone between (sizes a careful person could call either way).
CRITICAL_FACTOR, CRITICAL_COUNT = 12.0, 65
MINOR_FACTOR, MINOR_COUNT = 6.0, 35


def _log_uniform(r: random.Random, low: float, high: float) -> float:
    return math.exp(r.uniform(math.log(low), math.log(high)))


def _graded(critical: bool, minor: bool) -> bool | None:
    return True if critical else False if minor else None


def _nb(r: random.Random, mean: float, k: float = 3.0) -> int:
    """Negative-binomial draw (gamma-Poisson mixture): real error counts are over-dispersed."""
    if mean <= 0:
        return 0
    lam = r.gammavariate(k, mean / k)
    # Poisson by inversion for small λ, normal approximation for large λ
    if lam > 50:
        return max(0, int(round(r.gauss(lam, math.sqrt(lam)))))
    n, p, target = 0, math.exp(-lam), r.random()
    cumulative = p
    while cumulative < target and n < 1000:
        n += 1
        p *= lam / n
        cumulative += p
    return n


class Generator:
    def __init__(self, start: date, days: int, seed: int, apps: int) -> None:
        self.r = random.Random(seed)
        self.start = datetime(start.year, start.month, start.day, tzinfo=UTC)
        self.end = self.start + timedelta(days=days)
        self.days = days
        self.apps = APP_NAMES[:max(3, min(apps, len(APP_NAMES)))]
        self.pods = {a: [f"{a}-{self.r.getrandbits(20):05x}-{self.r.getrandbits(16):04x}" for _ in range(3)]
                     for a in self.apps}
        self.versions = {a: f"1.{self.r.randint(0, 9)}.{self.r.randint(0, 20)}" for a in self.apps}
        self.series: list[Series] = []
        self.extra: list[tuple[datetime, str, ErrorKind, str | None]] = []  # (ts, app, kind, pod)
        self.truth: dict = {"start": self.start.isoformat(), "days": days, "incidents": [], "recurring": [],
                            "deploys": []}
        self._plan_background()
        self._plan_recurring()
        self._plan_incidents()

    # -- plan ------------------------------------------------------------------------------------
    def _plan_background(self) -> None:
        background = [k for k in CATALOGUE if k.key != "oom"]
        for app in self.apps:
            for kind in self.r.sample(background, self.r.randint(3, 6)):
                rate = min(12.0, math.exp(self.r.gauss(-0.4, 1.2)))
                self.series.append(Series(app, kind, rate))

    def _plan_recurring(self) -> None:
        batch_apps = [a for a in ("batch-settlement", "statements", "reporting", "ledger-writer") if a in self.apps]
        batch_apps = batch_apps or self.apps[-2:]
        slots = [(2, 0), (4, 30), (23, 15)]
        for app, (h, m) in zip(batch_apps[:3], slots, strict=False):
            kind = self.r.choice([k for k in CATALOGUE if k.key in ("file-missing", "deadlock", "duplicate-key")])
            size = self.r.randint(120, 180)
            self.truth["recurring"].append({"app": app, "error_key": kind.key, "error_type": kind.error_type,
                                            "minute_of_day": h * 60 + m, "count": size})
            for d in range(self.days):
                t0 = self.start + timedelta(days=d, hours=h, minutes=m)
                n = int(size * self.r.uniform(0.8, 1.2))
                for _ in range(n):
                    self.extra.append((t0 + timedelta(seconds=self.r.uniform(0, 600)), app, kind, None))

    def _window_start(self, day: int, first: int = 8, last: int = 92) -> datetime:
        """A random aligned window during the day (slots first..last), away from the batch slots."""
        while True:
            slot = self.r.randint(first, last)
            t = self.start + timedelta(days=day) + slot * WINDOW
            if all(abs((t.hour * 60 + t.minute) - rec["minute_of_day"]) > 60 for rec in self.truth["recurring"]):
                return t

    def _incident(self, kind: str, apps: list[str], error: ErrorKind, start: datetime, end: datetime, count: int,
                  critical: bool | None, **extra) -> None:
        """``critical`` None: a grey-zone size near the thresholds, neither required nor forbidden to alert."""
        self.truth["incidents"].append({
            "id": f"T{len(self.truth['incidents']) + 1:03d}", "kind": kind, "app": apps[0], "apps": apps,
            "error_key": error.key, "error_type": error.error_type, "start": start.isoformat(),
            "end": end.isoformat(), "count": count, "critical": critical, **extra})

    def _emit(self, app: str, error: ErrorKind, start: datetime, minutes: float, n: int, pod: str | None) -> None:
        for _ in range(n):
            self.extra.append((start + timedelta(seconds=self.r.uniform(0, minutes * 60)), app, error, pod))

    def _plan_incidents(self) -> None:
        r = self.r
        for day in range(1, self.days):
            plan = ["spike", "burst", "minor"]
            if day % 2 == 0:
                plan.append("new")
            if day % 3 == 1:
                plan.append("cascade")
            if day % 4 == 3:
                plan.append("oom")
            for kind in plan:
                busy = (28, 68) if kind == "spike" else (8, 92)  # rises of busy errors come with traffic
                t = self._window_start(day, *busy) + timedelta(minutes=r.randint(0, 9))
                app = r.choice(self.apps)
                mine = [s for s in self.series if s.app == app] or self.series
                if kind == "spike":
                    # a rise of one of the app's busier errors by a factor drawn from 2x..40x of its own level
                    s = r.choice([x for x in self.series if x.rate >= 3.0] or mine)
                    app = s.app
                    minutes = r.choice([30, 45, 60])
                    factor = _log_uniform(r, 2.0, 40.0)
                    level = max(s.rate * _season(t), 1.0)
                    per_window = int(round((factor - 1) * level))
                    n = per_window * minutes // 15
                    self._emit(app, s.kind, t, minutes, n, r.choice(self.pods[app]) if r.random() < 0.7 else None)
                    self._incident("spike", [app], s.kind, t, t + timedelta(minutes=minutes), n,
                                   _graded(factor >= CRITICAL_FACTOR and factor * level >= CRITICAL_COUNT,
                                           factor <= MINOR_FACTOR or factor * level <= MINOR_COUNT),
                                   factor=round(factor, 2), per_window=per_window)
                elif kind == "burst":
                    s = r.choice(mine)
                    n = int(_log_uniform(r, 15, 300))
                    self._emit(app, s.kind, t, 2.5, n, r.choice(self.pods[app]))
                    self._incident("burst", [app], s.kind, t, t + timedelta(minutes=3), n,
                                   _graded(n >= CRITICAL_COUNT, n <= MINOR_COUNT))
                elif kind == "minor":
                    s = r.choice(mine)
                    n = r.randint(6, 12)
                    self._emit(app, s.kind, t, 15, n, None)
                    self._incident("minor", [app], s.kind, t, t + timedelta(minutes=15), n, False)
                elif kind == "new":
                    error = DEPLOY_ERRORS[(day // 2) % len(DEPLOY_ERRORS)]
                    self.versions[app] = f"2.{day}.0"
                    self.truth["deploys"].append({"app": app, "at": t.isoformat(), "version": self.versions[app]})
                    self._emit(app, error, t, 60, r.randint(450, 650), None)
                    # the error keeps happening at a low rate after the deploy
                    self._emit(app, error, t + timedelta(hours=1), 24 * 60, r.randint(20, 40), None)
                    self._incident("new", [app], error, t, t + timedelta(hours=1), 500, True)
                elif kind == "cascade":
                    apps = r.sample(self.apps, min(6, len(self.apps)))
                    error = next(k for k in CATALOGUE if k.key == "pool-timeout")
                    for a in apps:
                        self._emit(a, error, t, 30, r.randint(120, 220), None)
                    self._incident("cascade", apps, error, t, t + timedelta(minutes=30), 900, True)
                elif kind == "oom":
                    error = next(k for k in CATALOGUE if k.key == "oom")
                    n = r.randint(3, 8)
                    self._emit(app, error, t, 5, n, r.choice(self.pods[app]))
                    self._incident("oom", [app], error, t, t + timedelta(minutes=5), n, True)
        self._plan_regression()

    def _plan_regression(self) -> None:
        """A problem silent for 9 days comes back (only in histories long enough to show it)."""
        if self.days < 12:
            return
        s = self.r.choice(self.series)
        quiet_from = self.start + timedelta(days=self.days - 11)
        back = self.start + timedelta(days=self.days - 2, hours=10)
        s.silent.append((quiet_from, back))
        self._emit(s.app, s.kind, back, 15, self.r.randint(150, 250), None)
        self._incident("regression", [s.app], s.kind, back, back + timedelta(minutes=15), 200, True)

    # -- emit ------------------------------------------------------------------------------------
    def day_events(self, day: int):
        r = random.Random(self.r.random() + day)
        t0 = self.start + timedelta(days=day)
        events = []
        for w in range(96):
            ws = t0 + w * WINDOW
            season = _season(ws)
            for s in self.series:
                if any(a <= ws < b for a, b in s.silent):
                    continue
                for _ in range(_nb(r, s.rate * season)):
                    events.append((ws + timedelta(seconds=r.uniform(0, 900)), s.app, s.kind, None))
        day_end = t0 + timedelta(days=1)
        events += [e for e in self.extra if t0 <= e[0] < day_end]
        events.sort(key=lambda e: (e[0], e[1], e[2].key))
        for ts, app, kind, pod in events:
            yield self._document(r, ts, app, kind, pod)

    def _document(self, r: random.Random, ts: datetime, app: str, kind: ErrorKind, pod: str | None) -> dict:
        message = kind.make(r)
        doc = {"@timestamp": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
               "message": message, "log": {"level": "ERROR"},
               "service": {"name": app, "version": self.versions[app]},
               "kubernetes": {"namespace": "bank-prod", "pod": {"name": pod or r.choice(self.pods[app])}},
               "host": {"name": f"node-{r.randint(1, 12):02d}"},
               "error": {"type": kind.error_type, "message": message},
               "trace": {"id": f"{r.getrandbits(128):032x}"}}
        if kind.frames:
            doc["error"]["stack_trace"] = stack_trace(kind, app, message, r)
        return doc


def generate(start: date, days: int, seed: int, out_dir: Path | str, *, apps: int = 30) -> GeneratedData:
    """Write `errors-YYYY-MM-DD.ndjson` per day and `truth.json` under out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gen = Generator(start, days, seed, apps)
    files, total = [], 0
    for day in range(days):
        path = out / f"errors-{(gen.start + timedelta(days=day)).date().isoformat()}.ndjson"
        with open(path, "wb") as fh:
            for doc in gen.day_events(day):
                fh.write(orjson.dumps(doc) + b"\n")
                total += 1
        files.append(path)
    gen.truth["events"] = total
    truth_path = out / "truth.json"
    truth_path.write_bytes(orjson.dumps(gen.truth, option=orjson.OPT_INDENT_2))
    return GeneratedData(files=files, truth_path=truth_path, truth=gen.truth, events=total)
