"""The options many commands share, and opening the catalog they name.

What a command module imports when it is loaded is what ``evidence-catalog --help`` costs: click
and this package's light modules only.  The library (:class:`Catalog`, the model) is imported
when a command runs; the values of a choice (:class:`LazyChoice`) when they are first needed.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from evidence_catalog.cli.output import printable
from evidence_catalog.errors import CatalogNotFoundError, InputError

if TYPE_CHECKING:
    from evidence_catalog.catalog import Catalog
    from evidence_catalog.filters import RecordFilter

CATALOG_ENV = "EVIDENCE_CATALOG"

F = TypeVar("F", bound=Callable[..., Any])


class _CatalogOption(click.Option):
    """``--catalog``, whose absence says how to name a catalog once for every command."""

    def process_value(self, ctx: click.Context, value: Any) -> Any:
        try:
            return super().process_value(ctx, value)
        except click.MissingParameter as exc:
            raise click.MissingParameter(
                f"Name the catalog directory with --catalog DIRECTORY, or once for every command with "
                f'the environment variable {CATALOG_ENV} (export {CATALOG_ENV}="$HOME/case/catalog").',
                ctx=ctx,
                param=self,
            ) from exc


def catalog_option(f: F) -> F:
    """``--catalog DIRECTORY``, required, from ``$EVIDENCE_CATALOG`` when not given."""
    return click.option(
        "--catalog",
        "catalog_path",
        cls=_CatalogOption,
        envvar=CATALOG_ENV,
        required=True,
        type=click.Path(file_okay=False),
        help=f"Catalog directory (default: ${CATALOG_ENV}).",
    )(f)


def operator_option(f: F) -> F:
    """``--operator``: who performs an action that is logged."""
    return click.option(
        "--operator",
        metavar="'NAME <EMAIL>'",
        help="Who performs this action (default: $EVIDENCE_CATALOG_OPERATOR, then the operator set at init, "
        "then the operating-system user at this host).",
    )(f)


def quiet_option(f: F) -> F:
    """``--quiet``/``-q``: no progress bars or summaries."""
    return click.option("--quiet", "-q", is_flag=True, help="No progress bars or summaries.")(f)


def json_option(f: F) -> F:
    """``--json``: print JSON (with :func:`~evidence_catalog.cli.output.echo_json`) instead of text."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(f)


class LazyChoice(click.Choice[str]):
    """A choice whose values come from the library, found the first time they are needed (to
    check a value given, complete one or show a command's help), not when the command is made."""

    def __init__(self, values: Callable[[], Iterable[str]]) -> None:
        super().__init__(())
        self._values = values
        self._choices: tuple[str, ...] | None = None  # not known yet

    @property
    def choices(self) -> tuple[str, ...]:
        """The values, found on first use."""
        if self._choices is None:
            self._choices = tuple(self._values())
        return self._choices

    @choices.setter
    def choices(self, values: tuple[str, ...]) -> None:
        self._choices = tuple(values)


def library_values(module: str, name: str) -> LazyChoice:
    """A choice of the values *name* (a sequence of text) of ``evidence_catalog.<module>``, e.g.
    ``library_values("ingest.formats", "INGEST_FORMATS")``, imported when first needed."""
    return LazyChoice(lambda: getattr(importlib.import_module(f"evidence_catalog.{module}"), name))


def choices(kind: str) -> click.Choice[str]:
    """The values of the enumeration *kind* of :mod:`evidence_catalog.model` (``"RelationKind"``),
    as a choice of an option."""
    return LazyChoice(
        lambda: [member.value for member in getattr(importlib.import_module("evidence_catalog.model"), kind)]
    )


def record_filter_options(f: F) -> F:
    """The options ``list`` and ``search`` share to choose records by their current state."""
    options = [
        click.option("--status", type=choices("VerificationStatus"), help="Records with this current status."),
        click.option("--category", metavar="CODE", help="Records with a claim of this category."),
        click.option("--tag", "tags", multiple=True, help="Records with this tag (repeatable: all of them)."),
        click.option("--flag", "flags", multiple=True, type=choices("SensitivityKind"), help="Records with this flag."),
        click.option("--bbox", metavar="W,S,E,N", help="Records with a claim placed in this box (WGS 84 degrees)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def record_criteria(
    catalog: Catalog,
    status: str | None,
    category: str | None,
    tags: Sequence[str],
    flags: Sequence[str],
    bbox: str | None,
    since: str | None = None,
    until: str | None = None,
) -> RecordFilter | None:
    """The record filter the options of :func:`record_filter_options` (and a command's own
    time bounds) give, or ``None`` when none was given."""
    if not any((status, category, tags, flags, bbox, since, until)):
        return None
    return catalog.record_filter(
        status=status, category=category, tags=tags, flags=flags, bbox=_bbox(bbox), since=since, until=until
    )


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """``--bbox WEST,SOUTH,EAST,NORTH`` as four numbers."""
    if text is None:
        return None
    parts = text.split(",")
    try:
        west, south, east, north = (float(p) for p in parts)
    except ValueError:
        raise InputError(
            f"{printable(text)!r} is not WEST,SOUTH,EAST,NORTH in decimal degrees (e.g. 36.1,47.9,38.4,49.2)",
            where="bbox",
        ) from None
    return west, south, east, north


@contextlib.contextmanager
def library_imports() -> Iterator[None]:
    """In the console script's process (:func:`~evidence_catalog.cli.app.run`), the first time:
    import the library (SQLAlchemy, SQLModel, pydantic, the data model: hundreds of thousands
    of objects that live as long as the command) with the cycle collector paused, then move
    everything there is into the collector's permanent generation (``gc.freeze``): no
    collection walks those objects again, during the imports or after them.  That was about
    a tenth of a command that reads a small catalog.  Anywhere else -- a script or the tests
    calling :func:`~evidence_catalog.cli.app.main`, which may run many commands and drop what
    each made -- nothing is paused or frozen: what is frozen is never collected."""
    from evidence_catalog.cli import app

    if not app.freezes_imports():
        yield
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def open_catalog(catalog_path: str, operator: str | None = None) -> Catalog:
    """The catalog a command names, acting as *operator*; a missing one named by
    ``$EVIDENCE_CATALOG`` is said to come from there."""
    with library_imports():
        from evidence_catalog.catalog import Catalog  # the library, when a command runs

    try:
        return Catalog.open(catalog_path, operator=operator)
    except CatalogNotFoundError as exc:
        ctx = click.get_current_context(silent=True)
        source = None if ctx is None else ctx.get_parameter_source("catalog_path")
        if source is not click.core.ParameterSource.ENVIRONMENT:
            raise
        # The directory came from the environment, not the command line: say so, and how to change it.
        raise CatalogNotFoundError(
            f"{exc.message} (the directory named by ${CATALOG_ENV}; set it to a catalog, or give --catalog)",
            where=exc.where,
        ) from exc
