"""check-patch: lint the lines each patch of a series adds.

Without a tree, each file's hunks are laid out at their post-patch line
numbers (so findings map back unchanged) and linted as a fragment. With
`--tree`, the series is applied patch by patch to a temporary copy of the
files it touches and whole post-patch files are linted. Either way only
findings on lines the patch added are reported, under the patch's subject.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

from .lint.catalogue import DEFAULT_API, KNOWLEDGE, RULES
from .lint.engine import SOURCE_SUFFIXES, lint_paths
from .lint.finding import Finding
from .report.findings import Report
from .series import Patch, Series
from .source import InputError

_LEGACY_REMAP = re.compile(r"\b(?:" + "|".join(KNOWLEDGE["actions"]["legacy_remaps"]) + r")\s*\(")
_ERROR_RETURN = re.compile(r"\breturn\s+\(?\s*(-E[A-Z0-9]+)\b")
# How many removed lines after a remap call may hold the error it returned.
_ERROR_WINDOW = 4


def _files(patch: Patch):
    try:
        return PatchSet(patch.diff)
    except UnidiffParseError as exc:
        raise InputError(f"{patch.subject}: cannot parse the diff: {exc}") from None


def _is_source(patched_file) -> bool:
    return not patched_file.is_removed_file and not patched_file.is_binary_file and \
        patched_file.path.endswith(SOURCE_SUFFIXES)


def _added(patched_file) -> dict[int, object]:
    """Post-patch line number -> hunk, for every added line."""
    return {line.target_line_no: hunk for hunk in patched_file for line in hunk if line.is_added}


# --- the remap error path (MMC209) -------------------------------------------

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


def _refine_remap_error(finding: Finding, hunk, patched_file) -> Finding | None:
    """Use the removed lines: a dropped `return -EAGAIN` is a warning, a pass-through is no finding."""
    for lines in ([hunk], list(patched_file)):
        removed = [line.value for h in lines for line in h if line.is_removed]
        remap, error = _dropped_error(removed)
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
    out = []
    for f in findings:
        patched_file = patched_files.get(f.path)
        hunk = _added(patched_file).get(f.line) if patched_file is not None else None
        if hunk is None:
            continue
        if f.code == "MMC209":
            f = _refine_remap_error(f, hunk, patched_file)
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


def _brace_depth(lines: list[str]) -> int:
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|/\*.*?\*/|//[^\n]*', "", "\n".join(lines), flags=re.S)
    return text.count("{") - text.count("}")


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
    last = max(placed, default=0)
    return "\n".join(placed.get(n, "") for n in range(1, last + 1)) + "\n"


def _check_hunks(patch: Patch, api: str) -> list[Finding]:
    patched_files = {pf.path: pf for pf in _files(patch) if _is_source(pf)}
    if not patched_files:
        return []
    with tempfile.TemporaryDirectory(prefix="mmapconv-hunks-") as tmp:
        root = Path(tmp)
        written = []
        for path, patched_file in patched_files.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(fragment(patched_file), encoding="utf-8")
            written.append(target)
        findings = lint_paths(written, api, root=root).findings
    return _added_findings(findings, patch, patched_files)


# --- with a tree: apply the series to a copy ---------------------------------

def _touched(series: Series) -> set[str]:
    paths = set()
    for patch in series.patches:
        for pf in _files(patch):
            for name in (pf.source_file, pf.target_file):
                if name and name != "/dev/null":
                    paths.add(name.split("/", 1)[1] if name.startswith(("a/", "b/")) else name)
    return paths


def _copy_tree(tree: Path, paths: set[str], to: Path) -> None:
    for path in sorted(paths):
        source = tree / path
        if source.is_file():
            (to / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, to / path)


def _apply(patch: Patch, number: str, work: Path, tree: Path) -> None:
    # --recount: archives and hand edits leave hunk counts that do not add up.
    result = subprocess.run(["git", "apply", "--recount", "--whitespace=nowarn", "-"], cwd=work,
                            input=patch.diff.encode(), capture_output=True)
    if result.returncode != 0:
        why = next((ln for ln in result.stderr.decode(errors="replace").splitlines() if ln.strip()), "git apply failed")
        raise InputError(f"patch {number} \"{patch.subject}\" does not apply to {tree}: {why}")


def _check_tree(series: Series, tree: Path, api: str) -> list[Finding]:
    if not tree.is_dir():
        raise InputError(f"{tree}: no such directory")
    findings = []
    with tempfile.TemporaryDirectory(prefix="mmapconv-tree-") as tmp:
        work = Path(tmp)
        # A repository of its own, so `git apply` resolves paths here and never in a repo around TMPDIR.
        subprocess.run(["git", "init", "-q", str(work)], check=True, capture_output=True)
        _copy_tree(tree, _touched(series), work)
        for n, patch in enumerate(series.patches, 1):
            _apply(patch, f"{n}/{len(series.patches)}", work, tree)
            patched_files = {pf.path: pf for pf in _files(patch) if _is_source(pf)}
            if patched_files:
                linted = lint_paths([work / p for p in patched_files], api, root=work).findings
                findings += _added_findings(linted, patch, patched_files)
    return findings


def check_series(series: Series, tree: Path | None = None, api: str = DEFAULT_API) -> Report:
    if tree is not None:
        findings = _check_tree(series, tree, api)
    else:
        findings = [f for patch in series.patches for f in _check_hunks(patch, api)]
    return Report("check-patch", findings, patches=[p.subject for p in series.patches], notes=series.notes)
