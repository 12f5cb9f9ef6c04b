"""Loads the data files under rules/ (installed as the package mmapconv.rules)."""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def _rules_dir():
    try:
        return resources.files("mmapconv.rules")
    except ModuleNotFoundError:
        # Running from a checkout without installing: rules/ sits beside the package.
        return Path(__file__).resolve().parent.parent / "rules"


@lru_cache(maxsize=None)
def load(name: str) -> dict:
    return tomllib.loads((_rules_dir() / f"{name}.toml").read_text(encoding="utf-8"))
