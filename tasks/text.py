"""Text that is safe to store and hash: no NUL or other control characters, no lone surrogates, bounded size.

PostgreSQL `text` rejects NUL (`DataError`) and UTF-8 encoding rejects lone surrogates (`"\\ud83d"`, which JSON
decoders produce from an escaped half pair): either would fail a whole window. Both are replaced by U+FFFD where
the text enters the pipeline (the document decoder) and again where the grouping engine keys it.
"""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
_UNSAFE = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f{chr(0xD800)}-{chr(0xDFFF)}]")  # chr: mypyc takes no surrogate literal


# ASCII characters the pattern replaces map to 0, every other byte to 1: for ASCII text (nearly every field, and
# stack traces, whose newlines and tabs make `str.isprintable` false) one `bytes.translate` and a byte search
# replace the pattern's per-character scan
_UNSAFE_ASCII = bytes(0 if c < 128 and _UNSAFE.match(chr(c)) else 1 for c in range(256))


def clean_text(text: str) -> str:
    """Replace NUL, control characters (tab, newline and carriage return stay) and lone surrogates."""
    if text.isascii():
        return text if 0 not in text.encode().translate(_UNSAFE_ASCII) else _UNSAFE.sub(REPLACEMENT, text)
    return _UNSAFE.sub(REPLACEMENT, text) if _UNSAFE.search(text) else text


def truncate(text: str, max_chars: int) -> str:
    """Keep the first ``max_chars`` characters and say how much was cut (never silently)."""
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars]} …[truncated {len(text) - max_chars} characters]"
