"""In CI a skipped test is a failure (tests/conftest.py), so no check silently stops running there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "test_skipping.py").write_text("import pytest\n\ndef test_needs_a_binary():\n"
                                               "    pytest.skip('promtool is not installed')\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": ci} if ci else {})
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
                           str(tmp_path / "test_skipping.py")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_a_skip_fails_in_ci_and_stays_a_skip_elsewhere(tmp_path):
    ci = run(tmp_path, "true")
    assert ci.returncode == 1 and "skipped in CI" in ci.stdout, ci.stdout
    local = run(tmp_path, None)
    assert local.returncode == 0 and "1 skipped" in local.stdout, local.stdout


def test_ci_run_installs_what_tests_need_and_enforces_it():
    script = (ROOT / ".ci" / "run").read_text()
    assert "bubblewrap" in script and "prometheus-pushgateway" in script and 'export CI="${CI:-true}"' in script
