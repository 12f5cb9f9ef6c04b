"""Where rule checks register, and the context each one is run with.

A check is a function `check(ctx) -> Iterable[Finding]` decorated with
`@register(code, ...)` naming every code it may report; the engine runs each
check once per file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Iterable

from ..source import SourceFile
from .catalogue import RULES
from .finding import Finding

Check = Callable[["Context"], Iterable[Finding]]
CHECKS: dict[Check, tuple[str, ...]] = {}


def register(*codes: str) -> Callable[[Check], Check]:
    unknown = [c for c in codes if c not in RULES]
    if unknown:
        raise ValueError(f"rule codes missing from rules/lint.toml: {', '.join(unknown)}")

    def add(check: Check) -> Check:
        CHECKS[check] = codes
        return check
    return add


@dataclass
class MmapUse:
    """A `.mmap` in a file_operations initializer, with the scanner's verdict on its function."""
    line: int
    function: str
    verdict: str        # "auto" | "manual" | "unknown"
    reason: str = ""    # why manual


@dataclass
class Context:
    src: SourceFile
    api: str
    mmap_uses: list[MmapUse] = field(default_factory=list)
    # The run's effect analysis and this file's path as its index names it: what a called helper
    # does is the scanner's knowledge, not the linter's copy of it.
    effects: object = None
    near: str = ""

    def finding(self, where, code: str, *, col: int | None = None, fix_safety: str | None = None,
                **fields) -> Finding:
        """`where` is a tree-sitter node or a 1-based line number."""
        rule = RULES[code]
        if isinstance(where, int):
            line, column = where, col or 1
        else:
            line, column = where.start_point[0] + 1, where.start_point[1] + 1
        return Finding(self.src.path, line, column, code, rule.format(**fields), rule.severity,
                       fix_safety or rule.fix_safety)

    @cached_property
    def desc_functions(self):
        """The mmap_prepare hooks and the helpers they call with the descriptor (prepare.PrepareFunction)."""
        from .prepare import desc_functions
        return desc_functions(self.src)

    @cached_property
    def prepare_functions(self):
        """The mmap_prepare hooks alone."""
        return [f for f in self.desc_functions if f.kind == "hook"]
