"""Poison input: whatever arrives, the document decoder and the grouping engine end without an exception, in
bounded time, with text that PostgreSQL stores and the id function hashes (property-based, hypothesis)."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from blocks.settings import ElasticsearchSettings
from tasks.grouping import GroupingEngine
from tasks.models import LogEvent, SourceStats
from tasks.source.documents import MAX_MESSAGE_CHARS, parse_timestamp, to_event

FIELDS = ElasticsearchSettings().fields
ID = re.compile(r"P[A-Z2-7]{11}")
# a generous bound that only a runaway (catastrophic regex backtracking, quadratic scans) would break
BOUNDED = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])

any_text = st.text(st.characters(codec=None, categories=None), max_size=400)  # surrogates, NUL, controls included
hostile = st.one_of(
    any_text,
    st.builds(lambda a, b: a * b, st.sampled_from(["a.", "a", "<", "'", "/", "@", "=", "x\\", " at ", "\x00", "\ud83d",
                                                   "Exception: ", "\tat a.b.C.d(", "]"]), st.integers(0, 5000)),
)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), any_text)
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner,
                                                                                                    max_size=4),
                          max_leaves=20)


def safe(text: str) -> bool:
    """Storable in PostgreSQL text and encodable as UTF-8."""
    text.encode("utf-8")
    return "\x00" not in text


def event(message: str, **kw) -> LogEvent:
    return LogEvent(timestamp=datetime(2026, 11, 20, tzinfo=UTC), message=message, **kw)


@BOUNDED
@given(st.lists(hostile, min_size=1, max_size=8))
def test_engine_groups_any_message(messages):
    engine = GroupingEngine()
    for message in messages:
        result = engine.group_message(message)
        assert ID.fullmatch(result.problem_id) and safe(result.template)
    for key in engine.miner.by_key:
        assert safe(key)


@BOUNDED
@given(hostile, st.one_of(st.none(), hostile), st.one_of(st.none(), any_text))
def test_engine_groups_any_event(message, trace, error_type):
    engine = GroupingEngine()
    result = engine.group_event(event(message, stack_trace=trace, error_type=error_type))
    assert ID.fullmatch(result.problem_id) and safe(result.template)


@BOUNDED
@given(st.dictionaries(st.sampled_from(["@timestamp", "message", "service", "service.name", "error", "error.type",
                                        "error.stack_trace", "log", "kubernetes", "x"]), json_value, max_size=8))
def test_decoder_takes_any_document(doc):
    stats = SourceStats()
    result = to_event(doc, FIELDS, stats)
    assert (result is None) == (stats.bad_total == 1)  # an event or exactly one counted reason
    if result is not None:
        for value in (result.message, result.app, result.stack_trace, result.pod, result.host, result.version):
            assert value is None or safe(value)
        GroupingEngine().group_event(result)


def test_every_field_of_a_document_lands_in_its_own_event_field():
    """`to_event` fills the event positionally, in `OPTIONAL` order: each configured field reaches the attribute
    of its name (a swapped pair would put pods under hosts)."""
    from tasks.source.documents import OPTIONAL

    doc = {FIELDS["timestamp"]: "2026-11-20T10:00:00Z", FIELDS["message"]: "m"}
    doc.update({FIELDS[key]: f"value of {key}" for key in OPTIONAL})
    event = to_event(doc, FIELDS, SourceStats())
    assert {key: getattr(event, key) for key in OPTIONAL} == {key: f"value of {key}" for key in OPTIONAL}
    assert event.message == "m" and event.timestamp.isoformat() == "2026-11-20T10:00:00+00:00"
    bare = to_event({FIELDS["timestamp"]: "2026-11-20T10:00:00Z", FIELDS["message"]: "m"}, FIELDS, SourceStats())
    assert {key: getattr(bare, key) for key in OPTIONAL} == {key: "unknown" if key == "app" else None
                                                             for key in OPTIONAL}  # an event's app is never empty


def test_short_field_values_are_cleaned_every_time_and_their_cache_stays_bounded():
    """Short field values (pods, hosts, apps …) come from a cache of what they were cleaned to: the second
    document with a value gets it as clean as the first did, a value too long for the cache is still cleaned and
    cut, and the cache forgets rather than grows past its bound."""
    from tasks.source import documents

    def pod(name):
        return to_event({FIELDS["timestamp"]: "2026-11-20T10:00:00Z", FIELDS["message"]: "m", FIELDS["pod"]: name},
                        FIELDS, SourceStats()).pod

    assert [pod("pay\x00-1\ud83d") for _ in range(3)] == ["pay\ufffd-1\ufffd"] * 3
    assert [pod("\x01" + "p" * 5000) for _ in range(2)] == ["\ufffd" + "p" * (documents.MAX_FIELD_CHARS - 1)] * 2
    for i in range(documents.MAX_SHORT_VALUES + 5):
        assert pod(f"pod-{i}") == f"pod-{i}"
    assert 0 < len(documents._SHORT_VALUES) <= documents.MAX_SHORT_VALUES


@BOUNDED
@given(st.one_of(any_text, st.text(st.characters(max_codepoint=0x7f), max_size=40)))
def test_clean_text_replaces_exactly_what_its_pattern_names(text):
    """The printable-ASCII shortcut must not let any unsafe character through, nor change a safe one."""
    from tasks.text import _UNSAFE, REPLACEMENT, clean_text

    assert clean_text(text) == _UNSAFE.sub(REPLACEMENT, text)


_SEGMENT = st.sampled_from(["kubernetes", "pod", "name", "kubernetes.pod", "pod.name", "kubernetes.pod.name", "x"])
_nested = st.recursive(st.one_of(st.none(), st.sampled_from(["v1", "v2", "v3"]), st.just([])),
                       lambda inner: st.dictionaries(_SEGMENT, inner, min_size=1, max_size=4), max_leaves=16)


@settings(max_examples=600, deadline=2000)
@given(st.dictionaries(_SEGMENT, _nested, min_size=1, max_size=5),
       st.sampled_from(["name", "pod.name", "kubernetes.pod.name", "a.b.c.d"]))
def test_the_unrolled_field_getters_read_as_the_general_walk_does(doc, name):
    """Dotted, nested and mixed keys, also conflicting ones ({"kubernetes.pod": ..} next to {"kubernetes": ..}):
    the per-field getters (one to three segments unrolled) must find exactly what `get_field` finds."""
    from tasks.source.documents import field_getter, get_field

    assert field_getter(name)(doc) == get_field(doc, name)


@BOUNDED
@given(hostile, st.one_of(json_value, st.integers(-2**70, 2**70), st.floats(), st.just("2026-11-20T10:00:00Z")),
       st.one_of(st.none(), hostile))
def test_decoder_takes_any_message_and_timestamp(message, timestamp, trace):
    stats = SourceStats()
    result = to_event({"@timestamp": timestamp, "message": message, "error": {"stack_trace": trace}}, FIELDS, stats)
    assert (result is None) == (stats.bad_total == 1)
    assert all(safe(sample) for sample in stats.samples.values())
    if result is not None:
        assert safe(result.message) and (result.stack_trace is None or safe(result.stack_trace))


def test_huge_message_is_cut_with_a_marker_not_dropped():
    stats = SourceStats()
    result = to_event({"@timestamp": "2026-11-20T10:00:00Z", "message": "Huge " + "y" * 10_000_000}, FIELDS, stats)
    assert stats.bad_total == 0
    assert result.message.startswith("Huge yyy") and result.message.endswith("[truncated 9900005 characters]")
    assert len(result.message) < MAX_MESSAGE_CHARS + 100


def test_huge_stack_trace_is_cut_with_a_marker_not_dropped():
    from tasks.source.documents import MAX_TRACE_CHARS

    trace = "java.lang.IllegalStateException: boom\n" + "\tat com.bank.X.run(X.java:1)\n" * 50_000
    result = to_event({"@timestamp": "2026-11-20T10:00:00Z", "message": "boom", "error": {"stack_trace": trace}},
                      FIELDS, SourceStats())
    assert result.stack_trace.startswith("java.lang.IllegalStateException: boom") and "[truncated" in result.stack_trace
    assert MAX_TRACE_CHARS <= len(result.stack_trace) < MAX_TRACE_CHARS + 100 < len(trace)


def test_deep_nesting_is_a_counted_bad_document():
    nested: object = "deep"
    for _ in range(sys.getrecursionlimit() * 2):
        nested = [nested]
    stats = SourceStats()
    assert to_event({"@timestamp": "2026-11-20T10:00:00Z", "message": nested}, FIELDS, stats) is None
    assert dict(stats.bad_documents) == {"wrong_type_message": 1}


def test_a_line_nested_too_deeply_for_any_json_reader_is_a_counted_bad_document(tmp_path):
    """orjson refuses nesting beyond 1,024 levels and Python's reader, tried next (for lone surrogates), runs out
    of stack: the line is counted as not_json and its window goes on."""
    from tasks.models import Window
    from tasks.source.files import FileSource

    deep = '{"@timestamp": "2026-11-20T10:00:01Z", "message": ' + "[" * 50_000 + "]" * 50_000 + "}"
    fine = '{"@timestamp": "2026-11-20T10:00:02Z", "message": "fine"}'
    path = tmp_path / "deep.ndjson"
    path.write_text(f"{deep}\n{fine}\n")
    stats = SourceStats()
    window = Window(datetime(2026, 11, 20, 10, tzinfo=UTC), datetime(2026, 11, 20, 10, 15, tzinfo=UTC))
    events = list(FileSource([path], FIELDS).read_window(window, stats))
    assert [e.message for e in events] == ["fine"]
    assert dict(stats.bad_documents) == {"not_json": 1}


def test_numbers_in_text_fields_are_text():
    stats = SourceStats()
    result = to_event({"@timestamp": "2026-11-20T10:00:00Z", "message": 404, "service": {"name": 7}}, FIELDS, stats)
    assert (result.message, result.app) == ("404", "7")


def test_epoch_seconds_milliseconds_microseconds_are_the_same_instant():
    instant = datetime(2026, 11, 20, 10, 0, 1, tzinfo=UTC)
    seconds = int(instant.timestamp())
    assert {parse_timestamp(seconds), parse_timestamp(seconds * 1000), parse_timestamp(seconds * 1_000_000),
            parse_timestamp(str(seconds * 1000)), parse_timestamp(float(seconds))} == {instant}


@BOUNDED
@given(st.one_of(hostile, st.text(st.sampled_from("ab .,:;-_()[]{}<>=\t\r\n\x0b\x0c\x00\x1b\x7f\u00a07/@'\"\u2003\u0663"),
                                  max_size=60)))
def test_the_plain_message_fast_path_tokenises_as_masking_does(message):
    """`message_tokens` skips masking for messages it cannot change: it must give exactly what masking gives,
    and the key of those tokens."""
    from tasks.grouping.engine import _first_line, message_tokens
    from tasks.grouping.masking import mask_tokens

    tokens, key = message_tokens(message)
    assert tokens == mask_tokens(_first_line(message)) and key == " ".join(tokens)


def _mask_digit_tokens_by_expression(message: str) -> list[str]:
    """The digit masking as the expression alone does it, token by token (what `mask_tokens` did before its
    ASCII fast path): the reference the fast path must agree with."""
    from tasks.grouping.masking import _ANY_DIGIT, _DIGIT_RUN, _URL_ANY, WILDCARD

    if "://" in message:
        message = _URL_ANY.sub("<URL>", message)
    return [_DIGIT_RUN.sub(WILDCARD, tok) if not tok.isalpha() and _ANY_DIGIT(tok) else tok for tok in message.split()]


@BOUNDED
@given(st.one_of(hostile, st.text(st.sampled_from("ab7 0.,:;-_()[]{}<>=|\t\r\n\x0b\x0c\x1c\x1f\x85\u00a0\u0663\u00b2/@'\"x"),
                                  max_size=60)))
@example("id=42, (42) abc-123-def [7] a|1 x\x1cy9 \"5\" 'k'=1;2 <3> {4}")
def test_the_ascii_digit_fast_path_masks_as_the_expression_does(message):
    """Masking classifies an ASCII message's characters once and masks a digit token without delimiters whole:
    every token comes out as the expression makes it (before the word-like checks that follow)."""
    from tasks.grouping import masking

    wordy = masking._mask_wordy
    masking_tokens = masking.mask_tokens
    reference = _mask_digit_tokens_by_expression(message)
    if not any(c in message for c in "/@'\""):  # the later pass for these tokens is the same for both
        assert masking_tokens(message) == reference
    else:
        assert masking_tokens(message) == [wordy(t) if any(c in t for c in "/@'\"") else t for t in reference]


_TRACE_LINES = ["java.lang.IllegalStateException: boom 42", "Caused by: java.io.IOException: disk", "\tat com.bank.pay.PayService.run(PayService.java:10)",
                "\tat org.springframework.web.Filter.do(Filter.java:1)", "\tat com.bank.pay.Api$$Proxy.x(Api.java:3)",
                "\tat com.bank.pay.Job.lambda$run$0(Job.java:7)", "\t... 12 more", "at com.bank.Head.first(Head.java:1)",
                "Exception in thread \"main\" java.lang.Error: x", "com.bank.DomainFailure", "", "plain text line"]


@BOUNDED
@given(st.lists(st.sampled_from(_TRACE_LINES), min_size=1, max_size=12), st.sampled_from([None, "com.bank.MyError"]),
       st.sampled_from(["", "first line of the message", "java.lang.IllegalStateException: msg"]))
def test_the_cached_java_trace_path_reads_traces_as_the_line_scan_does(lines, error_type, message):
    """`_java` reads a trace's frames once per distinct body (a cache); it must agree with the plain line scan."""
    from tasks.grouping.stacktrace import _java, _java_scan

    assert _java(lines, message, error_type) == _java_scan(lines, message, error_type)


