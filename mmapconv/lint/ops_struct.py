"""MMC101, MMC102: the hooks an ops-struct initializer sets."""
from __future__ import annotations

from ..source import find
from .prepare import designator_member
from .registry import Context, register


def _member_columns(ctx: Context, member: str) -> dict[int, int]:
    """Line -> column of `.member =` entries, to point at the entry itself."""
    out = {}
    for pair in find(ctx.src.root, "initializer_pair"):
        if designator_member(ctx.src, pair) == member:
            out.setdefault(ctx.src.line(pair), pair.start_point[1] + 1)
    return out


@register("MMC101")
def deprecated_mmap(ctx: Context):
    columns = _member_columns(ctx, "mmap")
    for use in ctx.mmap_uses:
        if use.verdict == "auto":
            verdict = "auto-fixable by `mmapconv convert`"
        elif use.verdict == "manual":
            verdict = f"manual: {use.reason}" if use.reason else "manual"
        else:
            verdict = "not classified"
        yield ctx.finding(use.line, "MMC101", col=columns.get(use.line), function=use.function, verdict=verdict,
                          fix_safety=None if use.verdict == "auto" else "none")


@register("MMC102")
def both_hooks(ctx: Context):
    src = ctx.src
    for initializer in find(src.root, "initializer_list"):
        pairs = {}
        for pair in initializer.named_children:
            if pair.type == "initializer_pair":
                pairs.setdefault(designator_member(src, pair), pair)
        if "mmap" in pairs and "mmap_prepare" in pairs:
            # The later entry is the one that made the struct wrong.
            yield ctx.finding(max(pairs["mmap"], pairs["mmap_prepare"], key=lambda p: p.start_byte), "MMC102")
