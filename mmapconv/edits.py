"""Byte edits: (start, end, replacement) applied back to front, so untouched bytes stay as they were."""
from __future__ import annotations

from typing import NamedTuple

from .source import encode


class Edit(NamedTuple):
    start: int
    end: int
    text: str


class OverlapError(Exception):
    pass


def apply(data: bytes, edits: list[Edit], base: int = 0) -> bytes:
    """Apply `edits` to `data`, whose first byte is at offset `base` of the file the edits address."""
    out = data
    last_start = None
    for e in sorted(set(edits), key=lambda e: (e.start, e.end), reverse=True):
        if last_start is not None and e.end > last_start:
            raise OverlapError(f"edits overlap at byte {e.start}")
        out = out[:e.start - base] + encode(e.text) + out[e.end - base:]
        last_start = e.start
    return out


def inside(edit: Edit, start: int, end: int) -> bool:
    return start <= edit.start and edit.end <= end
