"""check-patch on mail from strangers: hostile file names, CRLF mail, inputs made to hang it, malformed mail.

Every input is built here, small; the real command runs in a subprocess with
TMPDIR pointed at a scratch directory, so the test sees every temporary file it makes.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmapconv.lint.cli import check_patch_cmd
from mmapconv.patch import MAX_LINES, check_series
from mmapconv.series import MAX_HEADER, parse, read_inputs
from mmapconv.source import InputError

SERIES = Path(__file__).resolve().parent.parent / "fixtures" / "series"
MBOX = SERIES / "series.mbox"
PATCHES = sorted((SERIES / "patches").glob("0*.patch"))
TREE = SERIES / "tree"
MMAP_LINE = "+static const struct file_operations x_fops = { .mmap = x_mmap };"


def mail(subject: str, diff: str, headers: str = "") -> bytes:
    return (f"From 0 Mon Sep 17 00:00:00 2001\nFrom: A <a@example.org>\nSubject: {subject}\n{headers}\n"
            f"message\n---\n{diff}").encode()


def one_hunk(old: str, new: str, body: str = MMAP_LINE, head: str = "") -> str:
    return f"{head}--- {old}\n+++ {new}\n@@ -0,0 +1 @@\n{body}\n"


DIFF = one_hunk("a/x.c", "b/x.c")


def cli(args, tmp_path: Path, env: dict | None = None, timeout: float = 60):
    """The real command, in a process of its own, its temporary files in tmp_path/scratch."""
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(scratch), **(env or {})}
    return subprocess.run([sys.executable, "-m", "mmapconv", "check-patch", *map(str, args)],
                          capture_output=True, env=env, cwd=tmp_path, timeout=timeout)


def snapshot(root: Path) -> dict:
    return {p.relative_to(root): p.read_bytes() if p.is_file() and not p.is_symlink() else None
            for p in sorted(root.rglob("*"))}


def leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "scratch").iterdir() if p.name.startswith("mmapconv-"))


def findings(report) -> list:
    return [(f.patch, f.path, f.line, f.code, f.severity, f.message) for f in report.findings]


# --- 1. file names that lead out of the sandbox --------------------------------

HOSTILE_NAMES = {
    "dotdot": one_hunk("a/../escaped.c", "b/../escaped.c"),
    "dotdot-deep": one_hunk("a/../../escaped.c", "b/../../escaped.c"),
    "dotdot-deeper": one_hunk("a/../../../escaped.c", "b/../../../escaped.c"),
    "absolute": one_hunk("a/x.c", "{victim}"),
    "absolute-both": one_hunk("{victim}", "{victim}", head="Index: victim.c\n"),
    "prefix-then-absolute": one_hunk("a/{victim}", "b/{victim}"),
    "newline": one_hunk('"a/x\\nevil.c"', '"b/x\\nevil.c"', head='diff --git "a/x\\nevil.c" "b/x\\nevil.c"\n'),
    "escape-char": one_hunk('"a/x\\033[2J.c"', '"b/x\\033[2J.c"', head='diff --git "a/x\\033[2J.c" "b/x\\033[2J.c"\n'),
    "dot-git": one_hunk("a/.git/hooks/post-checkout", "b/.git/hooks/post-checkout"),
    "rename-from-dotdot": "diff --git a/x.c b/y.c\nsimilarity index 90%\nrename from ../../x.c\nrename to y.c\n"
                          + one_hunk("a/x.c", "b/y.c"),
}


@pytest.mark.parametrize("with_tree", [False, True], ids=["hunks", "tree"])
@pytest.mark.parametrize("case", HOSTILE_NAMES)
def test_hostile_file_names_write_nothing(tmp_path, case, with_tree):
    victim = tmp_path / "victim.c"
    victim.write_text("int victim;\n")
    tree = tmp_path / "tree"
    shutil.copytree(TREE, tree)
    evil = tmp_path / "evil.patch"
    evil.write_bytes(mail("[PATCH] evil", HOSTILE_NAMES[case].replace("{victim}", str(victim))))
    (tmp_path / "scratch").mkdir()
    before, around = snapshot(tmp_path), sorted(os.listdir(tmp_path.parent))

    result = cli([evil, *(["--tree", tree] if with_tree else [])], tmp_path)

    assert result.returncode == 2, result.stderr
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and "[PATCH] evil: refusing file name" in lines[0], lines
    assert result.stdout == b""
    assert snapshot(tmp_path) == before
    assert sorted(os.listdir(tmp_path.parent)) == around


def test_names_are_checked_for_the_whole_series_before_any_directory(monkeypatch):
    good = mail("[PATCH 1/2] good", one_hunk("a/x.c", "b/x.c"))
    evil = mail("[PATCH 2/2] evil", one_hunk("a/../../y.c", "b/../../y.c"))
    series = parse(good + b"\n" + evil, "series.mbox")

    def no_directory(*args, **kwargs):
        raise AssertionError("a directory was made before the names were checked")

    monkeypatch.setattr(tempfile, "mkdtemp", no_directory)
    for tree in (None, TREE):
        with pytest.raises(InputError, match=r"\[PATCH 2/2\] evil: refusing file name '\.\./\.\./y\.c'"):
            check_series(series, tree=tree)


def test_symlink_in_the_tree_is_not_followed_out_of_it(tmp_path):
    outside = tmp_path / "outside.c"
    outside.write_text("int outside;\n")
    tree = tmp_path / "tree"
    (tree / "drivers").mkdir(parents=True)
    (tree / "drivers" / "x.c").symlink_to(outside)
    patch = tmp_path / "x.patch"
    patch.write_bytes(mail("[PATCH] via link", "--- a/drivers/x.c\n+++ b/drivers/x.c\n@@ -1 +1 @@\n"
                                               "-int outside;\n+int inside;\n"))
    before = snapshot(tmp_path)
    result = cli([patch, "--tree", tree], tmp_path)
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and "[PATCH] via link: 'drivers/x.c'" in lines[0] and "symbolic link" in lines[0]
    assert snapshot(tmp_path) == {**before, Path("scratch"): None}


def test_symlink_a_patch_creates_is_a_plain_file(tmp_path):
    # Followed, the link would make the linter read `secret.c` and report its .mmap on line 1.
    secret = tmp_path / "secret.c"
    secret.write_text(MMAP_LINE[1:] + "\n")
    link = (f"diff --git a/drivers/leak.c b/drivers/leak.c\nnew file mode 120000\nindex 0000000..1111111\n"
            f"--- /dev/null\n+++ b/drivers/leak.c\n@@ -0,0 +1 @@\n+{secret}\n\\ No newline at end of file\n")
    patch = tmp_path / "link.patch"
    patch.write_bytes(mail("[PATCH] link", link))
    result = cli([patch, "--tree", TREE, "--format", "json"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert b'"findings": []' in result.stdout
    assert secret.read_text() == MMAP_LINE[1:] + "\n"


def test_git_environment_of_a_hook_is_not_used(tmp_path):
    # In a git hook GIT_DIR and GIT_WORK_TREE point at the user's repository: git apply must not write there.
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(TREE, elsewhere)
    before = snapshot(elsewhere)
    env = {"GIT_DIR": str(tmp_path / "no-repo"), "GIT_WORK_TREE": str(elsewhere), "GIT_INDEX_FILE": str(tmp_path / "i")}
    result = cli([MBOX, "--tree", TREE, "--format", "json"], tmp_path, env=env)
    assert result.returncode == 1, result.stderr
    assert result.stdout.count(b'"code"') == 4
    assert snapshot(elsewhere) == before
    assert not (tmp_path / "no-repo").exists() and not (tmp_path / "i").exists()


# --- 2. CRLF mail -------------------------------------------------------------

def crlf(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n")


@pytest.mark.parametrize("tree", [None, TREE], ids=["hunks", "tree"])
def test_crlf_mbox_gives_the_findings_of_the_lf_one(tmp_path, tree):
    copy = tmp_path / "series.mbox"
    copy.write_bytes(crlf(MBOX.read_bytes()))
    expected = findings(check_series(read_inputs([MBOX]), tree=tree))
    assert len(expected) == 4
    assert findings(check_series(read_inputs([copy]), tree=tree)) == expected


@pytest.mark.parametrize("tree", [None, TREE], ids=["hunks", "tree"])
def test_crlf_format_patch_files_and_stdin(tmp_path, tree):
    copies = []
    for patch in PATCHES:
        copies.append(tmp_path / patch.name)
        copies[-1].write_bytes(crlf(patch.read_bytes()))
    expected = findings(check_series(read_inputs(PATCHES), tree=tree))
    assert findings(check_series(read_inputs(copies), tree=tree)) == expected
    result = CliRunner().invoke(check_patch_cmd, ["-", *(["--tree", str(tree)] if tree else [])],
                                input=crlf(MBOX.read_bytes()))
    assert result.exit_code == 1 and result.stdout == (SERIES / "expected.txt").read_text()


def test_one_crlf_message_in_an_lf_mbox():
    messages = MBOX.read_bytes().split(b"\nFrom mboxrd@z")
    assert b"Subject: [PATCH 2/3]" in messages[1]   # the one with three findings
    mixed = b"\nFrom mboxrd@z".join([messages[0], crlf(messages[1]), *messages[2:]])
    assert findings(check_series(parse(mixed, "mixed.mbox"))) == findings(check_series(parse(MBOX.read_bytes(), "lf")))


def test_crlf_base64_text_part():
    body = crlf(PATCHES[3].read_bytes().split(b"\n\n", 1)[1])   # MIME's canonical text, as a webmail sends it
    data = (b"From 0 Mon Sep 17 00:00:00 2001\nSubject: [PATCH] b64\nMIME-Version: 1.0\n"
            b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
            + base64.encodebytes(body))
    assert [(f.path, f.code) for f in check_series(parse(data, "b64.mbox")).findings] == \
        [("drivers/misc/mmc_fbmem.c", "MMC101")]


def test_carriage_returns_of_an_lf_patch_are_content():
    # A patch of a file with CRLF lines, mailed with LF: its lines keep their CR.
    diff = parse(b"--- a/x.c\n+++ b/x.c\n@@ -1 +1 @@\n-int a;\r\n+int b;\r\n", "x.diff").patches[0].diff
    assert diff.endswith("+int b;\r\n")


# --- 3. inputs made to hang it -------------------------------------------------

def many_hunks(n: int) -> str:
    out = ["--- a/drivers/x.c", "+++ b/drivers/x.c"]
    for i in range(n):
        start = 10 + 10 * i
        out += [f"@@ -{start},2 +{start},2 @@ static int f{i}_mmap_prepare(struct vm_area_desc *desc)",
                "-\tif (remap_pfn_range(vma, vma->vm_start, pfn, size, vma->vm_page_prot))",
                "-\t\treturn -EAGAIN;",
                "+\tvm_flags_set(desc, VM_IO);",
                "+\tmmap_action_remap_full(desc, pfn);"]
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("hunks", [3000, 12_000])
def test_many_hunks_in_one_file_finish_quickly(hunks):
    series = parse(many_hunks(hunks).encode(), "many.diff")
    start = time.monotonic()
    report = check_series(series)
    assert time.monotonic() - start < 20   # quadratic, 12,000 took minutes
    assert sorted({(f.code, f.severity) for f in report.findings}) == [("MMC202", "error"), ("MMC209", "warning")]
    assert len(report.findings) == 2 * hunks


def test_huge_line_number_is_refused_at_once(tmp_path):
    patch = tmp_path / "huge.patch"
    patch.write_bytes(mail("[PATCH] far", "--- a/x.c\n+++ b/x.c\n@@ -1,1 +99999999999,1 @@\n-a\n+b\n"))
    start = time.monotonic()
    result = cli([patch], tmp_path, timeout=60)
    assert time.monotonic() - start < 30
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1
    assert '[PATCH] far: x.c: hunk "@@ -1,1 +99999999999,1 @@" ends at line 100000000000' in lines[0]
    assert leftovers(tmp_path) == []


def test_line_budget_is_for_the_whole_series():
    half = MAX_LINES // 2 + 1
    patches = [mail(f"[PATCH {i}/2] p{i}", f"--- a/f{i}.c\n+++ b/f{i}.c\n@@ -{half},1 +{half},1 @@\n-a\n+b\n")
               for i in (1, 2)]
    with pytest.raises(InputError, match=r"^\[PATCH 2/2\] p2: f2.c: hunk"):
        check_series(parse(b"\n".join(patches), "two.mbox"))


def test_a_hunk_far_down_a_big_file_is_laid_out():
    line = MAX_LINES - 10
    diff = f"--- a/x.c\n+++ b/x.c\n@@ -{line},1 +{line},1 @@\n-a\n{MMAP_LINE}\n"
    assert [(f.line, f.code) for f in check_series(parse(diff.encode(), "x.diff")).findings] == [(line, "MMC101")]


def slow(diff: str) -> bytes:
    return mail("[PATCH] slow", diff)


PATHOLOGICAL = {
    # Each took minutes before: a regex that backtracks, or a loop over the rest of the input.
    "comment openers": slow(one_hunk("a/x.c", "b/x.c", "+" + "/* " * 200_000)),
    "signatures": slow(one_hunk("a/x.c", "b/x.c") + "-- \n" * 100_000 + one_hunk("a/y.c", "b/y.c")),
    "binary line": slow(one_hunk("a/x.c", "b/x.c") + "Binary files " + "a and " * 100_000 + "\n"),
    # Subjects are short (MAX_HEADER), but half a second each adds up over an mbox.
    "patch words": b"\n".join(mail("[PATCH " * 290, "no diff\n") for _ in range(300)) + b"\n" + slow(DIFF),
}


@pytest.mark.parametrize("case", PATHOLOGICAL)
def test_pathological_input_finishes(tmp_path, case):
    (tmp_path / "in.mbox").write_bytes(PATHOLOGICAL[case])
    result = cli(["in.mbox"], tmp_path, timeout=60)
    assert result.returncode in (0, 1, 2) and b"Traceback" not in result.stderr
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("header", [
    "Subject: " + "=?utf-8?q?a?= " * 50_000,
    "Subject: [PATCH] x\nContent-Type: text/plain" + "; a*%d*=x" * 20_000,
], ids=["encoded words", "parameters"])
def test_header_the_email_package_would_parse_for_minutes(tmp_path, header):
    data = f"From 0 Mon Sep 17 00:00:00 2001\n{header}\n\n{one_hunk('a/x.c', 'b/x.c')}".encode()
    (tmp_path / "in.mbox").write_bytes(data)
    result = cli(["in.mbox"], tmp_path, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and f"(at most {MAX_HEADER} taken)" in lines[0]


@pytest.mark.parametrize("with_tree", [False, True], ids=["hunks", "tree"])
def test_no_temporary_directory_remains(tmp_path, with_tree):
    tree = ["--tree", TREE] if with_tree else []
    assert cli([MBOX, *tree], tmp_path).returncode == 1
    bad = tmp_path / "bad.patch"
    bad.write_bytes(mail("[PATCH] bad", "--- a/drivers/misc/mmc_regs.c\n+++ b/drivers/misc/mmc_regs.c\n"
                                        "@@ -1 +1 @@\n-no such line\n" + MMAP_LINE + "\n"))
    assert cli([bad, *tree], tmp_path).returncode == (2 if with_tree else 1)
    assert leftovers(tmp_path) == []


def test_sigterm_removes_the_temporary_directory(tmp_path):
    series = b"\n".join(mail(f"[PATCH {i}/600] p{i}", one_hunk(f"a/f{i}.c", f"b/f{i}.c")) for i in range(1, 601))
    (tmp_path / "long.mbox").write_bytes(series)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    proc = subprocess.Popen([sys.executable, "-m", "mmapconv", "check-patch", "long.mbox"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not leftovers(tmp_path) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert proc.poll() is None, "the run ended before a temporary directory was seen"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    assert leftovers(tmp_path) == []


# --- 4. malformed mail and diffs ----------------------------------------------

MALFORMED = {
    "truncated hunk": b"--- a/x.c\n+++ b/x.c\n@@ -1,5 +1,5 @@\n-a\n+b\n",
    "garbage in a hunk": b"--- a/x.c\n+++ b/x.c\n@@ -1,2 +1,2 @@\n-a\n+b\nzzz\x1b[2J\n",
    "marker before any hunk": b"--- a/x.c\n+++ b/x.c\n\\ No newline at end of file\n",
    "line number of 5000 digits": b"--- a/x.c\n+++ b/x.c\n@@ -" + b"9" * 5000 + b" +1 @@\n-a\n+b\n",
    "not a diff": b"hello\n",
    "empty": b"",
    "8bit garbage": mail("[PATCH] x", DIFF).replace(b"message", b"\xff\xfe"),
    "bad base64": mail("[PATCH] x", "!!!not base64@@@\n", "Content-Transfer-Encoding: base64\n"),
    "unknown charset": mail("[PATCH] x", DIFF, "Content-Type: text/plain; charset=x-klingon\n"),
    "charset with a NUL": mail("[PATCH] x", DIFF, "Content-Type: text/plain; charset=\"utf\x008\"\n"),
    "charset that is no text": mail("[PATCH] x", DIFF, "Content-Type: text/plain; charset=rot13\n"),
    "charset making surrogates": mail("[PATCH] x", "\\ud800" + DIFF,
                                      "Content-Type: text/plain; charset=raw_unicode_escape\n"),
    "bad utf-16": mail("[PATCH] x", DIFF, "Content-Type: text/plain; charset=utf-16\n") + b"\x00\xd8",
    "nested multipart": ("From 0 Mon Sep 17 00:00:00 2001\nSubject: [PATCH] deep\n"
                         "Content-Type: multipart/mixed; boundary=\"b0\"\n\n"
                         + "".join(f"--b{i}\nContent-Type: multipart/mixed; boundary=\"b{i + 1}\"\n\n"
                                   for i in range(3000))
                         + DIFF).encode(),
    "file and directory": mail("[PATCH] x", DIFF + one_hunk("a/x.c/y.c", "b/x.c/y.c")),
    "name too long": mail("[PATCH] x", one_hunk("a/" + "x" * 300 + ".c", "b/" + "x" * 300 + ".c")),
    "empty names": b"--- \n+++ \n@@ -1 +1 @@\n-a\n+b\n",
    "NUL in a name": b"--- a/x\x00.c\n+++ b/x\x00.c\n@@ -0,0 +1 @@\n+int a;\n",
    "name not UTF-8": mail("[PATCH] x", one_hunk('"a/\\377.c"', '"b/\\377.c"')),
}


@pytest.mark.parametrize("with_tree", [False, True], ids=["hunks", "tree"])
def test_malformed_input_is_one_line_and_exit_2(with_tree):
    for name, data in MALFORMED.items():
        result = CliRunner().invoke(check_patch_cmd, ["-", *(["--tree", str(TREE)] if with_tree else [])], input=data)
        lines = result.stderr.splitlines()
        assert (result.exit_code, len(lines), result.stdout) == (2, 1, ""), (name, result.stderr, result.exception)
        assert lines[0].startswith("mmapconv check-patch: ") and lines[0].isprintable(), (name, lines)


HANDLED = {
    # Odd but readable: reported under a subject that is one clean line.
    "no subject": (mail("", DIFF).replace(b"Subject: \n", b""), "- message 1"),
    "empty subject": (mail("", DIFF), "- message 1"),
    "subject with an escape sequence": (mail("=?utf-8?q?[PATCH]_a=0A=1B[2Jb?=", DIFF), "[PATCH] a [2Jb"),
    "header injection in a subject": (mail("[PATCH] a\r\nX-Injected: 1", DIFF), "[PATCH] a"),
    "8bit subject not UTF-8": (mail("[PATCH] caf?", DIFF).replace(b"caf?", b"caf\xe9"), "[PATCH] caf\ufffd"),
    "index of 1000 digits": (mail("[PATCH 1/" + "9" * 1000 + "] x", DIFF), "[PATCH 1/" + "9" * 1000 + "] x"),
}


@pytest.mark.parametrize("case", HANDLED)
def test_odd_subjects_come_out_on_one_line(case):
    data, subject = HANDLED[case]
    result = CliRunner().invoke(check_patch_cmd, ["-", "--format", "json"], input=data)
    assert result.exit_code == 1, (result.stderr, result.exception)
    assert [p["subject"] for p in json.loads(result.stdout)["patches"]] == [subject]


def test_subject_with_rich_markup():
    result = CliRunner().invoke(check_patch_cmd, ["-"], input=mail("[PATCH] fix [/foo] handling", DIFF))
    assert isinstance(result.exception, SystemExit) and result.exit_code == 1
    assert "[PATCH] fix [/foo] handling" in result.stderr
