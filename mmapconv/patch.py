"""check-patch: lint what each patch of a series adds.

Without a tree, each file's hunks are rebuilt as their post-image (context
and added lines; the text after `@@ ... @@` is only a hint to reopen the
function a hunk starts inside) at their post-patch line numbers, so findings
map back unchanged, and linted as a fragment; functions earlier patches of
the series added whole are appended, so helpers they define are known. With
`--tree`, the series is applied patch by patch to a temporary copy of the
files it touches and whole post-patch files are linted; `git apply -v` says
where each hunk went, so a hunk applied at an offset is reported where it is.

A patch's findings are those on the lines it adds, and, for the rules about
the inside of an mmap_prepare hook (MMC2xx), those on any line of a function
the patch made a hook or a helper of one (its new signature takes the
descriptor, or the patch assigns it to `.mmap_prepare`): lines it did not
touch changed meaning with the hook. Without a tree that needs the whole
function in the hunks. MMC209 reads the removed lines: a remap whose error
the old code returned or ignored is no finding, one whose failure returned
an error of the driver's own is a warning naming it. One finding per patch,
line and rule is printed.

Patches come from strangers (CI runs this on mail), so before any directory
is made every file name of the whole series must be a plain relative path
(no `..`, not absolute, no control characters, not in `.git`), and without a
tree the line numbers of the hunks are bounded (`MAX_LINES`): a fragment
costs a byte per line up to its last hunk. The temporary directories are
removed on SIGTERM and SIGHUP too; a SIGKILL leaves its `mmapconv-*`
directory behind, as no process can clean up after that.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from unidiff import PatchSet
from unidiff.constants import DEV_NULL, RE_PATCH_FILE_PREFIX
from unidiff.errors import UnidiffParseError

from . import prefilter
from .api_level import at_patch
from .lint.catalogue import DEFAULT_API, KNOWLEDGE, RULES
from .lint.engine import SOURCE_SUFFIXES, lint_paths
from .lint.finding import Finding
from .lint.prepare import HOOK_MEMBER, TRANSPARENT, calls, desc_functions, known_hooks, strip
from .report.findings import Report
from .series import Patch, Series, printable
from .source import InputError, SourceFile, decode, encode, find, function_name

_LEGACY_REMAPS = KNOWLEDGE["actions"]["legacy_remaps"]
_LEGACY_REMAP = re.compile(r"\b(?:" + "|".join(_LEGACY_REMAPS) + r")\s*\(")

# Without a tree, the fragments of a whole series span at most this many lines
# (10 MB of blank lines, about half a second of linting): no C file is longer,
# and a hunk header such as `+99999999999,1` is refused instead of laid out.
MAX_LINES = 10_000_000
# Longer names than these are no kernel file, and an OSError on the way.
_MAX_NAME, _MAX_COMPONENT = 1024, 255
# unidiff matches `Binary files A and B differ` with a regex that backtracks in
# the square of the line's length: longer lines than two names are refused first.
_LONG_BINARY_LINE = re.compile(r"^Binary files? [^\n]{%d}" % (2 * _MAX_NAME + 64), re.M)
_GIT_NAME_LINE = re.compile(r"^(?:rename|copy) (?:from|to) (.*)$")
_GIT_ESCAPES = {b"a": b"\a", b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}


def _files(patch: Patch):
    if _LONG_BINARY_LINE.search(patch.diff):
        raise InputError(f"{patch.subject}: cannot parse the diff: a `Binary files` line longer than two file names")
    try:
        return PatchSet(patch.diff)
    except (UnidiffParseError, ValueError) as exc:   # ValueError: a line number of thousands of digits
        raise InputError(f"{patch.subject}: cannot parse the diff: {printable(str(exc))[:120]}") from None


# --- file names ----------------------------------------------------------------

def _unquote(name: str) -> str:
    """A name git quoted C-style ("a/x\\ty.c"); bytes that are not UTF-8 become surrogates (refused later)."""
    if len(name) < 2 or name[0] != '"' or name[-1] != '"':
        return name

    def one(m: re.Match) -> bytes:
        escape = m.group(1)
        return bytes([int(escape, 8) & 0xFF]) if escape[:1].isdigit() else _GIT_ESCAPES.get(escape, escape)

    raw = re.sub(rb"\\([0-7]{1,3}|.)", one, name[1:-1].encode("utf-8", "surrogateescape"), flags=re.S)
    return raw.decode("utf-8", "surrogateescape")


def _unsafe(name: str) -> str | None:
    """Why `name` may not be written below a temporary directory, or None."""
    parts = name.split("/")
    if not name.isprintable():
        return "control characters"
    if name.startswith("/"):
        return "an absolute path"
    if ".." in parts:
        return "a `..` component"
    if all(part in ("", ".") for part in parts):
        return "no file name"
    if any(part.lower() == ".git" for part in parts):
        return "inside .git"
    if len(name.encode("utf-8", "surrogateescape")) > _MAX_NAME or \
            any(len(part.encode("utf-8", "surrogateescape")) > _MAX_COMPONENT for part in parts):
        return "too long"
    return None


def _safe(raw: str, patch: Patch) -> str:
    """The relative path a header names (unquoted, git's `a/` prefix dropped); InputError if it is unsafe."""
    name = _unquote(raw)
    name = name[2:] if RE_PATCH_FILE_PREFIX.match(name) else name
    why = _unsafe(name)
    if why:
        raise InputError(f"{patch.subject}: refusing file name {name!r}: {why}")
    return PurePosixPath(name).as_posix()   # `./x.c` and `a//x.c` as the linter names them


def _names(patched_file) -> list[str]:
    """Every name a file's headers give: ---/+++ or diff --git, and git's rename and copy lines."""
    names = [n for n in (patched_file.source_file, patched_file.target_file) if n and n != DEV_NULL]
    for line in patched_file.patch_info or []:
        m = _GIT_NAME_LINE.match(line.rstrip("\n"))
        if m:
            names.append(m.group(1))
    return names


def _check_names(patch: Patch, files) -> None:
    for patched_file in files:
        for raw in _names(patched_file):
            _safe(raw, patch)


def _path(patched_file, patch: Patch) -> str:
    """The file's post-patch path, as unidiff's `path` picks it."""
    source, target = patched_file.source_file, patched_file.target_file
    return _safe(target if source in (None, DEV_NULL) or patched_file.is_rename else source, patch)


def _sources(patch: Patch, files) -> dict[str, object]:
    """The C files a patch leaves behind, by path."""
    out = {}
    for patched_file in files:
        if not patched_file.is_removed_file and not patched_file.is_binary_file:
            path = _path(patched_file, patch)
            if path.endswith(SOURCE_SUFFIXES):
                out[path] = patched_file
    return out


def _lint(patch: Patch, files: list[Path], api: str, root: Path) -> list[Finding]:
    try:
        return lint_paths(files, api, root=root).findings
    except InputError as exc:
        raise InputError(f"{patch.subject}: {exc}") from None


# --- what a patch adds and removes --------------------------------------------

def _side(hunk, side: str) -> list:
    """The hunk's lines on one side: "post" (context and added), "pre" (context and removed)."""
    return [line for line in hunk if (not line.is_removed if side == "post" else not line.is_added)]


def _start(hunk, side: str) -> int:
    return hunk.target_start if side == "post" else hunk.source_start


@dataclass
class _FileChange:
    """One C file of one patch: where its added lines are in the text the rules saw, and that text.

    `added` maps a line of the linted text to its hunk; `real` is the set of
    lines that are the patch's own (None: every line, a whole applied file);
    `text` is what was linted (hunks mode: the fragment before the series'
    earlier definitions were appended).
    """
    path: str
    patched_file: object
    added: dict[int, object]
    real: set[int] | None
    text: bytes
    _source: SourceFile | None = field(default=None, repr=False)

    @property
    def source(self) -> SourceFile:
        """The text parsed (once); text that does not parse holds no function."""
        if self._source is None:
            try:
                self._source = SourceFile.from_bytes(self.path, self.text)
            except InputError:
                self._source = SourceFile.from_bytes(self.path, b"")
        return self._source


# Rules about the inside of an mmap_prepare hook: a patch that makes a function a hook owns all of its lines.
def _owned(code: str) -> bool:
    return code.startswith("MMC2")


_ASSIGNED_HOOK = re.compile(r"(?:\.|->)\s*" + HOOK_MEMBER + r"\s*=\s*&?\s*\(?\s*([A-Za-z_]\w*)")


def _assigned_in(lines) -> set[str]:
    return {m.group(1) for text in lines for m in _ASSIGNED_HOOK.finditer(text)}


def _series_hooks(parsed) -> set[str]:
    """Every function the series assigns to an `mmap_prepare` member, on a line it adds or keeps."""
    return _assigned_in(line.value for _, files in parsed for pf in files for hunk in pf
                        for line in hunk if not line.is_removed)


def _new_hooks(files) -> set[str]:
    """Functions a patch starts assigning to `mmap_prepare` (added there, not assigned on a removed line)."""
    added = _assigned_in(line.value for pf in files for hunk in pf for line in hunk if line.is_added)
    return added - _assigned_in(line.value for pf in files for hunk in pf for line in hunk if line.is_removed)


def _converted(change: _FileChange, new_hooks: set[str]) -> list[tuple[int, int]]:
    """(first, last) lines of the hooks and helpers this patch made of a function, held whole by `real`.

    Made by the patch: it added a signature line that takes the descriptor (and
    its hunk removed none that did: not a reformatted hook), or it added the
    assignment to `.mmap_prepare`.
    """
    src = change.source
    lines = src.data.split(b"\n")
    out = []
    for fn in desc_functions(src):
        first, last = fn.node.start_point[0] + 1, fn.node.end_point[0] + 1
        signature = range(first, fn.body.start_point[0] + 2)
        hunks = {id(change.added[n]): change.added[n] for n in signature
                 if n in change.added and b"vm_area_desc" in lines[n - 1]}
        made = fn.name in new_hooks or any(
            not any(line.is_removed and "vm_area_desc" in line.value for line in hunk) for hunk in hunks.values())
        if made and (change.real is None or all(n in change.real for n in range(first, last + 1))):
            out.append((first, last))
    return out


# --- what the removed lines did with a failing remap -------------------------

_ERROR_VALUE = re.compile(r"-\s*(?:E[A-Z0-9]+|\d+)")


def _error_value(src: SourceFile, node) -> str | None:
    """`-EAGAIN` (or `-1`) when `node` is that constant, parentheses and casts aside."""
    node = strip(node)
    text = " ".join(src.text(node).split()) if node is not None else ""
    return text.replace(" ", "") if _ERROR_VALUE.fullmatch(text) else None


def _first_return(node):
    found = find(node, "return_statement") if node is not None else []
    if node is not None and node.type == "return_statement":
        return node
    return found[0] if found else None


def _branch_outcome(src: SourceFile, branch, variable: str | None) -> tuple[str, str | None]:
    """What the failure branch of a remap returns: its own error (pass), a constant (lost), or unknown."""
    ret = _first_return(branch)
    value = ret.named_children[0] if ret is not None and ret.named_children else None
    if value is None:
        return "unknown", None
    error = _error_value(src, value)
    if error:
        return "lost", error
    if variable is not None and src.text(strip(value)) == variable:
        return "pass", None
    return "unknown", None


def _mentions(src: SourceFile, node, name: str) -> bool:
    return any(src.text(n) == name for n in find(node, "identifier"))


def _after_assignment(src: SourceFile, statement, variable: str) -> tuple[str, str | None]:
    """`ret = remap(...);` then the first statement that reads `ret`: `return ret;` or `if (ret) return ...;`."""
    sibling = statement.next_named_sibling
    while sibling is not None:
        if sibling.type == "comment" or not _mentions(src, sibling, variable):
            sibling = sibling.next_named_sibling
            continue
        if sibling.type == "return_statement":
            return _branch_outcome(src, sibling, variable)
        if sibling.type == "if_statement" and _mentions(src, sibling.child_by_field_name("condition"), variable):
            return _branch_outcome(src, sibling.child_by_field_name("consequence"), variable)
        return "unknown", None
    return "unknown", None


def remap_outcome(src: SourceFile, call) -> tuple[str, str | None]:
    """What old code did when this legacy remap failed.

    ("pass", None): returned the remap's own error; ("ignored", None): did not
    look; ("lost", "-EAGAIN"): returned an error of its own, which an action
    without error_hook no longer returns; ("unknown", None): cannot tell.
    """
    node, parent = call, call.parent
    negated = False
    while parent is not None and parent.type in TRANSPARENT + ("binary_expression", "unary_expression"):
        if parent.type == "unary_expression" and src.text(parent).lstrip().startswith("!"):
            negated = True
        if parent.type == "binary_expression" and not (parent.child_by_field_name("right") is not None
                                                       and src.text(parent.child_by_field_name("right")).strip() == "0"):
            return "unknown", None
        node, parent = parent, parent.parent
    if parent is None:
        return "unknown", None
    if parent.type == "return_statement":
        return ("pass", None) if node == call or strip(node) == call else ("unknown", None)
    if parent.type == "expression_statement":
        return "ignored", None
    if parent.type == "conditional_expression" and parent.child_by_field_name("condition") == node and not negated:
        error = _error_value(src, parent.child_by_field_name("consequence"))
        return ("lost", error) if error else ("unknown", None)
    if parent.type == "if_statement" and not negated:
        return _branch_outcome(src, parent.child_by_field_name("consequence"), None)
    variable, statement = None, None
    if parent.type == "assignment_expression" and node == parent.child_by_field_name("right"):
        left = strip(parent.child_by_field_name("left"))
        variable = src.text(left) if left is not None and left.type == "identifier" else None
        statement = parent.parent
        # `if ((ret = remap(...)))`
        holder = statement
        while holder is not None and holder.type in TRANSPARENT + ("binary_expression",):
            holder = holder.parent
        if holder is not None and holder.type == "if_statement" and variable:
            return _branch_outcome(src, holder.child_by_field_name("consequence"), variable)
    elif parent.type == "init_declarator":
        declarator = parent.child_by_field_name("declarator")
        variable = src.text(declarator) if declarator is not None and declarator.type == "identifier" else None
        statement = parent.parent
    if variable and statement is not None and statement.type in ("expression_statement", "declaration"):
        return _after_assignment(src, statement, variable)
    return "unknown", None


def _remap_outcomes(patched_file) -> dict[int, list[tuple[str, str | None]]]:
    """id(hunk) -> the outcome of each legacy remap on a line the hunk removes, read from the pre-image."""
    removed = {line.source_line_no: hunk for hunk in patched_file for line in hunk if line.is_removed}
    if not removed or not any(_LEGACY_REMAP.search(line.value) for hunk in patched_file for line in hunk
                              if line.is_removed):
        return {}
    text, _ = lay_out(patched_file, "pre")
    try:
        src = SourceFile.from_bytes("pre-image", encode(text))
    except InputError:
        return {}
    out: dict[int, list] = {}
    for name, call in calls(src, src.root, names=_LEGACY_REMAPS):
        hunk = removed.get(src.line(call))
        if hunk is not None:
            out.setdefault(id(hunk), []).append(remap_outcome(src, call))
    return out


def _refine_remap_error(finding: Finding, in_hunk: list, in_file: list) -> Finding | None:
    """Use the removed lines (of the hunk, else the file): an error of the driver's own that the
    action loses is a warning, a remap whose error was passed through or ignored is no finding."""
    outcomes = in_hunk or in_file
    lost = next((error for kind, error in outcomes if kind == "lost"), None)
    if lost:
        rule = RULES["MMC209"]
        detail = (f"the removed code returned {lost} when the remap failed; "
                  f"keep it with desc->action.error_hook or say in the commit message that it changes")
        call = finding.message.split("()", 1)[0]
        return finding.with_(severity="warning", message=rule.format(call=call, detail=detail))
    if outcomes and all(kind in ("pass", "ignored") for kind, _ in outcomes):
        return None
    return finding


def _patch_findings(findings: list[Finding], patch: Patch, changes: dict[str, _FileChange],
                    new_hooks: set[str]) -> list[Finding]:
    """The findings that are this patch's: on the lines it adds, and for the rules about the inside of a
    hook, on every line of a function it made a hook."""
    out = []
    outcomes = {path: _remap_outcomes(change.patched_file) for path, change in changes.items()}
    in_file = {path: [o for found in by_hunk.values() for o in found] for path, by_hunk in outcomes.items()}
    owned: dict[str, list[tuple[int, int]]] = {}
    for f in findings:
        change = changes.get(f.path)
        if change is None:
            continue
        hunk = change.added.get(f.line)
        if hunk is None:
            if not _owned(f.code):
                continue
            if f.path not in owned:
                owned[f.path] = _converted(change, new_hooks)
            if not any(first <= f.line <= last for first, last in owned[f.path]):
                continue
        if f.code == "MMC209":
            in_hunk = outcomes[f.path].get(id(hunk), []) if hunk is not None else []
            f = _refine_remap_error(f, in_hunk, in_file[f.path])
            if f is None:
                continue
        out.append(f.with_(patch=patch.subject))
    return out


def _once(findings: list[Finding]) -> list[Finding]:
    """One finding per patch, file, line and rule (the leftmost), in the order they came."""
    first: dict[tuple, Finding] = {}
    for f in findings:
        key = (f.patch, f.path, f.line, f.code)
        if key not in first or f.col < first[key].col:
            first[key] = f
    keep = {id(f) for f in first.values()}
    return [f for f in findings if id(f) in keep]


# --- without a tree: hunks as fragments --------------------------------------

def _opening(header: str) -> str:
    """The line git put in the hunk header, made to open its block again."""
    header = header.strip()
    if not header or header.endswith(("{", ";", "}")) or header.startswith("#"):
        return header if header.endswith("{") else ""
    return header + " {" if "(" in header or header.rstrip().endswith("=") else ""


# Strings, comments: each alternative also takes an unterminated one (to the end
# of the line, of the text) so no match is tried again from every later position.
_NOT_CODE = re.compile(r'"(?:\\.|[^"\\\n])*"?|\'(?:\\.|[^\'\\\n])*\'?|/\*.*?(?:\*/|\Z)|//[^\n]*', re.S)


def _brace_depth(lines: list[str]) -> int:
    text = _NOT_CODE.sub("", "\n".join(lines))
    return text.count("{") - text.count("}")


def _blocks_open_at_start(lines: list[str]) -> int:
    """How many blocks a hunk starts inside: its unmatched closing braces, or one when its first line is
    indented (kernel style starts what is not inside a block at column 0)."""
    text = _NOT_CODE.sub("", "\n".join(lines))
    depth = lowest = 0
    for ch in text:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            lowest = min(lowest, depth)
    if lowest < 0:
        return -lowest
    first = next((line for line in lines if line.strip()), "")
    return 1 if first[:1] in ("\t", " ") and not first.lstrip().startswith(("*", "/*", "#")) else 0


def _hunk_end(hunk) -> int:
    return hunk.target_start + hunk.target_length


def _check_line_budget(parsed: list[tuple[Patch, object]]) -> None:
    """Refuse, before any file is written, fragments past MAX_LINES lines for the whole series."""
    total = 0
    for patch, files in parsed:
        for path, patched_file in _sources(patch, files).items():
            last = max(patched_file, key=_hunk_end, default=None)
            total += _hunk_end(last) if last is not None else 0
            if total > MAX_LINES:
                header = f"@@ -{last.source_start},{last.source_length} +{last.target_start},{last.target_length} @@"
                raise InputError(f"{patch.subject}: {path}: hunk \"{header}\" ends at line {_hunk_end(last)}: "
                                 f"without --tree, check-patch lays out at most {MAX_LINES} lines per series")


def _lay_out(placed: dict[int, str]) -> str:
    """The placed lines at their numbers, blank lines between: linear in the lines placed, not in the last number."""
    out, next_line = [], 1
    for n in sorted(n for n in placed if n >= 1):
        out.append("\n" * (n - next_line) + placed[n] + "\n")
        next_line = n + 1
    return "".join(out)


def lay_out(patched_file, side: str = "post") -> tuple[str, set[int]]:
    """One side of the hunks ("post": context and added lines, "pre": context and removed), each line
    at its line number on that side, and the set of those lines.

    Only the hunks' lines are code. Hunks start and stop inside functions:
    a hunk that starts inside a block (it closes braces it never opened, or
    its first line is indented) gets, in the gap before it, the function
    header git names after `@@ ... @@` (a hint: the line is never reported
    on, and a hunk that starts at the top level gets nothing), unless an
    earlier hunk already opened that function; blocks a hunk leaves open are
    closed in the gap after it.
    """
    placed: dict[int, str] = {}
    real: set[int] = set()
    seen: set[str] = set()   # text of earlier hunks, both sides: git's header is a pre-image line
    depth = 0
    next_free = 1

    def close(upto: int) -> None:
        nonlocal depth, next_free
        while depth > 0 and next_free < upto:
            placed[next_free] = "}"
            next_free += 1
            depth -= 1
        depth = 0

    for hunk in patched_file:
        start = _start(hunk, side)
        header = (hunk.section_header or "").strip()
        body = [line.value.rstrip("\n") for line in _side(hunk, side)]
        if header and header in seen:
            last = placed.get(next_free - 1, "").strip()
            if depth == 0 and start - 1 >= next_free and re.match(r"[A-Za-z_].*\)$", last):
                placed[start - 1] = "{"     # the signature was in the last hunk, its brace was not
                depth = 1
        else:
            close(start - 1)
            inside = _blocks_open_at_start(body)
            opening = _opening(header) if inside else ""
            if opening and start - 1 >= next_free:
                opening += " {" * (inside - 1)
                placed[start - 1] = opening
                depth = _brace_depth([opening])
        for offset, text in enumerate(body):
            placed[start + offset] = text
            real.add(start + offset)
        seen.update(line.value.strip() for line in hunk)
        depth = max(depth + _brace_depth(body), 0)
        next_free = start + len(body)
    close(next_free + depth + 1)
    return _lay_out(placed), real


def _write(root: Path, path: str, data: bytes, patch: Patch) -> Path:
    target = root / path
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    except OSError as exc:   # e.g. `x.c` and `x.c/y.c` in one patch
        raise InputError(f"{patch.subject}: cannot lay out {path!r}: {exc.strerror}") from None
    return target


class _SeriesMemory:
    """Functions earlier patches of the series added whole, by file: a later patch's hunks call them
    without showing them, and the rules that follow helpers must see their bodies."""

    def __init__(self):
        self.functions: dict[str, dict[str, str]] = {}

    def remember(self, path: str, src: SourceFile, real: set[int]) -> None:
        for fn in find(src.root, "function_definition"):
            first, last = fn.start_point[0] + 1, fn.end_point[0] + 1
            name = function_name(src, fn)
            if name and fn.parent == src.root and all(n in real for n in range(first, last + 1)):
                self.functions.setdefault(path, {})[name] = src.text(fn)

    def appendix(self, path: str, src: SourceFile) -> str:
        known = self.functions.get(path)
        if not known:
            return ""
        defined = {function_name(src, fn) for fn in find(src.root, "function_definition")}
        missing = [text for name, text in known.items() if name not in defined]
        return "".join(f"\n{text}\n" for text in missing)


def _check_hunks(patch: Patch, files, api: str, memory: _SeriesMemory) -> list[Finding]:
    patched_files = _sources(patch, files)
    if not patched_files:
        return []
    changes: dict[str, _FileChange] = {}
    texts: dict[str, bytes] = {}
    for path, pf in patched_files.items():
        text, real = lay_out(pf, "post")
        data = encode(text)
        added = {line.target_line_no: hunk for hunk in pf for line in hunk if line.is_added}
        change = _FileChange(path, pf, added, real, data)
        texts[path] = data + encode(memory.appendix(path, change.source))
        memory.remember(path, change.source, real)
        changes[path] = change
    # A directory only because the scanner behind MMC101 reads files from disk.
    with _scratch("mmapconv-hunks-") as tmp:
        root = Path(tmp)
        written = [_write(root, path, texts[path], patch) for path in patched_files]
        findings = _lint(patch, written, api, root)
    return _patch_findings(findings, patch, changes, _new_hooks(files))


# --- with a tree: apply the series to a copy ---------------------------------

def _touched(parsed: list[tuple[Patch, object]]) -> dict[str, Patch]:
    """Every path the series names, with the first patch that names it."""
    paths: dict[str, Patch] = {}
    for patch, files in parsed:
        for patched_file in files:
            for raw in (patched_file.source_file, patched_file.target_file):
                if raw and raw != DEV_NULL:
                    paths.setdefault(_safe(raw, patch), patch)
    return paths


def _copy_tree(tree: Path, paths: dict[str, Patch], to: Path) -> None:
    """Copy the regular files the series names out of `tree`; a name that leads out of it is refused."""
    top = os.path.realpath(tree)
    for path, patch in sorted(paths.items()):
        real = os.path.realpath(tree / path)
        if os.path.commonpath([top, real]) != top:
            raise InputError(f"{patch.subject}: {path!r} in {tree} is a symbolic link out of it")
        if not os.path.isfile(real):
            continue   # new, or not a regular file: git apply says whether the patch expected it
        try:
            (to / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(real, to / path)
        except OSError as exc:
            raise InputError(f"{patch.subject}: cannot copy {path!r} from {tree}: {exc.strerror}") from None


def _tree_hooks(tree: Path, paths: dict[str, Patch]) -> set[str]:
    """Functions assigned to `mmap_prepare` in the directories the series touches (a hook defined in one
    file of a driver and put in the ops of another). The tree's top directory is not searched: that
    would be the whole kernel, for the sake of its top-level files."""
    top = os.path.realpath(tree)
    directories = sorted({os.path.realpath(tree / os.path.dirname(p)) for p in paths if os.path.dirname(p)})
    directories = [d for d in directories if d != top and os.path.isdir(d) and os.path.commonpath([top, d]) == top]
    # A directory below another is searched with it.
    directories = [d for d in directories if not any(o != d and d.startswith(o + os.sep) for o in directories)]
    found, _ = prefilter.search(directories, [HOOK_MEMBER]) if directories else ([], [])
    names = set()
    for path in found:
        try:
            names |= _assigned_in(decode(Path(path).read_bytes()).splitlines())
        except OSError:
            continue
    return names


def _git(args: list[str], work: Path, data: bytes | None = None) -> subprocess.CompletedProcess:
    # This directory's repository only: no GIT_DIR or GIT_WORK_TREE from a hook we run in, no user or
    # system config; a symbolic link a patch creates is written as a file holding its target, never followed.
    # Messages in English: `git apply -v` says where each hunk went.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") and k != "LANGUAGE"}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, LC_ALL="C")
    return subprocess.run(["git", "-c", "core.symlinks=false", *args], cwd=work, input=data,
                          capture_output=True, env=env)


_CHECKING = re.compile(r"^Checking patch (.*)\.\.\.$")
_HUNK_MOVED = re.compile(r"^Hunk #(\d+) succeeded at \d+ \(offset (-?\d+) lines?\)\.$")


def _apply(patch: Patch, number: str, work: Path, tree: Path) -> dict[str, dict[int, int]]:
    """Apply one patch; for each file git names, the offset of each hunk git did not apply at its header's line."""
    # --recount: archives and hand edits leave hunk counts that do not add up.
    result = _git(["apply", "-v", "--recount", "--whitespace=nowarn", "-"], work, patch.diff.encode())
    messages = result.stderr.decode(errors="replace").splitlines()
    if result.returncode != 0:
        why = next((ln for ln in messages if ln.strip() and not _CHECKING.match(ln) and not ln.startswith("Hunk #")),
                   "git apply failed")
        raise InputError(f"patch {number} \"{patch.subject}\" does not apply to {tree}: {printable(why)}")
    offsets: dict[str, dict[int, int]] = {}
    current: list[str] = []
    for message in messages:
        m = _CHECKING.match(message)
        if m:
            current = [_unquote(name.strip()) for name in m.group(1).split(" => ")]
            continue
        m = _HUNK_MOVED.match(message)
        if m:
            for name in current:
                offsets.setdefault(name, {})[int(m.group(1))] = int(m.group(2))
    return offsets


def _content(line: str) -> str:
    return line.rstrip("\r\n")


def _placed_at(post: list[str], hunk, first: int) -> bool:
    """Whether the hunk's post side sits at line `first` of `post`."""
    lines = _side(hunk, "post")
    return first >= 1 and first - 1 + len(lines) <= len(post) and \
        all(post[first - 1 + i] == _content(line.value) for i, line in enumerate(lines))


def _find_hunk(post: list[str], hunk, near: int, after: int) -> int | None:
    """Where the hunk's post side is in the file, nearest to line `near` and not before line `after`."""
    size = len(_side(hunk, "post"))
    candidates = range(max(after, 1), len(post) - size + 2)
    for first in sorted(candidates, key=lambda n: abs(n - near)):
        if _placed_at(post, hunk, first):
            return first
    return None


def _applied_change(path: str, pf, work: Path, offsets: dict[int, int]) -> _FileChange:
    """The file as git left it, and its added lines where git put them (at an offset when the context
    matched elsewhere): each checked against the text, searched for when it does not match."""
    try:
        data = (work / path).read_bytes()
    except OSError:   # git apply made something else of it (a directory, nothing): no line to report on
        return _FileChange(path, pf, {}, None, b"")
    post = [_content(line) for line in decode(data).split("\n")]
    added, after = {}, 1
    for n, hunk in enumerate(pf, 1):
        expected = hunk.target_start + offsets.get(n, 0)
        first = expected if _placed_at(post, hunk, expected) else _find_hunk(post, hunk, expected, after)
        if first is None:
            continue   # git applied it; the text says not where: its lines are not reported on
        for i, line in enumerate(_side(hunk, "post")):
            if line.is_added:
                added[first + i] = hunk
        after = first + len(_side(hunk, "post"))
    return _FileChange(path, pf, added, None, data)


def _file_offsets(offsets: dict[str, dict[int, int]], path: str, pf) -> dict[int, int]:
    """The offsets git printed for this file, under the name it printed (either side of a rename)."""
    if path in offsets:
        return offsets[path]
    for raw in _names(pf):
        name = _unquote(raw)
        name = PurePosixPath(name[2:] if RE_PATCH_FILE_PREFIX.match(name) else name).as_posix()
        if name in offsets:
            return offsets[name]
    return {}


def _check_tree(parsed: list[tuple[Patch, object]], tree: Path, api: str, hooks: set[str]) -> list[Finding]:
    if not tree.is_dir():
        raise InputError(f"{tree}: no such directory")
    findings = []
    touched = _touched(parsed)
    with _scratch("mmapconv-tree-") as tmp, known_hooks(hooks | _tree_hooks(tree, touched)):
        work = Path(tmp)
        # A repository of its own, so `git apply` resolves paths here and never in a repo around TMPDIR.
        _git(["init", "-q", "."], work).check_returncode()
        _copy_tree(tree, touched, work)
        for n, (patch, files) in enumerate(parsed, 1):
            offsets = _apply(patch, f"{n}/{len(parsed)}", work, tree)
            patched_files = _sources(patch, files)
            if not patched_files:
                continue
            changes = {path: _applied_change(path, pf, work, _file_offsets(offsets, path, pf))
                       for path, pf in patched_files.items()}
            linted = _lint(patch, [work / p for p in patched_files], at_patch(api, n - 1), work)
            findings += _patch_findings(linted, patch, changes, _new_hooks(files))
    return findings


_TERMINATING = (signal.SIGTERM, signal.SIGHUP)


@contextmanager
def _signals_held():
    """SIGTERM and SIGHUP wait (on the main thread) until the block is done: a directory is made and
    known, or removed, whole; the signal then ends the run at the block's end."""
    hold = threading.current_thread() is threading.main_thread() and hasattr(signal, "pthread_sigmask")
    if hold:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, _TERMINATING)
    try:
        yield
    finally:
        if hold:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextmanager
def _scratch(prefix: str):
    """A temporary directory that a SIGTERM cannot leave behind, however it falls (see _exit_on_termination)."""
    path = None
    try:
        with _signals_held():   # a signal held here ends the run as the block ends, with `path` known
            path = tempfile.mkdtemp(prefix=prefix)
        yield path
    finally:
        if path is not None:
            with _signals_held():
                shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _exit_on_termination():
    """SIGTERM and SIGHUP end the run through SystemExit, so `with` blocks remove their directories."""
    if threading.current_thread() is not threading.main_thread():
        yield   # only the main thread may set handlers; its caller owns the signals then
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in _TERMINATING}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def check_series(series: Series, tree: Path | None = None, api: str = DEFAULT_API) -> Report:
    parsed = [(patch, _files(patch)) for patch in series.patches]
    for patch, files in parsed:
        _check_names(patch, files)
    if tree is None:
        _check_line_budget(parsed)
    hooks = _series_hooks(parsed)
    with _exit_on_termination():
        if tree is not None:
            findings = _check_tree(parsed, tree, api, hooks)
        else:
            memory = _SeriesMemory()
            with known_hooks(hooks):
                # A name the series defines is known from the patch that defines it on.
                findings = [f for n, (patch, files) in enumerate(parsed)
                            for f in _check_hunks(patch, files, at_patch(api, n), memory)]
    return Report("check-patch", _once(findings), patches=[p.subject for p in series.patches], notes=series.notes)
