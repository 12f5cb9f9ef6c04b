"""MMC208: a remap range that constant arithmetic puts outside the descriptor.

Start and size are evaluated as linear forms over desc->start (S),
desc->end (E) and PAGE_SIZE (P, at least 4096); anything else makes the
range unknown and the rule silent.
"""
from __future__ import annotations

import re

from .catalogue import KNOWLEDGE
from .prepare import arguments, calls, is_desc_member, strip
from .registry import Context, register

MIN_PAGE_SIZE = 4096
_INTEGER = re.compile(r"(0[xX][0-9a-fA-F]+|\d+)[uUlL]*")
Form = dict  # {"S": int, "E": int, "P": int, "1": int}


def _form(**terms) -> Form:
    return {"S": 0, "E": 0, "P": 0, "1": 0} | terms


def _combine(a: Form, b: Form, sign: int) -> Form:
    return {k: a[k] + sign * b[k] for k in a}


def linear(src, node, desc: str) -> Form | None:
    node = strip(node)
    if node is None:
        return None
    text = src.text(node)
    if node.type == "number_literal" and _INTEGER.fullmatch(text):
        return _form(**{"1": int(_INTEGER.fullmatch(text).group(1), 0)})
    if node.type == "identifier" and text == "PAGE_SIZE":
        return _form(P=1)
    if node.type == "field_expression":
        if is_desc_member(src, node, desc, "start") and text.endswith("start"):
            return _form(S=1)
        if is_desc_member(src, node, desc, "end") and text.endswith("end"):
            return _form(E=1)
        return None
    if node.type == "call_expression":
        args = arguments(node)
        name = src.text(node.child_by_field_name("function"))
        if name == "vma_desc_size" and len(args) == 1 and src.text(strip(args[0])) == desc:
            return _form(E=1, S=-1)
        return None
    if node.type == "binary_expression":
        op = src.text(node.child_by_field_name("operator"))
        left = linear(src, node.child_by_field_name("left"), desc)
        right = linear(src, node.child_by_field_name("right"), desc)
        if left is None or right is None:
            return None
        if op in "+-":
            return _combine(left, right, 1 if op == "+" else -1)
        if op == "*":
            for scalar, other in ((left, right), (right, left)):
                if scalar["S"] == scalar["E"] == scalar["P"] == 0:
                    return {k: v * scalar["1"] for k, v in other.items()}
    return None


def _positive(value: Form) -> bool:
    """Provably > 0 for every page size >= MIN_PAGE_SIZE (value has no S/E term)."""
    return value["P"] >= 0 and value["P"] * MIN_PAGE_SIZE + value["1"] > 0


def _negative(value: Form) -> bool:
    return value["P"] <= 0 and value["P"] * MIN_PAGE_SIZE + value["1"] < 0


def _offset(value: Form, base: str) -> Form | None:
    """value - base when that has no S/E term left."""
    rest = _combine(value, _form(**{base: 1}), -1)
    return rest if rest["S"] == rest["E"] == 0 else None


def problem(start: Form, size: Form) -> str | None:
    end = _combine(start, size, 1)
    before = _offset(start, "S")
    if before is not None and _negative(before):
        return "starts before desc->start"
    at_end = _offset(start, "E")
    if at_end is not None and not _negative(at_end):
        return "starts at or after desc->end"
    past = _offset(end, "E")
    if past is not None and _positive(past):
        return "ends past desc->end"
    return None


@register("MMC208")
def remap_outside(ctx: Context):
    src = ctx.src
    for fn in ctx.desc_functions:
        for name, call in calls(src, fn.body, names=KNOWLEDGE["actions"]["ranged"]):
            args = arguments(call)
            if len(args) != 4:
                continue
            start, size = linear(src, args[1], fn.desc), linear(src, args[3], fn.desc)
            if start is None or size is None:
                continue
            what = problem(start, size)
            if what:
                yield ctx.finding(call, "MMC208", call=name, start=" ".join(src.text(args[1]).split()),
                                  size=" ".join(src.text(args[3]).split()), problem=what)
