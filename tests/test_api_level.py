"""`--api auto`: the level of a kernel tree's headers, or of what a series uses and defines (fixtures/api_level/)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmapconv.api_level import (AUTO, NAMES, at_patch, best_level, detect_patch_target, detect_series, detect_tree, defines,
                                kernel_root, names_in, series_known, uses)
from mmapconv.cli import main
from mmapconv.lint import lint_paths
from mmapconv.lint.cli import check_patch_cmd, lint_cmd
from mmapconv.rules_data import load
from mmapconv.series import read_inputs

ROOT = Path(__file__).resolve().parent.parent
TREES = ROOT / "fixtures" / "api_level"
SERIES = TREES / "series"
MBOX = SERIES / "defines-helper.mbox"
PATCH_1 = SERIES / "0001-mm-add-mmap_action_simple_ioremap.patch"
PATCH_2 = SERIES / "0002-misc-add-lvl_win-driver.patch"
LEVEL_OF = {"linux-6.18": "6.18", "linux-7.0": "7.0", "linux-7.1": "newest"}


def run(command, args):
    return CliRunner().invoke(command, [str(a) for a in args])


def codes(findings, at_least="warning"):
    """[(file name, line, code)] of the findings at or above a severity."""
    order = ("info", "warning", "error")
    return [(Path(f.path).name, f.line, f.code) for f in findings
            if order.index(f.severity) >= order.index(at_least)]


def added_file(patch: Path) -> str:
    """The text of the one file a patch creates."""
    hunk = patch.read_text().split("\n@@ ", 1)[1].split("\n-- \n", 1)[0]
    return "".join(line[1:] + "\n" for line in hunk.splitlines()[1:] if line.startswith("+"))


# --- the data -------------------------------------------------------------------

def test_detection_knowledge_is_data():
    detect = load("api")["detect"]
    levels = set(load("api")["levels"])
    assert detect["hook"] in detect["names"]
    assert set(detect["names"][detect["hook"]]) == levels   # the hook marks no level: every level has it
    for name, at in detect["names"].items():
        assert at and set(at) <= levels, name
    # Each level has a name of its own or a set no other level matches.
    signatures = {lv: frozenset(n for n, at in NAMES.items() if lv in at) for lv in levels}
    assert len(set(signatures.values())) == len(levels)
    for level in levels:
        assert best_level(signatures[level]) == level


# --- a tree ---------------------------------------------------------------------

@pytest.mark.parametrize("tree,level", sorted(LEVEL_OF.items()))
def test_tree_level_from_its_headers(tree, level):
    found = detect_tree(TREES / tree / "drivers" / "misc" / "lvl_regs.c").detection
    assert (found.level, found.source, found.has_hook) == (level, "tree", True)
    assert found.tree == str(TREES / tree)
    assert found.detail.startswith(f"headers of {TREES / tree}")


def test_tree_without_the_hook():
    found = detect_tree(TREES / "linux-6.12").detection
    assert (found.level, found.source, found.has_hook, found.known) == ("newest", "tree", False, frozenset())
    assert "predates mmap_prepare" in found.detail


def test_no_tree_is_the_default_level(tmp_path):
    found = detect_tree(tmp_path).detection
    assert (found.level, found.source, found.tree) == ("newest", "default", None)


def test_kernel_root_needs_the_headers(tmp_path):
    """tools/ and some drivers have an include/linux and a Makefile of their own: not a kernel root."""
    tree = tmp_path / "linux"
    shutil.copytree(TREES / "linux-7.0", tree)
    tools = tree / "tools"
    (tools / "include" / "linux").mkdir(parents=True)
    (tools / "include" / "linux" / "mm.h").write_text("/* nothing */\n")
    (tools / "Makefile").write_text("all:\n")
    (tools / "x.c").write_text("int x;\n")
    assert kernel_root(tools / "x.c") == tree
    assert str(detect_tree(tools / "x.c")) == "7.0"


def test_names_in_reads_code_not_comments():
    code = b"""/* vma_desc_test() is the newest helper */
