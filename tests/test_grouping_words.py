"""Variables without digits, decided from evidence; matching that does not scan every template; bounded memory;
one error, one problem across shapes; problem ids pinned (golden)."""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime

import pytest

from blocks.settings import ElasticsearchSettings
from tasks.grouping import GroupingEngine, load_engine, save_engine
from tasks.grouping.miner import OVERFLOW_MARK, TemplateMiner
from tasks.models import LogEvent, SourceStats
from tasks.source.documents import to_event

RNG = random.Random(5)


@pytest.fixture(autouse=True)
def seeded():
    RNG.seed(5)  # every test sees the same words whichever tests ran before


def word() -> str:
    return "".join(RNG.choice(string.ascii_lowercase) for _ in range(RNG.randint(4, 9)))


def final_ids(engine: GroupingEngine, messages: list[str]) -> set[str]:
    clusters = [engine.learn(m) for m in messages]
    return {engine.resolve(c.problem_id) for c in clusters}


def test_three_thousand_user_names_are_one_problem_quickly():
    engine = GroupingEngine()
    messages = [f"User {word()} cannot open project {word()} now" for _ in range(3000)]
    assert len(final_ids(engine, messages)) == 1
    assert len(engine.clusters) == 1
    survivor = next(iter(engine.clusters.values()))
    assert survivor.template == "User <*> cannot open project <*> now" and survivor.size == 3000
    assert len(engine.miner.aliases) < 10  # the merge came after a handful of names, not thousands
    first = engine.miner.by_key[" ".join(messages[0].split())].problem_id
    assert engine.resolve(first) == survivor.problem_id


@pytest.mark.parametrize("family", [
    "Host {a}.{b}.example unreachable from gateway",
    "Cannot load class com.{a}.{b}.Handler in context",
    "Mail to {a}@{b}.org bounced by relay",
    "Queue {a} is full, dropping message",
    "Lookup of tenant {a} failed: {b} not found",
])
def test_word_variable_families_are_one_problem(family):
    engine = GroupingEngine()
    assert len(final_ids(engine, [family.format(a=word(), b=word()) for _ in range(500)])) == 1


@pytest.mark.parametrize("a, b", [("read", "write"), ("declined", "approved"), ("frozen", "closed"),
                                  ("missed", "restored")])
def test_few_valued_words_that_change_meaning_stay_apart(a, b):
    engine = GroupingEngine()
    messages = [f"Account {RNG.choice([a, b])} for holder {word()} today" for _ in range(800)]
    ids = final_ids(engine, messages)
    assert len(ids) == 2
    templates = sorted(engine.clusters[i].template for i in ids)
    assert templates == sorted([f"Account {a} for holder <*> today", f"Account {b} for holder <*> today"])


def test_a_handful_of_states_seen_many_times_stay_apart():
    """Six values at one position, each repeated: the values saturate, so it is a choice, not a variable."""
    engine = GroupingEngine()
    states = ["started", "paused", "stopped", "resumed", "suspended", "migrated"]
    messages = [f"Instance {RNG.choice(states)} by scheduler (lifecycle event)" for _ in range(600)]
    assert len(final_ids(engine, messages)) == 6


def test_word_merges_across_pods_keep_ids(db):
    names = [word() for _ in range(12)]
    pod1 = GroupingEngine()
    early = [pod1.group_message(f"Tenant {n} exceeded its storage quota today").problem_id for n in names[:3]]
    assert len(set(early)) == 3
    with db.connect() as conn:
        save_engine(conn, pod1)
        conn.commit()
        pod2 = load_engine(conn)
        for n in names[3:]:
            pod2.group_message(f"Tenant {n} exceeded its storage quota today")
        save_engine(conn, pod2)
        conn.commit()
        pod3 = load_engine(conn)
        aliases = dict(conn.execute("SELECT alias_id, problem_id FROM problem_aliases").fetchall())
    survivor = pod3.group_message("Tenant newcomer exceeded its storage quota today")
    assert survivor.template == "Tenant <*> exceeded its storage quota today"
    assert {pod3.resolve(i) for i in early} == {survivor.problem_id}
    assert set(aliases.values()) == {survivor.problem_id}


