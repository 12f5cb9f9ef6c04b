"""MMC403: a same-file helper the callback shares with other paths is split into a core and its vma form.

The core takes what the helper read from the vma (its range, offset, file,
protection) instead of the vma; the helper keeps its name and signature for
its other callers (fault handlers) and calls the core; the callback calls
the core with the vma's fields, which the safe planner then reads from the
descriptor (device-dax's check_vma became __check_vma this way). A helper
that reads the vma's flags stays: no form of a vma's flags exists that both a
vma and a descriptor can give (API.md's vma_flags_t is the descriptor's).
"""
from __future__ import annotations

import re

from ..edits import Edit, apply
from ..plan import leading_comment_start
from ..rules_data import load
from ..source import SourceFile, decode, find, function_declarator, parameters
from ..style import wrap_line
from . import FixRefused, NotMine, Rewrite, Target, unsafe_fix

# What the helper may read from the vma: field -> (core parameter, its declaration).
_VALUES: dict[str, list[str]] = load("fixes")["split"]["values"]
# Whole expressions over the vma, rewritten in the core's parameters first.
_DERIVED = {"vma_pages": "((end - start) >> PAGE_SHIFT)"}


@unsafe_fix("MMC403", answers=("not-convertible",))
def split_shared_helper(t: Target) -> Rewrite:
    if t.refusal is None or "which is also used elsewhere" not in t.refusal.message:
        raise NotMine
    src = t.src
    params = parameters(src, t.node)
    vma = params[1][1] if len(params) == 2 else None
    call = next((c for c in find(t.node, "call_expression") if src.line(c) == t.refusal.line and vma in
                 [src.text(a) for a in c.child_by_field_name("arguments").named_children]), None)
    if call is None:
        raise NotMine
    name = src.text(call.child_by_field_name("function"))
    helpers = src.definitions_named(name)
    if len(helpers) != 1:
        raise FixRefused(src.line(call), f"{name}() is defined {len(helpers)} times in this file")
    helper = helpers[0]
    if helper.start_byte > t.node.start_byte:
        raise FixRefused(src.line(helper), f"{name}() is defined after the callback: move it above, then split it")
    core = "__" + name
    if re.search(rb"\b" + core.encode() + rb"\b", src.data):
        raise FixRefused(src.line(helper), f"{core} already exists in this file")
    hparams = parameters(src, helper)
    at = [i for i, (ty, _) in enumerate(hparams) if "vm_area_struct" in ty]
    args = call.child_by_field_name("arguments").named_children
    if len(at) != 1 or at[0] >= len(args) or src.text(args[at[0]]) != vma:
        raise FixRefused(src.line(call), f"{name}() takes the vma in a way mmapconv does not split")
    index, hvma = at[0], hparams[at[0]][1]
    body = helper.child_by_field_name("body")
    fields, body_edits = _reads(src, body, hvma)
    taken = {src.text(i) for i in find(body, "identifier")} | {n for _, n in hparams}
    clash = [_VALUES[f][0] for f in fields if _VALUES[f][0] in taken - {hvma}]
    if clash:
        raise FixRefused(src.line(helper), f"{name}() already uses the name `{clash[0]}`")

    pnodes = [p for p in function_declarator(helper).child_by_field_name("parameters").named_children
              if p.type == "parameter_declaration"]
    declared = ", ".join(_VALUES[f][1] for f in fields) or "void"
    head = decode(src.data[helper.start_byte:pnodes[index].start_byte]) + declared + \
        decode(src.data[pnodes[index].end_byte:body.start_byte])
    head = head.replace(name + "(", core + "(", 1)
    core_text = _wrapped(head.rstrip()) + "\n" + decode(apply(src.data[body.start_byte:body.end_byte], body_edits,
                                                                base=body.start_byte))

    def call_text(vma_name: str, others: list[str]) -> str:
        values = [f"{vma_name}->{f}" for f in fields]
        return f"{core}({', '.join(others[:index] + values + others[index + 1:])})"

    names = [p[1] for p in hparams]
    returns = src.text(helper.child_by_field_name("type")).strip() != "void" or \
        src.text(function_declarator(helper).parent).startswith("*")
    wrapper_call = call_text(hvma, names)
    callback_call = call_text(vma, [src.text(a) for a in args])
    # The core goes above the helper and any comment of it: a kernel-doc stays with the signature it documents.
    at = leading_comment_start(src, helper)
    edits = [Edit(at, at, core_text + "\n\n"),
             Edit(body.start_byte, body.end_byte,
                  "{\n" + wrap_line(f"\t{'return ' if returns else ''}{wrapper_call};") + "\n}"),
             Edit(call.start_byte, call.end_byte, callback_call)]
    return Rewrite(apply(src.data, edits), {t.refusal.line}, {"helper": name, "core": core,
                                                              "values": ", ".join(_VALUES[f][0] for f in fields)})


def _reads(src: SourceFile, body, vma: str) -> tuple[list[str], list[Edit]]:
    """The vma fields the helper reads, in the core's parameter order, and its body's edits to read them."""
    fields, edits = set(), []
    for ident in find(body, "identifier"):
        if src.text(ident) != vma:
            continue
        parent = ident.parent
        if parent.type == "field_expression":
            field = src.text(parent.child_by_field_name("field"))
            if field == "vm_flags":
                raise FixRefused(src.line(ident), "reads the vma's flags: no form of them exists that a vma and a "
                                                  "descriptor can both give the core (vma_flags_t is the descriptor's)")
            if field not in _VALUES or _assigned(parent):
                raise FixRefused(src.line(ident), f"uses the vma as `{src.text(parent)}`")
            fields.add(field)
            edits.append(Edit(parent.start_byte, parent.end_byte, _VALUES[field][0]))
            continue
        call = parent.parent if parent.type == "argument_list" else None
        callee = src.text(call.child_by_field_name("function")) if call is not None else None
        if callee in _DERIVED and len(parent.named_children) == 1:
            fields |= {"vm_start", "vm_end"}
            edits.append(Edit(call.start_byte, call.end_byte, _DERIVED[callee]))
            continue
        raise FixRefused(src.line(ident), f"hands the vma on: `{' '.join(src.text(parent.parent or parent).split())[:50]}`")
    return [f for f in _VALUES if f in fields], edits


def _assigned(field) -> bool:
    parent = field.parent
    return parent.type == "assignment_expression" and parent.child_by_field_name("left") == field or \
        parent.type == "update_expression"


def _wrapped(head: str) -> str:
    """A long parameter list under its opening parenthesis, as the kernel writes it."""
    return head if len(head.expandtabs(8)) <= 80 else wrap_line(head)
