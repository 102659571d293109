"""Regenerate the command reference in docs/cli.md from the commands' own ``--help``.

The part of ``docs/cli.md`` between ``<!-- BEGIN GENERATED -->`` and ``<!-- END GENERATED -->`` is
the verbatim help of ``evidence-catalog`` and of every command, as printed on a terminal at least
100 columns wide.  Everything outside those markers is written by hand and left alone::

    python docs/cli_reference.py           # rewrite docs/cli.md
    python docs/cli_reference.py --check   # exit 1 if docs/cli.md is out of date
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import click
from click.testing import CliRunner

from evidence_catalog.cli import cli

CLI_DOC = Path(__file__).with_name("cli.md")
BEGIN = "<!-- BEGIN GENERATED -->"
END = "<!-- END GENERATED -->"
PROG = "evidence-catalog"
#: Click renders help at (terminal width - 2), capped by the CLI at 100 columns; this is the
#: width a terminal of 100 columns or more shows, whatever machine generates the reference.
TERMINAL_WIDTH = 98
#: Variables that must not change what the help says while it is generated.
_CLEAN_ENV: dict[str, str | None] = {
    "EVIDENCE_CATALOG": None,
    "EVIDENCE_CATALOG_OPERATOR": None,
    "COLUMNS": None,
    "LINES": None,
}


def command_paths(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command below *group* as a tuple of names (``("add",)``), in the order help lists them."""
    ctx = click.Context(group, info_name=PROG)
    paths: list[tuple[str, ...]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, (*prefix, name)))
    return paths


def help_text(*names: str) -> str:
    """The output of ``evidence-catalog NAMES... --help``."""
    result = CliRunner().invoke(
        cli,
        [*names, "--help"],
        prog_name=PROG,
        terminal_width=TERMINAL_WIDTH,
        env=_CLEAN_ENV,
        catch_exceptions=False,
    )
    if result.exit_code != 0:
        raise RuntimeError(f"{PROG} {' '.join(names)} --help exited with {result.exit_code}: {result.output}")
    return result.output


def _section(names: tuple[str, ...]) -> str:
    title = " ".join((PROG, *names))
    return f"### `{title}`\n\n```text\n$ {title} --help\n{help_text(*names).rstrip()}\n```\n"


def generated_block() -> str:
    """The text that belongs between the markers (markers included)."""
    sections = [_section(())] + [_section(names) for names in command_paths()]
    note = "<!-- Made by docs/cli_reference.py from the commands' --help; edit the code, not this part. -->"
    return f"{BEGIN}\n{note}\n\n" + "\n".join(sections) + f"\n{END}"


def render(document: str) -> str:
    """*document* with its generated part replaced by the current help."""
    if document.count(BEGIN) != 1 or document.count(END) != 1:
        raise ValueError(f"{CLI_DOC.name} must contain {BEGIN} and {END} exactly once each")
    if document.index(END) < document.index(BEGIN):
        raise ValueError(f"{END} comes before {BEGIN} in {CLI_DOC.name}")
    head, rest = document.split(BEGIN)
    _, tail = rest.split(END)
    return head + generated_block() + tail


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite docs/cli.md, or with ``--check`` report whether it is up to date."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is out of date; change nothing")
    args = parser.parse_args(argv)
    current = CLI_DOC.read_text(encoding="utf-8")
    wanted = render(current)
    if args.check:
        if wanted != current:
            print(f"docs/{CLI_DOC.name} is out of date; run: python docs/cli_reference.py", file=sys.stderr)
            return 1
        return 0
    if wanted != current:
        CLI_DOC.write_text(wanted, encoding="utf-8")
        print(f"rewrote docs/{CLI_DOC.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
