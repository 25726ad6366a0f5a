"""Template mining for what masking misses: Drain-style clustering of *masked token sequences*.

Differences from Drain/Drain3, each answering one of their known weaknesses:
- it clusters distinct masked templates, not messages: the cost is paid once per distinct template;
- clusters keep the id they were created with, and every masked key they absorbed stays mapped to them, so a
  message never moves to another problem when a template generalises (Drain3 #32);
- a merge must keep most of the template constant and may not turn the only differing *word* of a short
  template into a wildcard ("VM Started" vs "VM Paused" stay apart — Drain3 #109).
"""

from __future__ import annotations

import hashlib
from base64 import b32encode
from dataclasses import dataclass, field

WILDCARD = "<*>"


def is_param(token: str) -> bool:
    return len(token) > 2 and token[0] == "<" and token[-1] == ">"


def _is_word(token: str) -> bool:
    """A plain word (punctuation around it ignored): two different words mean two different messages."""
    core = token.strip("\"'()[]{}<>,.;:!?")
    return core.isalpha()


def problem_id_for(key: str) -> str:
    """Short, deterministic id from the key the cluster was created with: the same in every pod and run."""
    return "P" + b32encode(hashlib.sha1(key.encode()).digest()).decode()[:11]


@dataclass
class Cluster:
    problem_id: str
    tokens: list[str]
    size: int = 0
    keys: set[str] = field(default_factory=set)
    changed: bool = True

    @property
    def template(self) -> str:
        return " ".join(self.tokens)


class TemplateMiner:
    def __init__(self, similarity: float = 0.5, min_constant: int = 1, word_variable_after: int = 5) -> None:
        self.similarity = similarity
        self.min_constant = min_constant
        self.word_variable_after = word_variable_after
        self.by_key: dict[str, Cluster] = {}
        self.buckets: dict[tuple, list[Cluster]] = {}
        self.clusters: dict[str, Cluster] = {}
        self.aliases: dict[str, str] = {}  # merged-away problem id -> surviving id
        self._siblings: dict[tuple, list[Cluster]] = {}

    def _bucket(self, tokens: list[str]) -> tuple:
        first = tokens[0] if tokens and not is_param(tokens[0]) else WILDCARD
        return (len(tokens), first)

    def _score(self, cluster: Cluster, tokens: list[str]) -> tuple[float, int] | None:
        """Share of positions that agree, or None when a merge would erase meaning."""
        same = params = 0
        differing_words = 0
        for a, b in zip(cluster.tokens, tokens, strict=True):
            if a == b:
                if is_param(a):
                    params += 1
                else:
                    same += 1
            elif is_param(a):
                params += 1
            elif a.startswith("at:") or b.startswith("at:"):
                return None  # different application frames: a different problem
            elif not is_param(b) and _is_word(a) and _is_word(b):
                differing_words += 1
        n = len(tokens)
        if same < self.min_constant or differing_words:
            return None
        return ((same + params) / n, params)

    def add(self, tokens: list[str]) -> Cluster:
        key = " ".join(tokens)
        cluster = self.by_key.get(key)
        if cluster is not None:
            cluster.size += 1
            return cluster
        bucket = self.buckets.setdefault(self._bucket(tokens), [])
        best, best_score = None, None
        for candidate in bucket:
            score = self._score(candidate, tokens)
            if score is not None and score[0] >= self.similarity and (best_score is None or score > best_score):
                best, best_score = candidate, score
        if best is None:
            best = Cluster(problem_id=problem_id_for(key), tokens=list(tokens))
            bucket.append(best)
            self.clusters[best.problem_id] = best
            best.keys.add(key)
            best.size += 1
            self.by_key[key] = best
            return self._note_siblings(best, bucket)
        else:
            merged = [a if a == b else (a if is_param(a) else WILDCARD) for a, b in zip(best.tokens, tokens, strict=True)]
            if merged != best.tokens:
                best.tokens = merged
                best.changed = True
        best.keys.add(key)
        best.size += 1
        self.by_key[key] = best
        return best

    def _note_siblings(self, cluster: Cluster, bucket: list[Cluster]) -> Cluster:
        """Words that vary at one position across many otherwise identical templates are a variable
        (user names, table names): once `word_variable_after` distinct words are seen there, the templates
        merge into the oldest one and the others' ids become its aliases (earlier ids stay valid)."""
        constants = sum(1 for t in cluster.tokens if not is_param(t))
        for pos, token in enumerate(cluster.tokens):
            # the first word names the event; a variable needs context: two more constant tokens
            if pos == 0 or not _is_word(token) or constants < 3:
                continue
            shape = (len(cluster.tokens), pos, tuple(cluster.tokens[:pos]), tuple(cluster.tokens[pos + 1:]))
            group = self._siblings.setdefault(shape, [])
            group.append(cluster)
            if len(group) >= self.word_variable_after:
                survivor = group[0]
                for other in group[1:]:
                    self._absorb(survivor, other, bucket)
                survivor.tokens[pos] = WILDCARD
                survivor.changed = True
                del self._siblings[shape]
                return survivor
        return cluster

    def _absorb(self, survivor: Cluster, other: Cluster, bucket: list[Cluster]) -> None:
        for key in other.keys:
            self.by_key[key] = survivor
        survivor.keys |= other.keys
        survivor.size += other.size
        self.aliases[other.problem_id] = survivor.problem_id
        self.clusters.pop(other.problem_id, None)
        if other in bucket:
            bucket.remove(other)
        for group in self._siblings.values():
            if other in group:
                group.remove(other)

    def resolve(self, problem_id: str) -> str:
        seen = set()
        while problem_id in self.aliases and problem_id not in seen:
            seen.add(problem_id)
            problem_id = self.aliases[problem_id]
        return problem_id

    def match(self, tokens: list[str]) -> Cluster | None:
        """The cluster a masked sequence belongs to, without learning."""
        key = " ".join(tokens)
        cluster = self.by_key.get(key)
        if cluster is not None:
            return cluster
        best, best_score = None, None
        for candidate in self.buckets.get(self._bucket(tokens), ()):
            score = self._score(candidate, tokens)
            if score is not None and score[0] >= self.similarity and (best_score is None or score > best_score):
                best, best_score = candidate, score
        return best
