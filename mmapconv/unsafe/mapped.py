"""MMC401: per-mapping state moves from the callback into a generated vm_ops->mapped hook.

The state is what the scan's evidence calls per-mapping (category e) on a
statement of its own: a call that takes a counter or a reference, or the
vm_ops' own open hook called by hand. It moves only when its undo is in the
close hook of the vm_ops the callback sets, defined in the same file and used
by nothing else (or when nothing anywhere undoes it, and the note says so).
"""
from __future__ import annotations

import re

from ..edits import Edit, apply
from ..plan import leading_comment_start, top_declarations
from ..rules_data import load
from ..source import SourceFile, automatic_locals, decode, find, function_name, parameters
from ..style import pad_to
from . import FixRefused, NotMine, Rewrite, Target, unsafe_fix

_DATA = load("fixes")["mapped"]
_UNDO: dict[str, list[str]] = _DATA["undo"]
_FILE_READERS = set(_DATA["file_readers"])
_VMA_FIELDS: dict[str, str] = _DATA["vma_fields"]
_STATE_CODES = ("per-mapping-state", "manual-open")


@unsafe_fix("MMC401", answers=_STATE_CODES)
def state_to_mapped(t: Target) -> Rewrite:
    src, body = t.src, t.node.child_by_field_name("body")
    state_lines = sorted({e.line for e in t.evidence if e.code in _STATE_CODES})
    params = parameters(src, t.node)
    if len(params) != 2 or not params[0][1] or not params[1][1]:
        raise NotMine
    file_name, vma = params[0][1], params[1][1]
    ops_name = _assigned_vm_ops(src, body, vma, t.node)
    ops = _vm_ops_definition(src, ops_name)
    if ops is None:
        raise FixRefused(src.line(t.node), f"{ops_name} is not defined in this file: its .mapped cannot be set here")
    declaration, members = ops
    if "mapped" in members:
        raise FixRefused(src.line(declaration), f"{ops_name} already has a .mapped")
    if not any(src.text(c) == "static" for c in declaration.children if c.type == "storage_class_specifier"):
        raise FixRefused(src.line(declaration), f"{ops_name} is not static: other files may map with it")
    users = {function_name(src, _function_of(n)) or "?" for n in src.identifiers_named(ops_name)
             if _function_of(n) is not None}
    if users - {t.name}:
        other = sorted(users - {t.name})[0]
        raise FixRefused(src.line(declaration), f"{ops_name} is also used by {other}(): mapped() would run for its mappings too")

    statements = [_statement_on(src, body, line) for line in state_lines]
    if any(s is None for s in statements):
        raise FixRefused(state_lines[statements.index(None)], "the state is not a statement of its own")
    close = _defined(src, members.get("close"))
    open_hook = _defined(src, members.get("open"))
    calls = {id(stmt): _call(src, stmt) for stmt in statements}
    for stmt in statements:
        if calls[id(stmt)][0] is None:
            raise FixRefused(src.line(stmt), "the state is not a plain call")
    every_release = {u for pair in _UNDO.values() for u in pair}

    def releases(stmt) -> bool:
        callee = calls[id(stmt)][0]
        return callee in every_release or close is not None and callee != members.get("open") and \
            _reaches(src, close, {callee})

    taken = [s for s in statements if s.parent == body and not releases(s)]
    undone = [s for s in statements if s not in taken]
    for stmt in undone:
        if stmt.parent != body and not releases(stmt):
            raise FixRefused(src.line(stmt), f"`{' '.join(src.text(stmt).split())}` takes state on some paths only")
    if not taken:
        raise FixRefused(state_lines[0], "only the release of the state is here: where it is taken is elsewhere")
    _check_releases(src, body, taken, undone, calls)
    _check_taken_unconditionally(src, body, taken)
    _check_not_read_again(src, body, taken, undone, calls, vma)
    _check_same_configuration(src, declaration, t.node)
    moved_text, undo_text, plain = [], [], []
    for stmt in taken:
        callee, args = calls[id(stmt)]
        if open_hook is not None and callee == members.get("open"):
            if [src.text(a) for a in args] != [vma]:
                raise FixRefused(src.line(stmt), f"{callee}() is called with more than the vma")
            later = [n for n in find(body, "assignment_expression") if n.start_byte > stmt.end_byte
                     and src.text(n.child_by_field_name("left")).replace(" ", "") == f"{vma}->vm_private_data"]
            if later:
                raise FixRefused(src.line(later[0]), f"{callee}() runs before vm_private_data is set: in mapped() "
                                                     "it would see the value set after it")
            moved_text.append(_open_body(src, open_hook, file_name))
            undo_text.append(f"{members['close']}() in .close undoes it" if close is not None else
                             f"{ops_name} has no .close: the driver never undoes it")
            continue
        if any(src.text(i) == vma for i in find(stmt, "identifier")):
            raise FixRefused(src.line(stmt), f"{callee}() is handed the vma")
        plain.append(stmt)
        undo_text.append(_undo_place(src, t.node, stmt, calls, undone, close, ops_name))
    if plain:
        moved_text.append(_with_locals(src, body, plain, file_name, vma))
    moved = taken

    hook = re.sub(r"_mmap$", "", t.name) + "_mapped"
    if re.search(rb"\b" + hook.encode() + rb"\b", src.data):
        raise FixRefused(src.line(t.node), f"{hook} already exists in this file")
    edits = [_remove_line(src, s) for s in moved] + [e for s in undone for e in _remove_undo(src, s)]
    edits += _wire(src, declaration, hook, file_name)
    at = leading_comment_start(src, t.node)
    edits.append(Edit(at, at, _definition(hook, file_name, moved_text)))
    state = "; ".join(f"`{' '.join(src.text(s).split())}`" for s in moved)
    return Rewrite(apply(src.data, edits), set(state_lines),
                   {"state": state, "hook": hook, "vm_ops": ops_name, "undo": "; ".join(dict.fromkeys(undo_text))})


