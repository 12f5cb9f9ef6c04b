"""check-patch: lint the lines each patch of a series adds.

Without a tree, each file's hunks are laid out at their post-patch line
numbers (so findings map back unchanged) and linted as a fragment. With
`--tree`, the series is applied patch by patch to a temporary copy of the
files it touches and whole post-patch files are linted. Either way only
findings on lines the patch added are reported, under the patch's subject.

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
from pathlib import Path, PurePosixPath

from unidiff import PatchSet
from unidiff.constants import DEV_NULL, RE_PATCH_FILE_PREFIX
from unidiff.errors import UnidiffParseError

from .lint.catalogue import DEFAULT_API, KNOWLEDGE, RULES
from .lint.engine import SOURCE_SUFFIXES, lint_paths
from .lint.finding import Finding
from .report.findings import Report
from .series import Patch, Series, printable
from .source import InputError

_LEGACY_REMAP = re.compile(r"\b(?:" + "|".join(KNOWLEDGE["actions"]["legacy_remaps"]) + r")\s*\(")
_ERROR_RETURN = re.compile(r"\breturn\s+\(?\s*(-E[A-Z0-9]+)\b")
# How many removed lines after a remap call may hold the error it returned.
_ERROR_WINDOW = 4

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

def _dropped_error(removed: list[str]) -> tuple[bool, str | None]:
    """(a legacy remap was removed, the specific error it returned on failure)."""
    seen = False
    for i, text in enumerate(removed):
        if _LEGACY_REMAP.search(text):
            seen = True
            for after in removed[i:i + _ERROR_WINDOW + 1]:
                m = _ERROR_RETURN.search(after)
                if m:
                    return True, m.group(1)
    return seen, None


def _removed(hunks) -> list[str]:
    return [line.value for hunk in hunks for line in hunk if line.is_removed]


class _Changes:
    """One patched file's added lines and dropped remap errors, computed once for all its findings."""

    def __init__(self, patched_file):
        self.added = {line.target_line_no: hunk for hunk in patched_file for line in hunk if line.is_added}
        self.dropped = {id(hunk): _dropped_error(_removed([hunk])) for hunk in patched_file}
        self.dropped_in_file = _dropped_error(_removed(patched_file))


def _refine_remap_error(finding: Finding, in_hunk, in_file) -> Finding | None:
    """Use the removed lines (of the hunk, else the file): a dropped `return -EAGAIN` is a warning,
    a pass-through is no finding."""
    for remap, error in (in_hunk, in_file):
        if error:
            rule = RULES["MMC209"]
            detail = (f"the removed code returned {error} when the remap failed; "
                      f"keep it with desc->action.error_hook or say in the commit message that it changes")
            call = finding.message.split("()", 1)[0]
            return finding.with_(severity="warning", message=rule.format(call=call, detail=detail))
        if remap:
            return None
    return finding


def _added_findings(findings: list[Finding], patch: Patch, patched_files: dict) -> list[Finding]:
    changes = {path: _Changes(pf) for path, pf in patched_files.items()}
    out = []
    for f in findings:
        change = changes.get(f.path)
        hunk = change.added.get(f.line) if change is not None else None
        if hunk is None:
            continue
        if f.code == "MMC209":
            f = _refine_remap_error(f, change.dropped[id(hunk)], change.dropped_in_file)
            if f is None:
                continue
        out.append(f.with_(patch=patch.subject))
    return out


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


