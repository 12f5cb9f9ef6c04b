"""Classifies one mmap callback body: what it does to the vma, and why it can or cannot convert.

The rule is an allow-list: every call must belong to a kind in
rules/classify.toml and every write must go to the vma, to a local, or to a
field the descriptor has. Anything else makes the function manual.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from .rules_data import load
from .source import SourceFile, automatic_locals, find, function_name, parameters

_RULES = load("classify")
_FIELDS = load("fields")["fields"]
CATEGORY_TEXT: dict[str, str] = _RULES["categories"]
PRIMARY_ORDER: list[str] = _RULES["primary_order"]
AUTO_CATEGORIES = frozenset(_RULES["auto_categories"])
ACTION_KINDS = ("remap", "map_pages", "generic")
# Calls that say nothing worth a reason line: reads and logging.
SILENT_KINDS = ("pure", "primitive", "logs")
# Requests the core performs after mmap_prepare returns: a lock the hook held around them no longer covers them.
DEFERRED_KINDS = ("remap", "map_pages")
# A lock-taking call -> the calls that release it.
_PAIRS: dict[str, frozenset[str]] = {take: frozenset(release if isinstance(release, list) else [release])
                                     for take, release in _RULES["pairs"].items()}

_BY_NAME: dict[str, str] = {}
_PREFIXES: list[tuple[str, str]] = []
for _kind, _spec in _RULES["kinds"].items():
    for _name in _spec.get("names", []):
        _BY_NAME.setdefault(_name, _kind)
    for _prefix in _spec.get("prefixes", []):
        _PREFIXES.append((_prefix, _kind))
_PREFIXES.sort(key=lambda p: -len(p[0]))


# Type names a parenthesized "callee" can only be a cast to (the parser has no typedefs).
_TYPE_NAME = re.compile(r"(?:__)?[us](?:8|16|32|64)|__(?:le|be)(?:16|32|64)|\w+_t|(?:unsigned |signed )?(?:char|short|int|long|long long)|bool")


def kind_of(name: str) -> str | None:
    if name in _BY_NAME:
        return _BY_NAME[name]
    return next((k for p, k in _PREFIXES if name.startswith(p)), None)


@dataclass
class Evidence:
    line: int
    category: str
    code: str
    message: str
    # A write through this parameter's pointer: the caller's own memory when it passes `&local`.
    param: int | None = None


class LockCall(NamedTuple):
    line: int
    name: str
    exit_path: bool   # in a branch that returns: releases for that branch only
    scope_end: int | None = None   # a scoped_guard()'s block ends on this line: held no further


@dataclass
class PendingCall:
    """A call to a function no kind covers: resolved against the definitions we can see."""
    callee: str
    line: int                  # in the function summarized: where the chain to this call starts
    passes_vma: bool
    via: tuple[str, ...] = ()  # the helpers between that function and this call
    near: str = ""             # the file the call is written in, when it is a helper's
    args: tuple[str, ...] = () # the argument texts, for a callee that writes through one

    def describe(self, what: str) -> str:
        return "".join(f"via {h}(): " for h in self.via) + what


@dataclass
class Summary:
    name: str
    path: str
    line: int
    static: bool
    vma_param: str | None
    file_param: str | None
    evidence: list[Evidence] = field(default_factory=list)
    delegates_to: list[str] = field(default_factory=list)
    pending: list[PendingCall] = field(default_factory=list)
    locks: list[LockCall] = field(default_factory=list)   # lock and release calls
    # Automatic locals and local arrays: memory a callee may write through `&x` without state escaping.
    locals: frozenset[str] = frozenset()
    arrays: frozenset[str] = frozenset()
    params: tuple[str, ...] = ()
    # Set by the planner for auto functions: the edits, or why it refused.
    plan: object = None
    refusal: Evidence | None = None

    @property
    def categories(self) -> list[str]:
        present = {e.category for e in self.evidence} or {"a"}
        return [c for c in PRIMARY_ORDER if c in present]

    @property
    def primary(self) -> str:
        return self.categories[0]

    @property
    def classified_auto(self) -> bool:
        return not self.pending and set(self.categories) <= AUTO_CATEGORIES

    def add(self, line: int, category: str, code: str, message: str) -> None:
        self.evidence.append(Evidence(line, category, code, message))


def takes_vma(src: SourceFile, fn) -> bool:
    return any("vm_area_struct" in t and t.endswith("*") for t, _ in parameters(src, fn))


def _root_identifier(node):
    """`a` for `a->b.c[2]`, whether the path goes through a pointer, and whether it subscripts."""
    through_pointer = subscripted = False
    while node.type in ("field_expression", "subscript_expression", "parenthesized_expression", "pointer_expression"):
        if node.type == "field_expression":
            op = node.child_by_field_name("operator")
            through_pointer |= op is not None and op.type == "->"
        elif node.type == "subscript_expression":
            subscripted = True
        elif node.type == "pointer_expression":
            through_pointer = True
        if node.type == "parenthesized_expression":
            if not node.named_children:
                break
            node = node.named_children[0]
        else:
            node = node.child_by_field_name("argument")
    return node, through_pointer, subscripted


def _in_loop(node, stop) -> bool:
    node = node.parent
    while node is not None and node != stop:
        if node.type in ("for_statement", "while_statement", "do_statement"):
            return True
        node = node.parent
    return False


def summarize(src: SourceFile, fn) -> Summary | None:
    name = function_name(src, fn)
    if name is None:
        return None
    params = parameters(src, fn)
    vma = next((n for t, n in params if "vm_area_struct" in t and t.endswith("*")), None)
    file_param = next((n for t, n in params if t.replace("const ", "") == "struct file*"), None)
    static = any(src.text(c) == "static" for c in fn.children if c.type == "storage_class_specifier")
    summary = Summary(name, src.path, src.line(fn), static, vma, file_param)
    body = fn.child_by_field_name("body")
    if body is None:
        return summary
    summary.locals, summary.arrays = frozenset(automatic_locals(src, body)), frozenset(_array_locals(src, fn))
    local = summary.locals | {n for _, n in params if n and n not in (vma,)}
    arrays = summary.arrays
    summary.params = tuple(n for _, n in params)
    positions = {n: i for i, (_, n) in enumerate(params) if n and n != vma}
    actions = []
    dead = dead_branches(src, body)

    for node in find(body, "call_expression", "identifier", "assignment_expression", "update_expression", "gnu_asm_expression"):
        if any(start <= node.start_byte < end for start, end in dead):
            continue  # `if (0) { ... }` never runs: the conversion removes it
        t = node.type
        if t == "call_expression":
            _call(src, summary, node, body, vma, actions)
        elif t == "identifier" and vma and src.text(node) == vma:
            _vma_use(src, summary, node, local)
        elif t in ("assignment_expression", "update_expression"):
            target = node.child_by_field_name("left" if t == "assignment_expression" else "argument")
            _write(src, summary, node, target, vma, local, arrays, positions)
        elif t == "gnu_asm_expression":
            summary.add(src.line(node), "i", "asm", "inline assembly")

    on_one_path = _one_path(actions)
    if len(on_one_path) > 1:
        summary.add(src.line(on_one_path[1]), "i", "several-actions",
                    f"requests {len(on_one_path)} mappings on one path "
                    f"({', '.join(_callee(src, n) for n in on_one_path)}); mmap_prepare allows one action")
    deferred = [a for a in actions if kind_of(_callee(src, a)) in DEFERRED_KINDS]
    for line, lock in _locks_held_over(summary.locks, [src.line(a) for a in deferred]):
        summary.add(line, "i", _RULES["kinds"]["lock"]["code"], f"{lock}(): {_RULES['kinds']['lock']['message']}")
    return summary


def _callee(src: SourceFile, call) -> str:
    return src.text(call.child_by_field_name("function"))


def dead_branches(src: SourceFile, body) -> list[tuple[int, int]]:
    """Byte spans of branches that never run: the body of `if (0)`, the else of `if (1)`."""
    spans = []
    for stmt in find(body, "if_statement"):
        condition = stmt.child_by_field_name("condition")
        text = re.sub(r"/\*.*?\*/|//[^\n]*", " ", src.text(condition), flags=re.S) if condition is not None else ""
        value = " ".join(text.split()).strip("() ")
        branch = None
        if value in ("0", "false"):
            branch = stmt.child_by_field_name("consequence")
        elif value in ("1", "true"):
            branch = stmt.child_by_field_name("alternative")
        if branch is not None:
            spans.append((branch.start_byte, branch.end_byte))
    return spans


def _one_path(actions: list) -> list:
    """The mapping requests that one run can make: a request in a `return`, or in one arm of an if/else, ends its path."""
    if len(actions) < 2:
        return actions
    first, rest = actions[0], actions[1:]
    if _returns(first) or any(_exclusive(first, other) for other in rest):
        return _one_path(rest) if len(rest) > 1 else rest
    return actions


def _returns(call) -> bool:
    node = call.parent
    while node is not None and node.type in ("parenthesized_expression", "cast_expression"):
        node = node.parent
    return node is not None and node.type == "return_statement"


def _exclusive(a, b) -> bool:
    """Whether a and b sit in different arms of one if/else."""
    node = a.parent
    while node is not None:
        if node.type == "if_statement":
            consequence, alternative = node.child_by_field_name("consequence"), node.child_by_field_name("alternative")
            arms = [arm for arm in (consequence, alternative) if arm is not None]
            inside = [arm for arm in arms if arm.start_byte <= a.start_byte < arm.end_byte]
            other = [arm for arm in arms if arm.start_byte <= b.start_byte < arm.end_byte]
            if inside and other and inside[0] != other[0]:
                return True
        node = node.parent
    return False


def _locks_held_over(locks: list["LockCall"], deferred_lines: list[int]) -> list[tuple[int, str]]:
    """Lock calls of a lock held where a deferred request is made: taken before it, and not
    released on the way to it (a release in an early-return branch does not end it on this path)."""
    out = []
    for take in (lock for lock in locks if lock.name in _PAIRS):
        release = _PAIRS[take.name]
        ends = [lock.line for lock in locks if lock.name in release and not lock.exit_path and take.line < lock.line]
        for at in deferred_lines:
            if take.line < at and not any(line < at for line in ends) and \
                    (take.scope_end is None or at <= take.scope_end):
                out.append((take.line, take.name))
                out += [(lock.line, lock.name) for lock in locks if lock.name in release and lock.line > at][:1]
    return sorted(set(out))


def unbalanced(locks: list["LockCall"]) -> tuple[int, str] | None:
    """The first lock one body takes without releasing it on its way out, or releases without taking."""
    for take in (lock for lock in locks if lock.name in _PAIRS and _PAIRS[lock.name]):
        if not any(lock.name in _PAIRS[take.name] and not lock.exit_path and lock.line > take.line for lock in locks):
            return take.line, take.name
    taken = sum(1 for lock in locks if lock.name in _PAIRS)
    main_releases = [lock for lock in locks if not lock.exit_path and lock.name not in _PAIRS]
    if len(main_releases) > taken:
        return main_releases[0].line, main_releases[0].name
    return None


def _guarded_block_end(call) -> int | None:
    """The last line of the block a `scoped_guard(...) { ... }` holds its lock over (the parser sees
    the call as a statement of its own, the block as the next one); None for any other lock call."""
    if call.child_by_field_name("function").type != "identifier" or \
            call.child_by_field_name("function").text != b"scoped_guard":
        return None
    stmt = call.parent
    block = stmt.next_named_sibling if stmt is not None and stmt.type == "expression_statement" else None
    return block.end_point[0] + 1 if block is not None and block.type == "compound_statement" else None


def _on_exit_path(node, body) -> bool:
    """Inside a block (not the body itself) that ends by leaving the function: an early return."""
    while node is not None and node != body:
        if node.type == "compound_statement":
            last = [c for c in node.named_children if c.type != "comment"][-1:]
            if last and last[0].type in ("return_statement", "goto_statement"):
                return True
        node = node.parent
    return False


def _call(src, summary, node, body, vma, actions) -> None:
    callee = node.child_by_field_name("function")
    args = node.child_by_field_name("arguments")
    passes_vma = bool(vma) and args is not None and any(
        a.type == "identifier" and src.text(a) == vma for a in args.named_children)
    line = src.line(node)
    if callee.type == "call_expression":  # guard(mutex)(&lock)
        callee = callee.child_by_field_name("function")
    if callee.type == "parenthesized_expression" and _TYPE_NAME.fullmatch(src.text(callee).strip("() ")):
        return  # `(__u32)(x)` in a macro body: a cast the parser cannot tell from a call
    if callee.type != "identifier":
        text = " ".join(src.text(callee).split())
        if passes_vma and text.endswith("vm_ops->open"):
            summary.add(line, "e", "manual-open", f"calls {text}() by hand: per-mapping state, belongs in vm_ops->mapped")
        elif passes_vma:
            summary.add(line, "f", "delegates", f"hands the vma to the function pointer {text}")
            summary.delegates_to.append(text)
        else:
            summary.add(line, "i", "indirect-call", f"calls through the function pointer {text}")
        return
    name = src.text(callee)
    kind = kind_of(name)
    if kind is None:
        if passes_vma and name.endswith("_vma_open"):
            summary.add(line, "e", "manual-open", f"{name}(vma) opens the mapping by hand: belongs in vm_ops->mapped")
            return
        summary.pending.append(PendingCall(name, line, passes_vma, args=tuple(
            " ".join(src.text(a).split()) for a in args.named_children) if args is not None else ()))
        return
    spec = _RULES["kinds"][kind]
    if kind == "lock":
        summary.locks.append(LockCall(line, name, _on_exit_path(node, body), _guarded_block_end(node)))
        return
    if kind in ACTION_KINDS:
        actions.append(node)
        if kind == "remap" and _in_loop(node, body):
            summary.add(line, "i", "remap-loop", f"{name}() in a loop: several ranges need a human")
            return
    if kind == "delegate":
        summary.delegates_to.append(name)
    if kind not in SILENT_KINDS:
        summary.add(line, spec["category"], spec["code"], f"{name}(): {spec['message']}")


def _vma_use(src, summary, node, local) -> None:
    parent = node.parent
    line = src.line(node)
    if parent.type == "argument_list":
        return  # judged with the call
    if parent.type == "field_expression" and parent.child_by_field_name("argument") == node:
        member = src.text(parent.child_by_field_name("field"))
        if member not in _FIELDS:
            summary.add(line, "i", "vma-field", f"uses vma->{member}, which the descriptor does not have")
        return
    if parent.type == "assignment_expression" and parent.child_by_field_name("right") == node:
        return  # judged with the write
    summary.add(line, "i", "vma-value", f"uses the vma pointer as a value: `{' '.join(src.text(parent).split())[:60]}`")


def _write(src, summary, node, target, vma, local, arrays, positions) -> None:
    if target is None:
        return
    line = src.line(node)
    right = node.child_by_field_name("right") if node.type == "assignment_expression" else None
    stores_vma = right is not None and right.type == "identifier" and vma and src.text(right) == vma
    root, through_pointer, subscripted = _root_identifier(target)
    root_name = src.text(root) if root.type == "identifier" else None
    if vma and root_name == vma:
        if target.type == "field_expression" and target.child_by_field_name("argument").type == "identifier":
            member = src.text(target.child_by_field_name("field"))
            spec = _FIELDS.get(member)
            if spec is None or not spec["write"]:
                summary.add(line, "i", "vma-write", f"writes vma->{member}, which the descriptor cannot set")
            return
        summary.add(line, "i", "vma-write", f"writes through the vma: `{' '.join(src.text(target).split())[:60]}`")
        return
    # A write through `->` or `*` reaches memory that outlives the call, whatever the local's type
    # (a typedef can hide the pointer); a subscript stays local only on a local array.
    if root_name in local and not through_pointer and (not subscripted or root_name in arrays):
        if stores_vma:
            summary.add(line, "i", "vma-alias", f"copies the vma pointer into `{root_name}`")
        return
    what = " ".join(src.text(target).split())[:60]
    if stores_vma:
        summary.add(line, "e", "stores-vma", f"stores the vma pointer in `{what}`: per-mapping state")
    else:
        summary.evidence.append(Evidence(line, "e", "writes-state", f"writes `{what}`, outside the mapping: "
                                         "per-mapping state unless proven idempotent", positions.get(root_name)))


def _array_locals(src, fn) -> set[str]:
    out = set()
    for decl in find(fn, "declaration"):
        for d in decl.children_by_field_name("declarator"):
            node = d.child_by_field_name("declarator") if d.type == "init_declarator" else d
            if node is not None and node.type == "array_declarator":
                inner = node.child_by_field_name("declarator")
                if inner is not None and inner.type == "identifier":
                    out.add(src.text(inner))
    return out


_ARGUMENT_ROOT = re.compile(r"\s*(&?)\s*\(?\s*([A-Za-z_]\w*)")


def argument_memory(locals_: frozenset[str], arrays: frozenset[str], argument: str,
                    positions: dict[str, int] | None = None):
    """Whose memory a callee writes through `argument`: "local" (`&x` of an automatic local, a local
    array), the index of the caller's parameter it is, or None (memory that outlives the call)."""
    m = _ARGUMENT_ROOT.match(argument)
    if m is None:
        return None
    addressed, root = m.group(1) == "&", m.group(2)
    through_pointer = re.match(r"&?\s*\(?\s*\w+\s*->", argument)
    if addressed and root in locals_ and not through_pointer or root in arrays:
        return "local"
    return (positions or {}).get(root)


