"""Grouping Accuracy (the Loghub definition), shared by the tests and the benchmark."""

from __future__ import annotations

import collections


def grouping_accuracy(predicted: list[str], truth: list[str]) -> float:
    """Share of messages whose predicted group is exactly their true group."""
    by_p, by_t = collections.defaultdict(set), collections.defaultdict(set)
    for i, (p, t) in enumerate(zip(predicted, truth, strict=True)):
        by_p[p].add(i)
        by_t[t].add(i)
    correct = sum(1 for i, (p, t) in enumerate(zip(predicted, truth, strict=True)) if by_p[p] == by_t[t])
    return correct / len(truth)
