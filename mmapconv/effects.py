"""What a called function does, through its own callees: one effect, with the chain that shows it.

Bottom-up over the definitions the index finds, memoized per definition,
cycle-safe and depth-bounded. The effect is the worst of an ordered set:

    pure < logs < marks < balanced-lock < unknown < per-mapping-state

Only the first four let a callback convert: what is unknown (no body in the
tree, a function pointer, inline assembly, a cycle, the depth bound) is
never assumed safe. rules/classify.toml says what the calls without a body
(primitives, log calls, idempotent marks, lock pairs) do.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import classify
from .index import Definition, DefinitionIndex

LEVELS = ("pure", "logs", "marks", "balanced-lock", "unknown", "per-mapping-state")
ALLOWED = frozenset(LEVELS[:4])
MAX_DEPTH = 6
# Levels of callees searched for in the caller's whole subsystem; deeper ones only in
# the file, its headers, its directory and the include directories (the byte search
# of a subsystem costs about a second a level).
FAR_LEVELS = 0


@dataclass(frozen=True)
class Effect:
    level: str
    chain: tuple[str, ...] = ()      # callee names, from the one asked about to where the effect is
    where: str = ""                  # path:line of the deepest evidence
    what: str = ""                   # what happens there

    @property
    def rank(self) -> int:
        return LEVELS.index(self.level)

    def via(self, name: str) -> "Effect":
        return Effect(self.level, (name, *self.chain), self.where, self.what)

    def describe(self) -> str:
        """`calls a() → b(): path:line: atomic_inc(): ...`, the evidence a person checks."""
        chain = " → ".join(f"{n}()" for n in self.chain)
        return f"calls {chain}: {self.where}: {self.what}" if self.where else f"calls {chain}: {self.what}"


PURE = Effect("pure")


def _worst(effects) -> Effect:
    return max(effects, key=lambda e: e.rank, default=PURE)


class EffectAnalysis:
    """One per run: the definition index and every effect computed, shared by scan, convert and lint."""

    def __init__(self, index: DefinitionIndex):
        self.index = index
        self._summaries: dict[int, classify.Summary] = {}
        self._memo: dict[tuple[str, str], Effect] = {}

    def _summary(self, d: Definition) -> classify.Summary:
        if id(d) not in self._summaries:
            self._summaries[id(d)] = classify.summarize(d.src, d.node)
        return self._summaries[id(d)]

    def prefetch(self, calls: set[tuple[str, str]]) -> None:
        """Find every definition the calls reach, a level at a time: one batch of byte searches per level."""
        seen, frontier = set(), set(calls)
        for level in range(MAX_DEPTH):
            frontier -= seen
            if not frontier:
                return
            seen |= frontier
            self.index.resolve(frontier, far=level < FAR_LEVELS)
            frontier = {(p.callee, d.path) for name, near in frontier for d in self.index.lookup(name, near)
                        for p in self._summary(d).pending}

    def of_call(self, name: str, near: str) -> Effect:
        """The effect of calling `name` from the file `near`."""
        return self._effect(name, near, ())

    def _effect(self, name: str, near: str, stack: tuple[str, ...]) -> Effect:
        key = (name, near)
        if key in self._memo:
            return self._memo[key]
        if name in stack:
            return Effect("unknown", (name,), "", "calls itself back: recursion is not followed")
        if len(stack) >= MAX_DEPTH:
            return Effect("unknown", (name,), "", f"deeper than {MAX_DEPTH} calls: not followed")
        definitions = self.index.lookup(name, near)
        if not definitions:
            effect = Effect("unknown", (name,), "", "no definition in the file, its headers, its directory "
                                                     "or the include directories")
        else:
            # Config variants of one name: the worst of them is what some build gets.
            effect = _worst(self._definition(d, (*stack, name)) for d in definitions).via(name)
        if not any(n in stack for n in effect.chain[1:]):
            self._memo[key] = effect   # an effect cut short by a cycle is not the name's own
        return effect

    def _definition(self, d: Definition, stack: tuple[str, ...]) -> Effect:
        summary = self._summary(d)
        own = [self._evidence(d, e) for e in summary.evidence]
        held = classify.unbalanced(summary.locks)
        if held is not None:
            own.append(Effect("unknown", (), f"{d.path}:{held[0]}", f"{held[1]}() is not paired with its release "
                                                                    "in this body: a lock held past the return"))
        elif summary.locks:
            own.append(Effect("balanced-lock", (), f"{d.path}:{summary.locks[0][0]}",
                              f"{summary.locks[0][1]}() and its release, both inside"))
        worst = _worst(own)
        if worst.rank >= LEVELS.index("unknown"):
            return worst   # no callee can make it better, and following them costs
        return _worst([worst, *(self._effect(p.callee, d.path, stack) for p in summary.pending)])

    @staticmethod
    def _evidence(d: Definition, e: classify.Evidence) -> Effect:
        where = f"{d.path}:{e.line}"
        if e.category == "e":
            return Effect("per-mapping-state", (), where, e.message)
        if e.category in classify.AUTO_CATEGORIES:
            level = {"marks": "marks", "logs": "logs"}.get(e.code, "pure")
            return Effect(level, (), where, e.message)
        return Effect("unknown", (), where, e.message)
