"""MMC301-MMC303: names that never landed, were renamed, or are missing at the API level."""
from __future__ import annotations

from ..source import ancestor, find
from .catalogue import KNOWLEDGE
from .registry import Context, register

_NAMES = KNOWLEDGE["names"]
# Node types that spell a name in code (not in comments or strings).
NAME_NODES = ("identifier", "field_identifier", "type_identifier")


def _is_vm_ops_member(src, node) -> bool:
    """`.mapped` of a vm_operations_struct initializer, or `vm_ops->mapped`: other structs' members
    of the same name (kvm's, powerpc's) are no API at all."""
    parent = node.parent
    if parent is not None and parent.type == "field_designator":
        holder = ancestor(node, "declaration", "compound_literal_expression")
        return holder is not None and "vm_operations_struct" in src.text(holder.child_by_field_name("type") or holder)
    if node.type == "field_identifier" and parent is not None and parent.type == "field_expression":
        argument = parent.child_by_field_name("argument")
        return argument is not None and src.text(argument).replace(" ", "").endswith("vm_ops")
    return False


@register("MMC301", "MMC302", "MMC303")
def unknown_names(ctx: Context):
    src = ctx.src
    missing = set(_NAMES["missing"].get(ctx.api, []))
    seen = set()
    for node in find(src.root, *NAME_NODES):
        name = src.text(node)
        key = (src.line(node), name)
        if key in seen:
            continue
        if name in _NAMES["never_landed"]:
            seen.add(key)
            yield ctx.finding(node, "MMC302", name=name, note=_NAMES["never_landed"][name])
        elif ctx.api in _NAMES["renamed"].get(name, {}):
            seen.add(key)
            yield ctx.finding(node, "MMC301", name=name, problem=_NAMES["renamed"][name][ctx.api])
        elif name in missing or (f".{name}" in missing and _is_vm_ops_member(src, node)):
            seen.add(key)
            yield ctx.finding(node, "MMC303", name=name, api=ctx.api)
