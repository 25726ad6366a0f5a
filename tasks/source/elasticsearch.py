"""Read a time window from Elasticsearch with point-in-time + search_after (optionally sliced).

Partial results are failures: failed shards, a timed-out page, an expired PIT or any page error raise
SourceError for the window — never a silently incomplete count. The PIT is always closed.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator

from blocks.settings import ElasticsearchSettings
from core.errors import AilogError, ConfigError
from core.redact import redact
from tasks.models import LogEvent, SourceStats, Window, iso_z
from tasks.source.documents import parse_json, to_event

log = logging.getLogger("ailog.source.elasticsearch")
FILTER_PATH = ["pit_id", "_shards.failed", "_shards.failures", "timed_out", "hits.hits._source", "hits.hits.sort"]


class SourceError(AilogError):
    """Reading a window failed or was incomplete; the window must not be counted."""


class ElasticsearchSource:
    def __init__(self, settings: ElasticsearchSettings) -> None:
        self.settings = settings
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from elasticsearch import Elasticsearch

            s = self.settings
            kwargs: dict = dict(request_timeout=s.request_timeout, max_retries=s.max_retries,
                                retry_on_status=(429, 502, 503, 504), retry_on_timeout=True,
                                retry_backoff_base=0.5, retry_backoff_cap=30.0)
            if s.api_key is not None:
                kwargs["api_key"] = s.api_key.get_secret_value()
            elif s.username:
                kwargs["basic_auth"] = (s.username, s.password.get_secret_value() if s.password else "")
            if s.url and s.url.startswith("https"):
                kwargs["verify_certs"] = s.verify_certs
                if s.ca_certs:
                    kwargs["ca_certs"] = s.ca_certs
            try:
                self._client = Elasticsearch(s.url, serializer=_lenient_orjson(), **kwargs)
            except ValueError as exc:  # the client's message may quote the URL, credentials included
                raise ConfigError(f"ES_HOST {redact(s.url)} is not usable: {redact(str(exc))}") from None
        return self._client

    def describe(self) -> str:
        return f"Elasticsearch {self.settings.url} index {self.settings.index}"

    def check(self) -> None:
        """The cluster is reachable and its major version matches the installed client's."""
        import elasticsearch

        client_major = int(elasticsearch.__versionstr__.split(".")[0])
        try:
            info = self.client.info()
        except elasticsearch.BadRequestError as exc:
            if "media_type_header_exception" in str(exc):
                raise ConfigError(self._mismatch_message(None, client_major)) from None
            raise SourceError(f"Elasticsearch at {self.settings.url} rejected the request: {_short(exc)}") from None
        except elasticsearch.AuthenticationException:
            raise ConfigError(f"Elasticsearch at {self.settings.url} refused the credentials: check ES_USERNAME/"
                              "ES_PASSWORD or ES_API_KEY") from None
        except elasticsearch.UnsupportedProductError:
            raise ConfigError(f"{self.settings.url} is not Elasticsearch: check ES_HOST/ES_PORT") from None
        except elasticsearch.ApiError as exc:
            raise SourceError(f"Elasticsearch at {self.settings.url} answered {exc.meta.status}: {_short(exc)}") from None
        except elasticsearch.TransportError as exc:
            raise SourceError(f"cannot reach Elasticsearch at {self.settings.url} ({type(exc).__name__}): check "
                              "ES_HOST/ES_PORT and the network") from None
        number = str(info.get("version", {}).get("number", "0"))
        server_major = int(number.split(".")[0] or 0)
        if server_major != client_major:
            raise ConfigError(self._mismatch_message(number, client_major))

    def _mismatch_message(self, server: str | None, client_major: int) -> str:
        server_txt = f"version {server}" if server else "an older major version"
        wanted = f"'elasticsearch>={server.split('.')[0]}.0,<{int(server.split('.')[0]) + 1}'" if server else \
            f"'elasticsearch<{client_major}'"
        return (f"Elasticsearch at {self.settings.url} runs {server_txt} but the installed client is "
                f"{client_major}.x: install the matching client with `pip install {wanted}`")

    def _query(self, window: Window) -> dict:
        ts = self.settings.fields["timestamp"]
        filters: list[dict] = [{"range": {ts: {"gte": iso_z(window.start), "lt": iso_z(window.end),
                                               "format": "strict_date_optional_time_nanos"}}}]
        if self.settings.query_filter:
            filters.append(self.settings.query_filter)
        return {"bool": {"filter": filters}}

    def read_window(self, window: Window, stats: SourceStats) -> Iterator[LogEvent]:
        import elasticsearch

        s = self.settings
        try:
            pit = self.client.open_point_in_time(index=s.index, keep_alive=s.keep_alive)
        except elasticsearch.ApiError as exc:
            raise SourceError(f"window {window.label}: cannot open a point in time on {s.index}: {_short(exc)}") from None
        except elasticsearch.TransportError as exc:
            raise SourceError(f"window {window.label}: Elasticsearch unreachable ({type(exc).__name__})") from None
        pit_id = pit["id"]
        shards = pit.get("_shards") or {}
        if shards.get("failed"):
            self._close(pit_id)
            raise SourceError(f"window {window.label}: {shards['failed']} shard(s) failed when opening the point in time")
        try:
            if s.slices > 1:
                yield from self._read_sliced(window, pit_id, stats)
            else:
                for doc in self._pages(window, pit_id, None):
                    event = to_event(doc, s.fields, stats)
                    if event is not None:
                        stats.events_read += 1
                        yield event
        finally:
            self._close(pit_id)

    def _pages(self, window: Window, pit_id: str, slice_no: int | None) -> Iterator[dict]:
        """Yield `_source` dicts page by page; raise SourceError on any incomplete page."""
        import elasticsearch

        s = self.settings
        body: dict = dict(
            query=self._query(window), size=s.page_size, track_total_hits=False,
            sort=[{s.fields["timestamp"]: {"order": "asc", "format": "strict_date_optional_time_nanos"}},
                  {"_shard_doc": "asc"}],
            source={"includes": sorted(set(s.fields.values()))},
        )
        if slice_no is not None:
            body["slice"] = {"id": slice_no, "max": s.slices}
        search_after = None
        page = 0
        while True:
            page += 1
            try:
                resp = self.client.search(pit={"id": pit_id, "keep_alive": s.keep_alive}, filter_path=FILTER_PATH,
                                          **({"search_after": search_after} if search_after else {}), **body)
            except elasticsearch.NotFoundError as exc:
                raise SourceError(f"window {window.label}: the point in time expired or vanished on page {page} "
                                  f"({_short(exc)}); the window was not counted — re-run it") from None
            except elasticsearch.ApiError as exc:
                raise SourceError(f"window {window.label}: page {page} failed ({exc.meta.status}: {_short(exc)})") from None
            except elasticsearch.TransportError as exc:
                raise SourceError(f"window {window.label}: page {page} failed ({type(exc).__name__})") from None
            body_resp = resp.body if hasattr(resp, "body") else resp
            failed = (body_resp.get("_shards") or {}).get("failed", 0)
            if failed:
                raise SourceError(f"window {window.label}: {failed} shard(s) failed on page {page}; partial results "
                                  "are not counted — re-run the window")
            if body_resp.get("timed_out"):
                raise SourceError(f"window {window.label}: page {page} timed out; partial results are not counted")
            pit_id = body_resp.get("pit_id", pit_id)
            hits = (body_resp.get("hits") or {}).get("hits") or []
            if not hits:
                return
            for hit in hits:
                yield hit.get("_source") or {}
            search_after = hits[-1]["sort"]

    def _read_sliced(self, window: Window, pit_id: str, stats: SourceStats) -> Iterator[LogEvent]:
        """One thread per slice, same PIT id for all (different ids could overlap or miss documents)."""
        out: queue.Queue = queue.Queue(maxsize=self.settings.page_size * 2)
        done = object()
        errors: list[BaseException] = []

        def worker(slice_no: int) -> None:
            try:
                for doc in self._pages(window, pit_id, slice_no):
                    out.put(doc)
            except BaseException as exc:  # handed to the reading thread
                errors.append(exc)
            finally:
                out.put(done)

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(self.settings.slices)]
        for t in threads:
            t.start()
        finished = 0
        while finished < len(threads):
            item = out.get()
            if item is done:
                finished += 1
                continue
            if errors:
                continue  # drain; raise below
            event = to_event(item, self.settings.fields, stats)
            if event is not None:
                stats.events_read += 1
                yield event
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    def _close(self, pit_id: str) -> None:
        try:
            self.client.close_point_in_time(id=pit_id)
        except Exception as exc:  # the PIT expires by itself after keep_alive
            log.warning("could not close the point in time (%s); it expires after %s", type(exc).__name__,
                        self.settings.keep_alive)


def _lenient_orjson():
    """The client's orjson serializer (pages decode about 3x faster than with the standard library), reading what
    orjson refuses the way the sources do (`documents.parse_json`): one poisoned document must not fail its page."""
    from elastic_transport import SerializationError
    from elasticsearch.serializer import OrjsonSerializer

    class LenientOrjsonSerializer(OrjsonSerializer):
        def loads(self, data: bytes) -> object:
            try:
                return parse_json(data)
            except ValueError as exc:
                raise SerializationError(f"Unable to deserialize as JSON: {exc}") from None

    return LenientOrjsonSerializer()


def _short(exc: Exception) -> str:
    return redact(str(exc))[:300]
