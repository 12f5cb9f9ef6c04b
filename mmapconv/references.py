"""The references to a converted function outside its body, and what each becomes.

Prototypes, EXPORT_SYMBOL*, `#define x fn` aliases and the other config's
`#define fn NULL` (or `#define fn generic_file_mmap`, which moves to its twin) are renamed; initializers are the caller's (it knows the
instances). Any other use, a direct call above all, cannot follow the new
signature: it raises UnknownReference and the function is refused.
"""
from __future__ import annotations

import re

from .edits import Edit
from .rules_data import load
from .source import SourceFile

_EXPORT = re.compile(r"EXPORT_SYMBOL\w*")
_TWINS = load("calls")["twins"]
NEW_PARAMETERS = "(struct vm_area_desc *desc)"


class UnknownReference(Exception):
    def __init__(self, path: str, line: int, message: str):
        super().__init__(message)
        self.path, self.line, self.message = path, line, message


def _drop_extern(src: SourceFile, declarator) -> list[Edit]:
    """`extern` on a prototype the conversion rewrites goes: checkpatch asks for it on every new line."""
    declaration = declarator.parent
    while declaration is not None and declaration.type not in ("declaration", "translation_unit"):
        declaration = declaration.parent
    if declaration is None or declaration.type != "declaration":
        return []
    for child in declaration.children:
        if child.type == "storage_class_specifier" and src.text(child) == "extern":
            end = child.end_byte
            while src.data[end:end + 1] in (b" ", b"\t"):
                end += 1
            return [Edit(child.start_byte, end, "")]
    return []


def reference_edits(src: SourceFile, name: str, new_name: str, defined_here: bool,
                    covered: list[tuple[int, int]]) -> list[Edit]:
    """Edits for every use of `name` in `src` outside the `covered` byte ranges."""
    out = []
    for node in src.identifiers_named(name):
        if any(s <= node.start_byte and node.end_byte <= e for s, e in covered):
            continue
        parent = node.parent
        if parent.type == "function_declarator" and parent.parent is not None and \
                parent.parent.type == "function_definition":
            if defined_here:
                continue  # the definition itself: the plan rewrote it
            raise UnknownReference(src.path, src.line(node), f"another definition of {name}")
        if parent.type == "preproc_def" and parent.child_by_field_name("name") == node:
            value = parent.child_by_field_name("value")
            target = src.text(value).strip() if value is not None else ""
            if target in ("NULL", "0"):
                out.append(Edit(node.start_byte, node.end_byte, new_name))  # the other config's NULL
                continue
            if target in _TWINS:
                # The other config's `#define foo_mmap generic_file_mmap`: both names move on together.
                out += [Edit(node.start_byte, node.end_byte, new_name),
                        Edit(value.start_byte, value.end_byte, _TWINS[target]["prepare"])]
                continue
        if parent.type == "function_declarator":
            params = parent.child_by_field_name("parameters")
            out += [Edit(node.start_byte, node.end_byte, new_name),
                    Edit(params.start_byte, params.end_byte, NEW_PARAMETERS)]
            out += _drop_extern(src, parent)
            continue
        call = parent.parent if parent.type == "argument_list" else None
        if call is not None and call.type == "call_expression" and \
                _EXPORT.fullmatch(src.text(call.child_by_field_name("function"))):
            out.append(Edit(node.start_byte, node.end_byte, new_name))
            continue
        raise UnknownReference(src.path, src.line(node), f"{name} is used here: `{' '.join(src.text(parent).split())[:60]}`")
    for define in src.find("preproc_def", "preproc_function_def"):
        value = define.child_by_field_name("value")
        if value is None:
            continue
        body = src.text(value)
        uses = [value.start_byte + m.start() for m in re.finditer(r"\b" + re.escape(name) + r"\b", body)]
        uses = [at for at in uses if not any(s <= at < e for s, e in covered)]
        if not uses:
            continue
        if define.type == "preproc_def" and body.strip() == name:
            out.append(Edit(uses[0], uses[0] + len(name), new_name))
            continue
        raise UnknownReference(src.path, src.line(define),
                               f"{name} is used in the macro {src.text(define.child_by_field_name('name'))}")
    return out
