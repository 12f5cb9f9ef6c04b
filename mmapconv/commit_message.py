"""Subject and message of one patch, derived from what the conversion changed.

The subject's prefix is the subsystem's own: from the file's git history
when there is one, else from the path (rules/subjects.toml). The body says,
in the imperative and wrapped at 75 columns, what the diff does: which
request replaced the remap, how the remap's error is kept, where the flags
went, which helpers converted with the callback; then a note for each thing
a reviewer should look at. Everything is read off the old and new text, so
the message cannot claim what the diff does not do.
"""
from __future__ import annotations

import re
import subprocess
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .rules_data import load
from .patch import remap_outcome
from .source import SourceFile, decode, find, function_name, parameters

WIDTH = 75
REVIEW_NOTE = "Note for review:"
_PREFIX = re.compile(r"^((?:[\w.+/-]+: )+)")
_CALL = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_PAGE_PROT_SET = re.compile(r"\b\w+->vm_page_prot\s*=(?!=)")
_DESC_PROT_SET = re.compile(r"\bdesc->page_prot\s*=(?!=)\s*(.*?);")
_ERROR_HOOK = re.compile(r"\bdesc->action\.error_hook\s*=\s*(\w+)\s*;")
_FLAG_HELPER = re.compile(r"\b(vma_desc_(?:set|clear)_flags(?:_mask)?|vma_desc_test\w*)\s*\(")
_OLD_FLAGS = re.compile(r"\b(vm_flags_(?:set|clear|mod|init|reset))\s*\(|->(vm_flags)\b")


def subject(prefix: str) -> str:
    return f"{prefix} {load('subjects')['summary']}"


def prefix_for(root: Path, path: str, in_git: bool) -> str:
    return (history_prefix(root, path) if in_git else None) or path_prefix(path)


def history_prefix(root: Path, path: str) -> str | None:
    """The prefix most of the file's recent commits use; on a tie, the most recent one's."""
    rules = load("subjects")["history"]
    try:
        proc = subprocess.run(["git", "log", "--no-merges", f"-n{rules['commits']}", "--format=%s", "--", path],
                              cwd=root, capture_output=True, text=True, errors="replace", check=False)
    except OSError:
        return None
    prefixes = []
    for line in proc.stdout.splitlines() if proc.returncode == 0 else []:
        m = _PREFIX.match(line)
        if m and not any(re.search(p, line) for p in rules["ignore"]):
            prefixes.append(m.group(1).strip())
    if not prefixes:
        return None
    counts = Counter(prefixes)
    return max(prefixes, key=lambda p: (counts[p], -prefixes.index(p)))


def path_prefix(path: str) -> str:
    module = PurePosixPath(path).stem
    for rule in load("subjects")["path"]:
        m = re.search(rule["regex"], path)
        if m:
            return rule["prefix"].format(**{"module": module, **{k: v for k, v in m.groupdict().items() if v}})
    return f"{module}:"


@dataclass
class Facts:
    """What one patch's diff does, read off the old and new text of its files."""
    callbacks: list[tuple[str, str]] = field(default_factory=list)   # (old name, new name)
    twins: list[tuple[str, str]] = field(default_factory=list)       # initializers switched to an existing hook
    replaced_calls: list[tuple[str, str]] = field(default_factory=list)  # (old call, new call), calls.toml
    remaps: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    hooks: list[tuple[str, list[str], bool]] = field(default_factory=list)  # (hook, errors returned, logs)
    flag_helpers: list[str] = field(default_factory=list)
    old_flag_api: list[str] = field(default_factory=list)
    helpers: list[tuple[str, str]] = field(default_factory=list)
    prot_values: list[str] = field(default_factory=list)    # page protections that now cover the whole VMA
    old_api_mentions: list[tuple[str, str, str]] = field(default_factory=list)  # (path, kind, text)
    elsewhere: list[str] = field(default_factory=list)      # other files that follow the new names
    remap_failures: list[tuple[str, str | None]] = field(default_factory=list)  # patch.remap_outcome()s


def _ordered(items) -> list:
    return list(dict.fromkeys(items))


