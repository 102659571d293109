"""The ``evidence-catalog`` command: a thin layer of click commands over :class:`Catalog`.

:mod:`~evidence_catalog.cli.app` holds the command group, the exit codes and the entry point;
the commands are in one module per family (adding, reading, judging, verifying, interchange,
setup), on options, output and progress bars they share.  Importing this package registers
every command on :data:`cli`.
"""

from evidence_catalog.cli import adding, analyzing, interchange, judging, reading, serving, setup, verifying  # noqa: F401
from evidence_catalog.cli.app import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, cli, main, run
from evidence_catalog.cli.options import CATALOG_ENV
from evidence_catalog.cli.output import NOTHING_FOUND

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
