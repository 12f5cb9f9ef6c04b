"""MMC402: a lock held around the old remap is released before the mapping request.

Only when the lock guards the checks before the remap and nothing after it:
the statements between the remap and the unlock may only describe the
mapping (vm_ops, private data, flags). The unlock that followed the remap moves
above it, and the failure branch's unlock goes with the branch (the request
fails after the hook returned, when the lock was released already).
"""
from __future__ import annotations

from .. import classify
from ..edits import Edit, apply
from ..rules_data import load
from ..source import SourceFile, find, parameters
from . import FixRefused, NotMine, Rewrite, Target, unsafe_fix

_PAIRS: dict = load("classify")["pairs"]
_DESCRIBES = ("vm_ops", "vm_private_data")
_FLAG_CALLS = ("vm_flags_set", "vm_flags_clear", "vm_flags_mod")


# A write under the lock after the remap is the fix's to refuse: the lock guards more than the checks.
@unsafe_fix("MMC402", answers=("lock-around-action", "writes-state"))
def unlock_before_request(t: Target) -> Rewrite:
    src, body = t.src, t.node.child_by_field_name("body")
    lock_lines = {e.line for e in t.evidence if e.code == "lock-around-action"}
    if not lock_lines:
        raise NotMine
    statements = [s for s in body.named_children if s.type != "comment"]
    action = next((s for s in statements if any(classify.kind_of(_name(src, c)) in classify.ACTION_KINDS
                                                for c in find(s, "call_expression"))), None)
    if action is None:
        raise NotMine
    after_lines = {line for s in statements[statements.index(action) + 1:]
                   for line in range(src.line(s), s.end_point[0] + 2)}
    if any(e.code == "writes-state" and e.line not in after_lines for e in t.evidence):
        raise NotMine
    lock = next((c for s in statements[:statements.index(action)] for c in find(s, "call_expression")
                 if src.line(c) in lock_lines and _name(src, c) in _PAIRS), None)
    if lock is None or not isinstance(_PAIRS[_name(src, lock)], str):
        raise FixRefused(src.line(action), "the lock is a guard() held to the end of its scope: move the request out of it by hand")
    unlock_name, held = _PAIRS[_name(src, lock)], _argument(src, lock)
    params = parameters(src, t.node)
    vma = params[1][1] if len(params) == 2 else ""

    def is_unlock(stmt) -> bool:
        calls = find(stmt, "call_expression") if stmt.type == "expression_statement" else []
        return len(calls) == 1 and calls[0].parent == stmt and _name(src, calls[0]) == unlock_name \
            and _argument(src, calls[0]) == held

    after = statements[statements.index(action) + 1:]
    unlocks = [s for s in after if is_unlock(s)]
    if not unlocks:
        raise FixRefused(src.line(action), f"{unlock_name}() does not follow the remap on its success path")
    for stmt in after:
        if stmt in unlocks or stmt.type == "return_statement" and stmt == after[-1] or _describes(src, stmt, vma):
            continue
        raise FixRefused(src.line(stmt), f"`{' '.join(src.text(stmt).split())[:60]}` runs under {held.lstrip('&')} after the "
                                         "remap: the lock guards more than the checks")
    branch = action.child_by_field_name("consequence") if action.type == "if_statement" else None
    failing = [s for s in (branch.named_children if branch is not None and branch.type == "compound_statement" else [])
               if is_unlock(s)]
    indent = src.indent(action)
    edits = [Edit(*src.line_span(s), "") for s in unlocks + failing]
    at = src.data.rfind(b"\n", 0, action.start_byte) + 1
    edits.append(Edit(at, at, f"{indent}{src.text(unlocks[0])}\n"))
    return Rewrite(apply(src.data, edits), lock_lines, {"lock": held.lstrip("&")})


def _name(src: SourceFile, call) -> str:
    return src.text(call.child_by_field_name("function"))


def _argument(src: SourceFile, call) -> str:
    args = call.child_by_field_name("arguments").named_children
    return " ".join(src.text(args[0]).split()) if args else ""


def _describes(src: SourceFile, stmt, vma: str) -> bool:
    """A statement that only describes the mapping: it may stay after the request."""
    expr = stmt.named_children[0] if stmt.type == "expression_statement" and stmt.named_children else None
    if expr is None:
        return False
    if expr.type == "call_expression":
        return _name(src, expr) in _FLAG_CALLS
    if expr.type == "assignment_expression":
        # Only a value at hand: a call on the right would run outside the lock.
        left, right = expr.child_by_field_name("left"), expr.child_by_field_name("right")
        return left.type == "field_expression" and src.text(left.child_by_field_name("argument")) == vma \
            and src.text(left.child_by_field_name("field")) in _DESCRIBES and not find(right, "call_expression")
    return False
