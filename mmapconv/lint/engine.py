"""Runs every registered check on C files and filters what suppressions silence.

A tree is linted at scan's speed. The scanner (grep prefilter, parallel
parse) gives the `.mmap` users with their verdicts and the effect analysis;
one more byte search, run while it works, finds the few other files a rule
can fire on (a descriptor, an `mmap_prepare` hook, a name the rules know).
Only those files are read and parsed, in worker processes; a file that holds
a descriptor is linted in this process, where the effect analysis lives.
Within a file, a check runs only when the bytes it needs are there.

The API level is the one asked for, or with `auto` each file's kernel tree's
(mmapconv.api_level); names that tree (or a series) defines are never reported
as missing or renamed.
"""
from __future__ import annotations

import os
import re
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .. import prefilter
from ..api_level import AUTO, LEVELS, ApiLevel, Detection, chosen, detect_tree, kernel_root
from ..source import InputError, SourceFile, check_text
from . import actions, flags, names, ops_struct, per_mapping, remap_error, remap_range, vma_use  # noqa: F401  (register)
from .catalogue import DEFAULT_API, KNOWLEDGE
from .finding import Finding
from .registry import CHECKS, Context, MmapUse
from .suppress import suppressed
from .verdicts import ScanFacts, scan_mmap_uses

SOURCE_SUFFIXES = (".c", ".h")
# Below this many files to parse, worker processes cost more than they save.
_PARALLEL_FROM = 48
# Bytes without which a family of rules cannot fire: a descriptor rule needs a
# `struct vm_area_desc *` parameter, MMC102 a `.mmap_prepare` entry.
_DESCRIPTOR = b"vm_area_desc"
_HOOK = b"mmap_prepare"
# Rules that report a name by the name's own position: a name the code under review has is no finding.
_NAME_RULES = ("MMC301", "MMC303")


# --- which bytes matter ---------------------------------------------------------

def _name_needles(level: str) -> tuple[set[str], set[str]]:
    """(words, members) the name rules look for at `level`: MMC301-MMC303 fire on nothing else."""
    spelled = KNOWLEDGE["names"]
    words = set(spelled["never_landed"]) | {n for n, at in spelled["renamed"].items() if level in at}
    missing = spelled["missing"].get(level, [])
    return words | {n for n in missing if not n.startswith(".")}, {n[1:] for n in missing if n.startswith(".")}


def _minimal(words) -> list[bytes]:
    """The words as bytes, without those that contain another (a file holding it holds the other)."""
    return sorted(w.encode() for w in words if not any(o != w and o in w for o in words))


class _Needles:
    """The bytes that make a file worth parsing at one level."""

    def __init__(self, level: str):
        words, members = _name_needles(level)
        self.names = _minimal(words | members)             # any of these: the name rules may fire
        self.plain = _minimal(words | {_DESCRIPTOR.decode(), _HOOK.decode()})
        self.members = {m.encode(): re.compile(rb"(?:\.|->)\s*" + re.escape(m.encode()) + rb"\b") for m in members}

    def relevant(self, data: bytes) -> bool:
        return any(w in data for w in self.plain) or \
            any(m in data and p.search(data) for m, p in self.members.items())


_NEEDLES = {level: _Needles(level) for level in LEVELS}


def _needles(api: str) -> _Needles:
    return _NEEDLES.get(str(api)) or _Needles(str(api))


def relevant(data: bytes, api: str = DEFAULT_API) -> bool:
    """Whether any rule can fire on a file with these bytes at this level (besides MMC101)."""
    return _needles(api).relevant(data)


def _gates(src: SourceFile, api: str, uses: list[MmapUse]) -> tuple[tuple[str, bool], ...]:
    """Rule-code prefixes and whether this file has what their rules need."""
    data = src.data
    return (("MMC101", bool(uses)), ("MMC102", _HOOK in data), ("MMC2", _DESCRIPTOR in data),
            ("MMC3", any(w in data for w in _needles(api).names)))


def _may_fire(codes: tuple[str, ...], gates) -> bool:
    for code in codes:
        prefix_open = next((is_open for prefix, is_open in gates if code.startswith(prefix)), True)
        if prefix_open:
            return True
    return False


# --- one file -----------------------------------------------------------------

def _word_at(data: bytes, line: int, col: int) -> str:
    start = 0
    for _ in range(line - 1):
        start = data.find(b"\n", start) + 1
    m = re.compile(rb"[A-Za-z_]\w*").match(data, start + col - 1)
    return m.group().decode("ascii", "replace") if m else ""


def _unknown_to_code(src: SourceFile, api: str, findings: list[Finding]) -> list[Finding]:
    """Drop MMC301/MMC303 on names the code under review has (its tree's headers, its series)."""
    known = api.detection.known_words if isinstance(api, ApiLevel) else frozenset()
    if not known:
        return findings
    return [f for f in findings if f.code not in _NAME_RULES or _word_at(src.data, f.line, f.col) not in known]


