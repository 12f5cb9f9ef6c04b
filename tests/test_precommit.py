"""The pre-commit hook, run by the real pre-commit tool in a temporary repository.

pre-commit installs the hook's repository into a virtualenv of its own (from
PyPI for the dependencies), so this test is slow and needs the network.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "lint"
# What the hook repository needs to build the package: a copy, committed, so
# the test does not depend on the state of the working tree's git history.
PACKAGE_FILES = ["pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "mmapconv", "rules"]
TIMEOUT = 900

pytestmark = pytest.mark.skipif(shutil.which("pre-commit") is None or shutil.which("git") is None,
                                reason="needs pre-commit and git")


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def new_repo(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q")
    git(path, "config", "user.name", "Hook Test")
    git(path, "config", "user.email", "hook-test@example.org")
    git(path, "config", "commit.gpgsign", "false")
    return path


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory) -> Path:
    repo = new_repo(tmp_path_factory.mktemp("hook") / "mmapconv")
    for name in PACKAGE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif source.exists():
            shutil.copy2(source, repo / name)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "mmapconv")
    return repo


def try_repo(hook_repo: Path, project: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PRE_COMMIT_COLOR="never")
    return subprocess.run(["pre-commit", "try-repo", str(hook_repo), "mmapconv-lint"], cwd=project,
                          capture_output=True, text=True, timeout=TIMEOUT, env=env)


def test_hook_fails_a_bad_commit_and_passes_a_good_one(hook_repo, tmp_path):
    project = new_repo(tmp_path / "project")
    driver = project / "drivers" / "demo.c"
    driver.parent.mkdir()
    (project / "README").write_text("not C: the hook ignores it\n")

    # A bad commit: a new user of the deprecated .mmap.
    shutil.copy2(FIXTURES / "deprecated_mmap.c", driver)
    git(project, "add", "-A")
    bad = try_repo(hook_repo, project)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "drivers/demo.c:23: WARNING: MMC101" in bad.stdout
    assert "Failed" in bad.stdout

    # A good commit: the same file as a clean mmap_prepare driver.
    shutil.copy2(FIXTURES / "clean.c", driver)
    git(project, "add", "-A")
    good = try_repo(hook_repo, project)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Passed" in good.stdout
    git(project, "commit", "-q", "-m", "demo: use mmap_prepare")
