"""What convert hands back: a patch `git apply` takes byte for byte, and a --write that changes every file or none."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmapconv.cli import main
from mmapconv.convert import WriteError, write_in_place
from mmapconv.diff import patch_bytes, unified_diff

# A small file convert rewrites: `{` opens the callback's body, its last line is `};`.
FIXTURE = (Path(__file__).resolve().parent.parent / "fixtures" / "convert" / "remap_full_direct" / "before"
           / "drivers" / "misc" / "rfd.c").read_bytes()
# Each character str.splitlines takes for a line break and git does not.
NOT_LINE_BREAKS = ["\f", "\v", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\r"]

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root, temporary ones included, by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def git_apply(tree: Path, patch: bytes) -> None:
    """Check, then apply, as a user would; the tree is made a repository so that no enclosing one interferes."""
    subprocess.run(["git", "init", "-q"], cwd=tree, check=True)
    for args in (["--check"], []):
        proc = subprocess.run(["git", "apply", *args, "-"], input=patch, cwd=tree, capture_output=True, check=False)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    shutil.rmtree(tree / ".git")


# --- A. the patch -------------------------------------------------------------------------------


def test_diff_format_is_unchanged():
    diff = unified_diff({"d/f.c": (b"a\nb\nc\n", b"a\nB\nc\n")})
    assert diff == ("diff --git a/d/f.c b/d/f.c\n--- a/d/f.c\n+++ b/d/f.c\n"
                    "@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n")


@pytest.mark.parametrize("old, new, hunk", [
    (b"a\nb", b"a\nc", "@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n"),
    (b"a\nb", b"a\nb\n", "@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n"),
    (b"a\nb\n", b"a\nb", "@@ -1,2 +1,2 @@\n a\n-b\n+b\n\\ No newline at end of file\n"),
    (b"a\nb\nc", b"A\nb\nc", "@@ -1,3 +1,3 @@\n-a\n+A\n b\n c\n\\ No newline at end of file\n"),
], ids=["both-sides", "old-side", "new-side", "context"])
def test_no_newline_at_end_of_file_is_marked(old, new, hunk):
    assert unified_diff({"f.c": (old, new)}).endswith("+++ b/f.c\n" + hunk)


@pytest.mark.parametrize("char", NOT_LINE_BREAKS, ids=[f"U+{ord(c):04X}" for c in NOT_LINE_BREAKS])
def test_only_newline_splits_lines(char):
    inside = f"x{char}y".encode()
    diff = unified_diff({"f.c": (b"a\n" + inside + b"\nb\n", b"a\n" + inside + b"\nB\n")})
    assert diff.endswith("@@ -1,3 +1,3 @@\n a\n " + inside.decode() + "\n-b\n+B\n")


def test_latin1_bytes_come_out_unchanged():
    old, new = b"/* caf\xe9 */\nint a;\n", b"/* caf\xe9 */\nint b;\n"
    assert patch_bytes(unified_diff({"f.c": (old, new)})).endswith(b" /* caf\xe9 */\n-int a;\n+int b;\n")


@needs_git
@pytest.mark.parametrize("old, new", [
    (b"a\nb", b"a\nc"), (b"a\nb", b"a\nb\n"), (b"a\nb\n", b"a\nb"), (b"a\n\fb\nc", b"a\n\fb\nC"),
    (b"x\ry\nz\r\n", b"x\ry\nZ\r\n"), (b"\xe9\n\xff\x85\nq\n", b"\xe9\n\xff\x85\nQ\n"),
    ("a\u2028b\u0085c\nd\n".encode(), "a\u2028b\u0085c\nD\u2029\n".encode()),
], ids=["last-line", "old-side", "new-side", "form-feed", "lone-cr", "latin1", "unicode-breaks"])
def test_git_applies_the_diff(tmp_path, old, new):
    (tmp_path / "f.c").write_bytes(old)
    git_apply(tmp_path, patch_bytes(unified_diff({"f.c": (old, new)})))
    assert (tmp_path / "f.c").read_bytes() == new


def _in_body(text: bytes) -> bytes:
    """The fixture with a comment line holding `text` first in the callback's body, where the diff shows it."""
    return FIXTURE.replace(b"{\n\tstruct rfd_dev", b"{\n\t/* " + text + b" */\n\tstruct rfd_dev", 1)


