"""The hub plan: which delegation target to convert first, and what keeps it from converting.

A hub is a function (or a function pointer) that delegating callbacks hand
the vma to; converting it unblocks every instance behind it. Its own
classification comes from the scan when it is a file_operations callback
itself, else from its definition, read with the same classifier and effect
analysis as every callback.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import classify
from .effects import ALLOWED, EffectAnalysis

_NAME = re.compile(r"[A-Za-z_]\w*")
SHOWN_BLOCKERS = 3


@dataclass
class HubPlan:
    function: str
    blocked_instances: int
    where: str = ""                 # path:line of the definition analysed, if any
    verdict: str = "not found"      # auto | manual | not found | function pointer
    blockers: list[classify.Evidence] = field(default_factory=list)

    def describe(self) -> str:
        what = f"convert {self.function} to unblock {self.blocked_instances} instance(s)"
        if not self.blockers:
            return f"{what}: {self.verdict}"
        return f"{what}: {self.verdict}: " + "; ".join(f"line {b.line}: {b.message}" for b in self.blockers)


def plan_hubs(result, effects: EffectAnalysis, limit: int = 10) -> list[HubPlan]:
    """The hubs that block the most instances, each with its own classification and first blockers."""
    by_name = {fn.function: fn for fn in result.functions}
    near = {}
    for fn in result.functions:
        for target in fn.delegates_to:
            near.setdefault(target, fn.path)
    plans = []
    for name, blocked in result.hubs[:limit]:
        if name in by_name:
            fn = by_name[name]
            plans.append(HubPlan(name, blocked, f"{fn.path}:{fn.line}", fn.verdict,
                                 [r for r in fn.reasons if r.category not in classify.AUTO_CATEGORIES][:SHOWN_BLOCKERS]))
        elif not _NAME.fullmatch(name):
            plans.append(HubPlan(name, blocked, verdict="function pointer"))
        else:
            plans.append(_from_definition(name, blocked, near.get(name, ""), effects))
    return plans


def _from_definition(name: str, blocked: int, near: str, effects: EffectAnalysis) -> HubPlan:
    definitions = effects.index.lookup(name, near) if near else []
    if not definitions:
        return HubPlan(name, blocked)
    d = definitions[0]
    summary = classify.summarize(d.src, d.node)
    effects.prefetch({(c.callee, d.path) for c in summary.pending if not c.passes_vma})
    blockers = [e for e in summary.evidence if e.category not in classify.AUTO_CATEGORIES]
    for call in summary.pending:
        if call.passes_vma:
            blockers.append(classify.Evidence(call.line, "f", "delegates", f"hands the vma to {call.callee}()"))
            continue
        effect = effects.of_call(call.callee, d.path)
        if effect.level not in ALLOWED:
            blockers.append(classify.Evidence(call.line, "i", effect.level, effect.describe()))
    blockers.sort(key=lambda e: e.line)
    return HubPlan(name, blocked, f"{d.path}:{d.line}", "manual" if blockers else "auto", blockers[:SHOWN_BLOCKERS])
