"""Who a patch goes to: the tree's own scripts/get_maintainer.pl, else MAINTAINERS read here.

To: the maintainers (M:) of every section whose F:/N: patterns match a file
and whose X: patterns do not; Cc: its reviewers (R:) and lists (L:). The
catch-all section (`F: *`) contributes its list but not its maintainer, as
get_maintainer.pl leaves out the "chief penguin".
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path


@dataclass
class Recipients:
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)

    def merged(self, other: "Recipients") -> "Recipients":
        to = list(dict.fromkeys(self.to + other.to))
        return Recipients(to, [a for a in dict.fromkeys(self.cc + other.cc) if a not in to])


def recipients(root: Path, files: list[str]) -> Recipients:
    """To/Cc for a patch touching `files` (paths relative to root)."""
    script = root / "scripts" / "get_maintainer.pl"
    if script.is_file() and shutil.which("perl") and (root / "MAINTAINERS").exists():
        found = _get_maintainer(root, tuple(sorted(files)))
        if found is not None:
            return found
    return from_maintainers_file(root, files)


def _get_maintainer(root: Path, files: tuple[str, ...]) -> Recipients | None:
    """The script's answer; None when it fails (it refuses a tree it does not recognise)."""
    # --no-git and --no-git-fallback: addresses come from MAINTAINERS only, never from who
    # committed last; --no-tree: a partial tree is fine; --roles: to tell To from Cc.
    cmd = ["perl", "scripts/get_maintainer.pl", "--no-git", "--no-git-fallback", "--no-rolestats", "--roles",
           "--no-tree", "-f", *files]
    try:
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    found: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        # `Name <address> (role:SECTION (MORE))` or `list@host (open list:SECTION)`.
        cut = line.find(">") + 1 or len(line.split(" ", 1)[0])
        address, role = line[:cut].strip(), line[cut:].strip()[1:-1]
        if address:
            # The role before `:` is the section's status for an M: entry (maintainer, supporter,
            # odd fixer, orphan ...), "reviewer" for R:, "open list", "moderated list" ... for L:.
            kind = role.split(":", 1)[0]
            found.setdefault(address, "R" if kind == "reviewer" else "L" if kind.endswith("list") else "M")
    return _split(found) if found else None


def _split(found: dict[str, str]) -> Recipients:
    """Each address once, in the role (M, R or L) it was first seen in; people before lists."""
    return Recipients([a for a, k in found.items() if k == "M"],
                      [a for a, k in found.items() if k == "R"] + [a for a, k in found.items() if k == "L"])


@dataclass
class _Section:
    name: str
    entries: list[tuple[str, str]]

    def values(self, kind: str) -> list[str]:
        return [v for k, v in self.entries if k == kind]


@lru_cache(maxsize=4)
def _sections(path: Path) -> tuple[_Section, ...]:
    """MAINTAINERS' sections as get_maintainer.pl reads them: a title line, then `X:\tvalue` lines."""
    sections: list[_Section] = []
    title, current = "", None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = re.match(r"^([A-Z]):\s*(.*?)\s*$", line)
        if m:
            if current is None:
                current = _Section(title, [])
                sections.append(current)
            current.entries.append((m.group(1), m.group(2)))
        elif line.strip() and not line.lstrip().startswith("#"):
            title, current = line.strip(), None
    return tuple(sections)


def _pattern(value: str, root: Path) -> re.Pattern:
    """get_maintainer.pl's F:/X: pattern: `*` and `?` are globs, a directory matches what is under it."""
    regex = re.escape(value).replace(r"\*", ".*").replace(r"\?", ".")
    if not value.endswith("/") and (root / value).is_dir():
        regex += "/"
    return re.compile(regex)


def _matches(file: str, value: str, root: Path) -> bool:
    pattern = _pattern(value, root)
    if not pattern.match(file):
        return False
    # A pattern that does not end in `/` names files at its own depth only.
    return pattern.pattern.endswith("/") or file.count("/") == value.count("/")


def _n_matches(regex: str, file: str) -> bool:
    """An N: entry is a Perl regex on the path; one Python cannot read matches nothing."""
    try:
        return re.search(regex, file, re.X) is not None
    except re.error:
        return False


def from_maintainers_file(root: Path, files: list[str]) -> Recipients:
    path = root / "MAINTAINERS"
    if not path.is_file():
        return Recipients()
    found: dict[str, str] = {}
    for file in files:
        matched = []
        for section in _sections(path):
            if any(_matches(file, x, root) for x in section.values("X")):
                continue
            depths = [v.count("/") + (not v.endswith("/")) if not v.startswith("*") else -1
                      for v in section.values("F") if _matches(file, v, root)]
            depths += [0 for n in section.values("N") if _n_matches(n, file)]
            if depths:
                matched.append((max(depths), section))
        # Most specific section first, as get_maintainer.pl orders them.
        for depth, section in sorted(matched, key=lambda m: -m[0]):
            for kind, value in section.entries:
                if kind == "M" and depth >= 0 or kind in "RL":
                    found.setdefault(_address(value), kind)
    return _split(found)


def _address(value: str) -> str:
    """An entry as get_maintainer.pl prints it: a note after a list dropped, a name with
    other than word characters, spaces and dashes quoted."""
    value = re.sub(r"\s+\(.*\)$", "", value).strip()
    m = re.match(r"^([^<\"]*?)\s*<([^>]*)>$", value)
    if m and m.group(1) and re.search(r"[^\w \-]", m.group(1), re.A):
        return f'"{m.group(1)}" <{m.group(2)}>'
    return value
