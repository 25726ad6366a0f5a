"""A fast generator of one bank's day (or days) of ECS error events for the scale benchmark.

`ailog/simulation` plans incidents and seasonality (what detection needs); the scale benchmark needs volume:
N events spread over a day with a heavy-tailed mix of a few thousand distinct problems — (application, error
kind, the class that throws it) — with the catalogue's realistic variable parts (ids, amounts, IPs, UUIDs) and
stack traces. Deterministic for a seed; written once and cached by (N, days, problems, seed).
"""

from __future__ import annotations

import gzip
import random
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from ailog.simulation.catalogue import APP_NAMES, CATALOGUE, ErrorKind

CLASSES = ["Service", "Repository", "Client", "Controller", "Handler", "Processor", "Validator", "Mapper", "Job",
           "Listener", "Adapter", "Gateway", "Scheduler", "Facade", "Importer", "Exporter", "Resolver", "Filter"]
AREAS = ["payment", "account", "card", "loan", "customer", "ledger", "statement", "transfer", "limit", "pricing",
         "fraud", "consent", "mandate", "invoice", "document", "session", "token", "fx", "fee", "report"]


def _problems(r: random.Random, count: int) -> list[tuple[str, ErrorKind, str, float]]:
    """(app, kind, throwing class, weight): Zipf-like weights, as real error mixes are."""
    out = []
    seen = set()
    while len(out) < count:
        app = r.choice(APP_NAMES)
        kind = r.choice(CATALOGUE)
        cls = f"{r.choice(AREAS).capitalize()}{r.choice(CLASSES)}"
        if (app, kind.key, cls) in seen:
            continue
        seen.add((app, kind.key, cls))
        out.append((app, kind, cls, 1.0 / (len(out) + 1) ** 0.9))
    return out


def _trace(kind: ErrorKind, app: str, cls: str, message: str, r: random.Random) -> str:
    pkg = app.replace("-", "")
    lines = [f"{kind.error_type}: {message}",
             f"\tat com.bank.{pkg}.{cls.lower()}.{cls}.handle({cls}.java:{_line(app + cls)})"]
    for frame in kind.frames:  # the same code location throws from the same line every time
        owner, _, method = frame.format(app=pkg).rpartition(".")
        lines.append(f"\tat {owner}.{method}({owner.rsplit('.', 1)[-1]}.java:{_line(owner + method)})")
    lines.append("\tat java.base/java.lang.Thread.run(Thread.java:1583)")
    return "\n".join(lines)


def _line(where: str) -> int:
    return 20 + zlib.crc32(where.encode()) % 380


def write_events(path: Path, n: int, *, start: datetime, days: int = 1, problems: int = 3000, seed: int = 7,
                 span_seconds: float | None = None) -> Path:
    """Write n events in time order over ``days`` days (or ``span_seconds``) from ``start`` (gzipped: .gz)."""
    r = random.Random(seed)
    mix = _problems(r, problems)
    weights = [w for *_, w in mix]
    span = span_seconds or days * 86400.0
    offsets = sorted(r.random() * span for _ in range(n))
    chosen = r.choices(range(len(mix)), weights=weights, k=n)
    pods = {a: [f"{a}-{r.getrandbits(20):05x}-{r.getrandbits(16):04x}" for _ in range(4)] for a in APP_NAMES}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with _opener(path)(tmp, "wb") as fh:
        buf = []
        for off, idx in zip(offsets, chosen, strict=True):
            app, kind, cls, _ = mix[idx]
            ts = start + timedelta(seconds=off)
            message = kind.make(r)
            doc = {"@timestamp": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"), "message": message,
                   "log": {"level": "ERROR"}, "service": {"name": app, "version": "1.4.2"},
                   "kubernetes": {"namespace": "bank-prod", "pod": {"name": r.choice(pods[app])}},
                   "host": {"name": f"node-{r.randint(1, 12):02d}"},
                   "error": {"type": kind.error_type, "message": message,
                             "stack_trace": _trace(kind, app, cls, message, r)},
                   "trace": {"id": f"{r.getrandbits(128):032x}"}}
            buf.append(orjson.dumps(doc))
            if len(buf) >= 10_000:
                fh.write(b"\n".join(buf) + b"\n")
                buf = []
        if buf:
            fh.write(b"\n".join(buf) + b"\n")
    tmp.rename(path)
    return path


def cached_events(cache: Path, n: int, *, start: datetime, days: int = 1, problems: int = 3000, seed: int = 7,
                  gz: bool = False) -> Path:
    """The generated file for these parameters, written on first use."""
    name = f"scale-{n}-{days}d-{problems}p-{seed}-{start.date().isoformat()}.ndjson" + (".gz" if gz else "")
    path = cache / name
    if not path.exists():
        write_events(path, n, start=start, days=days, problems=problems, seed=seed)
    return path


def read_documents(path: Path):
    """Every document of the file, parsed (the bench's NDJSON floor and the ES server's index)."""
    with _opener(path)(path, "rb") as fh:
        for line in fh:
            if line.strip():
                yield orjson.loads(line)


def _opener(path: Path):
    return gzip.open if path.suffix == ".gz" else open


if __name__ == "__main__":  # pragma: no cover - manual use
    import sys

    out = write_events(Path(sys.argv[1]), int(sys.argv[2]), start=datetime(2026, 11, 20, tzinfo=UTC))
    print(out)
