"""What every command prints the same way: JSON, free text made safe for a terminal, people,
one-line errors, and "no matches"."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterator
from typing import Any

import click

from evidence_catalog import model
from evidence_catalog.paths import display_path

#: What ``list``, ``search``, ``link --suggest`` and ``log`` say (on standard error) when nothing matches.
NOTHING_FOUND = "no matches"


def printable(text: str | os.PathLike[str]) -> str:
    """Free text (notes, URLs, names, tags) as one line a terminal cannot be tricked by: control
    characters, line breaks and bidirectional overrides are shown escaped."""
    return display_path(text)


def agent_text(agent: model.Agent) -> str:
    """Who acted, as ``name <email> at host`` (what is known of it), made printable."""
    text = agent.name + (f" <{agent.email}>" if agent.email else "")
    return printable(text + (f" at {agent.host}" if agent.host else ""))


def echo_json(data: Any) -> None:
    """Print *data* as JSON on standard output: the one way every command's ``--json`` output is
    made (indented by two spaces, text as it is rather than escaped to ASCII).

    An iterator is printed as a JSON array an item at a time, as it is read, so that a long
    listing starts at once and never sits in memory whole; the text is the same as the array's.
    """
    if not isinstance(data, Iterator):
        click.echo(_json_text(data))
        return
    click.echo("[", nl=False)
    first = True
    for item in data:
        click.echo(("" if first else ",") + "\n" + textwrap.indent(_json_text(item), "  "), nl=False)
        first = False
    click.echo("]" if first else "\n]")


def _json_text(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2)


def echo_nothing_found(*, among_readable: bool = False) -> None:
    """What a command that lists things says when nothing matches: a line on standard error
    (standard output stays empty, and ``--json`` prints ``[]``); the exit code stays 0."""
    click.echo(NOTHING_FOUND + (" among the records that could be read" if among_readable else ""), err=True)


def one_line(exc: BaseException) -> str:
    """An error as the one line the user sees after ``error:``: what failed and why, never a traceback."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{display_path(exc.filename)}: {exc.strerror or exc}"
    return printable(str(exc))
