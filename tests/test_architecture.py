"""The floors of the house (pyproject.toml, [tool.importlinter]): the `ailog` command over the flows, over the
stages in tasks/, over configuration in blocks/, over the foundation in core/ (errors, database, redaction,
logging and metrics). Imports only go down: a stage never imports a flow, the foundation never imports config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_imports_only_go_down():
    done = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 kept, 0 broken" in done.stdout
