"""`mmapconv convert --format-patch DIR` / `--stdout`: the conversion as a series for the list.

One patch per driver: a callback's file with every file that changes with it
(prototypes in headers, aliases, initializers elsewhere), merged with the
other patches it shares a file with, and with those of the same directory
and subject prefix. Each patch applies on the previous ones, since no two
patches touch one file. Patches that change shared code (include/, or files
of several directories) come first; the rest follow in path order.
"""
from __future__ import annotations

import email.utils
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path, PurePosixPath

from . import commit_message
from .convert import Converter, Outcome, scan_for_conversion
from .diff import diffstat, patch_bytes, unified_diff
from .maintainers import Recipients, recipients
from .scan import FunctionResult, ScanResult, tree_root

HUBS_SHOWN = 5
_SLUG_MAX = 52   # git format-patch: "0001-" + 52 characters + ".patch"


class SeriesError(Exception):
    """Something the user must fix before a series can be written (exit 1, nothing written)."""


@dataclass
class Unit:
    """The functions one patch converts and the files it changes."""
    functions: list[tuple[FunctionResult, str]]
    files: set[str]
    prefix: str = ""

    @property
    def primary(self) -> str:
        """The first callback's own file: what the prefix and the order go by."""
        own = [fn.path for fn, _ in self.functions if not fn.twin and fn.path in self.files]
        return min(own) if own else min(self.files)

    @property
    def shared(self) -> bool:
        dirs = {PurePosixPath(p).parent for p in self.files}
        return len(dirs) > 1 or any(p.startswith("include/") for p in self.files)


@dataclass
class Message:
    subject: str
    body: str
    diff: str
    recipients: Recipients
    filename: str


def kernel_top(start: Path) -> Path:
    """The tree the patches are relative to: the nearest directory up with MAINTAINERS, else with .git."""
    start = start.resolve()
    for marker in ("MAINTAINERS", ".git"):
        for d in (start, *start.parents):
            if (d / marker).exists():
                return d
    return start


def is_git_top(root: Path) -> bool:
    proc = _git(root, "rev-parse", "--show-toplevel")
    return proc is not None and Path(proc.strip()).resolve() == root.resolve()


def _git(root: Path, *args: str) -> str | None:
    if shutil.which("git") is None:
        return None
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, errors="replace", check=False)
    return proc.stdout if proc.returncode == 0 else None


def identity(root: Path, signoff: str | None) -> tuple[str, str] | None:
    """(name, email) for From: and Signed-off-by:, from --signoff or git config; never made up."""
    if signoff is not None:
        name, mail = email.utils.parseaddr(signoff)
        if not name or "@" not in mail:
            raise SeriesError(f"--signoff {signoff!r}: expected \"Name <mail@host>\"")
        return name, mail
    name, mail = (_git(root, "config", key) for key in ("user.name", "user.email"))
    if name and name.strip() and mail and mail.strip():
        return name.strip(), mail.strip()
    return None


def _files_of(fn: FunctionResult, new: str, result: ScanResult, changes: dict,
              moved: dict[str, set[bytes]]) -> list[set[str]]:
    """The file sets that must change together for `fn`: one per file for a twin (each initializer
    switches on its own), one for everything else."""
    inits = {ri.instance.text_path for ri in result.all_instances if ri.function is fn} & set(changes)
    if fn.twin:
        return [{p} for p in sorted(inits)]
    files = inits | ({fn.path} | {s.path for s in fn.summaries}) & set(changes)
    words = re.compile(rb"\b(?:%s|%s)\b" % (re.escape(fn.function.encode()), re.escape(new.encode())))
    for path, lines in moved.items():
        if path not in files and any(words.search(line) for line in lines):
            files.add(path)   # a prototype, an alias, a caller's initializer
    return [files]


