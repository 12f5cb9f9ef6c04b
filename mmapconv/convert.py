"""Turns a scan into file changes: each auto function with every reference to it, or nothing.

References are the initializers (direct, through header macros, through
`#define` aliases), prototypes and EXPORT_SYMBOL*. Any other use of the name
(a direct call, another ops struct) refuses the function. Every changed file
must pass the post-conditions before anything is emitted; a file that fails
drops the functions that touched it, as an internal error.
"""
from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections import Counter, defaultdict
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .discover import TARGET_MEMBER, TARGET_STRUCT
from .edits import Edit, OverlapError, apply
from .plan import NEW_SUFFIX
from .references import UnknownReference, reference_edits
from . import prefilter
from .scan import FunctionResult, ScanResult, Scanner, analyze, convertible_here
from . import unsafe
from .source import SourceFile, count_errors, decode
from .style import pad_to



@dataclass
class Refused:
    function: FunctionResult
    line: int
    code: str
    message: str


@dataclass
class Review:
    """An unsafe fix made: what a reviewer must check."""
    function: FunctionResult
    code: str
    note: str


@dataclass
class Outcome:
    converted: list[tuple[FunctionResult, str]] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)
    changes: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)
    reviews: list[Review] = field(default_factory=list)

    def summary(self) -> str:
        """The line a person reads after a conversion: converted, refused by reason, unsafe fixes."""
        reasons = Counter(r.code for r in self.refused)
        fixes = Counter(r.code for r in self.reviews)
        return (f"converted {len(self.converted)} function(s) in {len(self.changes)} file(s); "
                f"refused {len(self.refused)}"
                + (": " + ", ".join(f"{code} {n}" for code, n in reasons.most_common()) if reasons else "")
                + ("; unsafe fixes to review: " + ", ".join(f"{code} {n}" for code, n in sorted(fixes.items()))
                   if fixes else ""))

    def review_lines(self) -> list[str]:
        """One line per unsafe fix: where, which, and what to check."""
        return [f"{r.function.path}:{r.function.line}: {r.code} {r.note}" for r in self.reviews]


class _Skip(Exception):
    def __init__(self, path: str, line: int, message: str):
        super().__init__(message)
        self.path, self.line, self.message = path, line, message

    def __reduce__(self):   # it comes back from a worker process
        return _Skip, (self.path, self.line, self.message)


def _designator_edits(data: bytes, start: int, end: int, member: str) -> list[Edit]:
    """`.mmap<ws>=<ws>fn` becomes `.mmap_prepare<ws>=<ws>fn`, `=` and the value kept in their columns."""
    eq = data.index(b"=", end)
    value = eq + 1 + len(data[eq + 1:]) - len(data[eq + 1:].lstrip(b" \t"))
    line_start = data.rfind(b"\n", 0, start) + 1
    prefix = decode(data[line_start:start])
    before, after = decode(data[end:eq]), decode(data[eq + 1:value])
    new = f".{member}"
    if "\n" in before + after:
        return [Edit(start, end, new)]
    gap = before
    if len(before) > 1 or "\t" in before:
        gap = pad_to(prefix + new, len(decode(data[line_start:eq]).expandtabs(8)), "\t" in before)
    edits = [Edit(start, eq, new + gap)]
    if len(after) > 1 or "\t" in after:
        head = prefix + new + gap + "="
        edits.append(Edit(eq + 1, value, pad_to(head, len(decode(data[line_start:value]).expandtabs(8)), "\t" in after)))
    return edits


def _keep_continuation(data: bytes, after: int, line_edits: list[Edit]) -> list[Edit]:
    """In a macro body, the line's trailing backslash stays in its column."""
    line_start = data.rfind(b"\n", 0, after) + 1
    line_end = data.find(b"\n", after)
    line = data[line_start:line_end if line_end >= 0 else len(data)]
    stripped = line.rstrip()
    if not stripped.endswith(b"\\"):
        return []
    slash = line_start + len(stripped) - 1
    gap_start = line_start + len(data[line_start:slash].rstrip())
    head = decode(apply(data[line_start:gap_start], line_edits, base=line_start))
    return [Edit(gap_start, slash, pad_to(head, len(decode(data[line_start:slash]).expandtabs(8)), True))]


# What convert searches the whole tree for later (other users of an exported callback) is
# a callback's name, and those hold `mmap`: the scan's walk collects such files on its way.
MENTION_NEEDLES = ("mmap",)


def scan_for_conversion(root: Path, targets: list[Path], jobs: int | None, level: str) -> ScanResult:
    return Scanner(root, jobs, level=level).scan(targets, also=MENTION_NEEDLES)


