"""The one remap/page-mapping call becomes the mmap_action_* request, as the function's last act.

The action runs after mmap_prepare returns, so: its return value no longer
exists (an error the old code returned instead is kept with an error_hook),
it captures desc->page_prot when called (a changed protection is assigned
before it), and statements after it must move before it.
"""
from __future__ import annotations

import re

from ..edits import Edit
from .. import classify
from ..rules_data import load
from ..source import find
from ..style import wrap
from . import Context, call_args, call_name, unwrap, fill, render
from .fields import vma_field

_REWRITES = {k: v for k, v in load("calls")["rewrites"].items() if "action" in v}
_CONSTANT_ERROR = re.compile(r"-\s*E[A-Z0-9]+|-\s*\d+")
_WHOLE_SIZE = re.compile(r"vma_desc_size\(DESC\)|vma_desc_pages\(DESC\)\s*(?:<<\s*PAGE_SHIFT|\*\s*PAGE_SIZE)")


def find_action(ctx: Context, body):
    dead = classify.dead_branches(ctx.src, body)
    calls = [n for n in find(body, "call_expression") if call_name(ctx, n) in _REWRITES
             and not any(start <= n.start_byte < end for start, end in dead)]
    if len(calls) > 1:
        ctx.refuse(calls[1], "more than one mapping request")
    return calls[0] if calls else None


def _statement(ctx: Context, call, body):
    node = call
    while node.parent is not None and node.parent != body:
        node = node.parent
    if node.parent != body:
        ctx.refuse(call, "mapping request outside the function body")
    return node


def _is_return(ctx: Context, node, value: str | None = None) -> bool:
    if node.type == "compound_statement":
        inner = [c for c in node.named_children if c.type != "comment"]
        return len(inner) == 1 and _is_return(ctx, inner[0], value)
    if node.type != "return_statement":
        return False
    expr = node.named_children[0] if node.named_children else None
    return value is None or (expr is not None and ctx.src.text(expr) == value)


def _whole_vma(ctx: Context, size_node, size_text: str, body) -> bool:
    """The length is provably the whole VMA: the size helper, a local set once to it, or after a check."""
    if _is_whole_size(ctx, size_text) or _checked_whole(ctx, size_node, body):
        return True
    if size_node.type != "identifier":
        return False
    name = ctx.src.text(size_node)
    inits = [d for d in find(body, "init_declarator")
             if ctx.src.text(d.child_by_field_name("declarator")) == name]
    return len(inits) == 1 and not _written(ctx, body, name) and \
        _is_whole_size(ctx, render(ctx, inits[0].child_by_field_name("value")))


def _checked_whole(ctx: Context, size_node, body) -> bool:
    """`if (vma->vm_end - vma->vm_start != LEN) return ...;` before the request forces LEN to be the whole VMA."""
    size_text = " ".join(ctx.src.text(size_node).split())
    if _written(ctx, body, size_text):
        return False
    for stmt in body.named_children:
        if stmt.start_byte >= size_node.start_byte:
            break
        if stmt.type != "if_statement" or not _is_return(ctx, stmt.child_by_field_name("consequence")):
            continue
        cond = unwrap(stmt.child_by_field_name("condition"))
        if cond is None or cond.type != "binary_expression" or ctx.src.text(cond.child_by_field_name("operator")) != "!=":
            continue
        sides = [cond.child_by_field_name("left"), cond.child_by_field_name("right")]
        for whole, other in (sides, sides[::-1]):
            if _is_whole_size(ctx, render(ctx, whole)) and " ".join(ctx.src.text(other).split()) == size_text:
                return True
    return False


def _written(ctx: Context, body, target: str) -> bool:
    """Whether `body` assigns or increments the lvalue spelled `target` (whitespace folded)."""
    for a in find(body, "assignment_expression", "update_expression"):
        lvalue = a.child_by_field_name("left") or a.child_by_field_name("argument")
        if " ".join(ctx.src.text(lvalue).split()) == target:
            return True
    return False


def _is_whole_size(ctx: Context, rendered: str) -> bool:
    return bool(_WHOLE_SIZE.fullmatch(_generic(ctx, rendered)))


def _generic(ctx: Context, text: str) -> str:
    return re.sub(r"\b" + ctx.desc + r"\b", "DESC", " ".join(text.split()))