struct vm_area_desc { vma_flags_t vma_flags; };
struct vm_operations_struct { int (*mapped)(void); };
const char *s = "mmap_action_simple_ioremap";
"""
    assert names_in(code) == {"vm_area_desc.vma_flags", "vma_flags_t", "vm_operations_struct.mapped"}


def test_a_tree_between_levels(tmp_path):
    """A 7.0 tree that already has simple_ioremap: 7.0, and the helper is no finding."""
    tree = tmp_path / "linux"
    shutil.copytree(TREES / "linux-7.0", tree)
    mm = tree / "include" / "linux" / "mm.h"
    mm.write_text(mm.read_text().replace(
        "#endif /* _LINUX_MM_H */",
        "void mmap_action_simple_ioremap(struct vm_area_desc *desc, phys_addr_t start, unsigned long size);\n"
        "#endif /* _LINUX_MM_H */"))
    driver = tree / "drivers" / "misc" / "lvl_win.c"
    driver.write_text(added_file(PATCH_2))
    assert str(detect_tree(tree)) == "7.0"
    assert codes(lint_paths([driver]).findings, "info") == [("lvl_win.c", 19, "MMC209")]
    # The level asked is the target: there the helper is missing.
    assert codes(lint_paths([driver], "7.0").findings) == [("lvl_win.c", 19, "MMC303")]


# --- lint -----------------------------------------------------------------------

@pytest.mark.parametrize("tree", sorted(LEVEL_OF))
def test_each_tree_is_clean_at_its_own_level(tree):
    result = lint_paths([TREES / tree])
    assert result.errors == []
    assert codes(result.findings) == []
    assert [d.level for d in result.levels] == [LEVEL_OF[tree]]


SAME = ["linux-6.18", "linux-7.0", "linux-7.1"]


def test_the_same_driver_in_every_tree():
    texts = {(TREES / t / "drivers" / "misc" / "lvl_ring.c").read_bytes() for t in SAME}
    assert len(texts) == 1
    for tree in SAME:
        for level in ("newest", "7.0", "6.18"):
            assert codes(lint_paths([TREES / tree / "drivers" / "misc" / "lvl_ring.c"], level).findings) == []


# What each tree's lvl_regs.c gets at the other levels: what that level lacks.
AT_OTHER_LEVELS = {
    ("linux-6.18", "newest"): [("lvl_regs.c", 22, "MMC201"), ("lvl_regs.c", 24, "MMC201")],
    ("linux-6.18", "7.0"): [("lvl_regs.c", 22, "MMC201"), ("lvl_regs.c", 24, "MMC201")],
    ("linux-7.0", "newest"): [("lvl_regs.c", 22, "MMC301")],
    ("linux-7.0", "6.18"): [("lvl_regs.c", 22, "MMC301"), ("lvl_regs.c", 24, "MMC303")],
    ("linux-7.1", "7.0"): [("lvl_regs.c", 28, "MMC303"), ("lvl_regs.c", 41, "MMC301"), ("lvl_regs.c", 46, "MMC303")],
    ("linux-7.1", "6.18"): [("lvl_regs.c", 28, "MMC303"), ("lvl_regs.c", 41, "MMC303"), ("lvl_regs.c", 43, "MMC303"),
                            ("lvl_regs.c", 46, "MMC303")],
}


@pytest.mark.parametrize("tree,level", sorted(AT_OTHER_LEVELS))
def test_the_other_levels_find_what_they_lack(tree, level):
    driver = TREES / tree / "drivers" / "misc" / "lvl_regs.c"
    assert codes(lint_paths([driver], level).findings) == AT_OTHER_LEVELS[(tree, level)]
    assert codes(lint_paths([driver], LEVEL_OF[tree]).findings) == []
    assert codes(lint_paths([driver], AUTO).findings) == []


def test_lint_of_several_trees_at_their_levels():
    result = lint_paths([TREES])
    assert codes(result.findings) == [("lvl_old.c", 21, "MMC101")]
    assert sorted(d.level for d in result.levels) == ["6.18", "7.0", "newest", "newest"]


def test_level_in_every_format():
    args = ["--format", "json", TREES / "linux-7.0"]
    doc = json.loads(run(lint_cmd, args).stdout)
    assert doc["api"]["level"] == "7.0" and doc["api"]["source"] == "tree"
    assert doc["api"]["tree"] == str(TREES / "linux-7.0") and doc["api"]["mmap_prepare"] is True
    sarif = json.loads(run(lint_cmd, ["--format", "sarif", TREES / "linux-7.0"]).stdout)
    assert sarif["runs"][0]["properties"]["api"]["level"] == "7.0"
    text = run(lint_cmd, [TREES / "linux-6.18"])
    assert "note: API level 6.18 (headers of" in text.stderr
    several = json.loads(run(lint_cmd, ["--format", "json", TREES]).stdout)
    assert sorted(d["level"] for d in several["api_trees"]) == ["6.18", "7.0", "newest", "newest"]
    asked = json.loads(run(lint_cmd, ["--format", "json", "--api", "6.18", TREES / "linux-7.0"]).stdout)
    assert asked["api"] == {"level": "6.18", "source": "option", "detail": "--api", "tree": None,
                            "mmap_prepare": True}


# --- convert --------------------------------------------------------------------

def test_convert_on_a_tree_without_the_hook():
    result = CliRunner().invoke(main, ["convert", str(TREES / "linux-6.12")])
    assert result.exit_code == 0
    assert "+static int lvl_old_mmap_prepare(struct vm_area_desc *desc)" in result.stdout
    notes = [line for line in result.stderr.splitlines() if "mmap_prepare" in line]
    assert notes == [f"mmapconv convert: {TREES / 'linux-6.12'} has no mmap_prepare: the conversion is for the "
                     "newest API and builds only on a kernel that has it"]
    asked = CliRunner().invoke(main, ["convert", "--api", "6.18", str(TREES / "linux-6.12")])
    assert "for the 6.18 API" in asked.stderr


def test_convert_follows_the_tree_level(tmp_path):
    """The same callback converts with 7.0's test helper in a 7.0 tree, the newest one elsewhere."""
    callback = """// SPDX-License-Identifier: GPL-2.0
#include <linux/fs.h>
#include <linux/mm.h>

static unsigned long lvl_new_pfn;

static int lvl_new_mmap(struct file *file, struct vm_area_struct *vma)
{
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	return remap_pfn_range(vma, vma->vm_start, lvl_new_pfn,
			       vma->vm_end - vma->vm_start, vma->vm_page_prot);
}

static const struct file_operations lvl_new_fops = {
	.mmap		= lvl_new_mmap,
};
"""
    out = {}
    for tree in ("linux-7.0", "linux-7.1"):
        copy = tmp_path / tree
        shutil.copytree(TREES / tree, copy)
        (copy / "drivers" / "misc" / "lvl_new.c").write_text(callback)
        result = CliRunner().invoke(main, ["convert", str(copy)])
        assert result.exit_code == 0 and "has no mmap_prepare" not in result.stderr
        out[tree] = [line for line in result.stdout.splitlines() if "VMA_SHARED_BIT" in line]
    assert out == {"linux-7.0": ["+\tif (!vma_desc_test_flags(desc, VMA_SHARED_BIT))"],
                   "linux-7.1": ["+\tif (!vma_desc_test(desc, VMA_SHARED_BIT))"]}


