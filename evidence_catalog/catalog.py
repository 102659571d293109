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
import enum
import hashlib
import os
import re
import shutil
import stat
import time
import urllib.parse
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Literal, TypeVar

import attrs
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.exc import DatabaseError

from evidence_catalog import merkle, model
from evidence_catalog.capture.ytdlp import (
    CapturedFile,
    CaptureFailed,
    CaptureOptions,
    CaptureProgress,
    Download,
    item_key,
)
from evidence_catalog.capture.ytdlp import download as capture_download
from evidence_catalog.checkpoint import (
    KEY_FILE,
    PASSPHRASE_ENV,
    PUBLIC_FILE,
    VKEY_FILE,
    CheckpointError,
    KeyDamagedError,
    KeyEpoch,
    LogKey,
    epoch_at,
    parse_checkpoint,
    public_bytes,
    remembered_for,
    split_note,
)
from evidence_catalog.checkpoint import remember as remember_checkpoint
from evidence_catalog.checkpoint import verify as verify_checkpoint
from evidence_catalog.config import CONFIG_FILE, CatalogConfig, resolve_operator
from evidence_catalog.custody import (
    ANNOTATIONS,
    Action,
    added_details,
    annotation_details,
    captured_details,
    event_leaf,
    failed_details,
    linked_details,
    replay,
    verify_chain,
)
from evidence_catalog.errors import (
    CatalogError,
    CatalogNotFoundError,
    EvidenceError,
    InputError,
    IntegrityError,
    NetworkError,
    NotFoundError,
    StorageError,
    ValidationError,
)
from evidence_catalog.filters import RecordFilter
from evidence_catalog.findings import (
    CheckpointInvalid,
    CheckpointMismatch,
    CheckpointUnsigned,
    EntryUnreadable,
    EventsUnsigned,
    EventUnreplayable,
    Finding,
    KeyChangeInvalid,
    KeyFileMismatch,
    LogRolledBack,
    MerkleLeafMismatch,
    MerkleNodeMismatch,
    RecordMismatch,
    RecordMissing,
    TimestampMismatch,
    UnloggedChange,
)
from evidence_catalog.hashing import ProgressCallback
from evidence_catalog.ingest.feed import looks_like_feed
from evidence_catalog.ingest.fetch import WITHHELD_SET_COOKIE, FetchedDocument, fetch_document
from evidence_catalog.ingest.links import LinkSuggestion
from evidence_catalog.ingest.telegram import looks_like_telegram
from evidence_catalog.ingest.twarc import looks_like_twarc
from evidence_catalog.interchange.redact import FieldPathError, check_flag, part_ids_named
from evidence_catalog.operations import common, exporting, importing, log_key
from evidence_catalog.operations.common import (
    WORK_DIR,
    SourceFile,
    check_limit,
    check_url,
    checked_tags,
    choice,
    input_text,
    parse_since,
    parse_time,
    remove_if_abandoned,
    utf8,
)
from evidence_catalog.operations.context import Clock, Context, KeyState
from evidence_catalog.operations.exporting import EXPORT_FORMATS as EXPORT_FORMATS  # the CLI's choices
from evidence_catalog.operations.exporting import ExportFormat, ExportProgress
from evidence_catalog.operations.log_key import KEYS_DIR, NEXT_KEY_DIR
from evidence_catalog.paths import display_path, recorded_path
from evidence_catalog.results import (
    FSCK_GRACE_SECONDS,
    AddResult,
    CaptureResult,
    CheckpointInfo,
    ExportResult,
    FsckEntry,
    FsckReport,
    ImportResult,
    InclusionProof,
    IngestResult,
    KeyChange,
    LinkResult,
    SearchHit,
    TimestampResult,
    VerificationReport,
)
from evidence_catalog.serialize import (
    format_timestamp,
    structure,
    unstructure,
)
from evidence_catalog.store.blobstore import BlobStore, StoredBlob, fsync_dir
from evidence_catalog.store.database import (
    HEAD_REVISION,
    CatalogDatabase,
    EventDraft,
    acquisition_row,
    artifact_row,
    check_database_url,
    index_rows,
    part_row,
    record_artifact_row,
    record_row,
    safe_url,
)
from evidence_catalog.store.objectstore import ObjectBlobStore, check_endpoint_url, parse_blobs_url
from evidence_catalog.timestamp import TimestampError, token_info
from evidence_catalog.timestamp import stamp_digest as timestamp_digest
from evidence_catalog.versions import library_agent, tool_agents
from evidence_catalog.vocabulary import BUILTIN_CATEGORIES, Category

DATABASE_FILE = "catalog.db"
BLOBS_DIR = "blobs"
#: The environment variable naming the RFC 3161 Time-Stamp Authority.
TSA_ENV = "EVIDENCE_CATALOG_TSA_URL"

_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_Part = TypeVar("_Part")
_E = TypeVar("_E", bound=enum.Enum)
IngestFormat = Literal["digest", "rss", "twarc", "telegram"]
#: Inputs :meth:`Catalog.ingest` reads ("rss" covers RSS 0.9x-2.0, RSS 1.0/RDF and Atom; "twarc"
#: is twarc2's JSON Lines of X API v2 responses).
INGEST_FORMATS: tuple[str, ...] = ("digest", "rss", "twarc", "telegram")
#: Reports written per batch of inserts during one ingest (all batches are one transaction).
INGEST_CHUNK = 2000