def _movable(ctx: Context, stmt) -> bool:
    """A statement that only describes the mapping can run before the action instead of after."""
    if stmt.type != "expression_statement" or not stmt.named_children:
        return False
    expr = stmt.named_children[0]
    if expr.type == "call_expression":
        name = call_name(ctx, expr)
        if name in ("vm_flags_set", "vm_flags_clear", "vm_flags_mod"):
            return True
        # The request is deferred: what ran after the remap runs before it either way. A call that
        # logs, reads or marks (or that the effect analysis must still prove so) may move above it;
        # one that is handed the vma may not.
        return name is not None and not any(ctx.is_vma(a) for a in call_args(expr)) and \
            classify.kind_of(name) in (*classify.SILENT_KINDS, "marks", None)
    if expr.type == "assignment_expression":
        return vma_field(ctx, expr.child_by_field_name("left")) in ("vm_ops", "vm_private_data", "vm_flags")
    return False


def action_edits(ctx: Context, body, call) -> tuple[list[Edit], set[int]]:
    """Edits for the action statement and what follows it; the ids of statements they cover."""
    name = call_name(ctx, call)
    spec = _REWRITES[name]
    if spec["action"] not in ctx.api["actions"]:
        ctx.refuse(call, f"API {ctx.level} has no mmap_action for {name}()")
    args = call_args(call)
    if len(args) != len(spec["args"]):
        ctx.refuse(call, f"{name}() with {len(args)} arguments")
    if not ctx.is_vma(args[0]):
        ctx.refuse(call, f"{name}() on a vma other than the one being mapped")
    values = {p: render(ctx, a) for p, a in zip(spec["args"], args)}
    nodes = dict(zip(spec["args"], args))
    if "full" in spec and values.get("addr") == f"{ctx.desc}->start" and _whole_vma(ctx, nodes["size"], values["size"], body):
        request = fill(spec["full"], ctx, values)
    else:
        request = fill(spec["template"], ctx, values)

    statements = [s for s in body.named_children if s.type != "comment"]
    stmt = _statement(ctx, call, body)
    after = statements[statements.index(stmt) + 1:]
    indent = ctx.src.indent(stmt)
    handled = {stmt.id}
    edits: list[Edit] = []
    error_hook, hook_lines = None, []
    trailer = ""

    if stmt.type == "return_statement" and stmt.named_children and stmt.named_children[0] == call:
        trailer = f"\n{indent}return 0;"
    elif stmt.type == "if_statement" and _unwrap_cond(ctx, stmt) == call and stmt.child_by_field_name("alternative") is None:
        consequence = stmt.child_by_field_name("consequence")
        error_hook, hook_lines = _failure_branch(ctx, consequence, name)
    elif stmt.type in ("expression_statement", "declaration") and _assigned_result(ctx, stmt, call):
        result = _assigned_result(ctx, stmt, call)
        if not after:
            ctx.refuse(stmt, f"the result of {name}() is not used as expected")
        follow = after[0]
        if stmt.type == "declaration" and len(stmt.children_by_field_name("declarator")) != 1:
            ctx.refuse(stmt, "declaration of several variables around the mapping request")
        if follow.type == "if_statement" and ctx.src.text(unwrap(follow.child_by_field_name("condition"))) in (result, f"{result} < 0") \
                and follow.child_by_field_name("alternative") is None \
                and _is_return(ctx, follow.child_by_field_name("consequence"), result):
            handled.add(follow.id)
            edits.append(Edit(*ctx.src.line_span(follow), ""))
            after = after[1:]
        elif follow.type == "return_statement" and _is_return(ctx, follow, result):
            handled.add(follow.id)
            edits.append(Edit(follow.start_byte, follow.end_byte, "return 0;"))
            after = after[1:]
        else:
            ctx.refuse(follow, f"the result of {name}() is used after the call")
    else:
        ctx.refuse(stmt, f"{name}() is used in a way mmapconv does not convert (`{' '.join(ctx.src.text(stmt).split())[:50]}`)")

    moved = []
    for s in after:
        if s == after[-1] and _is_return(ctx, s, "0"):
            continue
        if not _movable(ctx, s):
            ctx.refuse(s, f"statement after {name}() cannot move before the mapping request")
        moved.append(s)
        handled.add(s.id)
        edits.append(Edit(*ctx.src.line_span(s), ""))

    lines = [render(ctx, s) for s in moved]
    prot = values.get("prot")
    if prot is not None and prot != f"{ctx.desc}->page_prot":
        lines.append(f"{ctx.desc}->page_prot = {prot};")
    lines.append(f"{request};")
    if error_hook is not None:
        hook = f"{ctx.new_name}_error"
        hook_body = "".join(f"\t{line}\n" for line in hook_lines)
        ctx.preamble.append(f"static int {hook}(int err)\n{{\n{hook_body}\treturn {error_hook};\n}}\n")
        lines.append(f"{ctx.desc}->action.error_hook = {hook};")
    text = f"\n{indent}".join(wrap(indent, line) for line in lines) + trailer
    edits.append(Edit(stmt.start_byte, stmt.end_byte, text))
    return edits, handled