def _assigned_vm_ops(src: SourceFile, body, vma: str, fn) -> str:
    """X of the one `vma->vm_ops = &X` in the body."""
    names = set()
    for node in find(body, "assignment_expression"):
        left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
        if left.type == "field_expression" and src.text(left.child_by_field_name("argument")) == vma \
                and src.text(left.child_by_field_name("field")) == "vm_ops":
            text = src.text(right).replace(" ", "")
            if not re.fullmatch(r"&[A-Za-z_]\w*", text):
                raise FixRefused(src.line(node), f"vm_ops is set to `{src.text(right)}`, not a vm_operations_struct of this file")
            names.add(text[1:])
    if len(names) != 1:
        raise FixRefused(src.line(fn), f"the callback sets {'several vm_ops' if names else 'no vm_ops of its own'}: "
                                       "mapped() has no one place to go")
    return names.pop()


def _vm_ops_definition(src: SourceFile, name: str):
    """(the declaration, {member: value text}) of `struct vm_operations_struct name = {...}` in this file."""
    for decl in src.root.named_children:
        if decl.type != "declaration" or "vm_operations_struct" not in src.text(decl.child_by_field_name("type") or decl):
            continue
        for d in decl.children_by_field_name("declarator"):
            value = d.child_by_field_name("value") if d.type == "init_declarator" else None
            if value is None or value.type != "initializer_list" or src.text(d.child_by_field_name("declarator")) != name:
                continue
            members = {}
            for pair in value.named_children:
                designator = pair.child_by_field_name("designator") if pair.type == "initializer_pair" else None
                if designator is not None:
                    members[src.text(designator).lstrip(".").strip()] = src.text(pair.child_by_field_name("value")).strip()
            return decl, members
    return None


def _function_of(node):
    while node is not None and node.type != "function_definition":
        node = node.parent
    return node


def _defined(src: SourceFile, name: str | None):
    if not name:
        return None
    return next(iter(src.definitions_named(name)), None)


def _statement_on(src: SourceFile, body, line: int):
    """The expression statement of the body that starts on `line`."""
    for stmt in find(body, "expression_statement"):
        if src.line(stmt) == line:
            return stmt
    return None


def _call(src: SourceFile, stmt):
    expr = stmt.named_children[0] if stmt.named_children else None
    if expr is None or expr.type != "call_expression" or expr.child_by_field_name("function").type != "identifier":
        return None, []
    return src.text(expr.child_by_field_name("function")), list(expr.child_by_field_name("arguments").named_children)


def _file_uses_ok(src: SourceFile, node, file_name: str) -> None:
    """mapped() is given a const file: it may be read, or passed to what reads a const file."""
    for ident in find(node, "identifier"):
        if src.text(ident) == file_name:
            _const_file_use(src, ident)


