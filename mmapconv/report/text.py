"""checkpatch-like lines on stdout, a summary table on stderr."""
from __future__ import annotations

from collections import Counter
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..lint.catalogue import RULES
from .findings import Report

# checkpatch's words for the three levels.
LEVEL = {"error": "ERROR", "warning": "WARNING", "info": "CHECK"}


def line(f) -> str:
    return f"{f.path}:{f.line}: {LEVEL[f.severity]}: {f.code} {f.message}"


def totals(counts: Counter) -> str:
    return f"total: {counts['error']} errors, {counts['warning']} warnings, {counts['info']} checks"


def write(report: Report, out: TextIO, err: TextIO) -> None:
    if report.patches is None:
        for f in report.findings:
            print(line(f), file=out)
    else:
        for subject in report.patches:
            mine = report.of_patch(subject)
            print(subject, file=out)
            for f in mine:
                print(line(f), file=out)
            print(totals(report.counts(mine)), file=out)
            print(file=out)
    out.flush()   # the summary goes to stderr; keep the two in order on a terminal
    _summary(report, Console(file=err, width=100, highlight=False, soft_wrap=False))


def _summary(report: Report, console: Console) -> None:
    for note in report.notes:
        console.print(f"note: {note}", markup=False)
    if report.patches is not None:
        table = Table(title="check-patch", title_justify="left")
        for column in ("patch", "errors", "warnings", "checks"):
            table.add_column(column, justify="left" if column == "patch" else "right")
        for subject in report.patches:
            counts = report.counts(report.of_patch(subject))
            table.add_row(Text(subject), str(counts["error"]), str(counts["warning"]), str(counts["info"]))  # a subject is not markup
        console.print(table)
    by_code = Counter((f.code, f.severity) for f in report.findings)
    if by_code:
        table = Table(title="findings by rule", title_justify="left")
        for column in ("code", "rule", "level", "count"):
            table.add_column(column, justify="right" if column == "count" else "left")
        for (code, severity), n in sorted(by_code.items()):
            table.add_row(code, RULES[code].name, LEVEL[severity], str(n))
        console.print(table)
    scope = f"{len(report.patches)} patches" if report.patches is not None else f"{report.files} files"
    console.print(f"{totals(report.counts())} ({scope})", markup=False)
