"""Grouping: raw error messages → problems with ids that stay stable forever.

Layers (each its own module): masking → stacktrace → miner (templates) → rules (user fingerprints) →
engine (composition) → store (PostgreSQL, shared by every pod and run).
"""

from tasks.grouping.engine import GroupingEngine, GroupResult
from tasks.grouping.rules import FingerprintRules, load_fingerprint_rules
from tasks.grouping.store import load_engine, save_engine

__all__ = ["FingerprintRules", "GroupResult", "GroupingEngine", "load_engine", "load_fingerprint_rules", "save_engine"]
