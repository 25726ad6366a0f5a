"""`ailog doctor`: check every configured dependency and print a pass/fail table; exit 1 when one fails."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ailog.ops.doctor import run_checks
from blocks.settings import load_settings


def run(args) -> int:
    checks = run_checks(load_settings())
    table = Table(title="AI Log Analyzer — dependency checks")
    for col in ("check", "result", "detail"):
        table.add_column(col)
    colour = {"pass": "green", "fail": "red", "skip": "yellow"}
    for c in checks:
        table.add_row(c.name, f"[{colour[c.status]}]{c.status}[/]", c.detail)
    Console().print(table)
    return 1 if any(c.status == "fail" for c in checks) else 0
