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

import base64
import contextlib
import datetime as dt
import json
import os
import shutil
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Literal, Protocol

import attrs

from evidence_catalog import merkle, model
from evidence_catalog.capture.ytdlp import (
    CaptureOptions,
    CaptureProgress,
)
from evidence_catalog.checkpoint import (
    KeyDamagedError,
    vkey,
)
from evidence_catalog.config import CONFIG_FILE, CatalogConfig, resolve_operator
from evidence_catalog.custody import (
    Action,
    imported_details,
)
from evidence_catalog.errors import (
    CatalogError,
    CatalogNotFoundError,
    EvidenceError,
    InputError,
    IntegrityError,
    NotFoundError,
    StorageError,
)
from evidence_catalog.filters import RecordFilter
from evidence_catalog.hashing import MultiHasher, ProgressCallback, hash_file

# INGEST_FORMATS: the CLI's choices, named here as before.
from evidence_catalog.ingest.formats import INGEST_FORMATS as INGEST_FORMATS
from evidence_catalog.ingest.formats import IngestFormat
from evidence_catalog.ingest.links import LinkSuggestion
from evidence_catalog.interchange.bag import BagWriter
from evidence_catalog.interchange.export import bag_info, find_carriers, place_bag, write_payload
from evidence_catalog.interchange.importing import (
    KEY_CHANGES,
    KEY_EVENT,
    UNSIGNED_PROVENANCE_TAG,
    Incoming,
    IncomingRecord,
    check_artifact_bytes,
    named_key,
    read_source,
)
from evidence_catalog.interchange.prov import write_prov
from evidence_catalog.interchange.redact import FieldPathError, plan_redaction
from evidence_catalog.operations import (
    adding,
    capturing,
    common,
    housekeeping,
    ingesting,
    judging,
    log_key,
    log_proofs,
    reading,
    verifying,
)
from evidence_catalog.operations.common import (
    choice,
)
from evidence_catalog.operations.context import Clock, Context, KeyState
from evidence_catalog.operations.log_key import KEYS_DIR, NEXT_KEY_DIR
from evidence_catalog.operations.log_proofs import TSA_ENV as TSA_ENV  # where scripts and tests import it from
from evidence_catalog.paths import display_path
from evidence_catalog.results import (
    FSCK_GRACE_SECONDS,
    AddResult,
    CaptureResult,
    CheckpointInfo,
    ExportResult,
    FsckReport,
    ImportResult,
    InclusionProof,
    IngestResult,
    KeyChange,
    LinkResult,
    LogKeyInfo,
    SearchHit,
    TimestampResult,
    VerificationReport,
)
from evidence_catalog.serialize import (
    CHECKPOINT_SCHEMA,
    SCHEMA_IDS,
    format_timestamp,
    to_document,
    unstructure,
)
from evidence_catalog.store.blobs import BlobStorage
from evidence_catalog.store.blobstore import BlobStore, fsync_dir, place_new_file
from evidence_catalog.store.database import (
    HEAD_REVISION,
    CatalogDatabase,
    check_database_url,
    database_errors,
    index_rows,
    safe_url,
    sqlite_url,
)
from evidence_catalog.store.keyfiles import PUBLIC_FILE, LogKey
from evidence_catalog.store.objectstore import ObjectBlobStore, check_endpoint_url, parse_blobs_url
from evidence_catalog.versions import library_agent
from evidence_catalog.vocabulary import Category

DATABASE_FILE = "catalog.db"
BLOBS_DIR = "blobs"
#: Where an export bag keeps the signed checkpoint, the log's key, proofs and time-stamps.
LOG_DIR = "data/log"

