"""The rewrite registry.

Each module in this package registers the expression rewrites it knows with
`@rewrite`. A rewrite looks at one node and returns its replacement text, or
None to let the walk go on into the node's children. The statement-level work
(the mmap_action call, the signature) lives in `action` and `signature`, which
the planner calls directly; they render sub-expressions through `render`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from ..edits import Edit, apply
from ..rules_data import load
from ..source import SourceFile, decode


class Refusal(Exception):
    """The function cannot be converted completely; the message says why and where."""

    def __init__(self, line: int, message: str):
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass
class Context:
    src: SourceFile
    fn: object                  # the function_definition node
    vma: str
    file: str | None
    level: str
    new_name: str = ""
    desc: str = "desc"
    # Helpers to add before the function (an error_hook), as full text.
    preamble: list[str] = field(default_factory=list)
    # vma arguments of calls to helpers converted along with the function: they pass `desc`.
    passes_desc: set[int] = field(default_factory=set)
    # Names of those helpers at their call sites: node id -> the helper's new name.
    renamed: dict[int, str] = field(default_factory=dict)

    @property
    def api(self) -> dict:
        return load("api")["levels"][self.level]

    def is_vma(self, node) -> bool:
        return node is not None and node.type == "identifier" and self.src.text(node) == self.vma

    def refuse(self, node, message: str):
        raise Refusal(self.src.line(node), message)


Rewrite = Callable[[Context, object], "str | None"]
REWRITES: list[Rewrite] = []


def rewrite(fn: Rewrite) -> Rewrite:
    REWRITES.append(fn)
    return fn


def edits_for(ctx: Context, node) -> list[Edit]:
    """The first rewrite that takes a node replaces it; otherwise its children are tried (iterative: input can nest deep)."""
    edits, stack = [], [node]
    while stack:
        node = stack.pop()
        out = next((text for text in (rule(ctx, node) for rule in REWRITES) if text is not None), None)
        if out is not None:
            edits.append(Edit(node.start_byte, node.end_byte, out))
        else:
            stack.extend(reversed(node.children))
    return edits


def render(ctx: Context, node) -> str:
    """The text of `node` with every rewrite applied."""
    text = ctx.src.data[node.start_byte:node.end_byte]
    return decode(apply(text, edits_for(ctx, node), base=node.start_byte))


def call_name(ctx: Context, node) -> str | None:
    if node.type != "call_expression":
        return None
    fn = node.child_by_field_name("function")
    return ctx.src.text(fn) if fn.type == "identifier" else None


def unwrap(node):
    """The expression inside any number of parentheses."""
    while node is not None and node.type == "parenthesized_expression":
        node = node.named_children[0] if node.named_children else None
    return node


def call_args(node) -> list:
    return list(node.child_by_field_name("arguments").named_children)


def fill(template: str, ctx: Context, values: dict[str, str]) -> str:
    """Put the descriptor and the named argument texts into a rules template, token by token."""
    # FILE: the function's own name for the file when it has one (it stays as a local), else the descriptor's.
    table = dict(values, DESC=ctx.desc, FILE=ctx.file or f"{ctx.desc}->file")
    return re.sub(r"\b[A-Za-z_]\w*\b", lambda m: table.get(m.group(0), m.group(0)), template)


@rewrite
def helper_argument(ctx: Context, node) -> str | None:
    if node.id in ctx.passes_desc:
        return ctx.desc
    return ctx.renamed.get(node.id)


# Registration order is the order rules are tried in.
from . import flags, calls, fields  # noqa: E402,F401
