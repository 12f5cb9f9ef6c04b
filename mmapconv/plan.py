"""Plans the conversion of one mmap callback definition into mmap_prepare.

The plan is all or nothing: if any part of the body cannot be rewritten, or a
use of the vma would survive, the function is refused with the line and the
reason, and no edit is made.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .classify import Summary, dead_branches
from .edits import Edit, apply, inside
from .source import SourceFile, count_errors, decode, encode, find, function_declarator, function_name, parameters, parse
from .transforms import Context, Refusal, edits_for
from .style import realign, wrap_line
from .transforms.action import action_edits, find_action

NEW_SUFFIX = "_prepare"


@dataclass
class FunctionPlan:
    name: str
    new_name: str
    edits: list[Edit]


def _identifiers(node, text: bytes) -> list[tuple[str, int]]:
    return [(decode(text[n.start_byte:n.end_byte]), n.start_point[0]) for n in find(node, "identifier")]


def _leftover(text: bytes, tree, vma: str) -> tuple[int, str] | None:
    """Where the vma survives the rewrite, and how: as a helper's argument or otherwise."""
    for n in find(tree.root_node, "identifier"):
        if decode(text[n.start_byte:n.end_byte]) != vma:
            continue
        if n.parent.type == "argument_list":
            callee = n.parent.parent.child_by_field_name("function")
            name = decode(text[callee.start_byte:callee.end_byte])
            return n.start_point[0], (f"hands the vma to {name}(); convert that helper with it, by hand")
        return n.start_point[0], f"`{vma}` would remain in the converted function"
    return None


def plan_function(src: SourceFile, fn, summary: Summary, level: str) -> FunctionPlan:
    declarator = function_declarator(fn)
    if declarator is None or declarator.has_error or fn.child_by_field_name("body") is None:
        # The signature is what every edit hangs on: one the parser had to guess at is not rewritten.
        # (A macro such as container_of(p, struct t, m) in the body is an ERROR the edits never touch.)
        raise Refusal(src.line(fn), "the signature does not parse cleanly")
    name = function_name(src, fn)
    params = parameters(src, fn)
    if len(params) != 2 or "vm_area_struct" not in params[1][0] or params[0][0].replace("const ", "") != "struct file*":
        raise Refusal(src.line(fn), "signature is not (struct file *, struct vm_area_struct *)")
    vma, file_param = params[1][1], params[0][1] or None
    new_name = name + NEW_SUFFIX
    if re.search(rb"\b" + new_name.encode() + rb"\b", src.data):
        raise Refusal(src.line(fn), f"{new_name} already exists in this file")
    body = fn.child_by_field_name("body")
    if any(src.text(n) == "desc" for n in find(body, "identifier")):
        raise Refusal(src.line(fn), "the body already uses the name `desc`")
    ctx = Context(src, fn, vma, file_param, level, new_name=new_name)

    dead_spans = set(dead_branches(src, body))
    dead = [stmt for stmt in body.named_children if _is_dead(stmt, dead_spans)]
    edits: list[Edit] = _helper_edits(src, fn, ctx, level) + _dead_code_edits(src, dead)
    handled: set[int] = {stmt.id for stmt in dead}
    call = find_action(ctx, body)
    if call is not None:
        action, covered = action_edits(ctx, body, call)
        handled |= covered
        edits += action
    for stmt in body.named_children:
        if stmt.id not in handled:
            edits += edits_for(ctx, stmt)

    declarator = function_declarator(fn)
    edits.append(Edit(declarator.child_by_field_name("declarator").start_byte,
                      declarator.child_by_field_name("declarator").end_byte, new_name))
    plist = declarator.child_by_field_name("parameters")
    edits.append(Edit(plist.start_byte, plist.end_byte, "(struct vm_area_desc *desc)"))

    edits = _drop_unused_locals(src, fn, body, edits)
    edits += _file_local(src, fn, body, edits, file_param)
    edits += _kernel_doc_edits(src, fn, {vma: "desc", file_param: None}, (name, new_name))
    if ctx.preamble:
        at = leading_comment_start(src, fn)
        edits.append(Edit(at, at, "".join(p + "\n" for p in ctx.preamble)))
    edits = _wrapped(src, fn, edits)
    _check(src, fn, edits, vma)
    return FunctionPlan(name, new_name, edits)


def _wrapped(src: SourceFile, fn, edits: list[Edit]) -> list[Edit]:
    """Lines the rewrite made longer than 80 columns are wrapped, and the continuation lines under a
    parenthesis it moved are realigned; then the function is one edit."""
    old_lines = set(src.data[fn.start_byte:fn.end_byte].split(b"\n"))
    new = decode(_new_function(src, fn, edits)).split("\n")
    changed = {i for i, line in enumerate(new) if encode(line) not in old_lines}
    wrapped = "\n".join(line if i not in changed else wrap_line(line) for i, line in enumerate(new)).split("\n")
    changed = {i for i, line in enumerate(wrapped) if encode(line) not in old_lines}
    wrapped = realign(wrapped, changed)
    if wrapped == new:
        return edits
    outside = [e for e in edits if not inside(e, fn.start_byte, fn.end_byte)]
    return outside + [Edit(fn.start_byte, fn.end_byte, "\n".join(wrapped))]