# The converter that forked worker processes plan and check for: they inherit the scan
# result instead of receiving it, and each keeps the sources it parsed.
_ACTIVE: "Converter | None" = None
# Fewer functions than this are planned in this process: workers cost more than they save.
_PARALLEL_FROM = 8


def _plan_job(job: tuple[int, list[str]]):
    """The edits of one function (and the unsafe fix behind them), or why it is not converted."""
    index, mentioned_in = job
    fn = _ACTIVE.result.functions[index]
    proposal = None
    try:
        if fn.verdict != "auto":
            proposal = _ACTIVE.unsafe_proposal(fn)
            if proposal is None:
                return None
        return _ACTIVE._edits_for(fn, mentioned_in, proposal), proposal
    except (_Skip, unsafe.FixRefused) as why:
        return why


def _check_job(job: tuple[str, list[Edit]]) -> tuple[bytes | None, str | None]:
    """(the converted file, or None) and what is wrong with it, or None."""
    path, edits = job
    try:
        new = apply(_ACTIVE.data(path), edits)
    except OverlapError as exc:
        return None, str(exc)
    return new, _ACTIVE._postcondition(path, new)


class Converter:
    def __init__(self, result: ScanResult, jobs: int | None = None, unsafe_fixes: bool = False):
        self.result = result
        self.root = result.root
        self.jobs = jobs or os.cpu_count() or 1
        self.unsafe_fixes = unsafe_fixes
        self._sources: dict[str, SourceFile] = {}
        self._data: dict[str, bytes] = {}

    def source(self, path: str) -> SourceFile:
        if path not in self._sources:
            self._sources[path] = SourceFile.read(self.root / path, path)
        return self._sources[path]

    def data(self, path: str) -> bytes:
        """A file's bytes, without the parse when it has not been parsed here."""
        if path in self._sources:
            return self._sources[path].data
        if path not in self._data:
            self._data[path] = (self.root / path).read_bytes()
        return self._data[path]

    def run(self) -> Outcome:
        global _ACTIVE
        outcome = Outcome()
        # With --unsafe-fixes a refused callback of one definition is a candidate too: a fix may take it.
        candidates = [fn for fn in self.result.functions if fn.verdict == "auto" or
                      self.unsafe_fixes and len(fn.summaries) == 1 and not fn.twin]
        exported = {fn.function for fn in candidates if not fn.static and not fn.twin}
        refusals = {}
        for fn in self.result.functions:
            if fn.verdict != "auto":
                first = fn.first_reason
                refusals[id(fn)] = Refused(fn, first.line if first else fn.line, first.code if first else "manual",
                                           first.message if first else "manual")
        order = {id(fn): i for i, fn in enumerate(self.result.functions)}
        candidates.sort(key=lambda fn: fn.function in exported)
        _ACTIVE = self
        workers = ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("fork")) \
            if self.jobs > 1 and len(candidates) >= _PARALLEL_FROM else None
        try:
            submit = workers.submit if workers is not None else _run_now
            # The static functions, which need no search for other users, are planned (and the
            # workers forked, before any thread starts) while the search runs.
            plans = [submit(_plan_job, (order[id(fn)], [])) for fn in candidates if fn.function not in exported]
            mentions = self._mentions(sorted(exported)) if exported else {}
            plans += [submit(_plan_job, (order[id(fn)], mentions.get(fn.function, [])))
                      for fn in candidates if fn.function in exported]
            planned: dict[int, tuple[FunctionResult, dict[str, list[Edit]]]] = {}
            for fn, plan in zip(candidates, plans):
                done = plan.result()
                if isinstance(done, _Skip):
                    refusals[id(fn)] = Refused(fn, done.line, "references", f"{done.path}:{done.line}: {done.message}")
                elif isinstance(done, unsafe.FixRefused):
                    refusals[id(fn)] = Refused(fn, done.line, done.message.split(":")[0], done.message)
                elif done is not None:
                    edits, proposal = done
                    planned[id(fn)] = (fn, edits)
                    refusals.pop(id(fn), None)
                    if proposal is not None:
                        outcome.reviews.append(Review(fn, proposal.code, proposal.note))
            outcome.refused = sorted(refusals.values(), key=lambda r: order[id(r.function)])
            self._settle(planned, outcome, submit)
        finally:
            if workers is not None:
                workers.shutdown()
            _ACTIVE = None
        return outcome

    def _mentions(self, names: list[str]) -> dict[str, list[str]]:
        """Files anywhere under the root that mention each exported name (they may call it)."""
        search = self.result.search
        if search is None or search.paths != [str(self.root)]:
            search = prefilter.search_tree([str(self.root)], [])
        files, _ = search.search(names, word=True)
        found: dict[str, list[str]] = defaultdict(list)
        for path in files:
            data = Path(path).read_bytes()
            rel = os.path.relpath(path, self.root)
            for name in names:
                if re.search(rb"\b" + re.escape(name.encode()) + rb"\b", data):
                    found[name].append(rel)
        return found

    def unsafe_proposal(self, fn: FunctionResult) -> "unsafe.Proposal | None":
        """What an unsafe fix proposes for a refused callback; raises FixRefused."""
        summary = fn.summaries[0]
        src = self.source(summary.path)
        node = next((n for n in src.definitions_named(fn.function) if src.line(n) == summary.line), None)
        if node is None:
            return None
        return unsafe.propose(unsafe.Target(src, node, fn.function, fn.evidence, self.result.level, summary.refusal))

    def _edits_for(self, fn: FunctionResult, mentioned_in: list[str],
                   proposal: "unsafe.Proposal | None" = None) -> dict[str, list[Edit]]:
        edits: dict[str, list[Edit]] = defaultdict(list)
        new_name = fn.twin or fn.function + NEW_SUFFIX
        for ri in self.result.all_instances:
            if ri.function is not fn:
                continue
            inst = ri.instance
            if inst.struct != TARGET_STRUCT or inst.member != TARGET_MEMBER:
                raise _Skip(inst.path, inst.line, f"also used as .{inst.member} of struct {inst.struct}")
            src = self.source(inst.text_path)
            line_edits = _designator_edits(src.data, *inst.member_span, TARGET_MEMBER + NEW_SUFFIX)
            value = decode(src.data[inst.value_span[0]:inst.value_span[1]])
            if value == fn.function:
                line_edits.append(Edit(*inst.value_span, new_name))
            elif inst.via_macro and "##" in value:
                self._check_macro_siblings(inst, fn)
                line_edits.append(Edit(inst.value_span[1], inst.value_span[1], NEW_SUFFIX))
            elif inst.via_macro:
                raise _Skip(inst.text_path, src.line_of(inst.value_span[0]),
                            f"the function reaches .{inst.member} as an argument of {inst.via_macro}")
            edits[inst.text_path] += line_edits + _keep_continuation(src.data, inst.value_span[1], line_edits)
        if fn.twin:
            return edits
        if proposal is not None:
            edits[fn.path].extend(proposal.edits)
        for summary in fn.summaries if proposal is None else ():
            edits[summary.path].extend(summary.plan.edits)
        paths = {fn.path} | ({p for p in mentioned_in} if not fn.static else set())
        for path in sorted(paths):
            try:
                edits[path].extend(reference_edits(self.source(path), fn.function, new_name, path == fn.path,
                                                   [(e.start, e.end) for e in edits[path]]))
            except UnknownReference as ref:
                raise _Skip(ref.path, ref.line, ref.message) from None
        return edits

    def _check_macro_siblings(self, inst, fn) -> None:
        for other in self.result.all_instances:
            same_text = other.instance.text_path == inst.text_path and other.instance.member_span == inst.member_span
            if same_text and (other.function is None or other.function.verdict != "auto"):
                raise _Skip(other.instance.path, other.instance.line,
                            f"{inst.via_macro} also builds {other.instance.function}, which does not convert")

    def _settle(self, planned, outcome: Outcome, submit) -> None:
        """Apply, check every changed file; drop the functions behind a failing file, and retry."""
        checked: dict[tuple[str, tuple[Edit, ...]], tuple[bytes | None, str | None]] = {}
        while True:
            by_file: dict[str, list[Edit]] = defaultdict(list)
            owners: dict[str, list[int]] = defaultdict(list)
            for key, (fn, edits) in planned.items():
                for path, file_edits in edits.items():
                    by_file[path].extend(file_edits)
                    owners[path].append(key)
            jobs = {(path, tuple(edits)): None for path, edits in sorted(by_file.items())}
            running = {job: submit(_check_job, (job[0], list(job[1]))) for job in jobs if job not in checked}
            checked.update((job, future.result()) for job, future in running.items())
            failed = next(((path, checked[(path, edits)][1]) for path, edits in jobs if checked[(path, edits)][1]), None)
            if failed is None:
                # A file a function only looked at (a mention its edits left alone) is no change.
                outcome.changes = {path: (self.data(path), checked[(path, edits)][0])
                                   for path, edits in jobs if checked[(path, edits)][0] != self.data(path)}
                outcome.converted = [(fn, fn.twin or fn.function + NEW_SUFFIX) for fn, _ in planned.values()]
                return
            path, problem = failed
            for key in owners[path]:
                fn = planned.pop(key)[0]
                outcome.internal_errors.append(f"{path}: {fn.function}: {problem}")
                outcome.refused.append(Refused(fn, fn.line, "internal-error", f"{path}: {problem}"))

    def _postcondition(self, path: str, new_data: bytes) -> str | None:
        new = SourceFile.from_bytes(path, new_data)
        before, old_errors = self.result.convertible.get(path), self.result.syntax_errors.get(path)
        if before is None or old_errors is None:   # a file the scan did not analyse (a prototype's header, a caller)
            old = self.source(path)
            before, old_errors = convertible_here(analyze(old, {}, self.result.level)), count_errors(old.root)
        if count_errors(new.root) > old_errors:
            return "the converted file has more parse errors than the original"
        for init in new.find("initializer_list"):
            members = {new.text(p.child_by_field_name("designator")) for p in init.named_children
                       if p.type == "initializer_pair" and p.child_by_field_name("designator") is not None}
            if f".{TARGET_MEMBER}" in members and f".{TARGET_MEMBER}{NEW_SUFFIX}" in members:
                return f"line {new.line(init)}: an initializer sets both .{TARGET_MEMBER} and .{TARGET_MEMBER}{NEW_SUFFIX}"
        left = convertible_here(analyze(new, {}, self.result.level)) - before
        if left:
            return f"converting again would change {sorted(left)[0]}"
        return None


