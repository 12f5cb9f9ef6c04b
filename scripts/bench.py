#!/usr/bin/env python3
"""Wall time of `mmapconv scan`, `lint` and `convert` as ratios to grep over the same tree.

The baseline is `grep -rlE '\\.mmap\\s*=' TREE`, measured in the same run,
interleaved with mmapconv, after one warm-up of each (page cache). These
machines are noisy: only ratios are printed, medians of --runs; no absolute
time anywhere.

    python3 scripts/bench.py [TREE] [--runs 3] [--max-ratio 5] [--only scan,lint]

--max-ratio applies to scan and lint (both target 5x grep); convert, which
also writes a diff of the whole tree, is printed only.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_TREE = Path(os.environ.get("MMAPCONV_KERNEL_TREE",
                                   Path.home() / ".cache/mmapconv-eval/linux-source-6.12"))
BOUNDED = ("scan", "lint")


def wall(cmd: list[str], ok: tuple[int, ...] = (0,)) -> float:
    """Seconds the command took; a command that fails measures nothing, so it stops the benchmark."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    if proc.returncode not in ok:
        sys.exit(f"{' '.join(cmd[:4])}... failed with exit {proc.returncode}: {proc.stderr.decode(errors='replace')[-300:]}")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", nargs="?", type=Path, default=DEFAULT_TREE)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-ratio", type=float, default=None, help="exit 1 when scan/grep or lint/grep exceeds it")
    parser.add_argument("--only", default="scan,lint,convert", help="the commands to time (comma-separated)")
    args = parser.parse_args()
    grep = ["grep", "-rlE", r"\.mmap\s*=", str(args.tree)]
    tool = [sys.executable, "-m", "mmapconv"]
    every = {
        "scan": (tool + ["scan", "--format", "json", str(args.tree)], (0,)),
        # Exit 1 is lint's answer (findings), not a failure.
        "lint": (tool + ["lint", "--format", "json", str(args.tree)], (0, 1)),
        "convert": (tool + ["convert", str(args.tree)], (0,)),
    }
    wanted = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in every]
    if unknown or not wanted:
        parser.error(f"--only: choose among {', '.join(every)}")
    commands = {"grep": (grep, (0,)), **{name: every[name] for name in wanted}}
    for cmd, ok in commands.values():
        wall(cmd, ok)  # warm the page cache and the interpreter's files
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, (cmd, ok) in commands.items():
            times[name].append(wall(cmd, ok))
    base = statistics.median(times["grep"])
    ratios = {name: statistics.median(t) / base for name, t in times.items() if name != "grep"}
    for name, ratio in ratios.items():
        print(f"{name}/grep: {ratio:.2f}x (median of {args.runs}, {os.cpu_count()} cores)")
    over = [name for name in BOUNDED if name in ratios and args.max_ratio is not None and ratios[name] > args.max_ratio]
    for name in over:
        print(f"{name} is slower than {args.max_ratio}x grep", file=sys.stderr)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
