"""Each fixtures/convert/NAME/ holds before/ (a small tree) and after/ (what convert must make of it).

A case without after/ is a no-change case: convert must leave before/ as it
is. `refused.txt`, when present, lists `function: words of the reason` for
every function convert must refuse.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mmapconv.convert import Converter, write_in_place
from mmapconv.scan import Scanner

CASES = Path(__file__).resolve().parent.parent / "fixtures" / "convert"
NAMES = sorted(p.name for p in CASES.iterdir() if (p / "before").is_dir())


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def convert(root: Path, level: str = "newest"):
    outcome = Converter(Scanner(root, jobs=1, level=level).scan([root]), jobs=1).run()
    write_in_place(root, outcome.changes)
    return outcome


def level_of(case: Path) -> str:
    marker = case / "api.txt"
    return marker.read_text().strip() if marker.exists() else "newest"


def expected(case: Path) -> Path:
    return case / "after" if (case / "after").is_dir() else case / "before"


def converted(name: str, tmp_path: Path, side: str = "before"):
    """A copy of the case's `side` tree, converted in place at the case's API level."""
    case = CASES / name
    work = tmp_path / "tree"
    shutil.copytree(case / side if side == "before" else expected(case), work)
    return work, convert(work, level_of(case))


@pytest.mark.parametrize("name", NAMES)
def test_before_becomes_after(name, tmp_path):
    work, outcome = converted(name, tmp_path)
    assert not outcome.internal_errors
    assert tree(work) == tree(expected(CASES / name))


@pytest.mark.parametrize("name", NAMES)
def test_refusals_have_their_reason(name, tmp_path, refused_as_listed):
    _, outcome = converted(name, tmp_path)
    refused_as_listed(outcome, CASES / name / "refused.txt")


@pytest.mark.parametrize("name", NAMES)
def test_second_run_changes_nothing(name, tmp_path):
    _, outcome = converted(name, tmp_path, side="after")
    assert outcome.changes == {}
