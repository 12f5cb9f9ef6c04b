"""`mmapconv convert --format-patch DIR` / `--stdout`: a series a maintainer can review and send.

Fixture tests run on fixtures/format_patch/tree (C written for this
project); the realtree test builds a git repository from part of
linux-source-6.12 and checks the series with git am, checkpatch.pl and
check-patch.
"""
from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mmapconv import commit_message, diff as diffmod
from mmapconv.convert import Converter
from mmapconv.diff import diffstat, unified_diff
from mmapconv.format_patch import slug
from mmapconv.scan import Scanner

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "format_patch"
SUMMARY = "replace deprecated mmap hook with mmap_prepare"
AUTHOR = "A U Thor <author@example.com>"
EPOCH = "1700000000"

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
needs_perl = pytest.mark.skipif(shutil.which("perl") is None, reason="perl is not installed")


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "linux"
    shutil.copytree(FIXTURE / "tree", root)
    return root


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """No git identity or configuration from the machine running the tests; a fixed date."""
    home = tmp_path / "home"
    home.mkdir()
    out = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "EMAIL"))}
    out.update(HOME=str(home), XDG_CONFIG_HOME=str(home), GIT_CONFIG_NOSYSTEM="1",
               GIT_CONFIG_GLOBAL=os.devnull, SOURCE_DATE_EPOCH=EPOCH)
    return out


def run(cwd: Path, env: dict, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mmapconv", *args], cwd=cwd, env=env, input=stdin,
                          capture_output=True, check=False)


def series(cwd: Path, env: dict, *args: str, out: str = "out", paths=(".",)) -> dict[str, str]:
    proc = run(cwd, env, "convert", "-j", "1", "--format-patch", out, *args, *paths)
    assert proc.returncode == 0, proc.stderr.decode()
    return {p.name: p.read_text() for p in sorted((cwd / out).iterdir())}


