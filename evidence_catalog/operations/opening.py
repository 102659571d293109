"""Opening a catalog: a new one made in a folder (:meth:`evidence_catalog.Catalog.init`) or an
existing folder opened (:meth:`evidence_catalog.Catalog.open`), into the
:class:`~evidence_catalog.operations.context.Context` every operation receives.

Opening also keeps the log key in order: a new catalog's key is made before its first event, a
change of key killed half-way is finished, and a catalog from before signed checkpoints gets its
key the first time it is opened for writing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from evidence_catalog import model
from evidence_catalog.checkpoint import KeyDamagedError
from evidence_catalog.config import CONFIG_FILE, CatalogConfig, resolve_operator
from evidence_catalog.custody import Action
from evidence_catalog.errors import CatalogError, CatalogNotFoundError, EvidenceError, InputError, StorageError
from evidence_catalog.operations import log_key
from evidence_catalog.operations.context import Clock, Context, KeyState
from evidence_catalog.operations.log_key import KEYS_DIR, NEXT_KEY_DIR
from evidence_catalog.paths import display_path
from evidence_catalog.serialize import unstructure
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

#: In a catalog's folder: its SQLite database (unless ``catalog.toml`` names another), and its
#: blobs (unless it names object storage).
DATABASE_FILE = "catalog.db"
BLOBS_DIR = "blobs"


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


def make_context(
    path: Path,
    config: CatalogConfig,
    database: CatalogDatabase,
    *,
    operator: model.Agent | str | None = None,
    clock: Clock = model.utc_now,
    key_passphrase: str | None = None,
) -> Context:
    """The context of the catalog in *path* whose database is open (what
    :class:`evidence_catalog.Catalog` wraps): its blob store opened, the operator resolved, and
    its log key's files found (the key signs from the start when they are there)."""
    keys = LogKey(path / KEYS_DIR)
    return Context(
        path=path,
        config=config,
        db=database,
        blobs=open_blob_store(path, config),
        operator=resolve_operator(operator, config.operator),
        clock=clock,
        key=KeyState(log_key=keys, passphrase=key_passphrase, signs=keys.exists),
    )


def create(
    path: str | os.PathLike[str],
    *,
    operator: model.Agent | str | None = None,
    algorithms: Sequence[str] = ("sha256",),
    clock: Clock = model.utc_now,
    key_passphrase: str | None = None,
    database: str | None = None,
    blobs: str | None = None,
    blobs_endpoint_url: str | None = None,
    default_database: Callable[[Path], str] | None = None,
) -> Context:
    """Make a new catalog in *path*, as :meth:`evidence_catalog.Catalog.init` describes, and
    return its context.  *default_database*, when given, makes the URL of the database to use
    when *database* is not given (the test suite's PostgreSQL)."""
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
    if database_url is None and default_database is not None:
        database_url = check_database_url(default_database(directory), where="default database")
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
            ctx = make_context(
                directory, config, db, operator=default_operator, clock=clock, key_passphrase=key_passphrase
            )
            # First: the first event already ends with a signed checkpoint.
            log = log_key.create_log_key(ctx)
            ctx.log_event(
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
    return ctx


def open_existing(
    path: str | os.PathLike[str],
    *,
    operator: model.Agent | str | None = None,
    clock: Clock = model.utc_now,
    read_only: bool | None = None,
    key_passphrase: str | None = None,
) -> Context:
    """Open the catalog in *path*, as :meth:`evidence_catalog.Catalog.open` describes, and
    return its context.  Opened for writing, its log key is put in order first: a change of
    key killed half-way is finished, the key is checked (a wrong passphrase is refused here),
    a catalog from before signed checkpoints gets its key; a schema upgrade is logged."""
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
        ctx = make_context(directory, config, database, operator=operator, clock=clock, key_passphrase=key_passphrase)
    except BaseException:
        database.close()  # e.g. a bad [blobs] setting: the database is not left open
        raise
    if not read_only and (ctx.key.log_key.directory / NEXT_KEY_DIR).is_dir():
        try:
            log_key.finish_key_change(ctx)  # a change of key that was killed half-way
        except BaseException:
            database.close()
            raise
    if not read_only and ctx.key.log_key.exists:
        try:
            log_key.check_signing_key(ctx, history=False)
        except KeyDamagedError:
            pass  # every change is refused with it; `verify` reports it
        except BaseException:
            database.close()  # a passphrase that does not open the key: refused before any change
            raise
    if not read_only and not ctx.key.log_key.exists:  # a catalog from before signed checkpoints
        if log_key.logged_key(ctx) is not None:
            # A shared database (a team's catalog) opened from a folder without the key: a
            # new key here would sign a second history of the same log.
            database.close()
            raise CatalogError(
                f"the custody log already has a key, but it is not in {KEYS_DIR}/: copy the catalog's "
                f"{KEYS_DIR}/ folder here (log.pub and log.vkey to read and verify; log.key too to write)",
                where=where,
            )
        refusal = log_key.had_a_key(ctx)
        if refusal is not None:
            database.close()
            raise CatalogError(refusal, where=where)
        ctx.log_event(Action.LOG_KEY_CREATED, log_key.create_log_key(ctx))
    if database.upgraded_from is not None:
        # A schema upgrade rewrites tables: who did it, when, with which version, is custody.
        ctx.log_event(
            Action.CATALOG_UPGRADED,
            {
                "from_revision": database.upgraded_from,
                "to_revision": HEAD_REVISION,
                "software": unstructure(library_agent()),
            },
        )
    return ctx