def absorb(caller: Summary, call: PendingCall, callee: Summary | None) -> None:
    """Resolve one pending call of `caller` that passes the vma: fold in the helper, or record the delegation.

    The helper's own calls that no kind covers become the caller's, with the
    chain that reaches them, for the effect analysis to prove or refuse.
    """
    if callee is None:
        caller.add(call.line, "f", "delegates", call.describe(f"hands the vma to {call.callee}(), outside the driver"))
        caller.delegates_to.append(call.callee)
        return
    for e in callee.evidence:
        caller.add(call.line, e.category, e.code, call.describe(f"via {callee.name}(): {e.message}"))
    caller.delegates_to.extend(callee.delegates_to)
    caller.locks.extend(LockCall(call.line, lock.name, False) for lock in callee.locks)
    for inner in callee.pending:
        if inner.passes_vma:
            # Deeper than one helper, the vma's path is not followed.
            caller.add(call.line, "f", "delegates", call.describe(
                f"via {callee.name}(): {inner.describe(f'hands the vma to {inner.callee}(), which mmapconv does not follow')}"))
            caller.delegates_to.append(inner.callee)
        else:
            caller.pending.append(PendingCall(inner.callee, call.line, False, (*call.via, callee.name, *inner.via),
                                              inner.near or callee.path))