def _fsck_entry(path: Path, root: Path, now: float, *, sha256: str | None = None) -> FsckEntry:
    try:
        info = path.lstat()
        size = info.st_size if not path.is_dir() else sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir())
        age = max(0.0, now - info.st_mtime)
    except OSError:
        size, age = 0, 0.0
    return FsckEntry(path=path.relative_to(root).as_posix(), size=size, age_seconds=age, sha256=sha256)


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
    def blobs(self) -> BlobStore | ObjectBlobStore:
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
            if database_url is None:
                db = CatalogDatabase.create(_sqlite_url(directory))
            else:
                db = CatalogDatabase.create(database_url, where=safe_url(database_url))
            created_schema = True
            catalog = cls(directory, config, db, operator=default_operator, clock=clock, key_passphrase=key_passphrase)
            log = log_key.create_log_key(catalog._ctx)  # first: the first event already ends with a signed checkpoint
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
        except (OSError, EvidenceError, DatabaseError) as exc:
            # Leave nothing half-made behind (only what this call made): init can be run again.
            if db is not None:
                if created_schema and database_url is not None:
                    # A shared server: leave the database empty again.  Should that fail too
                    # (the server gone), the first error is the one to report.
                    with contextlib.suppress(DatabaseError, OSError):
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
            reason = exc.strerror if isinstance(exc, OSError) else exc.orig
            raise StorageError(f"cannot create catalog ({reason})", where=display_path(directory)) from exc
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
            database = CatalogDatabase.open(_sqlite_url(directory, read_only=read_only), where=display_path(db_path))
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
        found: list[Path] = []
        seen: set[Path] = set()
        own = _identity(self.path)
        for given in paths:
            path = Path(os.path.abspath(given))
            for file in _expand(path, recursive=recursive, skip=own):
                if file not in seen:
                    seen.add(file)
                    found.append(file)
        return found

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
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise InputError(f"batch must be a whole number of at least 1, not {batch!r}", where="batch")
        if isinstance(paths, str | bytes | os.PathLike):
            paths = [paths]  # one path, not the characters of one
        if isinstance(tags, str):
            tags = [tags]
        files = self.collect_files(paths, recursive=recursive)
        results: list[AddResult] = []
        noted: set[str] = set()  # files that end up on one record share the note: kept once
        for start in range(0, len(files), batch):
            added = self._add_batch(files[start : start + batch], record_id, note, source_url, tags, progress, noted)
            for result in added:
                results.append(result)
                if on_added is not None:
                    on_added(result)
        return results

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
        [result] = self._add_batch([path], record_id, note, source_url, tags, progress, noted)
        return result

    def _add_batch(
        self,
        paths: Sequence[str | os.PathLike[str]],
        record_id: str | None,
        note: str | None,
        source_url: str | None,
        tags: Sequence[str],
        progress: ProgressCallback | None,
        noted: set[str] | None,
    ) -> list[AddResult]:
        """Store and describe each file, then catalogue them all in one transaction."""
        log_key.check_signing_key(self._ctx)  # before anything is stored
        if record_id is not None and not model.is_record_id(record_id):
            raise InputError(f"{record_id!r} is not a record id", where="record")
        tags = checked_tags(tags)
        if note is not None and not utf8(note, "note").strip():
            raise InputError("note must not be blank", where="note")
        if source_url is not None:
            utf8(source_url, "source URL")
        if record_id is not None:
            with self.db.read() as session:
                if not self.db.record_exists(session, record_id):
                    raise NotFoundError(f"no record with id {record_id}", where="record")
        # A batch of several files is flushed to disk with one sync before the transaction that
        # claims them (instead of an fsync per file and folder); a single file on its own.
        defer = len(paths) > 1
        prepared = [self._store_added_file(Path(os.path.abspath(p)), source_url, progress, defer) for p in paths]
        if defer:
            self.blobs.sync()
        with self._ctx.write() as session:
            results = self._catalogue_files(session, prepared, record_id, tags, note, noted)
        if noted is not None and note is not None:
            noted.update(r.record_id for r in results)
        return results

    def _store_added_file(
        self, path: Path, source_url: str | None, progress: ProgressCallback | None, defer_sync: bool = False
    ) -> tuple[Path, StoredBlob, model.Artifact, model.Acquisition, dt.datetime]:
        """Put one file's bytes in the blob store and describe them (before any transaction:
        the slow part, done without holding the catalog's write lock)."""
        where = display_path(path)
        started_at = self.clock()
        try:
            info = os.stat(path)
            if not stat.S_ISREG(info.st_mode):
                raise InputError("not a regular file", where=where)
            with open(path, "rb", buffering=0) as stream:
                blob = self.blobs.put_stream(SourceFile(stream, where), progress=progress, defer_sync=defer_sync)
        except FileNotFoundError as exc:
            raise InputError("no such file", where=where) from exc
        except PermissionError as exc:
            raise InputError("permission denied", where=where) from exc
        except IsADirectoryError as exc:
            raise InputError("is a directory", where=where) from exc
        artifact = common.describe(self._ctx, blob)
        ended_at = self.clock()
        path_text, path_b64 = recorded_path(path)
        acquisition = model.Acquisition(
            id=model.new_id(),
            method=model.AcquisitionMethod.ADDED_FROM_DISK,
            started_at=started_at,
            ended_at=max(ended_at, started_at),
            operator=self.operator,
            tools=tool_agents(),
            artifact_sha256=blob.sha256,
            original_path=path_text,
            original_path_b64=path_b64,
            file_modified_at=dt.datetime.fromtimestamp(info.st_mtime, dt.UTC),
            source_url=source_url,
        )
        return path, blob, artifact, acquisition, ended_at

    def _catalogue_files(
        self,
        session: Any,
        prepared: Sequence[tuple[Path, StoredBlob, model.Artifact, model.Acquisition, dt.datetime]],
        record_id: str | None,
        tags: tuple[str, ...],
        note: str | None,
        noted: set[str] | None,
    ) -> list[AddResult]:
        """Catalogue stored files, in order, inside the write transaction *session*: each as if
        on its own, with a few queries and one insert per table for them all (per file, they
        were most of the time a large add took)."""
        shas = [blob.sha256 for _, blob, _, _, _ in prepared]
        # Another writer may have catalogued these bytes meanwhile: its description wins, so
        # that every event about one artifact carries the same document.
        catalogued = self.db.artifacts(session, shas)
        holders = self.db.holders(session, shas) if record_id is None else {}
        if record_id is not None and not self.db.record_exists(session, record_id):
            raise NotFoundError(f"no record with id {record_id}", where="record")
        existing = {record_id} if record_id is not None else {ids[0] for ids in holders.values()}
        held = self.db.held_by(session, existing)  # what each record holds, in order
        have_tags = self.db.tags_of(session, existing) if tags else {}
        new_artifacts: dict[str, dict[str, Any]] = {}
        rows: dict[str, list[dict[str, Any]]] = {
            name: [] for name in ("record", "record_tag", "record_artifact", "acquisition", "record_part")
        }
        drafts: list[EventDraft] = []
        done: list[tuple[AddResult, model.Acquisition, model.Note | None]] = []
        for path, blob, artifact, acquisition, ended_at in prepared:
            sha256 = blob.sha256
            if sha256 in catalogued:
                artifact = catalogued[sha256]
            else:
                if not self.blobs.exists(sha256):  # see _add_artifact
                    raise common.bytes_gone(self._ctx, sha256)
                catalogued[sha256] = artifact
                new_artifacts[sha256] = artifact_row(artifact, ended_at)
            target, new_record = record_id, False
            if target is None:
                if sha256 in holders:
                    target = holders[sha256][0]
                else:
                    target, new_record = model.new_id(), True
                    holders[sha256] = [target]
                    held[target] = []
                    have_tags[target] = set(tags)
            title = path.name if acquisition.original_path_b64 is None else display_path(path.name)
            record, note_part = common.new_parts(self._ctx, target, new_record, title, tags, note, noted, ended_at)
            drafts.append(
                EventDraft(
                    at=ended_at,
                    actor=self.operator,
                    action=Action.ARTIFACT_ADDED,
                    subject=target,
                    details={
                        **added_details(
                            record=record, artifact=artifact, acquisition=acquisition, tags=tags, note=note_part
                        ),
                        # a stored copy that no longer matched its address was replaced by these bytes
                        "damaged_copy_quarantined": blob.quarantined,
                    },
                )
            )
            if record is not None:
                rows["record"].append(record_row(record))
                rows["record_tag"] += [{"record_id": target, "tag": tag} for tag in record.tags]
            elif tags:
                for tag in sorted(set(tags) - have_tags[target]):
                    rows["record_tag"].append({"record_id": target, "tag": tag})
                    have_tags[target].add(tag)
            attached = sha256 not in held[target]
            if attached:
                entry = model.RecordArtifact(artifact=artifact)
                rows["record_artifact"].append(record_artifact_row(target, entry, len(held[target])))
                held[target].append(sha256)
            if note_part is not None and noted is not None:
                noted.add(target)  # a later file of the same batch on this record: noted once
            result = AddResult(
                path=path,
                record_id=target,
                sha256=sha256,
                size=blob.size,
                acquisition_id=acquisition.id,
                new_record=new_record,
                new_on_record=attached,
                new_bytes=blob.created,
                quarantined=blob.quarantined,
            )
            done.append((result, acquisition, note_part))
        events = self.db.append_events(session, drafts)
        for (result, acquisition, note_part), event in zip(done, events, strict=True):
            rows["acquisition"].append(acquisition_row(result.record_id, acquisition, event.seq))
            if note_part is not None:
                rows["record_part"].append(part_row(result.record_id, "note", note_part, event.seq, 0))
        rows["artifact"] = list(new_artifacts.values())
        self.db.insert_rows(session, rows)
        return [result for result, _, _ in done]

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
        if isinstance(urls, str):
            urls = [urls]
        checked = [check_url(url) for url in urls]
        if not checked:
            raise InputError("no URL to capture", where="url")
        self._check_capture_request(record_id, tags, note)
        results: list[CaptureResult] = []
        noted: set[str] = set()
        for url in checked:
            earlier = self._captured_before(url) if skip_captured else None
            if earlier is not None:
                result = earlier
                results.append(result)
                if on_result is not None:
                    on_result(result)
                continue
            result = self.capture_url(
                url, record_id=record_id, options=options, tags=tags, note=note, progress=progress, noted=noted
            )
            results.append(result)
            if on_result is not None:
                on_result(result)
        return results

    def _captured_before(self, url: str, record_id: str | None = None) -> CaptureResult | None:
        """The result of not fetching *url* again: its newest successful capture (onto
        *record_id* when given) as a ``skipped`` result, or ``None`` when there is none."""
        with self.db.read() as session:
            earlier = self.db.earlier_capture(session, platform_key=None, requested_url=url, record_id=record_id)
        if earlier is None:
            return None
        found_on, sha256, acquisition_id = earlier
        return CaptureResult(
            url=url, ok=True, acquisition_id=acquisition_id, record_id=found_on, sha256=sha256, skipped=True
        )

    def _check_capture_request(self, record_id: str | None, tags: Sequence[str], note: str | None) -> None:
        if self.db.read_only:
            raise StorageError("the catalog is read-only; nothing can be captured into it")
        if record_id is not None:
            if not model.is_record_id(record_id):
                raise InputError(f"{record_id!r} is not a record id", where="record")
            with self.db.read() as session:
                if not self.db.record_exists(session, record_id):
                    raise NotFoundError(f"no record with id {record_id}", where="record")
        checked_tags(tags)
        if note is not None and not utf8(note, "note").strip():
            raise InputError("note must not be blank", where="note")

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
        log_key.check_signing_key(self._ctx)  # before anything is stored
        url = check_url(url)
        options = options or CaptureOptions()
        tags = checked_tags(tags)
        self._check_capture_request(record_id, tags, note)
        acquisition_id = model.new_id()
        started_at = self.clock()
        failure: tuple[str, int | None, str | None] | None = None
        interrupted = False
        with common.work_area(self._ctx, acquisition_id) as work:
            try:
                fetched = capture_download(url, work, options, progress=progress)
                stored = [(item, self._store_file(item.path, url)) for item in self._capture_files(fetched)]
            except CaptureFailed as exc:
                failure = (exc.message, exc.http_status, exc.final_url)
            except (StorageError, InputError) as exc:
                failure = (str(exc), None, None)
            except OSError as exc:
                failure = (f"the capture could not be written ({exc.strerror or exc}); nothing was stored", None, None)
            except KeyboardInterrupt:
                failure, interrupted = ("interrupted by the operator", None, None), True
        # The work area is gone by now: a partial download that filled the disk no longer takes
        # the room that logging the failure (or recording the capture) needs.
        if interrupted:
            with contextlib.suppress(EvidenceError):
                self._log_failed_capture(url, acquisition_id, started_at, "interrupted by the operator", record_id)
            raise KeyboardInterrupt
        if failure is not None:
            error, http_status, final_url = failure
            return self._log_failed_capture(
                url,
                acquisition_id,
                started_at,
                error,
                record_id,
                http_status=http_status,
                final_url=final_url,
                settings=options.describe(),
            )
        try:
            return self._record_capture(
                options,
                url,
                fetched,
                stored,
                acquisition_id,
                started_at,
                record_id=record_id,
                tags=tags,
                note=note,
                noted=noted,
            )
        except StorageError as exc:
            raise StorageError(f"capture of {url} could not be recorded ({exc.message})", where=exc.where) from exc

    def _store_file_copy(self, path: Path) -> StoredBlob:
        """Store a file the operator holds (it is copied, never moved)."""
        where = display_path(path)
        try:
            with open(path, "rb", buffering=0) as stream:
                return self.blobs.put_stream(SourceFile(stream, where))
        except OSError as exc:
            raise InputError(f"cannot be read ({exc.strerror}); nothing was ingested", where=where) from exc

    def _store_file(self, path: Path, url: str) -> StoredBlob:
        # The download area is private and on the store's file system: hash, then move.
        return self.blobs.adopt_file(path)

    @staticmethod
    def _capture_files(fetched: Download) -> list[CapturedFile]:
        return [*fetched.files, CapturedFile(fetched.info_json, model.ArtifactRole.PLATFORM_METADATA)]

    def _record_capture(
        self,
        options: CaptureOptions,
        url: str,
        fetched: Download,
        stored: list[tuple[CapturedFile, StoredBlob]],
        acquisition_id: str,
        started_at: dt.datetime,
        *,
        record_id: str | None,
        tags: tuple[str, ...],
        note: str | None,
        noted: set[str] | None,
    ) -> CaptureResult:
        sha_of = {item.path: blob.sha256 for item, blob in stored}
        described = {blob.sha256: common.describe(self._ctx, blob) for _, blob in stored}
        entries: list[model.RecordArtifact] = []
        for item, blob in stored:
            if any(e.artifact.sha256 == blob.sha256 for e in entries):
                continue  # the same bytes twice in one capture (e.g. two identical thumbnails)
            sources = tuple(dict.fromkeys(sha_of[p] for p in item.derived_from if sha_of[p] != blob.sha256))
            entries.append(
                model.RecordArtifact(
                    artifact=described[blob.sha256],
                    role=item.role
                    if (sources or item.role is not model.ArtifactRole.DERIVED)
                    else model.ArtifactRole.ORIGINAL,
                    derived_from=sources,
                    derivation=item.derivation if sources else None,
                )
            )
        main = entries[0].artifact.sha256
        ended_at = max(self.clock(), started_at)
        key = item_key(fetched.extractor, fetched.platform_id)
        acquisition = model.Acquisition(
            id=acquisition_id,
            method=model.AcquisitionMethod.CAPTURED_FROM_URL,
            started_at=started_at,
            ended_at=ended_at,
            operator=self.operator,
            tools=(*tool_agents(), *fetched.tools),
            artifact_sha256=main,
            other_artifacts=tuple(e.artifact.sha256 for e in entries[1:]),
            requested_url=url,
            final_url=fetched.final_url,
            http_status=fetched.http_status,
            platform=fetched.platform,
            extractor=fetched.extractor,
            platform_id=fetched.platform_id,
            platform_info=fetched.platform_info,
            responses=fetched.responses,
            withheld=fetched.withheld,
            note=_parts_not_kept(fetched.warnings),
            settings=options.describe(),
        )
        with self._ctx.write() as session:
            # Another writer may have catalogued some of these bytes meanwhile: its description
            # wins, so that every event about one artifact carries the same document.
            for index, entry in enumerate(entries):
                catalogued = self.db.artifact(session, entry.artifact.sha256)
                if catalogued is not None and catalogued != entry.artifact:
                    entries[index] = attrs.evolve(entry, artifact=catalogued)
            new_record = False
            earlier = None
            if record_id is None:
                holders = self.db.records_holding(session, main)
                earlier = self.db.earlier_capture(session, platform_key=key, requested_url=url)
                if holders:
                    record_id = holders[0]
                elif earlier is not None:
                    record_id = earlier[0]
                else:
                    record_id, new_record = model.new_id(), True
            elif not self.db.record_exists(session, record_id):
                raise NotFoundError(f"no record with id {record_id}", where="record")
            else:
                earlier = self.db.earlier_capture(session, platform_key=key, requested_url=url, record_id=record_id)
            held = set() if new_record else set(self.db.artifacts_of(session, record_id))
            version_of = None
            if earlier is not None and earlier[0] == record_id and earlier[1] != main and main not in held:
                version_of = earlier[1]
                entries[0] = attrs.evolve(entries[0], version_of=version_of)
            title = fetched.platform_info.title or url
            record, note_part = common.new_parts(self._ctx, record_id, new_record, title, tags, note, noted, ended_at)
            event = self.db.append_event(
                session,
                at=ended_at,
                actor=self.operator,
                action=Action.MEDIA_CAPTURED,
                subject=record_id,
                details=captured_details(
                    record=record, entries=entries, acquisition=acquisition, tags=tags, note=note_part
                ),
            )
            if record is not None:
                self.db.add_record(session, record)
            else:
                self.db.add_tags(session, record_id, tags)
            for entry in entries:
                if self.db.artifact(session, entry.artifact.sha256) is None:
                    common.add_artifact(self._ctx, session, entry.artifact, at=ended_at)
                self.db.attach_artifact(session, record_id, entry)
            self.db.add_acquisition(session, record_id, acquisition, event.seq)
            if note_part is not None:
                self.db.add_part(session, record_id, "note", note_part, event.seq)
        if noted is not None and note is not None:
            noted.add(record_id)
        main_blob = stored[0][1]
        return CaptureResult(
            url=url,
            ok=True,
            acquisition_id=acquisition_id,
            record_id=record_id,
            sha256=main,
            size=main_blob.size,
            artifacts=len(entries),
            new_record=new_record,
            new_bytes=main_blob.created,
            new_on_record=main not in held,
            version_of=version_of,
            warnings=fetched.warnings,
            not_kept=acquisition.note,
        )

    def _log_failed_capture(
        self,
        url: str,
        acquisition_id: str,
        started_at: dt.datetime,
        error: str,
        record_id: str | None,
        *,
        http_status: int | None = None,
        final_url: str | None = None,
        settings: tuple[str, ...] = (),
    ) -> CaptureResult:
        """Log a failed attempt (due diligence: what was tried, when, and why it failed)."""
        from evidence_catalog.capture.ytdlp import yt_dlp_agent

        acquisition = model.Acquisition(
            id=acquisition_id,
            method=model.AcquisitionMethod.CAPTURED_FROM_URL,
            started_at=started_at,
            ended_at=max(self.clock(), started_at),
            operator=self.operator,
            tools=(*tool_agents(), yt_dlp_agent()),
            outcome=model.Outcome.FAILED,
            requested_url=url,
            final_url=final_url,
            http_status=http_status,
            error=error,
            settings=settings,
        )
        try:
            with self._ctx.write() as session:
                if record_id is not None and not self.db.record_exists(session, record_id):
                    record_id = None
                event = self.db.append_event(
                    session,
                    at=acquisition.ended_at,
                    actor=self.operator,
                    action=Action.CAPTURE_FAILED,
                    subject=record_id or "catalog",
                    details=failed_details(acquisition),
                )
                if record_id is not None:
                    self.db.add_acquisition(session, record_id, acquisition, event.seq)
        except StorageError as exc:
            raise StorageError(
                f"capture of {url} failed ({error}) and the failure could not be logged ({exc.message})"
            ) from exc
        return CaptureResult(url=url, ok=False, acquisition_id=acquisition_id, record_id=record_id, error=error)

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
        log_key.check_signing_key(self._ctx)  # before anything is stored
        if format is not None and format not in INGEST_FORMATS:
            raise InputError(f"unknown format {format!r}; use one of {', '.join(INGEST_FORMATS)}", where="format")
        tags = checked_tags(tags)
        if note is not None and not utf8(note, "note").strip():
            raise InputError("note must not be blank", where="note")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 3600:
            raise InputError(f"timeout must be a number of seconds from 0 to 3600, not {timeout!r}", where="timeout")
        if self.db.read_only:
            raise StorageError("the catalog is read-only; nothing can be ingested into it")
        started_at = self.clock()
        if isinstance(source, str) and _URL_SCHEME.match(source.strip()):  # check_url refuses ftp:// …
            url = check_url(source)
            with common.work_area(self._ctx, f"ingest-{uuid.uuid4().hex}") as work:
                fetched = fetch_document(url, work / "document", timeout=float(timeout))
                result = self._ingest_file(
                    work / "document", url, format, tags, note, keep_going, started_at, fetched=fetched
                )
        else:
            path = Path(os.path.abspath(source))
            if path.is_dir() and format in (None, "telegram"):  # a Telegram Desktop export folder
                path = path / "result.json"
            [file] = self.collect_files([path])
            result = self._ingest_file(file, display_path(file), format, tags, note, keep_going, started_at)
            result = attrs.evolve(result, path=file)  # the file itself; messages name it printably
        if capture_media:
            result = self._capture_media(result, capture_options, capture_progress)
        return result

    def _capture_media(
        self, result: IngestResult, options: CaptureOptions | None, progress: CaptureProgress | None
    ) -> IngestResult:
        """Capture the media the new reports of an ingest point at, each onto its report's
        record; a media URL that is not an http(s) URL is not fetched, and is warned about."""
        captures, warnings = [], list(result.warnings)
        for record_id, url in result.media:
            try:
                checked = check_url(url)
            except InputError as exc:
                warnings.append((0, f"media of record {record_id} not captured: {exc.message}"))
                continue
            # Captured onto that record by an earlier run: resumed, not fetched again.
            done = self._captured_before(checked, record_id)
            captures.append(done or self.capture_url(checked, record_id=record_id, options=options, progress=progress))
        return attrs.evolve(result, captures=tuple(captures), warnings=tuple(warnings))

    def _ingest_file(
        self,
        file: Path,
        where: str,
        format: IngestFormat | None,
        tags: tuple[str, ...],
        note: str | None,
        keep_going: bool,
        started_at: dt.datetime,
        *,
        fetched: FetchedDocument | None = None,
    ) -> IngestResult:
        """Ingest one input (see :meth:`ingest`); bytes it stored are removed again when its
        records are not written, whatever stopped it: a refused ingest leaves no orphan."""
        created: list[str] = []
        try:
            return self._ingest_stored(file, where, format, tags, note, keep_going, started_at, fetched, created)
        except BaseException:
            common.remove_unclaimed(self._ctx, created)
            raise

    def _ingest_stored(
        self,
        file: Path,
        where: str,
        format: IngestFormat | None,
        tags: tuple[str, ...],
        note: str | None,
        keep_going: bool,
        started_at: dt.datetime,
        fetched: FetchedDocument | None,
        created: list[str],
    ) -> IngestResult:
        """:meth:`_ingest_file`, naming in *created* each blob it stored that was not there."""
        with open(file, "rb") as stream:
            raw = stream.read()
        if format is None:
            format = (
                "rss"
                if looks_like_feed(raw)
                else "twarc"
                if looks_like_twarc(raw)
                else "telegram"
                if looks_like_telegram(raw)
                else "digest"
            )
        if format == "telegram" and fetched is not None:
            # Its media are files next to it: from a URL they would be looked for in the
            # catalog's own work area.
            raise InputError(
                "a Telegram Desktop export is a folder with its media; download it and ingest the folder",
                where=where,
            )
        skipped: list[tuple[int, str]] | None = [] if keep_going else None
        prepared, warnings = _read_reports(raw, format, where, file.parent, skipped)
        with self.db.read() as session:  # media of reports already here is not stored again
            new_media = {
                path
                for report, _, _, media in prepared
                if report.identity and self.db.record_with_report(session, report.identity) is None
                for path in media
            }
        stored_blobs: dict[Path, StoredBlob] = {}
        for path in sorted(new_media):
            stored_blobs[path] = self._store_file_copy(path)
            if stored_blobs[path].created:
                created.append(stored_blobs[path].sha256)
        stored_media = {path: common.describe(self._ctx, stored) for path, stored in stored_blobs.items()}
        media_created = sum(stored.created for stored in {b.sha256: b for b in stored_blobs.values()}.values())
        with open(file, "rb", buffering=0) as document:
            blob = self.blobs.put_stream(SourceFile(document, where))
        if blob.created:
            created.append(blob.sha256)
        if blob.size != len(raw):
            raise InputError("changed while it was being read; nothing was ingested", where=where)
        artifact = common.describe(self._ctx, blob)
        ended_at = max(self.clock(), started_at)
        path_text, path_b64 = (None, None) if fetched is not None else recorded_path(file)
        fetched_fields: dict[str, Any] = (
            {}
            if fetched is None
            else {
                "requested_url": fetched.requested_url,
                "final_url": fetched.final_url,
                "http_status": fetched.status,
                "responses": fetched.responses,
                "withheld": (WITHHELD_SET_COOKIE,) if fetched.cookies_withheld else (),
            }
        )
        media_to_capture: list[tuple[str, str]] = []
        present = 0
        with self._ctx.write() as session:
            catalogued = self.db.artifact(session, blob.sha256)
            if catalogued is not None:
                artifact = catalogued
            else:
                common.add_artifact(self._ctx, session, artifact, at=ended_at)
            entry = model.RecordArtifact(artifact=artifact, role=model.ArtifactRole.SOURCE_DOCUMENT)
            seen: dict[str, str] = {}  # identity -> record, for repeats within the input
            # Built a chunk at a time, then linked into the log and inserted with one statement
            # per table: memory stays bounded, and the input is still one transaction.
            drafts: list[EventDraft] = []
            added = 0

            def flush() -> None:
                nonlocal added
                events = self.db.append_events(session, drafts)
                rows: dict[str, list[dict[str, Any]]] = {
                    name: [] for name in ("record", "record_tag", "record_artifact", "acquisition", "record_part")
                }
                new_artifacts = {e.artifact.sha256: e.artifact for *_, entries in parts for e in entries[1:]}
                for sha256, media_artifact in new_artifacts.items():
                    if self.db.artifact(session, sha256) is None:
                        common.add_artifact(self._ctx, session, media_artifact, at=ended_at)
                for (record, acquisition, report, note_part, entries), event in zip(parts, events, strict=True):
                    rows["record"].append(record_row(record))
                    rows["record_tag"] += [{"record_id": record.id, "tag": tag} for tag in record.tags]
                    rows["record_artifact"] += [record_artifact_row(record.id, e, n) for n, e in enumerate(entries)]
                    rows["acquisition"].append(acquisition_row(record.id, acquisition, event.seq))
                    rows["record_part"].append(part_row(record.id, "report", report, event.seq, 0))
                    if note_part is not None:
                        rows["record_part"].append(part_row(record.id, "note", note_part, event.seq, 0))
                self.db.insert_rows(session, rows)
                index_rows(session, [(report.id, report, ended_at) for _, _, report, _, _ in parts])
                added += len(parts)
                drafts.clear()
                parts.clear()

            parts: list[
                tuple[
                    model.EvidenceRecord, model.Acquisition, model.Report, model.Note | None, list[model.RecordArtifact]
                ]
            ] = []
            for prepared_report, title, item_where, media in prepared:
                identity = prepared_report.identity
                assert identity is not None  # every reader sets it
                held = seen.get(identity) or self.db.record_with_report(session, identity)
                if held is not None or not all(path in stored_media for path in media):
                    present += 1
                    if held is not None:  # its media may not have been captured yet
                        media_to_capture += [(held, link.url) for link in prepared_report.media]
                    continue
                record_id = model.new_id()
                seen[identity] = record_id
                report = attrs.evolve(prepared_report, document_sha256=blob.sha256)
                record, note_part = common.new_parts(
                    self._ctx, record_id, True, _title(title), tags, note, None, ended_at
                )
                assert record is not None  # a new record was asked for
                acquisition = model.Acquisition(
                    id=model.new_id(),
                    method=model.AcquisitionMethod.INGESTED_FROM_FEED,
                    started_at=started_at,
                    ended_at=ended_at,
                    operator=self.operator,
                    tools=tool_agents(),
                    artifact_sha256=blob.sha256,
                    other_artifacts=tuple(dict.fromkeys(stored_media[p].sha256 for p in media)),
                    original_path=path_text,
                    original_path_b64=path_b64,
                    note=item_where,
                    **fetched_fields,
                )
                entries = [entry]
                for path in media:
                    media_artifact = stored_media[path]
                    if all(e.artifact.sha256 != media_artifact.sha256 for e in entries):
                        entries.append(model.RecordArtifact(artifact=media_artifact))
                drafts.append(
                    EventDraft(
                        at=ended_at,
                        actor=self.operator,
                        action=Action.REPORT_INGESTED,
                        subject=record_id,
                        details={
                            **captured_details(
                                record=record, entries=entries, acquisition=acquisition, tags=tags, note=note_part
                            ),
                            "report": unstructure(report),
                        },
                    )
                )
                parts.append((record, acquisition, report, note_part, entries))
                media_to_capture += [(record_id, link.url) for link in report.media]
                if len(parts) >= INGEST_CHUNK:
                    flush()
            flush()
            drafts.append(
                EventDraft(
                    at=ended_at,
                    actor=self.operator,
                    action=Action.DIGEST_INGESTED,
                    subject="catalog",
                    details={
                        "format": format,
                        "path": path_text,
                        "url": None if fetched is None else fetched.requested_url,
                        "sha256": blob.sha256,
                        "items": len(prepared),
                        "reports_added": added,
                        "reports_present": present,
                        "warnings": len(warnings),
                        "skipped": [{"line": line, "reason": reason} for line, reason in skipped or ()],
                    },
                )
            )
            self.db.append_events(session, drafts)
        return IngestResult(
            path=where,
            format=format,
            sha256=blob.sha256,
            items=len(prepared),
            reports_added=added,
            reports_present=present,
            records_added=added,
            new_bytes=blob.created,
            artifacts_added=blob.created + media_created,
            artifacts_present=(not blob.created) + len({b.sha256 for b in stored_blobs.values()}) - media_created,
            warnings=warnings,
            skipped=tuple(skipped or ()),
            media=tuple(dict.fromkeys(media_to_capture)),
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
        from evidence_catalog.store.search import term_key

        check_limit(limit)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InputError(f"offset must be a whole number of at least 0, not {offset!r}", where="offset")
        terms = []
        for kind, value in (("mention", mention), ("hashtag", hashtag), ("feed", feed), ("author", author)):
            if value is None:
                continue
            key = term_key(kind, utf8(value, kind))
            if not key:
                raise InputError(f"{kind} is blank", where=kind)
            terms.append((kind, key))
        with self.db.read() as session:
            found = self.db.search_reports(
                session,
                text=utf8(text, "text"),
                terms=terms,
                since=parse_since(since),
                limit=limit if record_filter is None else None,
                offset=offset if record_filter is None else 0,
            )
            if record_filter is not None:  # judged on the record's current state, then cut
                verdicts: dict[str, bool] = {}
                for record_id, _ in found:
                    if record_id not in verdicts:
                        verdicts[record_id] = record_filter.matches(self.db.record(session, record_id))
                found = [hit for hit in found if verdicts[hit[0]]][offset:]
                found = found if limit is None else found[:limit]
        return [SearchHit(record_id=record_id, report=report) for record_id, report in found]

    def link(self, report_id: str, record_id: str, *, note: str | None = None) -> LinkResult:
        """Move a report onto another record -- e.g. a post announcing a film onto the record of
        the captured film -- with its source document, so that one record holds both.  The
        report is not changed; the move is a ``report.linked`` custody event, with *note* (why)
        kept on the record.  A report already on that record is left as it is (no event)."""
        if note is not None and not utf8(note, "note").strip():
            raise InputError("note must not be blank", where="note")
        if self.db.read_only:
            raise StorageError("the catalog is read-only; nothing can be linked in it")
        at = self.clock()
        with self._ctx.write() as session:
            found = self.db.report(session, report_id)
            if found is None:
                raise NotFoundError(f"no report with id {report_id}")
            from_record, report = found
            if not self.db.record_exists(session, record_id):
                raise NotFoundError(f"no record with id {record_id}")
            if from_record == record_id:
                return LinkResult(report_id=report_id, from_record=from_record, record_id=record_id, moved=False)
            holder = self.db.record(session, from_record)
            if report_id in part_ids_named(holder.flags):  # moved, it would travel unredacted
                raise InputError(
                    f"a flag on record {from_record} names fields of report {report_id}; "
                    "a report with withheld fields stays with its flag",
                    where="report",
                )
            citing = [c.id for c in holder.claims if c.source_report_id == report_id]
            if citing:  # the claim would name a source its record no longer holds
                raise InputError(
                    f"claim {citing[0]} on record {from_record} names report {report_id} as its source; "
                    "a report a claim rests on stays with that claim",
                    where="report",
                )
            document = None
            sha256 = report.document_sha256
            if sha256 is not None and sha256 not in self.db.artifacts_of(session, record_id):
                artifact = self.db.artifact(session, sha256)
                if artifact is None:
                    raise ValidationError(f"report {report_id} names document {sha256}, which is not catalogued")
                document = model.RecordArtifact(artifact=artifact, role=model.ArtifactRole.SOURCE_DOCUMENT)
            note_part = (
                None if note is None else model.Note(id=model.new_id(), text=note, author=self.operator, written_at=at)
            )
            event = self.db.append_event(
                session,
                at=at,
                actor=self.operator,
                action=Action.REPORT_LINKED,
                subject=record_id,
                details=linked_details(report_id=report_id, from_record=from_record, document=document, note=note_part),
            )
            if document is not None:
                self.db.attach_artifact(session, record_id, document)
            self.db.move_report(session, report_id, record_id, event.seq)
            if note_part is not None:
                self.db.add_part(session, record_id, "note", note_part, event.seq)
        return LinkResult(report_id=report_id, from_record=from_record, record_id=record_id, moved=True)

    def link_suggestions(self, record_id: str | None = None) -> list[LinkSuggestion]:
        """Reports that look like they are about media captured on another record (same URL, or
        a link card with the captured item's title); with *record_id*, those that involve that
        record.  See :mod:`evidence_catalog.ingest.links`; nothing is changed."""
        from evidence_catalog.ingest.links import suggest

        with self.db.read() as session:
            if record_id is not None and not self.db.record_exists(session, record_id):
                raise NotFoundError(f"no record with id {record_id}")
            found = suggest(self.db.reports(session), list(self.db.captures(session)))
        if record_id is not None:
            found = [s for s in found if record_id in (s.record_id, s.report_record)]
        return found

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
        texts = {
            "summary": summary,
            "alleged perpetrator": alleged_perpetrator,
            "source description": source_description,
        }
        for name, text in texts.items():
            if text is not None and not utf8(text, name).strip():
                raise InputError(f"{name} must not be blank", where=name.replace(" ", "_"))
        if source_report_id is None and source_description is None:
            raise InputError("a claim must name its source: a report on the record or who says so", where="source")
        if event_time is not None and not isinstance(event_time, model.EventTime):
            raise InputError("event_time must be an EventTime", where="event_time")
        if place is not None and not isinstance(place, model.Place):
            raise InputError("place must be a Place", where="place")
        if place is not None:
            for name, text in (("place name", place.name), ("admin area", place.admin_area)):
                if text is not None and not utf8(text, name).strip():
                    raise InputError(f"{name} must not be blank", where="place")
            if place.uncertainty_m is not None and place.position is None:
                raise InputError("an uncertainty radius needs a position (--lat and --lon)", where="place")
            if place.name is None and place.position is None and place.admin_area is None:
                place = None  # a place with nothing in it says nothing
        if (
            summary is None
            and category is None
            and event_time is None
            and place is None
            and alleged_perpetrator is None
        ):
            raise InputError(
                "a claim must say something: a summary, category, time, place or perpetrator", where="claim"
            )
        if category is not None and category not in {c.code for c in self.categories()}:
            raise InputError(
                f"unknown category {category!r}; see `evidence-catalog categories`, or define it first",
                where="category",
            )

        def make(session: Any, at: dt.datetime) -> model.Claim:
            if source_report_id is not None:
                found = self.db.report(session, source_report_id)
                if found is None or found[0] != record_id:
                    raise InputError(f"report {source_report_id} is not on record {record_id}", where="source_report")
            return model.Claim(
                id=model.new_id(),
                stated_by=self.operator,
                stated_at=at,
                summary=summary,
                category=category,
                event_time=event_time,
                place=place,
                alleged_perpetrator=alleged_perpetrator,
                source_report_id=source_report_id,
                source_description=source_description,
            )

        return self._annotate(record_id, Action.CLAIM_ADDED, make)

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
        checked_status = choice(model.VerificationStatus, status, "status")
        checked_methods = tuple(choice(model.VerificationMethod, m, "method") for m in dict.fromkeys(methods))
        checked_confidence = None if confidence is None else choice(model.Confidence, confidence, "confidence")
        if note is not None and not utf8(note, "note").strip():
            raise InputError("note must not be blank", where="note")

        def make(session: Any, at: dt.datetime) -> model.Assessment:
            earlier = self.db.record(session, record_id).assessments
            return model.Assessment(
                id=model.new_id(),
                status=checked_status,
                assessor=self.operator,
                assessed_at=at,
                methods=checked_methods,
                confidence=checked_confidence,
                note=note,
                supersedes=earlier[-1].id if earlier else None,
            )

        return self._annotate(record_id, Action.ASSESSMENT_ADDED, make)

    def relate(self, record_id: str, kind: str, target_id: str, *, note: str | None = None) -> model.Relation:
        """Record how a record relates to another (duplicate of, derived from, same incident as,
        responds to, contradicts), by whom and why."""
        checked = choice(model.RelationKind, kind, "relation")
        if note is not None and not utf8(note, "note").strip():
            raise InputError("note must not be blank", where="note")
        if target_id == record_id:
            raise InputError(f"record {record_id} cannot relate to itself", where="relation")

        def make(session: Any, at: dt.datetime) -> model.Relation:
            if not self.db.record_exists(session, target_id):
                raise NotFoundError(f"no record with id {target_id}", where="relation")
            return model.Relation(kind=checked, target_id=target_id, linked_by=self.operator, linked_at=at, note=note)

        return self._annotate(record_id, Action.RELATION_ADDED, make)

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
        checked = choice(model.SensitivityKind, kind, "flag")
        if not utf8(reason, "reason").strip():
            raise InputError("a flag needs a reason", where="reason")
        if isinstance(artifacts, str) or isinstance(fields, str):
            raise InputError("give artifacts and fields as lists", where="flag")
        for path in fields:
            utf8(path, "field")

        def make(session: Any, at: dt.datetime) -> model.SensitivityFlag:
            made = model.SensitivityFlag(
                kind=checked, reason=reason, set_by=self.operator, set_at=at, artifacts=artifacts, fields=fields
            )
            try:
                check_flag(self.db.record(session, record_id), made)
            except FieldPathError as exc:
                raise InputError(str(exc), where="field") from exc
            return made

        return self._annotate(record_id, Action.FLAG_ADDED, make)

    def add_note(self, record_id: str, text: str) -> model.Note:
        """Keep a note on a record, attributed to the operator and timed."""
        if not utf8(text, "note").strip():
            raise InputError("note must not be blank", where="note")
        return self._annotate(
            record_id,
            Action.NOTE_ADDED,
            lambda _session, at: model.Note(id=model.new_id(), text=text, author=self.operator, written_at=at),
        )

    def tag(self, record_id: str, tags: Sequence[str]) -> tuple[str, ...]:
        """Add tags to a record; returns those it did not have (one ``tags.added`` event for
        them, none when every tag was there already)."""
        if isinstance(tags, str):
            tags = [tags]
        checked = checked_tags(tags)
        if not checked:
            raise InputError("no tag given", where="tag")
        if self.db.read_only:
            raise StorageError("the catalog is read-only; nothing can be changed in it")
        with self._ctx.write() as session:
            if not self.db.record_exists(session, record_id):
                raise NotFoundError(f"no record with id {record_id}")
            new = tuple(self.db.add_tags(session, record_id, checked))  # those it did not have
            if new:
                self.db.append_event(
                    session,
                    at=self.clock(),
                    actor=self.operator,
                    action=Action.TAGS_ADDED,
                    subject=record_id,
                    details={"tags": list(new)},
                )
        return new

    def define_category(self, code: str, label: str, reference: str | None = None) -> Category:
        """Add a category of alleged violation to this catalog's vocabulary (logged as
        ``category.defined``); a code already defined, built in or not, cannot be changed."""
        try:
            category = Category(
                code=code,
                label=utf8(label, "label"),
                reference=None if reference is None else utf8(reference, "reference"),
            )
        except ValueError as exc:
            raise InputError(str(exc), where="category") from exc
        if self.db.read_only:
            raise StorageError("the catalog is read-only; nothing can be changed in it")
        with self._ctx.write() as session:
            if code in {c.code for c in self._categories(session)}:
                raise InputError(f"category {code!r} is defined already; choose another code", where="category")
            self._ctx.log_event(Action.CATEGORY_DEFINED, {"category": attrs.asdict(category)}, session)
        return category

    def categories(self) -> list[Category]:
        """The vocabulary of alleged violations: the built-in ones, then this catalog's own."""
        with self.db.read() as session:
            return self._categories(session)

    def _categories(self, session: Any) -> list[Category]:
        own = [
            Category(**event.details["category"])
            for event in self.db.events_by_action(session, Action.CATEGORY_DEFINED)
        ]
        return [*BUILTIN_CATEGORIES, *own]

    def _annotate(self, record_id: str, action: str, make: Callable[[Any, dt.datetime], _Part]) -> _Part:
        """Put one judgement on a record: the part *make* builds, its custody event, in one
        transaction; nothing is written when the record is missing or *make* refuses."""
        member, _, _ = ANNOTATIONS[action]
        if self.db.read_only:
            raise StorageError("the catalog is read-only; nothing can be changed in it")
        with self._ctx.write() as session:
            if not self.db.record_exists(session, record_id):
                raise NotFoundError(f"no record with id {record_id}")
            at = self.clock()
            try:
                part = make(session, at)
            except ValueError as exc:  # the model refuses it (an end before its start ...)
                raise InputError(str(exc), where=member) from exc
            event = self.db.append_event(
                session,
                at=at,
                actor=self.operator,
                action=action,
                subject=record_id,
                details=annotation_details(member, part),
            )
            self.db.add_part(session, record_id, member, part, event.seq)
        return part

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
        checked_status = None if status is None else choice(model.VerificationStatus, status, "status")
        tags = [tags] if isinstance(tags, str) else tags  # one tag as text, as tag() takes it
        flags = [flags] if isinstance(flags, str) else flags
        checked_flags = [choice(model.SensitivityKind, f, "flag") for f in flags]
        if category is not None and category not in {c.code for c in self.categories()}:
            raise InputError(f"unknown category {category!r}; see `evidence-catalog categories`", where="category")
        start = parse_since(since)
        end = None if until is None else parse_time(until, where="until", end_of_day=True)
        try:
            return RecordFilter(
                status=checked_status,
                category=category,
                tags=checked_tags(tags),
                flags=checked_flags,
                bbox=bbox,
                since=start,
                until=end,
            )
        except ValueError as exc:
            raise InputError(str(exc), where="filter") from exc

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
        given = any(v for v in (status, category, tags, flags, bbox, since, until))
        if criteria is not None and given:
            raise InputError("give a RecordFilter or criteria, not both", where="filter")
        wanted = criteria or self.record_filter(
            status=status, category=category, tags=tags, flags=flags, bbox=bbox, since=since, until=until
        )
        check_limit(limit)
        found: list[model.EvidenceRecord] = []
        for record in self.records(after=after):
            if wanted.matches(record):
                found.append(record)
                if limit is not None and len(found) >= limit:
                    break
        return found

    def record(self, record_id: str) -> model.EvidenceRecord:
        """The whole record with this id; :class:`NotFoundError` if there is none."""
        if not model.is_record_id(record_id):
            raise InputError(f"{record_id!r} is not a record id (a UUIDv7)", where="record")
        with self.db.read() as session:
            return self.db.record(session, record_id)

    def has_record(self, record_id: str) -> bool:
        """Tell whether a record with this id exists (a malformed id is an :class:`InputError`)."""
        if not model.is_record_id(record_id):
            raise InputError(f"{record_id!r} is not a record id (a UUIDv7)", where="record")
        return self.db.record_exists_now(record_id)

    def record_ids(self, *, after: str | None = None, limit: int | None = None) -> list[str]:
        """Record ids, oldest first: all, or a page of at most *limit* after the id *after*."""
        check_limit(limit)
        if after is not None and not model.is_record_id(after):
            raise InputError(f"{after!r} is not a record id (a UUIDv7)", where="after")
        with self.db.read() as session:
            return self.db.record_ids(session, after=after, limit=limit)

    def records_with_artifact(self, sha256: str) -> list[str]:
        """The ids of the records that hold the artifact with this SHA-256 (an indexed lookup)."""
        if not re.fullmatch(r"[0-9a-f]{64}", sha256 or ""):
            raise InputError(f"{sha256!r} is not a SHA-256 (64 lower-case hex digits)", where="sha256")
        return self.db.records_holding_now(sha256)

    #: How many records :meth:`records` reads per query.
    PAGE_SIZE: ClassVar[int] = 500

    def records(
        self, record_ids: Sequence[str] | None = None, *, after: str | None = None
    ) -> Iterator[model.EvidenceRecord]:
        """Records oldest first: those named (each must exist), or all of them (after the id
        *after*, if given), read a page at a time -- a million records are never in memory
        at once."""
        if record_ids is not None:
            for record_id in record_ids:
                yield self.record(record_id)
            return
        while True:
            page = self.record_ids(after=after, limit=self.PAGE_SIZE)
            if not page:
                return
            yield from self.read_page(page)
            after = page[-1]

    def read_page(self, record_ids: Sequence[str]) -> list[model.EvidenceRecord]:
        """The records named, read together (a few queries for the lot); a
        :class:`ValidationError` names the first that cannot be read."""
        with self.db.read() as session:
            return list(self.db.records(session, record_ids))

    def history(self, subject: str | None = None) -> list[model.CustodyEvent]:
        """The custody log in order, or only the events about *subject* (a record id)."""
        with self.db.read() as session:
            return list(self.db.events(session, subject))

    def artifact_path(self, sha256: str) -> Path:
        """Where the stored bytes of an artifact are (read-only); only for blobs on this
        machine's file system -- :meth:`open_artifact` reads them wherever they are."""
        if not isinstance(self.blobs, BlobStore):
            raise InputError("blobs are in object storage; read them with open_artifact()", where=self.blobs.location)
        return self.blobs.path_for(sha256)

    def open_artifact(self, sha256: str) -> BinaryIO:
        """Open the stored bytes of an artifact for reading, wherever the blob store is."""
        return self.blobs.open(sha256)

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
        given = list(checkpoints)
        problems: list[Finding] = []
        pinned: list[tuple[str, str, str, bytes]] = []
        # One snapshot: the key chain the remembered checkpoint and the key files are held
        # against is the one the log is checked with.
        with self.db.read() as session:
            chain = log_key.log_key_chain(self._ctx, session)
            epochs = chain[0]
            if remember and epochs:
                try:
                    held = remembered_for(self.path, epochs[0].name)
                except CheckpointError as exc:
                    problems.append(CheckpointInvalid(source="the remembered checkpoint", reason=str(exc)))
                    held = None
                if held is not None:
                    held_name, held_public, held_note, where = held
                    if all((held_name, held_public) != (e.name, e.public) for e in epochs):
                        problems.append(
                            CheckpointInvalid(
                                source="the catalog's log key",
                                reason=(
                                    f"the custody log no longer names the key ({held_name}) an earlier verification "
                                    "checked this log with; the log's key was replaced"
                                ),
                            )
                        )
                    source = f"the checkpoint remembered from an earlier verification ({where})"
                    pinned.append((source, held_note, held_name, held_public))
            problems.extend(self._key_file_findings(epochs[-1] if epochs else None))
            findings, events_checked, record_ids, unsigned = self._verify_log_and_records(session, given, pinned, chain)
            # An unsigned tail is what an encrypted key leaves between signings: after a checkpoint
            # it signed over its own key event.  A key that is not encrypted signs every change.
            tail_allowed = bool(epochs) and epochs[-1].encrypted and events_checked - unsigned >= epochs[-1].seq
            if unsigned and not (allow_unsigned and tail_allowed):
                findings.append(EventsUnsigned(first_seq=events_checked - unsigned + 1, count=unsigned))
            findings[:0] = problems
            artifacts: list[tuple[str, int, model.Digests]] = []
            for sha256, size, digests in self.db.artifact_digests(session):
                if isinstance(digests, model.Digests):
                    artifacts.append((sha256, size, digests))
                else:
                    findings.append(EntryUnreadable(subject=f"artifact {sha256}", reason=digests))
        if workers is None:  # hashing is bound by the CPU locally; by the network on an object store
            workers = (os.cpu_count() or 1) * (1 if isinstance(self.blobs, BlobStore) else 4)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for blob_findings in pool.map(lambda a: self.blobs.verify(a[0], a[2], a[1], progress=progress), artifacts):
                findings.extend(blob_findings)
        report = VerificationReport(
            findings=tuple(findings),
            records_checked=len(record_ids),
            artifacts_checked=len(artifacts),
            bytes_checked=sum(a[1] for a in artifacts),
            events_checked=events_checked,
            unsigned_events=unsigned,
        )
        if remember and report.ok and epochs:
            with self.db.read() as session:
                latest = self.db.latest_checkpoint(session, signed=True)
            if latest is not None:
                current = epoch_at(epochs, latest.tree_size)
                if current is not None:
                    with contextlib.suppress(OSError):  # remembering is a help, not part of the result
                        remember_checkpoint(current.name, current.public, latest.note, folder=self.path)
        if not record_event:
            return report
        try:
            self._ctx.log_event(
                Action.CATALOG_VERIFIED,
                {
                    "ok": report.ok,
                    "findings": len(report.findings),
                    "artifacts_checked": report.artifacts_checked,
                    "events_checked": report.events_checked,
                },
            )
        except StorageError:
            return attrs.evolve(report, unlogged_reason="the catalog is not writable")
        except IntegrityError as exc:  # a log the key does not cover is not signed: the findings say why
            return attrs.evolve(report, unlogged_reason=f"the catalog does not sign it ({exc.message})")
        except (InputError, CatalogError) as exc:  # nothing is changed; a finding says why, if it is the catalog's
            return attrs.evolve(report, unlogged_reason=f"the log key cannot sign it ({exc.message})")
        return attrs.evolve(report, logged=True)

    def _key_file_findings(self, current: KeyEpoch | None) -> list[Finding]:
        """The files of ``keys/`` against the key the custody log names: each that is there must
        be that key (a copy for examiners may hold none, or only the public ones)."""
        if current is None:
            return []
        findings: list[Finding] = []
        folder = self.log_key.directory
        names = f"the key the custody log names ({current.name}, key id {current.key_id})"
        if (folder / VKEY_FILE).exists():
            try:
                found = self.log_key.public()
            except CatalogError as exc:
                findings.append(KeyFileMismatch(path=f"{KEYS_DIR}/{VKEY_FILE}", reason=exc.message))
            else:
                if found != (current.name, current.public):
                    findings.append(KeyFileMismatch(path=f"{KEYS_DIR}/{VKEY_FILE}", reason=f"it is not {names}"))
        if (folder / PUBLIC_FILE).exists():
            try:
                pem = serialization.load_pem_public_key((folder / PUBLIC_FILE).read_bytes())
                same = isinstance(pem, Ed25519PublicKey) and public_bytes(pem) == current.public
            except (OSError, ValueError):
                same = False
            if not same:
                findings.append(KeyFileMismatch(path=f"{KEYS_DIR}/{PUBLIC_FILE}", reason=f"it is not {names}"))
        if (folder / KEY_FILE).exists():
            try:
                log_key.signing_key(self._ctx)
            except KeyDamagedError as exc:
                findings.append(KeyFileMismatch(path=f"{KEYS_DIR}/{KEY_FILE}", reason=exc.message))
            except InputError:
                pass  # a passphrase that does not open it: the caller's mistake, not the catalog's
        return findings

    def _verify_log_and_records(
        self,
        session: Any,
        checkpoints: Sequence[tuple[str, str]],
        pinned: Sequence[tuple[str, str, str, bytes]],
        chain: tuple[list[KeyEpoch], list[tuple[int, str]]],
    ) -> tuple[list[Finding], int, list[str], int]:
        # Two passes over the log, neither holding it: memory is one 32-byte leaf per event
        # (and the records being rebuilt), not every event.
        leaves: list[bytes] = []

        def hashed(documents: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
            for document in documents:
                try:
                    leaves.append(event_leaf(document))
                except (TypeError, ValueError):  # a damaged event: the chain check names it
                    leaves.append(bytes(32))
                yield document

        findings: list[Finding] = verify_chain(hashed(self.db.event_documents(session)))
        tree_findings, covered = self._verify_tree(session, leaves, checkpoints, pinned, chain)
        findings.extend(tree_findings)
        unreplayable: list[Finding] = []

        def structured() -> Iterator[model.CustodyEvent]:
            for document in self.db.event_documents(session):
                try:
                    yield structure(document, model.CustodyEvent)
                except EvidenceError as exc:
                    unreplayable.append(EventUnreplayable(seq=document["seq"], reason=str(exc)))

        replayed = replay(structured())
        findings.extend(unreplayable)
        findings.extend(EventUnreplayable(seq=seq, reason=reason) for seq, reason in replayed.problems)
        record_ids = self.db.record_ids(session)
        for record_id in record_ids:
            expected = replayed.records.get(record_id)
            if expected is None:
                findings.append(UnloggedChange(subject=f"record {record_id}", what="its creation"))
                continue
            try:
                actual = self.db.record(session, record_id)
            except EvidenceError as exc:
                findings.append(EntryUnreadable(subject=f"record {record_id}", reason=exc.message))
                continue
            differing = tuple(
                f.name
                for f in attrs.fields(model.EvidenceRecord)
                if getattr(actual, f.name) != getattr(expected, f.name)
            )
            if differing:
                findings.append(RecordMismatch(record_id=record_id, fields=differing))
        present = set(record_ids)
        findings.extend(RecordMissing(record_id=r) for r in replayed.records if r not in present)
        return findings, len(leaves), record_ids, len(leaves) - covered

    def _verify_tree(
        self,
        session: Any,
        leaves: Sequence[bytes],
        given: Sequence[tuple[str, str]],
        pinned: Sequence[tuple[str, str, str, bytes]],
        chain: tuple[list[KeyEpoch], list[tuple[int, str]]],
    ) -> tuple[list[Finding], int]:
        """The Merkle tree and the checkpoints against the events' *leaves* as they are now, and
        how many of the first events a valid checkpoint signed by the log's key covers.

        Signatures are checked with the key the log itself names for the checkpoint's size
        (pinned by its first key event, handed over only by signed key changes), never with
        whatever ``keys/`` holds now: the checkpoints kept (the newest signed ones until one
        verifies: it covers every event before it), those *given*, and those *pinned* to the key
        they were first checked with (source, note, key name, public key)."""
        findings: list[Finding] = []
        recomputed = merkle.perfect_from_leaves(leaves)
        stored = self.db.stored_nodes(session)
        first_changed = next((i + 1 for i, leaf in enumerate(leaves) if stored.get((0, i)) != leaf), None)
        if first_changed is not None:
            findings.append(MerkleLeafMismatch(seq=first_changed))
        else:  # the leaves are right: are the stored interior nodes?
            for (level, index), value in sorted(stored.items()):
                if level and (index + 1) << level <= len(leaves) and recomputed(level, index) != value:
                    findings.append(MerkleNodeMismatch(level=level, index=index))
                    break
        epochs, key_problems = chain
        findings.extend(KeyChangeInvalid(seq=seq, reason=reason) for seq, reason in key_problems)

        def check(where: str, note: str, key: tuple[str, bytes] | None, signed: bool = True) -> int | None:
            """The size of checkpoint *note* when its signature by *key* (or, unsigned, its
            form) is valid, else ``None``; whether the log as it is now extends it is a finding
            either way."""
            try:
                if not signed:
                    found = parse_checkpoint(note.split("\n\n")[0] + "\n")
                else:
                    if key is None:  # the key in force at its size, as the log names it
                        epoch = epoch_at(epochs, parse_checkpoint(split_note(note)[0]).size)
                        if epoch is None:
                            raise CheckpointError("the custody log names no key to check its signature with")
                        key = (epoch.name, epoch.public)
                    found = verify_checkpoint(note, *key)
            except CheckpointError as exc:
                findings.append(CheckpointInvalid(source=where, reason=str(exc)))
                return None
            if found.size > len(leaves):
                findings.append(LogRolledBack(source=where, checkpoint_size=found.size, log_size=len(leaves)))
            elif merkle.root(recomputed, found.size) != found.root:
                first = first_changed if first_changed is not None and first_changed <= found.size else None
                findings.append(CheckpointMismatch(source=where, checkpoint_size=found.size, first_seq=first))
            return found.size

        rows = self.db.checkpoints(session)
        covered = 0
        unsigned: list[int] = []
        forged = 0  # kept checkpoints marked signed that no key of the log signed
        before = len(findings)
        # Largest first (newest first among equals): in a catalog left as it wrote it, that is
        # newest first; rows moved around (an older note given a newer id) do not hide the
        # checkpoint that covers most.
        for row in sorted(rows, key=lambda r: (r.tree_size, r.id or 0), reverse=True):
            where = f"checkpoint {row.id} (kept in the catalog)"
            if row.signed and not covered:
                mark = len(findings)
                size = check(where, row.note, None)
                if size is not None and size != row.tree_size:  # an older note copied into a newer row
                    findings.append(
                        CheckpointInvalid(
                            source=where,
                            reason=f"its row says it covers {row.tree_size} events, but its signed note covers {size}",
                        )
                    )
                elif size is not None:  # signed by the log's key: whatever is wrong under it is a finding
                    covered = min(size, len(leaves))
                elif len(findings) == mark + 1 and isinstance(findings[-1], CheckpointInvalid):
                    forged += 1
                    if forged > 1:
                        findings.pop()  # the newest is named, the older ones counted
                continue
            check(where, row.note, None, signed=False)
            epoch = epoch_at(epochs, row.tree_size)
            if not row.signed and epoch is not None and not epoch.encrypted:
                unsigned.append(row.tree_size)
        findings[before:] = findings[before:][::-1]  # in the order they were kept
        if forged > 1:
            findings.append(
                CheckpointInvalid(
                    source=f"{forged - 1} older checkpoint(s) kept in the catalog",
                    reason="not signed by the key the custody log names either",
                )
            )
        if unsigned:
            findings.append(CheckpointUnsigned(count=len(unsigned), first_size=min(unsigned)))
        # A checkpoint given from outside is evidence against the log, never for it: where the
        # log no longer names a key (its key event was damaged), the key files are the next best.
        fallback: tuple[str, bytes] | None = None
        if not epochs and self.log_key.exists:
            with contextlib.suppress(CatalogError):
                fallback = self.log_key.public()
        for where, text in given:
            check(where, text, fallback)
        for where, text, name, key in pinned:
            check(where, text, (name, key))
        notes_by_id = {str(r.id): r.note for r in rows}
        for stamp in self.db.timestamps(session, "granted"):
            subject = f"{stamp.subject_kind} {stamp.subject}"
            try:
                info = token_info(base64.b64decode(stamp.token or "", validate=True))
            except (TimestampError, ValueError) as exc:
                findings.append(TimestampMismatch(subject=subject, reason=f"the token cannot be read ({exc})"))
                continue
            wanted = stamp.data_sha256
            if stamp.subject_kind == "checkpoint":
                kept = notes_by_id.get(stamp.subject)
                wanted = "" if kept is None else hashlib.sha256(kept.encode("utf-8")).hexdigest()
            if info.sha256 != wanted or info.sha256 != stamp.data_sha256:
                findings.append(
                    TimestampMismatch(subject=subject, reason="the token stamps other bytes than the ones kept")
                )
        return findings, covered

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
        now = time.time()
        with self.db.read() as session:
            known = {sha for sha, _, _ in self.db.artifact_digests(session)}
        orphans = [e for e in self.blobs.stored(now) if e.sha256 not in known]
        temporary = list(self.blobs.temporary(now))
        work = self.path / WORK_DIR
        if work.is_dir():
            temporary += [_fsck_entry(path, self.path, now) for path in sorted(work.iterdir())]
        quarantined = tuple(self.blobs.quarantined(now))
        removed: list[FsckEntry] = []
        if remove:
            if self.db.read_only:
                raise StorageError("the catalog is read-only; nothing can be removed from it")
            log_key.check_signing_key(self._ctx)  # the removal must be logged: refused before anything is deleted
            # Removal holds the write lock throughout, and writers check under that lock that the
            # bytes they catalogue are still stored (``_add_artifact``): a blob is either claimed
            # before this looks (kept) or found missing by its claimer (which fails cleanly).
            # The removal is logged in the same transaction.
            try:
                with self._ctx.write() as session:
                    self._remove_unfinished(session, (*orphans, *temporary), grace_seconds, removed)
                    if removed:
                        listed = [{"path": e.path, "size": e.size, "sha256": e.sha256} for e in removed]
                        self._ctx.log_event(Action.CATALOG_FSCK, {"removed": listed}, session)
            except (StorageError, DatabaseError, IntegrityError, CatalogError) as exc:
                if not removed:
                    raise
                # Deleting cannot be rolled back: say what is gone, since the log cannot.
                gone = ", ".join(e.path for e in removed[:5]) + (", ..." if len(removed) > 5 else "")
                raise StorageError(
                    f"{len(removed)} unclaimed file(s) were removed ({gone}), but the removal could not be"
                    f" logged ({exc}); keep this message with the catalog's records",
                    where=display_path(self.path),
                ) from exc
        return FsckReport(
            orphaned_blobs=tuple(orphans),
            temporary=tuple(temporary),
            quarantined=quarantined,
            removed=tuple(removed),
        )

    def _remove_unfinished(
        self, session: Any, entries: Sequence[FsckEntry], grace_seconds: float, removed: list[FsckEntry]
    ) -> None:
        """Delete the listed orphans and temporary files older than *grace_seconds* that no
        artifact claims (checked again in *session*, the write transaction); each one deleted
        is appended to *removed* at once (so that a failure midway still knows them)."""
        for entry in entries:
            if entry.age_seconds < grace_seconds:
                continue
            if entry.sha256 is not None and self.db.artifact(session, entry.sha256) is not None:
                continue  # claimed meanwhile by another process: keep it
            try:
                if entry.path.startswith(f"{WORK_DIR}/"):
                    target = self.path / entry.path
                    if target.is_dir() and not target.is_symlink():
                        remove_if_abandoned(target)  # only when its owner is gone
                        if target.exists():
                            continue
                    else:
                        target.unlink()
                else:
                    self.blobs.delete(entry)
            except (OSError, StorageError):
                continue
            removed.append(entry)

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
        with self.db.read() as session:
            size = self.db.tree_size(session)
            epochs, _ = log_key.log_key_chain(self._ctx, session)
            covered, latest = log_key.signed_prefix(self._ctx, session, epochs)
        if covered != size or latest is None:
            if self.db.read_only:
                raise StorageError("the catalog is read-only; no new checkpoint can be kept")
            if log_key.signing_key(self._ctx) is None:
                raise InputError(
                    f"the log key is encrypted: give its passphrase (${PASSPHRASE_ENV}) to sign a checkpoint",
                    where="checkpoint",
                )
            with self._ctx.write() as session:
                log_key.write_checkpoint(self._ctx, session)
            with self.db.read() as session:
                latest = self.db.latest_checkpoint(session)
        assert latest is not None and latest.signed
        return CheckpointInfo(
            size=latest.tree_size,
            root=latest.root_hash,
            note=latest.note,
            signed=latest.signed,
            at=model.to_utc(latest.created_at)
            if latest.created_at.tzinfo
            else latest.created_at.replace(tzinfo=dt.UTC),
        )

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
        tsa = url or os.environ.get(TSA_ENV) or self.config.tsa_url
        if not tsa:
            raise InputError(
                f"no Time-Stamp Authority: give its URL (--tsa, ${TSA_ENV}, or [timestamp] url in catalog.toml)",
                where="timestamp",
            )
        tsa = check_url(tsa)
        current = self.checkpoint()
        with self.db.read() as session:
            # The row of the checkpoint handed out (the newest row may be another, put there).
            latest = next((r for r in self.db.signed_checkpoints_by_size(session) if r.note == current.note), None)
            for sha in artifacts:
                if not model.is_hex_digest(sha, "sha256") or self.db.artifact(session, sha) is None:
                    raise NotFoundError(f"no artifact with SHA-256 {sha!r}", where="artifact")
        assert latest is not None and latest.id is not None
        at = self.clock()
        with self._ctx.write() as session:
            self.db.queue_timestamp(
                session,
                kind="checkpoint",
                subject=str(latest.id),
                data_sha256=hashlib.sha256(current.note.encode("utf-8")).hexdigest(),
                url=tsa,
                at=at,
            )
            for sha in artifacts:
                self.db.queue_timestamp(session, kind="artifact", subject=sha, data_sha256=sha, url=tsa, at=at)
        with self.db.read() as session:
            pending = self.db.timestamps(session, "pending")
        granted: list[str] = []
        failed: list[str] = []
        offline: str | None = None
        for row in pending:
            assert row.id is not None
            if offline is not None:
                break
            try:
                # To the TSA asked now: one that could not be reached before must not hold up the rest.
                token = timestamp_digest(tsa, bytes.fromhex(row.data_sha256), timeout=timeout)
            except NetworkError as exc:
                offline = exc.message
                with self._ctx.write() as session:
                    self.db.settle_timestamp(
                        session, row.id, status="pending", token=None, gen_time=None, error=offline
                    )
                continue
            except TimestampError as exc:
                failed.append(f"{row.subject_kind} {row.subject}: {exc}")
                with self._ctx.write() as session:
                    self.db.settle_timestamp(
                        session, row.id, status="failed", token=None, gen_time=None, error=str(exc)
                    )
                continue
            info = token_info(token)
            encoded = base64.b64encode(token).decode("ascii")
            with self._ctx.write() as session:
                self.db.settle_timestamp(session, row.id, "granted", token=encoded, gen_time=info.gen_time, url=tsa)
                self.db.append_event(
                    session,
                    at=self.clock(),
                    actor=self.operator,
                    action=Action.TIMESTAMP_ADDED,
                    subject="catalog" if row.subject_kind == "checkpoint" else row.subject,
                    details={
                        "stamps": row.subject_kind,
                        "checkpoint_id": int(row.subject) if row.subject_kind == "checkpoint" else None,
                        "sha256": row.data_sha256,
                        "tsa_url": tsa,
                        "gen_time": format_timestamp(info.gen_time),
                        "serial": str(info.serial),
                        "policy": info.policy,
                        "token": encoded,
                    },
                )
            granted.append(f"{row.subject_kind} {row.subject}")
        with self.db.read() as session:
            still = len(self.db.timestamps(session, "pending"))
        return TimestampResult(
            checkpoint=current.note, granted=tuple(granted), failed=tuple(failed), pending=still, offline=offline
        )

    def inclusion_proof(self, seq: int) -> InclusionProof:
        """The RFC 6962 inclusion proof of custody event *seq* in the log at the latest
        checkpoint's size (or the whole log when it has none covering *seq*)."""
        with self.db.read() as session:
            size = self.db.tree_size(session)
            if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= size:
                raise InputError(f"no custody event {seq!r}; the log has events 1 to {size}", where="seq")
            latest = self.db.latest_checkpoint(session, signed=True)
            if latest is not None and latest.tree_size < seq:
                latest = None
            at_size = size if latest is None else latest.tree_size
            subtrees = self.db.subtrees(session)
            proof = merkle.inclusion_proof(subtrees, seq - 1, at_size)
            root = merkle.root(subtrees, at_size)
            leaf = subtrees(0, seq - 1)
        return InclusionProof(
            seq=seq,
            leaf_index=seq - 1,
            tree_size=at_size,
            leaf_hash=leaf.hex(),
            proof=tuple(h.hex() for h in proof),
            root=root.hex(),
            checkpoint=None if latest is None else latest.note,
        )

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> tuple[str, ...]:
        """The RFC 6962 consistency proof (hex hashes) from the log at *old_size* to *new_size*
        (the whole log when ``None``)."""
        with self.db.read() as session:
            size = self.db.tree_size(session) if new_size is None else new_size
            try:
                return tuple(h.hex() for h in merkle.consistency_proof(self.db.subtrees(session), old_size, size))
            except ValueError as exc:
                raise InputError(str(exc), where="size") from exc

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


def _read_reports(
    raw: bytes, format: str, where: str, folder: Path, skipped: list[tuple[int, str]] | None
) -> tuple[list[tuple[model.Report, str, str, tuple[Path, ...]]], tuple[tuple[int, str], ...]]:
    """The reports an input states, each with a title for its record and where it was in the
    input, and the input's warnings.  Reports carry their identity; the caller sets the
    document's SHA-256."""
    from evidence_catalog.ingest.digest import item_report, parse_digest, report_identity
    from evidence_catalog.ingest.feed import parse_feed
    from evidence_catalog.ingest.telegram import parse_telegram
    from evidence_catalog.ingest.twarc import parse_twarc

    if not raw:
        raise InputError("is empty", where=where)
    if format == "rss":
        feed = parse_feed(raw, where=where)
        return [(e.report, e.title, e.where, ()) for e in feed.entries], feed.warnings
    if format == "twarc":
        tweets, warnings = parse_twarc(input_text(raw, where), where=where, skipped=skipped)
        return [(*tweet, ()) for tweet in tweets], warnings
    if format == "telegram":
        messages, warnings = parse_telegram(input_text(raw, where), export_dir=folder, where=where, skipped=skipped)
        return [(m.report, m.title, m.where, m.media) for m in messages], warnings
    digest = parse_digest(input_text(raw, where))
    if not digest.items:
        raise InputError("no feed items found (a digest starts with a 'Feed Name (Platform)' line)", where=where)
    prepared: list[tuple[model.Report, str, str, tuple[Path, ...]]] = []
    for item in digest.items:
        identity = report_identity(
            platform=item.platform,
            post_id=None,
            feed=item.feed_name,
            author=item.repost_of or item.feed_name,
            text=item.text,
        )
        report = attrs.evolve(item_report(item, report_id=model.new_id(), document_sha256=None), identity=identity)
        where = f"digest lines {item.first_line}-{item.last_line}: " + (
            "title and description repeat the same text, kept once"
            if item.repeated
            else "text not repeated as the format has it (see the ingest's warnings)"
        )
        prepared.append((report, item.text, where, ()))
    return prepared, digest.warnings


def _title(text: str) -> str:
    """A record title from a report's text: its first line, at most 100 characters."""
    first = text.split("\n", 1)[0].strip() or text.strip()
    return first if len(first) <= 100 else first[:99] + "…"


def _parts_not_kept(warnings: Sequence[str]) -> str | None:
    """What a successful capture could not keep (a subtitle or thumbnail that failed), as the
    acquisition's note: the record must not look more complete than it is."""
    missing = [
        w
        for w in warnings
        if w.startswith(("not kept", "thumbnail not kept", "Unable to download video subtitles", "Unable to download"))
        and "webpage" not in w
    ]
    return "; ".join(missing) or None


def open_blob_store(directory: Path, config: CatalogConfig) -> BlobStore | ObjectBlobStore:
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


def _sqlite_url(directory: Path, *, read_only: bool = False) -> sa.URL:
    """The database URL, built from parts: a path is never parsed as a URL (a ``?``, ``#`` or
    ``%41`` in a folder name must not send the database somewhere else)."""
    path = os.path.abspath(directory / DATABASE_FILE)
    if not read_only:
        return sa.URL.create("sqlite", database=path)
    # On read-only media nobody can be writing, and SQLite cannot create its WAL index there:
    # the database is opened as immutable (a catalog closed cleanly has no WAL to miss).  Where
    # only this account cannot write, another process may be adding: plain read-only mode reads
    # its WAL and sees its commits.
    mode = {"immutable": "1"} if _on_read_only_media(directory) else {"mode": "ro"}
    uri = "file:" + urllib.parse.quote(os.fsencode(path))
    return sa.URL.create("sqlite", database=uri, query={**mode, "uri": "true"})


def _on_read_only_media(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _expand(path: Path, *, recursive: bool, skip: tuple[int, int] | None) -> Iterator[Path]:
    where = display_path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError as exc:
        if os.path.islink(path):
            raise InputError("broken symbolic link", where=where) from exc
        raise InputError("no such file or directory", where=where) from exc
    except PermissionError as exc:
        raise InputError("permission denied", where=where) from exc
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: a symbolic link that points at itself
            raise InputError("symbolic link loop", where=where) from exc
        raise InputError(exc.strerror or str(exc), where=where) from exc
    except ValueError as exc:  # given to the library: no file name holds a NUL
        raise InputError("is not a file name (it holds a NUL character)", where=where) from exc
    if stat.S_ISDIR(info.st_mode):
        if not recursive:
            raise InputError("is a directory (use --recursive to add its files)", where=where)
        yield from _walk(path, ancestors=[(info.st_dev, info.st_ino)], skip=skip)
        return
    if not stat.S_ISREG(info.st_mode):
        raise InputError("not a regular file", where=where)
    if not os.access(path, os.R_OK):
        raise InputError("permission denied", where=where)
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror})", where=where) from exc
    yield path


def _walk(directory: Path, *, ancestors: list[tuple[int, int]], skip: tuple[int, int] | None) -> Iterator[Path]:
    try:
        entries = sorted(os.scandir(directory), key=lambda e: os.fsencode(e.name))
    except PermissionError as exc:
        raise InputError("permission denied", where=display_path(directory)) from exc
    for entry in entries:
        path = Path(entry.path)
        try:
            info = os.stat(path)
        except OSError:
            info = None
        if info is not None and stat.S_ISDIR(info.st_mode):
            identity = (info.st_dev, info.st_ino)
            if identity == skip:
                continue
            if identity in ancestors:
                raise InputError("symbolic link loop (points back at a directory above it)", where=display_path(path))
            yield from _walk(path, ancestors=[*ancestors, identity], skip=skip)
        else:
            yield from _expand(path, recursive=False, skip=skip)
