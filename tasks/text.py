"""Text that is safe to store and hash: no NUL or other control characters, no lone surrogates, bounded size.

PostgreSQL `text` rejects NUL (`DataError`) and UTF-8 encoding rejects lone surrogates (`"\\ud83d"`, which JSON
decoders produce from an escaped half pair): either would fail a whole window. Both are replaced by U+FFFD where
the text enters the pipeline (the document decoder) and again where the grouping engine keys it.
"""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Replace NUL, control characters (tab, newline and carriage return stay) and lone surrogates."""
    if text.isascii() and text.isprintable():  # the usual field (app, pod, host, level …): two C-level checks
        return text
    return _UNSAFE.sub(REPLACEMENT, text) if _UNSAFE.search(text) else text


def truncate(text: str, max_chars: int) -> str:
    """Keep the first ``max_chars`` characters and say how much was cut (never silently)."""
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars]} …[truncated {len(text) - max_chars} characters]"