@BOUNDED
@given(st.text(st.sampled_from("[({\"',;=<])}:.>ab@/-"), max_size=12))
def test_the_punctuation_around_a_token_is_split_off_as_the_old_regular_expression_did(token):
    """`split_edges` uses str.strip where masking used a backtracking regular expression: the same split."""
    from tasks.grouping.masking import split_edges

    m = re.match(r"^([\[\(\{\"',;=<]*)(.*?)([\]\)\}\"',;:.>]*)$", token)
    assert split_edges(token) == m.groups()


def _mask_tokens_in_one_pass(message: str) -> list[str]:
    """mask_tokens as it was: the digit runs of the whole message substituted in one pass, then split."""
    from tasks.grouping.masking import _DELIM, _URL_ANY, WILDCARD, _mask_wordy

    if "://" in message:
        message = _URL_ANY.sub("<URL>", message)
    tokens = re.sub(rf"(?<![^{_DELIM}])[^{_DELIM}\d]*\d[^{_DELIM}]*", WILDCARD, message).split()
    return [_mask_wordy(t) if any(c in t for c in "/@'\"") else t for t in tokens]


@BOUNDED
@given(st.one_of(hostile, st.text(st.sampled_from("ab Z.:;,=|-_()[]{}<>\"'/@\t\n\x1c\xa0\u2003\u0663\u00b2 7 42"),
                                  max_size=80)))
