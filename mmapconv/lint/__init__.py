"""The lint engine: rules in rules/lint.toml, one check module per rule family.

    from mmapconv.lint import lint_paths
    for finding in lint_paths([Path("drivers/char/mem.c")]).findings: ...
"""
from .catalogue import API_LEVELS, DEFAULT_API, RULES, SEVERITIES, Rule
from .engine import LintResult, lint_paths, lint_source
from .finding import Finding
from .registry import Context, MmapUse, register

__all__ = [
    "API_LEVELS", "DEFAULT_API", "RULES", "SEVERITIES", "Rule", "LintResult", "lint_paths",
    "lint_source", "Finding", "Context", "MmapUse", "register",
]