def _const_file_use(src: SourceFile, node) -> None:
    """`node` (the file) read through a member, or passed to what takes a const file; else refused."""
    parent = node.parent
    if parent.type == "field_expression" and parent.child_by_field_name("argument") == node:
        return
    call = parent.parent if parent.type == "argument_list" else None
    callee = call.child_by_field_name("function") if call is not None else None
    if callee is None or src.text(callee) not in _FILE_READERS:
        raise FixRefused(src.line(node), f"`{src.text(parent)}` needs the file as more than a const file")


def _with_locals(src: SourceFile, body, statements: list, file_name: str, vma: str) -> str:
    """The statements, after the declarations of the locals they read (each from the file alone), once each."""
    declarations, locals_ = top_declarations(src, body), automatic_locals(src, body)
    needed, todo = [], list(statements)
    while todo:
        node = todo.pop()
        for ident in find(node, "identifier"):
            name = src.text(ident)
            if name not in locals_ or name in needed:
                continue
            decl = declarations.get(name)
            if decl is None or decl.children_by_field_name("declarator")[0].type != "init_declarator":
                raise FixRefused(src.line(node), f"`{name}` is not given its value where it is declared")
            if _assigned_again(src, body, name):
                raise FixRefused(src.line(decl), f"`{name}` changes in the callback: mapped() cannot recompute it")
            if any(src.text(i) == vma for i in find(decl, "identifier")):
                raise FixRefused(src.line(decl), f"`{name}` is read from the vma, which mapped() does not have")
            needed.append(name)
            todo.append(decl)
    lines = []
    for name in sorted(needed, key=lambda n: declarations[n].start_byte):
        decl = declarations[name]
        _file_uses_ok(src, decl, file_name)
        lines.append(src.text(decl))
    for stmt in statements:
        _file_uses_ok(src, stmt, file_name)
    return "\n\t".join(lines) + ("\n\n\t" if lines else "") + "\n\t".join(src.text(s) for s in statements)


def _first_argument(src: SourceFile, stmt, calls) -> str:
    args = calls[id(stmt)][1]
    return " ".join(src.text(args[0]).split()).lstrip("&").strip() if args else ""


def _check_releases(src: SourceFile, body, taken: list, undone: list, calls) -> None:
    """Each release the callback makes must be an error path's, after the take, of the same object."""
    for stmt in undone:
        if stmt.parent == body:
            raise FixRefused(src.line(stmt), f"`{' '.join(src.text(stmt).split())}` releases state on the "
                                             "callback's own path: mapped() cannot take its place")
        objects = {_first_argument(src, s, calls) for s in taken if s.start_byte < stmt.start_byte}
        if _first_argument(src, stmt, calls) not in objects:
            raise FixRefused(src.line(stmt), f"`{' '.join(src.text(stmt).split())}` releases what the callback "
                                             "did not take before it")


_NEGATIVE = re.compile(r"-\s*(?:E[A-Z0-9]+|\d+)")


def _check_taken_unconditionally(src: SourceFile, body, taken: list) -> None:
    """mapped() runs for every mapping: a take after an earlier successful return would now always run."""
    first = min(s.start_byte for s in taken)
    for ret in find(body, "return_statement"):
        value = ret.named_children[0] if ret.named_children else None
        if ret.start_byte < first and (value is None or not _NEGATIVE.fullmatch(src.text(value).replace(" ", ""))):
            raise FixRefused(src.line(ret), f"`{' '.join(src.text(ret).split())}` succeeds before the state is "
                                            "taken: mapped() would take it for that mapping too")


def _check_not_read_again(src: SourceFile, body, taken: list, undone: list, calls, vma: str) -> None:
    """What the callback goes on to read of the state (a limit check) would no longer count this mapping."""
    for stmt in taken:
        obj = _first_argument(src, stmt, calls)
        if not obj or obj == vma:
            continue
        pattern = re.compile(r"(?<![\w>.])" + re.escape(obj) + r"(?![\w])")
        for later in body.named_children:
            if later.start_byte <= stmt.start_byte or later in taken:
                continue
            text = src.text(later)
            for release in undone:
                if later.start_byte <= release.start_byte < later.end_byte:
                    text = text.replace(src.text(release), "")
            if pattern.search(" ".join(text.split())):
                raise FixRefused(src.line(later), f"`{obj}` is read after it is taken: without this mapping "
                                                  "counted, what the callback checks changes")


