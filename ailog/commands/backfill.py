"""`ailog backfill`."""

from ailog.errors import NotImplementedYet


def run(args) -> int:
    raise NotImplementedYet("`ailog backfill` is not implemented yet in this build")