# --- a series -------------------------------------------------------------------

def test_what_a_series_defines_and_uses():
    series = read_inputs([MBOX])
    assert defines(series.patches[0].diff) >= {"mmap_action_simple_ioremap"}
    assert uses(series.patches[1].diff) == {"vma_desc_test_flags", "vma_desc_set_flags",
                                            "mmap_action_simple_ioremap"}
    assert [("mmap_action_simple_ioremap" in k) for k in series_known(series)] == [True, True]
    found = detect_series(series).detection
    assert (found.level, found.source) == ("7.0", "series")
    assert "mmap_action_simple_ioremap" in found.names and found.known == frozenset()
    assert ["mmap_action_simple_ioremap" in at_patch(detect_series(series), n).detection.names
            for n in range(2)] == [True, True]


def test_a_name_is_known_from_the_patch_that_defines_it():
    """check-patch knows a name from the patch that adds it on (patch.py asks at_patch per patch)."""
    series = read_inputs([PATCH_2, PATCH_1])   # in series order: 1/2 defines, 2/2 uses
    level = detect_series(series)
    reordered = read_inputs([PATCH_2])
    reordered.patches = [series.patches[1], series.patches[0]]   # a use before the definition
    early = detect_series(reordered)
    assert "mmap_action_simple_ioremap" not in at_patch(early, 0).detection.names
    assert "mmap_action_simple_ioremap" in at_patch(early, 1).detection.names
    assert at_patch("7.0", 0) == "7.0"
    assert at_patch(level, 1).detection.names == level.detection.names


