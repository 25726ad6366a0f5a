"""Learn the bench's word-variable families once, in process: the workload for a deterministic instruction count.

Wall time on this shared machine moves by 2x from one second to the next; the number of instructions does not.
Count them with callgrind (Debian `valgrind`), collecting only inside the compiled `GroupingEngine.learn`:

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect='CPyPy_engine___GroupingEngine___learn' \\
        --callgrind-out-file=/tmp/cg.out python bench/learn_words.py

and compare the `Collected` figure of two builds (`callgrind_annotate --inclusive=yes /tmp/cg.out` shows where
they go). The pure-Python build has no such symbol: this measures the compiled one.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

from grouping_bench import generated_sets  # noqa: E402

from tasks.grouping.engine import GroupingEngine  # noqa: E402


def main() -> int:
    lines, _ = generated_sets()["word-variable families"]
    learn = GroupingEngine().learn
    for line in lines:
        learn(line)
    print(f"{len(lines)} messages learned", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
