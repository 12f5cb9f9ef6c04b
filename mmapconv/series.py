"""Reads patches: a plain unified diff, `git format-patch` output, or an mbox of a series.

Mailing-list archives serve mboxrd (`>From ` quoting), quoted-printable or
8bit bodies, the messages of a series in any order, and review replies that
quote a patch with `> `. Patches come back in series order ([PATCH n/m]);
cover letters ([PATCH 0/m], [PATCH 00/m]) and replies are skipped with a note.

An mbox of a thread or a list search holds what the lists delivered: list tags
in subjects (`[f2fs-dev] [PATCH ...]`, dropped), the same message twice when it
was cross-posted (one Message-ID is one message), and several versions of a
series. As `b4 am` does, the newest version of each series is checked and the
older patches are skipped with a note; a partial reroll (a v2 that resends
only some patches of the same length) takes the others from the newest
version that has them. Patches of different versions belong to one series
when they share a subject (the tags aside), a cover letter subject, or a
thread.

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
_PATCH_WORD = re.compile(r"\bPATCH(?:v\d{1,4})?\b", re.I)
_TAG_INDEX = re.compile(r"\b(\d{1,6})/(\d{1,6})\s*$")   # int() refuses 4,300 digits; no series is that long
_REPLY = re.compile(r"^\s*(?:re|aw|sv|fwd?)\s*:", re.I)
_VERSION = re.compile(r"(?:\bv|(?<=PATCH)v)(\d{1,4})\b", re.I)
_RFC_WORD = re.compile(r"\bRFC\b", re.I)
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
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
    version: int = 1                       # n of [PATCH vn ...]
    message_id: str = ""                   # <...>, "" for a plain diff or a format-patch file without one
    references: tuple[str, ...] = ()       # In-Reply-To and References


@dataclass
class Cover:
    """A cover letter: it ties the versions of a series together by its subject and its thread."""
    subject: str
    index: tuple[int, int]
    version: int
    message_id: str = ""
    references: tuple[str, ...] = ()


@dataclass
class Series:
    patches: list[Patch] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    covers: list[Cover] = field(default_factory=list)
    seen_ids: set[str] = field(default_factory=set)   # Message-IDs read so far


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


def _patch_tag(subject: str) -> re.Match | None:
    """The first bracketed tag that says PATCH (or RFC)."""
    return next((t for t in _TAG.finditer(subject) if _PATCH_WORD.search(t.group(1)) or _RFC_WORD.search(t.group(1))),
                None)


def _version(subject: str) -> int:
    """n of `[PATCH vn ...]`, `[PATCHvn ...]` or `[RFC PATCH vn ...]`; 1 when none is given."""
    tag = _patch_tag(subject)
    m = _VERSION.search(tag.group(1)) if tag else None
    return int(m.group(1)) if m else 1


def strip_list_tags(subject: str) -> str:
    """The subject without the tags mailing lists put before it (`[Linux-stm32] `, `[f2fs-dev] `).

    Tags before the PATCH tag go, unless they say RFC; without a PATCH tag,
    leading tags that are one word (a list's name) go.
    """
    patch = _patch_tag(subject)
    end = patch.start() if patch else len(subject)
    out, last = [], 0
    for tag in _TAG.finditer(subject, 0, end):
        words = tag.group(1).split()
        list_name = len(words) == 1 and not _RFC_WORD.search(tag.group(1))
        if patch is None and subject[last:tag.start()].strip(" :") and not _REPLY.match(subject[last:tag.start()]):
            break   # past the leading tags
        if list_name:
            out.append(subject[last:tag.start()])
            last = tag.end()
            while last < len(subject) and subject[last] == " ":
                last += 1
    out.append(subject[last:])
    return "".join(out)


def _topic(subject: str) -> str:
    """The subject without its tags and reply prefixes, for matching one patch across versions."""
    text = _REPLY.sub("", subject)
    text = _TAG.sub(" ", text)
    return " ".join(text.lower().split())


def _ids(message, name: str) -> tuple[str, ...]:
    """The `<...>` ids of a header, read from its raw text: the email package's parser of these
    headers recurses on `(((...` and is slow on long values, and only the ids matter."""
    name = name.lower()
    for key, value in message.raw_items():
        if key.lower() == name:
            return tuple(_MESSAGE_ID.findall(str(value)))
    return ()


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
    subject = strip_list_tags(printable(str(message.get("subject", "")))) or f"{source} message {position}"
    ids = _ids(message, "message-id")
    message_id = ids[0] if ids else ""
    if message_id:
        if message_id in series.seen_ids:
            series.notes.append(f"skipped a second copy of {message_id}: {subject}")
            return
        series.seen_ids.add(message_id)
    if _REPLY.match(subject):
        series.notes.append(f"skipped reply: {subject}")
        return
    references = _ids(message, "in-reply-to") + _ids(message, "references")
    index = _index(subject)
    if index and index[0] == 0:
        # A cover letter, even when it carries a diff (an interdiff or range-diff against the last version).
        series.covers.append(Cover(subject, index, _version(subject), message_id, references))
        series.notes.append(f"skipped cover letter: {subject}")
        return
    body = _body(message, f"{source}: {subject}")
    span = _diff_span(body)
    if span is None:
        series.notes.append(f"skipped message without a diff: {subject}")
        return
    description = body[:span[0]].split("\n---\n", 1)[0]
    series.patches.append(Patch(subject, body[span[0]:span[1]], index, source, description, _version(subject),
                                message_id, references))


def parse(data: bytes, source: str, series: Series | None = None) -> Series:
    """The patches in one input, in the order they appear (added to `series`, which knows the
    Message-IDs already read)."""
    series = Series() if series is None else series
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
        parse(data, name, series)
    if not series.patches:
        raise InputError(f"{', '.join(map(str, paths))}: no patch found")
    series.patches = newest_versions(series)
    # Archives serve a thread in arrival order; the subject index is the series order.
    order = {id(p): i for i, p in enumerate(series.patches)}
    series.patches.sort(key=lambda p: (p.index[0] if p.index else float("inf"), order[id(p)]))
    return series


# --- versions ------------------------------------------------------------------

def _revision(item) -> tuple:
    """One posting of a series: its version and length; a patch without n/m is a revision of its own."""
    if item.index is None:
        return item.version, None, _topic(item.subject)
    return item.version, item.index[1]


def _families(series: Series) -> dict[tuple, tuple]:
    """Revision -> the family (series) it belongs to: revisions that share a subject, a cover subject
    or a thread are versions of one series."""
    parent: dict[tuple, tuple] = {}

    def find(r):
        while parent.setdefault(r, r) != r:
            parent[r] = parent[parent[r]]
            r = parent[r]
        return r

    def union(a, b):
        parent[find(a)] = find(b)

    by_topic: dict[str, tuple] = {}
    by_id: dict[str, tuple] = {}
    items = [*series.patches, *series.covers]
    for item in items:
        revision = _revision(item)
        find(revision)
        topic = _topic(item.subject)
        if topic:
            union(revision, by_topic.setdefault(topic, revision))
        if item.message_id:
            by_id[item.message_id] = revision
    for item in items:
        for ref in item.references:
            if ref in by_id:
                union(_revision(item), by_id[ref])
    return {r: find(r) for r in parent}


def newest_versions(series: Series) -> list[Patch]:
    """The patches to check: of each series, its newest version, with what a partial reroll did not
    resend taken from the newest older version of the same length. Notes say what was skipped."""
    family = _families(series)
    newest: dict[tuple, int] = {}
    for patch in series.patches:
        f = family[_revision(patch)]
        newest[f] = max(newest.get(f, 0), patch.version)
    kept, older = [], []
    for patch in series.patches:
        (kept if patch.version == newest[family[_revision(patch)]] else older).append(patch)
    have = {(family[_revision(p)], p.index[1], p.index[0]) for p in kept if p.index}
    for patch in sorted(older, key=lambda p: -p.version):
        f = family[_revision(patch)]
        key = (f, patch.index[1], patch.index[0]) if patch.index else None
        if key is not None and key not in have and any(
                family[_revision(p)] == f and p.index and p.index[1] == patch.index[1] for p in kept):
            have.add(key)
            kept.append(patch)
            series.notes.append(f"took {patch.subject} from v{patch.version}: "
                                f"v{newest[f]} does not resend patch {patch.index[0]}/{patch.index[1]}")
        else:
            series.notes.append(f"skipped {patch.subject}: v{newest[f]} of the series supersedes it")
    return kept
