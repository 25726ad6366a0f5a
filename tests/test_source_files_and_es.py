"""Sources: NDJSON files (bad documents counted, never fatal) and Elasticsearch through the real client
against a local server speaking the protocol (PIT, search_after, slices, retries, partial results)."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest

from blocks.settings import ElasticsearchSettings
from tasks.models import SourceStats, Window
from tasks.source.elasticsearch import ElasticsearchSource, SourceError
from tasks.source.files import FileSource
from tests.fakes.elasticsearch_server import FakeElasticsearch

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
W = Window(T0, T0 + timedelta(minutes=15))
FIELDS = ElasticsearchSettings().fields


def doc(i: int, **extra) -> dict:
    ts = (T0 + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")
    base = {"@timestamp": ts, "message": f"Timeout {i}", "service": {"name": "payments"},
            "kubernetes": {"pod": {"name": f"p-{i % 3}"}}}
    base.update(extra)
    return base


def test_files_nested_dotted_gz_and_window_bounds(tmp_path):
    lines = [json.dumps(doc(0)), json.dumps({"@timestamp": T0.isoformat(), "message": "dotted", "service.name": "acct",
                                             "log.level": "ERROR", "kubernetes.pod.name": "acct-1"}),
             json.dumps(doc(899)), json.dumps(doc(900)),  # 10:14:59 in, 10:15:00 out (end excluded)
             json.dumps({"@timestamp": (T0 - timedelta(seconds=1)).isoformat(), "message": "before"})]
    plain = tmp_path / "a.ndjson"
    plain.write_text("\n".join(lines[:3]) + "\n")
    gz = tmp_path / "b.ndjson.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write("\n".join(lines[3:]) + "\n")
    stats = SourceStats()
    events = list(FileSource([str(plain), str(gz)], FIELDS).read_window(W, stats))
    assert sorted(e.message for e in events) == ["Timeout 0", "Timeout 899", "dotted"]
    dotted = next(e for e in events if e.message == "dotted")
    assert (dotted.app, dotted.level, dotted.pod) == ("acct", "ERROR", "acct-1")
    assert stats.events_read == 3 and stats.bad_total == 0


def test_files_bad_documents_are_counted_by_reason(tmp_path):
    good = json.dumps(doc(1)).encode()
    bad = [
        json.dumps({"message": "no time"}).encode(),
        json.dumps({"@timestamp": "yesterday", "message": "x"}).encode(),
        json.dumps({"@timestamp": T0.isoformat()}).encode(),
        json.dumps({"@timestamp": T0.isoformat(), "message": {"nested": 1}}).encode(),
        json.dumps({"@timestamp": T0.isoformat(), "message": "x" * 1_100_000}).encode(),
        b'{"@timestamp": "' + T0.isoformat().encode() + b'", "message": "bad \xff\xfe utf8"}',
        b'{"@timestamp": "' + T0.isoformat().encode() + b'", "message": broken json',
    ]
    path = tmp_path / "bad.ndjson"
    path.write_bytes(b"\n".join([good, *bad, good]) + b"\n")
    stats = SourceStats()
    events = list(FileSource([str(path)], FIELDS).read_window(W, stats))
    assert len(events) == 3  # the 1.1 MB message is cut with a marker and analysed, not dropped
    assert "…[truncated" in max(events, key=lambda e: len(e.message)).message
    assert dict(stats.bad_documents) == {"wrong_type_message": 1, "invalid_utf8": 1, "not_json": 1, "no_message": 1}
    source = FileSource([str(path)], FIELDS)
    assert source.undated_lines() == 2  # no timestamp at all / unparsable: no window can claim them


def test_missing_file_is_a_clear_error(tmp_path):
    from core.errors import AilogError

    with pytest.raises(AilogError, match="does not exist"):
        FileSource([str(tmp_path / "nope.ndjson")], FIELDS).check()


def es_settings(url: str, **kw) -> ElasticsearchSettings:
    return ElasticsearchSettings(url=url, page_size=kw.pop("page_size", 7), request_timeout=5, **kw)


def read_all(source: ElasticsearchSource) -> tuple[list, SourceStats]:
    stats = SourceStats()
    return list(source.read_window(W, stats)), stats


@pytest.mark.parametrize("slices", [1, 3])
def test_every_document_read_exactly_once(slices):
    # ties: several documents share a timestamp, spread over shards
    docs = [doc(i // 3, message=f"m{i}") for i in range(200)] + [doc(900, message="outside")]
    with FakeElasticsearch(docs) as es:
        source = ElasticsearchSource(es_settings(es.url, slices=slices))
        source.check()
        events, stats = read_all(source)
        assert sorted(e.message for e in events) == sorted(f"m{i}" for i in range(200))
        assert stats.events_read == 200
        assert not es.open_pits and len(es.closed_pits) == 1
        assert es.search_calls >= 200 // 7


def test_a_page_with_a_lone_surrogate_is_read_not_failed():
    """The client decodes pages with orjson, which refuses an escaped lone surrogate; Elasticsearch sends it.
    The page must still be read (the text cleaned), not fail the window on every run."""
    docs = [doc(1, message="Lone \ud83d half"), doc(2, message="fine"), doc(3, message=2**70)]
    with FakeElasticsearch(docs) as es:
        events, stats = read_all(ElasticsearchSource(es_settings(es.url)))
    assert sorted(e.message for e in events) == sorted(["Lone \ufffd half", "fine", str(2**70)])
    assert stats.bad_total == 0


def test_429_and_503_are_retried():
    with FakeElasticsearch([doc(i) for i in range(20)]) as es:
        es.faults = ["429", "503"]
        events, _ = read_all(ElasticsearchSource(es_settings(es.url)))
        assert len(events) == 20 and not es.open_pits


@pytest.mark.parametrize("fault, words", [("failed_shards", "shard"), ("expired", "point in time"),
                                          ("timed_out", "timed out")])
def test_partial_results_fail_the_window_and_the_pit_is_closed(fault, words):
    with FakeElasticsearch([doc(i) for i in range(30)]) as es:
        es.faults = [None, fault]  # the second page fails
        with pytest.raises(SourceError, match=words):
            read_all(ElasticsearchSource(es_settings(es.url)))
        assert not es.open_pits


def test_version_mismatch_says_which_client_to_install():
    from core.errors import ConfigError

    with FakeElasticsearch([], version="8.15.0") as es:
        with pytest.raises(ConfigError, match="pip install"):
            ElasticsearchSource(es_settings(es.url)).check()


def test_credentials_never_appear_in_errors():
    from pydantic import SecretStr

    with FakeElasticsearch([doc(1)]) as es:
        es.faults = ["failed_shards"]
        source = ElasticsearchSource(es_settings(es.url, username="u", password=SecretStr("es-pass-Secret")))
        with pytest.raises(SourceError) as err:
            read_all(source)
        assert "es-pass-Secret" not in str(err.value)
        headers = {k.lower(): v for k, v in es.requests[-2]["headers"].items()}
        assert headers["authorization"].startswith("Basic ")
