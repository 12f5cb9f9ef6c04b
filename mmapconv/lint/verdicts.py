"""The scanner's verdict on each `.mmap` user: the lint package's one dependency on mmapconv.scan."""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

from .registry import MmapUse


def _reason(function) -> str:
    first = function.first_reason
    return f"{first.message} (line {first.line})" if first else ""


def scan_mmap_uses(files: list[Path]):
    """`.mmap` users per resolved file path, with verdicts; the scanner's error per file it could not
    handle; and the scanner's effect analysis, for the rules that ask what a helper does."""
    from ..scan import Scanner

    if not files:
        return {}, {}, None
    resolved = [f.resolve() for f in files]
    root = Path(os.path.commonpath([p.parent for p in resolved]))
    scanner = Scanner(root)
    result = scanner.scan(resolved)
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
    errors = {}
    for error in result.errors:
        errors.setdefault((root / error.path).resolve(), error.message)
    return uses, errors, scanner.effects