def git(cwd: Path, env: dict, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def commit_all(cwd: Path, env: dict, subject: str, date: str = "2025-01-01T00:00:00Z") -> None:
    """A commit with a fixed author and date, whoever runs the tests."""
    fixed = dict(env, GIT_AUTHOR_NAME="Importer", GIT_AUTHOR_EMAIL="importer@example.com",
                 GIT_COMMITTER_NAME="Importer", GIT_COMMITTER_EMAIL="importer@example.com",
                 GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
    git(cwd, fixed, "add", "-A")
    git(cwd, fixed, "commit", "-q", "-m", subject)


def headers(text: str) -> email.message.EmailMessage:
    return email.message_from_string(text, policy=email.policy.default)


def body(text: str) -> str:
    """The commit message: between the headers and `---`."""
    return text.split("\n\n", 1)[1].split("\n---\n", 1)[0]


def patch_of(files: dict[str, str], name: str) -> str:
    return next(text for fname, text in files.items() if name in fname)


# --- layout, subjects from the path, order ------------------------------------------------------


def test_series_layout_subjects_from_path_and_order(tree, env):
    files = series(tree, env, "--signoff", AUTHOR)
    names = list(files)
    assert names[0] == "0000-cover-letter.patch"
    subjects = [headers(files[n])["Subject"] for n in names[1:]]
    # The core callback whose prototype is in include/ comes first; the drivers follow in path order.
    assert subjects == [f"[PATCH {n}/5] {prefix} {SUMMARY}" for n, prefix in enumerate(
        ["fpr: core:", "misc: fpr_helper:", "misc: fpr_log:", "misc: fpr_prot:", "misc: fpr_skip:"], 1)]
    for name, subject in zip(names[1:], subjects):
        assert name == f"{name[:4]}-{slug(subject.split('] ', 1)[1])}.patch"
    for name in names[1:]:
        text = files[name]
        assert re.match(r"From [0-9a-f]{40} Mon Sep 17 00:00:00 2001\n", text)
        assert headers(text)["From"] == AUTHOR
        assert headers(text)["Date"] == "Tue, 14 Nov 2023 22:13:20 +0000"
        assert f"\n\nSigned-off-by: {AUTHOR}\n---\n" in text
        assert re.search(r"\n---\n( \S+ +\| +\d+ [+-]+\n)+ \d+ files? changed, ", text)
        assert re.search(r"\n-- \nmmapconv \S+\n\n\Z", text)
        assert all(len(line) <= 75 for line in body(text).split("\n")), body(text)
    assert "[PATCH 0/5]" in headers(files[names[0]])["Subject"]


def test_path_prefixes_are_data():
    assert commit_message.path_prefix("drivers/char/hpet.c") == "char: hpet:"
    assert commit_message.path_prefix("drivers/misc/open-dice.c") == "misc: open-dice:"
    assert commit_message.path_prefix("fs/ext4/file.c") == "ext4:"
    assert commit_message.path_prefix("drivers/gpu/drm/xe/xe_mmio.c") == "drm/xe:"
    assert commit_message.path_prefix("fs/smb/client/file.c") == "smb: client:"
    assert commit_message.path_prefix("kernel/relay.c") == "relay:"


# --- subjects from history, git am, index lines, base-commit ------------------------------------


@pytest.fixture
def repo(tree, env) -> Path:
    git(tree, env, "init", "-q", "-b", "master")
    commit_all(tree, env, "Import the fpr drivers")
    log = tree / "drivers/misc/fpr_log.c"
    # Two commits use `misc: fpr-log:`, one newer uses `misc:`; a tree-wide one does not count.
    for n, subject in enumerate(["misc: fpr-log: add the driver", "misc: fpr-log: fix a comment",
                                 "treewide: fix typos", "misc: tidy fpr_log"], 2):
        log.write_text(log.read_text().replace("#include <linux/module.h>\n",
                                               f"#include <linux/module.h>\n/* {n} */\n", 1))
        commit_all(tree, env, subject, f"2025-01-0{n}T00:00:00Z")
    git(tree, env, "config", "user.name", "Repo Author")
    git(tree, env, "config", "user.email", "repo@example.com")
    return tree


@needs_git
def test_prefix_from_history_and_identity_from_git_config(repo, env):
    files = series(repo, env)
    log = patch_of(files, "fpr-log")
    assert headers(log)["Subject"].endswith(f"] misc: fpr-log: {SUMMARY}")
    assert "Signed-off-by: Repo Author <repo@example.com>\n" in log
    assert headers(log)["From"] == "Repo Author <repo@example.com>"
    # Files with no prefix in their history fall back to the path rules.
    assert headers(patch_of(files, "fpr_prot"))["Subject"].endswith(f"] misc: fpr_prot: {SUMMARY}")
    head = git(repo, env, "rev-parse", "HEAD").strip()
    assert f"\nbase-commit: {head}\n" in files["0000-cover-letter.patch"]
    assert re.search(r"^index [0-9a-f]{12}\.\.[0-9a-f]{12} 100644$", log, re.M)


@needs_git
def test_git_am_applies_the_series_in_order(repo, env, tmp_path):
    series(repo, env, out="../series")
    clone = tmp_path / "clone"
    git(tmp_path, env, "clone", "-q", str(repo), str(clone))
    patches = sorted(str(p) for p in (tmp_path / "series").iterdir())
    git(clone, dict(env, GIT_COMMITTER_NAME="C", GIT_COMMITTER_EMAIL="c@example.com"),
        "am", "-q", "--empty=drop", *patches)
    assert len(git(clone, env, "log", "--format=%s", "HEAD~5..").splitlines()) == 5
    # What the series makes is what `convert --write` makes.
    assert run(repo, env, "convert", "-j", "1", "--write", ".").returncode == 0
    assert git(repo, env, "diff", "--stat", "HEAD") != ""
    for path in git(repo, env, "diff", "--name-only", "HEAD").split():
        assert (clone / path).read_bytes() == (repo / path).read_bytes(), path
    # git's own file names for these commits are ours.
    names = git(clone, env, "format-patch", "-o", str(tmp_path / "git"), "HEAD~5").split()
    assert [Path(n).name for n in names] == [Path(p).name for p in patches[1:]]


@needs_git
def test_history_prefix_ties_go_to_the_most_recent(tree, env):
    git(tree, env, "init", "-q")
    commit_all(tree, env, "Import")
    path = tree / "drivers/misc/fpr_prot.c"
    for n, subject in enumerate(["misc: fpr-prot: one", "misc: fpr_prot: two"], 2):
        path.write_text(path.read_text() + f"/* {n} */\n")
        commit_all(tree, env, subject, f"2025-01-0{n}T00:00:00Z")
    assert commit_message.history_prefix(tree, "drivers/misc/fpr_prot.c") == "misc: fpr_prot:"
    assert commit_message.history_prefix(tree, "drivers/misc/fpr_log.c") is None


# --- To/Cc --------------------------------------------------------------------------------------


def test_recipients_from_maintainers_without_get_maintainer(tree, env):
    assert not (tree / "scripts").exists()
    files = series(tree, env, "--signoff", AUTHOR)
    core = headers(patch_of(files, "fpr-core"))
    assert core["To"] == "Core Keeper <core@example.org>"
    assert [a.strip() for a in core["Cc"].split(",")] == [
        "Core Reviewer <review@example.org>", "fpr-devel@lists.example.org", "everything@lists.example.org"]
    log = headers(patch_of(files, "fpr_log"))
    assert log["To"] == "Misc Maintainer <misc@example.org>"
    assert "misc-list@lists.example.org" in log["Cc"] and "moderated" not in log["Cc"]
    # X: takes fpr_skip.c out of MISC; the catch-all gives its list, never its maintainer.
    skip = headers(patch_of(files, "fpr_skip"))
    assert skip["To"] == "everything@lists.example.org" and skip["Cc"] is None
    assert "chief@example.org" not in "".join(files.values())
    cover = headers(files["0000-cover-letter.patch"])
    assert cover["To"] == "Core Keeper <core@example.org>, Misc Maintainer <misc@example.org>"


@needs_perl
def test_recipients_from_get_maintainer_when_present(tree, env):
    (tree / "scripts").mkdir()
    shutil.copy(FIXTURE / "get_maintainer.pl", tree / "scripts" / "get_maintainer.pl")
    files = series(tree, env, "--signoff", AUTHOR)
    core = headers(patch_of(files, "fpr-core"))
    assert core["To"] == "Script Maintainer <script@example.org>"
    assert "Script Reviewer <sreview@example.org>" in core["Cc"]
    # The script was asked about the three files of the patch.
    assert [a.strip() for a in core["Cc"].split(",")][-3:] == [
        "core.c@files.example.org", "fpr_user.c@files.example.org", "fpr.h@files.example.org"]


# --- no sign-off --------------------------------------------------------------------------------


def test_no_signoff_configured_none_is_invented(tree, env):
    proc = run(tree, env, "convert", "-j", "1", "--format-patch", "out", ".")
    assert proc.returncode == 0, proc.stderr.decode()
    assert "no Signed-off-by" in proc.stderr.decode()
    files = {p.name: p.read_text() for p in sorted((tree / "out").iterdir())}
    assert len(files) == 6
    for text in files.values():
        assert "\nSigned-off-by:" not in text
        assert headers(text)["From"] is None
    assert "No Signed-off-by: no identity was given" in files["0000-cover-letter.patch"]


# --- a header, the message and its notes --------------------------------------------------------


def test_conversion_touching_a_header_is_one_patch(tree, env):
    files = series(tree, env, "--signoff", AUTHOR)
    core = patch_of(files, "fpr-core")
    assert re.findall(r"^diff --git a/(\S+)", core, re.M) == [
        "drivers/fpr/core.c", "drivers/fpr/fpr_user.c", "include/linux/fpr.h"]
    assert "+int fpr_core_mmap_prepare(struct vm_area_desc *desc);" in core
    assert ("Convert fpr_core_mmap() to fpr_core_mmap_prepare(). Follow the new name in drivers/fpr/fpr_user.c "
            "and include/linux/fpr.h.") in _one_line(body(core))
    assert "Patch 1 changes code shared by several directories and comes first." in " ".join(
        files["0000-cover-letter.patch"].split())


def _one_line(text: str) -> str:
    return " ".join(text.split())


def test_message_says_what_the_diff_does_and_notes_for_review(tree, env):
    files = series(tree, env, "--signoff", AUTHOR)
    log = _one_line(body(patch_of(files, "fpr_log")))
    assert "Request the mapping with mmap_action_remap_full() instead of calling remap_pfn_range()" in log
    assert ("Keep the error returned when the remap fails (-EAGAIN) with an error_hook, "
            "fpr_log_mmap_prepare_error(), which also logs the failure.") in log
    assert "Set the VMA flags on the descriptor with vma_desc_set_flags(), instead of vm_flags_set()." in log
    notes = body(patch_of(files, "fpr_log")).split("Note for review:", 1)[1]
    assert '\n  "fpr_log: remap_pfn_range failed\\n"\n' in notes
    assert "\n  remap_pfn_range() marks the range VM_IO itself" in notes
    assert "log messages and comments still name the old API" in _one_line(notes)
    prot = _one_line(body(patch_of(files, "fpr_prot")))
    assert "Note for review: the page protection the remap used, prot, is now set as desc->page_prot" in prot
    helper = _one_line(body(patch_of(files, "fpr_helper")))
    assert "Convert fh_setup() with the callback, as fh_setup_prepare(): it only describes the mapping" in helper
    assert "Note for review" not in helper
    cover = _one_line(files["0000-cover-letter.patch"])
    assert "Patches 3 and 4 carry a note for review." in cover
    assert "Left as they are: 1 callback that needs a conversion by hand, by reason: per-mapping-state 1" in cover
    assert "Generated by: mmapconv convert --format-patch out --signoff 'A U Thor <author@example.com>'" in cover


def test_remap_error_that_changes_is_a_note():
    facts = commit_message.Facts(callbacks=[("a_mmap", "a_mmap_prepare")], remaps=["remap_pfn_range"],
                                 actions=["mmap_action_remap_full"], remap_failures=[("lost", "-EAGAIN")])
    text = _one_line(commit_message.body(facts))
    assert "Note for review: the old code returned -EAGAIN when the remap failed; mmap() now fails " \
           "with the remap's own error." in text
    kept = commit_message.Facts(**{**facts.__dict__, "hooks": [("a_mmap_prepare_error", ["-EAGAIN"], False)]})
    assert "Note for review" not in commit_message.body(kept)


def test_paths_are_relative_to_the_tree_top(tree, env):
    """PATHS below the top: patches still name files from the top (where MAINTAINERS is)."""
    files = series(tree / "drivers" / "misc", env, "--signoff", AUTHOR, out="../../out", paths=("fpr_log.c",))
    assert list(files)[1:] == ["0001-misc-fpr_log-replace-deprecated-mmap-hook-with-mmap_.patch"]
    assert "diff --git a/drivers/misc/fpr_log.c b/drivers/misc/fpr_log.c" in files[list(files)[1]]
    assert "mmapconv convert --format-patch out --signoff 'A U Thor <author@example.com>' " \
           "drivers/misc/fpr_log.c" in _one_line(files["0000-cover-letter.patch"])


# --- --stdout, check-patch, usage ---------------------------------------------------------------


@needs_git
def test_stdout_is_one_mbox_check_patch_reads(tree, env):
    proc = run(tree, env, "convert", "-j", "1", "--stdout", "--signoff", AUTHOR, ".")
    assert proc.returncode == 0, proc.stderr.decode()
    mbox = proc.stdout
    assert mbox.count(b"\nFrom ") + mbox.startswith(b"From ") == 6
    check = run(tree, env, "check-patch", "--format", "json", "--tree", ".", "-", stdin=mbox)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    assert b"[PATCH 5/5] misc: fpr_skip:" in check.stdout
    assert not (tree / "out").exists()


@pytest.mark.parametrize("args, code, message", [
    (["--signoff", AUTHOR], 2, "--signoff goes with"),
    (["--stdout", "--write"], 2, "exclude each other"),
    (["--format-patch", "out", "--stdout"], 2, "exclude each other"),
    (["--format-patch", "out", "--signoff", "nobody"], 1, "expected \"Name <mail@host>\""),
])
def test_usage(tree, env, args, code, message):
    proc = run(tree, env, "convert", *args, ".")
    assert proc.returncode == code and message in proc.stderr.decode()
    assert not (tree / "out").exists()


def test_stale_patches_in_dir_are_refused(tree, env):
    (tree / "out").mkdir()
    (tree / "out" / "0009-old.patch").write_text("old")
    proc = run(tree, env, "convert", "--format-patch", "out", "--signoff", AUTHOR, ".")
    assert proc.returncode == 1 and "0009-old.patch" in proc.stderr.decode()
    assert [p.name for p in (tree / "out").iterdir()] == ["0009-old.patch"]


# --- the diffs ----------------------------------------------------------------------------------


@pytest.fixture
def changes(tree) -> dict[str, tuple[bytes, bytes]]:
    return Converter(Scanner(tree, 1).scan([tree]), 1).run().changes


def test_hunks_are_minimal_with_git_and_without(changes, monkeypatch):
    old, new = changes["drivers/misc/fpr_log.c"]
    with_git = unified_diff({"f.c": (old, new)})
    monkeypatch.setattr(diffmod.shutil, "which", lambda name: None)
    without = unified_diff({"f.c": (old, new)})
    for text in (with_git, without):
        lines = text.split("\n")
        assert "-{" not in lines and " {" in lines   # the `{` stays as context
        assert "@@ -7,22 +7,26 @@ struct fpr_log_dev {" in lines
    if shutil.which("git"):
        assert with_git == without


@needs_git
def test_diff_and_diffstat_are_git_format_patch_s(changes, tmp_path, env):
    """Byte for byte what `git format-patch` prints between `---` and the signature."""
    # A long path and a file with many changes exercise the diffstat's scaling and truncation.
    long_path = "drivers/some/very/long/directory/name/that/goes/on/and/on/file.c"
    changes = dict(changes, **{long_path: (b"".join(b"%d\n" % i for i in range(300)),
                                           b"".join(b"%d\n" % (i * (i % 3 != 0)) for i in range(300)))})
    repo = tmp_path / "g"
    for path, (old, _) in changes.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_bytes(old)
    git(repo, env, "init", "-q")
    commit_all(repo, env, "old")
    for path, (_, new) in changes.items():
        (repo / path).write_bytes(new)
    commit_all(repo, env, "new")
    expected = git(repo, env, "-c", "core.abbrev=12", "-c", "diff.algorithm=histogram",
                   "format-patch", "--stdout", "-1")
    expected = expected.split("\n---\n", 1)[1].rsplit("\n-- \n", 1)[0] + "\n"
    ours = unified_diff(changes, {p: 0o100644 for p in changes})
    assert diffstat(changes, ours) + "\n" + ours == expected


# --- the real tree ------------------------------------------------------------------------------

# Directories of linux-source-6.12 whose conversions are clean for checkpatch (see the report
# for the ones that are not) and that hold a conversion touching a header (fs/ceph/super.h).
REAL_PARTS = ["drivers/char", "drivers/misc", "fs/ceph", "fs/ramfs", "kernel/relay.c"]
# What checkpatch.pl and get_maintainer.pl look for to call a directory a kernel tree.
REAL_TOP = ["COPYING", "CREDITS", "Kbuild", "Makefile", "README", "MAINTAINERS", "scripts",
            "Documentation/process/submitting-patches.rst", "include/linux/mm_types.h", "init/Kconfig",
            "ipc/Makefile", "lib/Kconfig", "arch/Kconfig"]


@pytest.mark.realtree
@needs_git
@needs_perl
def test_real_tree_series(kernel_tree, tmp_path, env):
    repo = tmp_path / "linux"
    for part in REAL_TOP + REAL_PARTS:
        src, dst = kernel_tree / part, repo / part
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
    git(repo, env, "init", "-q", "-b", "master")
    commit_all(repo, env, "Import part of linux-source-6.12")
    git(repo, env, "config", "user.name", "A U Thor")
    git(repo, env, "config", "user.email", "author@example.com")
    files = series(repo, env, out="../series", paths=REAL_PARTS)
    names = list(files)
    assert len(names) >= 6 and names[0] == "0000-cover-letter.patch"
    cover = files[names[0]]
    assert f"base-commit: {git(repo, env, 'rev-parse', 'HEAD').strip()}" in cover
    maintainers = (repo / "MAINTAINERS").read_text(errors="replace")
    for name in names[1:]:
        text = files[name]
        message = headers(text)
        assert re.fullmatch(rf"\[PATCH \d+/{len(names) - 1}\] \S[^:]*:( \S+:)* {SUMMARY}", message["Subject"])
        assert "\nSigned-off-by: A U Thor <author@example.com>\n" in text
        addresses = re.findall(r"[\w.+-]+@[\w.-]+", f"{message['To']} {message['Cc'] or ''}")
        assert addresses and all(a in maintainers for a in addresses), (name, addresses)
    assert any("diff --git a/fs/ceph/super.h" in text for text in files.values())

    # git am, in order, on a clean clone; then checkpatch.pl on each patch, in that tree.
    clone = tmp_path / "clone"
    git(tmp_path, env, "clone", "-q", str(repo), str(clone))
    patches = [str(tmp_path / "series" / n) for n in names]
    git(clone, dict(env, GIT_COMMITTER_NAME="C", GIT_COMMITTER_EMAIL="c@example.com"),
        "am", "-q", "--empty=drop", *patches)
    for patch in patches[1:]:
        proc = subprocess.run(["perl", "scripts/checkpatch.pl", patch], cwd=clone, capture_output=True,
                              text=True, check=False)
        assert "total: 0 errors, 0 warnings," in proc.stdout, proc.stdout
    # No check-patch finding at or above warning, whole files seen.
    check = run(repo, env, "check-patch", "--tree", ".", *patches)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
