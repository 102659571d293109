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

import contextlib
import datetime as dt
import os
import shutil
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, ClassVar

import attrs

from evidence_catalog import model
from evidence_catalog.capture.ytdlp import (
    CaptureOptions,
    CaptureProgress,
)
from evidence_catalog.checkpoint import KeyDamagedError
from evidence_catalog.config import CONFIG_FILE, CatalogConfig, resolve_operator
from evidence_catalog.custody import (
    Action,
)
from evidence_catalog.errors import (
    CatalogError,
    CatalogNotFoundError,
    EvidenceError,
    InputError,
    StorageError,
)
from evidence_catalog.filters import RecordFilter
from evidence_catalog.hashing import ProgressCallback

# INGEST_FORMATS: the CLI's choices, named here as before.
from evidence_catalog.ingest.formats import INGEST_FORMATS as INGEST_FORMATS
from evidence_catalog.ingest.formats import IngestFormat
from evidence_catalog.ingest.links import LinkSuggestion
from evidence_catalog.operations import (
    adding,
    capturing,
    exporting,
    housekeeping,
    importing,
    ingesting,
    judging,
    log_key,
    log_proofs,
    reading,
    verifying,
)
from evidence_catalog.operations.context import Clock, Context, KeyState
from evidence_catalog.operations.exporting import EXPORT_FORMATS as EXPORT_FORMATS  # the CLI's choices
from evidence_catalog.operations.exporting import ExportFormat, ExportProgress
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
    unstructure,
)
from evidence_catalog.store.blobs import BlobStorage
from evidence_catalog.store.blobstore import BlobStore, fsync_dir
from evidence_catalog.store.database import (
    HEAD_REVISION,
    CatalogDatabase,
    check_database_url,
    database_errors,
    safe_url,
    sqlite_url,
)
from evidence_catalog.store.keyfiles import LogKey
from evidence_catalog.store.objectstore import ObjectBlobStore, check_endpoint_url, parse_blobs_url
from evidence_catalog.versions import library_agent
from evidence_catalog.vocabulary import Category

DATABASE_FILE = "catalog.db"
BLOBS_DIR = "blobs"


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
            raise InputError("a SQLite catalog keeps its database in its folder: leave database out", where="database")
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
        where: RecordFilter | None = None,
        search: str | None = None,
        bom: bool = False,
        redact: bool | Collection[str] = False,
        sha512: bool = False,
        progress: ExportProgress | None = None,
    ) -> ExportResult:
        """Export records in an open format: all (*record_ids* ``None``) or those named, and of
        those only the records that meet *where* (a :class:`~evidence_catalog.filters.RecordFilter`,
        see :meth:`record_filter`) and hold a report matching *search* (its words, as
        :meth:`search` matches them), when given; a selection that leaves no record is an
        :class:`~evidence_catalog.errors.InputError`.  The formats:

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
            one row per artifact for spreadsheets (:mod:`evidence_catalog.interchange.csv`); *bom*
            starts it with a UTF-8 byte order mark, which some spreadsheet software needs.

        The whole custody log goes with a whole-catalog export (no *record_ids*, *where* or
        *search*), otherwise the events about the selected records.  The export is written under
        a temporary name and renamed into place; an existing file or folder is never replaced.
        The export is itself a custody event, which names where it went, its SHA-256 and, for a
        bag, its identifier, Payload-Oxum and what a redaction withheld.
        """
        return exporting.export(
            self._ctx,
            output,
            format=format,
            record_ids=record_ids,
            where=where,
            search=search,
            bom=bom,
            redact=redact,
            sha512=sha512,
            progress=progress,
        )

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
        return importing.import_records(
            self._ctx, source, blobs=blobs, progress=progress, accept_unsigned=accept_unsigned
        )


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
