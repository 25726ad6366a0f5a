"""A local Elasticsearch that the real `elasticsearch` 9.x client accepts: product header, info, point in time,
search with search_after/slice/sort/_source/filter_path, and injectable faults (429/503, failed shards,
expired PIT, timed_out, an 8.x server refusing `compatible-with=9`)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from urllib.parse import parse_qs, urlparse

from tests.fakes.http import FakeServer, Response

PRODUCT = {"X-Elastic-Product": "Elasticsearch", "Content-Type": "application/vnd.elasticsearch+json;compatible-with=9"}


def _get(doc: dict, dotted: str):
    node = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return doc.get(dotted)
        node = node[part]
    return node


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class FakeElasticsearch(FakeServer):
    def __init__(self, docs: list[dict], *, shards: int = 3, version: str = "9.1.0") -> None:
        super().__init__()
        # each doc: (shard, doc_no) — _shard_doc is a unique, increasing tiebreaker
        self.docs = [(i % shards, i, d) for i, d in enumerate(docs)]
        self.version = version
        self.open_pits: set[str] = set()
        self.closed_pits: list[str] = []
        self.faults: list[str] = []  # consumed one per search request: "429", "503", "failed_shards", "expired", "timed_out"
        self.search_calls = 0

    def _json(self, status: int, body: dict) -> Response:
        headers = dict(PRODUCT) if 200 <= status < 300 else {"Content-Type": "application/json"}
        return Response(status, json.dumps(body).encode(), headers)

    def _error(self, status: int, kind: str, reason: str) -> Response:
        return self._json(status, {"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind,
                                             "reason": reason}, "status": status})

    def handle(self, request: dict) -> Response:
        url = urlparse(request["path"])
        accept = request["headers"].get("Accept", "") + request["headers"].get("Content-Type", "")
        if self.version.startswith("8.") and "compatible-with=9" in accept:
            return self._error(400, "media_type_header_exception", "Invalid media-type value on headers [Content-Type, Accept]")
        if request["method"] in ("GET", "HEAD") and url.path == "/":
            return self._json(200, {"name": "fake", "cluster_name": "test", "version": {"number": self.version,
                                    "build_flavor": "default"}, "tagline": "You Know, for Search"})
        if request["method"] == "GET" and url.path.startswith("/_resolve/index/"):
            return self._json(200, {"indices": [{"name": "logs-app-2026.11", "attributes": ["open"]}],
                                    "aliases": [], "data_streams": []})
        if request["method"] == "POST" and url.path.endswith("/_pit"):
            pit = uuid.uuid4().hex
            self.open_pits.add(pit)
            return self._json(200, {"id": pit, "_shards": {"total": 3, "successful": 3, "skipped": 0, "failed": 0}})
        if request["method"] == "DELETE" and url.path == "/_pit":
            pit = json.loads(request["body"])["id"]
            self.open_pits.discard(pit)
            self.closed_pits.append(pit)
            return self._json(200, {"succeeded": True, "num_freed": 1})
        if request["method"] == "POST" and url.path == "/_search":
            return self._search(json.loads(request["body"]), parse_qs(url.query))
        return self._error(404, "not_found", request["path"])

    def _search(self, body: dict, query: dict) -> Response:
        self.search_calls += 1
        fault = self.faults.pop(0) if self.faults else None
        if fault == "429":
            return self._error(429, "es_rejected_execution_exception", "rejected execution")
        if fault == "503":
            return self._error(503, "unavailable_shards_exception", "primary shard is not active")
        pit = body["pit"]["id"]
        if fault == "expired" or pit not in self.open_pits:
            return self._error(404, "search_context_missing_exception", "No search context found for id [1]")
        rng = body["query"]["bool"]["filter"][0]["range"]
        field, bounds = next(iter(rng.items()))
        gte, lt = _ts(bounds["gte"]), _ts(bounds["lt"])
        hits = []
        for shard, no, doc in self.docs:
            ts = _get(doc, field)
            if not isinstance(ts, str):
                continue
            try:
                t = _ts(ts)
            except ValueError:
                continue
            if not (gte <= t < lt):
                continue
            if "slice" in body and no % body["slice"]["max"] != body["slice"]["id"]:
                continue
            hits.append(((t.isoformat(), shard * 10 ** 6 + no), doc))
        hits.sort(key=lambda h: h[0])
        after = body.get("search_after")
        if after:
            key = (_ts(after[0]).isoformat(), after[1])
            hits = [h for h in hits if h[0] > key]
        page = hits[: body.get("size", 10)]
        includes = body.get("_source", {}).get("includes")
        out = []
        for (ts, shard_doc), doc in page:
            src = doc if not includes else {k: v for k, v in doc.items() if any(k == i.split(".")[0] for i in includes)}
            out.append({"_source": src, "sort": [ts.replace("+00:00", "Z"), shard_doc]})
        result = {"pit_id": pit, "took": 1, "timed_out": fault == "timed_out",
                  "_shards": {"total": 3, "successful": 3 - (fault == "failed_shards"), "skipped": 0,
                              "failed": 1 if fault == "failed_shards" else 0},
                  "hits": {"hits": out}}
        return self._json(200, result)
