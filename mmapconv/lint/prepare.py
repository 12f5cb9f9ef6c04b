"""What the rules know about C: mmap_prepare hooks and helpers, calls, members, and paths.

A hook is a function assigned to `.mmap_prepare` (a file_operations or a
uio_info initializer, or `info->mmap_prepare = fn`) in the file, or named by
the caller as assigned elsewhere (check-patch: the series); a function whose
only parameter is a `struct vm_area_desc *` and that nothing in the file calls
is taken for a hook assigned in another file. A helper is a function that takes
the descriptor (and no vma) and is called from a hook or another helper: the
rules that make sense outside the hook itself (flags, vma use, action fields)
check it, the one-action and error-path rules do not. Core mm code that builds
actions (a function under `mm/` calling `mmap_action_prepare()`) is neither.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import PurePath

from ..source import SourceFile, find, function_name, parameters

TRANSPARENT = ("parenthesized_expression", "cast_expression")
PATH_ENDS = ("return_statement", "goto_statement")
BLOCKS = ("compound_statement", "case_statement")
HOOK_MEMBER = "mmap_prepare"
# Calls only the core makes: a function that makes them runs actions, it does not request them.
_CORE_CALLS = ("mmap_action_prepare", "mmap_action_complete")

# Hooks assigned outside the file being linted (check-patch: in the series or the tree).
_KNOWN_HOOKS: ContextVar[frozenset] = ContextVar("known_hooks", default=frozenset())


@contextmanager
def known_hooks(names):
    """Within the block, the functions `names` are mmap_prepare hooks in every file linted."""
    token = _KNOWN_HOOKS.set(frozenset(names))
    try:
        yield
    finally:
        _KNOWN_HOOKS.reset(token)


@dataclass
class PrepareFunction:
    node: object
    name: str
    desc: str          # the name of the vm_area_desc parameter
    body: object
    kind: str = "hook"   # "hook" | "helper"


def designator_member(src: SourceFile, pair) -> str | None:
    designator = pair.child_by_field_name("designator")
    if designator is None or designator.type != "field_designator":
        return None
    return src.text(designator).lstrip(".").strip()


def _function_value(src: SourceFile, value) -> str | None:
    """`fn` for the values `fn`, `&fn` and `(fn)`."""
    value = strip(value)
    if value is not None and value.type == "pointer_expression" and src.text(value).startswith("&"):
        value = strip(value.child_by_field_name("argument"))
    return src.text(value) if value is not None and value.type == "identifier" else None


def assigned_hooks(src: SourceFile) -> set[str]:
    """Functions the file assigns to an `mmap_prepare` member: initializers and plain assignments."""
    names = set()
    for pair in find(src.root, "initializer_pair"):
        if designator_member(src, pair) == HOOK_MEMBER:
            name = _function_value(src, pair.child_by_field_name("value"))
            if name:
                names.add(name)
    for write in find(src.root, "assignment_expression"):
        left = write.child_by_field_name("left")
        if left is not None and left.type == "field_expression" and src.text(write.child_by_field_name("operator")) == "=":
            field = left.child_by_field_name("field")
            if field is not None and src.text(field) == HOOK_MEMBER:
                name = _function_value(src, write.child_by_field_name("right"))
                if name:
                    names.add(name)
    return names


def is_core_mm(src: SourceFile, body) -> bool:
    """A function of mm/ that runs actions (calls mmap_action_prepare()): core code, not a driver's hook."""
    return "mm" in PurePath(src.path).parts[:-1] and any(True for _ in calls(src, body, names=_CORE_CALLS))


def _called_names(src: SourceFile, node) -> set[str]:
    return {name for name, _ in calls(src, node)}


def desc_functions(src: SourceFile) -> list[PrepareFunction]:
    """The hooks and the helpers of the file, in source order."""
    assigned = assigned_hooks(src) | _KNOWN_HOOKS.get()
    candidates = []
    for fn in find(src.root, "function_definition"):
        name, params, body = function_name(src, fn), parameters(src, fn), fn.child_by_field_name("body")
        desc = [n for t, n in params if "vm_area_desc" in t and t.endswith("*") and n]
        if name and body is not None and desc and not is_core_mm(src, body):
            candidates.append((fn, name, desc[0], body, params))
    if not candidates:
        return []
    called = _called_names(src, src.root)
    hooks = {name for _, name, _, _, params in candidates
             if name in assigned or (len(params) == 1 and name not in called)}
    # Helpers: reached from a hook through functions that take the descriptor, and not given a vma.
    calls_of = {name: _called_names(src, body) for _, name, _, body, _ in candidates}
    helpers_ok = {name for _, name, _, _, params in candidates
                  if name not in hooks and not any("vm_area_struct" in t for t, _ in params)}
    reached, frontier = set(), set(hooks)
    while frontier:
        nxt = set()
        for name in frontier:
            for callee in calls_of.get(name, ()):
                if callee in helpers_ok and callee not in reached:
                    reached.add(callee)
                    nxt.add(callee)
        frontier = nxt
    out = []
    for fn, name, desc, body, _ in candidates:
        if name in hooks:
            out.append(PrepareFunction(fn, name, desc, body, "hook"))
        elif name in reached:
            out.append(PrepareFunction(fn, name, desc, body, "helper"))
    return out


def prepare_functions(src: SourceFile) -> list[PrepareFunction]:
    """The mmap_prepare hooks of the file."""
    return [f for f in desc_functions(src) if f.kind == "hook"]


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
