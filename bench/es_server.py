"""The test suite's Elasticsearch-protocol server, made fast enough for millions of documents.

`tests/fakes/elasticsearch_server.FakeElasticsearch` scans every document on every page request (fine for
tests, quadratic for a benchmark). This subclass keeps the documents sorted by (timestamp, doc number) with
their `_source` pre-serialised, answers a page with two binary searches and a byte join, and otherwise
speaks the same protocol (PIT, search_after, slice, filter_path-shaped answers, X-Elastic-Product). It runs in
its own process (`serve_in_process`) so that serving does not compete with the client for the GIL.
"""

from __future__ import annotations

import bisect
import multiprocessing
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.elasticsearch_server import FakeElasticsearch  # noqa: E402
from tests.fakes.http import Response  # noqa: E402

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(value: str) -> int:
    t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (t - EPOCH) // _US


_US = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC) - EPOCH


class FastElasticsearch(FakeElasticsearch):
    """Each document is kept as its whole hit (`_source` and `sort`), serialised once: a page is a slice joined.
    A real cluster serves from other machines; this one shares the benchmark's cores, so what it spends per page
    is taken from the backfill (which keeps every core busy) more than from the bare read (one core)."""

    def __init__(self, docs, *, timestamp_field: str = "@timestamp", index: str = "logs-bench") -> None:
        super().__init__([], indices=(index,))  # the strict stand-in answers 404 for any other index name
        self.server.RequestHandlerClass.disable_nagle_algorithm = True  # headers and body leave as they are written
        rows = []
        for no, doc in enumerate(docs):
            ts = doc.get(timestamp_field)
            if isinstance(ts, str):
                rows.append((_micros(ts), no, b'{"_source":' + orjson.dumps(doc) + b',"sort":'
                             + orjson.dumps([ts, no]) + b"}"))
        rows.sort()
        self.keys = [(r[0], r[1]) for r in rows]
        self.hits = [r[2] for r in rows]
        self.count = len(rows)

    def _search(self, body: dict, query: dict) -> Response:  # noqa: ARG002 - filter_path: answers are minimal already
        self.search_calls += 1
        pit = body["pit"]["id"]
        if pit.split(".")[0] not in self.open_pits:  # open_pits holds base ids, the client sends `base.gen`
            return self._error(404, "search_context_missing_exception", "No search context found")
        bounds = next(iter(body["query"]["bool"]["filter"][0]["range"].values()))
        lo = bisect.bisect_left(self.keys, (_micros(bounds["gte"]), -1))
        hi = bisect.bisect_left(self.keys, (_micros(bounds["lt"]), -1))
        after = body.get("search_after")
        if after:
            lo = max(lo, bisect.bisect_right(self.keys, (_micros(after[0]), after[1])))
        size = body.get("size", 10)
        sliced = body.get("slice")
        if sliced is None:
            parts = self.hits[lo:min(hi, lo + size)]
        else:
            parts, i = [], lo
            while i < hi and len(parts) < size:
                if self.keys[i][1] % sliced["max"] == sliced["id"]:
                    parts.append(self.hits[i])
                i += 1
        payload = (b'{"pit_id":' + orjson.dumps(pit) + b',"took":1,"timed_out":false,'
                   b'"_shards":{"total":3,"successful":3,"skipped":0,"failed":0},"hits":{"hits":['
                   + b",".join(parts) + b"]}}")
        return Response(200, payload, dict(_HEADERS))


_HEADERS = {"X-Elastic-Product": "Elasticsearch",
            "Content-Type": "application/vnd.elasticsearch+json;compatible-with=9"}


def _serve(path: str, ready, stop) -> None:
    from bench.scale_data import read_documents

    server = FastElasticsearch(read_documents(Path(path)))
    with server:
        ready.send((server.url, server.count))
        stop.wait()


class ServerProcess:
    """`with ServerProcess(ndjson_path) as (url, count):` serves the file's documents from a child process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        ctx = multiprocessing.get_context("spawn")
        self._ready_r, self._ready_w = ctx.Pipe(duplex=False)
        self._stop = ctx.Event()
        self._proc = ctx.Process(target=_serve, args=(str(path), self._ready_w, self._stop), daemon=True)

    def __enter__(self) -> tuple[str, int]:
        self._proc.start()
        return self._ready_r.recv()

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._proc.join(30)
        if self._proc.is_alive():
            self._proc.kill()