def test_masking_token_by_token_masks_as_one_pass_over_the_message_did(message):
    """Digit runs are masked per token (a run never spans whitespace) and without backtracking (`*+`): the
    same tokens as the single pass with the old expression, for any text."""
    from tasks.grouping.masking import mask_tokens

    assert mask_tokens(message) == _mask_tokens_in_one_pass(message)


_SEPARATORS = st.sampled_from([" ", " ", " ", "\t", "\r", "  ", "\u00a0", "\u3000", "\x85"])
_words_with_separators = st.builds(  # words with a separator between each two, and sometimes at the edges
    lambda edges, words, seps: edges[0] + "".join(sep + word for word, sep in zip(words, ["", *seps], strict=False))
    + edges[1],
    st.tuples(st.sampled_from(["", "", "", " ", "\t"]), st.sampled_from(["", "", "", " ", "\r"])),
    st.lists(st.sampled_from(["ab", "c", "déf", "x.y"]), min_size=1, max_size=6),
    st.lists(_SEPARATORS, min_size=5, max_size=5))


@BOUNDED
@given(st.one_of(hostile, _words_with_separators,
                 st.text(st.sampled_from("ab .\t\r\n\x0b\x0c\x1c\x1f\x85\u00a0\u2003\u3000é7"), max_size=40)))
