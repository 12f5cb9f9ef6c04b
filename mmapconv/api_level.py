"""`--api auto`: the API level of the code under review.

A kernel tree tells its level through its headers: which of the names that
mark a level (`vma_flags`, `vma_desc_test`, `mmap_action_simple_ioremap`,
`vm_operations_struct.mapped`, the `mmap_prepare` hook itself, ...) they
define. A series checked without a tree tells it through what its added
lines use, and what they define: a patch that adds
`mmap_action_simple_ioremap` makes that name known to the series. The names
and the levels that have them are data (rules/api.toml, `[detect]`).

The result is an `ApiLevel`: the level's name (a `str`, so it passes through
code that takes `api: str`) carrying its `Detection`, which says where the
level came from and which names the code under review has whatever its level.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from .rules_data import load

AUTO = "auto"
_API = load("api")
_DETECT = _API["detect"]
LEVELS: tuple[str, ...] = tuple(_API["levels"])          # newest first
FALLBACK: str = _DETECT["fallback"]
HOOK: str = _DETECT["hook"]
# name or STRUCT.MEMBER -> the levels that have it
NAMES: dict[str, frozenset[str]] = {name: frozenset(levels) for name, levels in _DETECT["names"].items()}
_MAX_EVIDENCE = 2


@dataclass(frozen=True)
class Detection:
    level: str
    source: str                    # "option" | "tree" | "series" | "default"
    detail: str                    # one line: where the level comes from
    tree: str | None = None        # the kernel tree whose headers were read
    has_hook: bool = True          # False: that tree's headers have no mmap_prepare at all
    known: frozenset[str] = frozenset()   # names (STRUCT.MEMBER too) the tree's headers have
    # A series: per patch, the names it and the patches before it define (known from there on).
    defined: tuple[frozenset[str], ...] = ()

    def describe(self) -> str:
        return f"{self.level} ({self.detail})"

    def as_dict(self) -> dict:
        return {"level": self.level, "source": self.source, "detail": self.detail,
                "tree": self.tree, "mmap_prepare": self.has_hook}

    @property
    def names(self) -> frozenset[str]:
        """Every name the code under review has whatever its level: the tree's, the series'."""
        return self.known | (self.defined[-1] if self.defined else frozenset())

    @property
    def known_words(self) -> frozenset[str]:
        """Those names as code spells them: `mapped` for vm_operations_struct.mapped."""
        return frozenset(name.rsplit(".", 1)[-1] for name in self.names)


class ApiLevel(str):
    """A level name with its Detection."""

    detection: Detection

    def __new__(cls, detection: Detection) -> "ApiLevel":
        self = super().__new__(cls, detection.level)
        self.detection = detection
        return self

    def __reduce__(self):
        return ApiLevel, (self.detection,)


def chosen(level: str) -> ApiLevel:
    """A level the user named (`--api 7.0`)."""
    return ApiLevel(Detection(level, "option", "--api"))


def with_series(api: ApiLevel, series) -> ApiLevel:
    """The same level, knowing the names the series defines (patch by patch: see at_patch)."""
    return ApiLevel(replace(api.detection, defined=tuple(series_known(series))))


def at_patch(api: str, index: int) -> str:
    """The level for the patch at `index` (0-based) of its series: only the names that patch and the
    ones before it define are known. A plain level name is returned as it is."""
    if not isinstance(api, ApiLevel) or not api.detection.defined:
        return api
    d = api.detection
    return ApiLevel(replace(d, defined=d.defined[:index + 1]))


# --- a kernel tree ------------------------------------------------------------

@lru_cache(maxsize=4096)
def _root_of_dir(directory: str) -> str | None:
    path = Path(directory)
    if all((path / marker).exists() for marker in _DETECT["root"]):
        return directory
    parent = os.path.dirname(directory)
    return None if parent == directory else _root_of_dir(parent)


def kernel_root(path: Path | str) -> Path | None:
    """The nearest directory at or above `path` that is a kernel tree: a Makefile and the headers
    detection reads (rules/api.toml `detect.root`)."""
    path = os.path.abspath(path)
    found = _root_of_dir(path if os.path.isdir(path) else os.path.dirname(path))
    return Path(found) if found is not None else None


# Comments and literals go before names are looked for: a comment naming a helper defines nothing.
_NOT_CODE = re.compile(rb'/\*.*?(?:\*/|\Z)|//[^\n]*|"(?:\\.|[^"\\\n])*"?', re.S)
_WORD = re.compile(rb"[A-Za-z_]\w*")


def _struct_body(code: bytes, struct: str) -> bytes | None:
    """The text between the braces of `struct NAME { ... }` (nested braces kept), or None."""
    m = re.search(rb"\bstruct\s+" + re.escape(struct.encode()) + rb"\s*\{", code)
    if m is None:
        return None
    depth, i = 1, m.end()
    for brace in re.finditer(rb"[{}]", code[i:]):
        depth += 1 if brace.group() == b"{" else -1
        if depth == 0:
            return code[i:i + brace.start()]
    return code[i:]


def names_in(code: bytes) -> frozenset[str]:
    """Which of the marking names this C text defines or uses (comments and strings aside)."""
    code = _NOT_CODE.sub(b" ", code)
    words = {w.decode() for w in _WORD.findall(code)}
    present = set()
    for name in NAMES:
        if "." in name:
            struct, member = name.split(".", 1)
            body = _struct_body(code, struct)
            if body is not None and re.search(rb"\b" + re.escape(member.encode()) + rb"\b", body):
                present.add(name)
        elif name in words:
            present.add(name)
    return frozenset(present)


@lru_cache(maxsize=16)
def _tree_names(root: str) -> frozenset[str]:
    parts = []
    for header in _DETECT["headers"]:
        try:
            with open(os.path.join(root, header), "rb") as fh:
                parts.append(fh.read())
        except OSError:
            continue
    return names_in(b"\n".join(parts))


def best_level(present: frozenset[str]) -> str:
    """The level whose names agree best with those present (ties: the newer level)."""
    def disagreements(level: str) -> int:
        return sum((name in present) != (level in levels) for name, levels in NAMES.items())
    return min(LEVELS, key=lambda level: (disagreements(level), LEVELS.index(level)))


def _evidence(present: frozenset[str], level: str) -> str:
    """`has a, b; lacks c`: the names that set this level apart."""
    # The names fewest levels have say the most: first.
    has = sorted((n for n in NAMES if n in present and len(NAMES[n]) < len(LEVELS)), key=lambda n: len(NAMES[n]))
    newer = set(LEVELS[:LEVELS.index(level)])
    lacks = [n for n in NAMES if n not in present and NAMES[n] & newer and level not in NAMES[n]]
    parts = []
    if has:
        parts.append("has " + ", ".join(has[:_MAX_EVIDENCE]) + (", ..." if len(has) > _MAX_EVIDENCE else ""))
    if lacks:
        parts.append("lacks " + ", ".join(lacks[:_MAX_EVIDENCE]) + (", ..." if len(lacks) > _MAX_EVIDENCE else ""))
    return "; ".join(parts)


def detect_tree(path: Path | str) -> ApiLevel:
    """The level of the kernel tree at or above `path` (the fallback level when there is none)."""
    root = kernel_root(path)
    if root is None:
        return ApiLevel(Detection(FALLBACK, "default", "no kernel tree above the code: the default level"))
    present = _tree_names(str(root))
    if HOOK not in present:
        return ApiLevel(Detection(FALLBACK, "tree", f"{root} predates mmap_prepare: the default level",
                                  str(root), False))
    level = best_level(present)
    evidence = _evidence(present, level)
    return ApiLevel(Detection(level, "tree", f"headers of {root}" + (f": {evidence}" if evidence else ""),
                              str(root), True, present))


# --- a series without a tree --------------------------------------------------

# On an added line: what it defines. A macro; a top-level function (definition or
# prototype); a function-pointer member; in a header, a member or variable declared.
_DEFINE = re.compile(r"^\s*#\s*define\s+([A-Za-z_]\w*)")
_FUNCTION = re.compile(r"^(?!(?:return|else|case|goto|do)\b)[A-Za-z_][\w \t*]*?[ \t*]([A-Za-z_]\w*)\s*\(")
_POINTER_MEMBER = re.compile(r"\(\s*\*\s*([A-Za-z_]\w*)\s*\)\s*\(")
_DECLARED = re.compile(r"^\s+(?!(?:return|else|case|goto)\b)[A-Za-z_][\w \t*]*[ \t*]([A-Za-z_]\w*)\s*(?:\[[^\]]*\])?\s*;")
_DESC_PARAM = re.compile(r"\bstruct\s+vm_area_desc\s*\*\s*(?:const\s+)?([A-Za-z_]\w*)")
_LINE_NOT_CODE = re.compile(r'/\*.*?(?:\*/|$)|//.*$|"(?:\\.|[^"\\])*"?')


def _diff_lines(diff: str):
    """(path, kind, text) per line of a unified diff: kind is '+' for added lines, ' ' for context."""
    path = ""
    for line in diff.splitlines():
        if line.startswith("+++ "):
            name = line[4:].split("\t", 1)[0].strip()
            path = name[2:] if name.startswith(("a/", "b/")) else name
        elif line.startswith("--- ") or line.startswith("@@"):
            continue
        elif line.startswith(("+", " ")):
            yield path, line[0], line[1:]


def defines(diff: str) -> frozenset[str]:
    """Names the added lines of a diff define (functions, macros, and in headers members)."""
    out = set()
    for path, kind, text in _diff_lines(diff):
        if kind != "+":
            continue
        code = _LINE_NOT_CODE.sub(" ", text)
        for pattern in (_DEFINE, _FUNCTION):
            m = pattern.match(code)
            if m:
                out.add(m.group(1))
        out.update(_POINTER_MEMBER.findall(code))
        if path.endswith(".h"):
            m = _DECLARED.match(code)
            if m:
                out.add(m.group(1))
    return frozenset(out)


def _defined_names(words: frozenset[str]) -> frozenset[str]:
    """The marking names (STRUCT.MEMBER by its member) among defined words, and the words themselves."""
    return frozenset(words | {n for n in NAMES if n.rsplit(".", 1)[-1] in words})


def uses(diff: str) -> frozenset[str]:
    """The marking names the added lines use: plain names, and descriptor members through a
    `struct vm_area_desc *` parameter the diff declares."""
    lines = list(_diff_lines(diff))
    descs = {m for _, _, text in lines for m in _DESC_PARAM.findall(text)}
    members = [n.split(".", 1)[1] for n in NAMES if n.startswith("vm_area_desc.")]
    member_use = re.compile(r"\b(?:%s)\s*->\s*(%s)\b" % ("|".join(map(re.escape, sorted(descs))),
                                                         "|".join(map(re.escape, members)))) if descs else None
    out = set()
    for _, kind, text in lines:
        if kind != "+":
            continue
        code = _LINE_NOT_CODE.sub(" ", text)
        out.update(w for w in re.findall(r"[A-Za-z_]\w*", code) if w in NAMES)
        if member_use is not None:
            out.update(f"vm_area_desc.{m}" for m in member_use.findall(code))
    return frozenset(out)


def series_known(series) -> list[frozenset[str]]:
    """Per patch, in series order, the names it and the patches before it define."""
    known, out = frozenset(), []
    for patch in series.patches:
        known = known | _defined_names(defines(patch.diff))
        out.append(known)
    return out


def detect_series(series) -> ApiLevel:
    """The level a series is written for: the newest level with every marking name its added
    lines use without defining them; every name the series defines is known."""
    known = tuple(series_known(series))
    defined = known[-1] if known else frozenset()
    used = frozenset().union(*(uses(p.diff) for p in series.patches)) - defined if series.patches else frozenset()
    used = frozenset(n for n in used if NAMES[n] != frozenset(LEVELS))   # names every level has tell nothing
    levels = set(LEVELS)
    for name in used:
        levels &= NAMES[name]
    # The names fewest levels have say the most: first, with their levels when they disagree.
    telling = sorted(used, key=lambda n: (len(NAMES[n]), n))
    if not levels:
        telling = telling[:1] + [n for n in telling[1:] if not NAMES[n] & NAMES[telling[0]]][:1]
        names = ", ".join(f"{n} ({'/'.join(lv for lv in LEVELS if lv in NAMES[n])})" for n in telling)
    else:
        names = ", ".join(telling[:_MAX_EVIDENCE]) + (", ..." if len(used) > _MAX_EVIDENCE else "")
    if not used:
        return ApiLevel(Detection(FALLBACK, "default",
                                  "the series uses no name that only some levels have: the default level",
                                  defined=known))
    if not levels:
        return ApiLevel(Detection(FALLBACK, "series",
                                  f"the series uses names of different levels, {names}: the default level",
                                  defined=known))
    level = next(lv for lv in LEVELS if lv in levels)
    return ApiLevel(Detection(level, "series", f"what the series uses: {names}", defined=known))


def detect_patch_target(series, tree: Path | None) -> ApiLevel:
    """check-patch: the level of `tree`'s headers when it is (in) a kernel tree that has the hook,
    else the series' own; names the series defines are known either way."""
    if tree is None or kernel_root(tree) is None:
        return detect_series(series)
    from_tree = detect_tree(tree)
    if not from_tree.detection.has_hook:
        # A tree from before mmap_prepare says nothing about the level a conversion targets.
        d = detect_series(series).detection
        return ApiLevel(replace(d, detail=f"{from_tree.detection.tree} predates mmap_prepare; {d.detail}",
                                tree=from_tree.detection.tree, has_hook=False))
    return with_series(from_tree, series)
