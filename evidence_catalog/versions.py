"""Versions of this library and the software it relies on, as recorded in provenance.

Nothing is looked up when the module is imported: ``importlib.metadata`` (some 40 ms) is loaded
the first time a version is asked for, so that ``import evidence_catalog`` and
``evidence-catalog --help`` do not pay for it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evidence_catalog.model import Agent

#: ``__version__`` (this library's version) is looked up on first use; see :func:`__getattr__`.
__version__: str


def __getattr__(name: str) -> str:
    """``__version__``: this library's version, looked up the first time it is asked for."""
    if name == "__version__":
        return _own_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _own_version() -> str:
    return package_version("evidence-catalog") or "0.0.0+unknown"  # a source tree that was not installed


@functools.cache
def package_version(name: str) -> str | None:
    """The installed version of the distribution *name* (``None`` if it is not installed), looked
    up once per process: ``importlib.metadata`` parses the package's metadata file each time
    (about 1 ms), which adding or importing thousands of pictures paid once a picture."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """Versions of this library, Python, SQLite, exifread, PyAV and yt-dlp (``None`` if absent;
    PyAV's FFmpeg is named with what it reads, in each audio or video artifact's ``extractor``)."""
    import platform
    import sqlite3

    return {
        "evidence-catalog": _own_version(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "exifread": package_version("exifread"),
        "pyav": package_version("av"),
        "yt-dlp": package_version("yt-dlp"),
    }


def library_agent() -> Agent:
    """This library as a software agent."""
    from evidence_catalog.model import Agent, AgentKind

    return Agent(name="evidence-catalog", kind=AgentKind.SOFTWARE, version=_own_version())


@functools.cache
def tool_agents() -> tuple[Agent, ...]:
    """The software that performs an acquisition from disk: this library and Python (the same
    frozen values for the life of the process, made once: every file added names them)."""
    import platform

    from evidence_catalog.model import Agent, AgentKind

    return (
        library_agent(),
        Agent(name=f"{platform.python_implementation()}", kind=AgentKind.SOFTWARE, version=platform.python_version()),
    )