def facts(functions: list[tuple[object, str]], changes: dict[str, tuple[bytes, bytes]]) -> Facts:
    """`functions`: (FunctionResult, new name) converted by this patch; `changes`: its files."""
    f = Facts()
    for fn, new in functions:
        (f.twins if fn.twin else f.callbacks).append((fn.function, new))
    removed, added = [], []
    own = {fn.path for fn, _ in functions if not fn.twin}
    renamed = re.compile("|".join(rf"\b{re.escape(n)}\b" for _, n in f.callbacks) or "$^")
    for path, (old, new) in sorted(changes.items()):
        old_lines, new_lines = decode(old).split("\n"), decode(new).split("\n")
        gone, came = set(old_lines) - set(new_lines), set(new_lines) - set(old_lines)
        removed += [line for line in old_lines if line in gone]
        added += [line for line in new_lines if line in came]
        if path not in own and any(renamed.search(line) for line in came):
            f.elsewhere.append(path)
    removed_text, added_text = "\n".join(removed), "\n".join(added)
    removed_calls, added_calls = set(_CALL.findall(removed_text)), set(_CALL.findall(added_text))
    for name, rule in load("calls")["rewrites"].items():
        target = rule["template"].split("(", 1)[0]
        if name in removed_calls and "action" in rule:
            f.remaps.append(name)
        elif name in removed_calls and target in added_calls:
            f.replaced_calls.append((name, target))
    f.actions = _ordered(re.findall(r"\b(mmap_action_\w+)\s*\(", added_text))
    f.flag_helpers = _ordered(_FLAG_HELPER.findall(added_text))
    f.old_flag_api = _ordered(a or b for a, b in _OLD_FLAGS.findall(removed_text))
    if not _PAGE_PROT_SET.search(removed_text):
        # desc->page_prot set where the old code never set vma->vm_page_prot: a protection
        # that only the remap used (its argument) now covers the whole VMA.
        f.prot_values = _ordered(v for v in _DESC_PROT_SET.findall(added_text) if "desc->page_prot" not in v)
    parsed = {path: (SourceFile.from_bytes(path, old), SourceFile.from_bytes(path, new))
              for path, (old, new) in sorted(changes.items()) if path.endswith((".c", ".h"))}
    callbacks_new = {new for _, new in f.callbacks}
    for path, (old_src, new_src) in parsed.items():
        _hooks_and_helpers(f, old_src, new_src, {o for o, _ in f.callbacks}, callbacks_new)
    words = [re.compile(p, re.I) for p in load("subjects")["message"]["old_api"]]
    words += [re.compile(rf"\b{re.escape(old)}\b") for old, _ in f.callbacks + f.helpers]
    converted = callbacks_new | {h for h, _, _ in f.hooks} | {new for _, new in f.helpers}
    for path, (_, new_src) in parsed.items():
        for fn in _definitions(new_src):
            if function_name(new_src, fn) in converted:
                _old_api_mentions(f, path, new_src, fn, words)
    return f


def _definitions(src: SourceFile) -> list:
    return find(src.root, "function_definition")


def _takes_desc(src: SourceFile, fn) -> bool:
    return any("vm_area_desc" in t for t, _ in parameters(src, fn))


def _hooks_and_helpers(f: Facts, old: SourceFile, new: SourceFile, callbacks_old: set[str],
                       callbacks_new: set[str]) -> None:
    """Error hooks the conversion added, and helpers that took the vma and now take the descriptor
    (an old definition gone and a new one come, paired in the order of the file)."""
    before = [function_name(old, fn) for fn in _definitions(old)]
    after = [function_name(new, fn) for fn in _definitions(new)]
    hooks = set(_ERROR_HOOK.findall(decode(new.data))) - set(_ERROR_HOOK.findall(decode(old.data)))
    for fn in _definitions(new):
        name = function_name(new, fn)
        if name in hooks and name not in before:
            body = new.text(fn)
            logs = any(_is_log_call(new, call) for call in find(fn, "call_expression"))
            f.hooks.append((name, _ordered(re.findall(r"\breturn\s+(-E[A-Z0-9]+)\s*;", body)), logs))
    remaps = {name for name, rule in load("calls")["rewrites"].items() if "action" in rule}
    for name, fn in zip(before, _definitions(old)):
        if name in callbacks_old:
            f.remap_failures += [remap_outcome(old, call) for call in find(fn, "call_expression")
                                 if old.text(call.child_by_field_name("function")) in remaps]
    gone = _ordered(n for n, fn in zip(before, _definitions(old))
                    if n not in after and n not in callbacks_old and "vm_area_struct" in old.text(fn).split("{")[0])
    came = _ordered(n for n, fn in zip(after, _definitions(new))
                    if n not in before and n not in callbacks_new and n not in hooks and _takes_desc(new, fn))
    f.helpers += [pair for pair in zip(gone, came) if pair not in f.helpers]


def _old_api_mentions(f: Facts, path: str, src: SourceFile, fn, words: list[re.Pattern]) -> None:
    """The lines of comments (kernel-doc above included) and strings of `fn` that name the old API."""
    for node in _leading_comments(fn) + find(fn, "comment", "string_literal"):
        kind = "comment" if node.type == "comment" else "log message" if _in_log_call(src, node) else "string"
        for line in src.text(node).split("\n"):
            text = line.strip().lstrip("/*").rstrip("*/").strip() if kind == "comment" else line.strip()
            entry = (path, kind, text)
            if any(w.search(line) for w in words) and entry not in f.old_api_mentions:
                f.old_api_mentions.append(entry)


def _leading_comments(fn) -> list:
    """The comments right above a definition (its kernel-doc), each ending on the line before the next."""
    out, node, line = [], fn.prev_named_sibling, fn.start_point[0]
    while node is not None and node.type == "comment" and node.end_point[0] >= line - 1:
        out.append(node)
        node, line = node.prev_named_sibling, node.start_point[0]
    return out[::-1]