def group(outcome: Outcome, result: ScanResult, prefixes_of) -> list[Unit]:
    """Units that share a file merge, then those of one directory and one prefix; shared code first.

    `prefixes_of(paths)` gives the subject prefix of each path; it is asked about the units' primary
    files only, as reading a file's history can take seconds in a large repository.
    """
    units: list[Unit] = []
    # The lines each file lost or gained: where a function's old or new name shows there, it changed for it.
    moved = {path: set(old.split(b"\n")) ^ set(new.split(b"\n")) for path, (old, new) in outcome.changes.items()}
    for fn, new in outcome.converted:
        for files in _files_of(fn, new, result, outcome.changes, moved):
            units.append(Unit([(fn, new)], files))
    units = _merge(units, lambda a, b: bool(a.files & b.files))
    prefixes = prefixes_of(sorted({unit.primary for unit in units}))
    for unit in units:
        unit.prefix = prefixes[unit.primary]
    units = _merge(units, lambda a, b: a.prefix == b.prefix
                   and PurePosixPath(a.primary).parent == PurePosixPath(b.primary).parent)
    order = {id(fn): i for i, fn in enumerate(result.functions)}
    for unit in units:
        unit.functions.sort(key=lambda pair: order.get(id(pair[0]), 0))
    return sorted(units, key=lambda u: (not u.shared, u.primary))


def _merge(units: list[Unit], together) -> list[Unit]:
    out: list[Unit] = []
    for unit in units:
        for other in [o for o in out if together(o, unit)]:
            out.remove(other)
            unit = Unit(other.functions + unit.functions, other.files | unit.files, unit.prefix or other.prefix)
        out.append(unit)
    return out


def slug(subject: str) -> str:
    """git format-patch's file name for a subject: title characters kept, the rest one dash."""
    out, gap = [], False
    for ch in subject:
        if ch.isascii() and (ch.isalnum() or ch in "._"):
            if gap and out:
                out.append("-")
            gap = False
            if not (ch == "." and out and out[-1] == "."):
                out.append(ch)
        else:
            gap = True
    return "".join(out).strip(".-")[:_SLUG_MAX]


def _addresses(header: str, items: list[str]) -> str:
    return f"{header}: " + ",\n    ".join(items) + "\n" if items else ""


def render(msg: Message, n: int, total: int, author: tuple[str, str] | None, date: str, version: str) -> str:
    tag = f"[PATCH {n:0{len(str(total))}d}/{total}]"   # numbered, as with a cover letter
    digest = hashlib.sha1((msg.subject + msg.body + msg.diff).encode("utf-8", "surrogateescape")).hexdigest()
    to = msg.recipients.to or msg.recipients.cc
    cc = [a for a in msg.recipients.cc if a not in to]
    head = f"From {digest} Mon Sep 17 00:00:00 2001\n"
    if author is not None:
        head += f"From: {email.utils.formataddr(author, charset='utf-8')}\n"
    head += (f"Date: {date}\nSubject: {tag} {msg.subject}\n" + _addresses("To", to) + _addresses("Cc", cc)
             + "MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\n")
    text = msg.body.rstrip("\n") + "\n"
    if author is not None and n > 0:
        text += f"\nSigned-off-by: {author[0]} <{author[1]}>\n"
    return head + text + ("---\n" + msg.diff if msg.diff else "") + f"-- \nmmapconv {version}\n\n"


def _date() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = datetime.fromtimestamp(int(epoch) if epoch and epoch.isdigit() else time.time(), timezone.utc)
    return email.utils.format_datetime(moment)


def _command(root: Path, targets: list[Path], level: str, default_level: str, out_dir: str | None,
             signoff: str | None, unsafe_fixes: bool = False) -> str:
    """The command that made the series, run from the tree's top (relative paths made relative to it)."""
    if out_dir and not os.path.isabs(out_dir):
        out_dir = os.path.relpath(os.path.abspath(out_dir), root)
    args = ["mmapconv", "convert"] + (["--format-patch", out_dir] if out_dir else ["--stdout"])
    args += ["--api", level] if level != default_level else []
    args += ["--signoff", signoff] if signoff else []
    args += ["--unsafe-fixes"] if unsafe_fixes else []
    rels = [os.path.relpath(t.resolve(), root) for t in targets]
    return shlex.join(args + [r for r in rels if r != "."])


