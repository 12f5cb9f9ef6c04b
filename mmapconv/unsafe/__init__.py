"""The unsafe fixes of `convert --unsafe-fixes`, and how a fixed callback is converted.

A fix module registers itself with `@unsafe_fix(code)` (the code's rule is in
rules/fixes.toml). A fix is given a callback the safe conversion refused, with
the scan's evidence, and either
- raises NotMine: the callback is not its shape and stays refused as it was;
- raises FixRefused: its shape, but something only a person can decide (the
  reason replaces the refusal);
- returns a Rewrite: the whole file with its one change made (state moved out,
  a lock released earlier) and the evidence lines that change answers.
The fixed callback then goes through the safe planner unchanged: every other
reason must already be one the safe conversion handles, and the planner may
still refuse. A fix never converts more than its own change.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable

from ..classify import AUTO_CATEGORIES, Evidence, summarize
from ..edits import Edit, apply
from ..lint.catalogue import FIXES
from ..plan import plan_function
from ..source import InputError, SourceFile, count_errors
from ..transforms import Refusal


class NotMine(Exception):
    """The callback is not the shape this fix handles."""


class FixRefused(Exception):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line, self.message = line, message

    def __reduce__(self):   # it comes back from a worker process
        return FixRefused, (self.line, self.message)


@dataclass
class Target:
    """A refused callback, as a fix sees it."""
    src: SourceFile
    node: object                # its function_definition
    name: str
    evidence: list[Evidence]    # the scan's, through every callee
    level: str
    refusal: Evidence | None = None   # the safe planner's, when it refused


@dataclass
class Rewrite:
    data: bytes                 # the file with the fix's change made
    answered: set[int]          # evidence lines the change answers
    fields: dict[str, str]      # the review note's fields


@dataclass
class Proposal:
    code: str
    note: str
    edits: list[Edit]           # on the original file: the fix and the conversion


Fix = Callable[[Target], Rewrite]
_FIXES: list[tuple[str, tuple[str, ...], Fix]] = []


def unsafe_fix(code: str, answers: tuple[str, ...]) -> Callable[[Fix], Fix]:
    """Register a fix for callbacks whose only blocking evidence has these codes."""
    if code not in FIXES:
        raise ValueError(f"{code} is missing from rules/fixes.toml")

    def add(fix: Fix) -> Fix:
        _FIXES.append((code, answers, fix))
        return fix
    return add


def propose(target: Target) -> Proposal | None:
    """The first fix that takes the callback, converted; None when none does. Raises FixRefused."""
    blocking_codes = {e.code for e in target.evidence if e.category not in AUTO_CATEGORIES} | \
        ({target.refusal.code} if target.refusal is not None else set())
    for code, answers, fix in _FIXES:
        if not blocking_codes or not blocking_codes <= set(answers):
            continue   # something else in the body blocks: nothing is proposed
        try:
            rewrite = fix(target)
        except NotMine:
            continue
        except FixRefused as refused:
            raise FixRefused(refused.line, f"{code}: {refused.message}") from None
        unanswered = [e for e in target.evidence if e.category not in AUTO_CATEGORIES and e.line not in rewrite.answered]
        if unanswered:
            raise FixRefused(unanswered[0].line, f"{code}: {unanswered[0].message}")
        try:
            edits = _converted(target, rewrite)
        except Refusal as refusal:
            raise FixRefused(refusal.line, f"{code}: after the fix, {refusal.message}") from None
        return Proposal(code, FIXES[code].format(function=target.name, **rewrite.fields), edits)
    return None


def _converted(target: Target, rewrite: Rewrite) -> list[Edit]:
    """The fixed file through the safe planner, as edits of the original file."""
    line = target.src.line(target.node)
    try:
        fixed = SourceFile.from_bytes(target.src.path, rewrite.data)
    except InputError as exc:
        raise Refusal(line, str(exc)) from None
    if count_errors(fixed.root) > count_errors(target.src.root):
        raise Refusal(line, "the fixed file does not parse")
    node = next(iter(fixed.definitions_named(target.name)), None)
    if node is None:
        raise Refusal(line, f"{target.name} is gone")
    summary = summarize(fixed, node)
    local = [e for e in summary.evidence if e.category not in AUTO_CATEGORIES]
    if local:
        raise Refusal(local[0].line, local[0].message)
    plan = plan_function(fixed, node, summary, target.level)
    return _edits_between(target.src.data, apply(fixed.data, plan.edits))


def _edits_between(old: bytes, new: bytes) -> list[Edit]:
    """Whole-line edits that turn `old` into `new`: the lines nobody changed stay untouched."""
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    starts = [0]
    for line in a:
        starts.append(starts[-1] + len(line))
    edits = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            edits.append(Edit(starts[i1], starts[i2], b"".join(b[j1:j2]).decode("utf-8", "surrogateescape")))
    return edits


# Registration order is the order fixes are tried in.
from . import mapped, split, unlock  # noqa: E402,F401
