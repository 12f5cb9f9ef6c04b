"""The rule catalogue (rules/lint.toml): what each code means and how it is reported."""
from __future__ import annotations

from dataclasses import dataclass

from ..rules_data import load

_DATA = load("lint")
_API = load("api")

SEVERITIES = ("info", "warning", "error")  # ascending
API_LEVELS: tuple[str, ...] = tuple(_API["levels"])
DEFAULT_API: str = _API["default"]
KNOWLEDGE = {k: v for k, v in _DATA.items() if k != "rules"}


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    severity: str
    fix_safety: str
    message: str
    what: str
    why: str
    example: str
    fix: str
    fixed: str

    def format(self, **fields) -> str:
        return self.message.format(**fields)


def _rules(data: dict) -> dict[str, Rule]:
    return {code: Rule(code=code, **{k: v.strip("\n") if isinstance(v, str) else v for k, v in spec.items()})
            for code, spec in sorted(data["rules"].items())}


RULES: dict[str, Rule] = _rules(_DATA)
# The unsafe fixes of `convert --unsafe-fixes` (rules/fixes.toml): documented like rules, never reported by lint.
FIXES: dict[str, Rule] = _rules(load("fixes"))


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)


def api_level(api: str) -> dict:
    """The level's entry in rules/api.toml: its flag style and helper templates."""
    return _API["levels"][api]


def has_vma_flags(api: str) -> bool:
    return api_level(api)["flag_style"] == "bits"