CLI_CASES = {
    "no-final-newline": FIXTURE.rstrip(b"\n"),
    "form-feed-line": FIXTURE.replace(b"\nstatic const", b"\n\f\nstatic const", 1),
    "lone-cr": _in_body(b"one\rtwo"),
    "u2028": _in_body("one\u2028two".encode()),
    "every-non-break": _in_body("".join(NOT_LINE_BREAKS).encode()).rstrip(b"\n"),
    "latin1-comment": _in_body("café".encode("latin-1")),
}


def run_convert(tree: Path, *args: str) -> subprocess.CompletedProcess:
    """The real command, so that what reaches stdout is what a user would pipe to git apply."""
    return subprocess.run([sys.executable, "-m", "mmapconv", "convert", "-j", "1", *args, "."], cwd=tree,
                          capture_output=True, check=False)


@needs_git
@pytest.mark.parametrize("name", sorted(CLI_CASES))
def test_convert_diff_applies_to_what_write_makes(tmp_path, name):
    tree, copy = tmp_path / "tree", tmp_path / "copy"
    (tree / "drivers" / "misc").mkdir(parents=True)
    (tree / "drivers" / "misc" / "rfd.c").write_bytes(CLI_CASES[name])
    shutil.copytree(tree, copy)
    diff = run_convert(tree)
    assert diff.returncode == 0 and diff.stdout, diff.stderr.decode()
    git_apply(copy, diff.stdout)
    assert run_convert(tree, "--write").returncode == 0
    assert snapshot(copy) == snapshot(tree) != {"drivers/misc/rfd.c": CLI_CASES[name]}


@needs_git
def test_a_file_the_edits_leave_alone_is_no_change(tmp_path):
    """What the property test found: a header whose lines end in a lone CR is one line to C, so its
    prototype is no prototype and nothing in it is renamed; it used to come out as an empty diff."""
    tree = tmp_path / "tree"
    shutil.copytree(Path(__file__).resolve().parent.parent / "fixtures" / "convert" / "refs_extern_prototype" / "before",
                    tree)
    header = tree / "drivers" / "misc" / "rxp.h"
    header.write_bytes(header.read_bytes().replace(b"\n", b"\r"))
    copy = tmp_path / "copy"
    shutil.copytree(tree, copy)
    diff = run_convert(tree)
    assert diff.returncode == 0, diff.stderr.decode()
    assert diff.stdout.count(b"diff --git") == 1 and b"rxp.h" not in diff.stdout
    git_apply(copy, diff.stdout)


# --- B. --write: every file or none --------------------------------------------------------------


@pytest.fixture
def two_files(tmp_path) -> Path:
    """A tree with two convertible files in two directories, written in this order: a.c, then b.c."""
    for name in ("a", "b"):
        (tmp_path / "drivers" / name).mkdir(parents=True)
        (tmp_path / "drivers" / name / f"{name}.c").write_bytes(FIXTURE.replace(b"rfd", name.encode() * 3))
    return tmp_path


def convert_write(root: Path):
    return CliRunner().invoke(main, ["convert", "--write", "-j", "1", str(root)])


def test_write_converts_both_and_keeps_modes(two_files):
    os.chmod(two_files / "drivers/a/a.c", 0o640)
    before = snapshot(two_files)
    result = convert_write(two_files)
    assert result.exit_code == 0, result.output
    after = snapshot(two_files)
    assert set(after) == set(before) and all(after[p] != before[p] for p in before)
    assert (two_files / "drivers/a/a.c").stat().st_mode & 0o7777 == 0o640


def test_write_refuses_a_read_only_file(two_files):
    os.chmod(two_files / "drivers/b/b.c", 0o444)
    before = snapshot(two_files)
    result = convert_write(two_files)
    assert result.exit_code == 1
    assert result.stderr == "drivers/b/b.c: error: cannot write: file is not writable (mode 0444)\n"
    assert snapshot(two_files) == before


