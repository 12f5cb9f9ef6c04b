"""Diffs as git writes them: minimal hunks, function headings, byte-exact lines, a diffstat.

Hunks come from `git diff --no-index --histogram` when git is on PATH, as a
maintainer's own `git format-patch` would make them; without git, difflib
with its popular-line heuristic off (with it on, a `{` that occurs often is
deleted and re-added inside hunks, which no git diff does). Either way the
headings after `@@` follow git's default rule, so the two differ only where
the algorithms align lines differently.
"""
from __future__ import annotations

import difflib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

_NO_NEWLINE = b"\\ No newline at end of file\n"
_HUNK_HEAD = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@", re.M)
# No user or system configuration may change the hunks (algorithm, context, attributes, prefixes).
_GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C"}
_GIT_DIFF = ["git", "-c", "core.attributesFile=" + os.devnull, "-c", "diff.suppressBlankEmpty=false",
             "diff", "--no-index", "--histogram", "--indent-heuristic", "-U3", "--inter-hunk-context=0",
             "--no-color", "--no-ext-diff", "--no-textconv", "--"]


def unified_diff(changes: dict[str, tuple[bytes, bytes]], modes: dict[str, int] | None = None) -> str:
    """One patch for all changes, paths relative to the tree root (`git apply`, `patch -p1`).

    Built on bytes, split on b"\\n" only, as git splits: a form feed, a lone CR
    or U+2028 stays inside its line, and a file in any encoding comes out byte
    for byte. `modes` (path -> st_mode), when given, adds git's `index` line
    with the blobs' ids, as in a repository. The patch is returned decoded as
    UTF-8 with surrogateescape; encode it the same way to print it (`patch_bytes`).
    """
    paths = sorted(changes)
    git = shutil.which("git")
    with ThreadPoolExecutor(min(8, len(paths) or 1)) as pool:
        bodies = list(pool.map(lambda p: _hunks(*changes[p], git), paths))
    out = []
    for path, body in zip(paths, bodies):
        name = os.fsencode(path)
        out.append(b"diff --git a/%s b/%s\n" % (name, name))
        if modes is not None:
            old, new = changes[path]
            out.append(b"index %s..%s %o\n" % (_blob_id(old)[:12].encode(), _blob_id(new)[:12].encode(),
                                                 modes.get(path, 0o100644)))
        out.append(b"--- a/%s\n+++ b/%s\n" % (name, name))
        out.append(body)
    return b"".join(out).decode("utf-8", "surrogateescape")


def patch_bytes(diff: str) -> bytes:
    """The bytes of a patch from unified_diff, for a binary stream."""
    return diff.encode("utf-8", "surrogateescape")


