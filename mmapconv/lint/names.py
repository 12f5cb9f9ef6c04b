"""MMC301-MMC303: names that never landed, were renamed, or are missing at the API level."""
from __future__ import annotations

from ..source import find
from .catalogue import KNOWLEDGE
from .registry import Context, register

_NAMES = KNOWLEDGE["names"]
# Node types that spell a name in code (not in comments or strings).
NAME_NODES = ("identifier", "field_identifier", "type_identifier")


def _is_member(node) -> bool:
    parent = node.parent
    return node.type == "field_identifier" or (parent is not None and parent.type == "field_designator")


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
        elif name in missing or (f".{name}" in missing and _is_member(node)):
            seen.add(key)
            yield ctx.finding(node, "MMC303", name=name, api=ctx.api)
