"""`ailog blocks register|from-env`: the migration path from Kubernetes env vars to Prefect blocks."""

from __future__ import annotations

from blocks.documents import blocks_from_env, register_block_types


def run(args) -> int:
    if args.blocks_command == "register":
        for slug in register_block_types():
            print(f"registered block type {slug}")
        return 0
    register_block_types()
    for section, outcome in blocks_from_env().items():
        print(f"{section}: {outcome}")
    return 0
