"""Scans a tree: finds mmap instances, resolves their functions, classifies them.

Work is done per file in worker processes, in three passes that each read
only what they need: headers (to learn the macros that set `.mmap`), C files
(instances, macro uses, callbacks), then the files that define callbacks or
vma helpers that the first passes referenced but did not see.
"""
from __future__ import annotations

import heapq
import os
import re
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import classify, prefilter
from .effects import ALLOWED as ALLOWED_EFFECTS, EffectAnalysis, at_call
from .index import DefinitionIndex
from .discover import MEMBERS, PREFILTER_ALL, PREFILTER_TARGET, TARGET_MEMBER, TARGET_STRUCT, Instance, MacroDef, discover
from .plan import Refusal, plan_function
from .references import UnknownReference, reference_edits
from .rules_data import load
from .source import InputError, SourceFile, count_errors, function_name

# Names of functions defined with a vma parameter, found without parsing.
_VMA_DEFINITION = re.compile(
    rb"^[A-Za-z_][^;{}()#\n]*?\b([A-Za-z_]\w*)\s*\(([^;{})]*struct\s+vm_area_struct\s*\*[^;{})]*)\)\s*\{", re.M)


@dataclass
class ScanError:
    path: str
    message: str


@dataclass
class FileResult:
    path: str
    instances: list[Instance] = field(default_factory=list)
    macros: list[MacroDef] = field(default_factory=list)
    aliases: dict[str, list[str]] = field(default_factory=dict)
    summaries: dict[str, list[classify.Summary]] = field(default_factory=dict)
    errors: list[ScanError] = field(default_factory=list)
    embedded: dict[str, str] = field(default_factory=dict)
    syntax_errors: int = 0   # ERROR and MISSING nodes of its tree


@dataclass
class FunctionResult:
    function: str
    path: str
    line: int
    static: bool
    summaries: list[classify.Summary]
    verdict: str = "manual"
    instances: int = 0
    twin: str | None = None  # an existing mmap_prepare the initializers switch to
    notes: list[classify.Evidence] = field(default_factory=list)  # found while linking, not in a body

    @property
    def evidence(self) -> list[classify.Evidence]:
        return sorted([e for s in self.summaries for e in s.evidence] + self.notes, key=lambda e: e.line)

    @property
    def categories(self) -> list[str]:
        if self.twin:
            return ["d"]  # the generic mapping itself, whatever its body does
        present = {c for s in self.summaries for c in s.categories} | {e.category for e in self.notes}
        return [c for c in classify.PRIMARY_ORDER if c in present]

    @property
    def primary(self) -> str:
        return self.categories[0]

    @property
    def delegates_to(self) -> list[str]:
        return sorted({d for s in self.summaries for d in s.delegates_to})

    @property
    def reasons(self) -> list[classify.Evidence]:
        """The evidence for the categories, then why the converter refused, if it did."""
        return self.evidence + [s.refusal for s in self.summaries if s.refusal is not None]

    @property
    def first_reason(self) -> classify.Evidence | None:
        """What a person reads first: the first evidence that blocks conversion, else the first at all."""
        reasons = self.reasons
        return next((r for r in reasons if r.category not in classify.AUTO_CATEGORIES), reasons[0] if reasons else None)


@dataclass
class ResolvedInstance:
    instance: Instance
    resolution: str                  # "function", "null", "unresolved", "not-a-function"
    function: FunctionResult | None = None


@dataclass
class ScanResult:
    root: Path
    instances: list[ResolvedInstance]
    functions: list[FunctionResult]
    errors: list[ScanError]
    all_instances: list[ResolvedInstance]  # every ops struct, for --all-ops
    # Per file, the functions its own initializers name that the planner converts: what
    # convert's "converting again changes nothing" check compares a converted file with.
    convertible: dict[str, set[str]] = field(default_factory=dict)
    syntax_errors: dict[str, int] = field(default_factory=dict)   # per file analysed, for the same check
    level: str = "newest"
    hub_plans: list = field(default_factory=list)   # hubs.HubPlan, most blocking first (scan's report)
    search: prefilter.TreeSearch | None = None      # the run's one walk of the tree, for later questions

    @property
    def hubs(self) -> list[tuple[str, int]]:
        blocked: dict[str, int] = defaultdict(int)
        for fn in self.functions:
            if "f" not in fn.categories:
                continue
            for target in {fn.function, *fn.delegates_to}:
                blocked[target] += fn.instances
        return sorted(blocked.items(), key=lambda kv: (-kv[1], kv[0]))


