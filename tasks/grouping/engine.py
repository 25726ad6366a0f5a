"""The grouping engine: message (+ stack trace) → (problem id, template).

Layers, each in its own module: masking (variable parts) → stack traces (exception type and the
application's own frames) → fingerprint rules (users split/merge) → template mining (what masking missed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from tasks.grouping.masking import mask_tokens
from tasks.grouping.miner import Cluster, TemplateMiner, problem_id_for
from tasks.grouping.rules import DEFAULT, VARIABLES, FingerprintRules
from tasks.grouping.stacktrace import parse_trace
from tasks.models import LogEvent
from tasks.text import clean_text

CACHE_BYTES: Final = 64 * 1024 * 1024  # raw messages remembered with their cluster (memory bound, in bytes)
ENTRY_OVERHEAD: Final = 120  # bytes a cache entry costs besides its text (dict slot, str header)
MAX_LINE: Final = 2000  # characters of a message's first line that the grouping looks at


@dataclass(frozen=True, slots=True)
class GroupResult:
    problem_id: str
    template: str
    error_type: str | None = None


class GroupingEngine:
    def __init__(self, rules: FingerprintRules | None = None, *, similarity: float = 0.5,
                 cache_bytes: int = CACHE_BYTES) -> None:
        self.rules = rules or FingerprintRules()
        self.miner = TemplateMiner(similarity=similarity)
        # the raw-message cache, in two generations of at most half the byte budget each: when the newer one is
        # full the older one is dropped whole (a hit there moves the message to the newer one). Nearly LRU, and a
        # miss costs two plain dict lookups instead of an ordered dict's bookkeeping on every insert.
        self.cache_limit = cache_bytes
        self._cache: dict[str, Cluster] = {}
        self._older: dict[str, Cluster] = {}
        self._cache_bytes = 0
        self._older_bytes = 0
        self._fixed: dict[str, GroupResult] = {}  # problems named by fingerprint rules
        self._display: dict[str, str] = {}  # template -> what people read (display_template), per template
        self._shared: set[str] = set()  # masked traced keys whose trace-less shape was already shared
        self.fresh_key: str | None = None  # the masked key of the last message learn() had to mask

    # -- learning (online) ------------------------------------------------------------------------
    def learn(self, message: str) -> Cluster:
        """The message's cluster. When the raw-message cache did not know the message, its masked key is left
        in `fresh_key` (None otherwise): a caller that needs the key does not mask or join twice."""
        cluster = self._cache.get(message)
        if cluster is None and self._older:
            cluster = self._promote(message)
        if cluster is not None:
            cluster.size += 1
            self.fresh_key = None
            return cluster
        tokens, key = message_tokens(message)
        cluster = self.miner.add(tokens, key)
        if len(message) <= MAX_LINE:  # huge messages are rare and would crowd out the common ones
            self._remember(message, cluster)
        self.fresh_key = key
        return cluster

    def _promote(self, message: str) -> Cluster | None:
        """A message only the older generation knows moves to the newer one (what is used stays)."""
        cluster = self._older.get(message)
        if cluster is not None:
            self._remember(message, cluster)
        return cluster

    def _remember(self, message: str, cluster: Cluster) -> None:
        """The cache is bounded in bytes: a full newer generation becomes the older one, the older one goes."""
        size = len(message) + ENTRY_OVERHEAD
        if (self._cache_bytes + size) * 2 > self.cache_limit:
            self._older, self._older_bytes = self._cache, self._cache_bytes
            self._cache, self._cache_bytes = {}, 0
        self._cache[message] = cluster
        self._cache_bytes += size

    @property
    def cache_bytes(self) -> int:
        return self._cache_bytes + self._older_bytes

    def group_message(self, message: str) -> GroupResult:
        """Group a plain message (learning from it)."""
        cluster = self._current(self._cache.get(message) or self._promote(message) or self.learn(message))
        return GroupResult(cluster.problem_id, cluster.template)

    def _current(self, cluster: Cluster) -> Cluster:
        """A cached cluster may have been merged into another since: follow the alias."""
        if cluster.problem_id in self.miner.aliases:
            return self.miner.clusters[self.miner.resolve(cluster.problem_id)]
        return cluster

    def group_event(self, event: LogEvent) -> GroupResult:
        """Group an event: stack traces by exception type, message and the app's own frames; rules on top."""
        trace = parse_trace(event.message, event.stack_trace, event.error_type)
        error_type = trace.root_type if trace is not None else event.error_type
        message = _first_line(event.message)
        if trace is None:
            cluster = self.learn(message)
        else:
            key = trace.key_message(message)
            cluster = self.learn(key)
            masked = self.fresh_key
            if masked is not None and masked not in self._shared:  # once per masked key, not per event
                if len(self._shared) > 200_000:
                    self._shared.clear()
                self._shared.add(masked)
                frameless = trace.key_message(message, frames=False)
                if frameless != key:
                    self._share_frameless(frameless, cluster)
        cluster = self._current(cluster)
        template = cluster.template
        shown = self._display.get(template)
        if shown is None:
            if len(self._display) > 100_000:
                self._display.clear()
            shown = self._display[template] = display_template(template)
        default = GroupResult(cluster.problem_id, shown, error_type)
        rule = self.rules.match(event, error_type)
        return default if rule is None else self._apply_rule(rule, event, default)

    def _share_frameless(self, frameless: str, cluster: Cluster) -> None:
        """One error, one problem across shapes: the same exception and message logged without a stack trace
        (with error.type only, or as a `pkg.Type: message` line) belongs to the first problem that has the
        trace; if the trace-less shape came first, its problem becomes an alias of the traced one. Frames
        still split traced events thrown from different code."""
        tokens = mask_tokens(_first_line(frameless))
        key = " ".join(tokens)
        owner = self.miner.route(tokens, key)
        if owner is None:
            self.miner.attach(key, self._current(cluster))
            return
        owner, cluster = self._current(owner), self._current(cluster)
        if owner is not cluster and not any(t.startswith(("at:", "root:")) for t in owner.tokens):
            self.miner.merge(cluster, owner)

    def _apply_rule(self, rule, event: LogEvent, default: GroupResult) -> GroupResult:
        parts = []
        for part in rule.fingerprint:
            if part == DEFAULT:
                parts.append(default.problem_id)
            elif part in VARIABLES:
                parts.append(getattr(event, VARIABLES[part]) or "-")
            else:
                parts.append(part)
        key = "|".join(parts)
        result = self._fixed.get(key)
        if result is None:
            if rule.name:
                template = rule.name
            elif DEFAULT in rule.fingerprint:
                extra = [p for p, raw in zip(parts, rule.fingerprint, strict=True) if raw != DEFAULT]
                template = f"{default.template} [{' '.join(extra)}]" if extra else default.template
            else:
                template = key
            result = GroupResult(problem_id_for("rule:" + key), template, default.error_type)
            self._fixed[key] = result
        return result

    def resolve(self, problem_id: str) -> str:
        """Alias → the problem it was merged into (ids handed out earlier stay valid)."""
        return self.miner.resolve(problem_id)

    @property
    def clusters(self) -> dict[str, Cluster]:
        return self.miner.clusters


