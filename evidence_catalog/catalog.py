"""The catalog facade: the one object scripts and the CLI use.

>>> from evidence_catalog import Catalog
>>> catalog = Catalog.init("my-catalog")                      # doctest: +SKIP
>>> [result] = catalog.add(["photo.jpg"], tags=["school"])    # doctest: +SKIP
>>> catalog.verify().ok                                        # doctest: +SKIP
True

A catalog directory holds ``catalog.toml``, ``catalog.db`` (SQLite) and ``blobs/``.  Adding a file
stores its bytes first (write-once, fsynced), then writes artifact, record, acquisition and the
custody event in one database transaction: a failure at any point leaves either nothing or an
unreferenced blob, never a record that claims bytes the store does not have.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Concatenate, ParamSpec, TypeVar

from evidence_catalog import model
from evidence_catalog.config import CatalogConfig
from evidence_catalog.errors import EvidenceError
from evidence_catalog.filters import RecordFilter
from evidence_catalog.operations import log_key as key_operations  # the name `log_key` is a property here
from evidence_catalog.operations import opening, reading
from evidence_catalog.operations.context import Clock, Context
from evidence_catalog.store.blobs import BlobStorage
from evidence_catalog.store.database import CatalogDatabase

_P = ParamSpec("_P")
_R = TypeVar("_R")


class _Later:
    """A module of operations imported when one of its operations is first looked up on a
    :class:`Catalog`, not with the facade: opening and reading a catalog need none of them, and
    their adapters (yt-dlp's driver, the ingest readers, the BagIt writer and reader ...) cost
    a command that only lists or verifies a tenth of a second.  ``adding.add`` names the
    operation; :func:`_delegate` makes the method that imports it on first use."""

    def __init__(self, module: str) -> None:
        self.module = module

    def __getattr__(self, name: str) -> _Named:
        return _Named(self.module, name)


class _Named:
    """An operation by the name of its module and function."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def load(self) -> Callable[..., Any]:
        import importlib

        module = importlib.import_module(f"evidence_catalog.operations.{self.module}")
        found: Callable[..., Any] = getattr(module, self.name)
        return found


class _LaterMethod:
    """A method of :class:`Catalog` made when first looked up (on the class or an instance):
    its operation is imported, the method made by :func:`_delegate` and put in its place, so
    that from then on it is an ordinary function of the class, as every method made at once."""

    def __init__(self, operation: _Named) -> None:
        self.operation = operation
        self.owner: type | None = None
        self.name = operation.name

    def __set_name__(self, owner: type, name: str) -> None:
        self.owner, self.name = owner, name

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        method = _delegate(self.operation.load())
        setattr(self.owner or owner, self.name, method)
        return method if instance is None else method.__get__(instance, owner)


if TYPE_CHECKING:
    # INGEST_FORMATS: the CLI's choices, named here as before.
    from evidence_catalog.ingest.formats import INGEST_FORMATS as INGEST_FORMATS
    from evidence_catalog.operations import (
        adding,
        analyzing,
        capturing,
        capturing_page,
        exhibiting,
        exporting,
        housekeeping,
        importing,
        ingesting,
        judging,
        log_proofs,
        migrating,
        record_checks,
        similar,
        verifying,
        viewing,
    )
    from evidence_catalog.operations.exporting import EXPORT_FORMATS as EXPORT_FORMATS  # the CLI's choices
    from evidence_catalog.operations.log_proofs import TSA_ENV as TSA_ENV  # where scripts and tests import it from
    from evidence_catalog.store.keyfiles import LogKey
else:
    adding, capturing, exporting, housekeeping = map(_Later, ("adding", "capturing", "exporting", "housekeeping"))
    importing, ingesting, judging, log_proofs = map(_Later, ("importing", "ingesting", "judging", "log_proofs"))
    migrating = _Later("migrating")
    analyzing = _Later("analyzing")
    similar = _Later("similar")
    exhibiting = _Later("exhibiting")
    capturing_page = _Later("capturing_page")
    # Verification and the log's views: ``list`` and ``show`` need neither.
    verifying, record_checks, viewing = map(_Later, ("verifying", "record_checks", "viewing"))

    #: Names this module has always offered, found in their modules when first asked for.
    _LATER_NAMES = {
        "INGEST_FORMATS": "evidence_catalog.ingest.formats",
        "EXPORT_FORMATS": "evidence_catalog.operations.exporting",
        "TSA_ENV": "evidence_catalog.operations.log_proofs",
        "LogKey": "evidence_catalog.store.keyfiles",
    }

    def __getattr__(name: str) -> Any:
        if name in _LATER_NAMES:
            import importlib

            value = getattr(importlib.import_module(_LATER_NAMES[name]), name)
            globals()[name] = value
            return value
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _delegate(operation: Callable[Concatenate[Context, _P], _R]) -> Callable[Concatenate[Catalog, _P], _R]:
    """A :class:`Catalog` method that is *operation* run in the catalog's context.

    The method keeps the operation's name, parameters (``self`` in place of the context) and
    documentation, which is where each operation's behaviour is described, next to its work.
    After it, failed or not, a damaged stored copy the blob store moved aside that no committed
    event says yet (an operation that failed after the move) is logged in a transaction of its
    own (:meth:`~evidence_catalog.operations.context.Context.log_moved_left`).
    """

    if isinstance(operation, _Named):  # an operation of a module imported on first use
        return _LaterMethod(operation)  # type: ignore[return-value]

    @functools.wraps(operation)
    def method(self: Catalog, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return operation(self._ctx, *args, **kwargs)
        finally:
            if self._ctx.blobs.moved:  # a damaged copy moved aside that no committed event says yet
                self._ctx.log_moved_left()

    signature = inspect.signature(operation)
    _context, *parameters = signature.parameters.values()
    self_parameter = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    method.__signature__ = signature.replace(parameters=[self_parameter, *parameters])  # type: ignore[attr-defined]
    method.__module__ = __name__
    method.__qualname__ = f"Catalog.{operation.__name__}"
    return method


class Catalog:
    """An evidence catalog in a directory: records, blobs and the custody log."""

    def __init__(
        self,
        path: Path,
        config: CatalogConfig,
        database: CatalogDatabase,
        *,
        operator: model.Agent | str | None = None,
        clock: Clock = model.utc_now,
        key_passphrase: str | None = None,
    ) -> None:
        self._ctx = opening.make_context(
            path, config, database, operator=operator, clock=clock, key_passphrase=key_passphrase
        )

    @classmethod
    def _wrap(cls, ctx: Context) -> Catalog:
        """The catalog whose context *ctx* is (opened by :mod:`~evidence_catalog.operations.opening`)."""
        catalog = cls.__new__(cls)
        catalog._ctx = ctx
        return catalog

    # What the open catalog is made of (its operations' context), for scripts that look inside.

    @property
    def path(self) -> Path:
        """The catalog's folder."""
        return self._ctx.path

    @property
    def config(self) -> CatalogConfig:
        """Its settings (``catalog.toml``)."""
        return self._ctx.config

    @property
    def db(self) -> CatalogDatabase:
        """Its database."""
        return self._ctx.db

    @property
    def blobs(self) -> BlobStorage:
        """Its blob store (a folder, or object storage)."""
        return self._ctx.blobs

    @property
    def operator(self) -> model.Agent:
        """Who acts: the agent every custody event of this session names."""
        return self._ctx.operator

    @operator.setter
    def operator(self, agent: model.Agent) -> None:
        self._ctx.operator = agent

    @property
    def clock(self) -> Clock:
        """Where the time of every event comes from."""
        return self._ctx.clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self._ctx.clock = clock

    @property
    def log_key(self) -> LogKey:
        """The custody log's key files (``keys/``)."""
        return self._ctx.key.log_key

    @property
    def key_passphrase(self) -> str | None:
        """The passphrase of the log key given when the catalog was opened, if one was."""
        return self._ctx.key.passphrase

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def init(
        cls,
        path: str | os.PathLike[str],
        *,
        operator: model.Agent | str | None = None,
        algorithms: Sequence[str] = ("sha256",),
        clock: Clock = model.utc_now,
        key_passphrase: str | None = None,
        database: str | None = None,
        blobs: str | None = None,
        blobs_endpoint_url: str | None = None,
    ) -> Catalog:
        """Create a new catalog in *path* (which must not exist, or be an empty directory).

        By default everything is in that folder: ``catalog.db`` (SQLite) and ``blobs/``.  A
        team's catalog keeps its database elsewhere -- *database* is a SQLAlchemy URL such as
        ``postgresql+psycopg://db.example.org/evidence``, an empty database -- and its blobs in
        object storage -- *blobs* such as ``s3://bucket/prefix``, with *blobs_endpoint_url* for
        an S3-compatible server.  Only the URLs are kept (in ``catalog.toml``, a password left
        out); credentials come from the environment (see ``docs/deploying-for-a-team.md``).

        The catalog gets its own Ed25519 log key (``keys/``), which signs a checkpoint of the
        custody log after every change; with *key_passphrase* (or
        ``$EVIDENCE_CATALOG_KEY_PASSPHRASE``) its private half is stored encrypted.

        The operator given here (or found as :func:`~evidence_catalog.config.resolve_operator`
        describes) becomes the catalog's default operator.
        """
        return cls._wrap(
            opening.create(
                path,
                operator=operator,
                algorithms=algorithms,
                clock=clock,
                key_passphrase=key_passphrase,
                database=database,
                blobs=blobs,
                blobs_endpoint_url=blobs_endpoint_url,
                default_database=cls._default_database,
            )
        )

    #: Where :meth:`init` puts the database when none is given (``None``: ``catalog.db`` in
    #: the folder).  A function returning a new, empty database's URL for the catalog folder
    #: it is given; the test suite sets it to run every test against PostgreSQL.
    _default_database: ClassVar[Callable[[Path], str] | None] = None

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        operator: model.Agent | str | None = None,
        clock: Clock = model.utc_now,
        read_only: bool | None = None,
        key_passphrase: str | None = None,
    ) -> Catalog:
        """Open an existing catalog directory.

        *read_only* opens it without writing anything (for a copy on read-only media, where
        nothing that writes -- not even the logging of a verification -- can succeed).  By
        default it is read-only exactly when the directory or its database cannot be written.
        """
        return cls._wrap(
            opening.open_existing(
                path, operator=operator, clock=clock, read_only=read_only, key_passphrase=key_passphrase
            )
        )

    def close(self) -> None:
        """Close the database connections."""
        self.db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- adding files ------------------------------------------------------------------------

    collect_files = _delegate(adding.collect_files)
    add = _delegate(adding.add)
    add_file = _delegate(adding.add_file)

    # -- capturing online media --------------------------------------------------------------

    capture = _delegate(capturing.capture)
    capture_url = _delegate(capturing.capture_url)
    capture_page = _delegate(capturing_page.capture_page)

    # -- ingesting reports -------------------------------------------------------------------

    ingest = _delegate(ingesting.ingest)

    # -- analysing images and videos ---------------------------------------------------------

    analyze = _delegate(analyzing.analyze)
    analyses = _delegate(analyzing.analyses)

    # -- finding and linking reports ---------------------------------------------------------

    search = _delegate(reading.search)
    link = _delegate(reading.link)
    link_suggestions = _delegate(reading.link_suggestions)

    # -- the investigators' judgements: claims, assessments, relations, tags, notes, flags ---

    claim = _delegate(judging.claim)
    assess = _delegate(judging.assess)
    relate = _delegate(judging.relate)
    flag = _delegate(judging.flag)
    add_note = _delegate(judging.add_note)
    tag = _delegate(judging.tag)
    define_category = _delegate(judging.define_category)
    categories = _delegate(judging.categories)

    # -- reading -----------------------------------------------------------------------------

    record_filter = _delegate(reading.record_filter)

    def find_records(
        self,
        criteria: RecordFilter | None = None,
        *,
        status: str | None = None,
        category: str | None = None,
        tags: Sequence[str] = (),
        flags: Sequence[str] = (),
        bbox: tuple[float, float, float, float] | None = None,
        since: dt.datetime | dt.date | str | None = None,
        until: dt.datetime | dt.date | str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[model.EvidenceRecord]:
        """The records that meet every criterion, oldest first: a :class:`RecordFilter`, or
        the criteria of :meth:`record_filter` given here.  A page of at most *limit* records
        after the record id *after* when those are given (the next page starts after the
        last id of this one); records are read a batch at a time, never all at once."""
        return reading.find_records(
            self._ctx,
            criteria,
            status=status,
            category=category,
            tags=tags,
            flags=flags,
            bbox=bbox,
            since=since,
            until=until,
            after=after,
            limit=limit,
            page_size=self.PAGE_SIZE,
        )

    record = _delegate(reading.record)
    has_record = _delegate(reading.has_record)
    record_ids = _delegate(reading.record_ids)
    records_with_artifact = _delegate(reading.records_with_artifact)

    #: How many records :meth:`records` reads per query.
    PAGE_SIZE: ClassVar[int] = 500

    def records(
        self, record_ids: Sequence[str] | None = None, *, after: str | None = None
    ) -> Iterator[model.EvidenceRecord]:
        """Records oldest first: those named (each must exist), or all of them (after the id
        *after*, if given), read a page at a time -- a million records are never in memory
        at once."""
        return reading.records(self._ctx, record_ids, after=after, page_size=self.PAGE_SIZE)

    read_page = _delegate(reading.read_page)

    def readable_records(
        self,
        *,
        after: str | None = None,
        only: Sequence[str] | None = None,
        on_unreadable: Callable[[str, EvidenceError], object] | None = None,
    ) -> Iterator[model.EvidenceRecord]:
        """Every record that can be read, oldest first: all of them, or those *only* names (in
        its order; a missing one is a :class:`NotFoundError`), after the id *after* if given,
        read a page at a time as :meth:`records` reads them.  A record whose rows do not make a
        valid record is left out and the rest are still read (one damaged row must not hide the
        rest of a catalog, where :meth:`records` stops at the first): *on_unreadable*, if
        given, is called with its id and the :class:`ValidationError`."""
        return reading.readable_records(
            self._ctx, after=after, only=only, on_unreadable=on_unreadable, page_size=self.PAGE_SIZE
        )

    similar = _delegate(similar.similar)
    history = _delegate(reading.history)
    custody_events = _delegate(viewing.custody_events)
    log_size = _delegate(viewing.log_size)
    last_verification = _delegate(viewing.last_verification)
    flagged_record_ids = _delegate(viewing.flagged_record_ids)
    record_events = _delegate(viewing.record_events)
    artifact_path = _delegate(reading.artifact_path)
    open_artifact = _delegate(reading.open_artifact)

    # -- verification ------------------------------------------------------------------------

    verify = _delegate(verifying.verify)
    stored_bytes = _delegate(verifying.stored_bytes)
    check_record = _delegate(record_checks.check_record)

    # -- housekeeping ---------------------------------------------------------------------

    fsck = _delegate(housekeeping.fsck)

    # -- the log's key, checkpoints and proofs ---------------------------------------------

    change_log_key = _delegate(key_operations.change_log_key)
    checkpoint = _delegate(log_proofs.checkpoint)
    log_key_info = _delegate(log_proofs.log_key_info)
    timestamp = _delegate(log_proofs.timestamp)
    inclusion_proof = _delegate(log_proofs.inclusion_proof)
    consistency_proof = _delegate(log_proofs.consistency_proof)

    # -- export ------------------------------------------------------------------------------

    export = _delegate(exporting.export)
    exhibit = _delegate(exhibiting.exhibit)

    # -- import ------------------------------------------------------------------------------

    import_records = _delegate(importing.import_records)
    import_auto_archiver = _delegate(migrating.import_auto_archiver)
