"""Elasticsearch faults and a strict stand-in: the real client against a local cluster that honours the sort,
tie-breaker, filters, index names, filter_path, rotating and expiring PIT ids — so a reader that drops any of
them loses or doubles documents here, or fails loudly, instead of passing."""

from __future__ import annotations

import random
import time
from datetime import timedelta

import pytest

from tasks.models import SourceStats
from tasks.source.elasticsearch import ElasticsearchSource, SourceError
from tests.fakes.elasticsearch_server import FakeElasticsearch, filter_response, matches
from tests.test_source_files_and_es import T0, W, doc, es_settings, read_all


def tied_docs(n: int = 120) -> list[dict]:
    """Several documents per timestamp, stored out of order, plus documents just outside the window."""
    docs = [doc(i // 4, message=f"m{i}", log={"level": "ERROR" if i % 3 else "WARN"}) for i in range(n)]
    docs += [doc(-1, message="before"), doc(900, message="at-end")]  # 09:59:59 and 10:15:00: both outside
    random.Random(7).shuffle(docs)
    return docs


@pytest.mark.parametrize("slices", [1, 3])
def test_ties_sort_and_window_bounds_are_honoured(slices):
    with FakeElasticsearch(tied_docs()) as es:
        events, stats = read_all(ElasticsearchSource(es_settings(es.url, slices=slices, page_size=5)))
        messages = [e.message for e in events]
        assert sorted(messages) == sorted(f"m{i}" for i in range(120))  # none lost, none doubled, none outside
        assert stats.events_read == 120
        if slices == 1:  # one reader: the cluster's order is the requested one
            assert [e.timestamp for e in events] == sorted(e.timestamp for e in events)
        assert not es.open_pits


def test_query_filter_clauses_are_applied():
    with FakeElasticsearch(tied_docs()) as es:
        settings = es_settings(es.url, query_filter={"terms": {"log.level": ["ERROR"]}})
        events, _ = read_all(ElasticsearchSource(settings))
        assert sorted(e.message for e in events) == sorted(f"m{i}" for i in range(120) if i % 3)


def test_unknown_index_is_a_clear_error_and_an_empty_pattern_reads_nothing():
    with FakeElasticsearch(tied_docs()) as es:
        with pytest.raises(SourceError, match="index_not_found_exception|no such index"):
            read_all(ElasticsearchSource(es_settings(es.url, index="logz-app")))
        events, _ = read_all(ElasticsearchSource(es_settings(es.url, index="other-*")))
        assert events == []


def test_a_pit_kept_alive_page_by_page_survives_a_slow_reader_and_expires_when_too_slow():
    with FakeElasticsearch(tied_docs(40)) as es:
        source = ElasticsearchSource(es_settings(es.url, page_size=10, keep_alive="1s"))
        stats = SourceStats()
        seen = []
        for event in source.read_window(W, stats):  # 0.5 s per page, each page renews the 1 s keep_alive
            seen.append(event.message)
            if len(seen) % 10 == 0:
                time.sleep(0.5)
        assert len(seen) == 40
        with pytest.raises(SourceError, match="point in time expired"):
            for i, _event in enumerate(source.read_window(W, SourceStats())):
                if i == 9:
                    time.sleep(1.3)
        assert len(es.open_pits) <= 1  # the expired one may be gone server-side already


@pytest.mark.parametrize("fault", [["429"] * 3, ["503", "429", "503"], [("slow", 1.6)]])
def test_storms_and_timeouts_are_retried_without_loss_or_duplicates(fault):
    with FakeElasticsearch(tied_docs()) as es:
        es.faults = [None, *fault]
        settings = es_settings(es.url, page_size=9, max_retries=4)
        settings = type(settings)(**{**settings.__dict__, "request_timeout": 1.0})
        events, _ = read_all(ElasticsearchSource(settings))
        assert sorted(e.message for e in events) == sorted(f"m{i}" for i in range(120))


def test_node_gone_after_half_the_pages_fails_the_window_not_a_partial_count():
    with FakeElasticsearch(tied_docs()) as es:
        es.down_after_pages = 6
        with pytest.raises(SourceError, match="page 7"):
            read_all(ElasticsearchSource(es_settings(es.url, page_size=10, max_retries=1)))


def test_a_failed_shard_is_visible_through_filter_path():
    with FakeElasticsearch(tied_docs()) as es:
        es.faults = ["failed_shards"]
        with pytest.raises(SourceError, match="shard"):
            read_all(ElasticsearchSource(es_settings(es.url)))


# --- the stand-in itself refuses what a real cluster refuses ---------------------------------------------------

def test_the_stand_in_refuses_a_pit_search_without_tie_breaker_and_a_stale_pit_id():
    from elasticsearch import ApiError, Elasticsearch, NotFoundError

    with FakeElasticsearch(tied_docs()) as es:
        client = Elasticsearch(es.url)
        pit = client.open_point_in_time(index="logs-*", keep_alive="1m")["id"]
        with pytest.raises(ApiError, match="tie-breaker"):
            client.search(pit={"id": pit}, sort=[{"@timestamp": "asc"}], size=5)
        sort = [{"@timestamp": "asc"}, {"_shard_doc": "asc"}]
        first = client.search(pit={"id": pit, "keep_alive": "1m"}, sort=sort, size=5)
        second = client.search(pit={"id": first["pit_id"]}, sort=sort, size=5, search_after=first["hits"]["hits"][-1]["sort"])
        with pytest.raises(NotFoundError, match="search_context_missing_exception"):
            client.search(pit={"id": pit}, sort=sort, size=5, search_after=second["hits"]["hits"][-1]["sort"])
        with pytest.raises(ApiError, match="cannot be used with point in time"):
            client.search(index="logs-*", pit={"id": second["pit_id"]}, sort=sort)


def test_the_stand_in_evaluates_queries_and_filter_path_like_elasticsearch():
    d = {"@timestamp": "2026-11-20T10:00:00Z", "log": {"level": "ERROR"}, "service.name": "pay"}
    assert matches(d, {"bool": {"filter": [{"term": {"log.level": "ERROR"}}, {"terms": {"service.name": ["pay"]}}]}})
    assert not matches(d, {"bool": {"must_not": [{"exists": {"field": "log.level"}}]}})
    assert matches(d, {"range": {"@timestamp": {"gte": "2026-11-20T10:00:00Z", "lt": "2026-11-20T10:00:01Z"}}})
    assert not matches(d, {"range": {"@timestamp": {"gt": "2026-11-20T10:00:00Z"}}})
    with pytest.raises(Exception, match="unknown query"):
        matches(d, {"regexp_typo": {"message": "x"}})
    body = {"pit_id": "p", "_shards": {"failed": 0, "total": 3}, "hits": {"hits": [{"_id": "1", "_source": {}, "sort": [1]}]}}
    assert filter_response(body, ["pit_id", "hits.hits.sort"]) == {"pit_id": "p", "hits": {"hits": [{"sort": [1]}]}}
    assert T0 + timedelta(minutes=15) == W.end