def lint_source(src: SourceFile, api: str = DEFAULT_API, mmap_uses: list[MmapUse] | None = None,
                effects=None, near: str = "") -> list[Finding]:
    """Findings for one parsed file. `mmap_uses` carries the scanner's verdicts (MMC101); `effects`
    the scanner's effect analysis, with the file's path in its index (`near`)."""
    uses = list(mmap_uses or [])
    ctx = Context(src, api, uses, effects, near)
    gates = _gates(src, api, uses)
    found = {f for check, codes in CHECKS.items() if _may_fire(codes, gates) for f in check(ctx)}
    return sorted(suppressed(src, _unknown_to_code(src, api, list(found))), key=Finding.sort_key)


@dataclass
class _Job:
    path: str               # as opened
    display: str            # as findings name it
    api: str
    uses: list[MmapUse]
    near: str = ""


# A file_operations entry `.mmap =` as it sits on its line (its column is MMC101's).
_MMAP_ENTRY = re.compile(rb"\.[ \t]*mmap[ \t]*=(?!=)")
_NOT_PLAIN = (b"/*", b"//", b'"', b"'")
_SUPPRESSION = b"mmapconv:"
# Off: every file is parsed (the tests compare both ways).
UNPARSED_MMC101 = True


@lru_cache(maxsize=1)
def _empty_tree():
    return SourceFile.from_bytes("", b"").tree


def _unparsed(job: _Job, data: bytes) -> list[Finding] | None:
    """MMC101 without a parse, for a file where nothing else can fire: the scanner parsed the file
    and gave each use its line; the entry's column is on that line. None when anything is less
    plain than that (a suppression comment, a comment or string on the line, two entries)."""
    if not UNPARSED_MMC101 or not job.uses or _SUPPRESSION in data:
        return None
    src = SourceFile(job.display, data, _empty_tree())
    gates = _gates(src, job.api, job.uses)
    if any(_may_fire(codes, gates) and set(codes) != {"MMC101"} for codes in CHECKS.values()):
        return None
    lines = data.split(b"\n")
    columns = {}
    for use in job.uses:
        text = lines[use.line - 1] if 0 < use.line <= len(lines) else b""
        entries = list(_MMAP_ENTRY.finditer(text))
        if len(entries) > 1 or any(mark in text for mark in _NOT_PLAIN):
            return None
        if entries:
            columns[use.line] = entries[0].start() + 1
    findings = lint_source(src, job.api, job.uses)
    return [f.with_(col=columns[f.line]) if f.code == "MMC101" and f.line in columns else f for f in findings]


