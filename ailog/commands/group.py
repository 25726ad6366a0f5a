"""`ailog group [FILE]`: one `problem_id<TAB>template` line per input line, in order.

No database, a fresh engine per call. All lines are learned first so every line gets its final template.
Does not import Prefect: start-up time matters for a filter command.
"""

from __future__ import annotations

import sys


def run(args) -> int:
    from tasks.grouping.engine import GroupingEngine

    if args.file:
        try:
            stream = open(args.file, encoding="utf-8", errors="replace")  # noqa: SIM115
        except OSError as exc:
            from core.errors import AilogError

            raise AilogError(f"cannot read {args.file}: {exc.strerror}") from None
    else:
        stream = open(sys.stdin.fileno(), encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    engine = GroupingEngine()
    learn = engine.learn
    with stream:
        lines = [line.rstrip("\r\n") for line in stream]
    clusters = [learn(line) for line in lines]
    resolve = engine.resolve
    current = engine.miner.clusters
    out = sys.stdout
    write = out.write
    buffer = []
    for cluster in clusters:
        final = current.get(resolve(cluster.problem_id), cluster)
        buffer.append(f"{final.problem_id}\t{final.template}\n")
        if len(buffer) >= 4096:
            write("".join(buffer))
            buffer.clear()
    write("".join(buffer))
    out.flush()
    return 0
