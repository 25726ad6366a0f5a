"""A local Elasticsearch that the real `elasticsearch` 9.x client accepts, and that is as strict as a real cluster
about what the client asks for — a stand-in that agrees with whatever it is sent proves nothing.

It honours: index names on `POST /{index}/_pit` (unknown concrete index → 404 `index_not_found_exception`,
a wildcard matching nothing → an empty PIT), the requested `sort` (fields, order; sort values returned as the
cluster returns them), `search_after` (must match the sort's length), `slice`, `size`, `_source.includes`,
the `filter_path` query parameter, every clause of the query (bool filter/must/must_not/should, range, term,
terms, exists, match_all; an unknown clause → 400 `parsing_exception`), PIT ids that change between pages
(a search must carry the id returned by the previous page of its slice, as the docs require), PIT expiry after
its `keep_alive` (404 `search_context_missing_exception`), `_index` in the path of a PIT search (400).

Stricter than a real cluster on purpose: a PIT search whose sort has no unique tie-breaker (`_shard_doc`) is
refused with 400, because paging by a non-unique sort with search_after silently skips or repeats documents.

Injectable faults (one per search request, from `faults`): "429", "503", "failed_shards" (one shard's hits
missing, `_shards.failed` = 1 with `failures`), "expired", "timed_out", "drop" (connection closed without an
answer), ("slow", seconds), and `down_after_pages` (every search after N pages answers 503: the node is gone);
`close_faults`: that many PIT closes answer 503 (the PIT stays open until it expires).
"""

from __future__ import annotations

import fnmatch
import json
import re
import threading
import time
import uuid
from datetime import datetime
from urllib.parse import parse_qs, unquote, urlparse

from tests.fakes.http import DropConnection, FakeServer, Response

PRODUCT = {"X-Elastic-Product": "Elasticsearch", "Content-Type": "application/vnd.elasticsearch+json;compatible-with=9"}
_MISSING = object()


def _get(doc: dict, dotted: str):
    """A field by dotted path, whether the document nests objects or uses dotted keys (ES flattens both)."""
    if dotted in doc:
        return doc[dotted]
    parts = dotted.split(".")
    for i in range(1, len(parts)):
        head = ".".join(parts[:i])
        if isinstance(doc.get(head), dict):
            found = _get(doc[head], ".".join(parts[i:]))
            if found is not _MISSING:
                return found
    return _MISSING


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _duration_s(text: str) -> float:
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", text)
    if not m:
        raise ValueError(text)
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


