"""Renders a ScanResult: JSON for machines, one line per callback for grep, rich tables for people."""
from __future__ import annotations

import json
from collections import Counter, defaultdict

from rich.console import Console
from rich.table import Table

from ..classify import CATEGORY_TEXT, PRIMARY_ORDER
from ..scan import FunctionResult, ScanResult


def _reason(fn: FunctionResult) -> str:
    if fn.twin:
        return f"initializers switch to {fn.twin}"
    if fn.verdict == "auto":
        return "converts automatically"
    first = fn.first_reason
    return f"line {first.line}: {first.message}" if first else ""


def to_json(result: ScanResult, all_ops: bool = False) -> str:
    chosen = result.all_instances if all_ops else result.instances
    doc = {
        "instances": [{
            "path": ri.instance.path, "line": ri.instance.line, "struct": ri.instance.struct,
            "member": ri.instance.member, "function": ri.instance.function,
            "via_macro": ri.instance.via_macro, "resolution": ri.resolution,
            "definition": f"{ri.function.path}:{ri.function.line}" if ri.function else None,
        } for ri in chosen],
        "functions": [{
            "function": fn.function, "path": fn.path, "line": fn.line,
            "categories": fn.categories, "primary": fn.primary, "verdict": fn.verdict,
            "reasons": [{"line": r.line, "category": r.category, "code": r.code, "message": r.message} for r in fn.reasons],
            "delegates_to": fn.delegates_to, "instances": fn.instances,
            "definitions": len(fn.summaries),
        } for fn in result.functions],
        "hubs": [{
            "function": hub.function, "blocked_instances": hub.blocked_instances, "definition": hub.where or None,
            "verdict": hub.verdict,
            "blockers": [{"line": b.line, "category": b.category, "code": b.code, "message": b.message}
                         for b in hub.blockers],
        } for hub in result.hub_plans],
        "errors": [{"path": e.path, "message": e.message} for e in result.errors],
    }
    return json.dumps(doc, indent=2)


def to_text(result: ScanResult) -> str:
    lines = []
    for fn in result.functions:
        lines.append(f"{fn.path}:{fn.line}: {fn.function}: {fn.verdict} [{','.join(fn.categories)}] {_reason(fn)}")
    for ri in result.instances:
        if ri.function is None:
            lines.append(f"{ri.instance.path}:{ri.instance.line}: {ri.instance.function}: {ri.resolution}")
    lines += [f"{hub.where or '-'}: hub: {hub.describe()}" for hub in result.hub_plans if hub.blocked_instances > 1]
    return "\n".join(lines) + ("\n" if lines else "")


def summary_counts(result: ScanResult) -> dict:
    functions = result.functions
    return {
        "instances": len(result.instances),
        "functions": len(functions),
        "auto": sum(f.verdict == "auto" for f in functions),
        "manual": sum(f.verdict == "manual" for f in functions),
        "primary": Counter(f.primary for f in functions),
        "category": Counter(c for f in functions for c in f.categories),
        "unresolved": sum(ri.resolution == "unresolved" for ri in result.instances),
        "null": sum(ri.resolution == "null" for ri in result.instances),
    }


def to_rich(result: ScanResult, console: Console) -> None:
    counts = summary_counts(result)
    console.print(f"[bold]{counts['instances']}[/] file_operations .mmap instances, "
                  f"[bold]{counts['functions']}[/] functions: [green]{counts['auto']} auto[/], "
                  f"[yellow]{counts['manual']} manual[/], {counts['unresolved']} unresolved, {counts['null']} NULL")
    cats = Table(title="Categories")
    for col in ("cat", "meaning", "primary", "present"):
        cats.add_column(col)
    for c in PRIMARY_ORDER:
        cats.add_row(c, CATEGORY_TEXT[c], str(counts["primary"].get(c, 0)), str(counts["category"].get(c, 0)))
    console.print(cats)

    per_subsystem: dict[str, Counter] = defaultdict(Counter)
    for fn in result.functions:
        parts = fn.path.split("/")
        per_subsystem["/".join(parts[:2]) if len(parts) > 2 else parts[0]][fn.verdict] += 1
    subs = Table(title="Per subsystem")
    for col in ("subsystem", "auto", "manual"):
        subs.add_column(col)
    for name, c in sorted(per_subsystem.items(), key=lambda kv: -sum(kv[1].values())):
        subs.add_row(name, str(c["auto"]), str(c["manual"]))
    console.print(subs)

    table = Table(title="Callbacks")
    for col in ("location", "function", "verdict", "categories", "instances", "reason"):
        table.add_column(col, overflow="fold")
    for fn in result.functions:
        style = "green" if fn.verdict == "auto" else "yellow"
        table.add_row(f"{fn.path}:{fn.line}", fn.function, f"[{style}]{fn.verdict}[/]",
                      ",".join(fn.categories), str(fn.instances), _reason(fn))
    console.print(table)
    hubs = [h for h in result.hub_plans if h.blocked_instances > 1]
    if hubs:
        ht = Table(title="Hub plan: convert these to unblock the callbacks that delegate to them")
        for col in ("function", "unblocks", "verdict", "what blocks it"):
            ht.add_column(col, overflow="fold")
        for hub in hubs:
            ht.add_row(hub.function, str(hub.blocked_instances), hub.verdict,
                       "; ".join(f"line {b.line}: {b.message}" for b in hub.blockers))
        console.print(ht)
    for e in result.errors:
        console.print(f"[red]error[/]: {e.path}: {e.message}")