def fragment(patched_file) -> str:
    """The post-patch side of the hunks, each line at its post-patch line number.

    Hunks start and stop inside functions. To let each parse as a whole
    definition, the gap before a hunk gets the function header git names in
    the hunk header (unless an earlier hunk already opened that function),
    and blocks a hunk leaves open are closed in the gap after it.
    """
    placed: dict[int, str] = {}
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
        start = hunk.target_start
        header = (hunk.section_header or "").strip()
        body = [line.value.rstrip("\n") for line in hunk if not line.is_removed]
        if header and header in seen:
            last = placed.get(next_free - 1, "").strip()
            if depth == 0 and start - 1 >= next_free and re.match(r"[A-Za-z_].*\)$", last):
                placed[start - 1] = "{"     # the signature was in the last hunk, its brace was not
                depth = 1
        else:
            close(start - 1)
            opening = _opening(header)
            if opening and start - 1 >= next_free:
                placed[start - 1] = opening
                depth = _brace_depth([opening])
        for offset, text in enumerate(body):
            placed[start + offset] = text
        seen.update(line.value.strip() for line in hunk)
        depth = max(depth + _brace_depth(body), 0)
        next_free = start + len(body)
    close(next_free + depth + 1)
    return _lay_out(placed)


def _write(root: Path, path: str, text: str, patch: Patch) -> Path:
    target = root / path
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:   # e.g. `x.c` and `x.c/y.c` in one patch
        raise InputError(f"{patch.subject}: cannot lay out {path!r}: {exc.strerror}") from None
    return target


def _check_hunks(patch: Patch, files, api: str) -> list[Finding]:
    patched_files = _sources(patch, files)
    if not patched_files:
        return []
    # A directory only because the scanner behind MMC101 reads files from disk.
    with tempfile.TemporaryDirectory(prefix="mmapconv-hunks-") as tmp:
        root = Path(tmp)
        written = [_write(root, path, fragment(pf), patch) for path, pf in patched_files.items()]
        findings = _lint(patch, written, api, root)
    return _added_findings(findings, patch, patched_files)


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


def _git(args: list[str], work: Path, data: bytes | None = None) -> subprocess.CompletedProcess:
    # This directory's repository only: no GIT_DIR or GIT_WORK_TREE from a hook we run in, no user or
    # system config; a symbolic link a patch creates is written as a file holding its target, never followed.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    return subprocess.run(["git", "-c", "core.symlinks=false", *args], cwd=work, input=data,
                          capture_output=True, env=env)


def _apply(patch: Patch, number: str, work: Path, tree: Path) -> None:
    # --recount: archives and hand edits leave hunk counts that do not add up.
    result = _git(["apply", "--recount", "--whitespace=nowarn", "-"], work, patch.diff.encode())
    if result.returncode != 0:
        why = next((ln for ln in result.stderr.decode(errors="replace").splitlines() if ln.strip()), "git apply failed")
        raise InputError(f"patch {number} \"{patch.subject}\" does not apply to {tree}: {printable(why)}")


def _check_tree(parsed: list[tuple[Patch, object]], tree: Path, api: str) -> list[Finding]:
    if not tree.is_dir():
        raise InputError(f"{tree}: no such directory")
    findings = []
    with tempfile.TemporaryDirectory(prefix="mmapconv-tree-") as tmp:
        work = Path(tmp)
        # A repository of its own, so `git apply` resolves paths here and never in a repo around TMPDIR.
        _git(["init", "-q", "."], work).check_returncode()
        _copy_tree(tree, _touched(parsed), work)
        for n, (patch, files) in enumerate(parsed, 1):
            _apply(patch, f"{n}/{len(parsed)}", work, tree)
            patched_files = _sources(patch, files)
            if patched_files:
                linted = _lint(patch, [work / p for p in patched_files], api, work)
                findings += _added_findings(linted, patch, patched_files)
    return findings


@contextmanager
def _exit_on_termination():
    """SIGTERM and SIGHUP end the run through SystemExit, so `with` blocks remove their directories."""
    if threading.current_thread() is not threading.main_thread():
        yield   # only the main thread may set handlers; its caller owns the signals then
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
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
    with _exit_on_termination():
        if tree is not None:
            findings = _check_tree(parsed, tree, api)
        else:
            findings = [f for patch, files in parsed for f in _check_hunks(patch, files, api)]
    return Report("check-patch", findings, patches=[p.subject for p in series.patches], notes=series.notes)
