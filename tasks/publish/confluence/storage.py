"""Confluence storage format (XHTML, must be well-formed XML): escaping every dynamic value.

Log text is attacker-controlled: it is HTML-escaped, XML-illegal control characters are removed, and a
CDATA terminator inside a code block is split (`]]>` → `]]]]><![CDATA[>`).
"""

from __future__ import annotations

import csv
import html
import re
from pathlib import Path

csv.field_size_limit(64 * 1024 * 1024)  # log messages can be huge; the cell itself is cut at MAX_CELL
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
MAX_CELL = 2000


def text(value) -> str:
    """Escaped text content for an element."""
    s = "" if value is None else str(value)
    s = _ILLEGAL.sub("", s)
    if len(s) > MAX_CELL:
        s = s[:MAX_CELL] + " …"
    return html.escape(s, quote=True)


def heading(value: str, level: int = 2) -> str:
    return f"<h{level}>{text(value)}</h{level}>"


def paragraph(value: str) -> str:
    return f"<p>{text(value)}</p>"


def table(columns: list[str], rows: list[list]) -> str:
    head = "".join(f"<th><p>{text(c)}</p></th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td><p>{text(v)}</p></td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tbody><tr>{head}</tr>{body}</tbody></table>"


def code_block(value: str) -> str:
    safe = _ILLEGAL.sub("", value).replace("]]>", "]]]]><![CDATA[>")
    return ('<ac:structured-macro ac:name="code"><ac:plain-text-body><![CDATA['
            f"{safe}]]></ac:plain-text-body></ac:structured-macro>")


def image(filename: str) -> str:
    return f'<p><ac:image><ri:attachment ri:filename="{text(filename)}" /></ac:image></p>'


def attachment_link(filename: str, label: str | None = None) -> str:
    body = (label or filename).replace("]]>", "]]]]><![CDATA[>")
    return (f'<p><ac:link><ri:attachment ri:filename="{text(filename)}" />'
            f"<ac:plain-text-link-body><![CDATA[{_ILLEGAL.sub('', body)}]]></ac:plain-text-link-body></ac:link></p>")


def csv_table(path: Path, *, columns: list[str] | None = None, max_rows: int = 200) -> str:
    """A table of a CSV file (the first `columns`, or all), with a note when it is cut."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        keep = [header.index(c) for c in columns if c in header] if columns else list(range(len(header)))
        rows = []
        total = 0
        for row in reader:
            total += 1
            if len(rows) < max_rows:
                rows.append([row[i] if i < len(row) else "" for i in keep])
    out = table([header[i] for i in keep], rows)
    if total > max_rows:
        out += paragraph(f"Showing {max_rows} of {total} rows; the attached {path.name} has all of them.")
    return out
