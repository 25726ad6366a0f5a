"""The grouping engine: message (+ stack trace) → (problem id, template).

Layers, each in its own module: masking (variable parts) → stack traces (exception type and the
application's own frames) → fingerprint rules (users split/merge) → template mining (what masking missed).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass

from tasks.grouping.masking import mask_tokens
from tasks.grouping.miner import Cluster, TemplateMiner, problem_id_for
from tasks.grouping.rules import DEFAULT, VARIABLES, FingerprintRules
from tasks.grouping.stacktrace import parse_trace
from tasks.models import LogEvent
from tasks.text import clean_text

CACHE_BYTES = 64 * 1024 * 1024  # raw messages remembered with their cluster (memory bound, in bytes)
ENTRY_OVERHEAD = 120  # bytes a cache entry costs besides its text (dict slot, str header)
MAX_LINE = 2000  # characters of a message's first line that the grouping looks at


@dataclass(frozen=True, slots=True)
class GroupResult:
    problem_id: str
    template: str
    error_type: str | None = None


class GroupingEngine:
    def __init__(self, rules: FingerprintRules | None = None, *, similarity: float = 0.5) -> None:
        self.rules = rules or FingerprintRules()
        self.miner = TemplateMiner(similarity=similarity)
        # an OrderedDict: evicting the oldest entry of a plain dict scans the deleted slots before it (about 10 µs
        # an eviction once the cache is full, i.e. per new message in a long run), popitem(last=False) does not
        self._cache: OrderedDict[str, Cluster] = OrderedDict()
        self._cache_bytes = 0
        self._fixed: dict[str, GroupResult] = {}  # problems named by fingerprint rules
        self._display: dict[str, str] = {}  # template -> what people read (display_template), per template
        self._shared: set[str] = set()  # masked traced keys whose trace-less shape was already shared
        self.fresh_tokens: list[str] | None = None  # the masked tokens of the last message learn() had to mask

    # -- learning (online) ------------------------------------------------------------------------
    def learn(self, message: str) -> Cluster:
        """The message's cluster. When the raw-message cache did not know the message, its masked tokens are
        left in `fresh_tokens` (None otherwise): a caller that needs the key does not mask twice."""
        cluster = self._cache.get(message)
        if cluster is not None:
            cluster.size += 1
            self.fresh_tokens = None
            return cluster
        tokens = message_tokens(message)
        cluster = self.miner.add(tokens)
        if len(message) <= MAX_LINE:  # huge messages are rare and would crowd out the common ones
            self._cache[message] = cluster
            self._cache_bytes += len(message) + ENTRY_OVERHEAD
            if self._cache_bytes > CACHE_BYTES:
                self._evict()
        self.fresh_tokens = tokens
        return cluster

    def _evict(self) -> None:
        """The raw-message cache is bounded in bytes: the oldest entries go first."""
        while self._cache_bytes > CACHE_BYTES:
            old, _ = self._cache.popitem(last=False)
            self._cache_bytes -= len(old) + ENTRY_OVERHEAD

    @property
    def cache_bytes(self) -> int:
        return self._cache_bytes

    def group_message(self, message: str) -> GroupResult:
        """Group a plain message (learning from it)."""
        cluster = self._current(self._cache.get(message) or self.learn(message))
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
            masked = " ".join(self.fresh_tokens) if self.fresh_tokens is not None else None
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
# are the words (one C-level search instead of five passes; tests/test_grouping_poison.py checks the equivalence)
_NEEDS_MASKING = re.compile("[\\d/@'\"\n\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]").search
_NEEDS_MASKING_ASCII = re.compile("[0-9/@'\"\n\x00-\x08\x0b\x0c\x0e-\x1f\x7f]").search  # same, 2x faster


def message_tokens(message: str) -> list[str]:
    """The masked tokens of a message's first line: what the miner clusters."""
    needs_masking = _NEEDS_MASKING_ASCII if message.isascii() else _NEEDS_MASKING
    if len(message) <= MAX_LINE and not needs_masking(message):
        tokens = message.split()
        if tokens:
            return tokens
    return mask_tokens(_first_line(message))


def _first_line(message: str) -> str:
    """Grouping looks at the first line; multi-line traces are handled by the stack-trace layer.
    Whatever the input, the result is safe to store and hash (see tasks.text)."""
    cut = message.find("\n")
    line = message if cut < 0 else message[:cut]
    return clean_text(line[:MAX_LINE * 2].strip()[:MAX_LINE]) or "<empty>"
