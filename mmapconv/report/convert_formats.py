"""convert --format json: what was converted, refused and fixed unsafely, with the diff."""
from __future__ import annotations

from ..lint.catalogue import FIXES


def convert_json(outcome, level: str, diff: str) -> dict:
    return {
        "level": level,
        "summary": outcome.summary(),
        "converted": [{"function": fn.function, "path": fn.path, "line": fn.line, "new_name": new}
                      for fn, new in outcome.converted],
        "refused": [{"function": r.function.function, "path": r.function.path, "line": r.line,
                     "code": r.code, "message": r.message} for r in outcome.refused],
        # Each unsafe fix made, with what a reviewer must check.
        "unsafe_fixes": [{"function": r.function.function, "path": r.function.path, "line": r.function.line,
                          "code": r.code, "rule": FIXES[r.code].name, "note": r.note} for r in outcome.reviews],
        "diff": diff,
    }
