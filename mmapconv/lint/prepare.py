"""What the rules know about C: mmap_prepare functions, calls, members, and paths.

An mmap_prepare function is one assigned to `.mmap_prepare` in the file, or
any function whose single parameter is a `struct vm_area_desc *`.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..source import SourceFile, find, function_name, parameters

TRANSPARENT = ("parenthesized_expression", "cast_expression")
PATH_ENDS = ("return_statement", "goto_statement")
BLOCKS = ("compound_statement", "case_statement")


@dataclass
class PrepareFunction:
    node: object
    name: str
    desc: str          # the name of the vm_area_desc parameter
    body: object


def designator_member(src: SourceFile, pair) -> str | None:
    designator = pair.child_by_field_name("designator")
    if designator is None or designator.type != "field_designator":
        return None
    return src.text(designator).lstrip(".").strip()


def prepare_functions(src: SourceFile) -> list[PrepareFunction]:
    assigned = set()
    for pair in find(src.root, "initializer_pair"):
        value = pair.child_by_field_name("value")
        if designator_member(src, pair) == "mmap_prepare" and value is not None:
            assigned.add(src.text(value).strip())
    out = []
    for fn in find(src.root, "function_definition"):
        name, params, body = function_name(src, fn), parameters(src, fn), fn.child_by_field_name("body")
        desc = [n for t, n in params if "vm_area_desc" in t and t.endswith("*") and n]
        if name and body is not None and desc and (name in assigned or len(params) == 1):
            out.append(PrepareFunction(fn, name, desc[0], body))
    return out


def strip(node):
    """The expression under parentheses and casts."""
    while node is not None and node.type in TRANSPARENT:
        node = node.child_by_field_name("value") if node.type == "cast_expression" else node.named_children[0]
    return node


def callee(src: SourceFile, call) -> str | None:
    function = call.child_by_field_name("function")
    return src.text(function) if function is not None and function.type == "identifier" else None


def calls(src: SourceFile, node, names=None, prefix: str | None = None):
    """(name, call node) for the calls below `node`, optionally filtered."""
    for call in find(node, "call_expression"):
        name = callee(src, call)
        if name and (names is None or name in names) and (prefix is None or name.startswith(prefix)):
            yield name, call


def arguments(call) -> list:
    args = call.child_by_field_name("arguments")
    return [a for a in args.named_children if a.type != "comment"] if args is not None else []


def member_chain(src: SourceFile, node) -> tuple[str, list[str]] | None:
    """`("desc", ["action", "remap", "start"])` for `desc->action.remap.start`."""
    fields = []
    node = strip(node)
    while node is not None and node.type == "field_expression":
        fields.append(src.text(node.child_by_field_name("field")))
        node = strip(node.child_by_field_name("argument"))
    if node is None or node.type != "identifier":
        return None
    return src.text(node), fields[::-1]


def is_desc_member(src: SourceFile, node, desc: str, *path: str) -> bool:
    chain = member_chain(src, node)
    return chain is not None and chain[0] == desc and tuple(chain[1][:len(path)]) == path and len(chain[1]) >= len(path)


def written(node) -> list:
    """The lvalue nodes an assignment or ++/-- expression writes."""
    if node.type == "assignment_expression":
        return [node.child_by_field_name("left")]
    if node.type == "update_expression":
        return [node.child_by_field_name("argument")]
    return []


def writes(body):
    """(write expression, target) below `body`."""
    for node in find(body, "assignment_expression", "update_expression"):
        for target in written(node):
            if target is not None:
                yield node, target


def _chain_to(node, top) -> list:
    out = []
    while node is not None and node != top:
        out.append(node)
        node = node.parent
    out.append(top)
    return out[::-1]


def same_path(function, a, b) -> bool:
    """Whether `a` then `b` (b after a in the text) can both run in one call of `function`.

    Conservative in the direction of silence: branches of one `if`, `?:` or
    `switch` exclude each other, and so does a `return` or `goto` that follows
    `a` in a block that `b` is not in.
    """
    chain_a, chain_b = _chain_to(a, function), _chain_to(b, function)
    depth = 0
    while depth < min(len(chain_a), len(chain_b)) and chain_a[depth] == chain_b[depth]:
        depth += 1
    common = chain_a[depth - 1]
    if depth >= len(chain_a) or depth >= len(chain_b):
        return True   # one contains the other
    branch_a, branch_b = chain_a[depth], chain_b[depth]
    if common.type == "if_statement" and common.child_by_field_name("condition") not in (branch_a, branch_b):
        return False
    if common.type == "conditional_expression" and common.child_by_field_name("condition") not in (branch_a, branch_b):
        return False
    if common.type == "compound_statement" and branch_a.type == "case_statement" and branch_b.type == "case_statement" \
            and any(n.type in ("break_statement",) + PATH_ENDS for n in branch_a.named_children):
        return False
    if common.type == "case_statement" and any(
            n.type in ("break_statement",) + PATH_ENDS and a.end_byte <= n.start_byte <= b.start_byte
            for n in common.named_children):
        return False
    # A return or goto after `a`, in a block that does not hold `b`, ends a's path.
    for node in chain_a[depth:]:
        if node.type in PATH_ENDS:
            return False
        if node.parent.type not in BLOCKS:
            continue
        sibling = node.next_named_sibling
        while sibling is not None and sibling != branch_b:
            if sibling.type in PATH_ENDS:
                return False
            sibling = sibling.next_named_sibling
    return True
