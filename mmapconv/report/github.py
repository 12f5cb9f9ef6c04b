"""GitHub Actions workflow commands: one annotation per finding."""
from __future__ import annotations

from typing import TextIO

from .findings import Report

COMMAND = {"error": "error", "warning": "warning", "info": "notice"}


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(f) -> str:
    title = f"{f.code} {f.name}" + (f" ({f.patch})" if f.patch else "")
    return (f"::{COMMAND[f.severity]} file={_property(f.path)},line={f.line},col={f.col},"
            f"title={_property(title)}::{_data(f.code + ' ' + f.message)}")


def write(report: Report, out: TextIO, err: TextIO) -> None:
    for f in report.findings:
        print(annotation(f), file=out)
