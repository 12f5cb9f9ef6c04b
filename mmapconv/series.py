"""Reads patches: a plain unified diff, `git format-patch` output, or an mbox of a series.

Mailing-list archives serve mboxrd (`>From ` quoting), quoted-printable or
8bit bodies, the messages of a series in any order, and review replies that
quote a patch with `> `. Patches come back in series order ([PATCH n/m]);
cover letters and replies are skipped with a note.

The input is mail from strangers: CRLF line ends are undone, subjects lose
control characters, and what the email package cannot take (headers it would
parse for minutes, MIME nested past Python's recursion limit, charsets that
are not text) is an InputError naming the message, never a traceback.
"""
from __future__ import annotations

import email
import email.policy
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from .source import InputError

# An mbox separator: "From <sender> <date>" followed by a header line.
_SEPARATOR = re.compile(rb"^From [^\n]*\n(?=[A-Za-z][A-Za-z0-9-]*:)", re.M)
_MBOXRD_QUOTED = re.compile(rb"^>(>*From )", re.M)
_EMAIL_START = re.compile(rb"\A(?:[A-Za-z][A-Za-z0-9-]*:[^\n]*\n(?:[ \t][^\n]*\n)*)+\n")
# A bracketed tag, then PATCH and n/m inside it: two steps, as one regex backtracks for ages on `[PATCH PATCH ...`.
_TAG = re.compile(r"\[([^\[\]]*)\]")
_PATCH_WORD = re.compile(r"\bPATCH\b", re.I)
_TAG_INDEX = re.compile(r"\b(\d{1,6})/(\d{1,6})\s*$")   # int() refuses 4,300 digits; no series is that long
_REPLY = re.compile(r"^\s*(?:re|aw|sv|fwd?)\s*:", re.I)
_DIFF_START = re.compile(r"^(?:diff --git |--- (?:a/|/dev/null)|Index: )", re.M)
_SIGNATURE = re.compile(r"^-- $", re.M)
_HUNK_OR_FILE = re.compile(r"^(?:@@ |diff --git )", re.M)
# The email package parses these headers (lazily, on access) in time that grows
# with the square of their length; real ones are a few hundred bytes.
_PARSED_HEADERS = ("subject", "content-type", "content-transfer-encoding")
MAX_HEADER = 2048


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


def printable(text: str) -> str:
    """`text` on one line: whitespace runs become a space, other control characters go."""
    return "".join(ch for ch in " ".join(text.split()) if unicodedata.category(ch) != "Cc")


def _lf(data: bytes) -> bytes:
    """CRLF line ends as LF when the first line ends with CRLF (mail saved so); an LF mail
    whose patch adds lines that end in CR (a file with CRLF lines) keeps them."""
    end = data.find(b"\n")
    return data.replace(b"\r\n", b"\n") if end > 0 and data[end - 1:end] == b"\r" else data


def _decode(data: bytes, charset: str | None, where: str) -> str:
    try:
        text = data.decode(charset or "utf-8")
        text.encode("utf-8")   # a charset such as raw_unicode_escape can produce lone surrogates
    except (ValueError, LookupError):   # UnicodeError, or a charset name with a NUL in it
        raise InputError(f"{where}: not {printable(charset or 'utf-8').upper()[:40]} text") from None
    return text


def _diff_span(text: str) -> tuple[int, int] | None:
    """Where the diff in a body starts and ends: the signature after its last hunk ends it."""
    start = _DIFF_START.search(text)
    if start is None:
        return None
    last = None
    for last in _HUNK_OR_FILE.finditer(text, start.start()):
        pass
    sig = _SIGNATURE.search(text, last.end() if last else start.start())
    return start.start(), sig.start() if sig else len(text)


def _diff_of(text: str) -> str | None:
    span = _diff_span(text)
    return text[span[0]:span[1]] if span else None


def _index(subject: str) -> tuple[int, int] | None:
    """(n, m) of the first `[... PATCH ... n/m]` tag."""
    for tag in _TAG.finditer(subject):
        number = _TAG_INDEX.search(tag.group(1))
        if number and _PATCH_WORD.search(tag.group(1), 0, number.start()):
            return int(number.group(1)), int(number.group(2))
    return None


def _check_headers(part, where: str) -> None:
    for name, value in part.raw_items():
        if name.lower() in _PARSED_HEADERS and len(value) > MAX_HEADER:
            raise InputError(f"{where}: a {name} header of {len(value)} characters (at most {MAX_HEADER} taken)")


def _body(message, where: str) -> str:
    parts = [p for p in message.walk() if not p.is_multipart()] if message.is_multipart() else [message]
    texts = []
    for part in parts:
        if part.get_content_maintype() != "text":
            continue
        # A base64 text part carries MIME's canonical CRLF line ends.
        payload = _lf(part.get_payload(decode=True) or b"")
        texts.append(_decode(payload, part.get_content_charset(), where))
    return "\n".join(texts)


def _messages(data: bytes) -> list[bytes]:
    starts = [m.start() for m in _SEPARATOR.finditer(data)]
    if not starts or data[:starts[0]].strip():
        return []
    chunks = [data[a:b] for a, b in zip(starts, starts[1:] + [len(data)])]
    # Drop the separator line and undo mboxrd quoting of body lines. An mbox put
    # together from several sources may hold one CRLF message among LF ones.
    return [_lf(_MBOXRD_QUOTED.sub(rb"\1", chunk.split(b"\n", 1)[1])) for chunk in chunks]


def _parse_message(raw: bytes, where: str):
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
    except RecursionError:   # the parser recurses once per level of multipart nesting
        raise InputError(f"{where}: MIME parts nested too deeply") from None
    for part in message.walk():
        _check_headers(part, where)
    return message


def _from_message(raw: bytes, source: str, position: int, series: Series) -> None:
    message = _parse_message(raw, f"{source} message {position}")
    subject = printable(str(message.get("subject", ""))) or f"{source} message {position}"
    if _REPLY.match(subject):
        series.notes.append(f"skipped reply: {subject}")
        return
    body = _body(message, f"{source}: {subject}")
    span = _diff_span(body)
    index = _index(subject)
    if span is None:
        kind = "cover letter" if index and index[0] == 0 else "message without a diff"
        series.notes.append(f"skipped {kind}: {subject}")
        return
    description = body[:span[0]].split("\n---\n", 1)[0]
    series.patches.append(Patch(subject, body[span[0]:span[1]], index, source, description))


def parse(data: bytes, source: str) -> Series:
    """The patches in one input, in the order they appear."""
    series = Series()
    data = _lf(data)   # before splitting: the separator and header patterns expect LF
    messages = _messages(data)
    if not messages and _EMAIL_START.match(data):
        messages = [data]
    if not messages:
        diff = _diff_of(_decode(data, "utf-8", source))
        if diff is None:
            raise InputError(f"{source}: no patch found (not a unified diff, format-patch file or mbox)")
        series.patches.append(Patch(printable(Path(source).name) if source != "-" else "stdin", diff, None, source))
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
