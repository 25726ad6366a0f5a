"""`ailog confluence-publish`."""

from ailog.errors import NotImplementedYet


def run(args) -> int:
    raise NotImplementedYet("`ailog confluence-publish` is not implemented yet in this build")