def test_write_read_only_directory_writes_nothing(two_files, monkeypatch):
    read_only = two_files / "drivers/b"
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        # Root creates files in a 0555 directory anyway: fail as anyone else would.
        if Path(dir) == read_only:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    before = snapshot(two_files)
    os.chmod(read_only, 0o555)
    try:
        result = convert_write(two_files)
    finally:
        os.chmod(read_only, 0o755)
    assert result.exit_code == 1
    assert result.stderr == "drivers/b/b.c: error: cannot write: Permission denied\n"
    assert snapshot(two_files) == before


def fail_writes_to(monkeypatch, target: Path, exc: BaseException) -> None:
    """os.write raises `exc` on the temporary file staged for `target`, as it would on a full disk."""
    staged: set[int] = set()
    real_mkstemp, real_write = tempfile.mkstemp, os.write

    def mkstemp(*args, **kwargs):
        fd, tmp = real_mkstemp(*args, **kwargs)
        if Path(tmp).parent == target.parent and Path(tmp).name.startswith(f".{target.name}."):
            staged.add(fd)
        return fd, tmp

    def write(fd, data):
        if fd in staged:
            raise exc
        return real_write(fd, data)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(os, "write", write)


def test_write_full_disk_writes_nothing(two_files, monkeypatch):
    fail_writes_to(monkeypatch, two_files / "drivers/b/b.c", OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    before = snapshot(two_files)
    result = convert_write(two_files)
    assert result.exit_code == 1
    assert result.stderr == "drivers/b/b.c: error: cannot write: No space left on device\n"
    assert snapshot(two_files) == before


def test_write_rename_failure_names_what_was_replaced(two_files, monkeypatch):
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst).name == "b.c":
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    before = snapshot(two_files)
    result = convert_write(two_files)
    assert result.exit_code == 1
    assert result.stderr == ("drivers/b/b.c: error: cannot replace: Input/output error; "
                             "already replaced: drivers/a/a.c\n")
    after = snapshot(two_files)
    assert set(after) == set(before)
    assert after["drivers/a/a.c"] != before["drivers/a/a.c"] and after["drivers/b/b.c"] == before["drivers/b/b.c"]


# Unit level: write_in_place on its own, without a scan.


@pytest.fixture
def plain(tmp_path) -> Path:
    for name in ("a.c", "b.c"):
        (tmp_path / name).write_bytes(b"old\n")
    return tmp_path


CHANGES = {"a.c": (b"old\n", b"new a\n"), "b.c": (b"old\n", b"new b\n")}


def test_write_in_place_full_disk(plain, monkeypatch):
    fail_writes_to(monkeypatch, plain / "b.c", OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    with pytest.raises(WriteError) as raised:
        write_in_place(plain, CHANGES)
    assert raised.value.path == "b.c"
    assert str(raised.value) == "b.c: error: cannot write: No space left on device"
    assert snapshot(plain) == {"a.c": b"old\n", "b.c": b"old\n"}


def test_write_in_place_interrupted_leaves_no_temporary_file(plain, monkeypatch):
    fail_writes_to(monkeypatch, plain / "b.c", KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        write_in_place(plain, CHANGES)
    assert snapshot(plain) == {"a.c": b"old\n", "b.c": b"old\n"}


def test_write_in_place_refuses_read_only_before_writing_anything(plain):
    os.chmod(plain / "b.c", 0o444)
    with pytest.raises(WriteError, match=r"^b\.c: error: cannot write: file is not writable \(mode 0444\)$"):
        write_in_place(plain, CHANGES)
    assert snapshot(plain) == {"a.c": b"old\n", "b.c": b"old\n"}


def test_write_in_place_missing_file(plain):
    (plain / "b.c").unlink()
    with pytest.raises(WriteError, match=r"^b\.c: error: cannot write: No such file or directory$"):
        write_in_place(plain, CHANGES)
    assert snapshot(plain) == {"a.c": b"old\n"}


def test_write_in_place_does_not_write_through_hard_links(plain, tmp_path_factory):
    other = tmp_path_factory.mktemp("other") / "a.c"
    os.link(plain / "a.c", other)
    write_in_place(plain, CHANGES)
    assert snapshot(plain) == {"a.c": b"new a\n", "b.c": b"new b\n"}
    assert other.read_bytes() == b"old\n"
