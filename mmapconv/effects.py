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

from dataclasses import dataclass, replace

from . import classify
from .index import Definition, DefinitionIndex

LEVELS = ("pure", "logs", "marks", "balanced-lock", "unknown", "per-mapping-state")
ALLOWED = frozenset(LEVELS[:4])
MAX_DEPTH = 6
HEADER_SEARCHES = 2


@dataclass(frozen=True)
class Effect:
    level: str
    chain: tuple[str, ...] = ()      # callee names, from the one asked about to where the effect is
    where: str = ""                  # path:line of the deepest evidence
    what: str = ""                   # what happens there
    # Writes through parameters, (index, path:line, what): state unless the caller passes its own `&local`.
    params: frozenset[tuple[int, str, str]] = frozenset()
    # Cut short by the depth bound or a cycle somewhere below: true of this path, not of the name.
    partial: bool = False

    @property
    def rank(self) -> int:
        return LEVELS.index(self.level)

    def via(self, name: str) -> "Effect":
        return replace(self, chain=(name, *self.chain))

    def describe(self) -> str:
        """`calls a() → b(): path:line: atomic_inc(): ...`, the evidence a person checks."""
        chain = " → ".join(f"{n}()" for n in self.chain)
        return f"calls {chain}: {self.where}: {self.what}" if self.where else f"calls {chain}: {self.what}"


PURE = Effect("pure")


def at_call(effect: Effect, args: tuple[str, ...], locals_: frozenset[str], arrays: frozenset[str]) -> Effect:
    """The effect of one call: a write through an argument is state unless it is the caller's own `&local`."""
    for write in sorted(effect.params):
        argument = args[write[0]] if write[0] < len(args) else ""
        if effect.level in ALLOWED and classify.argument_memory(locals_, arrays, argument) != "local":
            effect = written_through(effect, write, argument)
    return effect


def written_through(effect: Effect, write: tuple[int, str, str], argument: str) -> Effect:
    """A callee that writes through a pointer its caller passed, when that is not the caller's own local."""
    _, where, what = write
    return Effect("per-mapping-state", effect.chain, where, f"{what} (through the argument `{argument}`)")


def _worst(effects) -> Effect:
    """The highest effect; the parameters written through are what the caller checks, not part of the level."""
    effects = list(effects)
    return replace(max(effects, key=lambda e: e.rank, default=PURE), params=frozenset(),
                   partial=any(e.partial for e in effects))


class EffectAnalysis:
    """One per run: the definition index and every effect computed, shared by scan, convert and lint."""

    def __init__(self, index: DefinitionIndex):
        self.index = index
        self._summaries: dict[int, classify.Summary] = {}
        self._memo: dict[tuple[str, str], Effect] = {}

    def _summary(self, d: Definition) -> classify.Summary | None:
        if id(d) not in self._summaries:
            self._summaries[id(d)] = classify.summarize(d.src, d.node)
        return self._summaries[id(d)]

    def prefetch(self, calls: set[tuple[str, str]]) -> None:
        """Find every definition the calls reach, to the depth bound.

        The near tiers answer most names at once; the others wait until
        nothing near is left to follow, then one byte search answers them
        all: a handful of searches for a tree instead of one per level.
        """
        depth = dict.fromkeys(calls, 0)
        frontier, parked, searches = set(calls), set(), 0
        while frontier or parked:
            if frontier:
                missing = self.index.resolve_near(frontier)
                parked |= missing
                resolved, frontier = frontier - missing, set()
            else:
                # Each search of the include directories costs a tenth of a second or more;
                # past HEADER_SEARCHES a name no nearer tier defines stays undefined (unknown).
                self.index.resolve_headers(parked, search=searches < HEADER_SEARCHES)
                searches += 1
                resolved, parked = parked, set()
            for name, near in resolved:
                if depth[(name, near)] + 1 >= MAX_DEPTH:
                    continue
                for d in self.index.lookup(name, near):
                    for p in getattr(self._summary(d), "pending", ()):
                        key = (p.callee, d.path)
                        if key not in depth:
                            depth[key] = depth[(name, near)] + 1
                            frontier.add(key)

    def of_call(self, name: str, near: str) -> Effect:
        """The effect of calling `name` from the file `near`."""
        return self._effect(name, near, ())

    def _effect(self, name: str, near: str, stack: tuple[str, ...]) -> Effect:
        key = (name, near)
        if key in self._memo:
            return self._memo[key]
        if name in stack:
            return Effect("unknown", (name,), "", "calls itself back: recursion is not followed", partial=True)
        if len(stack) >= MAX_DEPTH:
            return Effect("unknown", (name,), "", f"deeper than {MAX_DEPTH} calls: not followed", partial=True)
        definitions = self.index.lookup(name, near)
        if not definitions:
            effect = Effect("unknown", (name,), "", "no definition in the file, its headers, its directory "
                                                     "or the include directories")
        else:
            # Config variants of one name: the worst of them is what some build gets.
            variants = [self._definition(d, (*stack, name)) for d in definitions]
            effect = replace(_worst(variants), params=frozenset().union(*(v.params for v in variants))).via(name)
        if not effect.partial:
            self._memo[key] = effect
        return effect

    def _definition(self, d: Definition, stack: tuple[str, ...]) -> Effect:
        summary = self._summary(d)
        if summary is None:
            return Effect("unknown", (), f"{d.path}:{d.line}", "the definition does not parse as a function")
        params = {(e.param, f"{d.path}:{e.line}", e.message) for e in summary.evidence if e.param is not None}
        own = [self._evidence(d, e) for e in summary.evidence if e.param is None]
        held = classify.unbalanced(summary.locks)
        if held is not None:
            own.append(Effect("unknown", (), f"{d.path}:{held[0]}", f"{held[1]}() is not paired with its release "
                                                                    "in this body: a lock held past the return"))
        elif summary.locks:
            own.append(Effect("balanced-lock", (), f"{d.path}:{summary.locks[0][0]}",
                              f"{summary.locks[0][1]}() and its release, both inside"))
        worst = _worst(own)
        if worst.rank >= LEVELS.index("unknown"):
            # No callee can make it better, and following them costs.
            return replace(worst, params=frozenset(params), partial=False)
        effects = [worst]
        positions = {n: i for i, n in enumerate(summary.params) if n}
        for call in summary.pending:
            callee = self._effect(call.callee, d.path, stack)
            for write in sorted(callee.params):   # a set: sorted, or the evidence shown depends on the hash seed
                argument = call.args[write[0]] if write[0] < len(call.args) else ""
                memory = classify.argument_memory(summary.locals, summary.arrays, argument, positions)
                if isinstance(memory, int):
                    params.add((memory, *write[1:]))
                elif memory != "local":
                    effects.append(written_through(callee, write, argument))
            effects.append(callee)
        return replace(_worst(effects), params=frozenset(params), partial=any(e.partial for e in effects))
    @staticmethod
    def _evidence(d: Definition, e: classify.Evidence) -> Effect:
        where = f"{d.path}:{e.line}"
        if e.category == "e":
            return Effect("per-mapping-state", (), where, e.message)
        if e.category in classify.AUTO_CATEGORIES:
            level = {"marks": "marks", "logs": "logs"}.get(e.code, "pure")
            return Effect(level, (), where, e.message)
        return Effect("unknown", (), where, e.message)
