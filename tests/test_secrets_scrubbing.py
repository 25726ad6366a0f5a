"""Log content scrubbing: secret-looking and personal data in log messages never reaches a template, sample,
CSV, report, artifact, Teams card, Confluence page, log line or database row. The whole pipeline runs
(backfill + regular + publish through the real flows, real Prefect API, real PostgreSQL, local Teams and
Confluence) with known secret values and hostile log content, and every output is scanned for them."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.errors import ConfigError
from tasks.models import SourceStats, Window
from tasks.scrubbing import ScrubbedSource, Scrubber, load_patterns
from tasks.source.files import FileSource
from tests.test_flows_end_to_end import env  # noqa: F401 - the flows' environment (DB, local Teams and Confluence)

CASES = {
    "jdbc:postgresql://db:5432/x?user=app&password=Hunter2-Leak failed": "Hunter2-Leak",
    "mongodb://admin:Mongo-Leak-9@mongo:27017/db unreachable": "Mongo-Leak-9",
    "GET /api Authorization: Bearer abcDEF123456ghiJKL": "abcDEF123456ghiJKL",
    'request body {"password": "Json-Leak-7", "user": "bob"}': "Json-Leak-7",
    "session token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl rejected": "eyJhbGciOiJIUzI1NiJ9",
    "card 4111 1111 1111 1111 declined": "4111 1111 1111 1111",
    "payout to DE89 3704 0044 0532 0130 00 rejected": "DE89 3704 0044 0532 0130 00",
    "mail to john.doe@example.com bounced": "john.doe@example.com",
    "aws api_key=AKIAIOSFODNN7EXAMPLE denied": "AKIAIOSFODNN7EXAMPLE",
}


@pytest.mark.parametrize("text, secret", CASES.items())
def test_default_patterns_remove_the_secret_and_keep_the_sentence(text, secret):
    out = Scrubber().scrub(text)
    assert secret not in out and "<" in out and out.split()[1:2] != []


def test_ordinary_log_text_is_left_alone():
    for text in ("Timeout after 1500 ms at 2026-11-20T10:00:00Z", "order 1234567890123456 not found",
                 "GB00 not an iban", "user bob not found in tenant 42", "NullPointerException at Foo.java:12"):
        assert Scrubber().scrub(text) == text


def test_user_patterns_from_yaml(tmp_path):
    rules = tmp_path / "scrub.yaml"
    rules.write_text("patterns:\n  - name: customer\n    pattern: '\\bCUST-\\d{8}\\b'\n    replacement: '<customer>'\n")
    assert Scrubber(load_patterns(rules)).scrub("lookup CUST-12345678 for a@b.io") == "lookup <customer> for <email>"
    assert Scrubber(load_patterns(rules, defaults=False)).scrub("a@b.io") == "a@b.io"
    rules.write_text("patterns:\n  - pattern: '(unclosed'\n")
    with pytest.raises(ConfigError, match="pattern 1 is invalid"):
        load_patterns(rules)


def test_scrubbed_source_scrubs_message_and_stack_trace(tmp_path):
    t0 = datetime(2026, 11, 20, 10, tzinfo=UTC)
    path = tmp_path / "a.ndjson"
    path.write_text(json.dumps({"@timestamp": "2026-11-20T10:00:01Z", "message": "login john.doe@example.com",
                                "error": {"stack_trace": "Ex: password=Hunter2-Leak\n\tat X"}}) + "\n")
    from blocks.settings import ElasticsearchSettings

    events = list(ScrubbedSource(FileSource([str(path)], ElasticsearchSettings().fields), Scrubber())
                  .read_window(Window(t0, t0 + timedelta(minutes=15)), SourceStats()))
    assert events[0].message == "login <email>" and "Hunter2-Leak" not in events[0].stack_trace


# --- the whole pipeline -----------------------------------------------------------------------------------------

START = date(2026, 11, 2)
KNOWN_SECRETS = ("db-Secret-Pw1x", "conf-Secret-Pw1x", "teams-Secret-Sig1x")
NEEDLES = KNOWN_SECRETS + tuple(CASES.values())


def hostile_lines(day: date, n: int = 240) -> list[str]:
    """A burst of secret-carrying errors (so they become a problem, a peak and an alert) plus a trickle daily."""
    texts = [*CASES, "connect failed with password db-Secret-Pw1x", "wiki login conf-Secret-Pw1x refused"]
    lines = []
    for d in range(3):
        for i in range(40):  # a trickle every day: a problem with a baseline
            ts = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=d, minutes=35 * i)
            lines.append(_doc(ts, texts[i % len(texts)], i))
    burst = datetime(day.year, day.month, day.day, 11, tzinfo=UTC) + timedelta(days=2)
    lines += [_doc(burst + timedelta(seconds=3 * i), texts[i % len(texts)], i) for i in range(n)]
    return lines


def _doc(ts: datetime, text: str, i: int) -> str:
    return json.dumps({"@timestamp": ts.isoformat().replace("+00:00", "Z"), "message": text, "log": {"level": "ERROR"},
                       "service": {"name": "payments-api", "version": "1.0.0"},
                       "kubernetes": {"namespace": "bank-prod", "pod": {"name": f"payments-api-{i % 3}"}},
                       "error": {"type": "java.lang.SecurityException", "stack_trace": f"SecurityException: {text}\n\tat X"}})


def scan(text: str) -> list[str]:
    return [n for n in NEEDLES if n in text]


def test_whole_pipeline_leaks_no_secret_and_no_personal_data(prefect_api, env, monkeypatch, tmp_path, capsys):  # noqa: F811
    from ailog.simulation import generate
    from flows.backfill import backfill
    from flows.publish import publish
    from flows.regular import regular

    data = generate(START, 3, seed=5, out_dir=tmp_path / "logs", apps=3)
    hostile = tmp_path / "logs" / "hostile.ndjson"
    hostile.write_text("\n".join(hostile_lines(START)) + "\n")
    inputs = [str(p) for p in data.files] + [str(hostile)]
    db, teams, wiki, out, log_dir = env["db"], env["teams"], env["wiki"], env["out"], tmp_path / "joblogs"
    wiki.password = KNOWN_SECRETS[1]
    for k, v in {"DB_PASSWORD": KNOWN_SECRETS[0], "CONFLUENCE_PASSWORD": KNOWN_SECRETS[1],
                 "TEAMS_WEBHOOK_URL": f"{teams.url}/workflows/x?sig={KNOWN_SECRETS[2]}",
                 "AILOG_LOG_DIR": str(log_dir), "AILOG_LOG_FORMAT": "json"}.items():
        monkeypatch.setenv(k, v)
    summary = backfill(start=START, end=START + timedelta(days=1), input_paths=inputs, output_dir=str(out))
    assert summary["publish"] == "completed", summary
    day3 = datetime(2026, 11, 4, tzinfo=UTC)
    regular(start=day3, end=day3 + timedelta(hours=14), input_paths=inputs, output_dir=str(out))
    publish(day=START + timedelta(days=1), output_dir=str(out))
    outgoing = {"teams": [r["body"].decode("utf-8", "replace") for r in teams.requests],
                "confluence": [r["body"].decode("utf-8", "replace") for r in wiki.requests]}

    with db.connect() as conn:
        tables = [t for (t,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'ailog'")]
        rows = {t: [r for (r,) in conn.execute(f"SELECT row_to_json(x)::text FROM ailog.{t} x")] for t in tables}  # noqa: S608
    payments = [r for r in rows["grouping_templates"] + rows.get("problems", []) if "SecurityException" in r
                or "<email>" in r or "<secret>" in r]
    assert payments, "the hostile events must have become problems, or this test proves nothing"
    assert any("payments-api" in b for b in outgoing["teams"]), "an alert about the hostile burst went to Teams"
    artifacts = _artifacts()
    files = {str(p): p.read_bytes().decode("utf-8", "replace") for p in [*out.rglob("*"), *log_dir.rglob("*")]
             if p.is_file()}
    logs = _api_logs() + capsys.readouterr().out
    hits = {where: found for where, found in [
        *((f"db:{t}", scan("\n".join(r))) for t, r in rows.items()),
        *((f"file:{p}", scan(t)) for p, t in files.items()),
        ("teams", scan("\n".join(outgoing["teams"]))), ("confluence", scan("\n".join(outgoing["confluence"]))),
        ("artifacts", scan(artifacts)), ("logs", scan(logs))] if found}
    assert hits == {}
    assert any(p.endswith(".csv") for p in files) and len(outgoing["confluence"]) >= 3 and artifacts


def _artifacts() -> str:
    import anyio
    from prefect.client.orchestration import get_client

    async def read():
        async with get_client() as client:
            return await client.read_artifacts()

    return "\n".join(json.dumps(a.data, default=str) for a in anyio.run(read))


def _api_logs() -> str:
    import anyio
    from prefect.client.orchestration import get_client
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()

    async def read():
        async with get_client() as client:
            return await client.read_logs(limit=200) + await client.read_logs(offset=200, limit=200)

    return "\n".join(log.message for log in anyio.run(read))


def test_docs_say_how_to_add_patterns():
    doc = (Path(__file__).parents[1] / "docs" / "PRIVACY.md").read_text()
    assert "AILOG_SCRUB_PATTERNS" in doc and "replacement" in doc and "AILOG_SCRUB_DEFAULTS" in doc


_FRAGMENTS = ["password", "Password", "token", "Bearer", "authorization", "api_key", "sig", ":", "=", "=>", '"', " ",
              "\t", "\n", "\r\n", "\tat com.bank.TokenService.run(TokenService.java:42)", "abcDEF123456ghiJKL", "4111",
              "1111 ", "-", "DE89 3704 0044 0532 0130 00", "john.doe@example.com", "jdbc://u:p@h", "eyJhbGciOi.eyJzdWIi.c2ln",
              "-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----", "x", "42"]


def test_line_by_line_scrubbing_equals_scrubbing_the_whole_text():
    """The scrubber scrubs multi-line texts line by line (frames come from a cache): for the default patterns that
    must give exactly what applying every pattern to the whole text gives. Seeded random texts of secret-looking
    fragments, separators and newlines."""
    import random

    from core.redact import redact
    from tasks.scrubbing import DEFAULT_PATTERNS, _apply

    rng = random.Random(4)
    for _ in range(3000):
        text = "".join(rng.choice(_FRAGMENTS) for _ in range(rng.randint(1, 14)))
        assert Scrubber().scrub(text) == redact(_apply(DEFAULT_PATTERNS, text)), repr(text)


@pytest.mark.parametrize("secrets", [("Sekret-42\tx", "reg-Secret-555x"), ("Sekret-42\tx", "two\nlines-9")],
                         ids=["secrets-within-a-line", "a-secret-holding-a-line-break"])
def test_a_trace_scrubbed_as_first_line_and_cached_rest_equals_scrubbing_it_whole(secrets, monkeypatch):
    """Stack traces are scrubbed as their first line plus their rest looked up whole (frames repeat), each part
    redacted apart. With registered secrets in the texts — one that holds a line break, which could straddle the
    cut, sends them the whole way — one scrubber reused over seeded texts (its caches warm) gives what applying
    every pattern and the redaction to the whole text gives."""
    import random

    from core.redact import _registry, redact, register_secret
    from tasks.scrubbing import DEFAULT_PATTERNS, _apply

    for secret in secrets:
        register_secret(secret)
    try:
        fragments = _FRAGMENTS + [*secrets, "?sig=abc&x=1", "https://u:pw@host/x", "two", "lines-9"]
        rng = random.Random(7)
        scrubber = Scrubber()
        scrubber.refresh_secrets()
        assert scrubber._redact.line_wise == all("\n" not in s for s in secrets)
        tails = ["\n".join(rng.choice(fragments) for _ in range(rng.randint(1, 5))) for _ in range(12)]
        for _ in range(3000):
            text = "".join(rng.choice(fragments) for _ in range(rng.randint(1, 6))) + "\n" + rng.choice(tails)
            assert scrubber.scrub(text) == redact(_apply(DEFAULT_PATTERNS, text)), repr(text)
        frames = "\tat com.bank.A.run(A.java:1)\n\tat com.bank.B.run(B.java:2)"
        for n in range(3):
            scrubber.scrub(f"java.lang.IllegalStateException: again {n}\n{frames}")
        assert (frames in scrubber._tails) == scrubber._redact.line_wise  # the rest was looked up whole
        assert "Later-77" in scrubber.scrub("x.y.AnError: first\n\tat Later-77.run")
        secrets += ("Later-77",)
        register_secret("Later-77")  # a secret learned later (the next window's refresh) reaches cached rests too
        scrubber.refresh_secrets()
        assert "Later-77" not in scrubber.scrub("x.y.AnError: second\n\tat Later-77.run")
    finally:
        _registry.difference_update({v for s in secrets for v in (s, quote(s, safe=""), quote_plus(s))})


def test_a_stack_trace_is_scrubbed_and_its_frames_come_from_the_cache():
    scrubber = Scrubber()
    frames = "\n".join(f"\tat com.bank.Token{i}Service.handle(Token{i}Service.java:{i})" for i in range(8))
    for n in range(50):
        out = scrubber.scrub(f"java.lang.IllegalStateException: password=Leak-{n} refused\n{frames}")
        assert f"Leak-{n}" not in out and out.endswith(frames)
    assert len(scrubber._lines) == 50 + 8  # one first line per event, the frames once


def test_asking_all_probes_at_once_changes_nothing():
    """`_apply` first asks every pattern's probe in one pass and returns the text untouched when none hits: the
    result must equal asking each pattern's probe in turn (the way a pattern decides to run), on seeded random
    texts of secret-looking fragments and plain words."""
    import random

    from tasks.scrubbing import DEFAULT_PATTERNS, LINE_PATTERNS, _apply

    def one_by_one(patterns, text):
        lower = text.lower()
        for p in patterns:
            if p.wanted(text, lower):
                text = p.regex.sub(p.replacement, text)
                lower = text.lower()
        return text

    rng = random.Random(9)
    words = [*_FRAGMENTS, "timeout", "order", "ORD-881", "ms", "PaymentService", "İ", "K", "1234", "5678"]
    changed = 0
    for _ in range(4000):
        text = "".join(rng.choice(words) for _ in range(rng.randint(1, 10)))
        for patterns in (DEFAULT_PATTERNS, LINE_PATTERNS):
            expected = one_by_one(patterns, text)
            assert _apply(patterns, text) == expected, repr(text)
            changed += expected != text
    assert changed > 1000  # the texts do exercise the patterns


_KEY_SPELLINGS = ["password", "passwd", "pwd", "secret", "token", "api_key", "api-key", "apikey", "access_key",
                  "access-key", "accesskey", "private_key", "private-key", "privatekey", "client_secret",
                  "client-secret", "clientsecret", "credential", "credentials", "session_id", "session-id",
                  "sessionid", "sig"]  # every spelling the key-value pattern's alternation accepts


def _probe_texts(rng):
    """Texts that reach every default pattern: keys in three casings and their separators, URLs with and
    without credentials, card numbers grouped the usual ways (4-4-4-4, Amex 4-6-5, digit pairs), IBANs, e-mails,
    bearer/JWT tokens, auth headers, a private key block, between plain words and numbers."""
    key = rng.choice(_KEY_SPELLINGS)
    key = rng.choice([key, key.upper(), key.title()])
    card = rng.choice(["4111111111111111", "378282246310005", "5500005555555559"])
    grouped = rng.choice([" ".join(card[i:i + 4] for i in range(0, len(card), 4)),
                          f"{card[:4]} {card[4:10]} {card[10:]}", "-".join(card[i:i + 2] for i in range(0, len(card), 2)),
                          card])
    separator = rng.choice(["=", ": ", '": "', " => "])
    parts = [f"{key}{separator}Leak-{rng.randint(0, 999)}x",
             rng.choice(["https", "jdbc:postgresql", "amqp", "s3"]) + "://" + rng.choice(["u:p@", "user:Pw-1@", ""])
             + "host:5432/db", grouped, "DE89 3704 0044 0532 0130 00", "john.doe@example.com",
             f"{rng.choice(['Bearer', 'basic', 'TOKEN'])} abcDEF123456ghiJKL", "eyJhbGciOi.eyJzdWIi.c2ln",
             rng.choice(["Authorization: Basic dXNlcjpw", "X-Api-Key: k-123", "proxy-authorization=t", "Cookie: a=b",
                         "Set-Cookie: sid=9", "X-Auth-Token: tok"]), "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n",
             "order 1234", "timeout", "İ", "K", "42", "ms"]
    return " ".join(rng.sample(parts, rng.randint(1, len(parts))))


def test_every_probe_lets_through_every_text_its_pattern_matches():
    """A pattern runs only where its cheap probe hits: a probe that misses a text its pattern matches leaves that
    secret in the logs. For every default pattern, a match implies a hit, on seeded texts of every spelling."""
    import random

    from tasks.scrubbing import DEFAULT_PATTERNS

    rng = random.Random(13)
    missed: dict[str, str] = {}
    for _ in range(6000):
        text = _probe_texts(rng)
        for p in DEFAULT_PATTERNS:
            if p.regex.search(text) and not p.wanted(text, text.lower()):
                missed.setdefault(p.name, text)
    assert not missed, missed


@pytest.mark.parametrize("text, secret", [("accesskey=AKIAIOSFODNN7EXAMPLE denied", "AKIAIOSFODNN7EXAMPLE"),
                                          ("privatekey: Pk-Leak-771 rejected", "Pk-Leak-771"),
                                          ("session-id=Sess-Leak-42 expired", "Sess-Leak-42"),
                                          ("card 3782 822463 10005 declined", "822463")])
def test_secrets_the_probes_used_to_miss_are_scrubbed(text, secret):
    assert secret not in Scrubber().scrub(text)


def test_the_redactor_skips_only_texts_its_patterns_cannot_change():
    """The redactor searches URL credentials and signature parameters only behind cheap tests (an @ after a
    `://`, a ? or & next to an =): on seeded texts of every spelling it gives what the patterns alone give."""
    import random

    from core.redact import _SIG, _URL_CREDENTIALS, Redactor

    def unguarded(text: str) -> str:
        text = _URL_CREDENTIALS.sub(r"\g<scheme>****:****@", text)
        return _SIG.sub(r"\g<k>****", text)

    rng = random.Random(17)
    redactor, changed = Redactor(), 0
    for _ in range(4000):
        text = _probe_texts(rng) + rng.choice(["", " https://x/y?sig=abc123&a=1", " GET /p?A=1&Token=t0k",
                                               " ftp://u:p@h/x?password=pw", " a=b&c=d", " http://h:80/x@y"])
        assert redactor(text) == unguarded(text), text
        changed += redactor(text) != text
    assert changed > 1000  # the texts do exercise both patterns


_CLASS_TEXT = st.text(alphabet=st.sampled_from("0123456789 -ABDEZ.:/xq\u0663\u00e9"), max_size=60)


@settings(max_examples=3000, deadline=None)
@given(_CLASS_TEXT)
@example("card 3782 822463 10005 declined")
@example("41-11-11-11-11-11-11-1")
@example("1--2345678901234")
@example("DE89 3704 0044 0532 0130 00")
@example("\u0663" * 13)
def test_the_card_and_iban_probes_answer_as_their_expressions(text):
    """The probes read ASCII text through one byte translation instead of the expressions: for every text they
    must answer exactly what the expressions answer (a miss would leave a card number or IBAN in the logs)."""
    from tasks.scrubbing import _CARD_PROBE, _IBAN_PROBE, may_hold_card, may_hold_iban

    assert may_hold_card(text) == (_CARD_PROBE.search(text) is not None)
    assert may_hold_iban(text) == (_IBAN_PROBE.search(text) is not None)


def test_a_trace_line_scrubbed_from_its_message_is_scrubbed_as_a_whole_line():
    """A stack trace's first line ("<exception>: <message>") takes the scrubbed message it ends with (the
    line-wise step of `Scrubber._scrub`): on seeded
    lines of secret-looking messages behind exception names — some of which end in a key or header name, so
    that the whole line holds a secret the message alone does not — the result is the whole line's."""
    import random

    from tasks.scrubbing import LINE_PATTERNS, _apply

    rng = random.Random(21)
    heads = ["java.lang.IllegalStateException", "com.bank.Card4111", "com.bank.auth.Password", "x.Cookie",
             "io.jsonwebtoken.Token", "a.b.Authorization", "org.Sig", "Error", "DE89", "Caused by: x.y.Z"]
    shortcut = 0
    scrubber = Scrubber()  # one for all lines: what it learned of each exception name serves the next lines
    # each name once, in order, first: a name no probe hits comes before a name sharing its start that one hits
    lines = [(head, "Leak-7 refused") for head in heads]
    lines += [(rng.choice(heads), rng.choice([_probe_texts(rng), f"Leak-{rng.randint(0, 99)} refused",
                                             "1111 1111 1111 1111", "=hunter2", "Basic dXNlcjpw",
                                             "3704 0044 0532 0130 00"]).replace("\n", " ")) for _ in range(4000)]
    for head, message in lines:
        line = f"{head}: {message}"
        scrubber._lines.pop(line, None)  # a line seen before would come from the cache, not be scrubbed again
        scrubber.scrub(message)
        known = scrubber._known_message_line(line)
        shortcut += known is not None
        assert (scrubber._scrub_line(line) if known is None else known) == _apply(LINE_PATTERNS, line), line
    assert shortcut > 1000  # the shortcut is taken
