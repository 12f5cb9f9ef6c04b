"""Fixture tests for `mmapconv scan` (issue 2, item 8) and its bad-input handling (item 9).

The fixtures under fixtures/scan/ are small hand-written drivers, one concern
each (see the header comment of every file). Every table below is explicit:
one row per instance or per callback, with the exact values expected.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmapconv.cli import main
from mmapconv.scan import Scanner

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "scan"
FOPS = "file_operations"




@pytest.fixture(scope="module")
def result():
    return Scanner(FIXTURES).scan([FIXTURES])


@pytest.fixture(scope="module")
def result_all():
    return Scanner(FIXTURES, all_ops=True).scan([FIXTURES])


def function(result, path: str, name: str):
    found = [f for f in result.functions if f.path == path and f.function == name]
    assert len(found) == 1, f"{path}:{name}: {len(found)} function results"
    return found[0]


def instance(result, path: str, line: int):
    found = [ri for ri in result.instances if ri.instance.path == path and ri.instance.line == line]
    assert len(found) == 1, f"{path}:{line}: {len(found)} instances"
    return found[0]


# --------------------------------------------------------------------------
# Discovery: every file_operations .mmap instance.
# (path, line, function as written, via_macro, resolution, definition "path:line")

INSTANCES = [
    ("drivers/char/cat_b_iomap.c", 25, "win_mmap", None, "function", "drivers/char/cat_b_iomap.c:14"),
    ("drivers/char/cat_b_remap.c", 43, "regs_mmap", None, "function", "drivers/char/cat_b_remap.c:15"),
    ("drivers/char/cat_b_remap.c", 48, "sram_mmap", None, "function", "drivers/char/cat_b_remap.c:32"),
    ("drivers/duo/duo_main.c", 28, "duo_mmap", None, "function", "drivers/duo/duo_main.c:10"),
    ("drivers/duo/duo_main.c", 33, "duo_log_mmap", None, "function", "drivers/duo/duo_main.c:19"),
    # header macro, one instance per expansion site, resolved to the non-static definition elsewhere
    ("drivers/foo/foo_alpha.c", 8, "foo_common_mmap", "DEFINE_FOO_FOPS", "function", "drivers/foo/foo_common.c:20"),
    ("drivers/foo/foo_alpha.c", 23, "foo_alpha_dbg_mmap", "DEFINE_FOO_PREFIX_FOPS", "function",
     "drivers/foo/foo_alpha.c:15"),
    ("drivers/foo/foo_beta.c", 8, "foo_common_mmap", "DEFINE_FOO_FOPS", "function", "drivers/foo/foo_common.c:20"),
    ("drivers/media/fixgrab.c", 24, "fixgrab_mmap", None, "function", "drivers/media/fixgrab.c:14"),
    ("drivers/misc/cat_a_describe.c", 47, "descr_mmap", None, "function", "drivers/misc/cat_a_describe.c:23"),
    ("drivers/misc/cat_c_pages.c", 42, "ring_mmap", None, "function", "drivers/misc/cat_c_pages.c:14"),
    ("drivers/misc/cat_c_pages.c", 47, "pages_mmap", None, "function", "drivers/misc/cat_c_pages.c:24"),
    ("drivers/misc/cat_e_alloc.c", 49, "shadow_mmap", None, "function", "drivers/misc/cat_e_alloc.c:31"),
    ("drivers/misc/cat_e_count.c", 51, "cnt_atomic_mmap", None, "function", "drivers/misc/cat_e_count.c:19"),
    ("drivers/misc/cat_e_count.c", 56, "cnt_refcount_mmap", None, "function", "drivers/misc/cat_e_count.c:28"),
    ("drivers/misc/cat_e_count.c", 61, "cnt_pm_mmap", None, "function", "drivers/misc/cat_e_count.c:37"),
    ("drivers/misc/cat_e_open.c", 50, "vopen_ops_mmap", None, "function", "drivers/misc/cat_e_open.c:32"),
    ("drivers/misc/cat_e_open.c", 55, "vopen_direct_mmap", None, "function", "drivers/misc/cat_e_open.c:40"),
    ("drivers/misc/cat_e_record.c", 38, "rec_store_mmap", None, "function", "drivers/misc/cat_e_record.c:15"),
    ("drivers/misc/cat_e_record.c", 43, "rec_flag_mmap", None, "function", "drivers/misc/cat_e_record.c:26"),
    ("drivers/misc/cat_g_dma.c", 36, "dbuf_coherent_mmap", None, "function", "drivers/misc/cat_g_dma.c:17"),
    ("drivers/misc/cat_g_dma.c", 41, "dbuf_wc_mmap", None, "function", "drivers/misc/cat_g_dma.c:27"),
    ("drivers/misc/cat_h_vmalloc.c", 24, "vbuf_mmap", None, "function", "drivers/misc/cat_h_vmalloc.c:14"),
    ("drivers/misc/cat_i_other.c", 86, "other_bars_mmap", None, "function", "drivers/misc/cat_i_other.c:23"),
    ("drivers/misc/cat_i_other.c", 91, "other_split_mmap", None, "function", "drivers/misc/cat_i_other.c:39"),
    ("drivers/misc/cat_i_other.c", 96, "other_locked_mmap", None, "function", "drivers/misc/cat_i_other.c:54"),
    ("drivers/misc/cat_i_other.c", 101, "other_anon_mmap", None, "function", "drivers/misc/cat_i_other.c:66"),
    ("drivers/misc/cat_i_other.c", 106, "other_unknown_mmap", None, "function", "drivers/misc/cat_i_other.c:73"),
    # `#define alias_mmap alias_do_mmap`: the instance keeps the written name, resolves through the alias
    ("drivers/misc/disc_alias.c", 51, "alias_mmap", None, "function", "drivers/misc/disc_alias.c:23"),
    ("drivers/misc/disc_alias.c", 56, "alias_cfg_mmap", None, "function", "drivers/misc/disc_alias.c:30"),
    # array of fops, plain and with designated indices
    ("drivers/misc/disc_array.c", 34, "arr_ctrl_mmap", None, "function", "drivers/misc/disc_array.c:16"),
    ("drivers/misc/disc_array.c", 39, "arr_data_mmap", None, "function", "drivers/misc/disc_array.c:24"),
    ("drivers/misc/disc_array.c", 46, "arr_ctrl_mmap", None, "function", "drivers/misc/disc_array.c:16"),
    ("drivers/misc/disc_array.c", 50, "arr_data_mmap", None, "function", "drivers/misc/disc_array.c:24"),
    # config variants: two definitions, the first one's line
    ("drivers/misc/disc_config.c", 53, "cfg_mmap", None, "function", "drivers/misc/disc_config.c:15"),
    ("drivers/misc/disc_config.c", 58, "cfg_mixed_mmap", None, "function", "drivers/misc/disc_config.c:34"),
    # fragment macro inside two initializers of this file
    ("drivers/misc/disc_fragment.c", 40, "frag_mmap", "FRAG_FOPS_COMMON", "function", "drivers/misc/disc_fragment.c:25"),
    ("drivers/misc/disc_fragment.c", 45, "frag_mmap", "FRAG_FOPS_COMMON", "function", "drivers/misc/disc_fragment.c:25"),
    ("drivers/misc/disc_helper.c", 63, "hlp_setup_mmap", None, "function", "drivers/misc/disc_helper.c:38"),
    ("drivers/misc/disc_helper.c", 68, "hlp_map_mmap", None, "function", "drivers/misc/disc_helper.c:46"),
    ("drivers/misc/disc_helper.c", 73, "hlp_track_mmap", None, "function", "drivers/misc/disc_helper.c:53"),
    # entries right after #ifdef, right after #endif, and on both sides of #else
    ("drivers/misc/disc_ifdef.c", 37, "ifd_mmap", None, "function", "drivers/misc/disc_ifdef.c:15"),
    ("drivers/misc/disc_ifdef.c", 48, "ifd_mmap", None, "function", "drivers/misc/disc_ifdef.c:15"),
    ("drivers/misc/disc_ifdef.c", 54, "ifd_wc_mmap", None, "function", "drivers/misc/disc_ifdef.c:21"),
    ("drivers/misc/disc_ifdef.c", 56, "ifd_uc_mmap", None, "function", "drivers/misc/disc_ifdef.c:27"),
    # compound literal nested in a miscdevice initializer
    ("drivers/misc/disc_nested.c", 34, "nest_mmap", None, "function", "drivers/misc/disc_nested.c:17"),
    pytest.param("drivers/misc/disc_nested.c", 44, "nest_node_mmap", None, "function", "drivers/misc/disc_nested.c:23"),
    ("drivers/misc/disc_null.c", 17, "NULL", None, "null", None),
    ("drivers/misc/disc_unresolved.c", 12, "vendor_blob_mmap", None, "unresolved", None),
    ("drivers/misc/trap_state.c", 55, "trap_static_mmap", None, "function", "drivers/misc/trap_state.c:23"),
    ("drivers/misc/trap_state.c", 60, "trap_handle_mmap", None, "function", "drivers/misc/trap_state.c:32"),
    ("drivers/misc/trap_state.c", 65, "trap_req_mmap", None, "function", "drivers/misc/trap_state.c:41"),
    ("drivers/sound/fixsnd.c", 23, "fixsnd_mmap", None, "function", "drivers/sound/fixsnd.c:14"),
    # callback defined in another file of the driver
    ("drivers/split/split_main.c", 17, "split_mmap", None, "function", "drivers/split/split_mmap.c:10"),
    ("drivers/stack/cat_f_stack.c", 45, "stack_ops_mmap", None, "function", "drivers/stack/cat_f_stack.c:18"),
    ("drivers/stack/cat_f_stack.c", 50, "stack_backing_mmap", None, "function", "drivers/stack/cat_f_stack.c:27"),
    ("drivers/stack/cat_f_stack.c", 55, "stack_vfs_mmap", None, "function", "drivers/stack/cat_f_stack.c:36"),
    # same-name statics: each resolves to its own file
    ("drivers/twin/twin_a.c", 23, "dev_mmap", None, "function", "drivers/twin/twin_a.c:13"),
    ("drivers/twin/twin_b.c", 24, "dev_mmap", None, "function", "drivers/twin/twin_b.c:14"),
    ("fs/fixfs/file.c", 36, "fixfs_file_mmap", None, "function", "fs/fixfs/file.c:14"),
    ("fs/fixfs/file.c", 43, "fixfs_ro_mmap", None, "function", "fs/fixfs/file.c:25"),
    # the generic helper is not defined in the fixture tree
    ("fs/fixfs/file.c", 49, "generic_file_readonly_mmap", None, "function", "mm/filemap.c:0"),
    # a header macro built on a fragment macro of another header
    ("drivers/bar/bar_one.c", 9, "bar_common_mmap", "DEFINE_BAR_FOPS", "function", "drivers/bar/bar_core.c:14"),
    # a file with a fops of its own, analysed before the derived macro it also uses was known
    ("drivers/bar/bar_two.c", 18, "bar_two_raw_mmap", None, "function", "drivers/bar/bar_two.c:11"),
    ("drivers/bar/bar_two.c", 21, "bar_common_mmap", "DEFINE_BAR_FOPS", "function", "drivers/bar/bar_core.c:14"),
]

# Every row above, whether the engine finds it today or not.
EXPECTED_INSTANCE_COUNT = 65
KNOWN_MISSING = {("drivers/misc/disc_nested.c", 44)}


def _row(p):
    return tuple(p.values) if hasattr(p, "values") else p


def test_instance_table_size():
    assert len(INSTANCES) == EXPECTED_INSTANCE_COUNT


@pytest.mark.parametrize("path,line,written,via_macro,resolution,definition", INSTANCES)
def test_instance(result, path, line, written, via_macro, resolution, definition):
    ri = instance(result, path, line)
    assert ri.instance.struct == FOPS
    assert ri.instance.member == "mmap"
    assert ri.instance.function == written
    assert ri.instance.via_macro == via_macro
    assert ri.resolution == resolution
    if definition is None:
        assert ri.function is None
    else:
        assert f"{ri.function.path}:{ri.function.line}" == definition


def test_instances_match_table(result):
    """Nothing found that the table does not list, no duplicates, nothing missing but the known defects."""
    expected = {(_row(r)[0], _row(r)[1]) for r in INSTANCES}
    found = [(ri.instance.path, ri.instance.line) for ri in result.instances]
    assert len(found) == len(set(found))
    assert set(found) - expected == set()
    assert expected - set(found) <= KNOWN_MISSING


def test_instance_count_exact(result):
    assert len(result.instances) == EXPECTED_INSTANCE_COUNT


@pytest.mark.parametrize("path", [
    "drivers/misc/none_nommap.c",      # fops without mmap
    "drivers/misc/none_prepared.c",    # already on .mmap_prepare
    "include/fixture/foo_fops.h",      # the macro body itself is not an instance
    "drivers/media/fixcam.c",          # v4l2_file_operations
    "net/fixproto/fixsock.c",          # proto_ops
    "drivers/video/fbdev/fixfb.c",     # fb_ops .fb_mmap, proc_ops .proc_mmap
    "lib/fixbuf/fixbuf.c",             # a hub, not a callback
])
def test_files_without_file_operations_instances(result, path):
    assert [ri for ri in result.instances if ri.instance.path == path] == []
    assert [f for f in result.functions if f.path == path] == []


def test_no_errors_on_fixtures(result):
    assert [(e.path, e.message) for e in result.errors] == []


# --------------------------------------------------------------------------
# Other ops structs: only with all_ops, never in the file_operations results.
# (path, line, struct, member, function)

OTHER_OPS = [
    ("drivers/media/fixcam.c", 20, "v4l2_file_operations", "mmap", "fixcam_mmap"),
    ("drivers/video/fbdev/fixfb.c", 22, "fb_ops", "fb_mmap", "fixfb_mmap"),
    ("drivers/video/fbdev/fixfb.c", 27, "proc_ops", "proc_mmap", "fixfb_proc_mmap"),
    ("net/fixproto/fixsock.c", 20, "proto_ops", "mmap", "fixsock_mmap"),
]


@pytest.mark.parametrize("path,line,struct,member,name", OTHER_OPS)
def test_other_ops_only_with_all_ops(result, result_all, path, line, struct, member, name):
    hits = [ri for ri in result_all.all_instances if ri.instance.path == path and ri.instance.line == line]
    assert len(hits) == 1
    assert (hits[0].instance.struct, hits[0].instance.member, hits[0].instance.function) == (struct, member, name)
    assert name not in {f.function for f in result_all.functions}
    assert name not in {f.function for f in result.functions}
    assert all(ri.instance.struct == FOPS for ri in result_all.instances)


def test_all_ops_does_not_change_file_operations_results(result, result_all):
    def key(r):
        return [(ri.instance.path, ri.instance.line, ri.instance.function, ri.resolution) for ri in r.instances]
    assert key(result_all) == key(result)
    assert [(f.path, f.function, f.verdict) for f in result_all.functions] == \
        [(f.path, f.function, f.verdict) for f in result.functions]


# --------------------------------------------------------------------------
# Classification: (file, function, primary, categories, verdict)

FUNCTIONS = [
    # a: only describes the mapping
    ("drivers/misc/cat_a_describe.c", "descr_mmap", "a", ["a"], "auto"),
    ("drivers/misc/disc_array.c", "arr_ctrl_mmap", "a", ["a"], "auto"),
    ("drivers/misc/disc_array.c", "arr_data_mmap", "a", ["a"], "auto"),
    ("drivers/misc/disc_ifdef.c", "ifd_mmap", "a", ["a"], "auto"),
    ("drivers/misc/disc_ifdef.c", "ifd_wc_mmap", "a", ["a"], "auto"),
    ("drivers/misc/disc_ifdef.c", "ifd_uc_mmap", "a", ["a"], "auto"),
    ("drivers/misc/disc_nested.c", "nest_mmap", "a", ["a"], "auto"),
    ("drivers/misc/disc_fragment.c", "frag_mmap", "a", ["a"], "auto"),
    ("drivers/misc/disc_alias.c", "alias_do_mmap", "a", ["a"], "auto"),
    # b: one remap
    ("drivers/char/cat_b_remap.c", "regs_mmap", "b", ["b", "a"], "auto"),
    ("drivers/char/cat_b_remap.c", "sram_mmap", "b", ["b"], "auto"),
    ("drivers/char/cat_b_iomap.c", "win_mmap", "b", ["b"], "auto"),
    ("drivers/foo/foo_common.c", "foo_common_mmap", "b", ["b"], "auto"),
    ("drivers/twin/twin_a.c", "dev_mmap", "b", ["b"], "auto"),
    ("drivers/misc/disc_config.c", "cfg_mmap", "b", ["b", "a"], "auto"),
    # c: pages over the VMA
    ("drivers/misc/cat_c_pages.c", "ring_mmap", "c", ["c", "a"], "auto"),
    # conservative: the vm_insert_page loop is refused by the converter
    ("drivers/misc/cat_c_pages.c", "pages_mmap", "c", ["c"], "manual"),
    # d: generic file mmap
    ("fs/fixfs/file.c", "fixfs_file_mmap", "d", ["d"], "auto"),
    ("fs/fixfs/file.c", "fixfs_ro_mmap", "d", ["d"], "auto"),
    # a core helper with an mmap_prepare twin, resolved by name outside the tree
    ("mm/filemap.c", "generic_file_readonly_mmap", "d", ["d"], "auto"),
    # e: per-mapping state
    ("drivers/misc/cat_e_alloc.c", "shadow_mmap", "e", ["e"], "manual"),
    ("drivers/misc/cat_e_count.c", "cnt_atomic_mmap", "e", ["e", "a"], "manual"),
    ("drivers/misc/cat_e_count.c", "cnt_refcount_mmap", "e", ["e"], "manual"),
    ("drivers/misc/cat_e_count.c", "cnt_pm_mmap", "e", ["e", "b"], "manual"),
    ("drivers/misc/cat_e_open.c", "vopen_ops_mmap", "e", ["e"], "manual"),
    ("drivers/misc/cat_e_open.c", "vopen_direct_mmap", "e", ["e"], "manual"),
    ("drivers/misc/cat_e_record.c", "rec_store_mmap", "e", ["e", "a"], "manual"),
    ("drivers/misc/cat_e_record.c", "rec_flag_mmap", "e", ["e"], "manual"),
    ("drivers/twin/twin_b.c", "dev_mmap", "e", ["e"], "manual"),
    ("drivers/foo/foo_alpha.c", "foo_alpha_dbg_mmap", "e", ["e"], "manual"),
    ("drivers/misc/disc_config.c", "cfg_mixed_mmap", "e", ["e", "b"], "manual"),
    ("drivers/misc/disc_helper.c", "hlp_track_mmap", "e", ["e", "a"], "manual"),
    ("drivers/duo/duo_main.c", "duo_log_mmap", "e", ["e", "c"], "manual"),
    pytest.param("drivers/misc/trap_state.c", "trap_static_mmap", "e", ["e", "a"], "manual"),
    ("drivers/misc/disc_nested.c", "nest_node_mmap", "a", ["a"], "auto"),
    ("drivers/bar/bar_core.c", "bar_common_mmap", "a", ["a"], "auto"),
    ("drivers/bar/bar_two.c", "bar_two_raw_mmap", "a", ["a"], "auto"),
    pytest.param("drivers/misc/trap_state.c", "trap_handle_mmap", "e", ["e", "a"], "manual"),
    pytest.param("drivers/misc/trap_state.c", "trap_req_mmap", "e", ["e", "a"], "manual"),
    # f: delegation
    ("drivers/stack/cat_f_stack.c", "stack_ops_mmap", "f", ["f"], "manual"),
    ("drivers/stack/cat_f_stack.c", "stack_backing_mmap", "f", ["f"], "manual"),
    ("drivers/stack/cat_f_stack.c", "stack_vfs_mmap", "f", ["f"], "manual"),
    ("drivers/sound/fixsnd.c", "fixsnd_mmap", "f", ["f"], "manual"),
    ("drivers/media/fixgrab.c", "fixgrab_mmap", "f", ["f", "a"], "manual"),
    # g, h
    ("drivers/misc/cat_g_dma.c", "dbuf_coherent_mmap", "g", ["g"], "manual"),
    ("drivers/misc/cat_g_dma.c", "dbuf_wc_mmap", "g", ["g"], "manual"),
    ("drivers/misc/cat_h_vmalloc.c", "vbuf_mmap", "h", ["h", "a"], "manual"),
    # i
    ("drivers/misc/cat_i_other.c", "other_bars_mmap", "i", ["i"], "manual"),
    ("drivers/misc/cat_i_other.c", "other_split_mmap", "i", ["i", "b"], "manual"),
    ("drivers/misc/cat_i_other.c", "other_locked_mmap", "i", ["i", "b"], "manual"),
    ("drivers/misc/cat_i_other.c", "other_anon_mmap", "i", ["i"], "manual"),
    ("drivers/misc/cat_i_other.c", "other_unknown_mmap", "i", ["i", "a"], "manual"),
    # vma helpers followed one call deep; conservative manual: the converter
    # refuses to rewrite a helper together with its caller
    ("drivers/misc/disc_helper.c", "hlp_setup_mmap", "a", ["a"], "manual"),
    ("drivers/misc/disc_helper.c", "hlp_map_mmap", "b", ["b"], "manual"),
    ("drivers/duo/duo_main.c", "duo_mmap", "b", ["b"], "manual"),
    pytest.param("drivers/split/split_mmap.c", "split_mmap", "b", ["b", "a"], "manual"),
]


@pytest.mark.parametrize("path,name,primary,categories,verdict", FUNCTIONS)
def test_classification(result, path, name, primary, categories, verdict):
    fn = function(result, path, name)
    assert fn.categories == categories
    assert fn.primary == primary
    assert fn.verdict == verdict


def test_every_function_is_in_the_table(result):
    listed = {(_row(r)[0], _row(r)[1]) for r in FUNCTIONS}
    # alias_direct_mmap stands for alias_cfg_mmap, judged in test_alias_config_variants_both_count
    listed.add(("drivers/misc/disc_alias.c", "alias_direct_mmap"))
    assert {(f.path, f.function) for f in result.functions} == listed


def test_no_false_auto_outside_a_b_c_d(result):
    for fn in result.functions:
        if fn.verdict == "auto":
            assert set(fn.categories) <= {"a", "b", "c", "d"}, fn.function


# Reason codes per callback: (file, function, {(line, code)})
REASONS = [
    ("drivers/misc/cat_a_describe.c", "descr_mmap", {(35, "flags"), (36, "flags"), (37, "flags"), (41, "marks")}),
    ("drivers/char/cat_b_remap.c", "regs_mmap", {(24, "flags"), (26, "remap")}),
    ("drivers/misc/cat_e_alloc.c", "shadow_mmap", {(36, "per-mapping-state"), (39, "per-mapping-state"),
                                                        (40, "writes-state"), (41, "writes-state")}),
    ("drivers/misc/cat_e_count.c", "cnt_pm_mmap", {(42, "per-mapping-state"), (45, "remap")}),
    ("drivers/misc/cat_e_open.c", "vopen_ops_mmap", {(36, "manual-open")}),
    ("drivers/misc/cat_e_open.c", "vopen_direct_mmap", {(44, "manual-open")}),
    ("drivers/misc/cat_e_record.c", "rec_store_mmap", {(21, "stores-vma"), (22, "flags")}),
    ("drivers/misc/cat_e_record.c", "rec_flag_mmap", {(30, "writes-state"), (31, "writes-state")}),
    ("drivers/stack/cat_f_stack.c", "stack_ops_mmap", {(24, "delegates")}),
    ("drivers/stack/cat_f_stack.c", "stack_backing_mmap", {(33, "delegates")}),
    ("drivers/misc/cat_g_dma.c", "dbuf_wc_mmap", {(31, "dma-mmap")}),
    ("drivers/misc/cat_h_vmalloc.c", "vbuf_mmap", {(18, "flags"), (19, "vmalloc-remap")}),
    ("drivers/misc/cat_i_other.c", "other_bars_mmap", {(30, "remap-loop")}),
    ("drivers/misc/cat_i_other.c", "other_locked_mmap", {(59, "lock-around-action"), (60, "remap"),
                                                         (62, "lock-around-action")}),
    ("drivers/misc/cat_i_other.c", "other_anon_mmap", {(69, "unsupported")}),
    ("drivers/misc/cat_i_other.c", "other_unknown_mmap", {(77, "unknown-call"), (80, "flags")}),
    ("drivers/misc/disc_helper.c", "hlp_track_mmap", {(57, "flags"), (58, "per-mapping-state")}),
]


@pytest.mark.parametrize("path,name,expected", REASONS)
def test_reasons(result, path, name, expected):
    fn = function(result, path, name)
    got = {(r.line, r.code) for r in fn.reasons if r.code not in ("refused", "not-convertible")}
    assert got == expected


@pytest.mark.parametrize("path,name,delegates", [
    ("drivers/stack/cat_f_stack.c", "stack_ops_mmap", ["sd->ops->mmap"]),
    ("drivers/stack/cat_f_stack.c", "stack_backing_mmap", ["call_mmap"]),
    ("drivers/stack/cat_f_stack.c", "stack_vfs_mmap", ["vfs_mmap"]),
    ("drivers/sound/fixsnd.c", "fixsnd_mmap", ["fixbuf_mmap_helper"]),
    ("drivers/media/fixgrab.c", "fixgrab_mmap", ["fixbuf_mmap_helper"]),
    ("drivers/misc/cat_a_describe.c", "descr_mmap", []),
    ("drivers/misc/disc_helper.c", "hlp_track_mmap", []),
    pytest.param("drivers/split/split_mmap.c", "split_mmap", []),
])
def test_delegates_to(result, path, name, delegates):
    assert function(result, path, name).delegates_to == delegates


# Instances per function: macro expansions and arrays count each site.
@pytest.mark.parametrize("path,name,count", [
    ("drivers/foo/foo_common.c", "foo_common_mmap", 2),
    ("drivers/misc/disc_fragment.c", "frag_mmap", 2),
    ("drivers/misc/disc_array.c", "arr_ctrl_mmap", 2),
    ("drivers/misc/disc_array.c", "arr_data_mmap", 2),
    ("drivers/misc/disc_ifdef.c", "ifd_mmap", 2),
    ("drivers/misc/disc_ifdef.c", "ifd_wc_mmap", 1),
    ("drivers/twin/twin_a.c", "dev_mmap", 1),
    ("drivers/twin/twin_b.c", "dev_mmap", 1),
])
def test_function_instance_counts(result, path, name, count):
    assert function(result, path, name).instances == count


def test_same_name_statics_resolve_to_their_own_file(result):
    a = instance(result, "drivers/twin/twin_a.c", 23).function
    b = instance(result, "drivers/twin/twin_b.c", 24).function
    assert a is not b
    assert (a.path, a.verdict) == ("drivers/twin/twin_a.c", "auto")
    assert (b.path, b.verdict) == ("drivers/twin/twin_b.c", "manual")


def test_config_variants_are_one_function_with_two_definitions(result):
    cfg = function(result, "drivers/misc/disc_config.c", "cfg_mmap")
    mixed = function(result, "drivers/misc/disc_config.c", "cfg_mixed_mmap")
    assert [s.line for s in cfg.summaries] == [15, 24]
    assert [s.line for s in mixed.summaries] == [34, 42]


def test_alias_config_variants_both_count(result):
    ri = instance(result, "drivers/misc/disc_alias.c", 56)
    assert ri.resolution == "function"
    assert ri.function.verdict == "manual"
    assert "config-alias" in {r.code for r in ri.function.reasons}


def test_prefix_macro_expands_the_pasted_name(result):
    ri = instance(result, "drivers/foo/foo_alpha.c", 23)
    assert ri.instance.function == "foo_alpha_dbg_mmap"
    assert ri.instance.text_path == "include/fixture/foo_fops.h"


# --------------------------------------------------------------------------
# Hubs: (function, blocked instances)

@pytest.mark.parametrize("name,blocked", [
    ("fixbuf_mmap_helper", 2),
    ("call_mmap", 1),
    ("vfs_mmap", 1),
    ("sd->ops->mmap", 1),
])
def test_hubs(result, name, blocked):
    assert dict(result.hubs)[name] == blocked


@pytest.mark.parametrize("name", ["descr_mmap", "foo_common_mmap", "shadow_mmap", "hlp_setup_vma", "hlp_track"])
def test_not_hubs(result, name):
    assert name not in dict(result.hubs)


def test_same_directory_helper_is_not_a_hub(result):
    assert "split_map_bar" not in dict(result.hubs)


# --------------------------------------------------------------------------
# CLI: JSON shape and text lines.

def _invoke(args):
    runner = CliRunner()
    return runner.invoke(main, ["scan", *args], catch_exceptions=False)


def test_cli_json_shape():
    res = _invoke([str(FIXTURES), "--format", "json"])
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert set(doc) >= {"instances", "functions", "hubs", "errors"}
    assert len(doc["instances"]) == len(Scanner(FIXTURES).scan([FIXTURES]).instances)
    for inst in doc["instances"]:
        assert set(inst) >= {"path", "line", "struct", "function", "via_macro"}
        assert inst["struct"] == FOPS
    for fn in doc["functions"]:
        assert set(fn) >= {"function", "path", "line", "categories", "primary", "verdict", "reasons",
                           "delegates_to", "instances"}
        assert fn["verdict"] in ("auto", "manual")
        assert fn["primary"] == fn["categories"][0]
        for r in fn["reasons"]:
            assert set(r) >= {"line", "code", "message"}
    for hub in doc["hubs"]:
        assert set(hub) >= {"function", "blocked_instances"}
    assert doc["errors"] == []
    by_site = {(i["path"], i["line"]): i for i in doc["instances"]}
    assert by_site[("drivers/foo/foo_beta.c", 8)]["via_macro"] == "DEFINE_FOO_FOPS"
    assert by_site[("drivers/misc/disc_ifdef.c", 37)]["function"] == "ifd_mmap"
    fns = {(f["path"], f["function"]): f for f in doc["functions"]}
    assert fns[("drivers/foo/foo_common.c", "foo_common_mmap")]["instances"] == 2
    assert fns[("drivers/misc/cat_e_alloc.c", "shadow_mmap")]["categories"] == ["e"]
    hubs = {hub["function"]: hub for hub in doc["hubs"]}
    assert hubs["fixbuf_mmap_helper"]["blocked_instances"] == 2
    assert hubs["fixbuf_mmap_helper"]["verdict"] == "not found"
    stack = hubs["stack_backing_mmap"]
    assert stack["verdict"] == "manual" and stack["definition"] == "drivers/stack/cat_f_stack.c:27"
    assert [b["code"] for b in stack["blockers"]] == ["delegates"]


def test_cli_json_all_ops_lists_other_structs():
    res = _invoke([str(FIXTURES), "--format", "json", "--all-ops"])
    doc = json.loads(res.stdout)
    structs = {(i["path"], i["struct"]) for i in doc["instances"]}
    assert ("drivers/media/fixcam.c", "v4l2_file_operations") in structs
    assert ("net/fixproto/fixsock.c", "proto_ops") in structs
    assert ("drivers/video/fbdev/fixfb.c", "fb_ops") in structs
    assert "fixcam_mmap" not in {f["function"] for f in doc["functions"]}


TEXT_LINE = re.compile(r"^(?P<path>[^:\s]+):(?P<line>\d+): (?P<function>\w+): (?P<verdict>auto|manual) "
                       r"\[(?P<categories>[a-i](?:,[a-i])*)\] (?P<reason>\S.*)$")


@pytest.mark.parametrize("line", [
    "drivers/misc/cat_a_describe.c:23: descr_mmap: auto [a] ",
    "drivers/char/cat_b_remap.c:15: regs_mmap: auto [b,a] ",
    "drivers/misc/cat_e_count.c:37: cnt_pm_mmap: manual [e,b] line 42: ",
    "drivers/misc/cat_i_other.c:54: other_locked_mmap: manual [i,b] line 59: ",
    "drivers/twin/twin_b.c:14: dev_mmap: manual [e] line 18: ",
    "fs/fixfs/file.c:14: fixfs_file_mmap: auto [d] ",
])
def test_cli_text_lines(line):
    res = _invoke([str(FIXTURES), "--format", "text"])
    assert res.exit_code == 0
    assert any(out.startswith(line) for out in res.stdout.splitlines()), line


def test_cli_text_format_every_line():
    res = _invoke([str(FIXTURES), "--format", "text"])
    lines = res.stdout.splitlines()
    callbacks = [ln for ln in lines if TEXT_LINE.match(ln)]
    others = [ln for ln in lines if not TEXT_LINE.match(ln) and ": hub: " not in ln]
    assert len(callbacks) == len(Scanner(FIXTURES).scan([FIXTURES]).functions)
    assert [ln for ln in lines if ": hub: " in ln] == [
        "-: hub: convert fixbuf_mmap_helper to unblock 2 instance(s): not found",
    ]
    assert sorted(others) == [
        "drivers/misc/disc_null.c:17: NULL: null",
        "drivers/misc/disc_unresolved.c:12: vendor_blob_mmap: unresolved",
    ]


# --------------------------------------------------------------------------
# Bad input (item 9), generated here rather than committed.

OK_C = (b"static int ok_mmap(struct file *file, struct vm_area_struct *vma)\n{\n"
        b"\tvm_flags_set(vma, VM_DONTEXPAND);\n\treturn 0;\n}\n\n"
        b"static const struct file_operations ok_fops = {\n\t.owner\t\t= THIS_MODULE,\n"
        b"\t.mmap\t\t= ok_mmap,\n};\n")
LATIN1_C = (b"/* Fran\xe7ois' driver */\nstatic const struct file_operations l1_fops = {\n"
            b"\t.mmap\t\t= l1_mmap,\n};\n")
NUL_C = b"static const struct file_operations nul_fops = {\n\t.mmap\t\t= nul_mmap,\n\0};\n"
LOCKED_C = b"static const struct file_operations lk_fops = {\n\t.mmap\t\t= lk_mmap,\n};\n"
# Missing commas: the `.mmap` after `THIS_MODULE` does not parse as a designator.
BROKEN_C = (b"static const struct file_operations br_fops = {\n\t.owner\t\t= THIS_MODULE\n"
            b"\t.mmap\t\t= br_mmap\n\t.open\t\t= br_open\n};\n")


@pytest.fixture
def bad_tree(tmp_path):
    d = tmp_path / "drv"
    d.mkdir()
    (d / "ok.c").write_bytes(OK_C)
    (d / "latin1.c").write_bytes(LATIN1_C)
    (d / "nul.c").write_bytes(NUL_C)
    locked = d / "locked.c"
    locked.write_bytes(LOCKED_C)
    locked.chmod(0)
    # Links are not followed (as grep -r does not): a dangling one is no error.
    (d / "gone.c").symlink_to(tmp_path / "nowhere.c")
    yield tmp_path
    locked.chmod(0o644)


def _errors_by_file(stderr: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for ln in stderr.splitlines():
        for name in ("latin1.c", "nul.c", "locked.c", "gone.c", "missing.c", "broken.c"):
            if name in ln:
                out.setdefault(name, []).append(ln)
    return out


def test_bad_input_text(bad_tree):
    res = _invoke([str(bad_tree / "drv"), str(bad_tree / "missing.c"), "--format", "text"])
    assert res.exit_code == 1
    # the good file is still scanned
    assert re.search(r"^drv/ok\.c:1: ok_mmap: auto \[a\] ", res.stdout, re.M)
    errors = _errors_by_file(res.stderr)
    expected = {"nul.c", "missing.c"}
    if os.geteuid() != 0:
        expected.add("locked.c")
    assert expected <= set(errors)
    for name in expected:
        assert len(errors[name]) == 1, errors[name]   # one line per bad file
    assert "binary" in errors["nul.c"][0]
    assert "no such file" in errors["missing.c"][0].lower()
    # A Latin-1 comment is text: the file is scanned like any other.
    assert "gone.c" not in errors and "latin1.c" not in errors
    assert re.search(r"^drv/latin1\.c:3: l1_mmap: unresolved", res.stdout, re.M)


def test_bad_input_json(bad_tree):
    res = _invoke([str(bad_tree / "drv"), str(bad_tree / "missing.c"), "--format", "json"])
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    failed = {Path(e["path"]).name for e in doc["errors"]}
    assert {"nul.c", "missing.c"} <= failed and not {"gone.c", "latin1.c"} & failed
    if os.geteuid() != 0:
        assert "locked.c" in failed
    readable = {"ok_mmap", "lk_mmap", "l1_mmap"} if os.geteuid() == 0 else {"ok_mmap", "l1_mmap"}
    assert {i["function"] for i in doc["instances"]} == readable


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a mode-000 file")
def test_unreadable_file_alone(bad_tree):
    res = _invoke([str(bad_tree / "drv" / "locked.c"), "--format", "text"])
    assert res.exit_code == 1
    lines = [ln for ln in res.stderr.splitlines() if "locked.c" in ln]
    assert len(lines) == 1 and "cannot read" in lines[0]


def test_missing_path_only():
    res = _invoke(["/nonexistent/mmapconv-fixture.c", "--format", "text"])
    assert res.exit_code == 1
    assert res.stdout == ""
    lines = [ln for ln in res.stderr.splitlines() if "mmapconv-fixture.c" in ln]
    assert len(lines) == 1


def test_bad_input_api(bad_tree):
    root = bad_tree / "drv"
    result = Scanner(root).scan([root])
    readable = {"ok_mmap", "lk_mmap", "l1_mmap"} if os.geteuid() == 0 else {"ok_mmap", "l1_mmap"}
    assert {ri.instance.function for ri in result.instances} == readable
    failed = {e.path for e in result.errors}
    assert "nul.c" in failed and not {"gone.c", "latin1.c"} & failed
    assert ("locked.c" in failed) == (os.geteuid() != 0)


def test_unparsable_initializer_is_reported(tmp_path):
    (tmp_path / "broken.c").write_bytes(BROKEN_C)
    (tmp_path / "ok.c").write_bytes(OK_C)
    res = _invoke([str(tmp_path), "--format", "text"])
    assert "ok_mmap" in res.stdout
    assert res.exit_code == 1
    assert len(_errors_by_file(res.stderr).get("broken.c", [])) == 1


@pytest.mark.parametrize("extra", [[], ["--all-ops"]])
def test_cli_rich_summary(extra):
    res = _invoke([str(FIXTURES), *extra])
    assert res.exit_code == 0
    n = len(Scanner(FIXTURES).scan([FIXTURES]).instances)
    assert f"{n} file_operations .mmap instances" in res.stdout


def test_header_with_its_own_fops_still_derives_a_macro(tmp_path):
    """A header analysed first (it has an .mmap of its own) that wraps another header's macro is analysed
    again once that macro is known: the files using its derived macro are found."""
    files = {
        "include/fixture/a.h": "#define A_FOPS \\\n\t.owner = THIS_MODULE, \\\n\t.mmap = a_common_mmap\n",
        "include/fixture/b.h": (
            "#include <fixture/a.h>\n"
            "int a_common_mmap(struct file *file, struct vm_area_struct *vma);\n"
            "static int b_mmap(struct file *file, struct vm_area_struct *vma) { return 0; }\n"
            "static const struct file_operations b_fops = { .mmap = b_mmap };\n"
            "#define DEFINE_B_FOPS(name) \\\n\tstatic const struct file_operations name = { A_FOPS, }\n"),
        "drivers/c/c.c": "#include <fixture/b.h>\n\nDEFINE_B_FOPS(c_fops);\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    result = Scanner(tmp_path, jobs=1).scan([tmp_path])
    assert ("drivers/c/c.c", 3, "DEFINE_B_FOPS") in {(ri.instance.path, ri.instance.line, ri.instance.via_macro)
                                                       for ri in result.instances}
