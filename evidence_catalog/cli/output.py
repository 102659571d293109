"""What every command prints the same way: JSON, free text made safe for a terminal, people,
one-line errors, and "no matches"."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import click

from evidence_catalog.errors import EvidenceError
from evidence_catalog.paths import display_path

if TYPE_CHECKING:
    from evidence_catalog import model

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


#: The library's messages name its parameters; the command line names its options.  Each entry:
#: a phrase of a library message (and the ``where`` it comes with, when that names a parameter
#: too), and what the command line says instead.  Matched exactly, so a file or a catalog that
#: happens to be called ``database`` is never taken for the option.
OPTION_WORDS: tuple[tuple[str | None, str, str | None, str], ...] = (
    ("database", "leave database out", "--database", "leave --database out"),
    ("operator", "operator is not valid UTF-8 text", "--operator", "operator is not valid UTF-8 text"),
    ("operator", "operator name must not be blank", "--operator", "operator name must not be blank"),
    (
        "operator",
        "operator must not contain control characters",
        "--operator",
        "operator must not contain control characters",
    ),
    (None, "(use recursive=True to add its files)", None, "(use --recursive to add its files)"),
    (None, "needs a position (latitude and longitude)", None, "needs a position (--lat and --lon)"),
    (None, "give its URL (url, ", None, "give its URL (--tsa, "),
    (None, "use cookies_file for a site that needs a login", None, "use --cookies for a site that needs a login"),
    (None, "(give the exporting catalog as blobs)", None, "(give the exporting catalog with --blobs)"),
    (None, "; blobs is for JSON and JSON Lines", None, "; --blobs is for JSON and JSON Lines"),
    (None, "explicitly: accept_unsigned=True)", None, "explicitly: --accept-unsigned)"),
    (None, "`fsck(remove=True)` took them", None, "`fsck --remove` took them"),
)


def in_option_words(message: str, where: str | None = None) -> tuple[str, str | None]:
    """A library message (and its ``where``) as the command line says it: the parameters it
    names (``recursive=True``) as the options that set them (``--recursive``)."""
    for parameter_where, phrase, option_where, option_phrase in OPTION_WORDS:
        if phrase in message and parameter_where in (None, where):
            message = message.replace(phrase, option_phrase)
            where = option_where or where
    return message, where


def one_line(exc: BaseException) -> str:
    """An error as the one line the user sees after ``error:``: what failed and why, never a traceback."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{display_path(exc.filename)}: {exc.strerror or exc}"
    if isinstance(exc, EvidenceError):
        message, where = in_option_words(exc.message, exc.where)
        if (message, where) != (exc.message, exc.where):
            return printable(f"{where}: {message}" if where else message)
    return printable(str(exc))


def echo_quarantined(moved: Sequence[tuple[str, str]]) -> None:
    """Say, for each stored copy found damaged and replaced, where the damaged copy was kept."""
    for sha256, kept_as in moved:
        click.echo(
            f"warning: the stored copy of {sha256} was damaged; it was replaced by these bytes "
            f"and kept as blobs/{kept_as}",
            err=True,
        )
