"""One C file: its bytes, a tree-sitter parse of them, and helpers to read nodes.

tree-sitter-c does not model conditional directives that sit inside an
initializer list or an expression; it mis-parses the entry after them. We
therefore parse a copy in which `#if/#ifdef/#ifndef/#elif/#else/#endif` lines
are blanked to spaces: byte offsets stay those of the original, both branches
of a conditional are seen (which is the conservative view), and every edit
computed on the parse applies to the original bytes unchanged.
"""
from __future__ import annotations

import bisect
import itertools
import re
import time
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

import tree_sitter
import tree_sitter_c

_CONDITIONAL = re.compile(
    rb"^[ \t]*#[ \t]*(?:if|ifdef|ifndef|elif|elifdef|elifndef|else|endif)\b(?:[^\n]*\\\n)*[^\n]*",
    re.M,
)


class InputError(Exception):
    """Bad input that the user must fix: the message names the file."""


@lru_cache(maxsize=1)
def _parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_c.language()))


def mask_conditionals(data: bytes) -> bytes:
    def blank(m: re.Match) -> bytes:
        return re.sub(rb"[^\n]", b" ", m.group(0))

    return _CONDITIONAL.sub(blank, data)


def count_errors(node: tree_sitter.Node) -> int:
    """ERROR and MISSING nodes below `node` (iterative: kernel tables nest deeper than Python recurses)."""
    count, stack = 0, [node]
    while stack:
        n = stack.pop()
        if not n.has_error:
            continue
        if n.type == "ERROR" or n.is_missing:
            count += 1
        else:
            stack.extend(n.children)
    return count


# tree-sitter's error recovery is superlinear on some garbage (20,000 bare
# `.mmap =` lines take 13 s and 5 GB): the parse gets CPU time linear in the
# size, about ten times what real kernel files need, then gives up.
_PARSE_SECONDS = 0.5
_PARSE_SECONDS_PER_BYTE = 5e-6
_CHUNK = 1 << 16


# The budget cannot stop what happens at the end of the input, and one shape
# is slow exactly there: designators whose value is another designator
# (`.a = .b = .c = ...`), which no C program contains.
_DESIGNATOR_CHAIN = re.compile(rb"=\s*(?:\.\s*[A-Za-z_]\w*\s*)+=(?!=)")
_DESIGNATOR_CHAINS_ALLOWED = 64


class ParseBudgetExceeded(Exception):
    pass


def _too_many_designator_chains(data: bytes) -> bool:
    for n, _ in enumerate(_DESIGNATOR_CHAIN.finditer(data), 1):
        if n > _DESIGNATOR_CHAINS_ALLOWED:
            return True
    return False


def parse(data: bytes) -> tree_sitter.Tree:
    if _too_many_designator_chains(data):
        raise ParseBudgetExceeded
    parser = _parser()
    deadline = time.process_time() + _PARSE_SECONDS + _PARSE_SECONDS_PER_BYTE * len(data)
    ticks = itertools.count()
    try:
        # The callback runs every few hundred bytes; the clock is read on one call in 256 of them.
        return parser.parse(lambda offset, _point: data[offset:offset + _CHUNK],
                            progress_callback=lambda _offset, _error: next(ticks) % 256 == 0
                            and time.process_time() > deadline)
    except ValueError:
        parser.reset()
        raise ParseBudgetExceeded from None


def check_text(path: str, data: bytes) -> None:
    """C source is text in any encoding (Latin-1 comments exist); a NUL byte makes it binary."""
    if b"\0" in data:
        raise InputError(f"{path}: binary file (NUL byte)")


def decode(data: bytes) -> str:
    """Source bytes as text; bytes that are not UTF-8 survive as surrogates, so `encode` gives them back."""
    return data.decode("utf-8", "surrogateescape")


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


# The node types file-wide passes look for: SourceFile.find answers them from one query.
_FILE_LEVEL_TYPES = ("function_definition", "struct_specifier", "initializer_pair", "initializer_list",
                     "preproc_def", "preproc_function_def", "field_expression")


