"""The template store in PostgreSQL: every pod and run maps the same message to the same problem id.

`grouping_templates` keeps, per problem, the masked key it was created with and its template, plus the few keys
the template index would not route to their problem by itself (tasks.grouping.miner); keys that merely fit a
template are not stored, so a run loads one row per problem, not one per distinct message. (Databases written
before this kept every key: those rows still load and route the same.) `problem_aliases` keeps ids that were
merged into another problem. New keys are written in the window's transaction, first
writer wins (ON CONFLICT DO NOTHING), so concurrent pods converge on one mapping.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg

from tasks.grouping.engine import GroupingEngine
from tasks.grouping.miner import Cluster
from tasks.grouping.rules import FingerprintRules

log = logging.getLogger("ailog.grouping.store")


def load_engine(conn: psycopg.Connection, rules: FingerprintRules | None = None) -> GroupingEngine:
    engine = GroupingEngine(rules)
    miner = engine.miner
    rows = conn.execute("SELECT template_key, problem_id, template FROM grouping_templates ORDER BY created_at, template_key")
    for key, problem_id, template in rows:
        miner.restore(problem_id, template, key)
    for alias_id, problem_id in conn.execute("SELECT alias_id, problem_id FROM problem_aliases"):
        miner.aliases[alias_id] = problem_id
    return engine


@dataclass
class PendingTemplates:
    """What the engine learned since its last save: new keys, new aliases, generalised templates."""

    keys: list[str]
    aliases: list[str]
    changed: list[Cluster]


def take_pending(engine: GroupingEngine) -> PendingTemplates:
    """Take the changes out of the engine (the miner keeps the lists), so a save visits only those, not every
    stored key. Give them back with `restore_pending` when the transaction that wrote them rolls back."""
    miner = engine.miner
    pending = PendingTemplates(list(dict.fromkeys(miner.fresh_keys)), list(dict.fromkeys(miner.fresh_aliases)),
                               [c for c in miner.clusters.values() if c.changed])
    miner.fresh_keys.clear()
    miner.fresh_aliases.clear()
    for c in pending.changed:
        c.changed = False
    return pending


def restore_pending(engine: GroupingEngine, pending: PendingTemplates) -> None:
    """The write of ``pending`` was rolled back: the engine still knows them, the store does not, so the
    next save (a retry of the window) writes them again."""
    miner = engine.miner
    miner.fresh_keys[:0] = pending.keys
    miner.fresh_aliases[:0] = pending.aliases
    for c in pending.changed:
        c.changed = True


@dataclass
class TemplateRows:
    """``PendingTemplates`` resolved against the engine into plain rows: what a window's transaction writes.
    Plain data, so a read-ahead process (tasks.read_ahead) can hand it to the process that stores the window."""

    keys: list[tuple[str, str, str, int]]  # (template_key, problem_id, template, token_count)
    aliases: list[tuple[str, str]]  # (alias_id, surviving problem_id)
    templates: list[tuple[str, str]]  # (problem_id, generalised template)


def template_rows(engine: GroupingEngine, pending: PendingTemplates) -> TemplateRows:
    miner = engine.miner
    keys = []
    for key in pending.keys:
        cluster = miner.by_key[key]
        keys.append((key, cluster.problem_id, cluster.template, len(cluster.tokens)))
    return TemplateRows(keys, [(a, miner.resolve(a)) for a in pending.aliases],
                        [(c.problem_id, c.template) for c in pending.changed])


def write_template_rows(conn: psycopg.Connection, rows: TemplateRows) -> int:
    """Write new keys, aliases and generalised templates in the caller's transaction; returns rows written."""
    written = 0
    with conn.cursor() as cur:
        if rows.keys:
            cur.executemany("INSERT INTO grouping_templates (template_key, problem_id, template, token_count)"
                            " VALUES (%s, %s, %s, %s) ON CONFLICT (template_key) DO NOTHING", rows.keys)
            written += len(rows.keys)
        if rows.aliases:
            cur.executemany("INSERT INTO problem_aliases (alias_id, problem_id) VALUES (%s, %s)"
                            " ON CONFLICT (alias_id) DO UPDATE SET problem_id = EXCLUDED.problem_id", rows.aliases)
            cur.executemany("UPDATE grouping_templates SET problem_id = %s WHERE problem_id = %s",
                            [(target, alias) for alias, target in rows.aliases])
            written += len(rows.aliases)
        # after the aliases: the rows just moved to a survivor take its (generalised) template too
        if rows.templates:
            cur.executemany("UPDATE grouping_templates SET template = %s, updated_at = now() WHERE problem_id = %s"
                            " AND template <> %s", [(t, p, t) for p, t in rows.templates])
            written += len(rows.templates)
    return written


def save_engine(conn: psycopg.Connection, engine: GroupingEngine) -> int:
    """Write what the engine learned since its last save in the caller's transaction; returns rows written."""
    return write_template_rows(conn, template_rows(engine, take_pending(engine)))
