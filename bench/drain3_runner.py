"""Runs Drain3 (in its own virtualenv: drain3 pins cachetools 4, which Prefect cannot use) on messages from
stdin and prints one cluster id per line. Usage: python drain3_runner.py defaults|masks < messages.txt"""

import sys
import time

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

config = TemplateMinerConfig()
if sys.argv[1] == "masks":
    config.masking_instructions = [
        MaskingInstruction(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "UUID"),
        MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)", "IP"),
        MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)(0x[a-f0-9A-F]+)((?=[^A-Za-z0-9])|$)", "HEX"),
        MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM"),
    ]
config.profiling_enabled = False
lines = sys.stdin.read().split("\n")[:-1]
learn = float("inf")
for _ in range(3):  # best of three fresh miners, as bench/grouping_bench.learn_seconds times ours
    miner = TemplateMiner(config=config)
    start = time.perf_counter()
    for line in lines:
        miner.add_log_message(line)
    learn = min(learn, time.perf_counter() - start)
ids = []
for line in lines:
    cluster = miner.match(line, full_search_strategy="fallback")
    ids.append(str(cluster.cluster_id) if cluster else "none")
sys.stdout.write("\n".join(ids) + "\n")
sys.stderr.write(f"{learn}\n")
