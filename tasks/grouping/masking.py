"""Masking: replace the variable parts of a message with placeholders before template mining.

One C-level regular-expression pass masks every run of characters that carries a digit, between delimiters
(ids, counters, sizes, IPs, UUIDs, hex, timestamps, host:port …); delimiters (brackets, quotes, commas, `=`)
stay, so `id=42,` → `id=<*>,` and `(42)` → `(<*>)`. Then only the few tokens containing `/`, `@` or `'` are
checked for digit-free variables: URLs, e-mail addresses, paths (`/var/lib/x`), quoted values. Long hex
strings always contain a digit in practice and fall under the first pass.
"""

from __future__ import annotations

import re

WILDCARD = "<*>"
_DELIM = r"\s\[\](){}\"',;=<>|"
_DIGIT_RUN = re.compile(rf"(?<![^{_DELIM}])[^{_DELIM}\d]*\d[^{_DELIM}]*")
_EDGES = re.compile(r"^([\[\(\{\"',;=<]*)(.*?)([\]\)\}\"',;:.>]*)$")
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PATH = re.compile(r"(?:[\w.*<>-]*/){2,}[\w.$~%+*<>-]*/?|/[\w.$~%+-]+")
_QUOTED = re.compile(r"'[^']+'|\"[^\"]+\"")


_ANY_DIGIT = re.compile(r"\d").search
_URL_ANY = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")


def mask_tokens(message: str) -> list[str]:
    """Split a one-line message into tokens with variable tokens replaced by placeholders."""
    if "://" in message:
        message = _URL_ANY.sub("<URL>", message)
    # most digit-free messages would pay for the substitution's look-behind at every character: skip it
    tokens = (_DIGIT_RUN.sub(WILDCARD, message) if _ANY_DIGIT(message) else message).split()
    if "/" in message or "@" in message or "'" in message or '"' in message:
        for i, tok in enumerate(tokens):
            if "/" in tok or "@" in tok or "'" in tok or '"' in tok:
                tokens[i] = _mask_wordy(tok)
    return tokens


def _mask_wordy(token: str) -> str:
    m = _EDGES.match(token)
    head, core, tail = m.groups() if m else ("", token, "")
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