def tree_root(paths: list[Path]) -> Path:
    """The directory paths are shown relative to: the one directory named, or what the paths share."""
    if len(paths) == 1 and paths[0].is_dir():
        return paths[0]
    parents = [p if p.is_dir() else p.parent for p in paths]
    common = Path(*Path(parents[0]).resolve().parts)
    for p in parents[1:]:
        while not str(p.resolve()).startswith(str(common)):
            common = common.parent
    return common


def analyze(src: SourceFile, macros: dict[str, MacroDef], level: str = "newest") -> FileResult:
    """Everything one file tells: instances, macros, aliases, vma functions (helpers resolved in-file)."""
    found = discover(src, macros)
    result = FileResult(src.path, found.instances, found.macros, found.aliases, embedded=found.embedded,
                        syntax_errors=count_errors(src.root))
    definitions: dict[str, list] = defaultdict(list)
    for fn in src.find("function_definition"):
        name = function_name(src, fn)
        if name:
            definitions[name].append(fn)
    wanted = {i.function for i in found.instances}
    for name, alias_targets in found.aliases.items():
        if name in wanted:
            wanted.update(alias_targets)
    nodes_of: dict[int, object] = {}
    for name, nodes in definitions.items():
        if name in wanted or any(classify.takes_vma(src, n) for n in nodes):
            result.summaries[name] = []
            for node in nodes:
                summary = classify.summarize(src, node)
                if summary is not None:
                    result.summaries[name].append(summary)
                    nodes_of[id(summary)] = node
    # Helpers of the same file that receive the vma fold into their caller; every other
    # call waits for the effect analysis, which sees the whole tree.
    helper_cache: dict[str, list[classify.Summary]] = {}
    for summaries in result.summaries.values():
        for s in summaries:
            todo, s.pending = s.pending, []
            still = []
            for call in todo:
                if not call.passes_vma or call.callee not in definitions:
                    still.append(call)
                    continue
                if call.callee not in helper_cache:
                    helper_cache[call.callee] = [h for h in (classify.summarize(src, n) for n in definitions[call.callee]) if h]
                for helper in helper_cache[call.callee]:
                    classify.absorb(s, call, helper)
            s.pending = still + s.pending
            elsewhere = [c for c in s.pending if c.passes_vma]
            if s.file_param is None or not set(s.categories) <= classify.AUTO_CATEGORIES:
                continue
            if elsewhere:
                s.refusal = classify.Evidence(elsewhere[0].line, "", "not-convertible",
                                              f"hands the vma to {elsewhere[0].callee}(), defined in another file: "
                                              "mmapconv converts only with helpers of the same file")
                continue
            try:
                s.plan = plan_function(src, nodes_of[id(s)], s, level)
                # Uses of the name in this file must follow the new signature (other files: convert).
                covered = [(e.start, e.end) for e in s.plan.edits] + [
                    i.value_span for i in found.instances if i.text_path == src.path]
                reference_edits(src, s.name, s.plan.new_name, True, covered)
            except Refusal as refusal:
                s.plan, s.refusal = None, classify.Evidence(refusal.line, "", "not-convertible", refusal.message)
            except UnknownReference as ref:
                s.plan, s.refusal = None, classify.Evidence(ref.line, "", "references", ref.message)
    result.errors.extend(_unparsed_members(src, found.instances, found.macros))
    return result


