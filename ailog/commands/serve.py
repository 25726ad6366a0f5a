"""`ailog serve`."""

from ailog.errors import NotImplementedYet


def run(args) -> int:
    raise NotImplementedYet("`ailog serve` is not implemented yet in this build")
