"""SARIF 2.1.0: one run, the rule catalogue as tool.driver.rules, one result per finding."""
from __future__ import annotations

import json
from pathlib import PurePosixPath, Path
from typing import TextIO

from ..lint.catalogue import RULES
from . import tool
from .findings import Report

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
VERSION = "2.1.0"
LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def _uri(path: str) -> str:
    p = Path(path)
    return p.as_uri() if p.is_absolute() else PurePosixPath(*p.parts).as_posix()


def _rule(rule) -> dict:
    help_text = f"{rule.fix}\n\nExample:\n{rule.example}\n\nFixed:\n{rule.fixed}"
    help_markdown = f"{rule.fix}\n\nExample:\n```c\n{rule.example}\n```\n\nFixed:\n```c\n{rule.fixed}\n```"
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.what},
        "fullDescription": {"text": " ".join(rule.why.split())},
        "help": {"text": help_text, "markdown": help_markdown},
        "defaultConfiguration": {"level": LEVEL[rule.severity]},
        "properties": {"fixSafety": rule.fix_safety},
    }


def document(report: Report) -> dict:
    codes = list(RULES)
    results = []
    for f in report.findings:
        result = {
            "ruleId": f.code,
            "ruleIndex": codes.index(f.code),
            "level": LEVEL[f.severity],
            "message": {"text": f.message},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": _uri(f.path)},
                "region": {"startLine": f.line, "startColumn": f.col},
            }}],
        }
        if f.patch is not None:
            result["properties"] = {"patch": f.patch}
        results.append(result)
    return {
        "$schema": SCHEMA,
        "version": VERSION,
        "runs": [{
            "tool": {"driver": {
                "name": tool.NAME,
                "version": tool.version(),
                "informationUri": tool.information_uri(),
                "rules": [_rule(RULES[c]) for c in codes],
            }},
            "results": results,
        }],
    }


def write(report: Report, out: TextIO, err: TextIO) -> None:
    json.dump(document(report), out, indent=2)
    out.write("\n")
