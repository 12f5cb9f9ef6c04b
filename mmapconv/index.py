"""Where a called name is defined, as the compiler of a given file would see it.

Built lazily for the names the effect analysis asks about, in tiers: the
file itself, the headers it includes, its directory, then `include/` and the
caller's `arch/*/include` (one byte search for all the names still missing). A definition is a function (`static inline` ones
included) or a function-like macro; a macro's body is wrapped in a function
so that one analysis reads both. Only the definition's own text is parsed.
"""
from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import api_level, prefilter
from .source import InputError, SourceFile, find, function_name

_BATCH = 64
_INCLUDE = re.compile(rb'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"\n]+)[>"]', re.M)
_LINE_END = re.compile(rb"[;}]\s*$|\*/\s*$|^\s*$|^\s*#.*$")


@dataclass
class Definition:
    name: str
    path: str            # relative to the root
    line: int
    macro: bool
    src: SourceFile      # the definition's text alone, at its own line numbers
    node: object         # its function_definition


def kernel_root(root: Path) -> Path:
    """The tree the compiler sees: the kernel tree at or above the scan root (the one API detection
    finds, so tools/ is not taken for one), else the scan root itself."""
    found = api_level.kernel_root(root)
    return found if found is not None else root


def _skip_literal(data: bytes, i: int) -> int:
    """Past a comment, string or char literal starting at i, or i itself."""
    if data.startswith(b"/*", i):
        end = data.find(b"*/", i + 2)
        return len(data) if end < 0 else end + 2
    if data.startswith(b"//", i):
        end = data.find(b"\n", i)
        return len(data) if end < 0 else end
    if data[i:i + 1] in (b'"', b"'"):
        quote, j = data[i:i + 1], i + 1
        while j < len(data) and data[j:j + 1] not in (quote, b"\n"):
            j += 2 if data[j:j + 1] == b"\\" else 1
        return j + 1
    return i


_TOKEN = re.compile(rb'[(){}]|/\*|//|"|\'')
_MACRO = re.compile(rb"^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)\(([^)]*)\)((?:[^\n]*\\\n)*[^\n]*)", re.M)
_ALIAS = re.compile(rb"^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)[ \t]+([A-Za-z_]\w*)[ \t]*$", re.M)
_ATTRIBUTES = re.compile(rb"(?:\s|/\*.*?\*/|\b__\w+\b(?:\s*\([^()]*\))?)*", re.S)


def _close(data: bytes, i: int) -> int:
    """Just past the bracket that closes the one at i (literals and comments skipped), or -1."""
    depth = 0
    while True:
        m = _TOKEN.search(data, i)
        if m is None:
            return -1
        token, i = m.group(0), m.start()
        if token in (b"(", b"{"):
            depth += 1
            i += 1
        elif token in (b")", b"}"):
            depth -= 1
            i += 1
            if depth == 0:
                return i
        else:
            i = max(_skip_literal(data, i), i + 1)


def _signature_start(data: bytes, at: int) -> int:
    """The start of the line where the declaration holding offset `at` begins."""
    start = data.rfind(b"\n", 0, at) + 1
    while start > 0:
        prev = data.rfind(b"\n", 0, start - 1) + 1
        if _LINE_END.search(data[prev:start - 1]):
            break
        start = prev
    return start


# Kernel style starts a function's head at column 0, and never a call: the names
# called on such lines (`static __printf(2, 3) void foo(`) are the only candidates.
_COLUMN_ZERO = re.compile(rb"^[A-Za-z_][^\n]*", re.M)
_CALLED = re.compile(rb"([A-Za-z_]\w*)\s*\(")


def _function_heads(data: bytes) -> dict[bytes, list[int]]:
    heads: dict[bytes, list[int]] = {}
    for line in _COLUMN_ZERO.finditer(data):
        for m in _CALLED.finditer(line.group(0)):
            heads.setdefault(m.group(1), []).append(line.start() + m.start(1))
    return heads


def _function_spans(data: bytes, starts: list[int]) -> list[tuple[int, int]]:
    """(start, end) of the definitions among the heads at `starts`: parameters, attributes, then a body."""
    spans = []
    for at in starts:
        close = _close(data, data.index(b"(", at))
        if close < 0:
            continue
        brace = _ATTRIBUTES.match(data, close).end()
        if data[brace:brace + 1] != b"{":
            continue   # a prototype
        end = _close(data, brace)
        if end > 0:
            spans.append((_signature_start(data, at), end))
    return spans


def _macro_function(name: str, params: bytes, body: bytes) -> bytes:
    """A function-like macro as a function: parameters become parameters, the body a statement."""
    names = [p.strip() for p in params.decode("utf-8", "surrogateescape").split(",") if p.strip()]
    args = ", ".join("..." if p == "..." else f"long {p[:-3] if p.endswith('...') else p}" for p in names) or "void"
    # Token pasting and stringizing do not parse as C; their operands are still read.
    text = re.sub(rb"#\s*#", b" ", body.replace(b"\\\n", b" \n"))
    text = re.sub(rb"(?<![\w)])#\s*([A-Za-z_]\w*)", rb'"\1"', text).strip() or b"0"
    return f"static long {name}({args}) {{ ".encode() + text + b"; }"


