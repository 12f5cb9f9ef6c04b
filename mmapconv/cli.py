"""Command line: `mmapconv scan|convert|lint|check-patch|rules|rule`.

Exit codes (scan): 0 all files read and parsed; 1 some files could not be
read or parsed (listed, the rest scanned); 2 usage error.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from .report import scan_formats
from .scan import Scanner

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def default_paths(paths: tuple[str, ...]) -> list[Path]:
    return [Path(p) for p in paths] if paths else [FIXTURES]


def tree_root(paths: list[Path]) -> Path:
    if len(paths) == 1 and paths[0].is_dir():
        return paths[0]
    parents = [p if p.is_dir() else p.parent for p in paths]
    common = Path(*Path(parents[0]).resolve().parts)
    for p in parents[1:]:
        while not str(p.resolve()).startswith(str(common)):
            common = common.parent
    return common


def run_scan(paths: list[Path], jobs: int | None, show_progress: bool, all_ops: bool = False):
    root = tree_root(paths)
    stderr = Console(stderr=True)
    if show_progress and stderr.is_terminal:
        with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=stderr, transient=True) as bar:
            task = bar.add_task("scanning", total=None)
            return Scanner(root, jobs, lambda n: bar.advance(task, n), all_ops).scan(paths)
    return Scanner(root, jobs, all_ops=all_ops).scan(paths)


@click.group()
@click.version_option(package_name="mmapconv")
def main() -> None:
    """Move Linux drivers from file_operations.mmap to .mmap_prepare."""


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