class _Done:
    """A result at hand, shaped like a future's."""

    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


def _run_now(fn, *args) -> _Done:
    return _Done(fn(*args))


class WriteError(Exception):
    """A file `convert --write` could not replace; `path` is relative to the tree root."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: error: {message}")
        self.path = path


@contextlib.contextmanager
def _failing_as(path: str, what: str):
    """An OSError inside becomes a WriteError naming `path` and the reason, not the temporary file."""
    try:
        yield
    except OSError as e:
        raise WriteError(path, f"{what}: {e.strerror or e}") from e


def write_in_place(root: Path, changes: dict[str, tuple[bytes, bytes]]) -> None:
    """Replace every changed file or none; raises WriteError naming the file that failed.

    Each new content goes to a temporary file beside its target (same mode,
    fsynced) and is renamed over it, so a tree of hard links is never written
    through. Every temporary file is written before the first rename: a full
    disk or a read-only directory leaves the tree as it was.
    """
    paths = sorted(changes)
    modes = {path: _writable_mode(root, path) for path in paths}
    staged: dict[str, str] = {}
    try:
        for path in paths:
            with _failing_as(path, "cannot write"):
                staged[path] = _stage(root / path, changes[path][1], modes[path])
    except BaseException:
        _discard(staged.values())
        raise
    _rename_all(root, staged)


def _writable_mode(root: Path, path: str) -> int:
    """The file's permission bits, refusing a file the user may not, or should not, write."""
    target = root / path
    with _failing_as(path, "cannot write"):
        mode = stat.S_IMODE(target.stat().st_mode)
    # os.access says yes to root for any file; a file without its owner's
    # write bit was made read-only on purpose, and a rename would not ask.
    if not (os.access(target, os.W_OK) and mode & stat.S_IWUSR):
        raise WriteError(path, f"cannot write: file is not writable (mode {mode:04o})")
    return mode


def _stage(target: Path, data: bytes, mode: int) -> str:
    """A temporary file beside `target` holding `data` with `mode`, on disk; its path."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        try:
            _write_all(fd, data)
            os.fchmod(fd, mode)
            # On disk before any rename: a crash must not leave an empty file in place of the old one.
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        _discard([tmp])
        raise
    return tmp


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _rename_all(root: Path, staged: dict[str, str]) -> None:
    """Rename the staged files over their targets; on a failure, say which ones were replaced already."""
    replaced: list[str] = []
    try:
        for path, tmp in staged.items():
            try:
                os.replace(tmp, root / path)
            except OSError as e:
                raise WriteError(path, f"cannot replace: {e.strerror or e}; "
                                       f"already replaced: {', '.join(replaced) or 'none'}") from e
            replaced.append(path)
    finally:
        _discard(tmp for path, tmp in list(staged.items())[len(replaced):])


def _discard(tmps) -> None:
    """Remove temporary files; a failure here must not hide the error being reported."""
    for tmp in tmps:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