class _FileDefinitions:
    """What one file defines, found with byte searches when first asked and parsed only when asked."""

    def __init__(self, path: str, data: bytes):
        self.path, self.data = path, data
        self._macros: dict[str, list[re.Match]] | None = None
        self._heads: dict[bytes, list[int]] | None = None
        self._functions: dict[str, list[tuple[int, int]]] = {}

    @property
    def macros(self) -> dict[str, list[re.Match]]:
        if self._macros is None:
            self._macros = {}
            for m in _MACRO.finditer(self.data):
                self._macros.setdefault(m.group(1).decode(), []).append(m)
            # `#define be32_to_cpu __be32_to_cpu`: the alias stands for a call of its target.
            for m in _ALIAS.finditer(self.data):
                self._macros.setdefault(m.group(1).decode(), []).append(m)
        return self._macros

    def functions(self, name: str) -> list[tuple[int, int]]:
        if name not in self._functions:
            if self._heads is None:
                self._heads = _function_heads(self.data)
            starts = self._heads.get(name.encode())
            self._functions[name] = _function_spans(self.data, starts) if starts else []
        return self._functions[name]

    def defines(self, name: str) -> bool:
        # Most files asked about a name do not contain it at all: a substring test first.
        return name.encode() in self.data and (name in self.macros or bool(self.functions(name)))

    def definitions(self, name: str) -> list[Definition]:
        found = []
        for start, end in self.functions(name):
            line = self.data.count(b"\n", 0, start)
            fn = _parsed(self.path, b"\n" * line + _blank_head_attributes(self.data[start:end], name), name)
            if fn is not None:
                found.append(Definition(name, self.path, line + 1, False, *fn))
        for m in self.macros.get(name, []):
            line = self.data.count(b"\n", 0, m.start())
            params, body = (m.group(2), m.group(3)) if m.re is _MACRO else (b"...", m.group(2) + b"()")
            fn = _parsed(self.path, b"\n" * line + _macro_function(name, params, body), name)
            if fn is not None:
                found.append(Definition(name, self.path, line + 1, True, *fn))
        return found


_HEAD_ATTRIBUTE = re.compile(rb"\b__\w+\s*\((?:[^()]|\([^()]*\))*\)")


def _blank_head_attributes(text: bytes, name: str) -> bytes:
    """`static __printf(2, 3) void f(...)` does not parse; the head without its attribute macros does."""
    body = text.find(b"{")
    keep = name.encode()
    head = _HEAD_ATTRIBUTE.sub(lambda m: m.group(0) if m.group(0).startswith(keep) and
                               not m.group(0)[len(keep):len(keep) + 1].isalnum() else b" " * len(m.group(0)), text[:body])
    return head + text[body:]


# Sparse's annotations read as casts through a function pointer to the parser: `(__force u32)(x)`.
_SPARSE = re.compile(rb"\b__(?:force|user|iomem|kernel|rcu|percpu|bitwise|must_check|private)\b")


def _parsed(path: str, text: bytes, name: str):
    text = _SPARSE.sub(lambda m: b" " * len(m.group(0)), text)
    try:
        src = SourceFile.from_bytes(path, text)
    except InputError:
        return None
    functions = find(src.root, "function_definition")
    # The text is one definition; attribute macros in its head can hide the name from the parser.
    fn = next((f for f in functions if function_name(src, f) == name), functions[0] if len(functions) == 1 else None)
    return (src, fn) if fn is not None else None