def _is_log_call(src: SourceFile, call) -> bool:
    function = call.child_by_field_name("function")
    return function is not None and re.fullmatch(load("subjects")["message"]["log_calls"], src.text(function)) is not None


def _in_log_call(src: SourceFile, node) -> bool:
    """A string that is an argument (or part of a concatenated one) of a logging call."""
    for _ in range(3):
        node = node.parent
        if node is None or node.type == "call_expression":
            break
    return node is not None and node.type == "call_expression" and _is_log_call(src, node)


def join_words(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _names(functions: list[str]) -> str:
    return join_words([f"{name}()" for name in functions])


def wrap(text: str) -> str:
    return textwrap.fill(text, WIDTH, break_long_words=False, break_on_hyphens=False)


def _quote(text: str) -> str:
    """A comment or string as a reviewer will grep for it: one line, cut to fit the message."""
    line = " ".join(text.split())
    return "  " + (line if len(line) <= WIDTH - 2 else line[:WIDTH - 6] + " ...")


def body(f: Facts, reviews: list[tuple[str, str]] = ()) -> str:
    """The commit message body; `reviews`: (code, note) of the unsafe fixes the patch makes."""
    paragraphs = []
    intro = ("The file_operations .mmap hook is deprecated in favor of .mmap_prepare, which describes the "
             "mapping in a struct vm_area_desc before the VMA exists and leaves setting it up to the mm core.")
    if f.callbacks:
        intro += f" Convert {_names([o for o, _ in f.callbacks])} to {_names([n for _, n in f.callbacks])}."
    for old, twin in f.twins:
        intro += f" Point the file_operations that use {old}() at {twin}() instead."
    if f.elsewhere:
        intro += f" Follow the new name{'s' if len(f.callbacks) > 1 else ''} in {join_words(f.elsewhere)}."
    paragraphs.append(intro)
    if f.actions:
        text = f"Request the mapping with {_names(f.actions)}"
        text += f" instead of calling {_names(f.remaps)}" if f.remaps else ""
        text += ": the core performs it once the VMA is set up."
        if f.hooks:
            errors = _ordered(e for _, errs, _ in f.hooks for e in errs)
            text += (" Keep the error returned when the remap fails" + (f" ({', '.join(errors)})" if errors else "")
                     + f" with an error_hook, {_names([h for h, _, _ in f.hooks])}")
            text += ", which also logs the failure." if any(logs for _, _, logs in f.hooks) else "."
        paragraphs.append(text)
    lost = _ordered(error for kind, error in f.remap_failures if kind == "lost")
    if lost and not f.hooks:
        paragraphs.append(f"{REVIEW_NOTE} the old code returned {join_words(lost)} when the remap failed; "
                          "mmap() now fails with the remap's own error.")
    if any(kind == "ignored" for kind, _ in f.remap_failures):
        paragraphs.append(f"{REVIEW_NOTE} the old code ignored a failing remap; a failure now fails mmap().")
    if f.flag_helpers:
        verbs = _ordered(v for h in f.flag_helpers for v in ("set", "clear", "test") if f"_{v}" in h)
        old = [o for o in f.old_flag_api if o != "vm_flags"]
        instead = f", instead of {_names(old)}" if old else ", instead of vma->vm_flags" if f.old_flag_api else ""
        paragraphs.append(f"{join_words(verbs).capitalize()} the VMA flags on the descriptor with "
                          f"{_names(f.flag_helpers)}{instead}.")
    renamed = [(o, n) for o, n in f.replaced_calls if o != n]
    if renamed:
        paragraphs.append(f"Call {_names([n for _, n in renamed])} instead of {_names([o for o, _ in renamed])}.")
    for name in [o for o, n in f.replaced_calls if o == n]:
        paragraphs.append(f"Pass the descriptor to {name}().")
    if f.helpers:
        many = len(f.helpers) > 1
        paragraphs.append(f"Convert {'the helpers ' if many else ''}{_names([o for o, _ in f.helpers])} "
                          f"with the callback{'s' if len(f.callbacks) > 1 else ''}, "
                          f"as {_names([n for _, n in f.helpers])}: "
                          + ("they only describe the mapping, so they take the descriptor now." if many else
                             "it only describes the mapping, so it takes the descriptor now."))
    for value in f.prot_values:
        paragraphs.append(f"{REVIEW_NOTE} the page protection the remap used, {value}, is now set as "
                          "desc->page_prot, so it applies to the whole VMA, faults included, where before "
                          "only the remapped range used it.")
    for code, note in reviews:
        paragraphs.append(f"{REVIEW_NOTE} an unsafe fix ({code}, `mmapconv rule {code}`): {note.rstrip('.')}.")
    out = "\n\n".join(wrap(p) for p in paragraphs)
    if f.old_api_mentions:
        kinds = _ordered(kind + "s" for _, kind, _ in f.old_api_mentions)
        out += "\n\n" + wrap(f"{REVIEW_NOTE} these {' and '.join(kinds)} still name the old API; they "
                              "are left for the author to reword:")
        out += "\n\n" + "\n".join(_quote(text) for text in _ordered(t for _, _, t in f.old_api_mentions))
    return out
