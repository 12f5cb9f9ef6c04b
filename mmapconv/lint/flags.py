"""MMC201-MMC203: the legacy flag API inside an mmap_prepare function."""
from __future__ import annotations

from ..rules_data import load
from ..source import find
from .catalogue import KNOWLEDGE, api_level, has_vma_flags
from .prepare import arguments, calls, is_desc_member
from .registry import Context, register

_CALLS = KNOWLEDGE["flags"]["calls"]
_FLAG_MAP = load("flags")
_NEW_NAME: dict[str, str] = {**_FLAG_MAP["bits"], **_FLAG_MAP["masks"]}
# vm_flags_* call -> the api.toml template that replaces it, for bit numbers and for composite masks.
_TEMPLATE = {
    "vm_flags_set": ("set_flags", "set_mask"), "vm_flags_init": ("set_flags", "set_mask"),
    "vm_flags_reset": ("set_flags", "set_mask"), "vm_flags_clear": ("clear_flags", "clear_mask"),
}


def masks_in(src, node) -> list[str]:
    return [src.text(n) for n in find(node, "identifier") if src.text(n) in _NEW_NAME]


def _replacement(src, call_name, call, desc, api) -> str:
    """The descriptor form of a vm_flags_*() call at this API level, spelled out when its masks are known."""
    level = api_level(api)
    if call_name not in _TEMPLATE:
        return f"{_describe(level['set_flags'])} and {_describe(level['clear_flags'])}"
    args = arguments(call)
    masks = masks_in(src, args[1]) if len(args) > 1 else []
    composite = any(m in _FLAG_MAP["masks"] for m in masks)
    template = level[_TEMPLATE[call_name][composite]]
    if not masks or not all(m in _NEW_NAME for m in masks):
        return _describe(template)
    if level["flag_style"] == "bits":
        values = ", ".join(_NEW_NAME[m] for m in masks)
        mask = values
    else:
        values = " | ".join(masks)
        mask = f"({values})" if len(masks) > 1 else values
    text = template.replace("DESC", desc).replace("ARGS", values).replace("MASK", mask)
    return text if level["flag_style"] == "bits" else f"`{text}`"


def _describe(template: str) -> str:
    """`vma_desc_set_flags()` for a call template, the template itself for an expression."""
    name = template.split("(", 1)[0]
    return f"{name}()" if name.isidentifier() else f"`{template}`"


@register("MMC201", "MMC202", "MMC203")
def legacy_flags(ctx: Context):
    src, vma_flags = ctx.src, has_vma_flags(ctx.api)
    for fn in ctx.desc_functions:
        reported = []   # spans already explained by a finding on the whole construct
        for name, call in calls(src, fn.body, names=_CALLS):
            yield ctx.finding(call, "MMC202", call=name, replacement=_replacement(src, name, call, fn.desc, ctx.api))
            reported.append(call)
        if not vma_flags:
            continue
        for node in find(fn.body, "field_expression"):
            if is_desc_member(src, node, fn.desc, "vm_flags"):
                yield ctx.finding(node, "MMC201", api=ctx.api)
                reported.append(node.parent if node.parent.type in ("binary_expression", "assignment_expression") else node)
        for node in find(fn.body, "identifier"):
            mask = src.text(node)
            if mask in _NEW_NAME and not any(r.start_byte <= node.start_byte < r.end_byte for r in reported):
                yield ctx.finding(node, "MMC203", mask=mask, replacement=_NEW_NAME[mask])