def test_matching_does_not_scan_every_template():
    """20,000 distinct templates in one bucket: a known shape is found by the index without any similarity
    comparison, a new shape is compared with at most `scan_limit` recent templates."""
    miner = TemplateMiner(bucket_cap=50_000)
    shapes = [["Job", *(word() for _ in range(6))] for _ in range(20_000)]
    for tokens in shapes:
        miner.add(tokens)
    assert len(miner.clusters) == 20_000
    before = miner.comparisons
    recent = shapes[-1]
    variant = miner.add(recent[:6] + ["zzz-1"])  # differs by a non-word: the template generalises
    assert variant.template == " ".join(recent[:6] + ["<*>"]) and variant is miner.match(recent)
    assert 0 < miner.comparisons - before <= miner.scan_limit
    before = miner.comparisons
    assert miner.add(recent[:6] + ["other-2"]) is variant  # fits the generalised template: found by the index
    assert miner.match(shapes[123]).tokens == shapes[123]  # an old template: found by its key
    assert miner.comparisons == before
    miner.add(["Job", *(word() for _ in range(6))])  # a new shape: compared with recent templates only
    assert 0 < miner.comparisons - before <= miner.scan_limit


def test_the_index_tells_apart_templates_whose_constants_run_together():
    """The index keys a template by the text of its constants: "ab c" and "a bc" are two templates, and a key
    fits the one whose words it has, not the other whose letters run the same."""
    miner = TemplateMiner()
    first = miner.restore("Pfirst", "Job ab c <*> done", "Job ab c 1 done")
    second = miner.restore("Psecond", "Job a bc <*> done", "Job a bc 1 done")
    assert first is not second and not miner.aliases
    assert miner.add("Job a bc x-9 done".split()) is second
    assert miner.add("Job ab c x-9 done".split()) is first
    assert miner.match("Job abc <*> done".split()) is None


def test_bucket_cap_sends_new_shapes_to_a_counted_overflow_problem(db):
    engine = GroupingEngine()
    engine.miner.bucket_cap = 50
    results = [engine.group_message(" ".join(["Job", *(word() for _ in range(6))])) for _ in range(80)]
    overflow = [r for r in results if OVERFLOW_MARK in r.template]
    assert len(overflow) == 30 and len({r.problem_id for r in overflow}) == 1
    assert engine.clusters[overflow[0].problem_id].size == 30
    with db.connect() as conn:
        save_engine(conn, engine)
        conn.commit()
        again = load_engine(conn)
    assert again.clusters[overflow[0].problem_id].overflow


def test_raw_message_cache_is_bounded_in_bytes():
    engine = GroupingEngine(cache_bytes=20_000)
    for i in range(2000):
        engine.learn(f"Disk {i} of node {word()} is {'x' * (i % 50)} full")
        assert engine.cache_bytes <= 20_000
    assert len(engine._cache) < 2000


# -- one error, one problem across shapes ----------------------------------------------------------
TRACE = """java.lang.IllegalStateException: Transfer 8812 failed
\tat com.bank.payments.service.TransferService.execute(TransferService.java:88)
\tat com.bank.payments.api.TransferController.post(TransferController.java:41)
\tat java.base/java.lang.Thread.run(Thread.java:1583)"""


def event(message: str, **kw) -> LogEvent:
    return LogEvent(timestamp=datetime(2026, 11, 20, tzinfo=UTC), message=message, **kw)


SHAPES = {
    "trace": lambda n: event(f"Transfer {n} failed", stack_trace=TRACE.replace("8812", str(n))),
    "error.type only": lambda n: event(f"Transfer {n} failed", error_type="java.lang.IllegalStateException"),
    "short prefix": lambda n: event(f"IllegalStateException: Transfer {n} failed",
                                    error_type="java.lang.IllegalStateException"),
    "full prefix": lambda n: event(f"java.lang.IllegalStateException: Transfer {n} failed"),
}


