"""Counting: grouped events → per-minute counts per problem and application, with explaining field values."""

from tasks.counting.counts import ProblemSample, WindowCounts, count_events

__all__ = ["ProblemSample", "WindowCounts", "count_events"]
