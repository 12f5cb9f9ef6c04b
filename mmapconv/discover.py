"""Finds the mmap members of ops-struct initializers in one parsed file.

Three shapes: a designated initializer in a declaration (or compound literal),
a `#define` whose body sets the member (expanded at each use outside a
`#define`), and object-like `#define a b` aliases that stand between the
initializer and the function.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .rules_data import load
from .source import SourceFile, ancestor, decode, split_top_level

_DISCOVERY = load("discovery")
MEMBERS = frozenset(_DISCOVERY["members"])
TARGET_STRUCT = _DISCOVERY["target_struct"]
TARGET_MEMBER = _DISCOVERY["target_member"]


def member_pattern(members) -> re.Pattern:
    """Bytes that must be in a file before it is worth parsing."""
    return re.compile(rb"\.(?:" + b"|".join(m.encode() for m in sorted(members)) + rb")\s*=")


PREFILTER_ALL = member_pattern(MEMBERS)
PREFILTER_TARGET = member_pattern([TARGET_MEMBER])

_MEMBER_IN_MACRO = re.compile(
    r"\.(" + "|".join(sorted(MEMBERS)) + r")(\s*=\s*)([^,}\\\n]+?)\s*(?=[,}\\\n]|$)"
)
_STRUCT_DECL = re.compile(r"struct\s+(\w+)\s+[^;={}]*=\s*\{|\(\s*(?:const\s+)?struct\s+(\w+)\s*\)\s*\{")
_IDENT = re.compile(r"[A-Za-z_]\w*$")


@dataclass
class Instance:
    """One `.mmap = value` that a compiled initializer will contain."""
    path: str            # file holding the declaration (the expansion site for macros)
    line: int
    struct: str | None   # None: could not tell (reported, never converted)
    member: str
    function: str        # the value as written, after macro argument substitution
    via_macro: str | None = None
    # Where the text `.member = value` lives (a header for macro instances).
    text_path: str = ""
    member_span: tuple[int, int] = (0, 0)
    value_span: tuple[int, int] = (0, 0)


@dataclass
class MacroMember:
    member: str
    template: str          # value text in the body, may name macro parameters or use ##
    struct: str | None     # declared in the body, or None for a fragment of designators
    member_span: tuple[int, int]
    value_span: tuple[int, int]


@dataclass
class MacroDef:
    name: str
    params: list[str] | None
    path: str
    line: int
    members: list[MacroMember] = field(default_factory=list)
    body: str = ""


def _struct_of_initializer(src: SourceFile, node) -> str | None:
    """The struct type an initializer list belongs to, from its declaration.

    Nested in `.member = { ... }`, the answer is `outer.member`: the caller
    looks the member's type up in the struct definitions it has seen.
    """
    if node is None:
        return None  # a designator with no initializer list around it: broken input
    kinds = ("declaration", "compound_literal_expression", "initializer_pair", "function_definition")
    holder = ancestor(node, *kinds)
    member = None
    while holder is not None and holder.type == "initializer_pair":
        designator = holder.child_by_field_name("designator")
        if member is None and designator is not None and designator.type == "field_designator":
            member = src.text(designator)[1:].strip()
        elif designator is not None and designator.type == "field_designator":
            return None  # two levels deep: not something the kernel does for fops
        holder = ancestor(holder, *kinds)
    if holder is None or holder.type == "function_definition":
        return None
    type_node = holder.child_by_field_name("type")
    if type_node is not None and type_node.type == "type_descriptor":
        type_node = type_node.child_by_field_name("type")
    if type_node is None or type_node.type != "struct_specifier" or type_node.child_by_field_name("name") is None:
        return None
    outer = src.text(type_node.child_by_field_name("name"))
    return f"{outer}.{member}" if member else outer


def embedded_structs(src: SourceFile) -> dict[str, str]:
    """`outer.member` -> struct type, for struct members embedded by value."""
    out = {}
    for spec in src.find("struct_specifier"):
        name, body = spec.child_by_field_name("name"), spec.child_by_field_name("body")
        if name is None or body is None:
            continue
        for fld in body.named_children:
            ftype = fld.child_by_field_name("type") if fld.type == "field_declaration" else None
            if ftype is None or ftype.type != "struct_specifier" or ftype.child_by_field_name("name") is None:
                continue
            for d in fld.children_by_field_name("declarator"):
                if d.type == "field_identifier":
                    out[f"{src.text(name)}.{src.text(d)}"] = src.text(ftype.child_by_field_name("name"))
    return out


def _direct_instances(src: SourceFile) -> list[Instance]:
    out = []
    for pair in src.find("initializer_pair"):
        designator = pair.child_by_field_name("designator")
        value = pair.child_by_field_name("value")
        if designator is None or value is None or designator.type != "field_designator":
            continue
        member = src.text(designator)[1:].strip()
        if member not in MEMBERS:
            continue
        initializer = ancestor(pair, "initializer_list")
        out.append(Instance(
            path=src.path, line=src.line(pair), struct=_struct_of_initializer(src, initializer),
            member=member, function=src.text(value), text_path=src.path,
            member_span=(designator.start_byte, designator.end_byte),
            value_span=(value.start_byte, value.end_byte),
        ))
    return out


def _macro_defs(src: SourceFile) -> tuple[list[MacroDef], dict[str, list[str]]]:
    macros, aliases = [], {}
    for node in src.find("preproc_def", "preproc_function_def"):
        name = src.text(node.child_by_field_name("name"))
        value = node.child_by_field_name("value")
        if value is None:
            continue
        body = src.text(value)
        if node.type == "preproc_def" and _IDENT.match(body.strip()):
            aliases.setdefault(name, []).append(body.strip())
            continue
        params = None
        if node.type == "preproc_function_def":
            params = [src.text(p) for p in node.child_by_field_name("parameters").named_children]
        macro = MacroDef(name, params, src.path, src.line(node), body=body)
        for m in _MEMBER_IN_MACRO.finditer(body):
            decls = [d for d in _STRUCT_DECL.finditer(body, 0, m.start())]
            struct = (decls[-1].group(1) or decls[-1].group(2)) if decls else None
            base = value.start_byte
            # Offsets are in characters of `body`; kernel headers here are ASCII in practice.
            macro.members.append(MacroMember(
                member=m.group(1), template=m.group(3).strip(), struct=struct,
                member_span=(base + m.start(), base + m.start() + 1 + len(m.group(1))),
                value_span=(base + m.start(3), base + m.start(3) + len(m.group(3).strip())),
            ))
        if macro.members:
            macros.append(macro)
    return macros, aliases


def substitute(template: str, params: list[str] | None, args: list[str]) -> str:
    """Expand one macro-body value: parameters replaced, `##` pasted."""
    if not params:
        return template
    table = dict(zip(params, args))
    parts = [p.strip() for p in template.split("##")]
    return "".join(table.get(p, p) for p in parts)


def expand_sites(src: SourceFile, macros: dict[str, MacroDef]) -> tuple[list[Instance], list[MacroDef]]:
    """Instances produced where `macros` are used in `src`.

    A use inside another `#define` makes that macro one that sets the member
    too; it is returned so the caller can expand it where it is used.
    """
    if not macros:
        return [], []
    pattern = re.compile(rb"\b(" + b"|".join(re.escape(n.encode()) for n in macros) + rb")\b")
    instances, derived = [], {}
    for m in pattern.finditer(src.data):
        macro = macros[m.group(1).decode()]
        node = src.root.descendant_for_byte_range(m.start(), m.end())
        definition = ancestor(node, "preproc_def", "preproc_function_def") if node is not None else None
        if definition is not None and src.text(definition.child_by_field_name("name")) == macro.name:
            continue
        if node is not None and node.type in ("comment", "string_literal", "string_content"):
            continue
        args: list[str] = []
        if macro.params is not None:
            call = re.compile(rb"\s*\(").match(src.data, m.end())
            if not call:
                continue
            close = _matching_paren(src.data, call.end() - 1)
            if close < 0:
                continue
            args = [a.strip() for a in split_top_level(decode(src.data[call.end():close]))]
        if definition is not None:
            outer_name = src.text(definition.child_by_field_name("name"))
            outer = derived.get(outer_name)
            if outer is None:
                params = definition.child_by_field_name("parameters")
                outer = MacroDef(outer_name, [src.text(p) for p in params.named_children] if params else None,
                                 src.path, src.line(definition), body=src.text(definition))
                derived[outer_name] = outer
            outer_body = outer.body
            for mm in macro.members:
                decls = list(_STRUCT_DECL.finditer(outer_body))
                outer.members.append(MacroMember(
                    member=mm.member, template=substitute(mm.template, macro.params, args),
                    struct=mm.struct or ((decls[-1].group(1) or decls[-1].group(2)) if decls else None),
                    member_span=mm.member_span, value_span=mm.value_span,
                ))
            continue
        for mm in macro.members:
            struct = mm.struct
            if struct is None and node is not None:
                # A fragment inside `{ ... }`, or the whole initializer: `struct x y = MACRO;`.
                initializer = node if node.type == "initializer_list" else ancestor(node, "initializer_list")
                struct = _struct_of_initializer(src, initializer or node)
            instances.append(Instance(
                path=src.path, line=src.line_of(m.start()), struct=struct, member=mm.member,
                function=substitute(mm.template, macro.params, args), via_macro=macro.name,
                text_path=macro.path, member_span=mm.member_span, value_span=mm.value_span,
            ))
    return instances, list(derived.values())


def _matching_paren(data: bytes, open_at: int) -> int:
    depth = 0
    for i in range(open_at, min(len(data), open_at + 4096)):
        c = data[i]
        if c == 0x28:
            depth += 1
        elif c == 0x29:
            depth -= 1
            if depth == 0:
                return i
    return -1


@dataclass
class FileDiscovery:
    instances: list[Instance]
    macros: list[MacroDef]
    aliases: dict[str, list[str]]
    embedded: dict[str, str]


def discover(src: SourceFile, outside_macros: dict[str, MacroDef]) -> FileDiscovery:
    """Direct instances, the file's own member-setting macros and their uses, and aliases."""
    instances = _direct_instances(src)
    # Direct pairs found inside #define bodies are macro members, not instances.
    instances = [i for i in instances if ancestor(
        src.root.descendant_for_byte_range(*i.member_span), "preproc_def", "preproc_function_def") is None]
    own, aliases = _macro_defs(src)
    known = dict(outside_macros)
    known.update({m.name: m for m in own})
    all_macros = list(own)
    while known:
        found, derived = expand_sites(src, known)
        instances.extend(found)
        new = [d for d in derived if d.name not in {m.name for m in all_macros}]
        all_macros.extend(new)
        known = {d.name: d for d in new}
    embedded = embedded_structs(src) if any(i.struct and "." in i.struct for i in instances) else {}
    return FileDiscovery(instances, all_macros, aliases, embedded)
