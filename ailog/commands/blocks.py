"""`ailog blocks`."""

from ailog.errors import NotImplementedYet


def run(args) -> int:
    raise NotImplementedYet("`ailog blocks` is not implemented yet in this build")
