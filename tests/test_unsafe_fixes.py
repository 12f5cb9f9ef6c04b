"""`convert --unsafe-fixes` (issue 11): each fixtures/unsafe/NAME/ holds before/ and, when a fix
converts something, after/; `reviews.txt` lists `function: CODE: words of the review note` for every
unsafe fix made, `refused.txt` `function: words of the reason` for every function left refused.
Without the flag, no case changes: every function in them needs a reviewer.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmapconv import commit_message
from mmapconv.convert import Converter, write_in_place
from mmapconv.lint.catalogue import FIXES
from mmapconv.lint.cli import rule_cmd
from mmapconv.scan import Scanner

CASES = Path(__file__).resolve().parent.parent / "fixtures" / "unsafe"
NAMES = sorted(p.name for p in CASES.iterdir() if (p / "before").is_dir())


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def expected(case: Path) -> Path:
    return case / "after" if (case / "after").is_dir() else case / "before"


def converted(name: str, tmp_path: Path, unsafe_fixes: bool = True, side: str = "before"):
    work = tmp_path / "tree"
    shutil.copytree(CASES / name / side if side == "before" else expected(CASES / name), work)
    outcome = Converter(Scanner(work, jobs=1).scan([work]), jobs=1, unsafe_fixes=unsafe_fixes).run()
    write_in_place(work, outcome.changes)
    return work, outcome


@pytest.mark.parametrize("name", NAMES)
def test_before_becomes_after(name, tmp_path):
    work, outcome = converted(name, tmp_path)
    assert not outcome.internal_errors
    assert tree(work) == tree(expected(CASES / name))


@pytest.mark.parametrize("name", NAMES)
def test_without_the_flag_nothing_changes(name, tmp_path):
    work, outcome = converted(name, tmp_path, unsafe_fixes=False)
    assert outcome.changes == {} and outcome.reviews == []
    assert tree(work) == tree(CASES / name / "before")


@pytest.mark.parametrize("name", NAMES)
def test_every_unsafe_fix_has_its_review_note(name, tmp_path, expectations):
    want = expectations(CASES / name / "reviews.txt")
    _, outcome = converted(name, tmp_path)
    made = {r.function.function: r for r in outcome.reviews}
    assert set(made) == set(want)
    for function, spec in want.items():
        code, words = (part.strip() for part in spec.split(":", 1))
        assert made[function].code == code
        assert words in made[function].note, (function, made[function].note)


@pytest.mark.parametrize("name", NAMES)
def test_refusals_have_their_reason(name, tmp_path, refused_as_listed):
    _, outcome = converted(name, tmp_path)
    refused_as_listed(outcome, CASES / name / "refused.txt")


@pytest.mark.parametrize("name", NAMES)
def test_second_run_changes_nothing(name, tmp_path):
    _, outcome = converted(name, tmp_path, side="after")
    assert outcome.changes == {}


@pytest.mark.parametrize("code", sorted(FIXES))
def test_each_fix_is_documented(code):
    result = CliRunner().invoke(rule_cmd, [code])
    assert result.exit_code == 0
    for part in (FIXES[code].name, "fix: unsafe", "What:", "Why:", "Example:", "Fix:", "Fixed:"):
        assert part in result.output


def test_json_and_summary_carry_the_review_notes(tmp_path):
    work = tmp_path / "tree"
    shutil.copytree(CASES / "mapped_counter" / "before", work)
    proc = subprocess.run([sys.executable, "-m", "mmapconv", "convert", "-j", "1", "--unsafe-fixes", "--format", "json",
                           str(work)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [(f["function"], f["code"], f["rule"]) for f in report["unsafe_fixes"]] == \
        [("foo_mmap", "MMC401", "state-to-mapped")]
    assert "foo_mapped" in report["diff"]
    assert "review: " in proc.stderr and "MMC401" in proc.stderr
    assert "unsafe fixes to review: MMC401 1" in proc.stderr


def test_the_series_carries_the_review_note(tmp_path):
    work = tmp_path / "tree"
    shutil.copytree(CASES / "mapped_counter" / "before", work)
    proc = subprocess.run([sys.executable, "-m", "mmapconv", "convert", "-j", "1", "--unsafe-fixes", "--stdout",
                           "--signoff", "A U Thor <author@example.com>", "."], cwd=work,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert "mmapconv convert --stdout --signoff 'A U Thor <author@example.com>' --unsafe-fixes" in text
    assert "Patch 1 carries a note for review" in text
    assert "Note for review: an unsafe fix (MMC401, `mmapconv rule MMC401`): foo_mmap(): " \
           "`atomic_inc(&foo->maps);` moved to the new foo_mapped() in foo_vm_ops.mapped; " \
           "foo_vm_close() in .close undoes it." in text


def test_the_commit_message_carries_the_review_note():
    body = commit_message.body(commit_message.Facts(), [("MMC402", "foo_mmap(): the mapping is now established outside foo_lock")])
    assert "Note for review: an unsafe fix (MMC402, `mmapconv rule MMC402`): foo_mmap(): the mapping" in \
        " ".join(body.split())