ExportFormat = Literal["json", "jsonl", "csv", "bagit", "prov"]
EXPORT_FORMATS: tuple[str, ...] = ("bagit", "json", "jsonl", "prov", "csv")
#: Called during a BagIt export with the bytes of artifacts copied so far and the total.
ExportProgress = Callable[[int, int], object]


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
        keys = LogKey(path / KEYS_DIR)
        self._ctx = Context(
            path=path,
            config=config,
            db=database,
            blobs=open_blob_store(path, config),
            operator=resolve_operator(operator, config.operator),
            clock=clock,
            key=KeyState(log_key=keys, passphrase=key_passphrase, signs=keys.exists),
        )

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
        directory = Path(path)
        if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
            raise InputError("already exists and is not an empty directory", where=display_path(directory))
        default_operator = resolve_operator(operator, None)
        database_url = None if database is None else check_database_url(database)
        if database_url is not None and database_url.get_backend_name() == "sqlite":
            raise InputError(
                "a SQLite catalog keeps its database in its folder: leave --database out", where="--database"
            )
        if blobs is not None:
            parse_blobs_url(blobs)
            if blobs_endpoint_url is not None:
                check_endpoint_url(blobs_endpoint_url)
            # Reached, and writable, before anything is made (not only at the first add).
            ObjectBlobStore(blobs, endpoint_url=blobs_endpoint_url).check_writable()
        config = CatalogConfig(
            algorithms=tuple(algorithms),
            operator=default_operator,
            database_url=None if database_url is None else safe_url(database_url),
            blobs_url=blobs,
            blobs_endpoint_url=blobs_endpoint_url if blobs is not None else None,
        )
        if database_url is None and cls._default_database is not None:
            database_url = check_database_url(cls._default_database(directory), where="default database")
            config = attrs.evolve(config, database_url=safe_url(database_url))
        existed = directory.exists()
        try:
            # Claim the place first: a concurrent init of the same path loses here, before it
            # has made anything it would later need to remove.
            if not existed:
                directory.mkdir(parents=True)
            (directory / (BLOBS_DIR if blobs is None else KEYS_DIR)).mkdir()
        except FileExistsError as exc:
            raise InputError("already exists (another init is making it?)", where=display_path(directory)) from exc
        except OSError as exc:
            raise StorageError(f"cannot create catalog ({exc.strerror})", where=display_path(directory)) from exc
        db = None
        created_schema = False
        try:
            # An error the database reports is the library's: no caller needs to know SQLAlchemy's.
            with database_errors(
                lambda reason: StorageError(f"cannot create catalog ({reason})", where=display_path(directory))
            ):
                if database_url is None:
                    db = CatalogDatabase.create(sqlite_url(directory / DATABASE_FILE))
                else:
                    db = CatalogDatabase.create(database_url, where=safe_url(database_url))
                created_schema = True
                catalog = cls(
                    directory, config, db, operator=default_operator, clock=clock, key_passphrase=key_passphrase
                )
                # First: the first event already ends with a signed checkpoint.
                log = log_key.create_log_key(catalog._ctx)
                catalog._ctx.log_event(
                    Action.CATALOG_CREATED,
                    {
                        "format_version": config.format_version,
                        "algorithms": list(config.algorithms),
                        "software": unstructure(library_agent()),
                        "log": log,
                    },
                )
                # catalog.toml comes last, durably: a directory without it is not (yet) a catalog.
                tmp = directory / (CONFIG_FILE + ".tmp")
                with open(tmp, "w", encoding="utf-8") as stream:
                    stream.write(config.to_toml())
                    stream.flush()
                    os.fsync(stream.fileno())
                os.replace(tmp, directory / CONFIG_FILE)
                fsync_dir(directory)
        except (OSError, EvidenceError) as exc:
            # Leave nothing half-made behind (only what this call made): init can be run again.
            if db is not None:
                if created_schema and database_url is not None:
                    # A shared server: leave the database empty again.  Should that fail too
                    # (the server gone), the first error is the one to report.
                    with contextlib.suppress(StorageError, OSError):
                        db.drop_schema()
                db.close()
            if existed:
                shutil.rmtree(directory / BLOBS_DIR, ignore_errors=True)
                shutil.rmtree(directory / KEYS_DIR, ignore_errors=True)
                for name in (DATABASE_FILE, f"{DATABASE_FILE}-wal", f"{DATABASE_FILE}-shm", CONFIG_FILE + ".tmp"):
                    (directory / name).unlink(missing_ok=True)
            else:
                shutil.rmtree(directory, ignore_errors=True)
            if isinstance(exc, EvidenceError):
                raise
            raise StorageError(f"cannot create catalog ({exc.strerror})", where=display_path(directory)) from exc
        return catalog

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
        directory = Path(path)
        where = display_path(directory)
        if not directory.exists():
            raise CatalogNotFoundError("no such catalog directory", where=where)
        if not directory.is_dir():
            raise CatalogNotFoundError("not a directory (a catalog is a directory)", where=where)
        if not (directory / CONFIG_FILE).is_file():
            raise CatalogNotFoundError(f"not a catalog (no {CONFIG_FILE})", where=where)
        config = CatalogConfig.load(directory)
        if config.database_url is not None:
            setting = f"{display_path(directory / CONFIG_FILE)}: database.url"
            url = check_database_url(config.database_url, where=setting)
            read_only = bool(read_only)
            database = CatalogDatabase.open(url, where=safe_url(url), read_only=read_only)
        else:
            db_path = directory / DATABASE_FILE
            if not db_path.is_file():
                raise CatalogError(f"catalog database {DATABASE_FILE} is missing", where=where)
            if read_only is None:
                read_only = not (os.access(directory, os.W_OK) and os.access(db_path, os.W_OK))
            database = CatalogDatabase.open(sqlite_url(db_path, read_only=read_only), where=display_path(db_path))
        try:
            catalog = cls(directory, config, database, operator=operator, clock=clock, key_passphrase=key_passphrase)
        except BaseException:
            database.close()  # e.g. a bad [blobs] setting: the database is not left open
            raise
        if not read_only and (catalog.log_key.directory / NEXT_KEY_DIR).is_dir():
            try:
                log_key.finish_key_change(catalog._ctx)  # a change of key that was killed half-way
            except BaseException:
                catalog.close()
                raise
        if not read_only and catalog.log_key.exists:
            try:
                log_key.check_signing_key(catalog._ctx, history=False)
            except KeyDamagedError:
                pass  # every change is refused with it; `verify` reports it
            except BaseException:
                catalog.close()  # a passphrase that does not open the key: refused before any change
                raise
        if not read_only and not catalog.log_key.exists:  # a catalog from before signed checkpoints
            if log_key.logged_key(catalog._ctx) is not None:
                # A shared database (a team's catalog) opened from a folder without the key: a
                # new key here would sign a second history of the same log.
                catalog.close()
                raise CatalogError(
                    f"the custody log already has a key, but it is not in {KEYS_DIR}/: copy the catalog's "
                    f"{KEYS_DIR}/ folder here (log.pub and log.vkey to read and verify; log.key too to write)",
                    where=where,
                )
            refusal = log_key.had_a_key(catalog._ctx)
            if refusal is not None:
                catalog.close()
                raise CatalogError(refusal, where=where)
            catalog._ctx.log_event(Action.LOG_KEY_CREATED, log_key.create_log_key(catalog._ctx))
        if database.upgraded_from is not None:
            # A schema upgrade rewrites tables: who did it, when, with which version, is custody.
            catalog._ctx.log_event(
                Action.CATALOG_UPGRADED,
                {
                    "from_revision": database.upgraded_from,
                    "to_revision": HEAD_REVISION,
                    "software": unstructure(library_agent()),
                },
            )
        return catalog

    def close(self) -> None:
        """Close the database connections."""
        self.db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- adding files ------------------------------------------------------------------------

    def collect_files(self, paths: Iterable[str | os.PathLike[str]], *, recursive: bool = False) -> list[Path]:
        """Expand and check *paths* before anything is added.

        Raises :class:`InputError` naming the path for a missing or unreadable file, a directory
        without *recursive*, a special file, a broken symbolic link or a symbolic-link loop.
        The catalog's own directory is never collected.
        """
        return adding.collect_files(self._ctx, paths, recursive=recursive)

    def add(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        recursive: bool = False,
        record_id: str | None = None,
        note: str | None = None,
        source_url: str | None = None,
        tags: Sequence[str] = (),
        progress: ProgressCallback | None = None,
        on_added: Callable[[AddResult], None] | None = None,
        batch: int = 1,
    ) -> list[AddResult]:
        """Add files (and, with *recursive*, directories) to the catalog.

        Every path is checked first; a bad one raises before anything is added.  Each file is
        then added as :meth:`add_file` adds it, in transactions of *batch* files: 1 (the
        default) commits each file on its own; a larger batch loads many small files much
        faster (one commit and one signed checkpoint per batch).  An interruption leaves every
        committed batch catalogued and nothing of the batch in progress (its stored bytes are
        orphans ``fsck`` lists); adding the same files again completes the work.
        """
        return adding.add(
            self._ctx,
            paths,
            recursive=recursive,
            record_id=record_id,
            note=note,
            source_url=source_url,
            tags=tags,
            progress=progress,
            on_added=on_added,
            batch=batch,
        )

    def add_file(
        self,
        path: str | os.PathLike[str],
        *,
        record_id: str | None = None,
        note: str | None = None,
        source_url: str | None = None,
        tags: Sequence[str] = (),
        progress: ProgressCallback | None = None,
        noted: set[str] | None = None,
    ) -> AddResult:
        """Add one file: store its bytes, describe them, and log who added them when.

        Identical bytes already in the catalog are not stored again; the record that holds them
        (or *record_id*) gains a new acquisition and custody event.  *noted*, when given, holds
        the records that already received *note* in the same batch (it is not added twice) and
        gains this file's record.
        """
        return adding.add_file(
            self._ctx,
            path,
            record_id=record_id,
            note=note,
            source_url=source_url,
            tags=tags,
            progress=progress,
            noted=noted,
        )

    # -- capturing online media --------------------------------------------------------------

    def capture(
        self,
        urls: str | Iterable[str],
        *,
        record_id: str | None = None,
        options: CaptureOptions | None = None,
        tags: Sequence[str] = (),
        note: str | None = None,
        progress: CaptureProgress | None = None,
        on_result: Callable[[CaptureResult], None] | None = None,
        skip_captured: bool = False,
    ) -> list[CaptureResult]:
        """Capture online media at each URL with yt-dlp, one URL after another.

        Every URL and option is checked first; a bad one raises :class:`InputError` before
        anything is fetched.  A URL that cannot be captured (a 404, a dead server, a body cut
        short, an extractor error, a full disk) does not stop the others: its result says why,
        and the failed attempt is in the custody log.  See :meth:`capture_url`.

        With *skip_captured*, a URL captured successfully before (the same requested URL) is
        not fetched again: its result has ``skipped=True``.  Re-running an interrupted batch
        this way resumes where it stopped.
        """
        return capturing.capture(
            self._ctx,
            urls,
            record_id=record_id,
            options=options,
            tags=tags,
            note=note,
            progress=progress,
            on_result=on_result,
            skip_captured=skip_captured,
        )

    def capture_url(
        self,
        url: str,
        *,
        record_id: str | None = None,
        options: CaptureOptions | None = None,
        tags: Sequence[str] = (),
        note: str | None = None,
        progress: CaptureProgress | None = None,
        noted: set[str] | None = None,
    ) -> CaptureResult:
        """Capture one URL: download into a private temporary area, hash and store every file,
        then write record, artifacts, acquisition and custody event in one transaction.

        Only whole, hashed files enter the store, and the record is written last: a failure or a
        killed process at any point leaves no record that claims media the store lacks.  A
        failed attempt is logged (``capture.failed``: URL, times, error) and returned with
        ``ok=False``; a storage failure of the catalog itself raises :class:`StorageError`.

        The same item captured again (same extractor and platform id, else same URL) goes to
        the record of the earlier capture: identical bytes gain only a new acquisition,
        different bytes become a new version (``version_of`` the earlier main file).
        """
        return capturing.capture_url(
            self._ctx, url, record_id=record_id, options=options, tags=tags, note=note, progress=progress, noted=noted
        )

    # -- ingesting reports -------------------------------------------------------------------

    def ingest(
        self,
        source: str | os.PathLike[str],
        *,
        format: IngestFormat | None = None,
        tags: Sequence[str] = (),
        note: str | None = None,
        keep_going: bool = False,
        capture_media: bool = False,
        capture_options: CaptureOptions | None = None,
        capture_progress: CaptureProgress | None = None,
        timeout: float = 30.0,
    ) -> IngestResult:
        """Ingest a feed-reader digest, an RSS/Atom feed, twarc2 tweets or a Telegram Desktop
        export: every item becomes a report on a record of its own, with the input stored as
        the record's source document (and, for a digest, the item's line span in it).
        *source* is a file, a Telegram export folder, or an ``http(s)://`` URL of a feed (the
        document is downloaded as served; the responses are in each acquisition).  *format* is
        found from the content when ``None``.

        All or nothing: the input, its reports, records and custody events are written in one
        transaction.  A report already in the catalog (same identity, see
        :func:`~evidence_catalog.ingest.digest.report_identity`) is not added again; the repeat
        is in the custody log (``digest.ingested`` counts what was new and what was present).
        With *keep_going*, an item that cannot be read (a broken JSON line, a Telegram message
        whose media file is missing) is left out and named in :attr:`IngestResult.skipped`
        instead of stopping the ingest.

        With *capture_media*, the media each new report points at (feed enclosures and Media
        RSS content) is then captured onto the report's record, as :meth:`capture` would; a
        capture that fails is logged and in :attr:`IngestResult.captures`, and the reports stay.
        """
        return ingesting.ingest(
            self._ctx,
            source,
            format=format,
            tags=tags,
            note=note,
            keep_going=keep_going,
            capture_media=capture_media,
            capture_options=capture_options,
            capture_progress=capture_progress,
            timeout=timeout,
        )

    # -- finding and linking reports ---------------------------------------------------------

    def search(
        self,
        text: str = "",
        *,
        mention: str | None = None,
        hashtag: str | None = None,
        feed: str | None = None,
        author: str | None = None,
        since: dt.datetime | dt.date | str | None = None,
        limit: int | None = 100,
        record_filter: RecordFilter | None = None,
        offset: int = 0,
    ) -> list[SearchHit]:
        """Reports holding every word of *text* (case and diacritics ignored; any report when
        *text* has no words), with the given mention, hashtag, feed name and author (exact, case
        ignored, ``@``/``#`` optional), published -- or, when the source gave no time, found --
        at or after *since* (a date is that day's start in UTC), on a record that meets
        *record_filter* (status, category, tags, flags, place, alleged time: see
        :meth:`record_filter`).  Best match first, then newest; at most *limit* hits (``None``
        for all) after the first *offset* (the next page: ``offset`` + ``limit``)."""
        return reading.search(
            self._ctx,
            text,
            mention=mention,
            hashtag=hashtag,
            feed=feed,
            author=author,
            since=since,
            limit=limit,
            record_filter=record_filter,
            offset=offset,
        )

    def link(self, report_id: str, record_id: str, *, note: str | None = None) -> LinkResult:
        """Move a report onto another record -- e.g. a post announcing a film onto the record of
        the captured film -- with its source document, so that one record holds both.  The
        report is not changed; the move is a ``report.linked`` custody event, with *note* (why)
        kept on the record.  A report already on that record is left as it is (no event)."""
        return reading.link(self._ctx, report_id, record_id, note=note)

    def link_suggestions(self, record_id: str | None = None) -> list[LinkSuggestion]:
        """Reports that look like they are about media captured on another record (same URL, or
        a link card with the captured item's title); with *record_id*, those that involve that
        record.  See :mod:`evidence_catalog.ingest.links`; nothing is changed."""
        return reading.link_suggestions(self._ctx, record_id)

    # -- the investigators' judgements: claims, assessments, relations, tags, notes, flags ---

    def claim(
        self,
        record_id: str,
        *,
        summary: str | None = None,
        category: str | None = None,
        event_time: model.EventTime | None = None,
        place: model.Place | None = None,
        alleged_perpetrator: str | None = None,
        source_report_id: str | None = None,
        source_description: str | None = None,
    ) -> model.Claim:
        """Record what the item allegedly shows -- never a finding of fact: a summary, a
        category from the vocabulary (:meth:`categories`), the alleged time and place, the
        alleged perpetrator -- and who says so: a report on the record (*source_report_id*) or
        a person or organisation (*source_description*).  One ``claim.added`` custody event."""
        return judging.claim(
            self._ctx,
            record_id,
            summary=summary,
            category=category,
            event_time=event_time,
            place=place,
            alleged_perpetrator=alleged_perpetrator,
            source_report_id=source_report_id,
            source_description=source_description,
        )

    def assess(
        self,
        record_id: str,
        status: str,
        *,
        methods: Sequence[str] = (),
        confidence: str | None = None,
        note: str | None = None,
    ) -> model.Assessment:
        """Record a verification assessment.  It supersedes (never overwrites) the record's
        latest assessment; the history stays on the record and in the log."""
        return judging.assess(self._ctx, record_id, status, methods=methods, confidence=confidence, note=note)

    def relate(self, record_id: str, kind: str, target_id: str, *, note: str | None = None) -> model.Relation:
        """Record how a record relates to another (duplicate of, derived from, same incident as,
        responds to, contradicts), by whom and why."""
        return judging.relate(self._ctx, record_id, kind, target_id, note=note)

    def flag(
        self,
        record_id: str,
        kind: str,
        reason: str,
        *,
        artifacts: Sequence[str] = (),
        fields: Sequence[str] = (),
    ) -> model.SensitivityFlag:
        """Flag a record as sensitive (graphic content, personal data, a protected source,
        minors), with the reason; a redacted export withholds what is flagged.

        The flag is about the *artifacts* named (SHA-256s on the record) and the *fields* named
        (field paths such as ``reports/<report id>/author``, see
        :mod:`evidence_catalog.interchange.redact`); naming neither, it is about every artifact
        of the record.  A field that is not there, or that cannot be withheld, is refused.
        """
        return judging.flag(self._ctx, record_id, kind, reason, artifacts=artifacts, fields=fields)

    def add_note(self, record_id: str, text: str) -> model.Note:
        """Keep a note on a record, attributed to the operator and timed."""
        return judging.add_note(self._ctx, record_id, text)

    def tag(self, record_id: str, tags: Sequence[str]) -> tuple[str, ...]:
        """Add tags to a record; returns those it did not have (one ``tags.added`` event for
        them, none when every tag was there already)."""
        return judging.tag(self._ctx, record_id, tags)

    def define_category(self, code: str, label: str, reference: str | None = None) -> Category:
        """Add a category of alleged violation to this catalog's vocabulary (logged as
        ``category.defined``); a code already defined, built in or not, cannot be changed."""
        return judging.define_category(self._ctx, code, label, reference)

    def categories(self) -> list[Category]:
        """The vocabulary of alleged violations: the built-in ones, then this catalog's own."""
        return judging.categories(self._ctx)

    # -- reading -----------------------------------------------------------------------------

    def record_filter(
        self,
        *,
        status: str | None = None,
        category: str | None = None,
        tags: Sequence[str] = (),
        flags: Sequence[str] = (),
        bbox: tuple[float, float, float, float] | None = None,
        since: dt.datetime | dt.date | str | None = None,
        until: dt.datetime | dt.date | str | None = None,
    ) -> RecordFilter:
        """Criteria on a record's current state, checked: its status, a claim's category, tags,
        flags, a claim's place inside *bbox* (west, south, east, north), a claim's alleged time
        overlapping *since*..*until* (a date is that whole day, UTC).  See
        :mod:`evidence_catalog.filters`; bad values are an :class:`InputError`."""
        return reading.record_filter(
            self._ctx, status=status, category=category, tags=tags, flags=flags, bbox=bbox, since=since, until=until
        )

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

    def record(self, record_id: str) -> model.EvidenceRecord:
        """The whole record with this id; :class:`NotFoundError` if there is none."""
        return reading.record(self._ctx, record_id)

    def has_record(self, record_id: str) -> bool:
        """Tell whether a record with this id exists (a malformed id is an :class:`InputError`)."""
        return reading.has_record(self._ctx, record_id)

    def record_ids(self, *, after: str | None = None, limit: int | None = None) -> list[str]:
        """Record ids, oldest first: all, or a page of at most *limit* after the id *after*."""
        return reading.record_ids(self._ctx, after=after, limit=limit)

    def records_with_artifact(self, sha256: str) -> list[str]:
        """The ids of the records that hold the artifact with this SHA-256 (an indexed lookup)."""
        return reading.records_with_artifact(self._ctx, sha256)

    #: How many records :meth:`records` reads per query.
    PAGE_SIZE: ClassVar[int] = 500

    def records(
        self, record_ids: Sequence[str] | None = None, *, after: str | None = None
    ) -> Iterator[model.EvidenceRecord]:
        """Records oldest first: those named (each must exist), or all of them (after the id
        *after*, if given), read a page at a time -- a million records are never in memory
        at once."""
        return reading.records(self._ctx, record_ids, after=after, page_size=self.PAGE_SIZE)

    def read_page(self, record_ids: Sequence[str]) -> list[model.EvidenceRecord]:
        """The records named, read together (a few queries for the lot); a
        :class:`ValidationError` names the first that cannot be read."""
        return reading.read_page(self._ctx, record_ids)

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

    def history(self, subject: str | None = None) -> list[model.CustodyEvent]:
        """The custody log in order, or only the events about *subject* (a record id)."""
        return reading.history(self._ctx, subject)

    def artifact_path(self, sha256: str) -> Path:
        """Where the stored bytes of an artifact are (read-only); only for blobs on this
        machine's file system -- :meth:`open_artifact` reads them wherever they are."""
        return reading.artifact_path(self._ctx, sha256)

    def open_artifact(self, sha256: str) -> BinaryIO:
        """Open the stored bytes of an artifact for reading, wherever the blob store is."""
        return reading.open_artifact(self._ctx, sha256)

    # -- verification ------------------------------------------------------------------------

    def verify(
        self,
        *,
        progress: ProgressCallback | None = None,
        workers: int | None = None,
        record_event: bool = True,
        checkpoints: Sequence[tuple[str, str]] = (),
        remember: bool = True,
        allow_unsigned: bool = False,
    ) -> VerificationReport:
        """Check everything the catalog claims, and return every finding.

        1. The custody log: each event's hash and link to the one before, sequence numbers; the
           Merkle tree recomputed from the events and compared with the stored one.  The log's
           key is the one its first key event names (or a successor that key signed over in a
           ``key.changed`` event), whatever ``keys/`` holds now (files there that are not that
           key are findings); every event must be covered by a checkpoint signed by it: events
           after the last signed checkpoint are a finding (:class:`EventsUnsigned`) unless
           *allow_unsigned* (an encrypted key between signings; the report still counts them
           in ``unsigned_events``).  Every checkpoint kept, and every checkpoint given in
           *checkpoints* -- ``(where it came from, signed note text)``, e.g. one a partner was
           sent -- must be a prefix of the log as it is now: a log rolled back, or changed
           under a checkpoint, is found.  With *remember* (the default, as in the CLI), the
           latest checkpoint an earlier verification remembered (outside the catalog, see
           :func:`evidence_catalog.checkpoint.remembered_path`) is checked too, with the key it
           was checked with then, and a clean verification remembers the latest checkpoint.
        2. The records: every record is rebuilt from the log alone and compared field by field
           with the database; records the log never created, or that are gone, are named.
        3. The bytes: every stored artifact is re-hashed with every recorded algorithm, in
           parallel (*workers*, default one per CPU; four per CPU for an object store, whose
           reads wait on the network), and its size checked.

        Damaged rows are reported as findings, never raised.  With *record_event*, the
        verification itself is logged when the catalog can be written (a read-only copy is still
        verified; ``logged`` tells which).
        """
        return verifying.verify(
            self._ctx,
            progress=progress,
            workers=workers,
            record_event=record_event,
            checkpoints=checkpoints,
            remember=remember,
            allow_unsigned=allow_unsigned,
        )

    def stored_bytes(self) -> int:
        """The total size, in bytes, of every catalogued artifact: what :meth:`verify` reads
        again (e.g. the total of its *progress*)."""
        return verifying.stored_bytes(self._ctx)

    # -- housekeeping ---------------------------------------------------------------------

    def fsck(self, *, remove: bool = False, grace_seconds: float = FSCK_GRACE_SECONDS) -> FsckReport:
        """Find what an interrupted operation can leave in the catalog folder without any record
        claiming it: *orphaned blobs* (stored bytes no artifact row names -- an import or add
        killed between storing the bytes and committing its records) and *unfinished temporary
        files* (``blobs/tmp/*.part``, capture work areas).  Nothing a record claims is ever
        touched, and nothing younger than *grace_seconds* (another process may be about to commit
        it) is removed.  With *remove*, what is older is deleted, and the removal is logged
        (``catalog.fsck``: each file's path, size and, for a blob, SHA-256).  Quarantined blobs
        (damaged copies moved aside, kept as evidence of the damage) are listed, never removed.
        """
        return housekeeping.fsck(self._ctx, remove=remove, grace_seconds=grace_seconds)

    # -- the log's key, checkpoints and proofs ---------------------------------------------

    def change_log_key(self, *, passphrase: str | None = None) -> KeyChange:
        """Hand the custody log over to a new Ed25519 key (encrypted with *passphrase*, if given),
        for a key that may have leaked or to start protecting it with a passphrase.

        The key in force signs the hand-over (its signature over
        :func:`~evidence_catalog.checkpoint.key_change_statement` is the ``endorsement`` of the
        ``key.changed`` event), and the checkpoint that ends the change is the new key's first.
        The old private key is then deleted; its public files stay in ``keys/retired/<key id>/``.
        Needs the current key (its passphrase, if it is encrypted).  Killed half-way, the next
        :meth:`open` finishes the move of the key files, or throws away a key that was never
        handed the log.
        """
        return log_key.change_log_key(self._ctx, passphrase=passphrase)

    def checkpoint(self) -> CheckpointInfo:
        """The latest signed checkpoint of the custody log; a new one is signed when the latest
        is unsigned (the key's passphrase was not at hand) or does not cover the whole log.

        What is handed out is checked first, never taken from the table on its word: a note the
        key the log names signed, over the whole log as it is now."""
        return log_proofs.checkpoint(self._ctx)

    def log_key_info(self) -> LogKeyInfo:
        """The public details of the custody log's key -- its name (the checkpoints' origin),
        public key, C2SP key id and verifier key -- for whoever checks a checkpoint handed out
        (``keys/log.vkey``; :meth:`verify` finds one that is not the key the log names).
        Raises :class:`CatalogError` when that file cannot be read."""
        return log_proofs.log_key_info(self._ctx)

    def timestamp(
        self, *, url: str | None = None, artifacts: Sequence[str] = (), timeout: float = 30.0
    ) -> TimestampResult:
        """Have the latest checkpoint (and the *artifacts* named, by SHA-256) time-stamped by an
        RFC 3161 Time-Stamp Authority: *url*, else ``$EVIDENCE_CATALOG_TSA_URL``, else
        ``[timestamp] url`` in ``catalog.toml``.

        Requests are queued first and then sent, with every request still queued from before;
        when the TSA cannot be reached they stay queued (``pending``) and the next call sends
        them.  Each token granted is kept and logged (``timestamp.added``, with the token), so
        it is exported with the log and checked by ``verify``.
        """
        return log_proofs.timestamp(self._ctx, url=url, artifacts=artifacts, timeout=timeout)

    def inclusion_proof(self, seq: int) -> InclusionProof:
        """The RFC 6962 inclusion proof of custody event *seq* in the log at the latest
        checkpoint's size (or the whole log when it has none covering *seq*)."""
        return log_proofs.inclusion_proof(self._ctx, seq)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> tuple[str, ...]:
        """The RFC 6962 consistency proof (hex hashes) from the log at *old_size* to *new_size*
        (the whole log when ``None``)."""
        return log_proofs.consistency_proof(self._ctx, old_size, new_size)

    # -- export ------------------------------------------------------------------------------

    def export(
        self,
        output: str | os.PathLike[str],
        *,
        format: ExportFormat = "json",
        record_ids: Sequence[str] | None = None,
        bom: bool = False,
        redact: bool | Collection[str] = False,
        sha512: bool = False,
        progress: ExportProgress | None = None,
    ) -> ExportResult:
        """Export records (all when *record_ids* is ``None``) in an open format:

        ``bagit``
            a BagIt 1.0 bag (a new folder): each record as JSON, its artifacts under portable
            names, the custody events, ``manifest-sha256.txt`` (and ``-sha512`` with *sha512*),
            tag manifest and ``bag-info.txt``; see ``docs/interchange.md``.  *redact* withholds
            what the records' flags name (``True``: flags of every kind; or the kinds to honour)
            and the bag lists what was withheld and why.  *progress* is called with the artifact
            bytes copied so far and the total.
        ``json`` / ``jsonl``
            records and custody events as one JSON document or JSON Lines.
        ``prov``
            W3C PROV-JSON of the records' provenance (:mod:`evidence_catalog.interchange.prov`).
        ``csv``
            one row per artifact for spreadsheets (:mod:`evidence_catalog.csv_export`); *bom*
            starts it with a UTF-8 byte order mark, which some spreadsheet software needs.

        The whole custody log goes with a whole-catalog export, otherwise the events about the
        selected records.  The export is written under a temporary name and renamed into place;
        an existing file or folder is never replaced.  The export is itself a custody event,
        which names where it went, its SHA-256 and, for a bag, its identifier, Payload-Oxum and
        what a redaction withheld.
        """
        if format not in EXPORT_FORMATS:
            raise InputError(f"unknown format {format!r}; use one of {', '.join(EXPORT_FORMATS)}", where="format")
        if bom and format != "csv":
            raise InputError("a byte order mark is for CSV only", where="bom")
        kinds = self._redaction_kinds(redact)
        if kinds is not None and format != "bagit":
            raise InputError("a redacted export is a BagIt export (the bag states what was withheld)", where="redact")
        if sha512 and format != "bagit":
            raise InputError("a SHA-512 manifest is for BagIt exports only", where="sha512")
        target = self._export_target(output, folder=format == "bagit")
        where = display_path(target)
        selected = None if record_ids is None else list(dict.fromkeys(record_ids))
        for record_id in selected or ():
            if not self.has_record(record_id):  # before anything is written
                raise NotFoundError(f"no record with id {record_id}", where="record")
        if self.db.read_only:
            raise StorageError("the catalog is read-only, so an export could not be logged; nothing was written")
        # A short temporary name: the target's own name may already be as long as names can be.
        tmp = target.with_name(f".export-{uuid.uuid4().hex[:12]}.part")
        placed = logged_export = False
        try:
            redaction = None
            if format == "bagit":
                result, redaction = self._write_bag(tmp, target, selected, kinds, sha512, progress)
            else:
                result = self._write_export_file(tmp, target, format, selected, bom)
            if target.exists() or target.is_symlink():
                raise FileExistsError(str(target))
            result = attrs.evolve(result, path=target)
            details: dict[str, Any] = {
                "format": format,
                "output": where,
                "sha256": result.sha256,
                "size": result.size,
                "records": result.records,
                "custody_events": result.custody_events,
                "record_ids": selected,
            }
            if format == "bagit":
                details["bag"] = {
                    "external_identifier": result.external_identifier,
                    "payload_oxum": result.payload_oxum,
                    "artifacts": result.artifacts,
                    "sha512_manifest": sha512,
                }
                details["redaction"] = redaction
            # Logged first, then given its name: a process killed in between leaves a logged
            # export complete under its temporary name -- never an export the log does not know.
            try:
                self._ctx.log_event(Action.RECORDS_EXPORTED, details)
            except StorageError as exc:
                raise StorageError(
                    f"the export could not be logged, so it was not written ({exc.message})", where=where
                ) from exc
            try:
                if format == "bagit":
                    place_bag(tmp, target)
                else:
                    place_new_file(tmp, target)
                placed = True
            except OSError as exc:
                logged_export = True  # kept below, whatever its name
                kept = target.with_name(f".export-{uuid.uuid4().hex[:12]}.kept")
                with contextlib.suppress(OSError):
                    tmp.rename(kept)
                    tmp = kept
                raise StorageError(
                    f"the export was written and logged, but could not be given its name ({exc.strerror or exc}); "
                    f"it is complete in {display_path(tmp)}",
                    where=where,
                ) from exc
            try:
                fsync_dir(target.parent)
            except OSError as exc:
                raise StorageError(
                    f"the export was written, logged and named, but its folder could not be synced to disk"
                    f" ({exc.strerror or exc}): check it before relying on it",
                    where=where,
                ) from exc
        except FileExistsError as exc:
            raise InputError("already exists; choose a new name", where=where) from exc
        except OSError as exc:
            raise StorageError(f"export failed ({exc.strerror or exc}); nothing was written", where=where) from exc
        finally:
            if not placed and not logged_export and tmp.name.endswith(".part"):
                if tmp.is_dir() and not tmp.is_symlink():
                    shutil.rmtree(tmp, ignore_errors=True)
                else:
                    tmp.unlink(missing_ok=True)
            elif placed and format != "bagit":
                tmp.unlink(missing_ok=True)  # the file was linked into place: drop the temporary name
        return result

    # -- import ------------------------------------------------------------------------------

    def import_records(
        self,
        source: str | os.PathLike[str],
        *,
        blobs: str | os.PathLike[str] | None = None,
        progress: ProgressCallback | None = None,
        accept_unsigned: bool = False,
    ) -> ImportResult:
        """Import an export of this library: a BagIt bag, a JSON export or a JSON Lines export.

        Everything is checked before anything is accepted (see
        :mod:`evidence_catalog.interchange.importing`): a bag's paths, completeness,
        Payload-Oxum and every digest; every document's schema and that each record reads back
        unchanged; the custody events' hashes; that every record is what its custody events
        rebuild (the replay ``verify`` uses) and that every artifact's description (digests,
        size, media type, embedded metadata such as EXIF time and GPS) is what its bytes say;
        and that the custody events are covered by a checkpoint signed by the key the exported
        log itself names (its ``catalog.created`` or ``key.created`` event).  An export without
        such signed provenance is refused (:class:`~evidence_catalog.interchange.importing.
        UnsignedProvenanceError`) unless *accept_unsigned*: then its records are imported tagged
        ``provenance:unsigned`` (shown and exported with them) and the import event says why.

        Records keep their ids; each added record is one ``record.imported`` event naming the
        source (a bag's External-Identifier and Payload-Oxum, the log key checked) and holding
        the custody events that came with it.  A record that is here already, unchanged, is not
        added again (importing the same bag twice adds nothing); one that is here with different
        content is refused.  A JSON or JSON Lines export carries no files: each artifact must be
        in this catalog already or in *blobs* (another catalog's folder or its ``blobs`` folder),
        where it is checked.  All or nothing.
        """
        path = Path(os.path.abspath(os.fspath(source)))
        blob_dir = None if blobs is None else Path(os.path.abspath(os.fspath(blobs)))
        if self.db.read_only:
            raise StorageError("the catalog is read-only; nothing can be imported into it")
        log_key.check_signing_key(self._ctx)  # before anything is stored
        incoming = read_source(path, blobs=blob_dir, progress=progress, accept_unsigned=accept_unsigned)
        where = display_path(path)
        provenance = incoming.provenance
        described = incoming.source | {"path": where}
        if not provenance.signed:  # accepted: the event says so, and why
            described["unsigned_provenance"] = {"accepted": True, "reason": provenance.unsigned}
        with self.db.read() as session:
            new = self._records_to_import(session, incoming, where)
        stored, present, size, created = self._store_incoming_files(incoming, new, where)
        at = self.clock()
        try:
            with self._ctx.write() as session:
                new = self._records_to_import(session, incoming, where)  # again: another writer may have added
                for item in new:
                    self._insert_imported(session, item, described, at, unsigned=not provenance.signed)
        except BaseException:
            self._remove_unclaimed(created)  # all or nothing: blobs only this import stored go too
            raise
        added = {item.record.id for item in new}
        return ImportResult(
            source=path,
            format=incoming.format,
            records_added=tuple(item.record.id for item in new),
            records_present=tuple(i.record.id for i in incoming.records if i.record.id not in added),
            artifacts_stored=stored,
            artifacts_present=present,
            bytes_stored=size,
            external_identifier=incoming.source.get("external_identifier"),
            payload_oxum=incoming.source.get("payload_oxum"),
            log_key_id=provenance.key_id if provenance.signed else None,
            log_origin=provenance.origin if provenance.signed else None,
            unsigned=provenance.unsigned,
        )

    def _records_to_import(self, session: Any, incoming: Incoming, where: str) -> list[IncomingRecord]:
        """The incoming records this catalog does not have; refuse one it has with other content,
        an artifact described differently (here, or by two incoming records), or a part or
        acquisition id that is taken (ids are unique across a catalog)."""
        described: dict[str, model.Artifact] = {}
        for item in incoming.records:
            for entry in item.record.artifacts:
                earlier = described.setdefault(entry.artifact.sha256, entry.artifact)
                if earlier != entry.artifact:
                    raise InputError(
                        f"describes artifact {entry.artifact.sha256} differently from another record of the "
                        "same export; nothing was imported",
                        where=item.where,
                    )
        new = []
        for item in incoming.records:
            record = item.record
            if self.db.record_exists(session, record.id):
                if _unmarked(self.db.record(session, record.id)) != _unmarked(record):
                    raise InputError(
                        f"record {record.id} is in this catalog already with different content; nothing was imported",
                        where=item.where,
                    )
                continue
            for entry in record.artifacts:
                known = self.db.artifact(session, entry.artifact.sha256)
                if known is not None and known != entry.artifact:
                    raise InputError(
                        f"artifact {entry.artifact.sha256} is in this catalog already with other metadata "
                        "(media type or embedded metadata read differently); nothing was imported",
                        where=item.where,
                    )
            new.append(item)
        owners: dict[str, str] = {}
        for item in new:
            record = item.record
            part_ids = [
                *(a.id for a in record.acquisitions),
                *(r.id for r in record.reports),
                *(n.id for n in record.notes),
                *(c.id for c in record.claims),
                *(a.id for a in record.assessments),
            ]
            if len(set(part_ids)) != len(part_ids) or record.id in part_ids:
                raise InputError("uses one id for two parts; nothing was imported", where=item.where)
            for part_id in part_ids:
                if owners.setdefault(part_id, record.id) != record.id:
                    raise InputError(
                        f"id {part_id} is used by two records of the export; nothing was imported", where=item.where
                    )
        taken = self.db.ids_in_use(session, list(owners))
        if taken:
            first = sorted(taken)[0]
            raise InputError(
                f"id {first} (of record {owners[first]}) is used in this catalog already; nothing was imported",
                where=where,
            )
        return new

    def _store_incoming_files(
        self, incoming: Incoming, new: list[IncomingRecord], where: str
    ) -> tuple[int, int, int, list[str]]:
        """Store the bytes of every new record's artifacts, checking each against its SHA-256
        before any is stored; return (stored, already held, bytes stored, SHA-256s of the blobs
        this call created)."""
        needed: dict[str, model.Artifact] = {}
        for item in new:
            for entry in item.record.artifacts:
                needed.setdefault(entry.artifact.sha256, entry.artifact)
        missing = [sha for sha in needed if not self.blobs.exists(sha)]
        for sha in missing:
            if sha not in incoming.files:
                raise InputError(
                    f"artifact {sha} is neither in this catalog nor in the files given"
                    + ("" if incoming.format == "bagit" else " (give the exporting catalog with --blobs)")
                    + "; nothing was imported",
                    where=where,
                )
        if not incoming.files_checked:
            for sha in missing:
                digests, size = hash_file(str(incoming.files[sha]))
                if digests.sha256 != sha or size != needed[sha].size:
                    raise IntegrityError(
                        f"holds {size} bytes with SHA-256 {digests.sha256}, not artifact {sha}; nothing was imported",
                        where=display_path(incoming.files[sha]),
                    )
        holders = {e.artifact.sha256: item.record.id for item in reversed(new) for e in item.record.artifacts}
        for sha in missing:  # what each record says of the bytes, read again from them
            check_artifact_bytes(
                incoming.files[sha],
                needed[sha],
                hashed=True,
                where=f"record {holders[sha]}: {display_path(incoming.files[sha])}",
            )
        stored = size_total = 0
        created: list[str] = []
        try:
            self._store_files(incoming, missing, created)
        except BaseException:
            self._remove_unclaimed(created)
            raise
        for sha in created:
            stored += 1
            size_total += needed[sha].size
        return stored, len(needed) - len(missing), size_total, created

    def _store_files(self, incoming: Incoming, missing: list[str], created: list[str]) -> None:
        for sha in missing:
            try:
                with open(incoming.files[sha], "rb") as stream:
                    blob = self.blobs.put_stream(common.SourceFile(stream, display_path(incoming.files[sha])))
            except OSError as exc:
                raise InputError(f"cannot be read ({exc.strerror})", where=display_path(incoming.files[sha])) from exc
            if blob.created:
                created.append(blob.sha256)
            if blob.sha256 != sha:  # changed since it was checked
                raise IntegrityError(
                    f"changed while it was imported (now SHA-256 {blob.sha256}); nothing was imported",
                    where=display_path(incoming.files[sha]),
                )

    def _remove_unclaimed(self, created: Sequence[str]) -> None:
        """Remove blobs an import stored when its records were not written, unless a record
        (of another writer, meanwhile) holds them."""
        common.remove_unclaimed(self._ctx, created)

    def _insert_imported(
        self, session: Any, item: IncomingRecord, source: dict[str, Any], at: dt.datetime, *, unsigned: bool = False
    ) -> None:
        record = item.record
        for entry in record.artifacts:
            if self.db.artifact(session, entry.artifact.sha256) is None:
                common.add_artifact(self._ctx, session, entry.artifact, at=at)
        self.db.add_record(session, record)
        for entry in record.artifacts:
            self.db.attach_artifact(session, record.id, entry)
        event = self.db.append_event(
            session,
            at=at,
            actor=self.operator,
            action=Action.RECORD_IMPORTED,
            subject=record.id,
            details=imported_details(record, source, item.history),
        )
        for position, acquisition in enumerate(record.acquisitions):
            self.db.add_acquisition(session, record.id, acquisition, event.seq, position)
        for kind, parts in (
            ("report", record.reports),
            ("note", record.notes),
            ("flag", record.flags),
            ("relation", record.relations),
            ("claim", record.claims),
            ("assessment", record.assessments),
        ):
            for part in parts:
                self.db.add_part(session, record.id, kind, part, event.seq)
        found = {a.artifact_sha256: a.ended_at for a in record.acquisitions if a.artifact_sha256 is not None}
        index_rows(
            session,
            [(r.id, r, found.get(r.document_sha256 or "", record.created_at)) for r in record.reports],
        )
        if unsigned and self.db.add_tags(session, record.id, [UNSIGNED_PROVENANCE_TAG]):
            self.db.append_event(
                session,
                at=at,
                actor=self.operator,
                action=Action.TAGS_ADDED,
                subject=record.id,
                details={"tags": [UNSIGNED_PROVENANCE_TAG]},
            )

    def _write_log_evidence(
        self, writer: BagWriter, session: Any, seqs: list[int], *, complete: bool
    ) -> dict[str, Any] | None:
        """Put into a bag what lets a recipient check its custody events against the signed log
        without this library: the latest checkpoint (which covers every event exported), the
        log's public key (PEM for ``openssl``, and the C2SP vkey), an RFC 6962 inclusion proof of
        each event when the log is not exported whole, and the RFC 3161 tokens kept."""
        latest = self.db.latest_checkpoint(session)
        if latest is None or not self.log_key.exists:
            return None
        name, public = self.log_key.public()
        writer.add_bytes(f"{LOG_DIR}/checkpoint.note", latest.note.encode("utf-8"))
        writer.add_bytes(f"{LOG_DIR}/log.pub", (self.log_key.directory / PUBLIC_FILE).read_bytes())
        writer.add_bytes(f"{LOG_DIR}/log.vkey", (vkey(name, public) + "\n").encode("ascii"))
        subtrees = self.db.subtrees(session)
        proofs = not complete and bool(seqs)
        if proofs:
            # The event naming the log key, which the recipient checks the checkpoint with; in
            # a bag of some records it is not among their events, so it goes here, proven too.
            key_event = next(
                (
                    event
                    for action in (Action.CATALOG_CREATED, Action.LOG_KEY_CREATED)
                    for event in self.db.events_by_action(session, action)
                    if named_key(to_document(event)) is not None
                ),
                None,
            )
            if key_event is not None and key_event.seq <= latest.tree_size and key_event.seq not in seqs:
                document = to_document(key_event)
                writer.add_bytes(KEY_EVENT, (json.dumps(document, ensure_ascii=False) + "\n").encode("utf-8"))
                seqs = sorted({*seqs, key_event.seq})
            # And each hand-over to a later key, so that a checkpoint that key signed is checked too.
            changes = [
                to_document(event)
                for event in self.db.events_by_action(session, Action.LOG_KEY_CHANGED)
                if event.seq <= latest.tree_size and event.seq not in seqs
            ]
            if changes:
                lines = "".join(json.dumps(document, ensure_ascii=False) + "\n" for document in changes)
                writer.add_bytes(KEY_CHANGES, lines.encode("utf-8"))
                seqs = sorted({*seqs, *(document["seq"] for document in changes)})
            stream = writer.open_text(f"{LOG_DIR}/proofs.jsonl")
            try:
                for seq in seqs:
                    path = merkle.inclusion_proof(subtrees, seq - 1, latest.tree_size)
                    line = {
                        "seq": seq,
                        "leaf_index": seq - 1,
                        "tree_size": latest.tree_size,
                        "leaf_hash": subtrees(0, seq - 1).hex(),
                        "proof": [h.hex() for h in path],
                    }
                    stream.write(json.dumps(line) + "\n")
            finally:
                stream.close()
        stamps = []
        for number, stamp in enumerate(self.db.timestamps(session, "granted"), 1):
            if stamp.subject_kind != "checkpoint" or stamp.token is None:
                continue
            if not stamp.subject.isdecimal():
                continue  # a damaged row: verify names it; nothing to export for it
            stamped = self.db.checkpoint(session, int(stamp.subject))
            if stamped is None:
                continue
            note = stamped.note
            base = f"{LOG_DIR}/timestamps/{number:04d}"
            writer.add_bytes(f"{base}.note", note.encode("utf-8"))
            writer.add_bytes(f"{base}.tsr", base64.b64decode(stamp.token))
            stamps.append({"note": f"{base}.note", "token": f"{base}.tsr", "tsa_url": stamp.tsa_url})
        return {
            "origin": name,
            "checkpoint": f"{LOG_DIR}/checkpoint.note",
            "tree_size": latest.tree_size,
            "root_hash": latest.root_hash,
            "signed": latest.signed,
            "public_key": f"{LOG_DIR}/log.pub",
            "vkey": f"{LOG_DIR}/log.vkey",
            "proofs": f"{LOG_DIR}/proofs.jsonl" if proofs else None,
            "timestamps": stamps,
        }

    @staticmethod
    def _redaction_kinds(redact: bool | Collection[str]) -> frozenset[str] | None:
        if redact is True:
            return frozenset(kind.value for kind in model.SensitivityKind)
        if redact is False or redact is None:
            return None
        if isinstance(redact, str):
            redact = [redact]
        kinds = frozenset(choice(model.SensitivityKind, kind, "redact").value for kind in redact)
        if not kinds:
            raise InputError("give the flag kinds to redact, or True for all", where="redact")
        return kinds

    def _write_export_file(
        self, tmp: Path, target: Path, format: str, selected: list[str] | None, bom: bool
    ) -> ExportResult:
        with open(tmp, "wb") as raw:
            sink = _HashingTextSink(raw)
            if bom:
                sink.write("\ufeff")
            counts = self._write_export(sink, format, selected)
            raw.flush()
            os.fsync(raw.fileno())
        digests, size = sink.hasher.digests(), sink.hasher.size
        return ExportResult(
            path=target,
            format=format,
            records=counts[0],
            custody_events=counts[1],
            sha256=digests.sha256,
            size=size,
            artifacts=counts[2],
        )

    def _write_bag(
        self,
        tmp: Path,
        target: Path,
        selected: list[str] | None,
        kinds: frozenset[str] | None,
        sha512: bool,
        progress: ExportProgress | None,
    ) -> tuple[ExportResult, dict[str, Any] | None]:
        at = self.clock()
        external_identifier = f"urn:uuid:{model.new_id()}"
        tmp.mkdir()
        writer = BagWriter(tmp, ("sha256", "sha512") if sha512 else ("sha256",))
        wanted = None if selected is None else set(selected)
        on_bytes = on_withheld = None
        if progress is not None:
            counts = [0, 0]  # done, total
            with self.db.read() as session:
                counts[1] = self.db.artifact_bytes(session, selected)
            progress(0, counts[1])

            def on_bytes(n: int) -> None:
                counts[0] += n
                progress(counts[0], counts[1])

            def on_withheld(n: int) -> None:  # a redaction leaves it out: the total shrinks
                counts[1] -= n
                progress(counts[0], counts[1])

        try:
            with self.db.read() as session:
                ids = self.db.record_ids(session) if selected is None else selected
                plan = None
                if kinds is not None:  # first what to withhold across all records, then the bag
                    try:
                        plan = plan_redaction(self.db.records(session, ids), kinds)
                    except FieldPathError as exc:
                        raise InputError(str(exc), where="redact") from exc
                    # Every copy of a withheld text goes: also the files whose bytes hold it.
                    plan = plan.with_carriers(find_carriers(self.db.records(session, ids), plan, self.blobs.open))
                summary, redaction = write_payload(
                    writer,
                    records=self.db.records(session, ids),
                    events=(e for e in self.db.events(session) if wanted is None or e.subject in wanted),
                    open_blob=self.blobs.open,
                    head={
                        "external_identifier": external_identifier,
                        "exported_at": format_timestamp(at),
                        "exported_by": unstructure(self.operator),
                        "generator": unstructure(library_agent()),
                        "complete_log": selected is None,
                    },
                    plan=plan,
                    progress=on_bytes,
                    withheld_bytes=on_withheld,
                    log_evidence=lambda w, seqs: self._write_log_evidence(w, session, seqs, complete=selected is None),
                )
            info = bag_info(
                summary=summary, operator=self.operator, generator=library_agent(), at=at, redaction=redaction
            )
            pinned = writer.finish(info)
        except BaseException:
            writer.abort()
            raise
        fsync_dir(tmp)
        logged = (
            None
            if redaction is None
            else {
                "kinds": redaction["kinds"],
                "withheld_artifacts": [
                    {"record_id": a["record_id"], "sha256": a["sha256"]} for a in redaction["withheld_artifacts"]
                ],
                "withheld_fields": [
                    {"record_id": f["record_id"], "path": f["path"]} for f in redaction["withheld_fields"]
                ],
                "altered_events": redaction["altered_events"],
            }
        )
        result = ExportResult(
            path=target,
            format="bagit",
            records=summary.records,
            custody_events=summary.custody_events,
            sha256=pinned,
            size=summary.payload_octets,
            artifacts=summary.artifacts,
            external_identifier=external_identifier,
            payload_oxum=f"{summary.payload_octets}.{summary.payload_files}",
            redacted=redaction is not None,
            withheld_artifacts=summary.withheld_artifacts,
            withheld_fields=summary.withheld_fields,
        )
        return result, logged

    def _export_target(self, output: str | os.PathLike[str], *, folder: bool = False) -> Path:
        given = os.fspath(output)
        if given in ("", "-"):
            raise InputError(f"give a {'folder' if folder else 'file'} name to write the export to", where="output")
        target = Path(os.path.abspath(given))
        where = display_path(target)
        if not folder and (given.endswith(os.sep) or target.is_dir()):
            raise InputError("is a directory; give a file name", where=where)
        if target.exists() or target.is_symlink():
            raise InputError("already exists; choose a new name", where=where)
        if not target.parent.is_dir():
            raise InputError("directory does not exist", where=display_path(target.parent))
        catalog_dir = self.path.resolve()
        if target.parent.resolve() == catalog_dir or catalog_dir in target.parent.resolve().parents:
            raise InputError("is inside the catalog directory; export somewhere else", where=where)
        return target

    def _write_export(self, stream: _TextSink, format: str, selected: list[str] | None) -> tuple[int, int, int]:
        """Write from one read transaction: records and log are one consistent snapshot, even
        while another process adds to the catalog.  Returns (records, custody events, artifact
        rows)."""
        wanted = None if selected is None else set(selected)
        with self.db.read() as session:
            ids = self.db.record_ids(session) if selected is None else selected
            records = self.db.records(session, ids)
            events = (e for e in self.db.events(session) if wanted is None or e.subject in wanted)
            if format == "csv":
                return _write_csv(stream, records), 0, 0
            latest = self.db.latest_checkpoint(session, signed=True)  # covers every event exported
            if format == "prov":
                held = None if latest is None else (latest.note, latest.tree_size, latest.root_hash)
                # Exports are catalog events: all events go in, the earlier exports of these records come out.
                return (*write_prov(stream, records, self.db.events(session), held), 0)
            if format == "jsonl":
                counts = self._write_jsonl(stream, records, events)
                if latest is not None:  # last: it covers every event above
                    line = {
                        "schema": CHECKPOINT_SCHEMA,
                        "note": latest.note,
                        "tree_size": latest.tree_size,
                        "root_hash": latest.root_hash,
                    }
                    stream.write(json.dumps(line, ensure_ascii=False) + "\n")
                return (*counts, 0)
            note = None if latest is None else latest.note
            return (*self._write_json(stream, records, events, complete_log=selected is None, checkpoint=note), 0)

    @staticmethod
    def _write_jsonl(
        stream: _TextSink, records: Iterable[model.EvidenceRecord], events: Iterable[model.CustodyEvent]
    ) -> tuple[int, int]:
        counts = [0, 0]
        for index, documents in enumerate((records, events)):
            for document in documents:
                stream.write(json.dumps(to_document(document), ensure_ascii=False) + "\n")
                counts[index] += 1
        return counts[0], counts[1]

    def _write_json(
        self,
        stream: _TextSink,
        records: Iterable[model.EvidenceRecord],
        events: Iterable[model.CustodyEvent],
        *,
        complete_log: bool,
        checkpoint: str | None = None,
    ) -> tuple[int, int]:
        # One JSON document, written item by item so memory does not grow with the catalog.
        head = {
            "schema": SCHEMA_IDS[model.ExportBundle],
            "exported_at": format_timestamp(self.clock()),
            "exported_by": unstructure(self.operator),
            "generator": unstructure(library_agent()),
            "complete_log": complete_log,
            "checkpoint": checkpoint,
        }
        stream.write(json.dumps(head, ensure_ascii=False, indent=1)[:-2])
        counts = [0, 0]
        for index, (name, items) in enumerate((("records", records), ("custody_events", events))):
            stream.write(f',\n "{name}": [')
            for item in items:
                stream.write(("," if counts[index] else "") + "\n")
                stream.write(json.dumps(unstructure(item), ensure_ascii=False))
                counts[index] += 1
            stream.write("\n ]")
        stream.write("\n}\n")
        return counts[0], counts[1]


