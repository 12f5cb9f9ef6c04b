"""check-patch on series as the lists deliver them, and on whole converted functions.

The cases under fixtures/series/cases/ (each a tree, an mbox, format-patch
files and expected.json; fixtures/series/cases/generate.py made them) are
checked in every form, with and without --tree; the rest are small diffs
built here for one behaviour each.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from unidiff import PatchSet

from mmapconv.lint import lint_source
from mmapconv.lint.cli import check_patch_cmd
from mmapconv.patch import check_series, lay_out
from mmapconv.series import parse, read_inputs, strip_list_tags
from mmapconv.source import SourceFile

CASES = Path(__file__).resolve().parent.parent / "fixtures" / "series" / "cases"
NAMES = sorted(p.name for p in CASES.iterdir() if (p / "expected.json").is_file())


def expected(case: str) -> dict:
    return json.loads((CASES / case / "expected.json").read_text())


def inputs(case: str, form: str) -> list[Path]:
    if form == "mbox":
        return [CASES / case / "series.mbox"]
    patches = sorted((CASES / case / "patches").glob("*.patch"))
    # The cross-posted copy, as format-patch files: the same file (one Message-ID) given twice.
    return patches * 2 if case == "duplicate_id" else patches


def rows(report) -> list:
    return [[f.patch, f.path, f.line, f.code, f.severity] for f in report.findings]


@pytest.mark.parametrize("mode", ["hunks", "tree"])
@pytest.mark.parametrize("form", ["mbox", "format-patch"])
@pytest.mark.parametrize("case", NAMES)
def test_case(case, form, mode):
    want = expected(case)
    report = check_series(read_inputs(inputs(case, form)), tree=CASES / case / "tree" if mode == "tree" else None)
    assert report.patches == want["patches"]
    assert rows(report) == want["findings"][mode]
    if form == "mbox":
        assert report.notes == want["notes"]
    else:
        assert sorted(report.notes) == sorted(want["notes"])


def test_every_case_has_both_forms():
    assert set(NAMES) == {"context_vma", "counting_helper", "helper_series", "versions", "duplicate_id", "crlf",
                          "offset"}
    for case in NAMES:
        assert (CASES / case / "series.mbox").is_file() and list((CASES / case / "patches").glob("*.patch"))
        assert (CASES / case / "tree").is_dir()


def test_crlf_fixtures_are_crlf():
    for path in [CASES / "crlf" / "series.mbox", *(CASES / "crlf" / "patches").glob("*.patch")]:
        data = path.read_bytes()
        assert data.count(b"\r\n") == data.count(b"\n") > 10


def test_the_tree_is_never_written(tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(CASES / "offset" / "tree", tree)
    before = {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    check_series(read_inputs(inputs("offset", "mbox")), tree=tree)
    assert {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()} == before


def run(args, stdin=None):
    return CliRunner().invoke(check_patch_cmd, [str(a) for a in args], input=stdin)


def test_text_output_at_an_offset():
    result = run([CASES / "offset" / "series.mbox", "--tree", CASES / "offset" / "tree"])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "[PATCH] misc: off: convert to mmap_prepare",
        "drivers/misc/off.c:22: ERROR: MMC210 `vma->vm_pgoff` in mmap_prepare hook off_mmap_prepare(): no VMA "
        "exists before mmap_prepare returns; use desc->pgoff",
        "drivers/misc/off.c:25: ERROR: MMC206 desc->page_prot changed after mmap_action_ioremap_full() on line 24; "
        "the action already captured it",
        "total: 2 errors, 0 warnings, 0 checks",
        "",
    ]


def test_versions_notes_go_to_stderr_and_json():
    result = run([CASES / "versions" / "series.mbox"])
    assert result.exit_code == 0
    assert "note: skipped [PATCH 2/2] misc: ver: convert the ring to mmap_prepare: v2 of the series supersedes it" \
        in " ".join(result.stderr.split())
    doc = json.loads(run([CASES / "versions" / "series.mbox", "--format", "json"]).stdout)
    assert doc["notes"] == expected("versions")["notes"]
    assert [p["subject"] for p in doc["patches"]] == expected("versions")["patches"]


def test_only_v1_has_the_bug():
    v1 = sorted((CASES / "versions" / "patches").glob("0*.patch"))
    report = check_series(read_inputs(v1))
    assert [(f.patch, f.line, f.code) for f in report.findings] == [
        ("[PATCH 2/2] misc: ver: convert the ring to mmap_prepare", 24, "MMC206")]


# --- series as the lists deliver them --------------------------------------------

DIFF = """--- a/drivers/misc/x.c
+++ b/drivers/misc/x.c
@@ -1,3 +1,3 @@
 static int x_mmap_prepare(struct vm_area_desc *desc)
 {
-	vma_desc_set_flags(desc, VMA_IO_BIT);
+	vm_flags_set(desc, VM_IO);
"""


def mail(subject: str, body: str = "", message_id: str = "", extra: str = "") -> bytes:
    headers = f"Message-ID: {message_id}\n" if message_id else ""
    return (f"From mboxrd@z Thu  1 Jan 00:00:00 1970\nFrom: A <a@example.org>\nSubject: {subject}\n{headers}{extra}"
            f"\nmessage\n---\n{body}\n").encode()


@pytest.mark.parametrize("subject", ["[PATCH 00/15] x: convert fifteen drivers", "[PATCH v2 00/16] x: convert them",
                                     "[RFC PATCH v3 0/4] x", "[Linux-stm32] [PATCH v2 00/16] x"])
def test_cover_letters_even_with_a_diff(subject):
    # A v2 cover letter carries an interdiff against v1: still a cover letter.
    series = parse(mail(subject, "Interdiff against v1:\n" + DIFF), "c.mbox")
    assert series.patches == []
    assert series.notes == [f"skipped cover letter: {strip_list_tags(subject)}"]


@pytest.mark.parametrize("subject, stripped", [
    ("[Linux-stm32] [PATCH 1/3] misc: x: y", "[PATCH 1/3] misc: x: y"),
    ("[f2fs-dev] [PATCH v2 3/10] f2fs: convert", "[PATCH v2 3/10] f2fs: convert"),
    ("[f2fs-dev] [Linux-stm32] [PATCH] a", "[PATCH] a"),
    ("Re: [f2fs-dev] [PATCH v2 3/10] f2fs: convert", "Re: [PATCH v2 3/10] f2fs: convert"),
    ("[RFC][PATCH 1/2] kept", "[RFC][PATCH 1/2] kept"),
    ("[PATCH] misc: [brackets] in the summary stay", "[PATCH] misc: [brackets] in the summary stay"),
    ("[f2fs-dev] f2fs: no patch tag", "f2fs: no patch tag"),
])
def test_list_tags_are_stripped(subject, stripped):
    assert strip_list_tags(subject) == stripped


def test_list_tag_is_gone_from_the_report():
    report = check_series(parse(mail("[Linux-stm32] [PATCH] misc: x: convert", DIFF), "t.mbox"))
    assert report.patches == ["[PATCH] misc: x: convert"]
    assert [f.patch for f in report.findings] == ["[PATCH] misc: x: convert"]


def test_same_message_id_is_one_message():
    one = mail("[PATCH] misc: x: convert", DIFF, "<same@example.org>")
    other_list = mail("[f2fs-dev] [PATCH] misc: x: convert", DIFF, "<same@example.org>",
                      "List-Id: <f2fs-dev.example.org>\n")
    report = check_series(read_inputs_bytes(one + b"\n" + other_list))
    assert [(f.line, f.code) for f in report.findings] == [(3, "MMC202")]
    assert report.notes == ["skipped a second copy of <same@example.org>: [PATCH] misc: x: convert"]


def read_inputs_bytes(data: bytes):
    """read_inputs on one mbox given as bytes."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "in.mbox"
        path.write_bytes(data)
        return read_inputs([path])


def test_newest_version_is_checked():
    v1 = mail("[PATCH 1/1] misc: x: convert", DIFF, "<v1@example.org>")
    v2 = mail("[PATCH v2 1/1] misc: x: convert", DIFF.replace("vm_flags_set(desc, VM_IO)",
                                                                          "vma_desc_set_flags(desc, VMA_IO_BIT)"),
              "<v2@example.org>")
    series = read_inputs_bytes(v2 + b"\n" + v1)
    assert [p.subject for p in series.patches] == ["[PATCH v2 1/1] misc: x: convert"]
    assert series.notes == ["skipped [PATCH 1/1] misc: x: convert: v2 of the series supersedes it"]
    assert check_series(series).findings == []


def test_partial_reroll_takes_the_rest_from_v1():
    v1 = b"\n".join(mail(f"[PATCH {n}/2] misc: x: part {n}", DIFF, f"<v1-{n}@example.org>")
                    for n in (1, 2))
    v2 = mail("[PATCH v2 2/2] misc: x: part 2", DIFF, "<v2-2@example.org>",
              "In-Reply-To: <v1-2@example.org>\n")
    series = read_inputs_bytes(v1 + b"\n" + v2)
    assert [p.subject for p in series.patches] == ["[PATCH 1/2] misc: x: part 1", "[PATCH v2 2/2] misc: x: part 2"]
    assert series.notes == ["took [PATCH 1/2] misc: x: part 1 from v1: v2 does not resend patch 1/2",
                            "skipped [PATCH 2/2] misc: x: part 2: v2 of the series supersedes it"]


def test_a_version_with_more_patches_supersedes_the_whole_older_one():
    # 15 patches in v1, 16 in v2 (as in the series the issue was found on): indices do not line up.
    v1 = b"\n".join(mail(f"[PATCH {n:02d}/15] d{n}: convert", DIFF, f"<a{n}@x>") for n in range(1, 16))
    v2 = b"\n".join(mail(f"[PATCH v2 {n:02d}/16] d{n}: convert", DIFF, f"<b{n}@x>") for n in range(1, 17))
    series = read_inputs_bytes(v1 + b"\n" + v2)
    assert [p.index for p in series.patches] == [(n, 16) for n in range(1, 17)]
    assert len([n for n in series.notes if n.startswith("skipped [PATCH ")]) == 15


def test_unrelated_patches_of_other_versions_are_kept():
    a = mail("[PATCH v3] misc: a: convert", DIFF, "<a@x>")
    b = mail("[PATCH] misc: b: convert", DIFF, "<b@x>")
    assert len(read_inputs_bytes(a + b"\n" + b).patches) == 2


def test_two_findings_of_one_rule_on_one_line_print_once():
    diff = """--- a/drivers/misc/x.c
+++ b/drivers/misc/x.c
@@ -1,4 +1,4 @@
 static int x_mmap_prepare(struct vm_area_desc *desc)
 {
-	return 0;
+	return vma_desc_test_any(desc, VM_READ, VM_WRITE) ? -EPERM : 0;
 }
"""
    report = check_series(parse(diff.encode(), "x.diff"))
    assert [(f.line, f.code) for f in report.findings] == [(3, "MMC203")]
    # lint keeps both: they are two masks.
    src = SourceFile.from_bytes("x.c", lay_out(PatchSet(diff)[0])[0].encode())
    assert [(f.line, f.code) for f in lint_source(src)] == [(3, "MMC203"), (3, "MMC203")]


# --- whole functions in hunks ------------------------------------------------------

def test_hunk_header_is_a_hint_not_code():
    # The hunk starts at the top level; git's header names the function before it.
    diff = """--- a/drivers/x.c
+++ b/drivers/x.c
@@ -10,2 +10,9 @@ static int prev_show(struct seq_file *m, void *v)
 
+static int x_mmap_prepare(struct vm_area_desc *desc)
+{
+	if (vma->vm_pgoff)
+		return -EINVAL;
+	vm_flags_set(desc, VM_IO);
+	return 0;
+}
 static int other(void)
"""
    text, real = lay_out(PatchSet(diff)[0])
    assert "prev_show" not in text
    assert real == set(range(10, 19))
    report = check_series(parse(diff.encode(), "x.diff"))
    assert [(f.line, f.code) for f in report.findings] == [(13, "MMC210"), (15, "MMC202")]


def make_repo(tmp_path: Path, path: str, old: str, new: str, context: int = 3) -> tuple[Path, str]:
    """A tree holding `old`, and the diff that makes it `new`."""
    tree = tmp_path / "tree"
    (tree / path).parent.mkdir(parents=True, exist_ok=True)
    (tree / path).write_text(old)
    other = tmp_path / "new"
    (other / path).parent.mkdir(parents=True, exist_ok=True)
    (other / path).write_text(new)
    diff = subprocess.run(["git", "diff", "--no-index", f"-U{context}", f"tree/{path}", f"new/{path}"],
                          cwd=tmp_path, capture_output=True, text=True).stdout
    diff = diff.replace(f"a/tree/{path}", f"a/{path}").replace(f"b/new/{path}", f"b/{path}")
    return tree, diff


LONG_OLD = """static int lg_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct lg_dev *dev = file->private_data;

	if (vma->vm_pgoff > 4)
		return -EINVAL;
	lg_log(dev, 1);
	lg_log(dev, 2);
	lg_log(dev, 3);
	lg_log(dev, 4);
	lg_log(dev, 5);
	lg_log(dev, 6);
	lg_log(dev, 7);
	lg_log(dev, 8);
	return remap_pfn_range(vma, vma->vm_start, dev->pfn, vma->vm_end - vma->vm_start, vma->vm_page_prot);
}

static const struct file_operations lg_fops = {
	.mmap = lg_mmap,
};
"""
LONG_NEW = LONG_OLD.replace("static int lg_mmap(struct file *file, struct vm_area_struct *vma)",
                            "static int lg_mmap_prepare(struct vm_area_desc *desc)") \
    .replace("file->private_data", "desc->file->private_data") \
    .replace("	return remap_pfn_range(vma, vma->vm_start, dev->pfn, vma->vm_end - vma->vm_start, vma->vm_page_prot);",
             "	mmap_action_remap_full(desc, dev->pfn);\n	return 0;") \
    .replace(".mmap = lg_mmap,", ".mmap_prepare = lg_mmap_prepare,")


def test_context_findings_need_the_whole_function_without_a_tree(tmp_path):
    tree, diff = make_repo(tmp_path, "drivers/misc/lg.c", LONG_OLD, LONG_NEW)
    assert diff.count("\n@@ ") == 2   # the signature and the vma line in one hunk, the end of the function in another
    hunks = check_series(parse(diff.encode(), "lg.diff"))
    assert [(f.line, f.code) for f in hunks.findings] == []
    whole = check_series(parse(diff.encode(), "lg.diff"), tree=tree)
    assert [(f.line, f.code) for f in whole.findings] == [(5, "MMC210")]
    # With the whole function in one hunk, the hunks are enough.
    _, wide = make_repo(tmp_path / "wide", "drivers/misc/lg.c", LONG_OLD, LONG_NEW, context=20)
    assert [(f.line, f.code) for f in check_series(parse(wide.encode(), "lg.diff")).findings] == [(5, "MMC210")]


def test_an_old_hook_edited_owns_only_its_added_lines(tmp_path):
    old = """static int ed_mmap_prepare(struct vm_area_desc *desc)
{
	if (vma->vm_pgoff)
		return -EINVAL;
	vma_desc_set_flags(desc, VMA_IO_BIT);
	return 0;
}
"""
    new = old.replace("	vma_desc_set_flags(desc, VMA_IO_BIT);", "	vma_desc_set_flags(desc, VMA_IO_BIT, VMA_DONTDUMP_BIT);")
    tree, diff = make_repo(tmp_path, "drivers/misc/ed.c", old, new)
    for t in (None, tree):
        assert check_series(parse(diff.encode(), "ed.diff"), tree=t).findings == []


def test_hook_assigned_in_another_file_of_the_series(tmp_path):
    # A uio hook takes two parameters; only its assignment says it is one.
    diff = """--- /dev/null
+++ b/drivers/uio/uio_x.c
@@ -0,0 +1,7 @@
+int uio_x_mmap_prepare(struct uio_info *info, struct vm_area_desc *desc)
+{
+	mmap_action_ioremap_full(desc, info->mem[0].addr >> PAGE_SHIFT);
+	mmap_action_ioremap_full(desc, info->mem[1].addr >> PAGE_SHIFT);
+	desc->action.error_hook = uio_x_error;
+	return 0;
+}
--- a/drivers/uio/uio_x_probe.c
+++ b/drivers/uio/uio_x_probe.c
@@ -1,3 +1,3 @@
 static int uio_x_probe(struct platform_device *pdev)
 {
-	info->mmap = uio_x_mmap;
+	info->mmap_prepare = uio_x_mmap_prepare;
"""
    report = check_series(parse(diff.encode(), "x.diff"))
    assert [(f.path, f.line, f.code) for f in report.findings] == [("drivers/uio/uio_x.c", 4, "MMC205")]
    alone = diff.split("--- a/drivers/uio/uio_x_probe.c")[0]
    assert check_series(parse(alone.encode(), "x.diff")).findings == []


def test_core_mm_is_no_hook():
    text = b"""static int call_action(struct vm_area_desc *desc)
{
	struct vm_area_struct *vma = desc->private_data;
	int err = mmap_action_prepare(&desc->action, desc);

	if (err)
		return err;
	desc->action.type = MMAP_NOTHING;
	mmap_action_remap(desc, vma->vm_start, 0, PAGE_SIZE);
	mmap_action_remap(desc, vma->vm_start, 0, PAGE_SIZE);
	return mmap_action_complete(&desc->action, vma);
}
"""
    assert lint_source(SourceFile.from_bytes("mm/util.c", text)) == []
    # The same function in a driver is taken for a hook.
    assert {f.code for f in lint_source(SourceFile.from_bytes("drivers/misc/util.c", text))} >= \
        {"MMC204", "MMC205", "MMC210"}


# --- MMC209: only when something is lost --------------------------------------------

@pytest.mark.parametrize("removed, expected", [
    (["\treturn remap_pfn_range(vma, vma->vm_start, pfn, size, vma->vm_page_prot);"], []),
    (["\tremap_pfn_range(vma, vma->vm_start, pfn, size, vma->vm_page_prot);", "\treturn 0;"], []),
    (["\tret = remap_pfn_range(vma, vma->vm_start, pfn, size, vma->vm_page_prot);", "\tif (ret)",
      "\t\treturn ret;", "\treturn 0;"], []),
    (["\tint ret = io_remap_pfn_range(vma, vma->vm_start, pfn, size, vma->vm_page_prot);", "",
      "\tif (ret < 0) {", "\t\tpr_err(\"x: remap failed\\n\");", "\t\treturn ret;", "\t}", "\treturn 0;"], []),
    (["\tif (remap_pfn_range(vma, vma->vm_start, pfn, size, vma->vm_page_prot) < 0) {",
      "\t\tpr_err(\"x: remap failed\\n\");", "\t\treturn -ENXIO;", "\t}", "\treturn 0;"], [("warning", "-ENXIO")]),
    (["\tret = vm_iomap_memory(vma, phys, size);", "\tif (ret)", "\t\treturn -EAGAIN;", "\treturn 0;"],
     [("warning", "-EAGAIN")]),
    (["\treturn remap_pfn_range(vma, vma->vm_start, pfn, size, vma->vm_page_prot) ? -EAGAIN : 0;"],
     [("warning", "-EAGAIN")]),
    # Not knowable from the removed lines: lint's informational finding.
    (["\tif (remap_pfn_range(vma, vma->vm_start, pfn, size, vma->vm_page_prot))", "\t\tgoto fail;"],
     [("info", "e.g. -EAGAIN")]),
    # A `return -EINVAL` further down is another path's, not the remap's.
    (["\treturn remap_pfn_range(vma, vma->vm_start, pfn, size, vma->vm_page_prot);", "}", "",
      "static int y(void)", "{", "\treturn -EINVAL;"], []),
])
def test_remap_error_outcomes(removed, expected):
    added = ["+\tmmap_action_remap_full(desc, pfn);", "+\treturn 0;"]
    body = [" static int x_mmap_prepare(struct vm_area_desc *desc)", " {", *("-" + r for r in removed), *added, " }"]
    old = sum(1 for line in body if not line.startswith("+"))
    new = sum(1 for line in body if not line.startswith("-"))
    diff = f"--- a/drivers/x.c\n+++ b/drivers/x.c\n@@ -1,{old} +1,{new} @@\n" + "\n".join(body) + "\n"
    found = [f for f in check_series(parse(diff.encode(), "x.diff")).findings if f.code == "MMC209"]
    assert [(f.severity, word in f.message) for f, (_, word) in zip(found, expected)] == \
        [(severity, True) for severity, _ in expected]
    assert len(found) == len(expected)


def test_message_id_headers_are_read_raw():
    # The email package's Message-ID parser recurses once per `(`: ids are read from the raw text.
    data = mail("[PATCH] misc: x: convert", DIFF, "<x@y>",
                "References: " + "(" * 3000 + " <a@b>" * 2000 + "\nIn-Reply-To: " + "(" * 3000 + "\n")
    series = parse(data.replace(b"Message-ID: <x@y>", b"Message-ID: " + b"(" * 3000 + b" <x@y>"), "h.mbox")
    assert [(p.message_id, len(p.references)) for p in series.patches] == [("<x@y>", 2000)]