def cover_letter(units: list[Unit], messages: list[Message], outcome: Outcome, result: ScanResult,
                 command: str, author, base: str | None, stat: str) -> Message:
    rules = commit_message.load("subjects")
    callbacks = sum(not fn.twin for fn, _ in outcome.converted)
    switched = sum(1 for ri in result.all_instances if ri.function is not None and ri.function.twin
                   and ri.instance.text_path in outcome.changes and any(ri.function is fn for fn, _ in outcome.converted))
    text = (f"The file_operations .mmap hook is deprecated in favor of .mmap_prepare. This series converts "
            f"{_count(callbacks, 'callback')}" + (f" and points {_count(switched, 'file_operations', '')} "
                                                   "at an existing _prepare hook" if switched else "")
            + f", in {_count(len(units), 'patch', 'es')}, one per driver.")
    shared = sum(u.shared for u in units)
    if shared:
        text += (" Patch 1 changes code shared by several directories and comes first." if shared == 1 else
                 f" Patches 1-{shared} change code shared by several directories and come first.")
    noted = [str(n) for n, m in enumerate(messages, 1) if commit_message.REVIEW_NOTE in m.body]
    if noted:
        text += (f" Patch{'es' if len(noted) > 1 else ''} {commit_message.join_words(noted)} carr"
                 f"{'y' if len(noted) > 1 else 'ies'} a note for review.")
    paras = [commit_message.wrap(text)]
    if outcome.refused:
        reasons = Counter(r.code for r in outcome.refused)
        width = max(len(code) for code in reasons)
        many = len(outcome.refused) != 1
        left = commit_message.wrap(f"Left as they are: {_count(len(outcome.refused), 'callback')} that "
                                    f"need{'' if many else 's'} a conversion by hand, by reason:")
        left += "\n\n" + "\n".join(f"  {code:<{width}}  {n}" for code, n in reasons.most_common())
        paras.append(left)
    hubs = [(name, n) for name, n in result.hubs if n > 0][:HUBS_SHOWN]
    if hubs:
        paras.append(commit_message.wrap("The functions the most unconverted instances hand the mapping to, "
                                          "which a conversion of their own would unblock:")
                     + "\n\n" + "\n".join(f"  {name}() blocks {n}" for name, n in hubs))
    paras.append("Generated by:\n\n  " + command)
    if author is None:
        paras.append(commit_message.wrap(
            "No Signed-off-by: no identity was given (--signoff) or configured (git config user.name and "
            "user.email), and none is made up. Add your own to each patch before sending."))
    shortlog = f"{author[0] if author else 'mmapconv'} ({len(messages)}):\n" + "".join(
        f"  {m.subject}\n" for m in messages)
    paras.append(shortlog.rstrip("\n"))
    body = "\n\n".join(paras) + "\n\n" + stat
    if base:
        body += f"\nbase-commit: {base}\n"
    everyone = Recipients()
    for m in messages:
        everyone = everyone.merged(m.recipients)
    return Message(rules["cover_summary"], body, "", everyone, "0000-cover-letter.patch")


def _count(n: int, noun: str, plural: str = "s") -> str:
    return f"{n} {noun}{plural if n != 1 else ''}"


