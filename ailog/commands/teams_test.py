"""`ailog teams-test`."""

from ailog.errors import NotImplementedYet


def run(args) -> int:
    raise NotImplementedYet("`ailog teams-test` is not implemented yet in this build")
