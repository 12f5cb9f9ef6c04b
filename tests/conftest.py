"""The real kernel tree for the `realtree` tests: installed and unpacked by scripts/kernel-tree.sh.

In CI (CI=true) a tree that cannot be had is a failure; elsewhere those tests are skipped.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "kernel-tree.sh"


@pytest.fixture(scope="session")
def kernel_tree() -> Path:
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, check=False)
    tree = Path(proc.stdout.strip()) if proc.returncode == 0 else None
    if tree is None or not (tree / "Makefile").exists():
        message = f"no linux-source-6.12 tree: {proc.stderr.strip()[-500:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return tree


_REPORT_LINES: list[str] = []


@pytest.fixture(scope="session")
def report_lines() -> list[str]:
    """Lines a test wants in the run's summary (benchmark ratios): shown whatever the outcome."""
    return _REPORT_LINES


def pytest_terminal_summary(terminalreporter):
    for line in _REPORT_LINES:
        terminalreporter.write_line(line)
