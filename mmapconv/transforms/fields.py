"""vma->field becomes the descriptor field of rules/fields.toml; the vma size gets its helper."""
from __future__ import annotations

from ..rules_data import load
from . import Context, rewrite

_FIELDS = load("fields")["fields"]


def vma_field(ctx: Context, node) -> str | None:
    """The field name when `node` is `vma->field`."""
    if node.type != "field_expression" or not ctx.is_vma(node.child_by_field_name("argument")):
        return None
    return ctx.src.text(node.child_by_field_name("field"))


_CONDITION_HOLDERS = ("if_statement", "while_statement", "do_statement", "switch_statement")


@rewrite
def parenthesized_vma_size(ctx: Context, node) -> str | None:
    """`(vma->vm_end - vma->vm_start)` needs no parentheses once it is a call."""
    if node.type != "parenthesized_expression" or node.parent is None or node.parent.type in _CONDITION_HOLDERS:
        return None
    inner = node.named_children[0] if node.named_children else None
    return vma_size(ctx, inner) if inner is not None else None


@rewrite
def vma_size(ctx: Context, node) -> str | None:
    if node.type != "binary_expression" or ctx.src.text(node.child_by_field_name("operator")) != "-":
        return None
    if vma_field(ctx, node.child_by_field_name("left")) == "vm_end" and \
            vma_field(ctx, node.child_by_field_name("right")) == "vm_start":
        return f"vma_desc_size({ctx.desc})"
    return None


@rewrite
def descriptor_field(ctx: Context, node) -> str | None:
    name = vma_field(ctx, node)
    if name is None:
        return None
    spec = _FIELDS.get(name)
    if name == "vm_flags":
        ctx.refuse(node, "vma->vm_flags used outside a flag test")
    if spec is None or not spec["desc"]:
        ctx.refuse(node, f"vma->{name} has no descriptor counterpart here")
    return spec["desc"].replace("desc", ctx.desc, 1)
