"""Errors a user can act on: the CLI prints their message as one line, without a traceback."""


class AilogError(Exception):
    """A failure with a message that says what failed and what to do. Never contains a secret."""

    exit_code = 1

    def __init__(self, *args) -> None:
        from core.redact import redact

        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class ConfigError(AilogError):
    """A setting is missing or wrong; the message names the setting to fix."""

    exit_code = 2


class ServiceUnavailable(AilogError):
    """A server that is configured right cannot be reached now (restarting, failing over, overloaded): worth
    retrying, unlike a ConfigError. Same exit status as a configuration error for the CLI: the message says what
    to check."""

    exit_code = 2


class NotImplementedYet(AilogError):
    """A command whose behaviour has not landed yet: fails loudly instead of pretending."""

    exit_code = 3
