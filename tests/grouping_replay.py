"""Replays fixed input through the compiled per-event modules and prints everything they decided, as JSON:
documents decoded (`documents`, `text`), texts scrubbed (`scrubbing`) and events grouped by a fresh engine.

Run as `python -m tests.grouping_replay [--source]`: with --source those modules are imported from their .py
files even where compiled ones exist (tests/test_grouping_compiled.py compares the two outputs).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# setup.py's COMPILED, in its order (tests/conftest.py digests the sources in this order to spot a stale build)
COMPILED = ("tasks.grouping.masking", "tasks.grouping.miner", "tasks.grouping.stacktrace", "tasks.grouping.engine",
            "tasks.text", "tasks.source.documents", "tasks.scrubbing", "tasks.event_rows")


class _Sources(importlib.abc.MetaPathFinder):
    """Finds the compiled modules' .py files first: the pure-Python build of the same source."""

    def find_spec(self, name, path=None, target=None):
        if name in COMPILED:
            return importlib.util.spec_from_file_location(name, ROOT / (name.replace(".", "/") + ".py"))
        return None


def messages() -> list[tuple[str, str | None]]:
    """(message, stack trace): the Loghub sets, word-variable families, traces and hostile strings."""
    from tests.test_grouping_keys import DATASETS, loghub, word_families

    out: list[tuple[str, str | None]] = [(line, None) for ds in DATASETS for line in loghub(ds)]
    out += [(line, None) for line in word_families(3000)]
    rng = random.Random(5)
    frames = ["\tat com.bank.pay.PayService.run(PayService.java:10)", "\tat org.spring.Filter.do(Filter.java:1)",
              "\tat com.bank.pay.Job.lambda$run$0(Job.java:7)", "Caused by: java.io.IOException: disk full"]
    for i in range(500):
        head = f"java.lang.IllegalStateException: transfer {i} failed for {rng.choice(['anna', 'bob', 'eve'])}"
        out.append((head, "\n".join([head, *rng.sample(frames, rng.randint(0, 4))])))
        out.append((head, None))
    alphabet = "ab Z9./@'\"<>=:[](),;\t\r\n\x00\x07\x7f\ud83d\u00e9\u0663\u2003"
    for _ in range(3000):
        out.append(("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80))), None))
    out += [("x" * 30_000, None), ("a." * 5_000 + "Exception", None), ("<" * 3_000 + "'" * 3_000, None)]
    return out


def documents(texts: list[tuple[str, str | None]]) -> list:
    """Documents as Elasticsearch and NDJSON files send them, the usual and the broken, built from ``texts``."""
    rng = random.Random(7)
    stamps = ["2026-11-20T10:00:00.123Z", "2026-11-20T10:00:00.123456789Z", "2026-11-20T11:00:00+01:00",
              "2026-11-20 10:00:00", "1763632800", 1763632800, 1763632800123, 1763632800123456789, 1.7636328e9,
              "20261120", "yesterday", "", None, True, [], {"a": 1}, "2026-11-20T10:00:00.5z", " 2026-11-20T10:00Z "]
    values = ["pay-api", "", None, 42, 3.5, True, ["a", "b"], [], [1], {"name": "x"}, "é\ud83d\x00", "x" * 1500,
              2 ** 300]
    good = ["pay-api", "1.2.3", "é\ud83d\x00", "x" * 1500, ["a", "b"], 42]

    def pick(choices: list) -> object:  # mostly usable values, so most documents become events
        return rng.choice(choices) if rng.random() < 0.15 else rng.choice(good)

    out: list = [None, [], "text", 7, {}]
    for i, (message, trace) in enumerate(texts[::7]):
        doc: dict = {"@timestamp": rng.choice(stamps[:9]) if rng.random() < 0.8 else rng.choice(stamps),
                     "message": rng.choice([message, message, message, "", None, 12, [message]])}
        if rng.random() < 0.5:
            doc["error"] = {"message": message, "type": pick(values), "stack_trace": trace or pick(values)}
        elif rng.random() < 0.5:
            doc["error.stack_trace"] = trace
        doc["service"] = {"name": pick(values), "version": pick(values)}
        doc["kubernetes.pod.name" if i % 2 else "kubernetes"] = pick(values) if i % 2 else {"pod": {"name": "p"}}
        doc["host"] = rng.choice([{"name": pick(values)}, "node-1", None])
        out.append(doc)
    return out


def decode_and_scrub(texts: list[tuple[str, str | None]]) -> dict:
    """Every document through `to_event`, every text (and a secret-bearing set) through a fresh scrubber."""
    from blocks.settings import ElasticsearchSettings
    from tasks.models import SourceStats
    from tasks.scrubbing import Scrubber
    from tasks.source.documents import to_event

    fields, stats = ElasticsearchSettings().fields, SourceStats()
    decoded = [to_event(doc, fields, stats) for doc in documents(texts)]
    events = [None if event is None else _fields(event) for event in decoded]
    secrets = ["card 4111 1111 1111 1111 and 4111-1111-1111-1112", "IBAN DE89 3704 0044 0532 0130 00 / GB82WEST1234",
               "Authorization: Bearer abc.def.ghi12345", "jwt eyJhbGciOi.eyJzdWIiOi.sig_part",
               "user=a password=hunter2",
               "https://bob:s3cret@host/x", "mail anna@bank.example now", "-----BEGIN RSA PRIVATE KEY-----\nMII\n"
               "-----END RSA PRIVATE KEY-----", "java.lang.X: token=abc\n\tat a.B.c(B.java:1)", "\"api_key\": \"zz\""]
    scrubber = Scrubber()
    scrubbed = [scrubber.scrub(text) for pair in texts for text in pair] + [scrubber.scrub(t) for t in secrets * 2]
    return {"events": events, "bad": sorted(stats.bad_documents.items()), "samples": sorted(stats.samples.items()),
            "scrubbed": scrubbed, **cross_processes([e for e in decoded if e is not None])}


def cross_processes(events: list) -> dict:
    """The events as the read-ahead processes send them (tasks.event_rows): small batches and a small table, so
    it starts anew many times; a lone surrogate sends its batch pickled."""
    import pickle

    from tasks.event_rows import ROWS, EventDecoder, EventEncoder

    encoder, decoder, messages = EventEncoder(table_chars=2_000), EventDecoder(), []
    for event in events:
        if encoder.add(event) >= 7:
            messages.append(encoder.encode())
    messages.append(encoder.encode())
    crossed = [_fields(e) for data in messages for e in (
        decoder.decode(data) if data[:1] == ROWS else decoder.events(pickle.loads(data)[1]))]
    return {"encoded": [data.hex() for data in messages], "crossed": crossed}


def _fields(event) -> list[str]:
    return [str(getattr(event, f)) for f in event.__dataclass_fields__]


def replay() -> dict:
    from tasks.grouping import GroupingEngine
    from tasks.models import LogEvent

    texts = messages()
    decoded = decode_and_scrub(texts)
    modules = {name: Path(sys.modules[name].__file__).name for name in COMPILED}
    engine = GroupingEngine(cache_bytes=200_000)  # small: the cache's generations turn over many times
    at = datetime(2026, 11, 20, tzinfo=UTC)
    results = []
    for message, trace in texts:
        r = engine.group_event(LogEvent(timestamp=at, message=message, stack_trace=trace))
        results.append([r.problem_id, r.template, r.error_type])
    miner = engine.miner
    return {"modules": modules, "results": results, "aliases": sorted(miner.aliases.items()),
            "clusters": sorted((c.problem_id, c.template, c.size) for c in miner.clusters.values()),
            "keys": sorted(miner.fresh_keys), "comparisons": miner.comparisons, "cache_bytes": engine.cache_bytes,
            **decoded}


if __name__ == "__main__":
    if "--source" in sys.argv:
        sys.meta_path.insert(0, _Sources())
    sys.stdout.write(json.dumps(replay()))
