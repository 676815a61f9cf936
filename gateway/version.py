"""The version of this installation, as pip recorded it (pyproject.toml is where it is written)."""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "community-edge"


def version() -> str:
    """The installed distribution's version; `0+unknown` in a source tree never installed."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"
