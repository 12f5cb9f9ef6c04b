"""The lint engine and its rule catalogue, on the fixtures under fixtures/lint/."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmapconv.lint import API_LEVELS, RULES, lint_paths, lint_source
from mmapconv.lint.catalogue import FIXES
from mmapconv.lint.cli import lint_cmd, rule_cmd, rules_cmd
from mmapconv.lint.registry import CHECKS
from mmapconv.source import SourceFile

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lint"
CASES = sorted(FIXTURES.glob("*.c"))


def expected(case: Path) -> dict[str, list]:
    """API level -> the [line, code] findings the case gives at that level."""
    return json.loads(case.with_suffix(".json").read_text())["findings"]


LEVEL_CASES = [(case, api) for case in CASES for api in expected(case)]


@pytest.mark.parametrize("case,api", LEVEL_CASES, ids=lambda v: v.stem if isinstance(v, Path) else v)
def test_fixture_findings(case, api):
    findings = lint_paths([case], api).findings
    assert [[f.line, f.code] for f in findings] == expected(case)[api]


def test_every_rule_has_a_fixture_that_fires_it():
    fired = {code for case in CASES for findings in expected(case).values() for _, code in findings}
    assert fired == set(RULES)


def test_catalogue_and_registry_agree():
    registered = {code for codes in CHECKS.values() for code in codes}
    assert registered == set(RULES)
    for rule in RULES.values():
        assert re.fullmatch(r"MMC[123]\d\d", rule.code)
        assert rule.severity in ("error", "warning", "info")
        assert rule.fix_safety in ("safe", "unsafe", "none")
        for text in (rule.name, rule.message, rule.what, rule.why, rule.example, rule.fix, rule.fixed):
            assert text.strip()


def test_deprecated_mmap_carries_the_scanner_verdict():
    by_line = {f.line: f for f in lint_paths([FIXTURES / "deprecated_mmap.c"]).findings}
    assert "demo_mmap: auto-fixable by `mmapconv convert`" in by_line[23].message
    assert by_line[23].fix_safety == "safe"
    assert "counted_mmap: manual: atomic_inc()" in by_line[28].message
    assert by_line[28].fix_safety == "none"


def test_messages_name_the_fix():
    messages = {(f.line, f.code): f.message for f in lint_paths([FIXTURES / "legacy_flags.c"]).findings}
    assert "vma_desc_set_flags(desc, VMA_IO_BIT, VMA_DONTEXPAND_BIT)" in messages[(10, "MMC202")]
    assert "VMA_SHARED_BIT" in messages[(12, "MMC203")]
    ranges = {f.line: f.message for f in lint_paths([FIXTURES / "remap_range.c"]).findings}
    assert ranges[14].endswith("ends past desc->end")
    assert ranges[21].endswith("starts before desc->start")


def test_suppression_forms():
    src = SourceFile.from_bytes("s.c", b"""\
static int a_mmap_prepare(struct vm_area_desc *desc)
{
	vm_flags_set(desc, VM_IO);	/* mmapconv: ignore[MMC202] */
	vm_flags_set(desc, VM_IO);	// mmapconv: ignore[mmc203, MMC202]
	vm_flags_set(desc, VM_IO);	/* mmapconv: ignore */
	vm_flags_set(desc, VM_IO);	/* mmapconv: ignore[MMC203] */
	return 0;
}
""")
    assert [(f.line, f.code) for f in lint_source(src)] == [(6, "MMC202")]


def test_prepare_function_by_signature_or_assignment():
    src = SourceFile.from_bytes("p.c", b"""\
static int by_signature(struct vm_area_desc *desc)
{
	vm_flags_set(desc, VM_IO);
	return 0;
}
static int by_assignment(struct uio_info *info, struct vm_area_desc *d)
{
	vm_flags_set(d, VM_IO);
	return 0;
}
static int neither(struct uio_info *info, struct vm_area_desc *d)
{
	vm_flags_set(d, VM_IO);
	return 0;
}
static struct uio_info info = { .mmap_prepare = by_assignment };
""")
    assert [(f.line, f.code) for f in lint_source(src)] == [(3, "MMC202"), (8, "MMC202")]


@pytest.mark.parametrize("api", API_LEVELS)
def test_clean_driver_is_clean_at_its_level(api):
    findings = lint_paths([FIXTURES / "clean.c"], api).findings
    codes = {f.code for f in findings}
    if api == "newest":
        assert not findings
    else:
        assert codes <= {"MMC301", "MMC303"}   # only names the older level spells differently


def test_directory_is_walked():
    findings = lint_paths([FIXTURES]).findings
    assert {Path(f.path).name for f in findings} >= {"actions.c", "names.c", "per_mapping.c"}


# --- the commands ---------------------------------------------------------

def run(command, args):
    return CliRunner().invoke(command, args)


def test_lint_exit_codes():
    assert run(lint_cmd, [str(FIXTURES / "clean.c")]).exit_code == 0
    assert run(lint_cmd, [str(FIXTURES / "deprecated_mmap.c")]).exit_code == 1
    # MMC209 is info: below the default threshold, at the lowest one.
    assert run(lint_cmd, [str(FIXTURES / "remap_error.c")]).exit_code == 0
    assert run(lint_cmd, ["--fail-on", "info", str(FIXTURES / "remap_error.c")]).exit_code == 1
    assert run(lint_cmd, ["--fail-on", "error", str(FIXTURES / "deprecated_mmap.c")]).exit_code == 0


def test_lint_text_lines():
    result = run(lint_cmd, [str(FIXTURES / "both_hooks.c")])
    lines = result.stdout.splitlines()
    assert lines[1] == (f"{FIXTURES / 'both_hooks.c'}:19: ERROR: MMC102 initializer sets both .mmap "
                        f"and .mmap_prepare; the core refuses the mapping")
    assert lines[0].startswith(f"{FIXTURES / 'both_hooks.c'}:18: WARNING: MMC101 ")
    assert "total: 1 errors, 1 warnings, 0 checks" in result.stderr


@pytest.mark.parametrize("content, problem", [
    (None, "no such file or directory"),
    (b"int x;\0", "binary file"),
])
def test_lint_bad_input(tmp_path, content, problem):
    bad = tmp_path / "bad.c"
    if content is not None:
        bad.write_bytes(content)
    result = run(lint_cmd, [str(FIXTURES / "clean.c"), str(bad)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and str(bad) in result.stderr and problem in result.stderr


def test_lint_usage_error():
    assert run(lint_cmd, ["--api", "5.4", str(FIXTURES)]).exit_code == 2


def test_rules_lists_every_code_once():
    lines = run(rules_cmd, []).stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(RULES) + list(FIXES)


def test_rule_explains():
    result = run(rule_cmd, ["MMC206"])
    assert result.exit_code == 0
    for part in ("page-prot-after-action", "What:", "Why:", "Example:", "Fix:", "Fixed:"):
        assert part in result.stdout
    assert run(rule_cmd, ["page-prot-after-action"]).stdout == result.stdout
    missing = run(rule_cmd, ["MMC999"])
    assert missing.exit_code == 2 and "MMC999" in missing.stderr


def test_per_mapping_state_through_a_helper_chain():
    """MMC207 follows a driver helper through its callees and names the chain that reaches the state."""
    findings = [f for f in lint_paths([FIXTURES / "per_mapping_wrapper.c"]).findings if f.code == "MMC207"]
    assert [f.line for f in findings] == [30]
    message = findings[0].message
    assert "pmw_note_user() → pmw_account()" in message
    assert "per_mapping_wrapper.c:17: list_add(): takes per-mapping state" in message