@example("a\tb").via("a tab is not the space the join puts back")
@example("a\rb").via("nor is a carriage return")
@example("a  b").via("two spaces")
@example(" a b").via("an edge")
def test_a_plain_message_is_its_own_key_exactly_when_its_words_join_back_to_it(message):
    """The engine skips building the key of a plain message when the join would give the message back: the key
    must be the join for every text (tabs, runs of spaces, edges, Unicode separators), and for ASCII text, nearly
    every message, it must be the message itself whenever the join gives it back."""
    from tasks.grouping.engine import _plain_words

    words, key = _plain_words(message)
    if words is not None:
        assert key == " ".join(words)
        if message.isascii() and key == message:
            assert key is message


def _parse_trace_by_lines(message: str, stack_trace: str | None, error_type: str | None):
    """`parse_trace` as it was (stop 15): every line split off, the head read by the regular expression, the
    frames cached by the tuple of lines."""
    from tasks.grouping.stacktrace import (
        JAVA_EXC,
        MAX_LINE,
        MAX_TRACE,
        PY_FRAME,
        Trace,
        _java_scan,
        _java_trace,
        _python,
        _read_java_lines,
    )

    text = stack_trace if stack_trace else (message if "\n" in message else None)
    if not text:
        return Trace(exc_type=error_type, root_type=error_type, message="") if error_type else None
    lines = [line[:MAX_LINE] for line in text[:MAX_TRACE].splitlines()]
    if 'File "' in text and any(PY_FRAME.match(line) for line in lines[:50]):
        return _python(lines, error_type)
    head = lines[0].strip() if lines else ""
    m = JAVA_EXC.match(head)
    if m is None or head.startswith("at "):
        return _java_scan(lines, message, error_type)
    exc_type = error_type or m.group(1)
    exc_message = "" if error_type else (m.group(2) or "").strip()
    _, root, frames = _read_java_lines(tuple(lines[1:400]), 1 if head.startswith("Caused by:") else 0)
    return _java_trace(exc_type, root or m.group(1), exc_message, list(frames), message)


