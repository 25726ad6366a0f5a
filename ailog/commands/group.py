"""`ailog group`."""

from ailog.errors import NotImplementedYet


def run(args) -> int:
    raise NotImplementedYet("`ailog group` is not implemented yet in this build")