def test_descriptor_members_tell_the_level():
    diff = """--- a/drivers/misc/x.c
+++ b/drivers/misc/x.c
@@ -1,3 +1,6 @@
 static int x_mmap_prepare(struct vm_area_desc *d)
 {
+	d->vm_flags |= VM_IO;
+	/* not vma_desc_test_flags(): a comment */
 	return 0;
 }
"""
    assert uses(diff) == {"vm_area_desc.vm_flags"}


def test_a_series_of_no_level_is_the_default(tmp_path):
    found = detect_series(read_inputs([ROOT / "fixtures" / "series" / "series.mbox"])).detection
    assert found.level == "newest"


def check(args):
    result = run(check_patch_cmd, ["--format", "json", *args])
    doc = json.loads(result.stdout)
    return doc, [(f["path"], f["line"], f["code"]) for f in doc["findings"] if f["severity"] != "info"]


@pytest.mark.parametrize("inputs", [[MBOX], [PATCH_1, PATCH_2]], ids=["mbox", "format-patch"])
@pytest.mark.parametrize("tree", [None, TREES / "linux-7.0"], ids=["hunks", "tree"])
def test_a_series_that_defines_its_helper_is_clean(inputs, tree):
    doc, found = check(([f"--tree={tree}"] if tree else []) + inputs)
    assert found == []
    assert doc["api"]["level"] == "7.0"
    assert doc["api"]["source"] == ("tree" if tree else "series")
    assert [f["line"] for f in doc["findings"]] == [19]   # MMC209, an info


def test_the_second_patch_alone():
    doc, found = check([PATCH_2])
    assert found == [("drivers/misc/lvl_win.c", 15, "MMC301")]
    assert doc["api"]["level"] == "newest" and "different levels" in doc["api"]["detail"]
    doc, found = check(["--tree", TREES / "linux-7.0", PATCH_2])
    assert found == [("drivers/misc/lvl_win.c", 19, "MMC303")]
    assert doc["api"]["level"] == "7.0"


def test_an_asked_level_still_knows_what_the_series_defines():
    doc, found = check(["--api", "7.0", MBOX])
    assert found == []
    doc, found = check(["--api", "newest", MBOX])
    assert found == [("drivers/misc/lvl_win.c", 15, "MMC301")]
    assert doc["api"]["source"] == "option"


def test_a_tree_without_the_hook_leaves_the_level_to_the_series():
    series = read_inputs([MBOX])
    found = detect_patch_target(series, TREES / "linux-6.12").detection
    assert (found.level, found.has_hook) == ("7.0", False)
    assert "predates mmap_prepare" in found.detail


def test_check_patch_text_names_the_level():
    result = run(check_patch_cmd, [MBOX])
    assert "note: API level 7.0 (what the series uses:" in result.stderr