def _unparsed_members(src: SourceFile, instances, macros) -> list[ScanError]:
    """A `.mmap =` the bytes show but no initializer explains: a parse failure worth naming.

    Linear in the file: node.parent walks down from the root in tree-sitter,
    so a flat file of thousands of members must not ask for ancestors.
    """
    covered = {i.member_span[0] for i in instances if i.text_path == src.path}
    covered |= {m.member_span[0] for mac in macros if mac.path == src.path for m in mac.members}
    matches = [m.start() for m in PREFILTER_ALL.finditer(src.data) if m.start() not in covered]
    if not matches:
        return []
    # `fops.mmap = fn;` at run time is a field expression outside any initializer: not an initializer.
    runtime = {op.start_byte for fe in src.find("field_expression")
               for op in [fe.child_by_field_name("operator")] if op is not None}
    in_initializer = _inside_any(matches, [(n.start_byte, n.end_byte) for n in src.find("initializer_list")])
    errors = []
    for start in matches:
        node = src.root.descendant_for_byte_range(start, start + 1)
        if node is None or node.type in ("comment", "string_content", "string_literal", "char_literal"):
            continue
        if start in runtime and start not in in_initializer:
            continue
        errors.append(ScanError(src.path, f"line {src.line_of(start)}: could not parse the initializer around this `.mmap`"))
    return errors


def _inside_any(offsets: list[int], spans: list[tuple[int, int]]) -> set[int]:
    """The offsets that some span [start, end) contains (a sweep: spans may nest)."""
    inside, ends, i = set(), [], 0
    spans = sorted(spans)
    for offset in sorted(offsets):
        while i < len(spans) and spans[i][0] <= offset:
            heapq.heappush(ends, spans[i][1])
            i += 1
        while ends and ends[0] <= offset:
            heapq.heappop(ends)
        if ends:
            inside.add(offset)
    return inside


_DECLARATION = re.compile(rb"\bstruct\s+(\w+)\s+\w+\s*(?:\[[^\]]*\]\s*)?(?:__\w+\s*)*=\s*\{")
_OTHER_STRUCTS = frozenset(s.encode() for s in load("discovery")["other_structs"])
_MACRO_NEEDLES = tuple(load("discovery")["macro_name_needles"])


def _only_other_structs(data: bytes, pattern: re.Pattern) -> bool:
    """Every member match sits in an initializer of a struct that is surely not file_operations.

    Such a file need not be parsed for file_operations; the regex can only say
    "surely" for the last declaration before the member with no `};` between.
    """
    for m in pattern.finditer(data):
        decl = None
        for decl in _DECLARATION.finditer(data, max(0, m.start() - 8192), m.start()):
            pass
        if decl is None or decl.group(1) not in _OTHER_STRUCTS or b"\n}" in data[decl.end():m.start()]:
            return False
    return True


