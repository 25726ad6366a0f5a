"""The template store keeps only what the index cannot reproduce, and no message changes problems on the way.

A key that fits a template is routed by the index and needs no row; only the key a problem was created with and
keys that fit no indexed template are stored. That is safe only if routing a key later gives the problem it got
the first time: checked here on the real Loghub sets and on word-variable families, within a run and across
pods (save, load, group again).
"""

from __future__ import annotations

import csv
import random
import string
from pathlib import Path

import pytest

from tasks.grouping import GroupingEngine, load_engine, save_engine
from tasks.grouping.engine import _first_line
from tasks.grouping.masking import mask_tokens

LOGHUB = Path(__file__).parent / "data" / "loghub2k"
DATASETS = ["Apache", "BGL", "HDFS", "HPC", "Hadoop", "OpenStack", "Spark", "Thunderbird"]


def loghub(ds: str) -> list[str]:
    with open(LOGHUB / ds / f"{ds}_2k.log_structured.csv", newline="") as fh:
        return [row["Content"] for row in csv.DictReader(fh)]


def word_families(n: int, seed: int = 8) -> list[str]:
    rng = random.Random(seed)

    def word() -> str:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 9)))

    shapes = ["User {} cannot open project {} now", "Failed to read block on volume {}",
              "Failed to write block on volume {}", "Host {}.{}.example unreachable from gateway"]
    return [rng.choice(shapes).format(word(), word()) for _ in range(n)]


def key(message: str) -> str:
    return " ".join(mask_tokens(_first_line(message)))


@pytest.mark.parametrize("name", [*DATASETS, "word families"])
def test_no_key_changes_problem_within_a_run(name):
    lines = word_families(3000) if name == "word families" else loghub(name)
    engine = GroupingEngine()
    first: dict[str, str] = {}
    for line in lines:
        first.setdefault(key(line), engine.learn(line).problem_id)
    moved = {k: (pid, engine.miner.lookup(k)) for k, pid in first.items()
             if (now := engine.miner.lookup(k)) is None or engine.resolve(now.problem_id) != engine.resolve(pid)}
    assert not moved, list(moved.items())[:3]


def test_the_store_keeps_one_row_per_problem_not_one_per_name(db):
    lines = word_families(3000)
    pod1 = GroupingEngine()
    ids = [pod1.group_message(m).problem_id for m in lines]
    with db.connect() as conn:
        save_engine(conn, pod1)
        conn.commit()
        rows = conn.execute("SELECT count(*) FROM grouping_templates").fetchone()[0]
        problems = conn.execute("SELECT count(DISTINCT problem_id) FROM grouping_templates").fetchone()[0]
        pod2 = load_engine(conn)
    # 3,000 distinct names, four families: a few rows for the keys the families were created with before they
    # merged, never one per name
    assert problems == 4 and rows < 100, (problems, rows)  # read and write stay apart
    assert [pod2.resolve(pod2.group_message(m).problem_id) for m in lines] == [pod1.resolve(i) for i in ids]


@pytest.mark.parametrize("ds", ["Hadoop", "BGL", "Thunderbird"])
def test_a_pod_that_loads_the_store_groups_every_message_as_the_first_pod_did(db, ds):
    lines = loghub(ds)
    half = len(lines) // 2
    pod1 = GroupingEngine()
    first = {m: pod1.group_message(m).problem_id for m in lines[:half]}
    with db.connect() as conn:
        save_engine(conn, pod1)
        conn.commit()
        pod2 = load_engine(conn)
        for m in lines[half:]:  # the second pod learns more (templates generalise, families merge) ...
            pod2.group_message(m)
        save_engine(conn, pod2)
        conn.commit()
        pod3 = load_engine(conn)
        stored = conn.execute("SELECT count(*) FROM grouping_templates").fetchone()[0]
    # ... and a third pod still puts every earlier message in the problem it had (through aliases)
    changed = [m for m, pid in first.items() if pod3.resolve(pod3.group_message(m).problem_id) != pod1.resolve(pid)]
    assert not changed, changed[:3]
    assert stored < len({key(m) for m in lines})


def test_keys_stay_put_on_adversarial_token_sequences():
    """Short sequences over a tiny vocabulary (words, tokens with digits or dashes, placeholders), built so that
    templates collide and generalise all the time. With "the most general template wins" keys move in about 6%
    of these sequences; with "the most specific wins" in about 1 of 3,000 (the residual risk docs/GROUPING.md
    describes: a template generalising into a fit more specific than the key's owner)."""
    from tasks.grouping.miner import TemplateMiner

    vocabulary = ["alpha", "beta", "gamma", "delta", "x-1", "y-2", "z_3", "<*>", "run-a", "run-b", "run-c", "on"]
    moved = []
    for seed in range(3000):
        rng = random.Random(seed)
        miner = TemplateMiner(word_variable_after=3)
        first: dict[str, str] = {}
        n = rng.randint(5, 7)
        for _ in range(rng.randint(5, 40)):
            tokens = ["Job"] + [rng.choice(vocabulary) for _ in range(n - 1)]
            first.setdefault(" ".join(tokens), miner.add(tokens).problem_id)
        for k, pid in first.items():
            now = miner.lookup(k)
            if now is None or miner.resolve(now.problem_id) != miner.resolve(pid):
                moved.append((seed, k))
                break
    assert len(moved) <= 3, (len(moved), moved[:5])


def test_pods_that_learned_one_family_in_parallel_converge_on_one_problem(db):
    """Two pods (the children of a fan-out) learn the same word family from different names and save; the next
    pod that loads the store sees one problem: the younger id is an alias, so every stored row folds into one."""
    family = [m for m in word_families(4000, seed=3) if m.startswith("User ")]
    pods = [GroupingEngine(), GroupingEngine()]
    raw = [[pod.group_message(m).problem_id for m in half] for pod, half in
           zip(pods, (family[: len(family) // 2], family[len(family) // 2:]), strict=True)]
    ids = [{pod.resolve(i) for i in r} for pod, r in zip(pods, raw, strict=True)]
    assert all(len(i) == 1 for i in ids) and ids[0] != ids[1]  # each pod merged the family under its own id
    with db.connect() as conn:
        for pod in pods:
            save_engine(conn, pod)
        conn.commit()
        third = load_engine(conn)
        save_engine(conn, third)  # the alias found at load is written with the next window
        conn.commit()
        aliases = dict(conn.execute("SELECT alias_id, problem_id FROM problem_aliases").fetchall())
    survivors = {third.resolve(i) for i in ids[0] | ids[1]}
    assert len(survivors) == 1
    assert {third.resolve(third.group_message(m).problem_id) for m in family} == survivors
    assert any(aliases.get(i) in survivors for i in ids[0] | ids[1])
