"""What lint and check-patch hand to a format, and the exit code it implies."""
from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import TextIO

from ..lint.catalogue import severity_rank
from ..lint.finding import Finding

FINDING_FORMATS = ("text", "json", "sarif", "github")


@dataclass
class Report:
    command: str                        # "lint" | "check-patch"
    findings: list[Finding]
    files: int = 0                      # lint: files read
    patches: list[str] | None = None    # check-patch: every patch subject, in series order
    notes: list[str] = field(default_factory=list)   # check-patch: skipped messages etc.

    def counts(self, findings: list[Finding] | None = None) -> Counter:
        return Counter(f.severity for f in (self.findings if findings is None else findings))

    def of_patch(self, subject: str) -> list[Finding]:
        return [f for f in self.findings if f.patch == subject]


def exit_code(findings: list[Finding], fail_on: str) -> int:
    threshold = severity_rank(fail_on)
    return 1 if any(severity_rank(f.severity) >= threshold for f in findings) else 0


def write(report: Report, fmt: str, out: TextIO | None = None, err: TextIO | None = None) -> None:
    from . import github, json_report, sarif, text
    writer = {"text": text.write, "json": json_report.write, "sarif": sarif.write, "github": github.write}[fmt]
    writer(report, out or sys.stdout, err or sys.stderr)
