"""`ailog doctor`."""

from ailog.errors import NotImplementedYet


def run(args) -> int:
    raise NotImplementedYet("`ailog doctor` is not implemented yet in this build")
