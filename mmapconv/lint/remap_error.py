"""MMC209: a remap action whose failure no longer returns the error the driver chose.

Lint sees only the result, so the finding is informational; check-patch
(mmapconv.patch) looks at the lines the patch removed and raises it to a
warning when they returned a specific error for a failing remap.
"""
from __future__ import annotations

from .catalogue import KNOWLEDGE
from .prepare import calls, is_desc_member, writes
from .registry import Context, register

_ACTIONS = KNOWLEDGE["actions"]
LINT_DETAIL = ("a failing remap now fails mmap() with the remap's own error; "
               "if the old .mmap returned a specific one (e.g. -EAGAIN), keep it with an error_hook")


def sets_error_hook(src, fn) -> bool:
    return any(is_desc_member(src, target, fn.desc, "action", "error_hook") for _, target in writes(fn.body))


@register("MMC209")
def remap_error_changed(ctx: Context):
    for fn in ctx.prepare_functions:
        if sets_error_hook(ctx.src, fn):
            continue
        for name, call in calls(ctx.src, fn.body, names=_ACTIONS["remapping"]):
            yield ctx.finding(call, "MMC209", call=name, detail=LINT_DETAIL)
