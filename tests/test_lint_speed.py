"""Lint at scan's speed: the byte prefilter, the parallel parse, and that neither changes a finding.

The whole-tree figures (the lint/grep ratio, every deprecated .mmap of 6.12
found) are `realtree` tests at the end.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

import mmapconv.lint.engine as engine
from mmapconv.lint import lint_paths
from mmapconv.lint.cli import lint_cmd

ROOT = Path(__file__).resolve().parent.parent
LINT = ROOT / "fixtures" / "lint"
TREES = ROOT / "fixtures" / "api_level"

DRIVER = """// SPDX-License-Identifier: GPL-2.0
#include <linux/fs.h>

static unsigned long d{n}_pfn;

static int d{n}_mmap(struct file *file, struct vm_area_struct *vma)
{{
	return remap_pfn_range(vma, vma->vm_start, d{n}_pfn,
			       vma->vm_end - vma->vm_start, vma->vm_page_prot);
}}

static const struct file_operations d{n}_fops = {{
	.owner = THIS_MODULE,{extra}
	.mmap = d{n}_mmap,
}};
"""


# Half of them name a hook and must be parsed: more than the worker pool's threshold.
DRIVERS = 2 * engine._PARALLEL_FROM + 8


@pytest.fixture
def big_tree(tmp_path):
    """More files to parse than the worker pool's threshold, the lint fixtures among them, and files
    no rule can fire on."""
    tree = tmp_path / "tree"
    drivers = tree / "drivers"
    drivers.mkdir(parents=True)
    for n in range(DRIVERS):
        # Every other driver also names a hook, so it must be parsed.
        extra = "\n\t/* .mmap_prepare comes later */" if n % 2 else ""
        (drivers / f"d{n:02}.c").write_text(DRIVER.format(n=n, extra=extra))
    for n in range(30):
        (drivers / f"plain{n}.c").write_text(f"int plain{n};\n")
    shutil.copytree(LINT, tree / "lint")
    (tree / ".hidden").mkdir()
    (tree / ".hidden" / "skipped.c").write_text(DRIVER.format(n=99, extra=""))
    return tree


def outcome(result):
    return [(f.path, f.line, f.col, f.code, f.message, f.severity) for f in result.findings], result.errors


@pytest.mark.parametrize("paths", [[LINT], [TREES], [LINT / "deprecated_mmap.c", LINT / "both_hooks.c"]],
                         ids=["lint-fixtures", "api-trees", "files"])
def test_unparsed_mmc101_is_the_parsed_one(monkeypatch, paths):
    fast = outcome(lint_paths(paths))
    monkeypatch.setattr(engine, "UNPARSED_MMC101", False)
    assert outcome(lint_paths(paths)) == fast


def test_workers_change_nothing(monkeypatch, big_tree):
    pools = []
    real_pool = engine.ProcessPoolExecutor

    def pool(*args, **kwargs):
        pools.append(args)
        return real_pool(*args, **kwargs)
    monkeypatch.setattr(engine, "ProcessPoolExecutor", pool)
    parallel = lint_paths([big_tree], jobs=2)
    assert pools == [(2,)]
    serial = lint_paths([big_tree], jobs=1)
    assert outcome(parallel) == outcome(serial)
    monkeypatch.setattr(engine, "UNPARSED_MMC101", False)
    assert outcome(lint_paths([big_tree], jobs=2)) == outcome(serial)
    found = Counter(f.code for f in serial.findings)
    assert found["MMC101"] == DRIVERS + 3   # the drivers, and deprecated_mmap.c and both_hooks.c
    assert not any(".hidden" in f.path for f in serial.findings)
    # The helper chain of MMC207 is the scanner's effect analysis, in the main process.
    chain = [f for f in serial.findings if f.code == "MMC207" and f.path.endswith("per_mapping_wrapper.c")]
    assert [f.line for f in chain] == [30] and "pmw_note_user() → pmw_account()" in chain[0].message


def test_only_files_a_rule_needs_are_parsed(monkeypatch, big_tree):
    parsed = []
    real = engine._lint_file

    def counting(job, effects=None):
        parsed.append(Path(job.path).name)
        return real(job, effects)
    monkeypatch.setattr(engine, "_lint_file", counting)
    lint_paths([big_tree / "drivers"], jobs=1)   # in this process, where the count is seen
    assert sorted(parsed) == sorted(f"d{n:02}.c" for n in range(DRIVERS) if n % 2)


def test_same_without_grep(monkeypatch, big_tree):
    with_grep = lint_paths([big_tree])
    monkeypatch.setenv("MMAPCONV_NO_GREP", "1")
    without = lint_paths([big_tree])
    assert outcome(without) == outcome(with_grep)
    assert without.files == with_grep.files == DRIVERS + 30 + len(list(LINT.glob("*.[ch]")))


def test_the_scanners_file_errors_are_reported_per_file(tmp_path):
    tree = tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    (tree / "d" / "bad.c").write_text("static const struct file_operations f_fops = {\n\t.open = ((((,\n"
                                      "\t.mmap = f_mmap,\n};\n")
    (tree / "d" / "binary.c").write_bytes(b"int mmap_prepare;\0")
    (tree / "d" / "ok.c").write_text(DRIVER.format(n=1, extra=""))
    result = lint_paths([tree])
    assert result.errors == [
        f"{tree}/d/bad.c: line 3: could not parse the initializer around this `.mmap`",
        f"{tree}/d/binary.c: binary file (NUL byte)",
    ]
    assert [(Path(f.path).name, f.code) for f in result.findings] == [("ok.c", "MMC101")]
    cli = CliRunner().invoke(lint_cmd, [str(tree)])
    assert cli.exit_code == 2 and cli.stdout == ""
    assert cli.stderr.splitlines() == [f"mmapconv lint: {e}" for e in result.errors]


def test_order_is_the_walk_order(tmp_path):
    """A directory's files before its subdirectories', each sorted, as os.walk gives them."""
    for rel in ("b.c", "a/z.c", "a/y/x.c", "c/a.c"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(DRIVER.format(n=len(rel), extra=""))
    paths = [Path(f.path).relative_to(tmp_path).as_posix() for f in lint_paths([tmp_path]).findings]
    assert paths == ["b.c", "a/z.c", "a/y/x.c", "c/a.c"]


# --- the whole tree -------------------------------------------------------------

@pytest.mark.realtree
def test_whole_tree_lint_reports_every_deprecated_mmap(kernel_tree, monkeypatch):
    from mmapconv.scan import Scanner
    scan = Scanner(kernel_tree).scan([kernel_tree])
    expected = Counter((ri.instance.path, ri.instance.line) for ri in scan.instances if ri.resolution != "null")
    result = lint_paths([kernel_tree])
    assert result.errors == []
    assert result.files > 50_000
    assert [d.level for d in result.levels] == ["newest"] and not result.levels[0].has_hook
    found = Counter((Path(f.path).relative_to(kernel_tree).as_posix(), f.line) for f in result.findings
                    if f.code == "MMC101")
    assert found == expected
    monkeypatch.setattr(engine, "UNPARSED_MMC101", False)
    assert outcome(lint_paths([kernel_tree])) == outcome(result)


@pytest.mark.realtree
def test_lint_benchmark_ratio(kernel_tree, report_lines):
    """lint/grep from scripts/bench.py, printed in the summary. The target is 5x grep; the bound
    here is 25x, as for scan: CI machines are noisy, only a real regression crosses it."""
    bench = ROOT / "scripts" / "bench.py"
    proc = subprocess.run([sys.executable, str(bench), str(kernel_tree), "--runs", "3", "--only", "lint",
                           "--max-ratio", "25"], capture_output=True, text=True, check=False)
    report_lines.extend(f"bench: {line}" for line in proc.stdout.splitlines())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("lint/grep: ")
