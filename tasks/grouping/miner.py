"""Template mining for what masking misses: Drain-style clustering of *masked token sequences*.

Differences from Drain/Drain3, each answering one of their known weaknesses:
- it clusters distinct masked templates, not messages: the cost is paid once per distinct template;
- clusters keep the id they were created with, and a message does not move to another problem when a template
  generalises (Drain3 #32): a key goes to the most specific template it fits (then the oldest); templates only
  become more general, so one that generalises takes no key from a more specific owner, and a new template
  never overlaps an existing one (a key that fits a template never creates one). The one remaining way a key
  can move - a template generalising into one still more specific than the key's owner - happens on none of
  the Loghub or generated sets (tests/test_grouping_keys.py counts it);
- a masked key is remembered only when the index would not route it to its problem by itself (the key a
  problem was created with, keys that fit no indexed template). Keys that merely fit a template are not
  stored: 3,000 user names cost one row, not 3,000, and loading the engine reads one row per problem plus
  those exceptions;
- a merge must keep most of the template constant and may not turn a differing *word* into a wildcard on the
  strength of one pair ("VM Started" vs "VM Paused" stay apart — Drain3 #109); words become variables only on
  evidence: many distinct values at the same positions of otherwise equal templates, each value rare
  (`SiblingGroup`), so `read`/`write` stay two problems while 3,000 user names make one.

Cost per message does not depend on how many templates exist:
- templates are indexed per bucket (length, first token) by their constant tokens: one dict lookup per
  distinct wildcard layout of the bucket (`_Bucket.index`) finds every template a message fits;
- a message no template fits is compared (Drain similarity) with at most `scan_limit` recently used templates
  of its bucket, never with all of them;
- a bucket holds at most `bucket_cap` templates; further new shapes go to the bucket's overflow problem, which
  still counts them and says so in its template.
"""

from __future__ import annotations

import hashlib
from base64 import b32encode
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

WILDCARD: Final = "<*>"
OVERFLOW_MARK: Final = "<overflow:too-many-templates>"
SCAN_LIMIT: Final = 16  # recent templates a new shape is compared with
BUCKET_CAP: Final = 5000  # templates per (length, first token) before new shapes go to the overflow problem
MAX_LAYOUTS: Final = 64  # distinct wildcard layouts indexed per bucket (each costs one lookup per message)
MAX_GROUPS: Final = 50_000  # sibling groups kept as evidence (oldest dropped first)
MAX_VARYING: Final = 3  # positions that may vary together in one sibling group


def is_param(token: str) -> bool:
    return len(token) > 2 and token[0] == "<" and token[-1] == ">"


def _is_word(token: str) -> bool:
    """A plain word (punctuation around it ignored): two different words mean two different messages."""
    core = token.strip("\"'()[]{}<>,.;:!?")
    return core.isalpha()


@lru_cache(maxsize=65536)
def _variable_candidate(token: str) -> bool:
    """A token that may turn out to be a variable without digits: a word, a host or dotted name, a@b.
    (Cached: the same words come back for every new template of a family.)"""
    return not is_param(token) and not token.startswith("at:") and any(c.isalpha() for c in token)


def problem_id_for(key: str) -> str:
    """Short, deterministic id from the key the cluster was created with: the same in every pod and run."""
    return "P" + b32encode(hashlib.sha1(key.encode("utf-8", "surrogatepass")).digest()).decode()[:11]


@dataclass(eq=False)
class Cluster:
    problem_id: str
    tokens: list[str]
    size: int = 0
    keys: set[str] = field(default_factory=set)
    changed: bool = True
    overflow: bool = False
    seq: int = 0  # creation order: the oldest member of a merge survives

    @property
    def params(self) -> int:
        return sum(1 for t in self.tokens if is_param(t))

    @property
    def template(self) -> str:
        text = " ".join(self.tokens)
        return f"{text} {OVERFLOW_MARK}" if self.overflow else text


@dataclass(eq=False)
class SiblingGroup:
    """Templates equal except at `positions`, where every one of them has a word: the evidence for a variable."""

    positions: tuple[int, ...]
    members: dict[str, Cluster] = field(default_factory=dict)


