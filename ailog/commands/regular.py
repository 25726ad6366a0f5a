"""`ailog regular`."""

from ailog.errors import NotImplementedYet


def run(args) -> int:
    raise NotImplementedYet("`ailog regular` is not implemented yet in this build")
