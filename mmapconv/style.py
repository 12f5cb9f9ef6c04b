"""Kernel coding style for the text mmapconv writes: 80 columns, tabs of 8."""
from __future__ import annotations

from .source import split_top_level


def wrap(indent: str, line: str, width: int = 80) -> str:
    """Break a long call after commas, continuation aligned under the opening parenthesis."""
    col = len(indent.expandtabs(8))
    if col + len(line) <= width or "(" not in line:
        return line
    open_at = line.index("(") + 1
    align_col = col + open_at
    cont = "\t" * (align_col // 8) + " " * (align_col % 8)
    out, current = [], line[:open_at]
    pieces = split_top_level(line[open_at:])
    for piece in [p + "," for p in pieces[:-1]] + pieces[-1:]:
        candidate = current + piece
        used = (col if not out else align_col) + len(candidate.rstrip())
        if used > width and current.strip() and current != line[:open_at]:
            out.append(current.rstrip())
            current = piece.lstrip()
        else:
            current = candidate
    out.append(current)
    return ("\n" + cont).join(out)