@pytest.mark.parametrize("first", list(SHAPES))
def test_one_error_is_one_problem_across_shapes(first):
    engine = GroupingEngine()
    order = [first] + [s for s in SHAPES if s != first]
    ids = [engine.group_event(SHAPES[shape](n)).problem_id for n, shape in enumerate(order)]
    assert len({engine.resolve(i) for i in ids}) == 1, dict(zip(order, ids, strict=True))
    # later events of every shape land on the survivor directly
    assert {engine.group_event(SHAPES[s](99)).problem_id for s in SHAPES} == {engine.resolve(ids[0])}


def test_the_same_exception_from_other_code_still_splits():
    engine = GroupingEngine()
    a = engine.group_event(SHAPES["error.type only"](1))
    b = engine.group_event(SHAPES["trace"](2))
    c = engine.group_event(event("Transfer 3 failed", stack_trace=TRACE.replace("TransferService.execute", "Batch.run")))
    assert engine.resolve(a.problem_id) == b.problem_id != c.problem_id


def test_dotted_and_nested_ecs_keys_are_one_problem():
    fields = ElasticsearchSettings().fields
    nested = {"@timestamp": "2026-11-20T10:00:00Z", "message": "Transfer 1 failed",
              "error": {"type": "java.lang.IllegalStateException", "stack_trace": TRACE}, "service": {"name": "pay"}}
    dotted = {"@timestamp": "2026-11-20T10:00:00Z", "message": "Transfer 2 failed",
              "error.type": "java.lang.IllegalStateException", "error.stack_trace": TRACE, "service.name": "pay"}
    engine = GroupingEngine()
    ids = {engine.group_event(to_event(d, fields, SourceStats())).problem_id for d in (nested, dotted)}
    assert len(ids) == 1


# -- ids pinned --------------------------------------------------------------------------------------
GOLDEN = [
    ("Connection to 10.0.0.12:5432 refused after 30 ms", "PCRW4BMU66DN", "Connection to <*> refused after <*> ms"),
    ("Disk /dev/sda1 full", "PFCDDGYZV3VZ", "Disk <*> full"),
    ("Payment 8812 rejected: limit 500 EUR exceeded", "P4765TARIHKD", "Payment <*> rejected: limit <*> EUR exceeded"),
    ("mail to ops@bank.example bounced", "P3IEC3WXV7MD", "mail to <EMAIL> bounced"),
    ("GET https://api.bank/v1/x?y=z failed", "PP7ZMJLLKHVA", "GET <URL> failed"),
    ("status 'PENDING' unexpected", "P3MDTS3ZXHMM", "status <*> unexpected"),
    ("VM Started (Lifecycle Event)", "PPOY32EZ5PCI", "VM Started (Lifecycle Event)"),
    ("VM Paused (Lifecycle Event)", "P7PKDFNTKWXK", "VM Paused (Lifecycle Event)"),
    ("plain words stay as they are", "POQNETXYKRXJ", "plain words stay as they are"),
    ("", "P3WKG3F7VRXR", "<empty>"),
]


def test_problem_ids_are_pinned():
    """A change here re-numbers problems in production: it needs a migration of aliases, not a new golden."""
    engine = GroupingEngine()
    results = [engine.group_message(m) for m, _, _ in GOLDEN]
    assert [(m, r.problem_id, r.template) for (m, _, _), r in zip(GOLDEN, results, strict=True)] == GOLDEN
    java = engine.group_event(event("Transfer 8812 failed", stack_trace=TRACE))
    oom = engine.group_event(event("Java heap space", error_type="java.lang.OutOfMemoryError"))
    assert (java.problem_id, oom.problem_id) == ("P5TPIUYWOH3H", "PX2M7N7ER3CM")
