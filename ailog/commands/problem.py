"""`ailog problem`."""

from ailog.errors import NotImplementedYet


def run(args) -> int:
    raise NotImplementedYet("`ailog problem` is not implemented yet in this build")