class _TextSink(Protocol):
    def write(self, text: str, /) -> object: ...


class _HashingTextSink:
    """Writes text as UTF-8 and hashes exactly the bytes written (the export's SHA-256 is known
    without reading the file again)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.hasher = MultiHasher()

    def write(self, text: str) -> int:
        data = text.encode("utf-8")
        self.hasher.update(data)
        self.raw.write(data)
        return len(text)


def _write_csv(stream: _TextSink, records: Iterable[model.EvidenceRecord]) -> int:
    """The CSV export: a header, then each record's artifact rows (RFC 4180, CRLF)."""
    import csv

    from evidence_catalog.csv_export import COLUMNS, artifact_rows

    writer = csv.writer(stream, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    count = 0
    for record in records:
        writer.writerows(artifact_rows(record))
        count += 1
    return count


def open_blob_store(directory: Path, config: CatalogConfig) -> BlobStorage:
    """The blob store a catalog's settings name: ``blobs/`` in its folder, or object storage."""
    if config.blobs_url is None:
        return BlobStore(directory / BLOBS_DIR, config.algorithms, label=BLOBS_DIR)
    return ObjectBlobStore(
        config.blobs_url,
        config.algorithms,
        endpoint_url=config.blobs_endpoint_url,
        where=f"{display_path(directory / CONFIG_FILE)}: blobs.url",
        endpoint_where=f"{display_path(directory / CONFIG_FILE)}: blobs.endpoint_url",
    )


def _unmarked(record: model.EvidenceRecord) -> model.EvidenceRecord:
    """*record* without the tag an import with unsigned provenance adds: the same record
    imported again, signed or not, is the record already here."""
    if UNSIGNED_PROVENANCE_TAG not in record.tags:
        return record
    return attrs.evolve(record, tags=[t for t in record.tags if t != UNSIGNED_PROVENANCE_TAG])
