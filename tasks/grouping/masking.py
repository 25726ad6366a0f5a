"""Masking: replace the variable parts of a message with placeholders before template mining.

A regular expression masks every run of characters that carries a digit, between delimiters (ids, counters,
sizes, IPs, UUIDs, hex, timestamps, host:port …), in each token that has a digit; delimiters (brackets,
quotes, commas, `=`) stay, so `id=42,` → `id=<*>,` and `(42)` → `(<*>)`. Then only the few tokens containing
`/`, `@` or `'` are checked for digit-free variables: URLs, e-mail addresses, paths (`/var/lib/x`), quoted
values. Long hex strings always contain a digit in practice and are masked as digit runs.
"""

from __future__ import annotations

import re
from typing import Final

WILDCARD: Final = "<*>"
_DELIM: Final = r"\s\[\](){}\"',;=<>|"
# possessive `*+`: a digit cannot be where a non-digit was, so giving characters back can never help a match
_DIGIT_RUN: Final = re.compile(rf"(?<![^{_DELIM}])[^{_DELIM}\d]*+\d[^{_DELIM}]*")
_HEAD: Final = "[({\"',;=<"  # punctuation a token may start with, kept around its masked core
_TAIL: Final = "])}\"',;:.>"  # ... and end with
_URL: Final = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+")
_EMAIL: Final = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PATH: Final = re.compile(r"(?:[\w.*<>-]*/){2,}[\w.$~%+*<>-]*/?|/[\w.$~%+-]+")
_QUOTED: Final = re.compile(r"'[^']+'|\"[^\"]+\"")


_ANY_DIGIT: Final = re.compile(r"\d").search
# ASCII characters by class, for one `bytes.translate` per message: a digit is "1", a delimiter "2", whitespace
# (what str.split splits on) a space, anything else "0". A token whose classes hold a "1" but no "2" is one
# run of `_DIGIT_RUN` from its first character to its last, masked whole without the expression.
_TOKEN_CLASSES: Final = bytes(ord("1") if chr(c).isdigit() else ord(" ") if chr(c).isspace() else
                              ord("2") if re.match(f"[{_DELIM}]", chr(c)) else ord("0") for c in range(128)) + b"0" * 128
_URL_ANY: Final = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")


def mask_tokens(message: str) -> list[str]:
    """Split a one-line message into tokens with variable tokens replaced by placeholders."""
    if "://" in message:
        message = _URL_ANY.sub("<URL>", message)
    tokens = message.split()
    if message.isascii():
        classes = message.encode().translate(_TOKEN_CLASSES)
        if b"1" in classes:
            # the classes split where the message splits: a token with a digit and no delimiter is one run
            for i, cls in enumerate(classes.split()):
                if b"1" in cls:
                    tokens[i] = _DIGIT_RUN.sub(WILDCARD, tokens[i]) if b"2" in cls else WILDCARD
    elif _ANY_DIGIT(message):
        # token by token (a run never spans whitespace): the substitution's look-behind costs a step at every
        # character, and the long digit-free tokens (words, a trace's frames) are passed over by two C calls
        for i, tok in enumerate(tokens):
            if not tok.isalpha() and _ANY_DIGIT(tok):
                tokens[i] = _DIGIT_RUN.sub(WILDCARD, tok)
    if "/" in message or "@" in message or "'" in message or '"' in message:
        for i, tok in enumerate(tokens):
            if "/" in tok or "@" in tok or "'" in tok or '"' in tok:
                tokens[i] = _mask_wordy(tok)
    return tokens


def split_edges(token: str) -> tuple[str, str, str]:
    """Leading punctuation, core, trailing punctuation: `(a@b.org),` → `(`, `a@b.org`, `),`."""
    rest = token.lstrip(_HEAD)
    core = rest.rstrip(_TAIL)
    return token[:len(token) - len(rest)], core, rest[len(core):]


def _mask_wordy(token: str) -> str:
    head, core, tail = split_edges(token)
    if ("'" in token or '"' in token) and _QUOTED.fullmatch(token.strip(",.;:()[]")):
        return WILDCARD
    if not core:
        return token
    if "://" in core and _URL.fullmatch(core):
        return f"{head}<URL>{tail}"
    if "@" in core and _EMAIL.fullmatch(core):
        return f"{head}<EMAIL>{tail}"
    if "/" in core and len(core) > 1 and _PATH.fullmatch(core):
        return f"{head}<PATH>{tail}"
    return token


def mask(message: str) -> str:
    return " ".join(mask_tokens(message))
