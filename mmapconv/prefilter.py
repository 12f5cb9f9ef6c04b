"""Which C files contain some fixed strings: the byte prefilter that runs before any parsing.

On a kernel tree reading 60,000 files is most of the cost, so directories are
searched with GNU grep (`-rlF`, C speed) when it is on PATH; explicit files,
or a machine without grep (or MMAPCONV_NO_GREP=1), use the Python reader.
Either way the caller re-checks every candidate with its exact pattern:
this only narrows the set.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

SOURCE_SUFFIXES = (".c", ".h")


@dataclass
class Unreadable:
    path: str
    message: str


def walk(paths: list[str]) -> tuple[list[str], list[Unreadable]]:
    """Every .c/.h file under `paths` (hidden directories and links skipped), and the paths that do not exist."""
    files, missing = [], []
    for path in paths:
        if os.path.isfile(path):
            files.append(path)
        elif os.path.isdir(path):
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                # Symbolic links are not followed, as `grep -r` does not follow them.
                files.extend(path for path in (os.path.join(dirpath, f) for f in sorted(filenames)
                                               if f.endswith(SOURCE_SUFFIXES)) if not os.path.islink(path))
        else:
            missing.append(Unreadable(path, "no such file or directory"))
    return files, missing


@dataclass
class TreeSearch:
    """One walk of the tree for several needles, kept for the run.

    A later question about strings that each hold a needle is answered from
    the files this walk found: on a kernel tree, a second walk costs what the
    scan's whole parse costs.
    """
    paths: list[str]
    needles: tuple[str, ...]
    files: list[str]                 # holding any needle, sorted
    problems: list[Unreadable]

    def search(self, strings: list[str], word: bool = False) -> tuple[list[str], list[Unreadable]]:
        """What `search(self.paths, strings, word)` returns, from the files found when it can."""
        if not strings or not all(any(n in s for n in self.needles) for s in strings):
            return search(self.paths, strings, word)
        if _use_grep(self.paths):
            return _grep_files(self.files, ["-F", *(["-w"] if word else []), *(a for s in strings for a in ("-e", s))]), []
        return _read_matching(self.files, _pattern(strings, word).search)


def search_tree(paths: list[str], needles: list[str]) -> TreeSearch:
    """Files under `paths` holding any needle, kept for later searches."""
    needles = tuple(sorted({n for n in needles if not any(o != n and o in n for o in needles)}))
    files, problems = search(paths, list(needles)) if needles else ([], [])
    return TreeSearch(paths, needles, files, problems)


def _pattern(strings: list[str], word: bool) -> re.Pattern:
    alternatives = b"|".join(re.escape(s.encode()) for s in strings)
    return re.compile((rb"\b(?:%s)\b" if word else rb"(?:%s)") % alternatives)


def _use_grep(paths: list[str]) -> bool:
    return (os.environ.get("MMAPCONV_NO_GREP") != "1" and shutil.which("grep") is not None
            and all(os.path.isdir(p) for p in paths))


def search(paths: list[str], strings: list[str], word: bool = False) -> tuple[list[str], list[Unreadable]]:
    """Files under `paths` containing any of `strings`, and those that could not be read."""
    if not strings:
        return [], []
    pattern = _pattern(strings, word)
    if not _use_grep(paths):
        return _read_matching(paths, pattern.search)
    common = _common_part(strings)
    if len(strings) == 1 or len(common) < _COMMON_ENOUGH:
        return _grep(paths, ["-F", *(["-w"] if word else []), *(a for s in strings for a in ("-e", s))])
    # GNU grep is several times slower on many fixed strings than on one: search their
    # common part (`_mmap` of mmap callbacks' names), then check the few files it finds.
    found, problems = _grep(paths, ["-F", "-e", common])
    return [p for p in found if _matches(p, pattern)], problems


_COMMON_ENOUGH = 4


def _common_part(strings: list[str]) -> str:
    """The longest substring of every string."""
    shortest = min(strings, key=len)
    for size in range(len(shortest), 0, -1):
        for start in range(len(shortest) - size + 1):
            part = shortest[start:start + size]
            if all(part in s for s in strings):
                return part
    return ""


def _matches(path: str, pattern: re.Pattern) -> bool:
    try:
        with open(path, "rb") as fh:
            return pattern.search(fh.read()) is not None
    except OSError:
        return False


def search_regex(paths: list[str], pattern: str) -> tuple[list[str], list[Unreadable]]:
    """Files under `paths` with a line matching `pattern` (an ERE that Python's re reads the same way)."""
    if _use_grep(paths):
        return _grep(paths, ["-E", "-e", pattern])
    return _read_matching(paths, re.compile(pattern.encode(), re.M).search)


def _read_matching(paths: list[str], matches) -> tuple[list[str], list[Unreadable]]:
    files, problems = walk(paths)
    found, unreadable = _matching(files, matches)
    return found, problems + unreadable


def _matching(files: list[str], matches) -> tuple[list[str], list[Unreadable]]:
    found, unreadable = [], []
    for path in files:
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            unreadable.append(Unreadable(path, f"cannot read: {exc.strerror}"))
            continue
        if matches(data):
            found.append(path)
    return found, unreadable


_NICE = shutil.which("nice")
# Low enough that the scanner wins a contended core, high enough that a machine busy with
# other work does not starve the search (at 19 it would get a few percent of a core).
_NICENESS = 5


def count_matching(dirs: list[str], needles: list[bytes]) -> tuple[list[str], int, list[Unreadable]]:
    """Files below `dirs` holding any needle, how many .c/.h files there are, and the unreadable ones.

    It runs beside the scanner (lint's other files), at a lower priority: it takes the moments a
    core is idle (the scanner's own grep, its linking) rather than the scanner's time.
    """
    if not dirs:
        return [], 0, []
    if not _use_grep(dirs):
        files, problems = walk(dirs)
        found, unreadable = _matching(files, lambda data: any(n in data for n in needles))
        return found, len(files), problems + unreadable
    cmd = ["grep", "-rcZF", "--include=*.c", "--include=*.h", *(a for n in needles for a in (b"-e", n)), "--", *dirs]
    if _NICE:
        cmd = [_NICE, "-n", str(_NICENESS), *cmd]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    found, total = [], 0
    for line in proc.stdout.split(b"\n"):
        name, sep, count = line.partition(b"\0")
        if not sep:
            continue
        path = name.decode("utf-8", "surrogateescape")
        if _hidden(path, dirs):   # walk() skips them too
            continue
        total += 1
        if count.strip() not in (b"0", b""):
            found.append(path)
    return found, total, _grep_problems(proc.stderr)


def _hidden(path: str, roots: list[str]) -> bool:
    """Below a hidden directory of the tree (.git, .pc, ...), as walk() skips them."""
    root = next((r for r in roots if path.startswith(r.rstrip("/") + "/")), "")
    return any(part.startswith(".") for part in path[len(root):].split("/")[:-1])


def _grep(paths: list[str], pattern_args: list[str]) -> tuple[list[str], list[Unreadable]]:
    cmd = ["grep", "-rlZ", "--include=*.c", "--include=*.h", *pattern_args, "--"]
    groups = _split(paths, min(os.cpu_count() or 1, _MAX_GREPS))
    with ThreadPoolExecutor(len(groups)) as pool:
        procs = list(pool.map(lambda group: subprocess.run(cmd + group, capture_output=True, check=False), groups))
    found = sorted(p for proc in procs for p in (raw.decode("utf-8", "surrogateescape")
                                                 for raw in proc.stdout.split(b"\0") if raw)
                   if not _hidden(p, paths))
    return found, [u for proc in procs for u in _grep_problems(proc.stderr)]


# One grep reads a kernel tree on one core; its directories are shared among a few.
_MAX_GREPS = 4


def _split(paths: list[str], n: int) -> list[list[str]]:
    """The directories two levels down (and the files above them), dealt out to `n` greps.

    What grep -r would skip is left out: hidden entries and symbolic links
    (named on its command line, grep follows a link).
    """
    if n < 2:
        return [paths]
    items: list[str] = []
    for root in paths:
        try:
            for entry in _entries(root):
                if entry.is_dir(follow_symlinks=False):
                    items.extend(e.path for e in _entries(entry.path)
                                 if e.is_dir(follow_symlinks=False) or e.name.endswith(SOURCE_SUFFIXES))
                elif entry.name.endswith(SOURCE_SUFFIXES):
                    items.append(entry.path)
        except OSError:
            return [paths]   # grep itself says what it cannot read
    groups = [items[i::n] for i in range(n)]
    return [g for g in groups if g] or [paths]


def _entries(directory: str) -> list[os.DirEntry]:
    with os.scandir(directory) as it:
        return sorted((e for e in it if not e.name.startswith(".") and not e.is_symlink()), key=lambda e: e.name)


# Below Linux's 2 MiB for arguments and environment, with room for both.
_ARGUMENT_BYTES = 1 << 20


def _grep_files(files: list[str], pattern_args: list[str]) -> list[str]:
    """The files of a list (already walked, none hidden) that match: a grep per core, each within ARG_MAX."""
    n = min(os.cpu_count() or 1, _MAX_GREPS)
    batches = []
    for group in (files[i::n] for i in range(n)):
        batch, size = [], 0
        for path in group:
            if batch and size + len(path) + 1 > _ARGUMENT_BYTES:
                batches.append(batch)
                batch, size = [], 0
            batch.append(path)
            size += len(path) + 1
        if batch:
            batches.append(batch)
    with ThreadPoolExecutor(max(1, min(n, len(batches)))) as pool:
        procs = pool.map(lambda batch: subprocess.run(["grep", "-lZ", *pattern_args, "--", *batch],
                                                      capture_output=True, check=False), batches)
        return sorted(raw.decode("utf-8", "surrogateescape") for proc in procs for raw in proc.stdout.split(b"\0") if raw)


def _grep_problems(stderr: bytes) -> list[Unreadable]:
    problems = []
    for line in stderr.decode("utf-8", "replace").splitlines():
        # grep: PATH: Permission denied
        parts = line.split(": ")
        if len(parts) >= 3 and parts[0] == "grep":
            problems.append(Unreadable(": ".join(parts[1:-1]), f"cannot read: {parts[-1]}"))
    return problems
