"""Log content is personal data: scrub secrets and personal data out of every event before it is grouped,
so no sample message, template, stack trace, CSV, report, card or page ever carries them.

Default patterns cover passwords/tokens/keys in URLs, headers and `key=value` (JSON too), bearer and JWT
tokens, private key blocks, payment card numbers (Luhn-checked), IBANs (mod-97 checked) and e-mail addresses.
Users add their own in a YAML file (AILOG_SCRUB_PATTERNS, see docs/PRIVACY.md):

    patterns:
      - name: customer-number
        pattern: '\\bCUST-\\d{8}\\b'
        replacement: '<customer>'

Replacements are fixed placeholders, so grouping still sees one template for "login failed for <email>".
Every value of the secret registry (core.redact) is masked as well.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import ahocorasick

from core.errors import ConfigError
from core.redact import URL_CREDENTIALS_PROBE, Redactor

# the key-value pattern's probe: every spelling its alternation (_SECRET_KEYS) accepts, lower-cased, or a word
# inside it ("client_secret" holds "secret"); a spelling missing here is a secret left in the logs
_KEY_WORDS = ("password", "passwd", "pwd", "secret", "token", "api_key", "api-key", "apikey", "access_key",
              "access-key", "accesskey", "private_key", "private-key", "privatekey", "credential", "session_id",
              "session-id", "sessionid", "sig")
V = TypeVar("V")  # what a cache of the scrubber holds
_IBAN_COUNTRIES = frozenset(
    "AD AE AL AT AZ BA BE BG BH BR BY CH CR CY CZ DE DK DO EE EG ES FI FO FR GB GE GI GL GR GT HR HU IE IL IQ IS IT JO "
    "KW KZ LB LC LI LT LU LV LY MC MD ME MK MR MT MU NL NO PK PL PS PT QA RO RS SA SC SD SE SI SK SM SO ST SV TL TN TR "
    "UA VA VG XK".split())
_SECRET_KEYS = (r"(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key"
                r"|client[_-]?secret|credentials?|session[_-]?id|sig)")


def _luhn(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(m: re.Match) -> str:
    digits = re.sub(r"\D", "", m.group(0))
    return "<card>" if 13 <= len(digits) <= 19 and _luhn(digits) else m.group(0)


# ASCII text mapped to classes in one `bytes.translate`: digit → "1", space or hyphen → "-", capital → "A", other → "0"
_CLASSES = bytes(ord("1") if chr(c).isdigit() else ord("-") if chr(c) in " -" else ord("A") if "A" <= chr(c) <= "Z"
                 else ord("0") for c in range(128)) + b"0" * 128
_CARD_PROBE = re.compile(r"\d" + r"[ -]?\d" * 12)  # 13 digits however grouped (Amex: 4-6-5)
_IBAN_PROBE = re.compile(r"\b[A-Z]{2}\d{2} ?[A-Z0-9]{4} ?[A-Z0-9]{4}")


def may_hold_card(text: str) -> bool:
    """`_CARD_PROBE.search(text)`, for ASCII text without the expression (it ran at every digit of every line):
    thirteen digits with at most one space or hyphen between neighbours are thirteen "1"s once each lone
    separator between two digits is dropped (two passes: `replace` does not overlap)."""
    if not text.isascii():
        return _CARD_PROBE.search(text) is not None
    classes = text.encode().translate(_CLASSES)
    if classes.count(b"1") < 13:
        return False
    return b"1111111111111" in classes.replace(b"1-1", b"11").replace(b"1-1", b"11")


def may_hold_iban(text: str) -> bool:
    """`_IBAN_PROBE.search(text)`, run only where two capitals are followed by two digits (ASCII text)."""
    if text.isascii() and b"AA11" not in text.encode().translate(_CLASSES):
        return False
    return _IBAN_PROBE.search(text) is not None


def _iban(m: re.Match) -> str:
    raw = re.sub(r"\s", "", m.group(0))
    if raw[:2] not in _IBAN_COUNTRIES:
        return m.group(0)
    moved = raw[4:] + raw[:4]
    number = "".join(str(int(c, 36)) for c in moved)
    return "<iban>" if 15 <= len(raw) <= 34 and int(number) % 97 == 1 else m.group(0)


@dataclass(frozen=True)
class Pattern:
    name: str
    regex: re.Pattern
    replacement: str | Callable[[re.Match], str]
    # a cheap test first: substrings of the lower-cased text, a regex or a test of the text; the pattern runs
    # only when it hits
    probe: tuple[str, ...] | re.Pattern | Callable[[str], bool] | None = None

    def wanted(self, text: str, lower: str) -> bool:
        if self.probe is None:
            return True
        if isinstance(self.probe, tuple):
            return any(p in lower for p in self.probe)
        if isinstance(self.probe, re.Pattern):
            return self.probe.search(text) is not None
        return self.probe(text)


DEFAULT_PATTERNS: tuple[Pattern, ...] = (
    Pattern("private-key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
                                      re.DOTALL), "<private-key>", ("private key",)),
    Pattern("url-credentials", re.compile(r"(?i)([a-z][a-z0-9+.-]{0,20}://)[^/\s:@\"']+:[^/\s@\"']+@"),
            r"\1<user>:<secret>@", URL_CREDENTIALS_PROBE),
    Pattern("auth-header", re.compile(r"(?i)\b((?:proxy-)?authorization|x-api-key|api-key|x-auth-token|cookie|set-cookie)"
                                      r"(\"?[ \t]*[:=][ \t]*\"?)[^\r\n\"]+"), r"\1\2<secret>",
            ("authorization", "api-key", "auth-token", "cookie")),
    Pattern("bearer", re.compile(r"(?i)\b(bearer|basic|token)[ \t]+[A-Za-z0-9\-._~+/]{8,}=*"), r"\1 <secret>",
            ("bearer", "basic", "token")),
    Pattern("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "<jwt>", ("eyj",)),
    Pattern("key-value", re.compile(rf"(?i)({_SECRET_KEYS})(\"?[ \t]*[=:][ \t]*\"?|\"?[ \t]*=>[ \t]*\"?)[^\s\"'&;,)}}\]]+"),
            r"\1\2<secret>", _KEY_WORDS),
    Pattern("card-number", re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])"), _card, may_hold_card),
    Pattern("iban", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"), _iban, may_hold_iban),
    Pattern("email", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"), "<email>", ("@",)),
)
FIELDS = ("message", "stack_trace")
# Every default pattern but the private-key block matches within one line (a value sits on its key's line), so a
# multi-line text is scrubbed line by line: a stack trace's frames repeat across events and come from a cache,
# only its first line (which carries the message) is new.
LINE_PATTERNS = DEFAULT_PATTERNS[1:]


class Scrubber:
    """Apply the patterns (defaults, then the user's) and the secret registry to a text."""

    CACHE_SIZE = 20_000  # error logs repeat: a text or line seen before is not scanned again (one run's lifetime)

    def __init__(self, patterns: tuple[Pattern, ...] = DEFAULT_PATTERNS) -> None:
        self.patterns = patterns
        # the defaults come first (load_patterns); the rest (the user's) may span lines: applied to whole texts
        defaults = patterns[:len(DEFAULT_PATTERNS)] == DEFAULT_PATTERNS
        self._whole = patterns[len(DEFAULT_PATTERNS):] if defaults else patterns
        self._line_wise = defaults
        self._seen: dict[str, str] = {}
        self._lines: dict[str, str] = {}
        self._tails: dict[str, str] = {}  # what follows a trace's first line (its frames), scrubbed and redacted
        self._heads: dict[str, bool] = {}  # a trace line's `<exception>: ` part -> whether a probe hits it
        self._redact = Redactor()

    def scrub(self, text: str | None) -> str | None:
        if not text:
            return text
        done = self._seen.get(text)
        return self._keep(self._seen, text, self._scrub(text)) if done is None else done

    def _scrub(self, text: str) -> str:
        if self._line_wise:
            if "PRIVATE KEY" in text:
                text = _apply(DEFAULT_PATTERNS[:1], text)
            elif "\n" in text and not self._whole and self._redact.line_wise:
                # a stack trace: only its first line is new, the rest (its frames) repeats from event to event
                # and is looked up whole, scrubbed and redacted, instead of line by line
                # (the first line is not cached apart: the whole trace is)
                head, _, tail = text.partition("\n")
                line = self._known_message_line(head) or self._scrub_line(head)
                return self._redact(line) + "\n" + self._scrub_tail(tail)
            text = "\n".join([self._scrub_line(line) for line in text.split("\n")]) if "\n" in text \
                else self._scrub_line(text)
        return self._redact(_apply(self._whole, text))

    def _scrub_tail(self, tail: str) -> str:
        done = self._tails.get(tail)
        if done is None:
            done = self._keep(self._tails, tail,
                              self._redact("\n".join([self._scrub_line(line) for line in tail.split("\n")])))
        return done

    def refresh_secrets(self) -> None:
        """Read the secret registry once per window (not once per text); forget cached texts when it changed."""
        redactor = Redactor()
        if redactor.known != self._redact.known:
            self._seen.clear()
            self._tails.clear()
        self._redact = redactor

    def _scrub_line(self, line: str) -> str:
        done = self._lines.get(line)
        return self._keep(self._lines, line, _apply(LINE_PATTERNS, line)) if done is None else done

    def _keep(self, cache: dict[str, V], key: str, value: V) -> V:
        """A result into one of the bounded caches (a full one is emptied first): error logs repeat, but one run
        may see millions of distinct texts."""
        if len(cache) >= self.CACHE_SIZE:
            cache.clear()
        cache[key] = value
        return value

    def _known_message_line(self, line: str) -> str | None:
        """A stack trace's first line is ``<exception>: <message>``, and the message was scrubbed just before it
        (as a line of its own): the line is the exception's part plus that result — unless a probe hits the
        part before the message. Without a hit there, no default pattern can match across the ": ": the
        key-value and header patterns need their key before it (a hit), the others cannot hold ": "."""
        cut = line.find(": ") + 2
        if cut < 2:
            return None
        message = self._lines.get(line[cut:])
        if message is None:
            return None
        head = line[:cut]
        clean = self._heads.get(head)  # a few exception names a day: their probes are asked once each
        if clean is None:
            gate = _gate_of(LINE_PATTERNS)
            clean = self._keep(self._heads, head, gate is not None and not gate(head, head.lower()))
        return head + message if clean else None

    def events(self, events: Iterator) -> Iterator:
        self.refresh_secrets()
        for event in events:
            for name in FIELDS:
                value = getattr(event, name)
                if value:
                    setattr(event, name, self.scrub(value))
            yield event


def _apply(patterns: tuple[Pattern, ...], text: str) -> str:
    """Each pattern in order, where its cheap probe says it may match."""
    if not patterns:
        return text
    lower = text.lower()
    gate = _gate_of(patterns)
    if gate is not None and not gate(text, lower):
        return text  # no probe hits: no pattern runs, nothing changes (the usual line)
    for p in patterns:
        if p.wanted(text, lower):
            text = p.regex.sub(p.replacement, text)
            lower = text.lower()
    return text


# the gate of each pattern tuple, found by the tuple's identity (hashing a tuple of patterns per line would cost
# more than the gate saves); the entry keeps its tuple alive, so an id is never reused for another one
_GATES: dict[int, tuple[tuple[Pattern, ...], Callable[[str, str], bool] | None]] = {}


def _gate_of(patterns: tuple[Pattern, ...]) -> Callable[[str, str], bool] | None:
    entry = _GATES.get(id(patterns))
    if entry is None or entry[0] is not patterns:
        entry = _GATES[id(patterns)] = (patterns, _gate(patterns))
    return entry[1]


def _gate(patterns: tuple[Pattern, ...]) -> Callable[[str, str], bool] | None:
    """All the patterns' probes as one test — their words in one pass of an Aho-Corasick automaton (about a
    third of the time of searching each word) — true when any probe hits. None when a pattern has no probe."""
    if any(p.probe is None for p in patterns):
        return None
    words = tuple(dict.fromkeys(w for p in patterns if isinstance(p.probe, tuple) for w in p.probe))
    tests: tuple[Callable[[str], object], ...] = tuple(
        p.probe.search if isinstance(p.probe, re.Pattern) else p.probe
        for p in patterns if p.probe is not None and not isinstance(p.probe, tuple))
    if not words:
        return lambda text, lower: any(test(text) for test in tests)
    automaton = ahocorasick.Automaton()
    for word in words:
        automaton.add_word(word, word)
    automaton.make_automaton()
    first_word = automaton.iter

    def gate(text: str, lower: str) -> bool:
        for _ in first_word(lower):
            return True
        return any(test(text) for test in tests)  # a regex search returns a match or None
    return gate


def load_patterns(path: Path | None, *, defaults: bool = True) -> tuple[Pattern, ...]:
    """The default patterns (unless turned off) followed by the user's YAML file."""
    patterns = DEFAULT_PATTERNS if defaults else ()
    if path is None:
        return patterns
    from core.yaml_file import read_yaml

    data = read_yaml(path, "scrub patterns") or {}
    if not isinstance(data, dict):
        raise ConfigError(f"AILOG_SCRUB_PATTERNS {path}: expected a mapping with a 'patterns' list")
    extra = []
    for i, item in enumerate(data.get("patterns") or []):
        try:
            extra.append(Pattern(str(item.get("name") or f"pattern-{i + 1}"), re.compile(item["pattern"]),
                                 str(item.get("replacement", "<redacted>"))))
        except (KeyError, TypeError, re.error) as exc:
            raise ConfigError(f"AILOG_SCRUB_PATTERNS {path}: pattern {i + 1} is invalid ({exc})") from None
    return patterns + tuple(extra)


class ScrubbedSource:
    """A log source whose events come out scrubbed; everything else is the wrapped source's."""

    def __init__(self, source, scrubber: Scrubber) -> None:
        self._source = source
        self.scrubber = scrubber

    def read_window(self, window, stats):
        return self.scrubber.events(self._source.read_window(window, stats))

    def __getattr__(self, name):
        return getattr(self._source, name)


def scrubbed(source, settings) -> ScrubbedSource:
    analysis = settings.analysis
    return ScrubbedSource(source, Scrubber(load_patterns(analysis.scrub_patterns, defaults=analysis.scrub_defaults)))