_DIRECTIVE = re.compile(rb"^[ \t]*#[ \t]*(if|ifdef|ifndef|elif|else|endif)\b", re.M)


def _check_same_configuration(src: SourceFile, declaration, fn) -> None:
    """The vm_ops and the callback in the same configuration: .mapped and mapped() exist together."""
    start, end = min(declaration.start_byte, fn.start_byte), max(declaration.end_byte, fn.end_byte)
    depth = 0
    for m in _DIRECTIVE.finditer(src.data, start, end):
        kind = m.group(1)
        if kind.startswith(b"if"):
            depth += 1
        elif kind == b"endif":
            depth -= 1
        if depth < 0 or depth == 0 and kind in (b"else", b"elif"):
            raise FixRefused(src.line_of(m.start()), "a preprocessor conditional separates the vm_ops from the "
                                                     "callback: mapped() would not exist wherever .mapped does")
    if depth != 0:
        raise FixRefused(src.line(fn), "a preprocessor conditional separates the vm_ops from the callback: "
                                       "mapped() would not exist wherever .mapped does")


def _assigned_again(src: SourceFile, body, name: str) -> bool:
    for node in find(body, "assignment_expression", "update_expression"):
        target = node.child_by_field_name("left") if node.type == "assignment_expression" else node.child_by_field_name("argument")
        if target is not None and src.text(target) == name:
            return True
    return False


def _open_body(src: SourceFile, hook, file_name: str) -> str:
    """The open hook's statements, reading mapped()'s parameters instead of the vma."""
    params = parameters(src, hook)
    if len(params) != 1 or "vm_area_struct" not in params[0][0]:
        raise FixRefused(src.line(hook), "the open hook does not take just the vma")
    vma = params[0][1]
    body = hook.child_by_field_name("body")
    ours = {file_name, "start", "end", "pgoff", "vm_private_data"}
    clash = sorted({src.text(i) for i in find(body, "identifier")} & ours)
    if clash:
        raise FixRefused(src.line(hook), f"the open hook uses the name `{clash[0]}`, a parameter of mapped()")
    edits = []
    for ident in find(body, "identifier"):
        if src.text(ident) != vma:
            continue
        parent = ident.parent
        field = src.text(parent.child_by_field_name("field")) if parent.type == "field_expression" else None
        if field not in _VMA_FIELDS:
            raise FixRefused(src.line(ident), f"the open hook uses the vma as `{src.text(parent)}`")
        if field == "vm_file":
            _const_file_use(src, parent)
        edits.append(Edit(parent.start_byte, parent.end_byte, _VMA_FIELDS[field].replace("FILE", file_name)))
    if any(s.type == "return_statement" for s in find(body, "return_statement")):
        raise FixRefused(src.line(hook), "the open hook returns early")
    text = decode(apply(src.data[body.start_byte:body.end_byte], edits, base=body.start_byte))
    # The hook's body is at the depth of mapped()'s: its lines stay as they are.
    inner = text[1:-1].strip("\n").lstrip("\t ")
    # `= (*vm_private_data);` reads better without the parentheses a whole initializer does not need.
    return re.sub(r"= \(\*vm_private_data\);", "= *vm_private_data;", inner)


def _undo_place(src: SourceFile, fn, stmt, calls, error_paths: list, close, ops_name: str) -> str:
    """Where the state is released: in .close (fine), elsewhere (refused), or nowhere (said).

    A release of the rules' pairs must name the same member (`atomic_dec(&dev->maps)` for
    `atomic_inc(&foo->maps)`); a driver's own pair is what its error path calls with the same argument.
    """
    callee = calls[id(stmt)][0]
    member = re.split(r"->|\.", _first_argument(src, stmt, calls))[-1]
    undo = {u: member for u in _UNDO.get(callee, [])}
    for release in error_paths:
        name = calls[id(release)][0]
        if name is not None and name not in undo:
            undo[name] = None
    if close is not None and _reaches(src, close, undo):
        return f"{function_name(src, close)}() in .close undoes it"
    elsewhere = [c for c in src.find("function_definition") if c != fn and _reaches(src, c, undo, depth=0)]
    if elsewhere:
        where = function_name(src, elsewhere[0])
        raise FixRefused(src.line(elsewhere[0]), f"{callee}() is undone in {where}(), not in {ops_name}.close: "
                                                 "moved into mapped() it would no longer pair with its release")
    return f"nothing in this file undoes {callee}(): check that it needs no release"


