"""The finding formats shared by lint and check-patch: text, JSON, SARIF 2.1.0, GitHub annotations."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmapconv.lint import RULES
from mmapconv.lint.cli import check_patch_cmd, lint_cmd

ROOT = Path(__file__).resolve().parent.parent
LINT = ROOT / "fixtures" / "lint"
MBOX = ROOT / "fixtures" / "series" / "series.mbox"
BOTH = ["fixtures/lint/both_hooks.c", "fixtures/lint/remap_error.c"]


@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)


def run(command, args):
    return CliRunner().invoke(command, args)


def test_json(in_repo):
    result = run(lint_cmd, ["--format", "json", *BOTH])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["command"] == "lint" and doc["files"] == 2
    assert doc["summary"] == {"error": 1, "warning": 1, "info": 2}
    first = doc["findings"][1]
    assert first == {
        "path": "fixtures/lint/both_hooks.c", "line": 19, "column": 2, "code": "MMC102",
        "name": "mmap-and-mmap-prepare", "severity": "error",
        "message": "initializer sets both .mmap and .mmap_prepare; the core refuses the mapping",
        "fix_safety": "unsafe", "patch": None,
    }


def sarif(args):
    result = run(args[0], ["--format", "sarif", *args[1:]])
    return result, json.loads(result.stdout)


@pytest.mark.parametrize("args", [
    (lint_cmd, *BOTH),
    (check_patch_cmd, str(MBOX)),
], ids=["lint", "check-patch"])
def test_sarif_structure(in_repo, args):
    result, doc = sarif(args)
    assert result.exit_code == 1
    assert doc["version"] == "2.1.0"
    assert doc["$schema"].endswith("sarif-2.1.0.json")
    assert len(doc["runs"]) == 1
    driver = doc["runs"][0]["tool"]["driver"]
    assert driver["name"] == "mmapconv" and driver["version"] and driver["informationUri"].startswith("https://")
    assert [r["id"] for r in driver["rules"]] == list(RULES)
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
        assert rule["help"]["text"] and rule["help"]["markdown"]
        assert rule["defaultConfiguration"]["level"] in ("error", "warning", "note")
    results = doc["runs"][0]["results"]
    assert results
    for r in results:
        assert r["ruleId"] in RULES
        assert driver["rules"][r["ruleIndex"]]["id"] == r["ruleId"]
        assert r["level"] in ("error", "warning", "note")
        assert r["message"]["text"]
        location = r["locations"][0]["physicalLocation"]
        assert not Path(location["artifactLocation"]["uri"]).is_absolute()
        assert location["region"]["startLine"] >= 1


def test_sarif_levels_and_patch_property(in_repo):
    _, doc = sarif((check_patch_cmd, str(MBOX)))
    results = doc["runs"][0]["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [
        ("MMC202", "error"), ("MMC209", "warning"), ("MMC206", "error"), ("MMC101", "warning")]
    assert results[3]["properties"]["patch"] == "[PATCH 3/3] misc: add mmc_fbmem driver"
    assert results[3]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "drivers/misc/mmc_fbmem.c"
    _, lint_doc = sarif((lint_cmd, "fixtures/lint/remap_error.c"))
    assert {r["level"] for r in lint_doc["runs"][0]["results"]} == {"note"}


def test_github(in_repo):
    result = run(lint_cmd, ["--format", "github", *BOTH])
    lines = result.stdout.splitlines()
    assert lines[0].startswith("::warning file=fixtures/lint/both_hooks.c,line=18,col=2,title=MMC101 deprecated-mmap::MMC101 ")
    assert lines[1] == ("::error file=fixtures/lint/both_hooks.c,line=19,col=2,title=MMC102 mmap-and-mmap-prepare::"
                        "MMC102 initializer sets both .mmap and .mmap_prepare; the core refuses the mapping")
    assert lines[2].startswith("::notice file=fixtures/lint/remap_error.c,line=15,")


def test_github_escapes_properties(in_repo):
    result = run(check_patch_cmd, ["--format", "github", str(MBOX)])
    first = result.stdout.splitlines()[0]
    # The patch subject in the title has a ':'; it must not end the property list.
    assert "title=MMC202 legacy-vm-flags-call ([PATCH 2/3] misc%3A mmc_regs%3A convert to mmap_prepare)::" in first


def test_text_severity_words(in_repo):
    result = run(lint_cmd, ["--fail-on", "info", *BOTH])
    levels = [line.split(": ")[1] for line in result.stdout.splitlines()]
    assert levels == ["WARNING", "ERROR", "CHECK", "CHECK"]
    assert "findings by rule" in result.stderr and "total: 1 errors, 1 warnings, 2 checks (2 files)" in result.stderr
