"""MMC207: per-mapping state taken in mmap_prepare."""
from __future__ import annotations

import re

from ..classify import kind_of
from ..effects import at_call
from ..source import automatic_locals
from .catalogue import KNOWLEDGE
from .prepare import arguments, calls, member_chain, strip, writes
from .registry import Context, register

_STATE = KNOWLEDGE["per_mapping"]
_COUNTER = re.compile(_STATE["counter_field"])


def _allocation_target(call):
    """The variable or member an allocation's result is stored in, if any."""
    parent = call.parent
    while parent is not None and parent.type in ("parenthesized_expression", "cast_expression"):
        parent = parent.parent
    if parent is None:
        return None
    if parent.type == "assignment_expression":
        return parent.child_by_field_name("left")
    if parent.type == "init_declarator":
        declarator = parent.child_by_field_name("declarator")
        while declarator is not None and declarator.type == "pointer_declarator":
            declarator = declarator.child_by_field_name("declarator")
        return declarator
    return None


def _freed(src, body, variable: str) -> bool:
    return any(args and src.text(strip(args[0])) == variable
               for _, call in calls(src, body, names=_STATE["frees"]) for args in [arguments(call)])


def _stored_in_desc(src, body, desc: str, variable: str) -> bool:
    for write, target in writes(body):
        value = write.child_by_field_name("right")
        chain = member_chain(src, target)
        if value is not None and chain and chain[0] == desc and src.text(strip(value)) == variable:
            return True
    return False


def _through_helpers(ctx: Context, fn):
    """Calls of helpers no rule names whose effect, through their own callees, is per-mapping state."""
    if ctx.effects is None:
        return
    unknown = [(name, call) for name, call in calls(ctx.src, fn.body) if kind_of(name) is None]
    ctx.effects.prefetch({(name, ctx.near) for name, _ in unknown})
    locals_ = frozenset(automatic_locals(ctx.src, fn.body))
    for name, call in unknown:
        args = tuple(" ".join(ctx.src.text(a).split()) for a in arguments(call))
        effect = at_call(ctx.effects.of_call(name, ctx.near), args, locals_, frozenset())
        if effect.level == "per-mapping-state":
            yield ctx.finding(call, "MMC207", what=effect.describe())


@register("MMC207")
def per_mapping_state(ctx: Context):
    src = ctx.src
    for fn in ctx.prepare_functions:
        yield from _through_helpers(ctx, fn)
        local = automatic_locals(src, fn.body)
        for name, call in calls(src, fn.body):
            if name in _STATE["references"]:
                yield ctx.finding(call, "MMC207", what=f"{name}() takes a reference or counts the mapping")
            elif name.startswith(_STATE["runtime_pm_prefix"]) or name in _STATE["runtime_pm"]:
                yield ctx.finding(call, "MMC207", what=f"{name}() takes a runtime-PM reference per mapping")
            elif name in _STATE["allocations"]:
                target = _allocation_target(call)
                variable = src.text(target) if target is not None else ""
                # A scratch buffer freed before returning is not per-mapping state.
                if target is not None and target.type == "identifier" and variable in local \
                        and _freed(src, fn.body, variable) and not _stored_in_desc(src, fn.body, fn.desc, variable):
                    continue
                yield ctx.finding(call, "MMC207", what=f"{name}() allocates a per-mapping object")
        for write, target in writes(fn.body):
            chain = member_chain(src, target)
            if write.type == "update_expression" or src.text(write.child_by_field_name("operator")) == "+=":
                if chain and chain[0] != fn.desc and chain[1] and _COUNTER.search(chain[1][-1]) \
                        and "--" not in src.text(write):
                    yield ctx.finding(write, "MMC207", what=f"`{src.text(write)}` counts mappings")
                continue
            value = strip(write.child_by_field_name("right"))
            if value is not None and value.type == "identifier" and src.text(value) == fn.desc:
                if not (target.type == "identifier" and src.text(target) in local):
                    yield ctx.finding(write, "MMC207", what=f"storing the descriptor in `{src.text(target)}`")
