"""A finding: one rule firing at one place."""
from __future__ import annotations

from dataclasses import dataclass, replace

from .catalogue import RULES


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    col: int
    code: str
    message: str
    severity: str
    fix_safety: str
    patch: str | None = None   # check-patch: the subject of the patch that added the line

    @property
    def name(self) -> str:
        return RULES[self.code].name

    def sort_key(self):
        return (self.path, self.line, self.col, self.code)

    def with_(self, **changes) -> "Finding":
        return replace(self, **changes)