def _failure_branch(ctx: Context, branch, name: str) -> tuple[str, list[str]]:
    """What `if (remap(...)) { ...; return -EFOO; }` must keep: the error, and messages it logs.

    Only a constant error and log calls whose arguments are constants can move
    into the error_hook, which sees none of the function's variables.
    """
    statements = [c for c in branch.named_children if c.type != "comment"] if branch.type == "compound_statement" else [branch]
    if not statements or statements[-1].type != "return_statement":
        ctx.refuse(branch, f"the failure branch of {name}() does not end in a return")
    error = ctx.src.text(statements[-1].named_children[0]) if statements[-1].named_children else ""
    if not _CONSTANT_ERROR.fullmatch(error.replace(" ", "")):
        ctx.refuse(branch, f"{name}() failure returns `{error}`, not a constant error")
    lines = []
    for stmt in statements[:-1]:
        expr = stmt.named_children[0] if stmt.type == "expression_statement" and stmt.named_children else None
        callee = call_name(ctx, expr) if expr is not None else None
        constant = expr is not None and all(ctx.src.text(i).isupper() or ctx.src.text(i) == callee
                                            for i in find(expr, "identifier"))
        if callee is None or classify.kind_of(callee) not in classify.SILENT_KINDS or not constant:
            ctx.refuse(stmt, f"the failure branch of {name}() does more than log and return")
        indent = ctx.src.indent(stmt)
        text = ctx.src.text(stmt).replace("\n" + indent, "\n\t")
        lines.append(_modern_printk(text))
    return error, lines


_PRINTK_LEVEL = re.compile(r"\bprintk\s*\(\s*KERN_(EMERG|ALERT|CRIT|ERR|WARNING|NOTICE|INFO|DEBUG)\s*")


def _modern_printk(text: str) -> str:
    """`printk(KERN_ERR "...")` moved into a new hook is written as `pr_err("...")`, as checkpatch asks of new code."""
    level = {"WARNING": "warn"}
    return _PRINTK_LEVEL.sub(lambda m: f"pr_{level.get(m.group(1), m.group(1).lower())}(", text)


def _unwrap_cond(ctx: Context, stmt):
    cond = unwrap(stmt.child_by_field_name("condition"))
    if cond is not None and cond.type == "binary_expression" and \
            ctx.src.text(cond.child_by_field_name("operator")) in ("<", "!=") and \
            ctx.src.text(cond.child_by_field_name("right")) == "0":
        cond = unwrap(cond.child_by_field_name("left"))
    return cond


def _assigned_result(ctx: Context, stmt, call) -> str | None:
    """`ret` when the statement is `ret = CALL;` or `int ret = CALL;`."""
    if stmt.type == "expression_statement":
        expr = stmt.named_children[0] if stmt.named_children else None
        if expr is not None and expr.type == "assignment_expression" and expr.child_by_field_name("right") == call \
                and expr.child_by_field_name("left").type == "identifier" and ctx.src.text(expr.child_by_field_name("operator")) == "=":
            return ctx.src.text(expr.child_by_field_name("left"))
    if stmt.type == "declaration":
        for d in stmt.children_by_field_name("declarator"):
            if d.type == "init_declarator" and d.child_by_field_name("value") == call:
                return ctx.src.text(d.child_by_field_name("declarator"))
    return None