def _is_dead(stmt, dead_spans: set[tuple[int, int]]) -> bool:
    consequence = stmt.child_by_field_name("consequence") if stmt.type == "if_statement" else None
    return consequence is not None and (consequence.start_byte, consequence.end_byte) in dead_spans


def _dead_code_edits(src: SourceFile, dead: list) -> list[Edit]:
    """`if (0) { ... }` directly in the body never runs: it goes, whole lines, and the locals only it used follow."""
    edits = []
    for stmt in dead:
        if stmt.child_by_field_name("alternative") is not None:
            raise Refusal(src.line(stmt), "a constant condition with an else branch: remove the dead branch by hand")
        start, end = src.line_span(stmt)
        if src.data[start - 2:start] == b"\n\n" and src.data[end:end + 1] == b"\n":
            end += 1   # a blank line on each side would leave two in a row
        edits.append(Edit(start, end, ""))
    return edits


def _helper_edits(src: SourceFile, fn, ctx: Context, level: str) -> list[Edit]:
    """Same-file helpers that receive the vma convert with the function: their parameter becomes the desc.

    Only a helper that nothing else references, that takes the vma as a plain
    parameter and that requests no mapping itself (the request must stay the
    callback's last act) qualifies; any other is left to the leftover check.
    A helper defined once per configuration (`#ifdef CONFIG_MMU` ... `#else`)
    converts in every definition.
    """
    definitions: dict[str, list] = {}
    for d in src.find("function_definition"):
        definitions.setdefault(function_name(src, d), []).append(d)
    edits = []
    for call in find(fn.child_by_field_name("body"), "call_expression"):
        callee = call.child_by_field_name("function")
        args = call.child_by_field_name("arguments").named_children
        positions = [i for i, a in enumerate(args) if ctx.is_vma(a)]
        name = src.text(callee) if callee.type == "identifier" else None
        helpers = definitions.get(name, [])
        if not positions or not helpers or fn in helpers:
            continue
        uses = src.identifiers_named(name)
        if len(uses) != len(helpers) + 1:
            raise Refusal(src.line(call), f"hands the vma to {name}(), which is also used elsewhere")
        new_name = helper_name(name)
        if re.search(rb"\b" + new_name.encode() + rb"\b", src.data):
            raise Refusal(src.line(helpers[0]), f"{new_name} already exists in this file")
        for helper in helpers:
            edits += _helper_definition_edits(src, helper, name, new_name, positions, call, level)
        ctx.renamed[callee.id] = new_name
        ctx.passes_desc.add(args[positions[0]].id)
    return edits


def _helper_definition_edits(src: SourceFile, helper, name: str, new_name: str, positions: list[int], call,
                             level: str) -> list[Edit]:
    """One definition of a helper converted with its callback: renamed, its vma parameter the descriptor."""
    params = parameters(src, helper)
    index = positions[0]
    if len(positions) != 1 or index >= len(params) or "vm_area_struct" not in params[index][0]:
        raise Refusal(src.line(call), f"hands the vma to {name}() in a way mmapconv does not follow")
    hbody = helper.child_by_field_name("body")
    hctx = Context(src, helper, params[index][1], None, level, new_name=name)
    if any(src.text(n) == "desc" for n in find(hbody, "identifier")):
        raise Refusal(src.line(helper), f"{name}() already uses the name `desc`")
    if find_action(hctx, hbody) is not None:
        raise Refusal(src.line(helper), f"{name}() requests the mapping itself; it must stay the callback's last act")
    declarator = function_declarator(helper)
    pnode = [p for p in declarator.child_by_field_name("parameters").named_children
             if p.type == "parameter_declaration"][index]
    name_node = declarator.child_by_field_name("declarator")
    edits = [Edit(pnode.start_byte, pnode.end_byte, "struct vm_area_desc *desc"),
             Edit(name_node.start_byte, name_node.end_byte, new_name)]
    edits += _kernel_doc_edits(src, helper, {hctx.vma: "desc"}, (name, new_name))
    for stmt in hbody.named_children:
        edits += edits_for(hctx, stmt)
    edits = _wrapped(src, helper, edits)
    _check(src, helper, edits, hctx.vma)
    return edits


def helper_name(name: str) -> str:
    """Upstream's name for a helper that now takes the descriptor: relay_mmap_buf -> relay_mmap_prepare_buf."""
    return name.replace("_mmap", "_mmap" + NEW_SUFFIX, 1) if "_mmap" in name else name + NEW_SUFFIX


def _new_function(src: SourceFile, fn, edits: list[Edit]) -> bytes:
    own = [e for e in edits if inside(e, fn.start_byte, fn.end_byte)]
    return apply(src.data[fn.start_byte:fn.end_byte], own, base=fn.start_byte)


