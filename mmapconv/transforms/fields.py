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
