"""Runs every registered check on C files and filters what suppressions silence."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..source import InputError, SourceFile, check_text
from . import actions, flags, names, ops_struct, per_mapping, remap_error, remap_range  # noqa: F401  (register)
from .catalogue import DEFAULT_API, KNOWLEDGE
from .finding import Finding
from .registry import CHECKS, Context, MmapUse
from .suppress import suppressed
from .verdicts import scan_mmap_uses

SOURCE_SUFFIXES = (".c", ".h")


def _needles() -> tuple[list[bytes], dict[bytes, re.Pattern]]:
    """Bytes a file must contain for any rule to fire, so most files of a tree are never parsed.

    Plain substrings (a name that contains another one is covered by it),
    and for members such as `.mapped` a word to look for before a regex.
    """
    names = KNOWLEDGE["names"]
    words = {"mmap", "vm_area_desc", *names["never_landed"], *names["renamed"]}
    words |= {n for level in names["missing"].values() for n in level if not n.startswith(".")}
    plain = sorted(w.encode() for w in words if not any(o != w and o in w for o in words))
    members = {n[1:] for level in names["missing"].values() for n in level if n.startswith(".")}
    return plain, {m.encode(): re.compile(rb"(?:\.|->)\s*" + re.escape(m.encode()) + rb"\b") for m in members}


_PLAIN, _MEMBERS = _needles()


def relevant(data: bytes) -> bool:
    return any(w in data for w in _PLAIN) or any(m in data and p.search(data) for m, p in _MEMBERS.items())


@dataclass
class LintResult:
    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    errors: list[str] = field(default_factory=list)   # `path: message`, one per file that could not be linted


def lint_source(src: SourceFile, api: str = DEFAULT_API, mmap_uses: list[MmapUse] | None = None,
                effects=None, near: str = "") -> list[Finding]:
    """Findings for one parsed file. `mmap_uses` carries the scanner's verdicts (MMC101); `effects`
    the scanner's effect analysis, with the file's path in its index (`near`)."""
    ctx = Context(src, api, list(mmap_uses or []), effects, near)
    found = {f for check in CHECKS for f in check(ctx)}
    return sorted(suppressed(src, list(found)), key=Finding.sort_key)


def source_files(paths: list[Path]) -> list[Path]:
    """The C files named or below the directories named; a missing path is an input error."""
    files = []
    for path in paths:
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                files.extend(Path(dirpath, f) for f in sorted(filenames) if f.endswith(SOURCE_SUFFIXES))
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"{path}: no such file or directory")
    return files


def lint_paths(paths: list[Path], api: str = DEFAULT_API, root: Path | None = None) -> LintResult:
    """Lint files and directories: findings, and one error line per file that could not be linted.

    A missing path raises InputError before any finding is produced.

    With `root`, findings name files relative to it (check-patch lints a temporary copy).
    """
    files = source_files(paths)
    uses, scan_errors, effects = scan_mmap_uses(files)
    result = LintResult(files=len(files))
    for path in files:
        display = path.relative_to(root).as_posix() if root else str(path)
        # The scanner's verdicts are part of the findings: a file it could not handle is not clean.
        if path.resolve() in scan_errors:
            result.errors.append(f"{display}: {scan_errors[path.resolve()]}")
            continue
        try:
            data = path.read_bytes()
        except OSError as exc:
            result.errors.append(f"{display}: cannot read: {exc.strerror}")
            continue
        try:
            if not relevant(data):
                check_text(display, data)
                continue
            src = SourceFile.from_bytes(display, data)
        except InputError as exc:
            result.errors.append(str(exc))
            continue
        near = os.path.relpath(path.resolve(), effects.index.root) if effects is not None else ""
        result.findings.extend(lint_source(src, api, uses.get(path.resolve(), []), effects, near))
    return result