class _Layout:
    """The templates of a bucket that keep the same positions constant, by the text of those constants.

    The constants are joined with a space: tokens never contain whitespace (they come from `str.split`), and a
    layout fixes how many there are, so the text is as unique as the tuple it replaces - and one string costs
    one hash and one comparison where a tuple of new strings cost one of each per token."""

    __slots__ = ("keep", "table")

    def __init__(self, keep: tuple[int, ...]) -> None:
        self.keep = keep
        self.table: dict[str, Cluster] = {}

    def constants(self, tokens: list[str]) -> str:
        keep = self.keep
        if len(keep) == 1:
            return tokens[keep[0]]
        return " ".join([tokens[i] for i in keep])


class _Bucket:
    __slots__ = ("index", "recent", "size", "overflow")

    def __init__(self) -> None:
        self.index: dict[tuple[int, ...], _Layout] = {}  # constant positions -> the templates with that layout
        self.recent: OrderedDict[str, Cluster] = OrderedDict()
        self.size = 0
        self.overflow: Cluster | None = None


def _layout(tokens: list[str]) -> tuple[int, ...]:
    return tuple(i for i, t in enumerate(tokens) if not is_param(t))


class TemplateMiner:
    def __init__(self, similarity: float = 0.5, min_constant: int = 1, word_variable_after: int = 5, *,
                 word_spread: float = 0.5, scan_limit: int = SCAN_LIMIT, bucket_cap: int = BUCKET_CAP) -> None:
        self.similarity = similarity
        self.min_constant = min_constant
        self.word_variable_after = word_variable_after
        self.word_spread = word_spread
        self.scan_limit = scan_limit
        self.bucket_cap = bucket_cap
        self.by_key: dict[str, Cluster] = {}
        self.buckets: dict[tuple, _Bucket] = {}
        self.clusters: dict[str, Cluster] = {}
        self.aliases: dict[str, str] = {}  # merged-away problem id -> surviving id
        self._groups: OrderedDict[tuple, SiblingGroup] = OrderedDict()
        self._seq = 0
        self.fresh_keys: list[str] = []  # keys learned since the store last saved (tasks.grouping.store)
        self.fresh_aliases: list[str] = []
        self.comparisons = 0  # similarity comparisons made (the scan bound is observable, compiled or not)

    # -- index ------------------------------------------------------------------------------------
    @staticmethod
    def _bucket_key(tokens: list[str]) -> tuple:
        first = tokens[0] if tokens else WILDCARD
        return (len(tokens), WILDCARD if is_param(first) else first)

    def _index(self, bucket: _Bucket, cluster: Cluster) -> bool:
        """Index a cluster by its constant tokens; False when the bucket has no room for another layout."""
        keep = _layout(cluster.tokens)
        layout = bucket.index.get(keep)
        if layout is None:
            if len(bucket.index) >= MAX_LAYOUTS or not keep:
                return False
            layout = bucket.index[keep] = _Layout(keep)
        layout.table.setdefault(layout.constants(cluster.tokens), cluster)
        return True

    @staticmethod
    def _owner(bucket: _Bucket, tokens: list[str]) -> Cluster | None:
        """The cluster indexed under exactly this template, if any."""
        layout = bucket.index.get(_layout(tokens))
        return layout.table.get(layout.constants(tokens)) if layout is not None else None

    def _unindex(self, bucket: _Bucket, cluster: Cluster) -> None:
        keep = _layout(cluster.tokens)
        layout = bucket.index.get(keep)
        if layout is not None:
            constants = layout.constants(cluster.tokens)
            if layout.table.get(constants) is cluster:
                del layout.table[constants]
                if not layout.table:  # an empty layout would still cost every message of the bucket one lookup
                    del bucket.index[keep]

    def _fitting(self, bucket: _Bucket, tokens: list[str]) -> Cluster | None:
        """The template the message fits (all its constants equal): the most specific one, then the oldest."""
        best: Cluster | None = None
        for layout in bucket.index.values():
            cluster = layout.table.get(layout.constants(tokens))
            if cluster is not None and (best is None or _rank(cluster) > _rank(best)):
                best = cluster
        return best

    def _similar(self, bucket: _Bucket, tokens: list[str]) -> Cluster | None:
        """The most similar of the bucket's recently used templates (Drain similarity), if close enough."""
        best: Cluster | None = None
        best_score: Any = None
        for candidate in bucket.recent.values():
            score = self._score(candidate, tokens)
            if score is not None and score[0] >= self.similarity and (best_score is None or score > best_score):
                best, best_score = candidate, score
        return best

    def _touch(self, bucket: _Bucket, cluster: Cluster) -> None:
        recent = bucket.recent
        recent[cluster.problem_id] = cluster
        recent.move_to_end(cluster.problem_id)
        if len(recent) > self.scan_limit:
            recent.popitem(last=False)

    # -- learning ---------------------------------------------------------------------------------
    def _score(self, cluster: Cluster, tokens: list[str]) -> tuple[float, int] | None:
        """Share of positions that agree, or None when a merge would erase meaning."""
        self.comparisons += 1
        n = len(tokens)
        ct = cluster.tokens
        differ = [i for i, (a, b) in enumerate(zip(ct, tokens)) if a != b]  # noqa: B905 (same length)
        against = [i for i in differ if not is_param(ct[i])]
        if len(against) > n * (1 - self.similarity):
            return None  # cannot reach the similarity: no need to look closer
        for i in against:
            a, b = ct[i], tokens[i]
            if a.startswith("at:") or b.startswith("at:"):
                return None  # different application frames: a different problem
            if not is_param(b) and _is_word(a) and _is_word(b):
                return None  # a differing word: only sibling evidence may make it a variable
        params = cluster.params
        same = n - len(differ) - (params - (len(differ) - len(against)))
        if same < self.min_constant:
            return None
        return ((n - len(against)) / n, params)

    def add(self, tokens: list[str], key: str | None = None) -> Cluster:
        """The cluster of a masked token sequence, learning from it. `key` is `" ".join(tokens)` when the caller
        has it already (the raw message itself, for most messages)."""
        if key is None:
            key = " ".join(tokens)
        cluster = self.by_key.get(key)
        if cluster is not None:
            cluster.size += 1
            return cluster
        bucket_key = self._bucket_key(tokens)
        bucket = self.buckets.get(bucket_key)
        if bucket is None:
            bucket = self.buckets[bucket_key] = _Bucket()
        best = self._fitting(bucket, tokens)
        if best is not None:  # the common case: the index routes this key by itself, nothing to remember
            try:
                bucket.recent.move_to_end(best.problem_id)  # still among the recent: just the most recent now
            except KeyError:
                self._touch(bucket, best)
            best.size += 1
            return best
        best = self._similar(bucket, tokens)
        if best is None:
            return self._new_cluster(bucket, key, tokens)
        self._generalise(bucket, best, tokens)
        self._touch(bucket, best)
        best.size += 1
        self._remember_unless_routed(bucket, key, tokens, best)
        return best

    def _remember_unless_routed(self, bucket: _Bucket, key: str, tokens: list[str], cluster: Cluster) -> None:
        """Store a key only when the index would send it elsewhere (or nowhere): what the index reproduces
        needs no row."""
        if self._fitting(bucket, tokens) is not cluster:
            self._record(key, cluster)

    def _record(self, key: str, cluster: Cluster) -> None:
        self.by_key[key] = cluster
        cluster.keys.add(key)
        self.fresh_keys.append(key)

    def _generalise(self, bucket: _Bucket, cluster: Cluster, tokens: list[str]) -> None:
        merged = [a if a == b else (a if is_param(a) else WILDCARD) for a, b in zip(cluster.tokens, tokens, strict=True)]
        if merged == cluster.tokens:
            return
        self._unindex(bucket, cluster)
        old = cluster.tokens
        cluster.tokens = merged
        if not self._index(bucket, cluster):  # no room for a new layout: keep the template as it was
            cluster.tokens = old
            self._index(bucket, cluster)
            return
        cluster.changed = True

    def _new_cluster(self, bucket: _Bucket, key: str, tokens: list[str]) -> Cluster:
        if bucket.size >= self.bucket_cap:
            cluster = self._overflow(bucket, tokens)
            cluster.size += 1
            if not cluster.keys:  # one row restores the overflow problem; later keys reach it the same way
                self._record(key, cluster)
            return cluster
        self._seq += 1
        cluster = Cluster(problem_id=problem_id_for(key), tokens=list(tokens), seq=self._seq)
        self.clusters[cluster.problem_id] = cluster
        cluster.size += 1
        self._record(key, cluster)  # the key a problem was created with: its row in the store
        bucket.size += 1
        self._index(bucket, cluster)
        survivor = self._note_siblings(bucket, cluster)
        self._touch(bucket, survivor)
        return survivor

    def _overflow(self, bucket: _Bucket, tokens: list[str]) -> Cluster:
        if bucket.overflow is None:
            first = tokens[0] if tokens and not is_param(tokens[0]) else WILDCARD
            shape = [first] + [WILDCARD] * (len(tokens) - 1)
            pid = problem_id_for(f"overflow {len(tokens)} {first}")
            bucket.overflow = self.clusters.get(pid) or Cluster(problem_id=pid, tokens=shape, overflow=True)
            self.clusters[pid] = bucket.overflow
        return bucket.overflow

    def restore(self, problem_id: str, template: str, key: str) -> Cluster:
        """Rebuild a stored cluster (loading the engine from the template store)."""
        cluster = self.clusters.get(self.resolve(problem_id))
        if cluster is None:
            overflow = template.endswith(" " + OVERFLOW_MARK)
            tokens = template.removesuffix(" " + OVERFLOW_MARK).split()
            self._seq += 1
            # size 1: a stored template was seen at least once (evidence for word variables, see _evident)
            cluster = Cluster(problem_id=problem_id, tokens=tokens, size=1, changed=False, overflow=overflow,
                              seq=self._seq)
            self.clusters[problem_id] = cluster
            bucket = self.buckets.setdefault(self._bucket_key(tokens), _Bucket())
            if overflow:
                bucket.overflow = cluster
            else:
                bucket.size += 1
                self._index(bucket, cluster)
                owner = self._owner(bucket, cluster.tokens)
                if owner is not None and owner is not cluster:
                    # the same template stored under two ids (pods that learned it in parallel, e.g. a fan-out):
                    # one problem; the younger id becomes an alias and folding moves its rows
                    self._absorb(bucket, owner, cluster)
                    cluster = owner
                self._touch(bucket, cluster)
        elif not cluster.overflow:
            self._prefer_general(cluster, template.split())
        cluster.keys.add(key)
        self.by_key[key] = cluster
        return cluster

    def _prefer_general(self, cluster: Cluster, tokens: list[str]) -> None:
        """Rows of one problem stored with different templates (written before a merge generalised it):
        the most general one is the problem's template."""
        if len(tokens) != len(cluster.tokens) or _rank_tokens(tokens) <= _rank_tokens(cluster.tokens):
            return
        bucket = self.buckets.get(self._bucket_key(cluster.tokens))
        if bucket is None or self._bucket_key(tokens) != self._bucket_key(cluster.tokens):
            return
        self._unindex(bucket, cluster)
        cluster.tokens = tokens
        cluster.changed = True
        self._index(bucket, cluster)

    # -- word variables ---------------------------------------------------------------------------
    def _note_siblings(self, bucket: _Bucket, cluster: Cluster) -> Cluster:
        """Compare a new template with the bucket's recent ones: where they differ only by words at a few
        positions, both join the sibling group of those positions; enough evidence merges the group."""
        tokens = cluster.tokens
        n = len(tokens)
        constants = sum(1 for t in tokens if not is_param(t))
        for other in list(bucket.recent.values()):
            if other is cluster or other.problem_id not in self.clusters:
                continue
            ot = other.tokens
            varying = [i for i, (a, b) in enumerate(zip(ot, tokens)) if a != b]  # noqa: B905 (same length)
            left = constants - len(varying)
            if not varying or len(varying) > MAX_VARYING or left < 3 or left * 2 < n or varying[0] == 0:
                continue  # the first word names the event; a variable needs constant context
            # parameters and frames are never word variables
            if all(_variable_candidate(ot[i]) and _variable_candidate(tokens[i]) for i in varying):
                shape = (n, tuple(varying), tuple(t for i, t in enumerate(tokens) if i not in varying))
                group = self._groups.get(shape)
                if group is None:
                    group = self._groups[shape] = SiblingGroup(tuple(varying))
                    if len(self._groups) > MAX_GROUPS:
                        self._groups.popitem(last=False)
                # judged again only when it gained a member (the new template is in it after the first pair)
                grew = other.problem_id not in group.members or cluster.problem_id not in group.members
                group.members.setdefault(other.problem_id, other)
                group.members[cluster.problem_id] = cluster
                if grew and self._evident(group):
                    del self._groups[shape]
                    return self._merge(bucket, group)
        return cluster

    def _evident(self, group: SiblingGroup) -> bool:
        """Many distinct values at every varying position, most of them seen once: a variable, not a choice
        of meaning. (`read`/`write`, `declined`/`approved` take a few values and keep repeating them; the
        share of messages whose value was new — the Good–Turing estimate that the next value will be new —
        stays low for them and near 1 for names.)"""
        if len(group.members) < self.word_variable_after:
            return False  # cheap first: most calls come while a group is still small
        members = [m for m in group.members.values() if m.problem_id in self.clusters]
        if len(members) < self.word_variable_after:
            return False
        messages = sum(m.size for m in members)
        if messages < 2 * self.word_variable_after:
            return False  # judged on enough messages: a few values can all look new at first
        for pos in group.positions:
            seen: dict[str, int] = {}
            for m in members:
                seen[m.tokens[pos]] = seen.get(m.tokens[pos], 0) + m.size
            once = sum(1 for n in seen.values() if n == 1)
            if len(seen) < self.word_variable_after or once < self.word_spread * messages:
                return False
        return True

    def _merge(self, bucket: _Bucket, group: SiblingGroup) -> Cluster:
        members = sorted((m for m in group.members.values() if m.problem_id in self.clusters), key=lambda c: c.seq)
        survivor = members[0]
        for other in members[1:]:
            self._absorb(bucket, survivor, other)
        self._unindex(bucket, survivor)
        for pos in group.positions:
            survivor.tokens[pos] = WILDCARD
        survivor.changed = True
        self._index(bucket, survivor)
        return survivor

    def _absorb(self, bucket: _Bucket, survivor: Cluster, other: Cluster) -> None:
        for key in other.keys:
            self.by_key[key] = survivor
        survivor.keys |= other.keys
        survivor.size += other.size
        self.aliases[other.problem_id] = survivor.problem_id
        self.fresh_aliases.append(other.problem_id)
        self.clusters.pop(other.problem_id, None)
        self._unindex(bucket, other)
        bucket.recent.pop(other.problem_id, None)

    def attach(self, key: str, cluster: Cluster) -> None:
        """Map one more masked key to a cluster (another shape of the same error)."""
        if self.lookup(key) is None:
            self._record(key, cluster)

    def lookup(self, key: str) -> Cluster | None:
        """The cluster a masked key is routed to without learning or similarity: remembered, or fitted."""
        return self.route(key.split(), key)

    def route(self, tokens: list[str], key: str) -> Cluster | None:
        """`lookup` for a key already split into its tokens."""
        cluster = self.by_key.get(key)
        if cluster is None:
            bucket = self.buckets.get(self._bucket_key(tokens))
            cluster = self._fitting(bucket, tokens) if bucket is not None else None
        return cluster

    def merge(self, survivor: Cluster, other: Cluster) -> None:
        """Make `other` an alias of `survivor` (its keys and count move; its id stays valid)."""
        if survivor is other or other.problem_id not in self.clusters:
            return
        bucket = self.buckets.get(self._bucket_key(other.tokens)) or _Bucket()
        self._absorb(bucket, survivor, other)
        if other.overflow and bucket.overflow is other:
            bucket.overflow = None

    def resolve(self, problem_id: str) -> str:
        seen = set()
        while problem_id in self.aliases and problem_id not in seen:
            seen.add(problem_id)
            problem_id = self.aliases[problem_id]
        return problem_id

    def match(self, tokens: list[str]) -> Cluster | None:
        """The cluster a masked sequence belongs to, without learning: routed, else the most similar."""
        cluster = self.route(tokens, " ".join(tokens))
        if cluster is None:
            bucket = self.buckets.get(self._bucket_key(tokens))
            cluster = self._similar(bucket, tokens) if bucket is not None else None
        return cluster


def _rank(cluster: Cluster) -> tuple[int, int]:
    return (-_rank_tokens(cluster.tokens), -cluster.seq)


def _rank_tokens(tokens: list[str]) -> int:
    return sum(1 for t in tokens if is_param(t))
