"""`ailog demo`."""

from ailog.errors import NotImplementedYet


def run(args) -> int:
    raise NotImplementedYet("`ailog demo` is not implemented yet in this build")
