"""`/* mmapconv: ignore[CODE,...] */` comments, and which findings they silence.

A comment silences findings on its own line, and on every line of the
function or declaration whose signature (or the line just above it) carries it.
"""
from __future__ import annotations

import re

from ..source import SourceFile, ancestor, decode, find
from .finding import Finding

_IGNORE = re.compile(rb"(?:/\*|//)\s*mmapconv:\s*ignore(?:\[([A-Za-z0-9_,\s]*)\])?")
ALL = "*"


def _ignores(src: SourceFile) -> dict[int, set[str]]:
    by_line: dict[int, set[str]] = {}
    for m in _IGNORE.finditer(src.data):
        codes = {c.strip().upper() for c in decode(m.group(1)).split(",") if c.strip()} if m.group(1) is not None else {ALL}
        by_line.setdefault(src.line_of(m.start()), set()).update(codes)
    return by_line


def _scopes(src: SourceFile) -> list[tuple[int, int, int]]:
    """(first line, last line of the signature, last line) of top-level functions and declarations."""
    out = []
    for node in find(src.root, "function_definition", "declaration"):
        if ancestor(node, "function_definition") is not None:
            continue
        opening = node.child_by_field_name("body") if node.type == "function_definition" else \
            next(iter(find(node, "initializer_list")), None)
        first = src.line(node)
        out.append((first, src.line(opening) if opening is not None else first, node.end_point[0] + 1))
    return out


def suppressed(src: SourceFile, findings: list[Finding]) -> list[Finding]:
    """The findings no ignore comment silences."""
    ignores = _ignores(src)
    if not ignores:
        return findings
    scopes = _scopes(src)

    def silenced(f: Finding) -> bool:
        lines = {f.line}
        for first, signature_end, last in scopes:
            if first <= f.line <= last:
                lines.update(range(first - 1, signature_end + 1))
        codes = set().union(*(ignores.get(line, set()) for line in lines))
        return ALL in codes or f.code in codes
    return [f for f in findings if not silenced(f)]