def top_declarations(src: SourceFile, body) -> dict:
    """Single-variable declarations directly in the body: name -> node."""
    out = {}
    for stmt in body.named_children:
        if stmt.type != "declaration":
            continue
        declarators = stmt.children_by_field_name("declarator")
        if len(declarators) != 1:
            continue
        d = declarators[0]
        while d is not None and d.type != "identifier":
            d = d.child_by_field_name("declarator")
        if d is not None:
            out[src.text(d)] = stmt
    return out


def _drop_unused_locals(src: SourceFile, fn, body, edits: list[Edit]) -> list[Edit]:
    """Locals whose every use went away with the rewrite (a size, a ret) are removed."""
    for _ in range(3):
        text = _new_function(src, fn, edits)
        tree = parse(text)
        used: dict[str, int] = {}
        for ident, _line in _identifiers(tree.root_node, text):
            used[ident] = used.get(ident, 0) + 1
        removed = False
        for local, decl in top_declarations(src, body).items():
            if used.get(local, 0) == 1 and not any(e.start == decl.start_byte and e.text == "" for e in edits):
                start, end = src.line_span(decl)
                before = src.data[:start].rstrip(b" \t")
                if before.endswith(b"{\n") and src.data[end:end + 1] == b"\n":
                    end += 1  # no blank line left right after the opening brace
                edits = [e for e in edits if not inside(e, start, end)] + [Edit(start, end, "")]
                removed = True
        if not removed:
            break
    return edits


def _file_local(src: SourceFile, fn, body, edits, file_param) -> list[Edit]:
    """`struct file *file = desc->file;` when the converted body still uses the file."""
    if not file_param:
        return []
    text = _new_function(src, fn, edits)
    tree = parse(text)
    bodies = find(tree.root_node, "compound_statement")
    if not bodies or not any(i == file_param for i, _ in _identifiers(bodies[0], text)):
        return []
    first = next((s for s in body.named_children), None)
    at = src.data.find(b"\n", body.start_byte) + 1
    indent = src.indent(first) if first is not None else "\t"
    blank = "" if first is not None and first.type == "declaration" else "\n"
    return [Edit(at, at, f"{indent}struct file *{file_param} = desc->file;\n{blank}")]


_DESC_DOC = "the mapping being described"


def _kernel_doc_edits(src: SourceFile, fn, params: dict[str | None, str | None],
                      rename: tuple[str, str] | None = None) -> list[Edit]:
    """A kernel-doc comment right above the function follows it: its name line, `@vma:` becomes
    `@desc:`, a parameter that went away loses its line. Multi-line descriptions are left alone."""
    prev = fn.prev_sibling
    if prev is None or prev.type != "comment" or not src.text(prev).startswith("/**") or \
            src.data[prev.end_byte:fn.start_byte].strip():
        return []
    edits = []
    lines = src.data[prev.start_byte:prev.end_byte].split(b"\n")
    offset = prev.start_byte
    for i, line in enumerate(lines):
        m = re.match(rb"(\s*\*\s*@)(\w+)(:\s*)(.*)$", line)
        follow = lines[i + 1] if i + 1 < len(lines) else b""
        continued = re.match(rb"\s*\*\s+\S", follow) and not re.match(rb"\s*\*\s*@", follow) \
            and not follow.strip().startswith(b"*/")
        title = re.match(rb"(\s*(?:/\*\*)?\s*\*?\s*)(\w+)(\(\))?(\s*:?\s*-)", line) if i < 2 else None
        if rename and title and decode(title.group(2)) == rename[0]:
            at = offset + title.start(2)
            edits.append(Edit(at, at + len(rename[0]), rename[1]))
        if m and decode(m.group(2)) in params and not continued:
            new = params[decode(m.group(2))]
            if new is None:
                edits.append(Edit(offset, offset + len(line) + 1, ""))
            else:
                edits.append(Edit(offset, offset + len(line), f"{decode(m.group(1))}{new}{decode(m.group(3))}{_DESC_DOC}"))
        offset += len(line) + 1
    return edits


def leading_comment_start(src: SourceFile, fn) -> int:
    """The start of the line where `fn` and the comments right above it begin."""
    prev = fn.prev_sibling
    start = fn.start_byte
    while prev is not None and prev.type == "comment" and src.data[prev.end_byte:start].strip() == b"":
        start = prev.start_byte
        prev = prev.prev_sibling
    return src.data.rfind(b"\n", 0, start) + 1


def _check(src: SourceFile, fn, edits: list[Edit], vma: str) -> None:
    text = _new_function(src, fn, edits)
    tree = parse(text)
    left = _leftover(text, tree, vma)
    if left is not None:
        raise Refusal(src.line(fn) + left[0], left[1])
    if count_errors(tree.root_node) > count_errors(parse(src.data[fn.start_byte:fn.end_byte]).root_node):
        raise Refusal(src.line(fn), "the converted function does not parse")