def _triage(job: _Job):
    """What a file needs, from its bytes: ("ok", findings), ("error", message), ("parse", None),
    or ("here", None) for a file with a descriptor, which the effect analysis of the main
    process must see."""
    try:
        with open(job.path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return "error", f"{job.display}: cannot read: {exc.strerror}"
    try:
        check_text(job.display, data)
    except InputError as exc:
        return "error", str(exc)
    if not job.uses and not relevant(data, job.api):
        return "ok", []
    if _DESCRIPTOR in data:
        return "here", None
    findings = _unparsed(job, data)
    return ("ok", findings) if findings is not None else ("parse", None)


def _lint_file(job: _Job, effects=None):
    """("ok", findings) or ("error", message): the whole file parsed and linted."""
    try:
        src = SourceFile.read(Path(job.path), job.display)
    except InputError as exc:
        return "error", str(exc)
    except RecursionError:
        return "error", f"{job.display}: nested too deeply to analyse"
    return "ok", lint_source(src, job.api, job.uses, effects, job.near)


def _lint_files(jobs: list[_Job]):
    return [_lint_file(job) for job in jobs]


# --- many files ---------------------------------------------------------------

@dataclass
class LintResult:
    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    errors: list[str] = field(default_factory=list)   # `path: message`, one per file that could not be linted
    levels: list[Detection] = field(default_factory=list)   # the API levels the files were linted at


def _walk_key(relative: str):
    """os.walk's order: a directory's files before its subdirectories, each sorted."""
    parts = relative.split("/")
    return [(1, p) for p in parts[:-1]] + [(0, parts[-1])]


class _Levels:
    """The level each file is linted at: the one asked for, or with `auto` its kernel tree's."""

    def __init__(self, api: str):
        if api == AUTO:
            self.fixed = None
        else:
            self.fixed = api if isinstance(api, ApiLevel) else chosen(api)
        self._by_root: dict[str | None, ApiLevel] = {}
        self.used: dict[int, Detection] = {}

    def of(self, path: Path | str) -> ApiLevel:
        if self.fixed is not None:
            level = self.fixed
        else:
            root = kernel_root(path)
            key = str(root) if root is not None else None
            if key not in self._by_root:
                self._by_root[key] = detect_tree(root if root is not None else path)
            level = self._by_root[key]
        return level

    def note(self, level: ApiLevel) -> None:
        self.used.setdefault(id(level), level.detection)

    def possible(self, dirs: list[Path]) -> set[str]:
        """The levels files below `dirs` may be linted at."""
        if self.fixed is not None:
            return {str(self.fixed)}
        if any(kernel_root(d) is None for d in dirs):
            return set(LEVELS)   # kernel trees may sit below: any level
        return {str(self.of(d)) for d in dirs}


def lint_paths(paths: list[Path], api: str = AUTO, root: Path | None = None, jobs: int | None = None) -> LintResult:
    """Lint files and directories: findings, and one error line per file that could not be linted.

    A missing path raises InputError before any finding is produced. `api` is a level, `auto`
    (each file's kernel tree), or an ApiLevel that carries its detection.

    With `root`, findings name files relative to it (check-patch lints a temporary copy).
    """
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.is_dir() and not path.is_file():
            raise InputError(f"{path}: no such file or directory")
    levels = _Levels(api)
    dirs = [p for p in paths if p.is_dir()]
    resolved = [p.resolve() for p in paths]
    words = set()
    for level in levels.possible(dirs) if dirs else ():
        words.update(w.decode() for w in _needles(level).plain)
        words.update(m.decode() for m in _needles(level).members)
    scan_level = levels.of(_common(resolved)) if paths else None

    with ThreadPoolExecutor(1) as background:
        search = background.submit(prefilter.count_matching, [str(d) for d in dirs], _minimal(words))
        facts = scan_mmap_uses(resolved, scan_level or DEFAULT_API, jobs) if paths else ScanFacts({}, {}, None)
        found, total, unreadable = search.result()

    # Every file to look at once, in the order of the paths given and os.walk's order below each.
    targets: dict[Path, tuple[Path, str]] = {}   # resolved -> (path to open, display)
    below: dict[Path, set[Path]] = {d: set() for d in dirs}
    for candidate in [*found, *facts.uses, *facts.errors, *(u.path for u in unreadable)]:
        real = Path(candidate).resolve()
        for given, base in zip(paths, resolved):
            if given.is_dir() and (real == base or base in real.parents):
                below[given].add(real)
                break
    for given, base in zip(paths, resolved):
        if given.is_dir():
            for real in sorted(below[given], key=lambda p: _walk_key(p.relative_to(base).as_posix())):
                targets.setdefault(real, (real, _display(real, given, base, root)))
        else:
            targets.setdefault(base, (given, _display(base, given, base, root)))
    problems = {Path(u.path).resolve(): u.message for u in unreadable}

    result = LintResult(files=total + sum(1 for p in paths if p.is_file()))
    effects_root = facts.effects.index.root if facts.effects is not None else None
    todo: list[_Job] = []
    outcomes: list[tuple] = []   # per target, in order: ("error", message) or the job to run
    for real, (path, shown) in targets.items():
        # The scanner's verdicts are part of the findings: a file it could not handle is not clean.
        if real in facts.errors or real in problems:
            outcomes.append(("error", f"{shown}: {facts.errors.get(real) or problems[real]}"))
            continue
        level = levels.of(real)
        levels.note(level)
        near = os.path.relpath(real, effects_root) if effects_root is not None else ""
        todo.append(_Job(str(path), shown, level, facts.uses.get(real, []), near))
        outcomes.append(("job", len(todo) - 1))
    done = _run(todo, facts.effects, jobs)
    for kind, value in outcomes:
        if kind == "job":
            kind, value = done[value]
        if kind == "error":
            result.errors.append(value)
        else:
            result.findings.extend(value)
    result.levels = list(levels.used.values()) or ([scan_level.detection] if scan_level is not None else [])
    return result


def _display(real: Path, given: Path, base: Path, root: Path | None) -> str:
    """How findings name a file: relative to `root`, else as the path the user gave spells it."""
    if root is not None:
        try:
            return real.relative_to(root.resolve()).as_posix()
        except ValueError:
            return str(real)
    return str(given) if real == base else str(given / real.relative_to(base))


def _common(resolved: list[Path]) -> Path:
    return Path(os.path.commonpath([p if p.is_dir() else p.parent for p in resolved]))


def _run(todo: list[_Job], effects, jobs: int | None):
    """Each job's outcome, in order. Bytes first (most files need no parse); then the files to
    parse go to worker processes when there are enough of them, while this process lints the
    files with a descriptor (the effect analysis lives here)."""
    outcomes = [_triage(job) for job in todo]
    parse = [i for i, (kind, _) in enumerate(outcomes) if kind == "parse"]
    workers = jobs or os.cpu_count() or 1
    pool = ProcessPoolExecutor(workers) if workers > 1 and len(parse) >= _PARALLEL_FROM else None
    try:
        if pool is not None:
            size = max(2, min(16, len(parse) // (workers * 4) + 1))
            chunks = [[todo[i] for i in parse[n:n + size]] for n in range(0, len(parse), size)]
            pending = pool.map(_lint_files, chunks)   # submitted now, run while this process works
        for i, (kind, _) in enumerate(outcomes):
            if kind == "here" or (kind == "parse" and pool is None):
                outcomes[i] = _lint_file(todo[i], effects if kind == "here" else None)
        if pool is not None:
            for i, outcome in zip(parse, (o for chunk in pending for o in chunk)):
                outcomes[i] = outcome
    finally:
        if pool is not None:
            pool.shutdown()
    return outcomes
