"""MMC204-MMC206: how an mmap_prepare function requests its one action.

MMC204 and MMC206 check hooks and the helpers they hand the descriptor to;
MMC205 (one action per path) only hooks: a helper's action is one of its caller's.
"""
from __future__ import annotations

from .catalogue import KNOWLEDGE
from .prepare import calls, is_desc_member, member_chain, same_path, writes
from .registry import Context, register

_ACTIONS = KNOWLEDGE["actions"]


def action_calls(ctx: Context, fn):
    return list(calls(ctx.src, fn.body, prefix=_ACTIONS["prefix"]))


@register("MMC204")
def action_field_write(ctx: Context):
    for fn in ctx.desc_functions:
        for _, target in writes(fn.body):
            chain = member_chain(ctx.src, target)
            if chain is None or chain[0] != fn.desc or chain[1][:1] != ["action"]:
                continue
            if len(chain[1]) > 1 and chain[1][1] in _ACTIONS["driver_members"]:
                continue
            yield ctx.finding(target, "MMC204", target=ctx.src.text(target))


@register("MMC205")
def several_actions(ctx: Context):
    for fn in ctx.prepare_functions:
        found = action_calls(ctx, fn)
        for i, (name, call) in enumerate(found):
            first = next(((n, c) for n, c in found[:i] if same_path(fn.body, c, call)), None)
            if first is not None:
                yield ctx.finding(call, "MMC205", call=name, first=first[0], first_line=ctx.src.line(first[1]))


@register("MMC206")
def page_prot_after_action(ctx: Context):
    for fn in ctx.desc_functions:
        found = action_calls(ctx, fn)
        for write, target in writes(fn.body):
            if not is_desc_member(ctx.src, target, fn.desc, "page_prot"):
                continue
            before = [(n, c) for n, c in found if c.end_byte <= write.start_byte and same_path(fn.body, c, write)]
            if before:
                name, call = before[-1]
                yield ctx.finding(write, "MMC206", call=name, call_line=ctx.src.line(call))