class BadRequest(Exception):
    def __init__(self, status: int, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.kind, self.reason = status, kind, reason


def _compare(value, bound) -> int:
    """Compare a document value with a query bound: dates as dates, numbers as numbers, else as text."""
    if isinstance(value, str) and isinstance(bound, str):
        try:
            a, b = _ts(value), _ts(bound)
            return (a > b) - (a < b)
        except ValueError:
            pass
    if isinstance(value, int | float) and isinstance(bound, int | float):
        return (value > bound) - (value < bound)
    a, b = str(value), str(bound)
    return (a > b) - (a < b)


def matches(doc: dict, clause: dict) -> bool:
    """Evaluate one query clause the way Elasticsearch does for keyword/date fields."""
    if len(clause) != 1:
        raise BadRequest(400, "parsing_exception", f"[{next(iter(clause), '')}] malformed query, expected one clause")
    kind, spec = next(iter(clause.items()))
    if kind == "match_all":
        return True
    if kind == "bool":
        unknown = set(spec) - {"filter", "must", "must_not", "should", "minimum_should_match"}
        if unknown:
            raise BadRequest(400, "parsing_exception", f"[bool] query does not support [{sorted(unknown)[0]}]")

        def listed(key):
            value = spec.get(key, [])
            return value if isinstance(value, list) else [value]

        if not all(matches(doc, c) for c in listed("filter") + listed("must")):
            return False
        if any(matches(doc, c) for c in listed("must_not")):
            return False
        should = listed("should")
        wanted = int(spec.get("minimum_should_match", 1 if should and not (listed("filter") + listed("must")) else 0))
        return sum(matches(doc, c) for c in should) >= wanted
    if kind in ("term", "terms", "range", "exists"):
        if kind == "exists":
            return _get(doc, spec["field"]) not in (_MISSING, None)
        (field, cond), = spec.items()
        value = _get(doc, field)
        if value is _MISSING or value is None:
            return False
        if kind == "term":
            wanted = cond["value"] if isinstance(cond, dict) else cond
            return value == wanted
        if kind == "terms":
            return value in cond
        for op, bound in cond.items():
            if op in ("format", "time_zone", "boost"):
                continue
            c = _compare(value, bound)
            ok = {"gte": c >= 0, "gt": c > 0, "lte": c <= 0, "lt": c < 0}.get(op)
            if ok is None:
                raise BadRequest(400, "parsing_exception", f"[range] query does not support [{op}]")
            if not ok:
                return False
        return True
    raise BadRequest(400, "parsing_exception", f"unknown query [{kind}]")


def filter_response(body, paths: list[str]):
    """Apply `filter_path`: keep only the listed dotted paths (arrays are traversed), as Elasticsearch does."""
    if not paths:
        return body

    def keep(node, parts: list[list[str]]):
        if any(not p for p in parts):
            return node
        if isinstance(node, list):
            kept = [keep(item, parts) for item in node]
            return [k for k in kept if k is not _MISSING]
        if not isinstance(node, dict):
            return _MISSING
        out = {}
        for key, value in node.items():
            rest = [p[1:] for p in parts if p and fnmatch.fnmatchcase(key, p[0])]
            if rest:
                kept = keep(value, rest)
                if kept is not _MISSING and kept != {}:
                    out[key] = kept
        return out

    return keep(body, [p.split(".") for p in paths])


class FakeElasticsearch(FakeServer):
    def __init__(self, docs: list[dict], *, shards: int = 3, version: str = "9.1.0",
                 indices: tuple[str, ...] = ("logs-app-2026.11",)) -> None:
        super().__init__()
        # each doc: (shard, doc_no, source) — (shard, doc_no) makes _shard_doc a unique, increasing tie-breaker
        self.docs = [(i % shards, i, d) for i, d in enumerate(docs)]
        self.shards = shards
        self.version = version
        self.indices = indices
        self.pits: dict[str, dict] = {}  # PIT base id -> {"expires": t, "latest": {slice: [ids]}}
        self.open_pits: set[str] = set()  # base ids, for the tests' "every PIT is closed"
        self.closed_pits: list[str] = []
        self.faults: list = []  # consumed one per search request
        self.down_after_pages: int | None = None
        self.close_faults = 0
        self.search_calls = 0
        self.pages_served = 0
        self.rotate_pit_ids = True
        self.state_lock = threading.Lock()

    def _json(self, status: int, body: dict) -> Response:
        headers = dict(PRODUCT) if 200 <= status < 300 else {"Content-Type": "application/json"}
        return Response(status, json.dumps(body).encode(), headers)

    def _error(self, status: int, kind: str, reason: str, **extra) -> Response:
        return self._json(status, {"error": {"root_cause": [{"type": kind, "reason": reason, **extra}], "type": kind,
                                             "reason": reason, **extra}, "status": status})

    def handle(self, request: dict) -> Response:
        url = urlparse(request["path"])
        accept = request["headers"].get("Accept", "") + request["headers"].get("Content-Type", "")
        if self.version.startswith("8.") and "compatible-with=9" in accept:
            return self._error(400, "media_type_header_exception", "Invalid media-type value on headers [Content-Type, Accept]")
        try:
            return self._route(request, url)
        except BadRequest as exc:
            return self._error(exc.status, exc.kind, exc.reason)

    def _route(self, request: dict, url) -> Response:
        method, path = request["method"], url.path
        query = parse_qs(url.query)
        if method in ("GET", "HEAD") and path == "/":
            return self._json(200, {"name": "fake", "cluster_name": "test", "version": {"number": self.version,
                                    "build_flavor": "default"}, "tagline": "You Know, for Search"})
        if method == "GET" and path.startswith("/_resolve/index/"):
            names = self._resolve(unquote(path.rsplit("/", 1)[1]))
            return self._json(200, {"indices": [{"name": n, "attributes": ["open"]} for n in names],
                                    "aliases": [], "data_streams": []})
        if method == "POST" and path.endswith("/_pit"):
            names = self._resolve(unquote(path[1:-len("/_pit")]))
            keep_alive = _duration_s(query.get("keep_alive", [""])[0] or "x")
            base = uuid.uuid4().hex
            with self.state_lock:
                self.pits[base] = {"expires": time.monotonic() + keep_alive,
                                   "indices": names, "latest": {}, "gen": 0}
                self.open_pits.add(base)
            total = self.shards if names else 0
            return self._json(200, {"id": f"{base}.0", "_shards": {"total": total, "successful": total, "skipped": 0,
                                                                   "failed": 0}})
        if method == "DELETE" and path == "/_pit":
            base = json.loads(request["body"])["id"].split(".")[0]
            with self.state_lock:
                refused, self.close_faults = self.close_faults > 0, max(self.close_faults - 1, 0)
            if refused:
                return self._error(503, "unavailable_shards_exception", "the node is shutting down")
            with self.state_lock:
                found = self.pits.pop(base, None) is not None
                self.open_pits.discard(base)
                self.closed_pits.append(base)
            if not found:
                return self._json(404, {"succeeded": True, "num_freed": 0})
            return self._json(200, {"succeeded": True, "num_freed": self.shards})
        if method == "POST" and path.endswith("/_search"):
            if path != "/_search":
                raise BadRequest(400, "action_request_validation_exception",
                                 "Validation Failed: 1: [indices] cannot be used with point in time. Do not specify "
                                 "any index with point in time;")
            filter_path = [p for v in query.get("filter_path", []) for p in v.split(",") if p]
            return self._search(json.loads(request["body"]), filter_path)
        return self._error(404, "not_found", request["path"])

    def _resolve(self, expression: str) -> list[str]:
        names: list[str] = []
        for part in expression.split(","):
            if "*" in part:
                names += [n for n in self.indices if fnmatch.fnmatchcase(n, part)]
            elif part in self.indices:
                names.append(part)
            else:
                raise BadRequest(404, "index_not_found_exception", f"no such index [{part}]")
        return names

    def _check_pit(self, pit_id: str, slice_key) -> tuple[str, dict]:
        base, _, _gen = pit_id.partition(".")
        with self.state_lock:
            pit = self.pits.get(base)
            if pit is None or time.monotonic() > pit["expires"]:
                self.pits.pop(base, None)
                raise BadRequest(404, "search_context_missing_exception", f"No search context found for id [{base[:8]}]")
            latest = pit["latest"].get(slice_key, [f"{base}.0"])
            if pit_id not in latest[-2:]:  # the id before the latest stays valid for a retried page
                # the id changed on the previous page: an old id may point at relocated shards
                raise BadRequest(404, "search_context_missing_exception",
                                 f"No search context found for id [{pit_id}] (superseded by a newer PIT id)")
        return base, pit

    def _search(self, body: dict, filter_path: list[str]) -> Response:
        with self.state_lock:
            self.search_calls += 1
            fault = self.faults.pop(0) if self.faults else None
            if self.down_after_pages is not None and self.pages_served >= self.down_after_pages:
                fault = "drop"
        if isinstance(fault, tuple) and fault[0] == "slow":
            time.sleep(fault[1])
            fault = None
        if fault == "drop":
            raise DropConnection()
        if fault == "429":
            return self._error(429, "es_rejected_execution_exception", "rejected execution of coordinating operation")
        if fault == "503":
            return self._error(503, "unavailable_shards_exception", "primary shard is not active")
        if "pit" not in body:
            raise BadRequest(400, "action_request_validation_exception", "this stand-in only serves PIT searches")
        slice_key = (body["slice"]["id"], body["slice"]["max"]) if "slice" in body else None
        base, pit = self._check_pit(body["pit"]["id"], slice_key)
        if fault == "expired":
            raise BadRequest(404, "search_context_missing_exception", f"No search context found for id [{base[:8]}]")
        keep_alive = body["pit"].get("keep_alive")
        if keep_alive:  # a search without keep_alive does not extend the PIT's life
            with self.state_lock:
                pit["expires"] = time.monotonic() + _duration_s(keep_alive)
        sort = self._sort_spec(body.get("sort"))
        query = body.get("query", {"match_all": {}})
        hits = []
        for shard, no, doc in self.docs:
            if not pit["indices"]:
                break
            if fault == "failed_shards" and shard == self.shards - 1:
                continue  # that shard's hits are missing from the page
            if slice_key and no % slice_key[1] != slice_key[0]:
                continue
            if not matches(doc, query):
                continue
            hits.append((self._sort_values(doc, shard, no, sort), doc))
        for position in range(len(sort) - 1, -1, -1):
            hits.sort(key=lambda h, p=position: h[0][p][0], reverse=sort[position][1] == "desc")
        after = body.get("search_after")
        if after is not None:
            if len(after) != len(sort):
                raise BadRequest(400, "illegal_argument_exception", f"search_after has {len(after)} value(s) but sort "
                                 f"has {len(sort)}")
            hits = [h for h in hits if self._after(h[0], after, sort)]
        if body.get("from", 0) not in (0, -1):
            raise BadRequest(400, "illegal_argument_exception", "[from] parameter must be set to 0 when [search_after] "
                             "is used")
        page = hits[: body.get("size", 10)]
        includes = (body.get("_source") or {}).get("includes")
        out = []
        for values, doc in page:
            src = doc if not includes else _source_filter(doc, includes)
            out.append({"_index": pit["indices"][0], "_id": uuid.uuid5(uuid.NAMESPACE_OID, repr(values)).hex,
                        "_score": None, "_source": src, "sort": [v[1] for v in values]})
        with self.state_lock:
            self.pages_served += 1
            new_id = f"{base}.{pit['gen'] + 1}" if self.rotate_pit_ids else body["pit"]["id"]
            pit["gen"] += 1
            pit["latest"].setdefault(slice_key, [f"{base}.0"]).append(new_id)
        failed = fault == "failed_shards"
        shards = {"total": self.shards, "successful": self.shards - failed, "skipped": 0, "failed": int(failed)}
        if failed:
            shards["failures"] = [{"shard": self.shards - 1, "index": pit["indices"][0], "node": "n1",
                                   "reason": {"type": "node_disconnected_exception", "reason": "node left"}}]
        result = {"pit_id": new_id, "took": 1, "timed_out": fault == "timed_out", "_shards": shards,
                  "hits": {"total": {"value": len(hits), "relation": "eq"}, "max_score": None, "hits": out}}
        return self._json(200, filter_response(result, filter_path))

    @staticmethod
    def _sort_spec(sort) -> list[tuple[str, str, str | None]]:
        """[(field, order, format)]; a PIT search must end in a unique tie-breaker."""
        spec = []
        for item in sort or []:
            if isinstance(item, str):
                spec.append((item, "asc", None))
            else:
                (field, how), = item.items()
                how = {"order": how} if isinstance(how, str) else how
                spec.append((field, how.get("order", "asc"), how.get("format")))
        if not spec or spec[-1][0] != "_shard_doc":
            raise BadRequest(400, "illegal_argument_exception", "a point-in-time search paged with search_after must "
                             "sort by a unique tie-breaker last ([_shard_doc]); without it documents sharing a sort "
                             "value are skipped or repeated between pages")
        return spec

    def _sort_values(self, doc: dict, shard: int, no: int, sort) -> list[tuple]:
        """Per sort key: (comparable, value returned in `sort`)."""
        values = []
        for field, _order, fmt in sort:
            if field == "_shard_doc":
                v = (shard << 32) + no
                values.append((v, v))
                continue
            raw = _get(doc, field)
            if raw is _MISSING or raw is None:
                values.append(("\uffff", None))  # missing values sort last
                continue
            try:
                t = _ts(raw) if isinstance(raw, str) else None
            except ValueError:
                t = None
            if t is not None:
                shown = t.isoformat().replace("+00:00", "Z") if fmt else int(t.timestamp() * 1000)
                values.append((t.isoformat(), shown))
            else:
                values.append((raw, raw))
        return values

    @staticmethod
    def _after(values: list[tuple], after: list, sort) -> bool:
        for (key, _shown), given, (_field, order, _fmt) in zip(values, after, sort, strict=True):
            if isinstance(given, str):
                try:
                    given = _ts(given).isoformat()
                except ValueError:
                    pass
            elif isinstance(given, int) and isinstance(key, str) and _field != "_shard_doc":
                given = datetime.fromtimestamp(given / 1000, tz=_ts(key).tzinfo).isoformat()
            if key == given:
                continue
            bigger = key > given
            return bigger if order == "asc" else not bigger
        return False


def _source_filter(doc: dict, includes: list[str]) -> dict:
    """`_source.includes` with dotted paths, keeping the document's own shape (nested or dotted keys)."""
    out: dict = {}
    for key, value in doc.items():
        wanted = [i for i in includes if i == key or i.startswith(key + ".") or key.startswith(i + ".")]
        if not wanted:
            continue
        if any(i == key or key.startswith(i + ".") for i in wanted) or not isinstance(value, dict):
            if any(i == key or key.startswith(i + ".") for i in wanted):
                out[key] = value
            continue
        inner = _source_filter(value, [i[len(key) + 1:] for i in wanted])
        if inner:
            out[key] = inner
    return out
