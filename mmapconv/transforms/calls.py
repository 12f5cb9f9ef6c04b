"""Calls that become another call with the same meaning (rules/calls.toml, no action)."""
from __future__ import annotations

from ..rules_data import load
from . import Context, call_args, call_name, fill, render, rewrite
from .fields import vma_field

_REWRITES = load("calls")["rewrites"]


@rewrite
def plain_call(ctx: Context, node) -> str | None:
    name = call_name(ctx, node)
    spec = _REWRITES.get(name)
    if spec is None or "action" in spec:
        return None
    if ctx.level not in spec.get("levels", [ctx.level]):
        ctx.refuse(node, f"{name}() has no descriptor form at API {ctx.level} (from {', '.join(spec['levels'])})")
    args = call_args(node)
    if len(args) != len(spec["args"]):
        ctx.refuse(node, f"{name}() with {len(args)} arguments")
    values = {}
    for param, arg in zip(spec["args"], args):
        if param == "vma" and not ctx.is_vma(arg):
            ctx.refuse(node, f"{name}() on a vma other than the one being mapped")
        if param == "vm_flags":
            if vma_field(ctx, arg) != "vm_flags":
                ctx.refuse(node, f"{name}() on flags other than the mapping's own")
            continue   # the template names the descriptor's flags itself
        if param == "file" and (ctx.file is None or ctx.src.text(arg) != ctx.file):
            ctx.refuse(node, f"{name}() on a file other than the one being mapped")
        values[param] = render(ctx, arg)
    template = spec["template"]
    if template.startswith("@"):
        template = ctx.api[template[1:]]
    return fill(template, ctx, values)