def _work(job: tuple[list[tuple[str, str]], dict[str, MacroDef], bool, bool, str]) -> tuple[list[FileResult], dict[str, list[str]], int]:
    """Worker: prefilter and analyze a chunk of files. Returns results and a name->files index."""
    files, macros, force, all_ops, level = job
    prefilter = PREFILTER_ALL if all_ops else PREFILTER_TARGET
    macro_names = [n.encode() for n in macros]
    results, index = [], defaultdict(list)
    for abspath, display in files:
        try:
            with open(abspath, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            results.append(FileResult(display, errors=[ScanError(display, f"cannot read: {exc.strerror}")]))
            continue
        members = b"mmap" in data and prefilter.search(data)
        wanted = force or any(n in data for n in macro_names) or \
            members and (all_ops or not _only_other_structs(data, prefilter))
        if not wanted:
            if b"vm_area_struct" in data:
                for m in _VMA_DEFINITION.finditer(data):
                    index[m.group(1).decode("ascii", "replace")].append(display)
            continue
        try:
            src = SourceFile.from_bytes(display, data)
            results.append(analyze(src, macros, level))
        except InputError as exc:
            results.append(FileResult(display, errors=[ScanError(display, str(exc).split(": ", 1)[1])]))
        except RecursionError:
            results.append(FileResult(display, errors=[ScanError(display, "nested too deeply to analyse")]))
    return results, dict(index), len(files)


class Scanner:
    def __init__(self, root: Path, jobs: int | None = None, progress: Callable[[int], None] | None = None,
                 all_ops: bool = False, level: str = "newest"):
        self.root = root
        self.level = level
        self.all_ops = all_ops
        self._abs_root = os.path.abspath(root)
        self._root_prefix = str(root).rstrip("/") + "/" if root.is_dir() else "\0"
        self.jobs = jobs or os.cpu_count() or 1
        self.progress = progress or (lambda n: None)
        # One effect analysis for the run: what a callee does is computed once, whoever asks.
        self.effects = EffectAnalysis(DefinitionIndex(root if root.is_dir() else root.parent))

    def display(self, path: str) -> str:
        if path.startswith(self._root_prefix):
            return path[len(self._root_prefix):]
        rel = os.path.relpath(os.path.abspath(path), self._abs_root)
        return path if rel.startswith("..") else rel

    def _run(self, pool, files: list[str], macros, force=False):
        pairs = [(p, self.display(p)) for p in files]
        # Forced files are few and large (mm/ for vma helpers): one a job balances the workers.
        size = 1 if force else max(4, min(16, len(pairs) // (self.jobs * 4) + 1))
        jobs = [(pairs[i:i + size], macros, force, self.all_ops, self.level) for i in range(0, len(pairs), size)]
        results, index = [], defaultdict(list)
        mapper = pool.map if pool is not None else map
        for chunk_results, chunk_index, done in mapper(_work, jobs):
            results.extend(chunk_results)
            for k, v in chunk_index.items():
                index[k].extend(v)
            self.progress(done)
        return results, index

    def scan(self, paths: list[Path], also: tuple[str, ...] = ()) -> ScanResult:
        """`also`: strings the caller will search the tree for later, found in the same walk."""
        roots = [str(p) for p in paths]
        members = sorted(MEMBERS) if self.all_ops else [TARGET_MEMBER]
        search = prefilter.search_tree(roots, [f".{m}" for m in members] + ["vm_area_struct", *_MACRO_NEEDLES, *also])
        found, problems = search.files, search.problems
        errors = [ScanError(self.display(u.path) if os.path.exists(u.path) else u.path, u.message) for u in problems]
        by_display = {self.display(p): p for p in found}
        headers = [p for p in found if p.endswith(".h")]
        sources = [p for p in found if not p.endswith(".h")]
        pool = ProcessPoolExecutor(self.jobs) if self.jobs > 1 and len(found) > 64 else None
        background = ThreadPoolExecutor(1)
        try:
            results, index = self._run(pool, headers, {})
            macros = {m.name: m for r in results for m in r.macros if self.all_ops or any(
                mm.member == TARGET_MEMBER and mm.struct in (TARGET_STRUCT, None) for mm in m.members)}
            # Where header macros are used is a second byte search; it runs while C files parse.
            sites = background.submit(search.search, sorted(macros), True) if macros else None
            more, more_index = self._run(pool, sources, macros)
            results += more
            for k, v in more_index.items():
                index[k].extend(v)
            seen = {r.path for r in results}
            position = {r.path: i for i, r in enumerate(results)}
            # A header that wraps a known macro in a macro of its own defines a new one:
            # its uses are searched for in turn (a few rounds; 6.12 needs none).
            for derived_round in range(3):
                if sites is None:
                    break
                site_files, _ = sites.result()
                # A file analysed before the macros it uses were known is analysed again: after a
                # derived round any, in the first the headers (they went first, knowing no macro).
                todo = [p for p in site_files if derived_round or p.endswith(".h") or self.display(p) not in seen]
                extra, _ = self._run(pool, todo, macros)
                for r in extra:
                    if r.path in position:
                        results[position[r.path]] = r
                    else:
                        position[r.path] = len(results)
                        results.append(r)
                seen |= {self.display(p) for p in todo}
                derived = {m.name: m for r in extra for m in r.macros if m.name not in macros and m.path.endswith(".h")}
                macros.update(derived)
                sites = background.submit(search.search, sorted(derived), True) if derived else None
            # A callback found in the last pass may need a helper of its own directory: go again.
            for _ in range(3):
                needed = self._missing_definitions(results, index, seen)
                if not needed:
                    break
                extra, _ = self._run(pool, [by_display[d] for d in sorted(needed)], macros, force=True)
                results += extra
                seen |= needed
        finally:
            background.shutdown()
            if pool is not None:
                pool.shutdown()
        result = link(self.root, results, errors, self.effects, self.level)
        result.search = search
        return result

    @staticmethod
    def _missing_definitions(results: list[FileResult], index, seen: set[str]) -> set[str]:
        """Files to parse for callbacks defined elsewhere, and for vma helpers in the caller's directory."""
        defined_in = defaultdict(set)
        for r in results:
            for name in r.summaries:
                defined_in[name].add(r.path)
        want = set()
        for r in results:
            names = {i.function for i in r.instances if i.struct == TARGET_STRUCT}
            for n in list(names):
                names.update(r.aliases.get(n, []))
            for n in names - defined_in.keys():
                want.update(p for p in index.get(n, []) if p not in seen)
            here = os.path.dirname(r.path)
            for s in (s for ss in r.summaries.values() for s in ss):
                for call in s.pending:
                    if call.passes_vma and call.callee not in defined_in:
                        want.update(p for p in index.get(call.callee, [])
                                    if p not in seen and os.path.dirname(p) == here)
        return want


def _same_dir_rank(a: str, b: str) -> int:
    pa, pb = Path(a).parent.parts, Path(b).parent.parts
    n = 0
    for x, y in zip(pa, pb):
        if x != y:
            break
        n += 1
    return n


def _prove_calls(summaries: list[classify.Summary], effects: EffectAnalysis) -> None:
    """Each call no kind covers gets its effect through the tree; what is not proven safe is a reason.

    Only for bodies whose own evidence allows conversion: a body that does
    per-mapping or unknown work itself stays manual whatever its callees do,
    and following them costs most of the analysis.
    """
    candidates = []
    for s in summaries:
        if set(s.categories) <= classify.AUTO_CATEGORIES:
            candidates.append(s)
        else:
            s.pending = []
    effects.prefetch({(c.callee, c.near or s.path) for s in candidates for c in s.pending})
    for s in candidates:
        for call in s.pending:
            effect = effects.of_call(call.callee, call.near or s.path)
            # Through a helper's helper the arguments are not this body's: only a direct call can pass `&local`.
            effect = at_call(effect, call.args, frozenset() if call.via else s.locals,
                             frozenset() if call.via else s.arrays)
            message = call.describe(effect.describe())
            if effect.level == "per-mapping-state":
                s.add(call.line, "e", "per-mapping-state", message)
            elif effect.level not in ALLOWED_EFFECTS:
                s.add(call.line, "i", "unknown-call", message)
            elif effect.level in ("marks", "balanced-lock"):
                s.add(call.line, "a", effect.level, message)
        s.pending = []


def convertible_here(analysis: FileResult) -> set[str]:
    """Functions of a file that its own initializers name and the planner would convert."""
    named = {i.function for i in analysis.instances if i.struct == TARGET_STRUCT}
    return {s.name for ss in analysis.summaries.values() for s in ss if s.plan is not None and s.name in named}


def link(root: Path, results: list[FileResult], errors: list[ScanError],
         effects: EffectAnalysis | None = None, level: str = "newest") -> ScanResult:
    """Resolve instances to functions across files, fold in cross-file helpers, prove the calls."""
    effects = effects or EffectAnalysis(DefinitionIndex(root))
    errors = list(errors) + [e for r in results for e in r.errors]
    by_file = {r.path: r for r in results}
    global_defs: dict[str, list[classify.Summary]] = defaultdict(list)
    for r in results:
        for name, summaries in r.summaries.items():
            global_defs[name].extend(summaries)
    global_aliases: dict[str, list[str]] = defaultdict(list)
    for r in results:
        if r.path.endswith(".h"):
            for k, v in r.aliases.items():
                global_aliases[k].extend(v)

    def definitions(name: str, near: str) -> list[classify.Summary]:
        local = by_file.get(near)
        if local is not None and name in local.summaries:
            return local.summaries[name]
        candidates = [s for s in global_defs.get(name, []) if not s.static]
        if not candidates:
            return []
        best = max(_same_dir_rank(s.path, near) for s in candidates)
        chosen = [s for s in candidates if _same_dir_rank(s.path, near) == best]
        return [s for s in chosen if s.path == chosen[0].path]

    embedded = {k: v for r in results for k, v in r.embedded.items()}
    for r in results:
        for inst in r.instances:
            if inst.struct and "." in inst.struct:
                inst.struct = embedded.get(inst.struct)
    twins = load("calls")["twins"]
    functions: dict[tuple[str, str], FunctionResult] = {}
    variants: dict[tuple[str, str], classify.Evidence] = {}
    for summaries in global_defs.values():
        for s in summaries:
            todo, s.pending = s.pending, []
            for call in todo:
                if not call.passes_vma:
                    s.pending.append(call)
                    continue
                helper = [h for h in definitions(call.callee, s.path)
                          if _same_dir_rank(h.path, s.path) == len(Path(s.path).parent.parts)]
                for h in helper or [None]:
                    classify.absorb(s, call, h)

    def resolve(inst: Instance) -> ResolvedInstance:
        name = inst.function.strip()
        if name in ("NULL", "0", "((void *)0)"):
            return ResolvedInstance(inst, "null")
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            return ResolvedInstance(inst, "not-a-function")
        summaries = definitions(name, inst.path) or (definitions(name, inst.text_path) if inst.text_path else [])
        if not summaries:
            # `#define foo_mmap real_fn` (or NULL in the other config branch).
            aliases = (by_file[inst.path].aliases if inst.path in by_file else {}).get(name) or global_aliases.get(name)
            targets = [t for t in aliases or [] if t not in ("NULL", "0")]
            if aliases and not targets:
                return ResolvedInstance(inst, "null")
            if targets:
                name = targets[0]
                summaries = definitions(name, inst.path) or (definitions(name, inst.text_path) if inst.text_path else [])
                if len(set(targets)) > 1 and summaries:
                    variants.setdefault((summaries[0].path, name), classify.Evidence(
                        inst.line, "i", "config-alias",
                        f"{inst.function} names {', '.join(sorted(set(targets)))} in different configurations: convert them together by hand"))
        if not summaries and name in twins:
            # A core helper with an mmap_prepare twin: resolved by name, even outside the tree.
            key = (twins[name]["defined_in"], name)
            fn = functions.setdefault(key, FunctionResult(name, key[0], 0, False, []))
            fn.instances += inst.struct == TARGET_STRUCT
            return ResolvedInstance(inst, "function", fn)
        if not summaries:
            return ResolvedInstance(inst, "unresolved")
        key = (summaries[0].path, name)
        fn = functions.get(key)
        if fn is None:
            fn = functions[key] = FunctionResult(name, summaries[0].path, summaries[0].line, summaries[0].static, summaries)
        if key in variants and variants[key] not in fn.notes:
            fn.notes.append(variants[key])
        fn.instances += inst.struct == TARGET_STRUCT
        return ResolvedInstance(inst, "function", fn)

    every = [resolve(i) for r in results for i in r.instances]
    every.sort(key=lambda ri: (ri.instance.path, ri.instance.line))
    fops = [ri for ri in every if ri.instance.struct == TARGET_STRUCT]
    fops_functions = {id(ri.function): ri.function for ri in fops if ri.function is not None}
    _prove_calls([s for fn in fops_functions.values() for s in fn.summaries], effects)
    for fn in fops_functions.values():
        fn.twin = twins[fn.function]["prepare"] if fn.function in twins else None
        convertible = all(s.classified_auto and s.plan is not None for s in fn.summaries)
        fn.verdict = "auto" if fn.twin or convertible and set(fn.categories) <= classify.AUTO_CATEGORIES else "manual"
    ordered = sorted(fops_functions.values(), key=lambda f: (f.path, f.line))
    errors.sort(key=lambda e: e.path)
    return ScanResult(root, fops, ordered, errors, every, {r.path: convertible_here(r) for r in results},
                      {r.path: r.syntax_errors for r in results}, level)
