"""The tool's identity, as the machine formats report it."""
from __future__ import annotations

from importlib import metadata

NAME = "mmapconv"
FALLBACK_URI = "https://pypi.org/project/mmapconv/"


def version() -> str:
    try:
        return metadata.version(NAME)
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def information_uri() -> str:
    """The project URL from the package metadata, when the package declares one."""
    try:
        meta = metadata.metadata(NAME)
    except metadata.PackageNotFoundError:
        return FALLBACK_URI
    for entry in meta.get_all("Project-URL") or []:
        return entry.split(",", 1)[-1].strip()
    return meta.get("Home-page") or FALLBACK_URI