_HEAD_PARTS = ["Caused by:", "Caused by: ", "Exception in thread \"main\" ", "Exception in thread \"a b\"", "java",
               ".lang", ".IllegalState", "Exception", "Error", "Fault", "$1", "x", "9", ":", ": ", ":  ", " ", "\t",
               "\u2003", "boom 42", "é", "\u0663", "at ", ".", "File \"a.py\""]
_LINE_ENDS = ["\n", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\n\n", "\r\r\n"]


@BOUNDED
@given(st.lists(st.sampled_from(_HEAD_PARTS), max_size=8).map("".join),
       st.lists(st.tuples(st.sampled_from(_LINE_ENDS), st.sampled_from(_TRACE_LINES + _HEAD_PARTS)), max_size=10),
       st.sampled_from([None, "com.bank.MyError"]), st.sampled_from(["", "first line", "java.lang.X: msg"]))
@example("java.lang.IllegalStateException: boom", [("\r", _TRACE_LINES[2]), ("\u2028", _TRACE_LINES[5])], None, "")
@example("Caused by: java.io.IOException", [("\r\n", _TRACE_LINES[2]), ("\x1c", _TRACE_LINES[5])], None, "m")
def test_a_trace_is_read_as_when_every_line_was_split_off(head, rest, error_type, message):
    """`parse_trace` cuts off only the first line (at whatever str.splitlines ends a line with), reads the
    exception's name up to the first colon and caches the frames by the text after the first line: for any
    trace the same Trace as splitting every line and matching the head with `JAVA_EXC`."""
    from tasks.grouping.stacktrace import parse_trace

    trace = head + "".join(end + line for end, line in rest)
    assert parse_trace(message, trace, error_type) == _parse_trace_by_lines(message, trace, error_type)
    multi_line = f"{head}\n{message}"
    assert parse_trace(multi_line, None, error_type) == _parse_trace_by_lines(multi_line, None, error_type)


@BOUNDED
@given(st.lists(st.sampled_from(_HEAD_PARTS), max_size=10).map("".join))
@example("Caused by: java.io.IOException:  disk")
@example("Exception in thread \"main\" java.lang.Error")
def test_the_exception_line_is_read_as_the_regular_expression_reads_it(head):
    from tasks.grouping.stacktrace import JAVA_EXC, _exception_line

    m = JAVA_EXC.match(head)
    assert _exception_line(head) == (m.groups() if m else None)
