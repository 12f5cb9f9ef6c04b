"""The run's one walk of the tree: later searches answered from it find what a new walk finds."""
from __future__ import annotations

import pytest

from mmapconv import prefilter

FILES = {
    "a/one.c": "static int one_mmap(struct file *f, struct vm_area_struct *v);\n",
    "a/two.c": "int x = one_mmap_extra;\n",          # not the word one_mmap
    "b/three.h": "#define three_mmap one_mmap\n",
    "b/four.c": "static int four(void) { return 0; }\n",   # holds no needle
    "c/five.txt": "one_mmap\n",                       # not C
    ".hidden/six.c": "one_mmap\n",                    # below a hidden directory
}


@pytest.fixture(params=["grep", "python"])
def tree(tmp_path, monkeypatch, request):
    if request.param == "python":
        monkeypatch.setenv("MMAPCONV_NO_GREP", "1")
    for name, text in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize("strings, word", [(["one_mmap"], True), (["one_mmap"], False),
                                           (["three_mmap", "one_mmap"], True), (["four"], True)])
def test_narrowed_search_finds_what_a_new_walk_finds(tree, strings, word):
    searched = prefilter.search_tree([str(tree)], ["mmap", "vm_area_struct"])
    assert searched.search(strings, word) == prefilter.search([str(tree)], strings, word)


def test_no_needles_walk_nothing(tree):
    assert prefilter.search_tree([str(tree)], []).files == []
