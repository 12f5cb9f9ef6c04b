"""One JSON document: the findings, the patches (check-patch) and totals."""
from __future__ import annotations

import json
from typing import TextIO

from . import tool
from .findings import Report


def finding_dict(f) -> dict:
    return {
        "path": f.path, "line": f.line, "column": f.col, "code": f.code, "name": f.name,
        "severity": f.severity, "message": f.message, "fix_safety": f.fix_safety, "patch": f.patch,
    }


def document(report: Report) -> dict:
    counts = report.counts()
    doc = {
        "tool": {"name": tool.NAME, "version": tool.version()},
        "command": report.command,
        "findings": [finding_dict(f) for f in report.findings],
        "summary": {"error": counts["error"], "warning": counts["warning"], "info": counts["info"]},
    }
    if report.patches is not None:
        doc["patches"] = [{"subject": s, "findings": len(report.of_patch(s))} for s in report.patches]
        doc["notes"] = report.notes
    else:
        doc["files"] = report.files
    return doc


def write(report: Report, out: TextIO, err: TextIO) -> None:
    json.dump(document(report), out, indent=2)
    out.write("\n")
