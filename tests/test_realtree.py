"""The whole linux-source-6.12 tree: scan figures, a whole-tree conversion, and its post-conditions.

Slow (about a minute): marked `realtree`. The tree comes from
scripts/kernel-tree.sh (see conftest.py); CI always has it.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from mmapconv.convert import Converter, write_in_place
from mmapconv.diff import patch_bytes, unified_diff
from mmapconv.scan import Scanner

pytestmark = pytest.mark.realtree

# Measured on linux-source-6.12 (Debian 6.12.117); see the README for what they count.
INSTANCES = 250
FUNCTIONS = 136
VERDICTS = {"auto": 65, "manual": 71}
PRIMARY = {"a": 37, "b": 20, "c": 1, "d": 12, "e": 21, "f": 32, "g": 1, "i": 12}
CONVERTED = 65
CHANGED_FILES = 80
REFUSED = {
    "delegates": 24, "per-mapping-state": 17, "writes-state": 5, "not-convertible": 4,
    "lock-around-action": 3, "unknown-call": 3, "unsupported": 3, "indirect-call": 3,
    "remap-loop": 2, "dma-mmap": 2, "vma-write": 1, "references": 1, "vma-value": 1,
    "manual-open": 1, "several-actions": 1,
}


@pytest.fixture(scope="module")
def scan(kernel_tree):
    return Scanner(kernel_tree).scan([kernel_tree])


@pytest.fixture(scope="module")
def converted(kernel_tree, scan, tmp_path_factory):
    """A scratch copy of the tree (hard links: writes replace files, never write through), converted in place."""
    scratch = tmp_path_factory.mktemp("ktree") / "linux"
    subprocess.run(["cp", "-al", str(kernel_tree), str(scratch)], check=True)
    outcome = Converter(scan).run()
    diff = unified_diff(outcome.changes)
    check = subprocess.run(["git", "apply", "--check", "-"], input=patch_bytes(diff), cwd=scratch,
                           capture_output=True, check=False)
    write_in_place(scratch, outcome.changes)
    return scratch, outcome, diff, check


def test_scan_figures(scan):
    assert len(scan.instances) == INSTANCES
    assert len(scan.functions) == FUNCTIONS
    assert scan.errors == []
    assert dict(Counter(f.verdict for f in scan.functions)) == VERDICTS
    assert dict(Counter(f.primary for f in scan.functions)) == PRIMARY


def test_scan_does_not_depend_on_the_hash_seed(kernel_tree):
    """The evidence a reason quotes is chosen in an order that no set iteration decides."""
    outputs = set()
    for seed in ("0", "1"):
        proc = subprocess.run([sys.executable, "-m", "mmapconv", "scan", "--format", "json", str(kernel_tree)],
                              capture_output=True, check=False, env={**os.environ, "PYTHONHASHSEED": seed})
        assert proc.returncode == 0, proc.stderr.decode()[-500:]
        outputs.add(proc.stdout)
    assert len(outputs) == 1


def test_scan_sees_other_ops_only_when_asked(kernel_tree, scan):
    everything = Scanner(kernel_tree, all_ops=True).scan([kernel_tree])
    structs = Counter(ri.instance.struct for ri in everything.all_instances)
    assert structs["file_operations"] == INSTANCES
    assert structs["v4l2_file_operations"] > 100 and structs["proto_ops"] > 50
    assert all(ri.instance.struct == "file_operations" for ri in scan.instances)


def test_whole_tree_conversion(converted):
    _, outcome, _, check = converted
    assert check.returncode == 0, check.stderr.decode()
    assert outcome.internal_errors == []
    assert len(outcome.converted) == CONVERTED
    assert len(outcome.changes) == CHANGED_FILES
    assert dict(Counter(r.code for r in outcome.refused)) == REFUSED


def test_second_run_is_a_no_op(converted):
    scratch, _, _, _ = converted
    again = Converter(Scanner(scratch).scan([scratch])).run()
    assert again.changes == {}
    assert again.internal_errors == []


KCOMPILE = Path(__file__).resolve().parent.parent.parent / "shared" / "kcompile"
# The plain conversion's whole diff, byte for byte: --unsafe-fixes (issue 11) left it as it was.
SAFE_DIFF_SHA256 = "eaa3372cef459e4321fb4f4c8105986e3ff521642543b7d0f46b2081d8860f9c"
# What `convert --unsafe-fixes` adds: the fixes made, by rule.
UNSAFE_FIXES = {"MMC401": 2, "MMC402": 1}


def test_plain_conversion_is_unchanged(converted):
    _, _, diff, _ = converted
    assert hashlib.sha256(patch_bytes(diff)).hexdigest() == SAFE_DIFF_SHA256


@pytest.fixture(scope="module")
def unsafe(kernel_tree, scan):
    outcome = Converter(scan, unsafe_fixes=True).run()
    diff = unified_diff(outcome.changes)
    check = subprocess.run(["git", "apply", "--check", "-"], input=patch_bytes(diff), cwd=kernel_tree,
                           capture_output=True, check=False)
    return outcome, diff, check


def test_unsafe_fixes_convert_strictly_more(converted, unsafe):
    _, safe, _, _ = converted
    outcome, _, check = unsafe
    assert check.returncode == 0, check.stderr.decode()
    assert outcome.internal_errors == []
    assert dict(Counter(r.code for r in outcome.reviews)) == UNSAFE_FIXES
    assert len(outcome.converted) == CONVERTED + sum(UNSAFE_FIXES.values())
    fixed = {r.function.path for r in outcome.reviews}
    # Every other file is converted exactly as without the flag.
    assert {p: c for p, c in outcome.changes.items() if p not in fixed} == \
        {p: c for p, c in safe.changes.items() if p not in fixed}


@pytest.mark.skipif(not (KCOMPILE / "check.sh").exists(), reason="../shared/kcompile is not beside the checkout")
def test_unsafe_fixes_compile(unsafe, tmp_path):
    """The files an unsafe fix changed build with -Werror against the new API (the rest is the plain diff's)."""
    outcome, _, _ = unsafe
    fixed = {r.function.path for r in outcome.reviews}
    patch = tmp_path / "unsafe.diff"
    patch.write_bytes(patch_bytes(unified_diff({p: outcome.changes[p] for p in fixed})))
    _kcompile_passes(patch)


def _kcompile_passes(patch: Path) -> None:
    subprocess.run(["bash", str(KCOMPILE / "prepare.sh")], check=True, capture_output=True)
    proc = subprocess.run(["bash", str(KCOMPILE / "check.sh"), str(patch)], capture_output=True, text=True, check=False)
    summary = [line for line in proc.stdout.splitlines() if line.startswith("compile:")]
    assert proc.returncode == 0 and summary and " 0 fail" in summary[0], proc.stdout[-3000:] + proc.stderr[-2000:]


def _checkpatch_types(tree: Path, rel: str) -> Counter:
    out = subprocess.run(["perl", "scripts/checkpatch.pl", "--no-tree", "--terse", "--show-types", "-f", rel],
                         cwd=tree, capture_output=True, text=True, check=False).stdout
    return Counter(line.split(": ", 2)[1] for line in out.splitlines() if line.count(": ") >= 2 and ":" in line.split(": ", 2)[1])


@pytest.mark.skipif(shutil.which("perl") is None, reason="checkpatch.pl needs perl")
def test_checkpatch_adds_nothing(kernel_tree, converted):
    scratch, outcome, _, _ = converted
    sample = sorted(p for p in outcome.changes if p.endswith(".c"))[::3]
    assert len(sample) >= 10
    for rel in sample:
        before, after = _checkpatch_types(kernel_tree, rel), _checkpatch_types(scratch, rel)
        assert after - before == Counter(), (rel, after - before)


@pytest.mark.skipif(not (KCOMPILE / "check.sh").exists(), reason="../shared/kcompile is not beside the checkout")
def test_whole_tree_diff_compiles(converted, tmp_path):
    """Every converted file builds with -Werror against the new API (allmodconfig and allnoconfig)."""
    _, _, diff, _ = converted
    patch = tmp_path / "conversion.diff"
    patch.write_bytes(patch_bytes(diff))
    _kcompile_passes(patch)


def test_scan_benchmark_ratio(kernel_tree, report_lines):
    """The benchmark script, printed in the summary; CI fails only on a ratio no busy machine reaches.

    The target is 5x grep (the closing note measures it); on 2 shared cores
    another build once pushed a clean clone over it, so the bound here is 25x,
    which only a real regression (a lost prefilter, a quadratic pass) crosses.
    """
    bench = Path(__file__).resolve().parent.parent / "scripts" / "bench.py"
    proc = subprocess.run([sys.executable, str(bench), str(kernel_tree), "--runs", "3", "--max-ratio", "25"],
                          capture_output=True, text=True, check=False)
    report_lines.extend(f"bench: {line}" for line in proc.stdout.splitlines())
    assert proc.returncode == 0, proc.stdout + proc.stderr
