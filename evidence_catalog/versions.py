"""Versions of this library and the software it relies on, as recorded in provenance."""

from __future__ import annotations

import platform
import sqlite3
from importlib.metadata import PackageNotFoundError, version

from evidence_catalog.model import Agent, AgentKind

try:
    __version__ = version("evidence-catalog")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """Versions of this library, Python, SQLite, exifread and yt-dlp (``None`` if absent)."""
    return {
        "evidence-catalog": __version__,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "exifread": _package_version("exifread"),
        "yt-dlp": _package_version("yt-dlp"),
    }


def library_agent() -> Agent:
    """This library as a software agent."""
    return Agent(name="evidence-catalog", kind=AgentKind.SOFTWARE, version=__version__)


def tool_agents() -> tuple[Agent, ...]:
    """The software that performs an acquisition from disk: this library and Python."""
    return (
        library_agent(),
        Agent(name=f"{platform.python_implementation()}", kind=AgentKind.SOFTWARE, version=platform.python_version()),
    )
