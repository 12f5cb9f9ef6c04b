"""Reads patches: a plain unified diff, `git format-patch` output, or an mbox of a series.

Mailing-list archives serve mboxrd (`>From ` quoting), quoted-printable or
8bit bodies, the messages of a series in any order, and review replies that
quote a patch with `> `. Patches come back in series order ([PATCH n/m]);
cover letters and replies are skipped with a note.
"""
from __future__ import annotations

import email
import email.policy
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .source import InputError

# An mbox separator: "From <sender> <date>" followed by a header line.
_SEPARATOR = re.compile(rb"^From [^\n]*\n(?=[A-Za-z][A-Za-z0-9-]*:)", re.M)
_MBOXRD_QUOTED = re.compile(rb"^>(>*From )", re.M)
_EMAIL_START = re.compile(rb"\A(?:[A-Za-z][A-Za-z0-9-]*:[^\n]*\n(?:[ \t][^\n]*\n)*)+\n")
_INDEX = re.compile(r"\[[^\]]*?\bPATCH\b[^\]]*?\b(\d+)/(\d+)\s*\]", re.I)
_REPLY = re.compile(r"^\s*(?:re|aw|sv|fwd?)\s*:", re.I)
_DIFF_START = re.compile(r"^(?:diff --git |--- (?:a/|/dev/null)|Index: )", re.M)
_SIGNATURE = re.compile(r"^-- $", re.M)


@dataclass
class Patch:
    subject: str
    diff: str
    index: tuple[int, int] | None = None   # (n, m) of [PATCH n/m]
    source: str = ""                       # the input it came from
    description: str = ""                  # the commit message, as decoded


@dataclass
class Series:
    patches: list[Patch] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _decode(data: bytes, charset: str | None, where: str) -> str:
    try:
        return data.decode(charset or "utf-8")
    except (UnicodeDecodeError, LookupError):
        raise InputError(f"{where}: not {(charset or 'utf-8').upper()} text") from None


def _diff_of(text: str) -> str | None:
    start = _DIFF_START.search(text)
    if start is None:
        return None
    diff = text[start.start():]
    for sig in _SIGNATURE.finditer(diff):
        rest = diff[sig.end():]
        if not re.search(r"^(?:@@ |diff --git )", rest, re.M):
            return diff[:sig.start()]
    return diff


def _body(message, where: str) -> str:
    parts = [p for p in message.walk() if not p.is_multipart()] if message.is_multipart() else [message]
    texts = []
    for part in parts:
        if part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True) or b""
        texts.append(_decode(payload, part.get_content_charset(), where))
    return "\n".join(texts)


def _messages(data: bytes) -> list[bytes]:
    starts = [m.start() for m in _SEPARATOR.finditer(data)]
    if not starts or data[:starts[0]].strip():
        return []
    chunks = [data[a:b] for a, b in zip(starts, starts[1:] + [len(data)])]
    # Drop the separator line and undo mboxrd quoting of body lines.
    return [_MBOXRD_QUOTED.sub(rb"\1", chunk.split(b"\n", 1)[1]) for chunk in chunks]


def _from_message(raw: bytes, source: str, position: int, series: Series) -> None:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    subject = " ".join(str(message.get("subject", "")).split()) or f"{source} message {position}"
    if _REPLY.match(subject):
        series.notes.append(f"skipped reply: {subject}")
        return
    body = _body(message, f"{source}: {subject}")
    diff = _diff_of(body)
    index = _INDEX.search(subject)
    if diff is None:
        kind = "cover letter" if index and index.group(1) == "0" else "message without a diff"
        series.notes.append(f"skipped {kind}: {subject}")
        return
    description = body[:body.index(diff)].split("\n---\n", 1)[0]
    series.patches.append(Patch(subject, diff, (int(index.group(1)), int(index.group(2))) if index else None,
                                source, description))


def parse(data: bytes, source: str) -> Series:
    """The patches in one input, in the order they appear."""
    series = Series()
    messages = _messages(data)
    if not messages and _EMAIL_START.match(data):
        messages = [data]
    if not messages:
        text = _decode(data, "utf-8", source)
        if _diff_of(text) is None:
            raise InputError(f"{source}: no patch found (not a unified diff, format-patch file or mbox)")
        series.patches.append(Patch(Path(source).name if source != "-" else "stdin", _diff_of(text), None, source))
        return series
    for position, raw in enumerate(messages, 1):
        _from_message(raw, source, position, series)
    return series


def read_inputs(paths: list[Path]) -> Series:
    """All patches of all inputs (`-` is stdin), in series order."""
    series = Series()
    for path in paths:
        name = str(path)
        if name == "-":
            data = sys.stdin.buffer.read()
        else:
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise InputError(f"{name}: no such file or directory") from None
            except OSError as exc:
                raise InputError(f"{name}: cannot read: {exc.strerror}") from None
        one = parse(data, name)
        series.patches += one.patches
        series.notes += one.notes
    if not series.patches:
        raise InputError(f"{', '.join(map(str, paths))}: no patch found")
    # Archives serve a thread in arrival order; the subject index is the series order.
    order = {id(p): i for i, p in enumerate(series.patches)}
    series.patches.sort(key=lambda p: (p.index[0] if p.index else float("inf"), order[id(p)]))
    return series
