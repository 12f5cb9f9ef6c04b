"""MMC210: a vma, or any `struct vm_area_struct`, left in an mmap_prepare hook or helper.

mmap_prepare runs before the VMA exists: a hook receives the descriptor and
nothing else, so `vma->vm_start` in it is a line the conversion forgot (and
does not build: no `vma` is declared). One finding per line, on its first use.
"""
from __future__ import annotations

from ..rules_data import load
from ..source import find
from .prepare import callee, strip
from .registry import Context, register

VMA_TYPE = "vm_area_struct"
VMA_NAME = "vma"
_FIELDS = load("fields")["fields"]
_EXPRESSIONS = {"vma_pages": "vma_desc_pages(DESC)"}
_CALLS = load("calls")["rewrites"]


def _declared(src, fn) -> dict[str, bool]:
    """Names declared in the function (parameters and locals) -> whether their type is a vm_area_struct."""
    out = {}
    for decl in find(fn.node, "parameter_declaration", "declaration"):
        is_vma = any(src.text(t) == VMA_TYPE for t in find(decl, "type_identifier"))
        for d in decl.children_by_field_name("declarator"):
            while d is not None and d.type != "identifier":
                d = d.child_by_field_name("declarator")
            if d is not None:
                out[src.text(d)] = is_vma
    return out


def _hint(src, node, fn) -> str:
    """What the descriptor offers in place of this use of the vma."""
    parent = node.parent
    if parent is not None and parent.type == "field_expression" and parent.child_by_field_name("argument") == node:
        field = src.text(parent.child_by_field_name("field"))
        spec = _FIELDS.get(field)
        if field == "vm_flags":
            return "test and change flags with the vma_desc_*() helpers"
        if spec and spec["desc"]:
            return f"use {spec['desc'].replace('desc->', fn.desc + '->')}"
        return f"the descriptor has no {field}; this needs vm_ops->mapped or a redesign"
    call = parent.parent if parent is not None and parent.type == "argument_list" else None
    if call is not None and call.type == "call_expression":
        name = callee(src, call)
        if name in _EXPRESSIONS:
            return f"use {_EXPRESSIONS[name].replace('DESC', fn.desc)}"
        rewrite = _CALLS.get(name or "")
        if rewrite is not None and "template" in rewrite:
            target = rewrite["template"].split("(", 1)[0]
            return f"{name}() has a descriptor form: {target}()"
        if name is not None:
            return f"{name}() needs the VMA: move it to vm_ops->mapped or pass {fn.desc}"
    return f"use the descriptor `{fn.desc}`"


@register("MMC210")
def vma_in_prepare(ctx: Context):
    src = ctx.src
    for fn in ctx.desc_functions:
        declared = _declared(src, fn)
        # `vma` when nothing else is declared under that name, and every name declared as a vm_area_struct.
        names = {n for n, is_vma in declared.items() if is_vma}
        if not (VMA_NAME in declared and not declared[VMA_NAME]):
            names.add(VMA_NAME)
        lines = set()
        for node in find(fn.node, "identifier", "type_identifier"):
            text = src.text(node)
            line = src.line(node)
            if line in lines:
                continue
            if node.type == "type_identifier" and text == VMA_TYPE:
                what, hint = f"struct {VMA_TYPE}", f"the {fn.kind} receives `struct vm_area_desc *{fn.desc}` only"
            elif node.type == "identifier" and text in names and not _is_declarator(node):
                what, hint = _use_text(src, node), _hint(src, node, fn)
            else:
                continue
            lines.add(line)
            scope = f"mmap_prepare hook {fn.name}()" if fn.kind == "hook" else \
                f"{fn.name}(), which an mmap_prepare hook calls with the descriptor"
            yield ctx.finding(node, "MMC210", what=what, scope=scope, hint=hint)


def _is_declarator(node) -> bool:
    parent = node.parent
    return parent is not None and parent.type in ("init_declarator", "pointer_declarator", "parameter_declaration",
                                                  "declaration")


def _use_text(src, node) -> str:
    """`vma->vm_pgoff` for a member access, `vma_pages(vma)` for a call with a descriptor twin, else the name."""
    parent = node.parent
    if parent is not None and parent.type == "field_expression" and strip(parent.child_by_field_name("argument")) == node:
        return " ".join(src.text(parent).split())
    call = parent.parent if parent is not None and parent.type == "argument_list" else None
    if call is not None and call.type == "call_expression" and callee(src, call) in _EXPRESSIONS:
        return " ".join(src.text(call).split())
    return src.text(node)