def _lines(data: bytes) -> list[bytes]:
    """Lines as git sees them: each ends with b"\\n" but a last one the file does not end."""
    parts = data.split(b"\n")
    return [part + b"\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _hunks(old: bytes, new: bytes, git: str | None) -> bytes:
    """The `@@` hunks turning old into new, git's own when git runs, else difflib's."""
    if git is not None:
        hunks = _git_hunks(old, new)
        if hunks is not None:
            return hunks
    return _difflib_hunks(old, new)


def _git_hunks(old: bytes, new: bytes) -> bytes | None:
    with tempfile.TemporaryDirectory(prefix="mmapconv-diff-") as tmp:
        Path(tmp, "old").write_bytes(old)
        Path(tmp, "new").write_bytes(new)
        try:
            proc = subprocess.run(_GIT_DIFF + ["old", "new"], cwd=tmp, capture_output=True, check=False,
                                  env={**os.environ, **_GIT_ENV})
        except OSError:
            return None
    start = _HUNK_HEAD.search(proc.stdout)
    # 1 is "they differ"; anything else, or a "Binary files differ" with no hunk, goes to difflib.
    if proc.returncode != 1 or start is None:
        return None
    return proc.stdout[start.start():]


def _difflib_hunks(old: bytes, new: bytes) -> bytes:
    a, b = _lines(old), _lines(new)
    out = []
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(3):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        out.append(b"@@ -%s +%s @@%s\n" % (_range(i1, i2), _range(j1, j2), _heading(a, i1)))
        for tag, x1, x2, y1, y2 in group:
            if tag == "equal":
                out.extend(b" " + line for line in a[x1:x2])
                continue
            out.extend(b"-" + line for line in a[x1:x2])
            out.extend(b"+" + line for line in b[y1:y2])
    # Only a file's last line can lack its newline; git wants that said, or it calls the patch corrupt.
    return b"".join(line if line.endswith(b"\n") else line + b"\n" + _NO_NEWLINE for line in out)


def _range(start: int, end: int) -> bytes:
    """git's `start,count`: 1-based, count omitted when 1, the line before an empty range."""
    count = end - start
    if count == 1:
        return b"%d" % (start + 1)
    return b"%d,%d" % (start + 1 if count else start, count)


def _heading(lines: list[bytes], before: int) -> bytes:
    """git's default function heading: the last line above the hunk that starts like an identifier."""
    for line in reversed(lines[:before]):
        if line[:1].isalpha() or line[:1] in (b"_", b"$"):
            return b" " + line[:80].rstrip()
    return b""


def diffstat(changes: dict[str, tuple[bytes, bytes]], diff: str, width: int = 72) -> str:
    """`git diff --stat` as format-patch prints it (72 columns): one line per file and the total."""
    counts = {path: [0, 0] for path in changes}
    current = None
    for line in diff.split("\n"):
        if line.startswith("diff --git a/"):
            current = line[len("diff --git a/"):].rsplit(" b/", 1)[0]
        elif current is not None and line.startswith(("+", "-")) and not line.startswith(("+++ ", "--- ")):
            counts[current][line[0] == "-"] += 1
    if not counts:
        return " 0 files changed\n"
    max_change = max(a + d for a, d in counts.values())
    number_width = len(str(max_change))
    name_width = max(len(p) for p in counts)
    graph_width = max_change
    if name_width + number_width + 6 + graph_width > width:
        graph_width = min(graph_width, max(6, width * 3 // 8 - number_width - 6))
        if name_width > width - number_width - 6 - graph_width:
            name_width = width - number_width - 6 - graph_width
        else:
            graph_width = width - number_width - 6 - name_width
    out = []
    for path in sorted(counts):
        added, deleted = counts[path]
        name, prefix = path, ""
        if len(name) > name_width:
            prefix, name = "...", name[len(name) - (name_width - 3):]
            name = name[name.find("/"):] if "/" in name else name
        if graph_width <= max_change:
            total = _scale(added + deleted, graph_width, max_change)
            total = 2 if total < 2 and added and deleted else total
            if added < deleted:
                added_w = _scale(added, graph_width, max_change)
                deleted_w = total - added_w
            else:
                deleted_w = _scale(deleted, graph_width, max_change)
                added_w = total - deleted_w
        else:
            added_w, deleted_w = added, deleted
        pad = " " * max(0, name_width - len(prefix + name))
        out.append(f" {prefix}{name}{pad} | {added + deleted:>{number_width}}"
                   f"{' ' if added + deleted else ''}{'+' * added_w}{'-' * deleted_w}\n")
    insertions = sum(a for a, _ in counts.values())
    deletions = sum(d for _, d in counts.values())
    total = f" {len(counts)} file{'s' if len(counts) != 1 else ''} changed"
    if insertions or not deletions:
        total += f", {insertions} insertion{'s' if insertions != 1 else ''}(+)"
    if deletions or not insertions:
        total += f", {deletions} deletion{'s' if deletions != 1 else ''}(-)"
    return "".join(out) + total + "\n"


def _scale(it: int, width: int, max_change: int) -> int:
    return 0 if not it else 1 + it * (width - 1) // max_change
