"""The ``evidence-catalog`` command: a thin layer of click commands over :class:`Catalog`.

:mod:`~evidence_catalog.cli.app` holds the command group, the exit codes and the entry point;
the commands are in one module per family (adding, reading, judging, verifying, interchange,
setup), on options, output and progress bars they share.  The console script (:func:`run`)
imports the module of the command it runs only (see :data:`~evidence_catalog.cli.app.COMMAND_MODULES`);
:data:`cli` taken from this package has every command registered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evidence_catalog.cli.app import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, main, run
from evidence_catalog.cli.options import CATALOG_ENV
from evidence_catalog.cli.output import NOTHING_FOUND

if TYPE_CHECKING:
    from evidence_catalog.cli.app import cli

__all__ = [
    "CATALOG_ENV",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "EXIT_USAGE",
    "NOTHING_FOUND",
    "cli",
    "main",
    "run",
]


def __getattr__(name: str) -> Any:
    """``cli``: the command group with every command registered (scripts, tests and the docs
    read its commands), imported when first asked for (PEP 562)."""
    if name != "cli":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from evidence_catalog.cli import app

    app.load_commands()
    globals()["cli"] = app.cli
    return app.cli