def build(targets: list[Path], level: str, jobs: int | None, signoff: str | None, command_args: dict,
          unsafe_fixes: bool = False):
    """Scan, convert and write the messages: (outcome, result, [(filename, bytes)], notes)."""
    root = kernel_top(tree_root(targets))
    author = identity(root, signoff)
    result = scan_for_conversion(root, targets, jobs, level)
    if result.errors:
        return None, result, [], []
    outcome = Converter(result, jobs, unsafe_fixes).run()
    in_git = is_git_top(root)

    def prefixes_of(paths: list[str]) -> dict[str, str]:
        with ThreadPoolExecutor(8) as pool:
            return dict(zip(paths, pool.map(lambda p: commit_message.prefix_for(root, p, in_git), paths)))

    units = group(outcome, result, prefixes_of)
    modes = {p: (root / p).stat().st_mode for p in outcome.changes} if in_git else None
    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda u: recipients(root, sorted(u.files)), units))
    messages, diffs = [], []
    total = len(units)
    for n, (unit, rcpt) in enumerate(zip(units, found), 1):
        changes = {p: outcome.changes[p] for p in unit.files}
        diffs.append(unified_diff(changes, {p: modes[p] for p in unit.files} if modes else None))
        subject = commit_message.subject(unit.prefix)
        mine = {id(fn) for fn, _ in unit.functions}
        body = commit_message.body(commit_message.facts(unit.functions, changes),
                                   [(r.code, r.note) for r in outcome.reviews if id(r.function) in mine])
        messages.append(Message(subject, body, diffstat(changes, diffs[-1]) + "\n" + diffs[-1], rcpt,
                                f"{n:04d}-{slug(subject)}.patch"))
    notes = []
    base = _git(root, "rev-parse", "HEAD") if in_git else None
    if base:
        base = base.strip()
        dirty = _git(root, "status", "--porcelain", "--", *sorted(outcome.changes)) or ""
        if dirty.strip():
            notes.append("the files converted have uncommitted changes: the series is made from them, "
                         f"but base-commit {base[:12]} does not hold them")
    if not messages:
        return outcome, result, [], notes
    command = _command(root, targets, level, unsafe_fixes=unsafe_fixes, **command_args)
    cover = cover_letter(units, messages, outcome, result, command, author, base,
                         diffstat(outcome.changes, "".join(diffs)))
    date, version = _date(), _version()
    files = [(cover.filename, render(cover, 0, total, author, date, version))]
    files += [(m.filename, render(m, n, total, author, date, version)) for n, m in enumerate(messages, 1)]
    if author is None:
        notes.append("no Signed-off-by: give --signoff \"Name <mail>\" or set git config user.name/user.email")
    if not any(m.recipients.to or m.recipients.cc for m in messages):
        notes.append(f"no To/Cc: {root / 'MAINTAINERS'} names no one for these files")
    return outcome, result, [(name, patch_bytes(text)) for name, text in files], notes


def _version() -> str:
    try:
        return metadata.version("mmapconv")
    except metadata.PackageNotFoundError:
        return "unknown"


def write(out_dir: Path, files: list[tuple[str, bytes]]) -> None:
    """The patch files into out_dir, which must not hold other numbered patches (they would be sent too)."""
    names = {name for name, _ in files}
    if out_dir.exists() and not out_dir.is_dir():
        raise SeriesError(f"{out_dir}: not a directory")
    stale = sorted(p.name for p in out_dir.glob("[0-9][0-9][0-9][0-9]-*.patch") if p.name not in names) \
        if out_dir.is_dir() else []
    if stale:
        raise SeriesError(f"{out_dir}: already holds {stale[0]}, which is not part of this series; "
                          "use an empty directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in files:
        (out_dir / name).write_bytes(data)


def run(targets: list[Path], out_dir: str | None, to_stdout: bool, signoff: str | None, level: str,
        default_level: str, jobs: int | None, unsafe_fixes: bool = False) -> int:
    """The --format-patch / --stdout branch of `convert`; returns its exit status."""
    import click
    from rich.console import Console


    def echo(line: str) -> None:
        click.echo(line, err=True)

    try:
        outcome, result, files, notes = build(targets, level, jobs, signoff, {
            "default_level": default_level, "out_dir": out_dir, "signoff": signoff}, unsafe_fixes)
        for e in result.errors:
            echo(f"{e.path}: error: {e.message}")
        if result.errors:
            # Bad input: say so and write nothing, as convert does.
            return 1
        if to_stdout:
            stdout = click.get_binary_stream("stdout")
            stdout.write(b"".join(data for _, data in files))
            stdout.flush()
        elif files:
            write(Path(out_dir), files)
    except SeriesError as e:
        echo(f"error: {e}")
        return 1
    for problem in outcome.internal_errors:
        echo(f"internal error: {problem}")
    for note in notes:
        echo(f"note: {note}")
    for line in outcome.review_lines():
        echo(f"review: {line}")
    Console(stderr=True, soft_wrap=True).print(outcome.summary())
    patches = max(0, len(files) - 1)
    echo(f"{patches} patch{'es' if patches != 1 else ''} and a cover letter to {'stdout' if to_stdout else out_dir}"
         if patches else "nothing converts: no series written")
    return 0