def display_template(template: str) -> str:
    """What people read: the exception and message, the root cause in words, without the frame tokens."""
    if " at:" not in template and " root:" not in template:
        return template
    words, cause = [], None
    for token in template.split():
        if token.startswith("at:"):
            continue
        if token.startswith("root:"):
            cause = token[5:]
            continue
        words.append(token)
    text = " ".join(words)
    return f"{text} (caused by {cause})" if cause else text


# One line, no digit, none of / @ ' " and nothing clean_text replaces: masking would change nothing, the tokens
# are the words (one C-level pass instead of five; tests/test_grouping_poison.py checks the equivalence). The
# surrogates are written with chr(): mypyc cannot compile a lone surrogate in a string literal.
_MASKED_CHARS: Final = "[\\d/@'\"\n\x00-\x08\x0b\x0c\x0e-\x1f\x7f" + chr(0xD800) + "-" + chr(0xDFFF) + "]"
_NEEDS_MASKING: Final = re.compile(_MASKED_CHARS).search
# the same test for ASCII text, as bytes: a table that maps every character needing masking to 0, the two
# separators other than the space that such text can hold (tab, carriage return) to 2 and every other character
# to 1. bytes.translate without deletions is a plain C loop over the text; with deletions it first builds a
# 256-entry table on every call, which costs more than the loop on a typical message.
_CHAR_CLASS: Final = bytes(0 if c < 128 and re.match(_MASKED_CHARS, chr(c)) else 2 if c in (9, 13) else 1
                           for c in range(256))


def message_tokens(message: str) -> tuple[list[str], str]:
    """The masked tokens of a message's first line (what the miner clusters) and their key, `" ".join(tokens)`."""
    words, key = _plain_words(message)
    if words is not None:
        return words, key
    tokens = mask_tokens(_first_line(message))
    return tokens, " ".join(tokens)


def _plain_words(message: str) -> tuple[list[str] | None, str]:
    """The words of a message that masking would leave as it is, and their key (`" ".join(words)`); (None, "")
    when masking is needed or there are no words. The key of an ASCII message whose words stand one space apart
    is the message itself, found without building the join: the lengths match only when single separators stand
    between the words and none at the ends, and the character classes show whether any is a tab or a CR."""
    if len(message) > MAX_LINE:
        return None, ""
    if message.isascii():
        classes = message.encode().translate(_CHAR_CLASS)
        if 0 in classes:
            return None, ""
        words = message.split()
        if not words:
            return None, ""
        size = len(words) - 1
        for word in words:
            size += len(word)
        if size == len(message) and 2 not in classes:
            return words, message
        return words, " ".join(words)
    if _NEEDS_MASKING(message) is not None:
        return None, ""
    words = message.split()
    return (words, " ".join(words)) if words else (None, "")


def _first_line(message: str) -> str:
    """Grouping looks at the first line; multi-line traces are handled by the stack-trace layer.
    Whatever the input, the result is safe to store and hash (see tasks.text)."""
    cut = message.find("\n")
    line = message if cut < 0 else message[:cut]
    return clean_text(line[:MAX_LINE * 2].strip()[:MAX_LINE]) or "<empty>"
