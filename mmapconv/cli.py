"""Command line: `mmapconv scan|convert|lint|check-patch|rules|rule`.

Exit codes (scan): 0 all files read and parsed; 1 some files could not be
read or parsed (listed, the rest scanned); 2 usage error.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from .convert import Converter, WriteError, scan_for_conversion, write_in_place
from .diff import patch_bytes, unified_diff
from .report import scan_formats
from .report.convert_formats import convert_json
from .rules_data import load
from .hubs import plan_hubs
from .scan import Scanner, tree_root

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def default_paths(paths: tuple[str, ...]) -> list[Path]:
    """The paths given, or the bundled fixtures (beside the package in a checkout, else ./fixtures)."""
    if paths:
        return [Path(p) for p in paths]
    return [FIXTURES if FIXTURES.is_dir() else Path("fixtures")]


def run_scan(paths: list[Path], jobs: int | None, show_progress: bool, all_ops: bool = False):
    """The scan with its hub plan (what scan reports, and no other command needs)."""
    root = tree_root(paths)
    stderr = Console(stderr=True)
    if show_progress and stderr.is_terminal:
        with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=stderr, transient=True) as bar:
            task = bar.add_task("scanning", total=None)
            scanner = Scanner(root, jobs, lambda n: bar.advance(task, n), all_ops)
            result = scanner.scan(paths)
    else:
        scanner = Scanner(root, jobs, all_ops=all_ops)
        result = scanner.scan(paths)
    result.hub_plans = plan_hubs(result, scanner.effects)
    return result


@click.group()
@click.version_option(package_name="mmapconv")
def main() -> None:
    """Move Linux drivers from file_operations.mmap to .mmap_prepare."""
    # Source text quoted in messages keeps bytes that are not UTF-8 as surrogates: print them as they were.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["rich", "json", "text"]), default="rich", show_default=True)
@click.option("--all-ops", is_flag=True, help="Also list .mmap members of other ops structs (JSON instances).")
@click.option("-j", "--jobs", type=int, default=None, help="Worker processes (default: all cores).")
def scan(paths, fmt, all_ops, jobs):
    """Find every file_operations .mmap callback under PATHS and classify it."""
    result = run_scan(default_paths(paths), jobs, show_progress=True, all_ops=all_ops)
    out = Console(soft_wrap=False, width=200 if not sys.stdout.isatty() else None)
    if fmt == "json":
        click.echo(scan_formats.to_json(result, all_ops))
    elif fmt == "text":
        click.echo(scan_formats.to_text(result), nl=False)
        for e in result.errors:
            click.echo(f"{e.path}: error: {e.message}", err=True)
    else:
        scan_formats.to_rich(result, out)
        if all_ops:
            others = [ri for ri in result.all_instances if ri.instance.struct != "file_operations"]
            out.print(f"{len(others)} .mmap members in other ops structs (not converted): "
                      + ", ".join(sorted({str(ri.instance.struct) for ri in others})))
    sys.exit(1 if result.errors else 0)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--write", is_flag=True, help="Rewrite the files in place instead of printing a diff.")
@click.option("--check", is_flag=True, help="Exit 1 when anything would change; print nothing on stdout.")
@click.option("--api", "level", type=click.Choice(["auto", *sorted(load("api")["levels"])]), default="auto",
              show_default=True, help="Target API level (see API.md); auto: the level of the kernel tree's headers.")
@click.option("-j", "--jobs", type=int, default=None, help="Worker processes (default: all cores).")
@click.option("--format-patch", "series_dir", metavar="DIR", default=None,
              help="Write a patch series instead: DIR/0000-cover-letter.patch and one patch per driver.")
@click.option("--stdout", "series_stdout", is_flag=True, help="Write the series as one mbox on stdout.")
@click.option("--signoff", metavar='"NAME <MAIL>"', default=None,
              help="Author and Signed-off-by of the series (default: git config user.name/user.email).")
@click.option("--unsafe-fixes", is_flag=True,
              help="Also make the fixes a reviewer must check (`mmapconv rules`: MMC4xx), each with a review note.")
@click.option("--format", "fmt", type=click.Choice(["diff", "json"]), default="diff", show_default=True,
              help="json: what was converted, refused and fixed unsafely, with the diff.")
def convert(paths, write, check, level, jobs, series_dir, series_stdout, signoff, unsafe_fixes, fmt):
    """Rewrite the safe .mmap callbacks under PATHS into .mmap_prepare.

    Prints a unified diff relative to the tree root (for git apply or patch -p1)
    unless --write or --check. Exit codes: 0 done (or nothing to change with
    --check); 1 --check found changes, input files could not be read or
    parsed (then nothing is printed or written), or --write could not write
    a file (then none is changed); 2 usage error.
    """
    targets = default_paths(paths)
    level = _target_level(targets, level)
    if series_dir is not None or series_stdout:
        if write or check or (series_dir is not None and series_stdout):
            raise click.UsageError("--format-patch DIR, --stdout, --write and --check exclude each other")
        from . import format_patch
        sys.exit(format_patch.run(targets, series_dir, series_stdout, signoff, level, load("api")["default"], jobs,
                                  unsafe_fixes))
    if signoff is not None:
        raise click.UsageError("--signoff goes with --format-patch DIR or --stdout")
    root = tree_root(targets)
    result = scan_for_conversion(root, targets, jobs, level)
    for e in result.errors:
        click.echo(f"{e.path}: error: {e.message}", err=True)
    if result.errors:
        # Bad input: say so and write nothing, rather than convert half a tree.
        sys.exit(1)
    outcome = Converter(result, jobs, unsafe_fixes).run()
    if write:
        try:
            write_in_place(root, outcome.changes)
        except WriteError as e:
            # Nothing was written (or the message lists what was): no summary of a conversion that did not happen.
            click.echo(str(e), err=True)
            sys.exit(1)
    elif fmt == "json" and not check:
        click.echo(json.dumps(convert_json(outcome, level, unified_diff(outcome.changes)), indent=2))
    elif not check:
        # Bytes, not text: the patch carries the files' own bytes, whatever their encoding.
        stdout = click.get_binary_stream("stdout")
        stdout.write(patch_bytes(unified_diff(outcome.changes)))
        stdout.flush()
    for problem in outcome.internal_errors:
        click.echo(f"internal error: {problem}", err=True)
    for line in outcome.review_lines():
        click.echo(f"review: {line}", err=True)
    Console(stderr=True, soft_wrap=True).print(outcome.summary())
    sys.exit(1 if (check and outcome.changes) or result.errors else 0)


def _target_level(targets: list[Path], asked: str) -> str:
    """`auto`: the level of the kernel tree's headers. A tree without mmap_prepare at all gets the
    newest level (or the one asked), and one line on stderr saying the output needs a newer core."""
    from .api_level import AUTO, detect_tree
    detected = detect_tree(tree_root(targets))
    level = str(detected) if asked == AUTO else asked
    if not detected.detection.has_hook:
        click.echo(f"mmapconv convert: {detected.detection.tree} has no mmap_prepare: the conversion is for "
                   f"the {level} API and builds only on a kernel that has it", err=True)
    return level


def _add_optional_commands() -> None:
    """Commands of the lint side register here when their package is present."""
    try:
        from .lint import cli as lint_cli
    except ImportError:
        return
    for name in ("lint_cmd", "rules_cmd", "rule_cmd", "check_patch_cmd"):
        cmd = getattr(lint_cli, name, None)
        if cmd is not None:
            main.add_command(cmd)


_add_optional_commands()