class DefinitionIndex:
    """Definitions by (name, file that calls it), found a batch of names at a time."""

    def __init__(self, root: Path):
        self.root = kernel_root(root)
        self._root_text = str(self.root)
        self._files: dict[str, _FileDefinitions | None] = {}
        self._includes_of: dict[str, list[str]] = {}
        self._directories: dict[str, list[str]] = {}
        self._found: dict[tuple[str, str], list[Definition]] = {}
        self._parsed: dict[tuple[str, str], list[Definition]] = {}

    def _file(self, rel: str) -> _FileDefinitions | None:
        if rel not in self._files:
            try:
                self._files[rel] = _FileDefinitions(rel, (self.root / rel).read_bytes())
            except OSError:
                self._files[rel] = None
        return self._files[rel]

    def _includes(self, rel: str) -> list[str]:
        if rel not in self._includes_of:
            f = self._file(rel)
            out = []
            for quote, target in _INCLUDE.findall(f.data if f else b""):
                target = target.decode("utf-8", "surrogateescape").strip()
                # Drivers add their own directory to the include path (ccflags -I$(src)): `<cluster/masklog.h>`.
                out.append(os.path.normpath(os.path.join(os.path.dirname(rel), target)))
                out += [f"include/{target}", f"{_arch(rel)}/include/{target}", f"include/uapi/{target}",
                        f"{_arch(rel)}/include/uapi/{target}"]
            self._includes_of[rel] = [p for p in dict.fromkeys(out) if not p.startswith("..") and self._exists(p)]
        return self._includes_of[rel]

    def _exists(self, rel: str) -> bool:
        if rel not in self._files:
            return os.path.isfile(os.path.join(self._root_text, rel))
        return self._files[rel] is not None

    def _directory(self, rel: str) -> list[str]:
        here = os.path.dirname(rel)
        if _in_include_dirs(rel):
            return []   # include/linux holds a thousand headers: the byte search covers them
        if here not in self._directories:
            try:
                entries = sorted(os.scandir(self.root / here), key=lambda e: e.name)
            except OSError:
                entries = []
            self._directories[here] = [os.path.join(here, e.name) for e in entries
                                       if e.name.endswith((".c", ".h")) and e.is_file(follow_symlinks=False)]
        return self._directories[here]

    def _definitions(self, rel: str, name: str) -> list[Definition]:
        if (rel, name) not in self._parsed:
            f = self._file(rel)
            self._parsed[(rel, name)] = f.definitions(name) if f is not None and f.defines(name) else []
        return self._parsed[(rel, name)]

    def resolve_near(self, wanted: set[tuple[str, str]]) -> set[tuple[str, str]]:
        """Resolve (name, near file) pairs from the file, its headers and its directory; the pairs still missing."""
        missing = set()
        for name, near in wanted:
            if (name, near) in self._found:
                continue
            for tier in ([near], self._includes(near), self._directory(near)):
                # Another .c file's static functions and macros are not what the compiler of `near` sees.
                found = [d for rel in tier for d in self._definitions(rel, name)
                         if rel == near or not rel.endswith(".c") or not d.macro and not _is_static(d)]
                if found:
                    self._found[(name, near)] = found
                    break
            else:
                missing.add((name, near))
        return missing

    def resolve_headers(self, missing: set[tuple[str, str]], search: bool = True) -> None:
        """Resolve the rest from include/ and the caller's arch's include/, in one byte search.

        A name defined nowhere nearer, and in no header, stays undefined: a
        non-static helper in another directory does real work of its own, and
        searching the whole tree costs more than the scan. Undefined is unknown.
        """
        names = sorted({n for n, _ in missing}) if search else []
        roots = sorted({d for _, near in missing for d in ("include", f"{_arch(near)}/include")})
        hits = self._hits([str(self.root / d) for d in roots if os.path.isdir(self.root / d)], names) if names else {}
        for name, near in missing:
            visible = [p for p in hits.get(name, []) if p.startswith("include/") or p.startswith(_arch(near) + "/")]
            found = []
            for rel in sorted(visible, key=lambda p: (-_shared_parts(p, near), p)):
                found = self._definitions(rel, name)
                if found:
                    break
            self._found[(name, near)] = found

    def _hits(self, roots: list[str], names: list[str]) -> dict[str, list[str]]:
        """name -> files under roots that define it: byte searches for definition lines, then each file's own index.

        GNU grep's automaton grows faster than its alternation: batches of
        `_BATCH` names, two at a time, are several times faster than one.
        """
        batches = [names[i:i + _BATCH] for i in range(0, len(names), _BATCH)]
        with ThreadPoolExecutor(2) as pool:
            found = [f for files in pool.map(lambda batch: self._definition_lines(roots, batch), batches) for f in files]
        hits: dict[str, list[str]] = {}
        for path in sorted(set(found)):
            rel = os.path.relpath(path, self.root)
            f = self._file(rel)
            for name in names if f is not None else ():
                if f.defines(name):
                    hits.setdefault(name, []).append(rel)
        return hits

    @staticmethod
    def _definition_lines(roots: list[str], names: list[str]) -> list[str]:
        alternatives = "|".join(re.escape(n) for n in names)
        return prefilter.search_regex(roots, rf"^([A-Za-z_].*[^A-Za-z0-9_])?({alternatives})[ \t]*\(|"
                                             rf"^[ \t]*#[ \t]*define[ \t]+({alternatives})([^A-Za-z0-9_]|$)")[0]

    def lookup(self, name: str, near: str) -> list[Definition]:
        key = (name, near)
        if key not in self._found:
            # Past what prefetch reached (the depth bound): near tiers only, no byte search per name.
            self.resolve_headers(self.resolve_near({key}), search=False)
        return self._found[key]


def _is_static(d: Definition) -> bool:
    return any(d.src.text(c) == "static" for c in d.node.children if c.type == "storage_class_specifier")


def _arch(path: str) -> str:
    """The arch whose headers a file sees: its own under arch/, else x86 (the build the tool checks)."""
    parts = path.split("/")
    return f"arch/{parts[1]}" if parts[0] == "arch" and len(parts) > 2 else "arch/x86"


def _in_include_dirs(path: str) -> bool:
    return path.startswith("include/") or path.startswith("arch/") and "/include/" in path


def _shared_parts(a: str, b: str) -> int:
    n = 0
    for x, y in zip(Path(a).parent.parts, Path(b).parent.parts):
        if x != y:
            break
        n += 1
    return n
