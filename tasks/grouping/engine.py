"""The grouping engine: message (+ stack trace) → (problem id, template).

Layers, each in its own module: masking (variable parts) → stack traces (exception type and the
application's own frames) → fingerprint rules (users split/merge) → template mining (what masking missed).
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks.grouping.masking import mask_tokens
from tasks.grouping.miner import Cluster, TemplateMiner, problem_id_for
from tasks.grouping.rules import DEFAULT, VARIABLES, FingerprintRules
from tasks.grouping.stacktrace import parse_trace
from tasks.models import LogEvent

CACHE_LIMIT = 200_000  # distinct raw messages remembered (memory bound)


@dataclass(frozen=True, slots=True)
class GroupResult:
    problem_id: str
    template: str
    error_type: str | None = None


class GroupingEngine:
    def __init__(self, rules: FingerprintRules | None = None, *, similarity: float = 0.5) -> None:
        self.rules = rules or FingerprintRules()
        self.miner = TemplateMiner(similarity=similarity)
        self._cache: dict[str, Cluster] = {}
        self._fixed: dict[str, GroupResult] = {}  # problems named by fingerprint rules

    # -- learning (online) ------------------------------------------------------------------------
    def learn(self, message: str) -> Cluster:
        cluster = self._cache.get(message)
        if cluster is not None:
            cluster.size += 1
            return cluster
        cluster = self.miner.add(mask_tokens(_first_line(message)))
        if len(self._cache) < CACHE_LIMIT:
            self._cache[message] = cluster
        return cluster

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
        cluster = self._current(self.learn(trace.key_message(message) if trace is not None else message))
        default = GroupResult(cluster.problem_id, display_template(cluster.template), error_type)
        rule = self.rules.match(event, error_type)
        return default if rule is None else self._apply_rule(rule, event, default)

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


def _first_line(message: str) -> str:
    """Grouping looks at the first line; multi-line traces are handled by the stack-trace layer."""
    cut = message.find("\n")
    line = message if cut < 0 else message[:cut]
    return line.strip()[:2000] or "<empty>"
