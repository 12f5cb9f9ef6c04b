"""The scanner's verdict on each `.mmap` user: the lint package's one dependency on mmapconv.scan."""
from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from .registry import MmapUse


@dataclass
class ScanFacts:
    """What one scanner run tells the linter."""
    uses: dict[Path, list[MmapUse]]     # `.mmap` users per resolved file path, with verdicts
    errors: dict[Path, str]             # the scanner's error per resolved file path it could not handle
    effects: object = None              # its effect analysis, for rules that ask what a helper does


def _reason(function) -> str:
    first = function.first_reason
    return f"{first.message} (line {first.line})" if first else ""


def scan_root(paths: list[Path]) -> Path:
    """The directory a scan of `paths` (resolved) is relative to."""
    return Path(os.path.commonpath([p if p.is_dir() else p.parent for p in paths]))


def scan_mmap_uses(paths: list[Path], level: str = "newest", jobs: int | None = None) -> ScanFacts:
    """Scan files and directories (resolved paths): directories go through the scanner's byte
    prefilter (grep), so a tree costs what `mmapconv scan` costs."""
    from ..scan import Scanner

    if not paths:
        return ScanFacts({}, {}, None)
    root = scan_root(paths)
    scanner = Scanner(root, jobs, level=str(level))
    result = scanner.scan(paths)
    uses: dict[Path, list[MmapUse]] = defaultdict(list)
    for item in result.instances:
        instance, function, resolution = item.instance, item.function, item.resolution
        if resolution == "null":
            continue   # `.mmap = NULL` sets nothing
        if function is None:
            why = "the value is not a function name" if resolution == "not-a-function" \
                else f"{instance.function} is not defined in the linted files"
            use = MmapUse(instance.line, instance.function, "manual", why)
        else:
            verdict = function.verdict
            use = MmapUse(instance.line, instance.function, verdict, _reason(function) if verdict == "manual" else "")
        uses[(root / instance.path).resolve()].append(use)
    errors: dict[Path, str] = {}
    for error in result.errors:
        errors.setdefault((root / error.path).resolve(), error.message)
    return ScanFacts(dict(uses), errors, scanner.effects)
