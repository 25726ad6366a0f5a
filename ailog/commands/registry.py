"""`ailog registry`."""

from ailog.errors import NotImplementedYet


def run(args) -> int:
    raise NotImplementedYet("`ailog registry` is not implemented yet in this build")
