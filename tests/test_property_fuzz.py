"""Mutated fixtures through scan, convert, lint and check-patch (hypothesis, fixed seed, bounded time).

Each example takes one fixture (a C file of fixtures/convert/*/before or fixtures/unsafe/*/before,
fixtures/scan or fixtures/lint, or a patch or mbox of fixtures/series),
applies a few mutations to its bytes (byte and line ranges deleted,
duplicated or swapped, odd bytes and C or patch fragments inserted,
truncation, CRLF, a function or a message duplicated, hunk headers and file
names rewritten) and runs the command in-process. Every command must end
without a traceback, with exit code 0, 1 or 2, and its JSON output must
parse. Every diff convert prints must apply with `git apply`, give the bytes
`convert --write` writes, and converting that result again must print
nothing.

The seed is fixed and the example counts small so CI time is bounded
(about 300 examples in all).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import traceback
from pathlib import Path
from typing import NamedTuple

from click.testing import CliRunner
from hypothesis import HealthCheck, given, note, seed, settings
from hypothesis import strategies as st

from mmapconv.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
GIT = shutil.which("git")
SEED = 20250607

SETTINGS = dict(deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])


# --------------------------------------------------------------------------- seeds

class Seed(NamedTuple):
    """A small tree (relative path -> bytes) and the file of it the mutations apply to."""
    name: str
    files: tuple[tuple[str, bytes], ...]
    target: str

    def __repr__(self) -> str:
        return f"<seed {self.name}>"


def _tree(root: Path, paths) -> tuple[tuple[str, bytes], ...]:
    return tuple((str(p.relative_to(root)), p.read_bytes()) for p in sorted(paths) if p.is_file())


def _c_seeds() -> list[Seed]:
    seeds = []
    for before in sorted([*(FIXTURES / "convert").glob("*/before"), *(FIXTURES / "unsafe").glob("*/before")]):
        files = _tree(before, before.rglob("*"))
        for rel, _ in files:
            if rel.endswith((".c", ".h")):
                seeds.append(Seed(f"{before.parent.parent.name}/{before.parent.name}/{rel}", files, rel))
    scan = FIXTURES / "scan"
    for path in sorted(scan.rglob("*.c")):
        # The file with the C files and headers of its directory (helpers, header macros).
        files = _tree(scan, [p for p in path.parent.iterdir() if p.suffix in (".c", ".h")])
        seeds.append(Seed(f"scan/{path.relative_to(scan)}", files, str(path.relative_to(scan))))
    for path in sorted((FIXTURES / "lint").glob("*.c")):
        seeds.append(Seed(f"lint/{path.name}", ((f"drivers/misc/{path.name}", path.read_bytes()),),
                          f"drivers/misc/{path.name}"))
    return seeds


C_SEEDS = _c_seeds()
SERIES = FIXTURES / "series"
PATCH_SEEDS = [(str(p.relative_to(SERIES)), p.read_bytes())
               for p in sorted([*SERIES.glob("*.mbox"), *SERIES.glob("*.diff"), *SERIES.glob("patches/*.patch")])]


# --------------------------------------------------------------------------- mutations

POS = st.integers(0, 1 << 20)     # taken modulo the current length: shrinks towards the start
COUNT = st.integers(1, 64)
LINES = st.integers(1, 12)

C_TOKENS = [
    b"\0", b"\r", b"\x0c", b"\xe9", "\u2028".encode(), b"\xff\xfe", b"\t", b" ", b"\n", b"\\\n",
    b"{", b"}", b"(", b")", b";", b",", b"=", b"*", b"&", b"/*", b"*/", b"//", b"\"", b"'", b"#", b"##",
    b"vma", b"desc", b"file", b"NULL", b"return", b"if", b"static", b"const", b"struct", b"int",
    b"vma->vm_start", b"vma->vm_end", b"vma->vm_pgoff", b"vma->vm_page_prot", b"vma->vm_ops",
    b"remap_pfn_range(vma, vma->vm_start, pfn, vma->vm_end - vma->vm_start, vma->vm_page_prot)",
    b"vm_flags_set(vma, VM_IO | VM_DONTEXPAND)", b"return 0;", b"return -EINVAL;",
    b"struct vm_area_struct *vma", b"struct vm_area_desc *desc", b"x_mmap", b"x_mmap_prepare",
]
C_LINES = [
    b"#if 0\n", b"#endif\n", b"#ifdef CONFIG_X\n", b"#else\n", b"#if\n", b"#define x_mmap NULL\n",
    b"#define F(n) .mmap = n##_mmap,\n", b"#include \"x.h\"\n",
    b"\t.mmap = x,\n", b"\t.mmap = x_mmap,\n", b"\t.mmap = NULL,\n", b"\t.mmap =\n", b".mmap = ",
    b"\t.mmap_prepare = x_mmap_prepare,\n", b"{\n", b"}\n", b"};\n",
    b"static const struct file_operations x_fops = {\n",
    b"static int x_mmap(struct file *file, struct vm_area_struct *vma)\n",
    b"int x_mmap(struct file *, struct vm_area_struct *);\n", b"EXPORT_SYMBOL(x_mmap);\n",
]
WORDS = [b"vma", b"desc", b"file", b"x", b"x_mmap", b"mmap", b"mmap_prepare", b"NULL", b"0", b"if",
         b"return", b"struct", b"file_operations", b"remap_pfn_range", b"io_remap_pfn_range",
         b"vm_iomap_memory", b"vm_flags_set", b"vm_flags_clear", b"vm_flags_mod", b"vm_flags_reset",
         b"vm_flags_init", b"vm_map_pages", b"vm_insert_page", b"remap_vmalloc_range", b"dma_mmap_coherent",
         b"generic_file_mmap", b"pgprot_noncached", b"vma_pages", b"vm_pgoff", b"vm_page_prot", b"vm_ops",
         b"vm_private_data", b"vm_flags", b"vm_start", b"vm_end", b"mmap_action_remap_full", b"vma_desc_size",
         b"vma_desc_set_flags", b"vma_desc_test", b"VM_IO", b"VM_WRITE", b"PAGE_SHIFT", b"_", b"\xe9"]
CALL = re.compile(rb"\b\w+\s*\(")


def _parens(draw_n: int, balanced: bool) -> bytes:
    return b"(" * draw_n + (b"x" + b")" * draw_n if balanced else b"")


def tokens(fragments: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.sampled_from(fragments),
        st.builds(_parens, st.integers(1, 300), st.booleans()),
        st.binary(min_size=1, max_size=8),
        st.text(min_size=1, max_size=4).map(lambda s: s.encode("utf-8", "surrogatepass")),
    )


def byte_and_line_ops(fragments: list[bytes], lines: list[bytes]):
    return [
        st.tuples(st.just("del_bytes"), POS, COUNT),
        st.tuples(st.just("dup_bytes"), POS, COUNT, POS),
        st.tuples(st.just("swap_bytes"), POS, COUNT, POS, COUNT),
        st.tuples(st.just("del_lines"), POS, LINES),
        st.tuples(st.just("dup_lines"), POS, LINES, POS),
        st.tuples(st.just("swap_lines"), POS, POS),
        st.tuples(st.just("insert"), POS, tokens(fragments)),
        st.tuples(st.just("insert_line"), POS, st.one_of(st.sampled_from(lines), tokens(fragments))),
        st.tuples(st.just("word"), POS, st.sampled_from(WORDS)),
        st.tuples(st.just("call_args"), POS, st.sampled_from(["drop_last", "drop_first", "empty", "add"]),
                  st.sampled_from(WORDS)),
        st.tuples(st.just("truncate"), POS),
        st.tuples(st.sampled_from(["crlf", "cr", "no_final_newline"])),
    ]


C_OPS = st.lists(st.one_of(*byte_and_line_ops(C_TOKENS, C_LINES),
                           st.tuples(st.just("dup_function"), POS, st.sampled_from(["after", "end", "start"]))),
                 min_size=1, max_size=4)

FUNCTION = re.compile(rb"^[A-Za-z_][\w \t*]*\([^;{}]*\)\s*\{.*?^\}[ \t]*\r?$", re.M | re.S)


def _range(length: int, pos: int, n: int) -> tuple[int, int]:
    start = pos % (length + 1)
    return start, min(length, start + n)


def _lines(data: bytes) -> list[bytes]:
    """Lines split on \\n only: \\r, \\x0c and U+2028 stay inside a line."""
    return re.findall(rb"[^\n]*\n|[^\n]+$", data)


def apply_op(data: bytes, op: tuple) -> bytes:
    kind, args = op[0], op[1:]
    if kind == "del_bytes":
        a, b = _range(len(data), *args)
        return data[:a] + data[b:]
    if kind == "dup_bytes":
        a, b = _range(len(data), args[0], args[1])
        at = args[2] % (len(data) + 1)
        return data[:at] + data[a:b] + data[at:]
    if kind == "swap_bytes":
        a, b = _range(len(data), args[0], args[1])
        c, d = _range(len(data), args[2], args[3])
        if c < a:
            a, b, c, d = c, d, a, b
        if b > c:      # overlapping: swap the first range with what follows it
            c, d = b, min(len(data), b + (d - c))
        return data[:a] + data[c:d] + data[b:c] + data[a:b] + data[d:]
    if kind == "truncate":
        return data[:args[0] % (len(data) + 1)]
    if kind == "insert":
        at = args[0] % (len(data) + 1)
        return data[:at] + args[1] + data[at:]
    if kind == "crlf":
        return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if kind == "cr":
        return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r")
    if kind == "no_final_newline":
        return data.rstrip(b"\r\n")
    if kind == "word":
        words = list(re.finditer(rb"\w+", data))
        if not words:
            return data + args[1]
        m = words[args[0] % len(words)]
        return data[:m.start()] + args[1] + data[m.end():]
    if kind == "call_args":
        # One call gets an argument fewer or more, or none: rewrites that assume an arity.
        calls = list(CALL.finditer(data))
        if not calls:
            return data
        m = calls[args[0] % len(calls)]
        depth, commas, end = 0, [], None
        for i in range(m.end() - 1, len(data)):
            c = data[i:i + 1]
            if c in b"([{":
                depth += 1
            elif c in b")]}":
                depth -= 1
                if depth == 0:
                    end = i
                    break
            elif c == b"," and depth == 1:
                commas.append(i)
        if end is None:
            return data
        open_ = m.end()
        if args[1] == "empty" or (args[1].startswith("drop") and not commas):
            inner = b""
        elif args[1] == "drop_last":
            inner = data[open_:commas[-1]]
        elif args[1] == "drop_first":
            inner = data[commas[0] + 1:end].lstrip()
        else:
            inner = data[open_:end] + (b", " if data[open_:end].strip() else b"") + args[2]
        return data[:open_] + inner + data[end:]
    if kind == "dup_function":
        functions = list(FUNCTION.finditer(data))
        if not functions:
            return data
        m = functions[args[0] % len(functions)]
        body = m.group(0) + b"\n"
        if args[1] == "after":
            return data[:m.end()] + b"\n" + body + data[m.end():]
        return data + b"\n" + body if args[1] == "end" else body + b"\n" + data
    lines = _lines(data)
    count = len(lines)
    if kind == "del_lines":
        a, b = _range(count, *args)
        return b"".join(lines[:a] + lines[b:])
    if kind == "dup_lines":
        a, b = _range(count, args[0], args[1])
        at = args[2] % (count + 1)
        return b"".join(lines[:at] + lines[a:b] + lines[at:])
    if kind == "swap_lines":
        if count < 2:
            return data
        i, j = args[0] % count, args[1] % count
        lines[i], lines[j] = lines[j], lines[i]
        return b"".join(lines)
    if kind == "insert_line":
        at = args[0] % (count + 1)
        return b"".join(lines[:at] + [args[1]] + lines[at:])
    raise AssertionError(kind)


def mutate(data: bytes, ops) -> bytes:
    for op in ops:
        data = apply_op(data, op)
    return data


# Patches: the generic operations, plus hunk headers, file names and whole messages.

PATCH_TOKENS = [*C_TOKENS[:12], b"+", b"-", b" ", b"@@", b"=", b"=E9", b"=\n", b"a/", b"b/", b"/dev/null"]
PATCH_LINES = [
    b"+\t.mmap = x_mmap,\n", b"+\tvm_flags_set(vma, VM_IO);\n", b"+static int x_mmap(struct file *file, "
    b"struct vm_area_struct *vma)\n", b"+{\n", b"+}\n", b"-\t.mmap = x_mmap,\n", b" \n", b"+\n", b"-\n",
    b"\\ No newline at end of file\n", b"@@ -1 +1 @@\n", b"@@ -0,0 +1,3 @@\n", b"@@ -1,2 +1,2 @@ x\n",
    b"diff --git a/x.c b/x.c\n", b"--- a/x.c\n", b"+++ b/x.c\n", b"--- /dev/null\n", b"+++ /dev/null\n",
    b"new file mode 100644\n", b"deleted file mode 100644\n", b"index 0000000..1111111 100644\n",
    b"rename from x.c\n", b"rename to y.c\n", b"similarity index 90%\n", b"GIT binary patch\n",
    b"Binary files a/x.c and b/x.c differ\n", b"---\n", b"-- \n", b"2.43.0\n",
    b"From 0123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001\n",
    b"From mboxrd@z Thu Jan  1 00:00:00 1970\n", b">From x\n", b"Subject: [PATCH 1/1] x\n",
    b"Subject: [PATCH 9/3] x\n", b"Subject: [PATCH 0/0]\n", b"Subject: Re: [PATCH 1/2] x\n",
    b"Subject: =?utf-8?q?=C3=A9?=\n", b"Content-Transfer-Encoding: quoted-printable\n",
    b"Content-Transfer-Encoding: base64\n", b"Content-Type: text/plain; charset=latin1\n",
    b"Content-Type: multipart/mixed; boundary=\"b\"\n", b"--b\n", b"\n",
]
HUNK = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@", re.M)
FILE_HEADER = re.compile(rb"^(diff --git a/(\S+) b/(\S+)|--- a/(\S+)|\+\+\+ b/(\S+))\r?$", re.M)
NUMBER = st.one_of(st.integers(0, 200), st.sampled_from([2**31 - 1, 2**31, 2**32, 2**63, 2**64, 10**30, 10**100]))
NAME_PART = st.from_regex(r"[a-z0-9_][a-z0-9_.-]{0,7}", fullmatch=True)
SAFE_NAME = st.builds(lambda parts, ext: "/".join(parts) + ext, st.lists(NAME_PART, min_size=1, max_size=3),
                      st.sampled_from([".c", ".h", "", ".txt"])).map(str.encode)


def apply_patch_op(data: bytes, op: tuple) -> bytes:
    kind, args = op[0], op[1:]
    if kind == "hunk":
        hunks = list(HUNK.finditer(data))
        if not hunks:
            return data
        m = hunks[args[0] % len(hunks)]
        a, b, c, d, form = args[1:]
        old_count, new_count = m.group(2) or b"1", m.group(4) or b"1"
        header = {"starts": b"@@ -%d,%s +%d,%s @@" % (a, old_count, c, new_count),
                  "full": b"@@ -%d,%d +%d,%d @@" % (a, b, c, d), "short": b"@@ -%d +%d @@" % (a, c),
                  "old_only": b"@@ -%d,%d +%d @@" % (a, b, c), "garbled": b"@@ -%d,%d +x @@" % (a, b),
                  "triple": b"@@@ -%d,%d -%d,%d +%d,%d @@@" % (a, b, a, b, c, d)}[form]
        return data[:m.start()] + header + data[m.end():]
    if kind == "hunk_line":
        # A line added to (or removed from) a hunk with its header's counts kept right: the diff still parses.
        hunks = list(HUNK.finditer(data))
        if not hunks:
            return data
        m = hunks[args[0] % len(hunks)]
        a, b, c, d = (int(g) if g is not None else 1 for g in m.groups())
        rest = data[m.end():]
        eol = rest.find(b"\n") + 1
        if eol <= 0:
            return data
        body = rest[eol:]
        if args[1] is None:
            # Remove the hunk's first added line, if it has one before the next hunk.
            line = re.match(rb"(?:[ -][^\n]*\n)*?(\+(?!\+\+ )[^\n]*\n)", body)
            if line is None:
                return data
            body = body[:line.start(1)] + body[line.end(1):]
            d -= 1
        else:
            body = b"+" + args[1].replace(b"\n", b" ") + b"\n" + body
            d += 1
        header = b"@@ -%d,%d +%d,%d @@" % (a, b, c, d)
        return data[:m.start()] + header + rest[:eol] + body
    if kind == "rename":
        headers = list(FILE_HEADER.finditer(data))
        if not headers:
            return data
        m = headers[args[0] % len(headers)]
        name, everywhere = args[1], args[2]
        old = next(g for g in m.groups()[1:] if g is not None)
        if everywhere:
            # The same file in the diff --git, --- and +++ lines of that file.
            return re.sub(rb"(?<=[ab]/)" + re.escape(old) + rb"(?=\r?$| b/)", name.replace(b"\\", b"\\\\"), data,
                          flags=re.M)
        line = m.group(0).replace(old, name)
        return data[:m.start()] + line + data[m.end():]
    if kind == "dup_message":
        starts = [m.start() for m in re.finditer(rb"^From ", data, re.M)] or [0]
        bounds = starts + [len(data)]
        i = args[0] % len(starts)
        message = data[bounds[i]:bounds[i + 1]]
        at = bounds[args[1] % len(bounds)]
        return data[:at] + message + data[at:]
    return apply_op(data, op)


PATCH_OPS = st.lists(st.one_of(
    *byte_and_line_ops(PATCH_TOKENS, PATCH_LINES),
    st.tuples(st.just("hunk"), POS, NUMBER, NUMBER, NUMBER, NUMBER,
              st.sampled_from(["starts", "starts", "full", "short", "old_only", "garbled", "triple"])),
    st.tuples(st.just("hunk_line"), POS, st.one_of(st.none(), tokens(C_TOKENS), st.sampled_from(
        [line.rstrip(b"\n") for line in C_LINES]))),
    st.tuples(st.just("hunk_line"), POS, st.sampled_from([line.rstrip(b"\n") for line in C_LINES])),
    st.tuples(st.just("rename"), POS, SAFE_NAME, st.booleans()),
    st.tuples(st.just("dup_message"), POS, POS),
), min_size=1, max_size=4)


def mutate_patch(data: bytes, ops) -> bytes:
    for op in ops:
        data = apply_patch_op(data, op)
    return data


# --------------------------------------------------------------------------- running

def invoke(args, stdin: bytes | None = None):
    """Run `mmapconv ARGS` in-process; fail on a traceback or an exit code outside {0, 1, 2}."""
    result = CliRunner().invoke(main, [str(a) for a in args], input=stdin, catch_exceptions=True)
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        raise AssertionError(f"mmapconv {' '.join(map(str, args))}: traceback\n{tb[-4000:]}")
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.stderr[-2000:])
    assert "Traceback (most recent call last)" not in result.stderr, (args, result.stderr[-4000:])
    return result


def parsed_json(result, args):
    try:
        return json.loads(result.stdout_bytes)
    except ValueError as exc:
        raise AssertionError(f"mmapconv {' '.join(map(str, args))}: stdout is not JSON ({exc}): "
                             f"{result.stdout_bytes[:2000]!r}") from None


def write_tree(root: Path, seed_: Seed, data: bytes) -> Path:
    for rel, content in seed_.files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if rel == seed_.target else content)
    return root / seed_.target


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def git_apply(diff: bytes, where: Path) -> None:
    # Ceiling: never let git find a repository around the temporary directory.
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(where.parent)}
    for extra in (["--check"], []):
        proc = subprocess.run([GIT, "apply", "--whitespace=nowarn", *extra, "-"], input=diff, cwd=where,
                              env=env, capture_output=True, check=False)
        assert proc.returncode == 0, f"git apply {' '.join(extra)} failed: {proc.stderr.decode(errors='replace')}"


def mutated_c():
    return st.tuples(st.sampled_from(C_SEEDS), C_OPS)


def describe(seed_: Seed, ops, data: bytes) -> None:
    note(f"seed {seed_.name}, ops {ops!r}")
    note(f"input {seed_.target}: {data!r}")


# --------------------------------------------------------------------------- properties

def check_scan(case, fmt: str, all_ops: bool, whole_tree: bool) -> None:
    seed_, ops = case
    data = mutate(dict(seed_.files)[seed_.target], ops)
    describe(seed_, ops, data)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tree"
        target = write_tree(root, seed_, data)
        args = ["scan", "-j", "1", "--format", fmt, *(["--all-ops"] if all_ops else []),
                root if whole_tree else target]
        result = invoke(args)
        if fmt == "json" and result.exit_code in (0, 1):
            doc = parsed_json(result, args)
            assert isinstance(doc, dict) and {"instances", "functions", "hubs", "errors"} <= doc.keys(), doc
            assert bool(doc["errors"]) == (result.exit_code == 1), (result.exit_code, doc["errors"])


def check_convert(case, level: str, unsafe: bool) -> None:
    seed_, ops = case
    data = mutate(dict(seed_.files)[seed_.target], ops)
    describe(seed_, ops, data)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tree"
        write_tree(root, seed_, data)
        before = snapshot(root)
        options = ["-j", "1", "--api", level, *(["--unsafe-fixes"] if unsafe else [])]
        args = ["convert", *options, root]
        first = invoke(args)
        diff = first.stdout_bytes
        assert snapshot(root) == before, "convert without --write changed the tree"
        if first.exit_code != 0:
            assert diff == b"", "convert printed a diff and failed"
            return
        if not diff:
            return
        note(f"diff: {diff!r}")
        copy = Path(tmp) / "copy"
        shutil.copytree(root, copy, symlinks=True)
        if GIT:
            git_apply(diff, copy)
        written = invoke(["convert", "--write", *options, root])
        assert written.exit_code == 0, written.stderr
        if GIT:
            assert snapshot(copy) == snapshot(root), "the applied diff and convert --write differ"
        again = invoke(args)
        assert again.exit_code == 0, again.stderr
        assert again.stdout_bytes == b"", f"converting the result again changes it: {again.stdout_bytes!r}"


def check_lint(case, fmt: str, level: str, whole_tree: bool) -> None:
    seed_, ops = case
    data = mutate(dict(seed_.files)[seed_.target], ops)
    describe(seed_, ops, data)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tree"
        target = write_tree(root, seed_, data)
        args = ["lint", "--format", fmt, "--api", level, root if whole_tree else target]
        result = invoke(args)
        if fmt in ("json", "sarif") and result.exit_code in (0, 1):
            assert isinstance(parsed_json(result, args), dict)


def check_patch(inputs, stdin: bool, tree: bool, fmt: str, level: str) -> None:
    datas = []
    for (name, original), ops in inputs:
        data = mutate_patch(original, ops)
        note(f"seed {name}, ops {ops!r}")
        note(f"input: {data!r}")
        datas.append((name, data))
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, (name, data) in enumerate(datas):
            path = Path(tmp) / f"{i}-{Path(name).name}"
            path.write_bytes(data)
            paths.append(path)
        options = ["--format", fmt, "--api", level]
        if tree:
            shutil.copytree(SERIES / "tree", Path(tmp) / "tree")
            options += ["--tree", Path(tmp) / "tree"]
        if stdin:
            args = ["check-patch", *options, "-"]
            result = invoke(args, stdin=datas[0][1])
        else:
            args = ["check-patch", *options, *paths]
            result = invoke(args)
        if fmt in ("json", "sarif") and result.exit_code in (0, 1):
            assert isinstance(parsed_json(result, args), dict)
        if tree:
            assert snapshot(Path(tmp) / "tree") == snapshot(SERIES / "tree"), "check-patch --tree changed the tree"


LEVELS = st.sampled_from(["newest", "7.0", "6.18"])


@seed(SEED)
@settings(max_examples=60, **SETTINGS)
@given(mutated_c(), st.sampled_from(["json", "json", "text", "rich"]), st.booleans(), st.booleans())
def test_scan_survives_mutated_fixtures(case, fmt, all_ops, whole_tree):
    check_scan(case, fmt, all_ops, whole_tree)


@seed(SEED)
@settings(max_examples=100, **SETTINGS)
@given(mutated_c(), LEVELS, st.booleans())
def test_convert_diff_applies_and_is_idempotent_on_mutated_fixtures(case, level, unsafe):
    check_convert(case, level, unsafe)


@seed(SEED)
@settings(max_examples=60, **SETTINGS)
@given(mutated_c(), st.sampled_from(["json", "json", "sarif", "text", "github"]), LEVELS, st.booleans())
def test_lint_survives_mutated_fixtures(case, fmt, level, whole_tree):
    check_lint(case, fmt, level, whole_tree)


@seed(SEED)
@settings(max_examples=80, **SETTINGS)
@given(st.lists(st.tuples(st.sampled_from(PATCH_SEEDS), PATCH_OPS), min_size=1, max_size=2), st.booleans(),
       st.booleans(), st.sampled_from(["json", "json", "sarif", "text", "github"]), LEVELS)
def test_check_patch_survives_mutated_series(inputs, stdin, tree, fmt, level):
    check_patch(inputs, stdin, tree, fmt, level)
