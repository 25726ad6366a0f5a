"""Cost of log-content scrubbing: events/s of reading generated days from files with and without the
scrubber (the plain read is the baseline, measured in the same run), and the scrubber alone.

    python bench/scrubbing_bench.py [--days 1] [--apps 30] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, date, datetime, timedelta

from ailog.simulation import generate
from blocks.settings import ElasticsearchSettings
from tasks.models import SourceStats, Window
from tasks.scrubbing import ScrubbedSource, Scrubber
from tasks.source.files import FileSource


def best_of(repeat: int, fn) -> tuple[float, int]:
    best, n = float("inf"), 0
    for _ in range(repeat):
        started = time.perf_counter()
        n = fn()
        best = min(best, time.perf_counter() - started)
    return best, n

def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--apps", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    start = date(2026, 11, 2)
    data = generate(start, args.days, seed=7, out_dir=tempfile.mkdtemp(prefix="scrub-bench-"), apps=args.apps)
    window = Window(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC) + timedelta(days=args.days))
    source = FileSource([str(p) for p in data.files], ElasticsearchSettings().fields)
    events = list(source.read_window(window, SourceStats()))

    def scrub_only() -> int:  # a fresh scrubber per repeat: only repeats within the data hit its cache
        scrubber = Scrubber()
        for e in events:
            scrubber.scrub(e.message)
            scrubber.scrub(e.stack_trace)
        return len(events)

    def read_plain() -> int:
        return sum(1 for _ in source.read_window(window, SourceStats()))

    def read_scrubbed() -> int:
        return sum(1 for _ in ScrubbedSource(source, Scrubber()).read_window(window, SourceStats()))

    plain, n = best_of(args.repeat, read_plain)
    scrubbed, _ = best_of(args.repeat, read_scrubbed)
    only, _ = best_of(args.repeat, scrub_only)
    print(f"events: {n}")
    print(f"read (files, no scrubbing): {n / plain:,.0f} events/s")
    print(f"read + scrub:               {n / scrubbed:,.0f} events/s  (ratio {scrubbed / plain:.2f}x the plain read)")
    print(f"scrub alone:                {n / only:,.0f} events/s  ({only / n * 1e6:.1f} µs per event)")
    uncached, _ = best_of(args.repeat, lambda: sum(1 for e in events if Scrubber()._scrub(e.message + " ")))
    print(f"scrub, no cache (worst case, every message new): {n / uncached:,.0f} messages/s")

if __name__ == "__main__":
    main()