@dataclass
class SourceFile:
    path: str
    data: bytes
    tree: tree_sitter.Tree = field(repr=False)
    _by_type: dict | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_bytes(cls, path: str, data: bytes) -> "SourceFile":
        check_text(path, data)
        masked = mask_conditionals(data)
        try:
            tree = parse(masked)
            if tree.root_node.has_error and masked != data:
                plain = parse(data)
                if count_errors(plain.root_node) < count_errors(tree.root_node):
                    tree = plain
        except ParseBudgetExceeded:
            raise InputError(f"{path}: gave up parsing: too many syntax errors to recover from") from None
        return cls(path, data, tree)

    @classmethod
    def read(cls, path: Path, display: str | None = None) -> "SourceFile":
        name = display or str(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"{name}: cannot read: {exc.strerror}") from None
        return cls.from_bytes(name, data)

    @property
    def root(self) -> tree_sitter.Node:
        return self.tree.root_node

    def text(self, node: tree_sitter.Node) -> str:
        return decode(self.data[node.start_byte:node.end_byte])

    @staticmethod
    def line(node: tree_sitter.Node) -> int:
        return node.start_point[0] + 1

    def indent(self, node: tree_sitter.Node) -> str:
        """The whitespace before `node` on its line."""
        start = self.data.rfind(b"\n", 0, node.start_byte) + 1
        return decode(self.data[start:node.start_byte])

    def line_span(self, node: tree_sitter.Node) -> tuple[int, int]:
        """The whole lines `node` occupies, final newline included."""
        start = self.data.rfind(b"\n", 0, node.start_byte) + 1
        end = self.data.find(b"\n", node.end_byte)
        return start, (len(self.data) if end < 0 else end + 1)

    def find(self, *types: str) -> list[tree_sitter.Node]:
        """Nodes of these types in the whole file, in source order: one query per file for all the
        types the passes ask about (a query per pass was most of the analysis)."""
        if self._by_type is None:
            self._by_type = {t: [] for t in _FILE_LEVEL_TYPES}
            for node in find(self.root, *_FILE_LEVEL_TYPES):
                self._by_type[node.type].append(node)
        if len(types) == 1:
            return self._by_type[types[0]]
        return sorted((n for t in types for n in self._by_type[t]), key=lambda n: (n.start_byte, -n.end_byte))

    def definitions_named(self, name: str) -> list[tree_sitter.Node]:
        """The function definitions of `name` in this file (one per configuration, often just one)."""
        return [n for n in self.find("function_definition") if function_name(self, n) == name]

    def identifiers_named(self, name: str) -> list[tree_sitter.Node]:
        """The identifier nodes spelling `name`, found from the bytes (a query of every identifier is slow)."""
        out = []
        for m in re.finditer(rb"(?<![A-Za-z0-9_])" + re.escape(encode(name)) + rb"(?![A-Za-z0-9_])", self.data):
            node = self.root.descendant_for_byte_range(m.start(), m.end())
            if node is not None and node.type == "identifier" and node.start_byte == m.start() and node.end_byte == m.end():
                out.append(node)
        return out

    def line_of(self, offset: int) -> int:
        return bisect.bisect_left(self._newlines, offset) + 1

    @cached_property
    def _newlines(self) -> list[int]:
        return [m.start() for m in re.finditer(b"\n", self.data)]


@lru_cache(maxsize=None)
def _query(types: tuple[str, ...]) -> tree_sitter.Query:
    language = tree_sitter.Language(tree_sitter_c.language())
    return tree_sitter.Query(language, " ".join(f"({t}) @n" for t in types))


def find(node: tree_sitter.Node, *types: str) -> list[tree_sitter.Node]:
    """Nodes of the given types below `node`, in source order (a C-level query, not a Python walk)."""
    found = tree_sitter.QueryCursor(_query(tuple(sorted(types)))).captures(node).get("n", [])
    return sorted(found, key=lambda n: (n.start_byte, -n.end_byte))


def ancestor(node: tree_sitter.Node, *types: str):
    node = node.parent
    while node is not None and node.type not in types:
        node = node.parent
    return node


def function_declarator(fn):
    """The function_declarator of a definition or declaration, below any pointer declarators."""
    declarator = fn.child_by_field_name("declarator")
    while declarator is not None and declarator.type != "function_declarator":
        declarator = declarator.child_by_field_name("declarator")
    return declarator


def function_name(src: SourceFile, fn) -> str | None:
    declarator = function_declarator(fn)
    name = declarator.child_by_field_name("declarator") if declarator is not None else None
    return src.text(name) if name is not None and name.type == "identifier" else None


def parameters(src: SourceFile, fn) -> list[tuple[str, str]]:
    """(type text with its `*`s, name) of each parameter."""
    declarator = function_declarator(fn)
    out = []
    if declarator is None:
        return out
    for p in declarator.child_by_field_name("parameters").named_children:
        if p.type != "parameter_declaration":
            continue
        inner, stars = p.child_by_field_name("declarator"), ""
        while inner is not None and inner.type == "pointer_declarator":
            stars += "*"
            inner = inner.child_by_field_name("declarator")
        type_node = p.child_by_field_name("type")
        type_text = " ".join(((src.text(type_node) if type_node is not None else "") + stars).split())
        out.append((type_text, src.text(inner) if inner is not None and inner.type == "identifier" else ""))
    return out


def automatic_locals(src: SourceFile, body) -> set[str]:
    """Variables declared in `body` that live only for the call: a `static` one outlives it, like a global."""
    names = set()
    for decl in find(body, "declaration"):
        if any(c.type == "storage_class_specifier" and src.text(c) in ("static", "extern") for c in decl.children):
            continue
        for d in decl.children_by_field_name("declarator"):
            while d is not None and d.type != "identifier":
                d = d.child_by_field_name("declarator")
            if d is not None:
                names.add(src.text(d))
    return names


def split_top_level(text: str) -> list[str]:
    """`a, f(b, c), d` -> [`a`, ` f(b, c)`, ` d`]: split at commas outside brackets, text kept."""
    pieces, depth, cur = [], 0, ""
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            pieces.append(cur)
            cur = ""
        else:
            cur += ch
    pieces.append(cur)
    return pieces
