"""The ``evidence-catalog`` command group, its exit codes and its entry point.

Exit codes (docs/cli.md): 0 success, also when nothing is found ("no matches" on standard error);
1 the command found or left something wrong (verify's problems, a failed capture ...); 2 bad input
or usage; 3 a bug.  User errors are one line on standard error naming the file or field and the
reason, never a traceback: :func:`main` turns every exception into its exit code.
"""

from __future__ import annotations

import gc
import importlib
import signal
import sys
import traceback
from collections.abc import Sequence

import click

from evidence_catalog.cli.output import one_line
from evidence_catalog.errors import EvidenceError, IntegrityError

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # as a shell reports SIGINT


#: The module (of this package) that defines each command.  A call runs one command, and imports
#: that command's module only, when the command is looked up; ``--help`` and a name that is no
#: command import them all.  The library behind a command is imported inside it, as it runs.
COMMAND_MODULES: dict[str, str] = {
    **dict.fromkeys(("add", "capture", "ingest"), "adding"),
    "analyze": "analyzing",
    **dict.fromkeys(("export", "exhibit", "import"), "interchange"),
    **dict.fromkeys(("claim", "assess", "relate", "tag", "flag", "note", "categories"), "judging"),
    **dict.fromkeys(("list", "show", "search", "similar", "log", "link"), "reading"),
    "serve": "serving",
    **dict.fromkeys(("init", "schema"), "setup"),
    **dict.fromkeys(("verify", "fsck", "checkpoint", "change-key"), "verifying"),
}


def load_commands() -> None:
    """Import every command's module (each registers its commands on :data:`cli`)."""
    for module in sorted(set(COMMAND_MODULES.values())):
        importlib.import_module(f"{__package__}.{module}")


class _CommandsInModules(click.Group):
    """The command group, whose commands are imported from :data:`COMMAND_MODULES` when
    first asked for; listed (for ``--help``) by those names without importing them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMAND_MODULES))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            module = COMMAND_MODULES.get(cmd_name)
            if module is None:
                load_commands()  # no such command: the error suggests the names close to it
            else:
                importlib.import_module(f"{__package__}.{module}")
        return self.commands.get(cmd_name)


def _print_versions(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from evidence_catalog.native import commitments_walk
    from evidence_catalog.versions import versions

    for name, version in versions().items():
        click.echo(f"{name} {version or 'not installed'}")
    click.echo(f"commitments {commitments_walk()}")
    ctx.exit(EXIT_OK)


@click.group(cls=_CommandsInModules, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_versions,
    help="Show versions of evidence-catalog, Python, SQLite, exifread, PyAV and yt-dlp, and how commitments are made.",
)
def cli() -> None:
    """Catalogue evidence with provenance, integrity checks and a chain of custody."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return its exit code (used by the console script)."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="evidence-catalog", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE
    except (click.exceptions.Abort, KeyboardInterrupt):  # click turns Ctrl-C into Abort
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except IntegrityError as exc:
        click.echo(f"error: {one_line(exc)}", err=True)
        return EXIT_PROBLEMS
    except (EvidenceError, OSError) as exc:
        click.echo(f"error: {one_line(exc)}", err=True)
        return EXIT_USAGE
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except Exception:  # noqa: BLE001 -- a bug: say so, keep the details for the report
        click.echo("internal error in evidence-catalog (please report it with the lines below):", err=True)
        click.echo(traceback.format_exc(), err=True)
        return EXIT_INTERNAL
    return EXIT_OK


#: Whether the library's import is to be frozen out of the collector's walks (see
#: :func:`~evidence_catalog.cli.options.library_imports`): in the console script's process, once.
_FREEZE_IMPORTS = False


def freezes_imports() -> bool:
    """Whether this is the console script's process, and its library is not imported yet: the
    caller then freezes what the import makes (and this says no from then on)."""
    global _FREEZE_IMPORTS
    found, _FREEZE_IMPORTS = _FREEZE_IMPORTS, False
    return found


def run() -> None:
    """Console-script wrapper that exits with :func:`main`'s code.

    Like other Unix tools, the command ends quietly when the reader of its output goes away
    (``evidence-catalog log | head``): the shell then reports 141.  The process is this one
    command's: the library's import is frozen out of the cycle collector's walks
    (:func:`~evidence_catalog.cli.options.library_imports`).
    """
    global _FREEZE_IMPORTS
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    _FREEZE_IMPORTS = True
    code = main()
    # The process ends here: its objects need not be collected one by one.  Without this, the
    # collections the interpreter runs as it shuts down walk every object the imports made
    # (SQLAlchemy's and pydantic's are many, and in cycles) to free what the operating system
    # frees anyway, about 0.1 s on every command.  Files, the database and the work areas are
    # closed by the commands themselves, and exit handlers still run.
    gc.freeze()
    sys.exit(code)