def _reaches(src: SourceFile, fn, names, depth: int = 2) -> bool:
    """Whether `fn` calls one of `names`, itself or through same-file helpers. `names` maps a name to the
    member its first argument must end in, or to None (any argument)."""
    wanted = names if isinstance(names, dict) else dict.fromkeys(names)
    for call in find(fn, "call_expression"):
        callee = src.text(call.child_by_field_name("function"))
        if callee in wanted:
            args = call.child_by_field_name("arguments").named_children
            member = wanted[callee]
            if member is None or args and re.search(r"(->|\.|^&?)" + re.escape(member) + r"$",
                                                    " ".join(src.text(args[0]).split())):
                return True
        helper = _defined(src, callee) if depth > 0 else None
        if helper is not None and helper != fn and _reaches(src, helper, wanted, depth - 1):
            return True
    return False


def _remove_line(src: SourceFile, stmt) -> Edit:
    """The statement's lines go; a blank line after them too when one is left before them."""
    start, end = src.line_span(stmt)
    before = src.data[src.data.rfind(b"\n", 0, max(start - 1, 0)) + 1:start]
    if before.strip() == b"" and src.data[end:end + 1] == b"\n" and start > 0:
        end += 1
    return Edit(start, end, "")


def _remove_undo(src: SourceFile, stmt) -> list[Edit]:
    """An error path's release goes; an `else` left empty goes with it."""
    parent = stmt.parent
    if parent.type == "else_clause":
        prev_end = parent.prev_sibling.end_byte if parent.prev_sibling is not None else parent.start_byte
        return [Edit(prev_end, parent.end_byte, "")]
    if parent.type == "compound_statement":
        return [_remove_line(src, stmt)]
    raise FixRefused(src.line(stmt), "the release of the state sits where it cannot simply go")


def _wire(src: SourceFile, declaration, hook: str, file_name: str) -> list[Edit]:
    """The prototype above the vm_ops, and `.mapped = hook,` on the line before its closing brace (after
    any `#endif`: set in every configuration), laid out like its last member."""
    init = next(d.child_by_field_name("value") for d in declaration.children_by_field_name("declarator")
                if d.type == "init_declarator")
    pairs = [p for p in init.named_children if p.type == "initializer_pair"]
    close_line = src.data.rfind(b"\n", 0, init.end_byte - 1) + 1
    if not pairs or src.data[close_line:init.end_byte - 1].strip():
        raise FixRefused(src.line(declaration), "the vm_ops initializer has no member lines to add .mapped after")
    last = pairs[-1]
    line_start = src.data.rfind(b"\n", 0, last.start_byte) + 1
    layout = decode(src.data[line_start:last.child_by_field_name("value").start_byte])
    designator = src.text(last.child_by_field_name("designator"))
    indent = layout[:len(layout) - len(layout.lstrip())]
    eq = layout.index("=", len(indent) + len(designator))
    member_line = _aligned(indent + ".mapped", layout[len(indent) + len(designator):eq], len(layout[:eq].expandtabs(8)))
    member_line = _aligned(member_line + "=", layout[eq + 1:], len(layout.expandtabs(8)))
    comma_at = last.end_byte
    after = src.data[comma_at:comma_at + 1]
    edits = [] if after == b"," else [Edit(comma_at, comma_at, ",")]
    edits.append(Edit(close_line, close_line, f"{member_line}{hook},\n"))
    at = src.data.rfind(b"\n", 0, declaration.start_byte) + 1
    edits.append(Edit(at, at, _signature(hook, file_name) + ";\n\n"))
    return edits


def _aligned(head: str, gap: str, column: int) -> str:
    """`head` and blanks like `gap` up to `column` when `gap` aligned something (tabs, or several blanks)."""
    if "\t" not in gap and len(gap) <= 1:
        return head + gap
    return head + pad_to(head, column, "\t" in gap)


def _signature(hook: str, file_name: str) -> str:
    head = f"static int {hook}("
    pad = "\t" * (len(head) // 8) + " " * (len(head) % 8)
    return f"{head}unsigned long start, unsigned long end, pgoff_t pgoff,\n{pad}const struct file *{file_name}, void **vm_private_data)"


def _definition(hook: str, file_name: str, statements: list[str]) -> str:
    body = "\n\n\t".join(statements)
    return f"{_signature(hook, file_name)}\n{{\n\t{body}\n\treturn 0;\n}}\n\n"
