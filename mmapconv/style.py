"""Kernel coding style for the text mmapconv writes: 80 columns, tabs of 8."""
from __future__ import annotations

import re

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


def pad_to(head: str, column: int, tabs: bool) -> str:
    """Blanks after `head` that reach `column` (tabs first when the line used tabs); at least one."""
    pad = ""
    while tabs and len((head + pad + "\t").expandtabs(8)) <= column:
        pad += "\t"
    while len((head + pad).expandtabs(8)) < column:
        pad += " "
    return pad or " "


def _columns(text: str) -> int:
    return len(text.expandtabs(8))


def _align(column: int) -> str:
    return "\t" * (column // 8) + " " * (column % 8)


def wrap_condition(line: str, width: int = 80) -> str:
    """`if (a && b)` past the width breaks after the last `&&`/`||` that fits, the rest under `(`."""
    stripped = line.lstrip()
    head = line[:len(line) - len(stripped)]
    for keyword in ("if (", "while (", "} else if ("):
        if stripped.startswith(keyword):
            break
    else:
        return line
    align = _columns(head + keyword)
    # Break after a logical operator of the condition, else after a comparison.
    for operators in (("&& ", "|| "), ("<= ", ">= ", "== ", "!= ", "< ", "> ")):
        depth, breaks = 0, []
        for i, ch in enumerate(line):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 1 and line[i - 1:i] == " " and line.startswith(operators, i) and line[i - 1:i + 2] not in (" <<", " >>"):
                breaks.append(i + line.index(" ", i) - i)
        fitting = [b for b in breaks if _columns(line[:b].rstrip()) <= width]
        if fitting:
            break
    else:
        return line
    at = fitting[-1]
    rest = line[at:].lstrip()
    return line[:at].rstrip() + "\n" + _align(align) + rest


def wrap_line(line: str, width: int = 80) -> str:
    """One long line the converter made, in kernel style: a condition at its `&&`, else a call at its commas."""
    if _columns(line) <= width:
        return line
    wrapped = wrap_condition(line, width)
    if wrapped != line:
        return wrapped
    stripped = line.lstrip()
    indent = line[:len(line) - len(stripped)]
    return indent + wrap(indent, stripped, width)


_QUOTED = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|/\*.*?\*/|//.*$')


def _open_parens(line: str, stack: list[int]) -> list[int]:
    """The columns just after each `(` still open at the end of `line`, continuing `stack`."""
    stack = list(stack)
    text = _QUOTED.sub(lambda m: " " * len(m.group(0)), line)
    column = 0
    for ch in text:
        column = column + 8 - column % 8 if ch == "\t" else column + 1
        if ch == "(":
            stack.append(column)
        elif ch == ")" and stack:
            stack.pop()
    return stack


def realign(lines: list[str], changed: set[int]) -> list[str]:
    """Continuation lines under a parenthesis that a changed line moved follow it to its new column."""
    out, stack, moved = [], [], False
    for i, line in enumerate(lines):
        if stack and moved and line.strip():
            line = _align(stack[-1]) + line.lstrip()
        out.append(line)
        before = len(stack)
        stack = _open_parens(line, stack)
        if i in changed:
            moved = True
        elif not stack or len(stack) < before:
            moved = moved and bool(stack)
        if not stack:
            moved = False
    return out
