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


def _expectations(path: Path) -> dict[str, str]:
    """The `function: words` lines of a fixture's expectation file (refused.txt, reviews.txt); {} when absent."""
    out = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        if line.strip() and not line.startswith("#"):
            function, words = line.split(":", 1)
            out[function.strip()] = words.strip()
    return out


def _refused_as_listed(outcome, listed: Path) -> None:
    """Exactly the functions refused.txt lists are refused, each with its words in the reason."""
    expected = _expectations(listed)
    refused = {r.function.function: r.message for r in outcome.refused}
    assert set(refused) == set(expected)
    for function, words in expected.items():
        assert words in refused[function], (function, refused[function])


@pytest.fixture(scope="session")
def expectations():
    return _expectations


@pytest.fixture(scope="session")
def refused_as_listed():
    return _refused_as_listed


_REPORT_LINES: list[str] = []


@pytest.fixture(scope="session")
def report_lines() -> list[str]:
    """Lines a test wants in the run's summary (benchmark ratios): shown whatever the outcome."""
    return _REPORT_LINES


def pytest_terminal_summary(terminalreporter):
    for line in _REPORT_LINES:
        terminalreporter.write_line(line)
