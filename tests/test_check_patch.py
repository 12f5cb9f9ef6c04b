"""check-patch on the fixture series: an mbox, format-patch files, a plain diff; with and without --tree."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmapconv.lint.cli import check_patch_cmd
from mmapconv.patch import check_series
from mmapconv.series import parse, read_inputs

SERIES = Path(__file__).resolve().parent.parent / "fixtures" / "series"
MBOX = SERIES / "series.mbox"
PATCHES = sorted((SERIES / "patches").glob("*.patch"))
TREE = SERIES / "tree"
EXPECTED = json.loads((SERIES / "expected.json").read_text())["patches"]

INPUTS = {
    "mbox": [MBOX],
    "format-patch": PATCHES,
    "format-patch-reversed": PATCHES[::-1],
}


def findings_per_patch(report):
    return [{"subject": s, "findings": [[f.path, f.line, f.code, f.severity] for f in report.of_patch(s)]}
            for s in report.patches]


@pytest.mark.parametrize("tree", [None, TREE], ids=["hunks", "tree"])
@pytest.mark.parametrize("form", INPUTS)
def test_series_findings_per_patch(form, tree):
    report = check_series(read_inputs(INPUTS[form]), tree=tree)
    assert findings_per_patch(report) == EXPECTED


@pytest.mark.parametrize("tree", [None, TREE], ids=["hunks", "tree"])
def test_plain_diff_is_one_patch(tree):
    report = check_series(read_inputs([SERIES / "series.diff"]), tree=tree)
    assert report.patches == ["series.diff"]
    expected = sorted(f for p in EXPECTED for f in p["findings"])
    assert sorted([f.path, f.line, f.code, f.severity] for f in report.findings) == expected


def test_mbox_as_archives_serve_it():
    series = parse(MBOX.read_bytes(), str(MBOX))
    # Out of order in the file, back in order after read_inputs.
    assert [p.index for p in series.patches] == [(2, 3), (3, 3), (1, 3)]
    assert [p.index for p in read_inputs([MBOX]).patches] == [(1, 3), (2, 3), (3, 3)]
    by_index = {p.index[0]: p for p in series.patches}
    assert "\nFrom the user's point of view" in by_index[1].description      # mboxrd unquoted
    assert "unsigned long size = vma_desc_size(desc);" in by_index[2].diff    # quoted-printable decoded
    assert "Tested-by: Zoë Fixture" in by_index[3].description               # 8bit UTF-8
    assert series.notes == [
        "skipped cover letter: [PATCH 0/3] misc: move three small drivers to mmap_prepare",
        "skipped reply: Re: [PATCH 2/3] misc: mmc_regs: convert to mmap_prepare",
    ]


def test_quoted_patch_without_reply_subject_is_not_a_patch():
    message = MBOX.read_bytes().split(b"From mboxrd@z")[3]   # the review reply
    assert b"Subject: Re: " in message
    renamed = b"From mboxrd@z" + message.replace(b"Subject: Re: ", b"Subject: ")
    series = parse(renamed, "reply.mbox")
    assert series.patches == [] and series.notes[0].startswith("skipped message without a diff")


def run(args, stdin=None):
    return CliRunner().invoke(check_patch_cmd, args, input=stdin)


def test_text_output_on_the_mbox():
    result = run([str(MBOX)])
    assert result.exit_code == 1
    assert result.stdout == (SERIES / "expected.txt").read_text()
    assert "skipped reply: Re: [PATCH 2/3]" in result.stderr


def test_stdin():
    result = run(["-", "--format", "json"], stdin=MBOX.read_bytes())
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert [p["subject"] for p in doc["patches"]] == [p["subject"] for p in EXPECTED]
    assert [f["code"] for f in doc["findings"]] == ["MMC202", "MMC209", "MMC206", "MMC101"]


def test_fail_on_error_ignores_warnings_only_patches():
    assert run([str(PATCHES[3]), "--fail-on", "error"]).exit_code == 0
    assert run([str(PATCHES[1])]).exit_code == 0


def test_patch_that_does_not_apply(tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(TREE, tree)
    regs = tree / "drivers/misc/mmc_regs.c"
    regs.write_text(regs.read_text().replace("vm_flags_set(vma, VM_IO | VM_DONTEXPAND);", "vm_flags_set(vma, VM_IO);"))
    before = {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    result = run([str(MBOX), "--tree", str(tree)])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert 'patch 2/3 "[PATCH 2/3] misc: mmc_regs: convert to mmap_prepare" does not apply' in lines[0]
    assert {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("args, problem", [
    (["missing.mbox"], "missing.mbox: no such file or directory"),
    (["--tree", "no/such/dir", str(MBOX)], "no/such/dir: no such directory"),
])
def test_bad_input(args, problem):
    result = run(args)
    assert result.exit_code == 2
    assert result.stderr.strip().endswith(problem)


def test_not_a_patch(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("just some text\n")
    result = run([str(text)])
    assert result.exit_code == 2 and "no patch found" in result.stderr
    binary = tmp_path / "bad.patch"
    binary.write_bytes(b"--- a/x.c\n+++ b/x.c\n@@ -1 +1 @@\n-a\n+\xff\n")
    result = run([str(binary)])
    assert result.exit_code == 2 and "not UTF-8" in result.stderr


DIFF_HEAD = "--- a/drivers/x.c\n+++ b/drivers/x.c\n"


@pytest.mark.parametrize("removed, expected", [
    # The old code passed the remap's error through: nothing changes, no finding.
    (["-\treturn remap_pfn_range(vma, vma->vm_start, pfn, size, vma->vm_page_prot);"], []),
    # It returned its own error: the patch drops it.
    (["-\tif (remap_pfn_range(vma, vma->vm_start, pfn, size, vma->vm_page_prot))",
      "-\t\treturn -EAGAIN;", "-\treturn 0;"], [("warning", "-EAGAIN")]),
    # No old code to compare with: the lint's informational finding.
    ([], [("info", "e.g. -EAGAIN")]),
])
def test_remap_error_uses_the_removed_lines(removed, expected):
    added = ["+\tmmap_action_remap_full(desc, pfn);", "+\treturn 0;"]
    body = [" static int x_mmap_prepare(struct vm_area_desc *desc)", " {", *removed, *added, " }"]
    old = sum(1 for line in body if not line.startswith("+"))
    new = sum(1 for line in body if not line.startswith("-"))
    diff = DIFF_HEAD + f"@@ -1,{old} +1,{new} @@\n" + "\n".join(body) + "\n"
    report = check_series(parse(diff.encode(), "x.diff"))
    found = [f for f in report.findings if f.code == "MMC209"]
    assert [(f.severity, word in f.message) for f, (_, word) in zip(found, expected)] == \
        [(severity, True) for severity, _ in expected]
    assert len(found) == len(expected)


def test_added_mmap_beside_mmap_prepare():
    diff = DIFF_HEAD + """@@ -1,3 +1,4 @@
 static const struct file_operations x_fops = {
 	.mmap_prepare = x_mmap_prepare,
+	.mmap = x_mmap,
 };
"""
    report = check_series(parse(diff.encode(), "x.diff"))
    assert [(f.line, f.code) for f in report.findings] == [(3, "MMC101"), (3, "MMC102")]
