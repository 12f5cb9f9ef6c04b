"""Click commands `lint`, `rules`, `rule` and `check-patch`; the main group adds them.

Exit codes: 0 clean, 1 findings at or above --fail-on, 2 usage or input errors.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..api_level import AUTO, Detection, chosen, detect_patch_target, with_series
from ..report.findings import FINDING_FORMATS, Report, exit_code, write
from ..source import InputError
from .catalogue import API_LEVELS, FIXES, RULES, SEVERITIES
from .engine import lint_paths

INPUT_ERROR = 2
API_CHOICES = (AUTO, *API_LEVELS)


def _output_options(command):
    command = click.option("--api", type=click.Choice(API_CHOICES), default=AUTO, show_default=True,
                           help="API level of the target kernel; auto: the level of the code's kernel tree "
                                "(check-patch: --tree, else what the series uses).")(command)
    command = click.option("--fail-on", type=click.Choice(SEVERITIES), default="warning", show_default=True,
                           help="Exit 1 when a finding is at or above this severity.")(command)
    command = click.option("--format", "fmt", type=click.Choice(FINDING_FORMATS), default="text",
                           show_default=True)(command)
    return command


def _write(report: Report, fmt: str, levels: list[Detection]) -> None:
    """The report, with the API level it was checked at: a note in the text summary, `api` in JSON
    (`api_trees` too when files of several trees were linted), a run property in SARIF."""
    if fmt == "text":
        report.notes = [f"API level {d.describe()}" for d in levels] + report.notes
        write(report, fmt)
        return
    if fmt not in ("json", "sarif") or not levels:
        write(report, fmt)
        return
    from ..report import json_report, sarif
    api = levels[0].as_dict()
    if fmt == "json":
        doc = json_report.document(report)
        doc["api"] = api
        if len(levels) > 1:
            doc["api_trees"] = [d.as_dict() for d in levels]
    else:
        doc = sarif.document(report)
        properties = doc["runs"][0].setdefault("properties", {})
        properties["api"] = api
        if len(levels) > 1:
            properties["apiTrees"] = [d.as_dict() for d in levels]
    json.dump(doc, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _fail(command: str, message: str):
    click.echo(f"mmapconv {command}: {message}", err=True)
    sys.exit(INPUT_ERROR)


@click.command("lint")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@_output_options
def lint_cmd(paths, fmt, fail_on, api):
    """Check C files (or the C files under directories) for deprecated .mmap and mmap_prepare misuse."""
    try:
        result = lint_paths(list(paths) or [Path(".")], api)
    except InputError as exc:
        _fail("lint", str(exc))
    if result.errors:
        # Findings without the files that failed would read as a clean bill: errors only.
        for error in result.errors:
            click.echo(f"mmapconv lint: {error}", err=True)
        sys.exit(INPUT_ERROR)
    _write(Report("lint", result.findings, files=result.files), fmt, result.levels)
    sys.exit(exit_code(result.findings, fail_on))


@click.command("rules")
def rules_cmd():
    """List the lint rules and the unsafe fixes of convert, one line each."""
    for rule in [*RULES.values(), *FIXES.values()]:
        click.echo(f"{rule.code}  {rule.severity:<7}  {rule.name:<24}  {rule.what}")


def _find_rule(key: str):
    key = key.strip()
    every = {**RULES, **FIXES}
    return every.get(key.upper()) or next((r for r in every.values() if r.name == key.lower()), None)


@click.command("rule")
@click.argument("code")
def rule_cmd(code):
    """Explain one rule: what it finds, why it matters, an example and the fix."""
    rule = _find_rule(code)
    if rule is None:
        _fail("rule", f"{code}: no such rule (see `mmapconv rules`)")
    click.echo(f"{rule.code} {rule.name} ({rule.severity}, fix: {rule.fix_safety})\n")
    click.echo(f"What: {rule.what}\n")
    click.echo(f"Why:\n{rule.why}\n")
    click.echo(f"Example:\n{rule.example}\n")
    click.echo(f"Fix: {rule.fix}\n")
    click.echo(f"Fixed:\n{rule.fixed}")


@click.command("check-patch")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path, allow_dash=True))
@click.option("--tree", type=click.Path(path_type=Path, file_okay=False),
              help="Apply the series to a temporary copy of this tree and lint whole files.")
@_output_options
def check_patch_cmd(files, tree, fmt, fail_on, api):
    """Lint the lines a patch, a format-patch series or an mbox adds (FILE or - for stdin)."""
    from ..patch import check_series
    from ..series import read_inputs
    try:
        series = read_inputs(list(files) or [Path("-")])
        if api == AUTO:
            level = detect_patch_target(series, tree)
        else:
            # Names the series defines are known to it at any level.
            level = with_series(chosen(api), series)
        report = check_series(series, tree=tree, api=level)
    except InputError as exc:
        _fail("check-patch", str(exc))
    _write(report, fmt, [level.detection])
    sys.exit(exit_code(report.findings, fail_on))
