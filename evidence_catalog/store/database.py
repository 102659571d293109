"""The catalog database adapter: connection set-up, migrations, rows to and from model values.

Every write runs in one transaction that takes the catalog's one write lock first -- ``BEGIN
IMMEDIATE`` on SQLite, a transaction-level advisory lock on PostgreSQL -- so that writers queue
for it instead of failing half-way, and so that appending to the custody log (always here, in
:meth:`CatalogDatabase.append_event`) sees the true last event: one linear log, whichever
process or machine writes.  Reads on PostgreSQL run at ``REPEATABLE READ``, a consistent
snapshot as SQLite's WAL mode gives (a verification reads the log twice and must see the same
log both times); writes at ``READ COMMITTED``, so that after waiting for the lock they see what
the writer before them committed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypedDict

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlmodel import Session, col, select

from evidence_catalog import merkle, model
from evidence_catalog.custody import ChainHead, event_leaf, linked_event
from evidence_catalog.errors import (
    CatalogError,
    CatalogVersionError,
    EvidenceError,
    NotFoundError,
    StorageError,
    ValidationError,
)
from evidence_catalog.serialize import format_timestamp, structure, unstructure
from evidence_catalog.store.tables import (
    AcquisitionRow,
    ArtifactRow,
    CheckpointRow,
    CustodyEventRow,
    MerkleNodeRow,
    RecordArtifactRow,
    RecordPartRow,
    RecordRow,
    RecordTagRow,
    ReportIndexRow,
    ReportTermRow,
    TimestampTokenRow,
)

MIGRATIONS = Path(__file__).parent / "migrations"

#: Record parts kept as JSON bodies in ``record_part``, by kind, with their model type.
PART_KINDS: dict[str, type[Any]] = {
    "report": model.Report,
    "note": model.Note,
    "flag": model.SensitivityFlag,
    "relation": model.Relation,
    "claim": model.Claim,
    "assessment": model.Assessment,
}
_PART_FIELDS = {
    "report": "reports",
    "note": "notes",
    "flag": "flags",
    "relation": "relations",
    "claim": "claims",
    "assessment": "assessments",
}


#: The newest migration.  A catalog at this revision opens without loading Alembic at all
#: (a test checks that this matches the migrations folder).
HEAD_REVISION = "0007"


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {rev.revision for rev in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}


def _create_head_schema(connection: sa.Connection) -> None:
    """Make a new catalog's schema at the newest revision in one step: every table and index
    the SQLModel tables describe, SQLite's FTS5 table, and the revision stamped.  That is what
    running every migration from an empty database makes (``tests/test_migrations.py`` compares
    the two, column by column and index by index), without making each earlier revision's
    tables and then altering them: a new catalog is made in about half the time."""
    from alembic import command
    from sqlmodel import SQLModel

    from evidence_catalog.store.search import FTS_CREATE

    SQLModel.metadata.create_all(connection)
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(FTS_CREATE)
    command.stamp(_alembic_config(connection), "head")


def _alembic_config(connection: sa.Connection | None = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def aware(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; every timestamp we stored was UTC."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


#: The PostgreSQL advisory lock every write transaction takes (any fixed 64-bit number, the
#: same in every process: ``evidence-catalog`` in ASCII, truncated).
PG_WRITE_LOCK = 0x65766964656E6365

#: Database URL schemes a catalog can live in.
SUPPORTED_DIALECTS = ("sqlite", "postgresql")


def check_database_url(url: str | sa.URL, *, where: str = "--database") -> sa.URL:
    """Parse a database URL; :class:`~evidence_catalog.errors.InputError` naming what is wrong."""
    from evidence_catalog.errors import InputError

    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise InputError(f"not a database URL ({exc})", where=where) from exc
    if parsed.get_backend_name() not in SUPPORTED_DIALECTS:
        raise InputError(
            f"unsupported database {parsed.get_backend_name()!r}: use sqlite:/// or postgresql+psycopg://",
            where=where,
        )
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() not in ("psycopg", "postgresql"):
        raise InputError("PostgreSQL is reached through psycopg 3: use postgresql+psycopg://", where=where)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


#: Query parameters of a libpq connection string that hold a secret (not a file's name).
_SECRET_PARAMETERS = frozenset({"password", "sslpassword"})


def safe_url(url: str | sa.URL) -> str:
    """A database URL fit to print or store: the password, if any, is left out (also one given
    as a query parameter).  The server is asked for it, as libpq does, from ``PGPASSWORD``,
    ``~/.pgpass`` or a service file."""
    parsed = sa.make_url(url)
    # ``URL.set(password=None)`` leaves the password as it is (None means "unchanged" there).
    parsed = parsed._replace(password=None)
    secret = [key for key in parsed.query if key.lower() in _SECRET_PARAMETERS]
    if secret:
        parsed = parsed.difference_update_query(secret)
    return parsed.render_as_string(hide_password=False)


def _make_engine(url: str | sa.URL, *, read_only: bool = False) -> sa.Engine:
    url = sa.make_url(url)
    if url.get_backend_name() == "postgresql":
        return _make_pg_engine(url, read_only=read_only)
    engine = sa.create_engine(url)
    read_only = {"mode": "ro"}.items() <= engine.url.query.items() or "immutable" in engine.url.query
    if engine.dialect.name == "sqlite":

        @sa_event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout = 60000")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not read_only:
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = FULL")
            cursor.close()

        @sa_event.listens_for(engine, "begin")
        def _on_begin(connection: sa.Connection) -> None:
            mode = "IMMEDIATE" if connection.get_execution_options().get("write") else "DEFERRED"
            connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _make_pg_engine(url: sa.URL, *, read_only: bool = False) -> sa.Engine:
    try:
        import psycopg  # noqa: F401  (only to give a clear message when it is missing)
    except ImportError as exc:
        from evidence_catalog.errors import InputError

        raise InputError(
            "a PostgreSQL catalog needs psycopg: pip install 'evidence-catalog[postgresql]'", where=safe_url(url)
        ) from exc
    engine = sa.create_engine(
        url.set(drivername="postgresql+psycopg"),
        isolation_level="REPEATABLE READ",
        # No ping before each use: it is one more round trip for every read.  A connection the
        # server dropped fails its next statement (a StorageError; nothing half-done), and the
        # pool replaces it.
        pool_pre_ping=False,
        connect_args={
            "connect_timeout": 30,
            "application_name": "evidence-catalog",
            # Timestamps are read in ISO form whatever the server's default DateStyle is; a
            # read-only catalog's sessions refuse every write in the server itself.
            "options": "-c DateStyle=ISO,YMD" + (" -c default_transaction_read_only=on" if read_only else ""),
        },
    )

    @sa_event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        if connection.get_execution_options().get("write"):
            # Held until commit or rollback; a killed process's session ends and frees it.
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_WRITE_LOCK})")

    return engine


#: Every CatalogDatabase made in this process (weakly: a closed and dropped one goes).
_OPEN_DATABASES: weakref.WeakSet[CatalogDatabase] = weakref.WeakSet()
#: In a forked child: the parent's lookup connections, kept so that they are never closed (that
#: would end the parent's session) nor collected with a warning that they were left open.
_INHERITED: list[Any] = []
#: Seconds :meth:`CatalogDatabase.close` waits for a lookup still running on the lookups' own
#: connection before it leaves that lookup to close it.
CLOSE_WAIT = 10.0


def _after_fork_in_child() -> None:
    """A process forked with catalogs open (``multiprocessing`` on Linux does this) must not use
    its parent's database connections: two processes on one socket garble each other's
    statements.  Each open catalog's connections are let go of in the child, not closed."""
    for database in list(_OPEN_DATABASES):
        database._forget_connections()


os.register_at_fork(after_in_child=_after_fork_in_child)


class CatalogDatabase:
    """The catalog's database: an index of records, artifacts and the custody log."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._read_only = False
        self._writer = engine.execution_options(write=True)
        if engine.dialect.name == "postgresql":
            self._writer = self._writer.execution_options(isolation_level="READ COMMITTED")
        #: The schema revision this database had before :meth:`open` upgraded it, if it did.
        self.upgraded_from: str | None = None
        #: PostgreSQL: a connection of the lookups' own (see :meth:`_lookup`); the lock says
        #: which thread uses it.
        self._lookup_connection: Any = None
        self._lookup_lock = threading.Lock()
        self._closed = False
        _OPEN_DATABASES.add(self)

    @classmethod
    def create(cls, url: str | sa.URL, *, where: str | None = None) -> CatalogDatabase:
        """Create the schema in an empty database by running every migration.

        A database that already holds a catalog (or cannot be reached) is refused, naming it.
        """
        db = cls(_make_engine(url))
        taken = False
        try:
            # Looked at and made under the write lock: of two inits racing for one empty
            # database, the second finds the first's schema and is refused (it must not go on
            # to log a second creation into the first's log, nor drop its tables on failure).
            with db._writer.begin() as connection:
                taken = sa.inspect(connection).has_table("alembic_version")
                if not taken:
                    _create_head_schema(connection)
        except (DatabaseError, OperationalError) as exc:
            db.close()
            raise StorageError(
                f"cannot reach the catalog database ({_first_line(exc.orig)})", where=where or safe_url(url)
            ) from exc
        except BaseException:
            db.close()
            raise
        if taken:
            db.close()
            raise CatalogError(
                "the database already holds a catalog: give each catalog an empty database of its own",
                where=where or safe_url(url),
            )
        return db

    def drop_schema(self) -> None:
        """Remove every table :meth:`create` made (undoing an ``init`` that failed later on)."""
        from sqlmodel import SQLModel

        with self._writer.begin() as connection:
            SQLModel.metadata.drop_all(connection)
            connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")

    @classmethod
    def open(cls, url: str | sa.URL, *, where: str, read_only: bool = False) -> CatalogDatabase:
        """Open an existing catalog database, upgrading it if it is older than this library.

        A read-only database (``mode=ro`` or ``immutable`` in the URL) is opened as it is; an
        older one cannot be upgraded in place and is refused with a clear error.
        """
        engine = _make_engine(url, read_only=read_only)
        db = cls(engine)
        db._read_only = read_only
        try:
            with engine.connect() as connection:
                has_version = sa.inspect(connection).has_table("alembic_version")
                current = (
                    connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
                    if has_version
                    else None
                )
        except (DatabaseError, OperationalError) as exc:
            db.close()
            if engine.dialect.name != "sqlite":
                raise StorageError(
                    f"cannot reach the catalog database ({_first_line(exc.orig)}); nothing was changed", where=where
                ) from exc
            raise CatalogError(
                f"catalog database cannot be read ({exc.orig}): it may be corrupt, or its disk full or unreadable",
                where=where,
            ) from exc
        if current is None:
            db.close()
            raise CatalogError("catalog database has no schema (not created by evidence-catalog)", where=where)
        if current == HEAD_REVISION:
            return db
        if current not in _known_revisions():
            db.close()
            raise CatalogVersionError(
                f"catalog database schema {current!r} is newer than this version of "
                "evidence-catalog; upgrade the library",
                where=where,
            )
        if db.read_only:
            db.close()
            raise CatalogVersionError(
                f"catalog database schema {current!r} is older than this library and the catalog is "
                "read-only; upgrade a writable copy",
                where=where,
            )
        try:
            db.upgraded_from = db._upgrade()
        except DatabaseError as exc:  # the upgrade is one transaction: rolled back as a whole
            db.close()
            raise CatalogError(
                f"catalog database could not be upgraded from schema {current!r} to {HEAD_REVISION!r}"
                f" ({_first_line(exc.orig)}); nothing was changed",
                where=where,
            ) from exc
        return db

    @property
    def read_only(self) -> bool:
        """True when the database was opened read-only."""
        query = self.engine.url.query
        return self._read_only or query.get("mode") == "ro" or "immutable" in query

    def _upgrade(self) -> str | None:
        """Upgrade to the newest schema; return the revision the database had, read under the
        write lock (``None`` when there was nothing to do: another process upgraded it while
        this one waited for the lock)."""
        from alembic import command  # imported here: most commands never migrate

        with self._writer.begin() as connection:
            has_version = sa.inspect(connection).has_table("alembic_version")
            before = (
                connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() if has_version else None
            )
            if before == HEAD_REVISION:
                return None
            command.upgrade(_alembic_config(connection), "head")
        return before

    def close(self) -> None:
        """Release every pooled connection (and the lookups' own)."""
        self._closed = True  # lookups from now on take pooled connections, as before any was made
        # A lookup still running on the lookups' own connection (on a server that stopped
        # answering, say) is not waited for without end: it closes the connection when it ends.
        if self._lookup_lock.acquire(timeout=CLOSE_WAIT):
            try:
                self._drop_lookup_connection()
            finally:
                self._lookup_lock.release()
        self.engine.dispose()

    def _drop_lookup_connection(self) -> None:
        """Close the lookups' own connection, if there is one (called holding the lock)."""
        held, self._lookup_connection = self._lookup_connection, None
        if held is not None:
            with suppress(Exception):  # a connection the server dropped may fail to close
                held.close()

    def _forget_connections(self) -> None:
        """In a child process just forked: let go of the parent's connections without closing
        them (they are the parent's sessions, on sockets both now hold); this process opens its
        own when it next needs one.  SQLAlchemy's advice for an engine that crosses a fork."""
        if self._lookup_connection is not None:
            _INHERITED.append(self._lookup_connection)  # never closed here, nor collected
        self._lookup_connection = None
        self._lookup_lock = threading.Lock()  # a thread of the parent's may have held it
        self.engine.dispose(close=False)

    def record_exists_now(self, record_id: str) -> bool:
        """:meth:`record_exists` as one statement outside any transaction (see :meth:`_lookup`)."""
        return bool(self._lookup("SELECT 1 FROM record WHERE id = {} LIMIT 1", record_id))

    def records_holding_now(self, sha256: str) -> list[str]:
        """:meth:`records_holding` as one statement outside any transaction."""
        found = self._lookup("SELECT record_id FROM record_artifact WHERE sha256 = {} ORDER BY record_id", sha256)
        return [str(row[0]) for row in found]

    def _lookup(self, sql: str, value: str) -> list[tuple[Any, ...]]:
        """Run one indexed ``SELECT`` (*sql* with ``{}`` where its one parameter goes) on a
        driver connection in the driver's autocommit mode: no ``BEGIN``, no rollback, no
        SQLAlchemy statement to build, and on PostgreSQL one round trip.  A lookup by id or
        SHA-256 took about 0.4 ms of SQLAlchemy's work per call, more than the query.

        On PostgreSQL the lookups keep a connection of their own, always in autocommit mode,
        where the server keeps each statement prepared: taking a pooled connection and switching
        it to autocommit and back cost about as much client time as the round trip itself, and
        doubled the slowest percent of lookups at a million records.  A thread that finds that
        connection in use by another takes a pooled one instead.

        A database that cannot be read (a server gone, a dropped connection, a locked or
        damaged file) is a :class:`StorageError`; other driver errors are raised as
        SQLAlchemy's, as every other read raises them.  A dropped connection is not used again:
        the next lookup gets a new one.
        """
        dialect = self.engine.dialect
        statement = sql.format("?" if dialect.paramstyle == "qmark" else "%s")
        if dialect.name == "postgresql" and not self._closed and self._lookup_lock.acquire(blocking=False):
            try:
                return self._lookup_on_own_connection(statement, value)
            finally:
                self._lookup_lock.release()
        pooled = self.engine.raw_connection()
        driver = pooled.driver_connection
        postgres = dialect.name == "postgresql"
        try:
            if postgres:
                driver.autocommit = True  # type: ignore[union-attr]
            return self._run_lookup(driver, statement, value, pooled.invalidate)
        finally:
            if postgres and pooled.is_valid:
                driver.autocommit = False  # type: ignore[union-attr]
            pooled.close()

    def _lookup_on_own_connection(self, statement: str, value: str) -> list[tuple[Any, ...]]:
        """:meth:`_lookup` on the lookups' own connection, made on first use (called holding
        the lock).  It is a driver connection taken out of the pool (``detach``), so the pool
        never hands it to a transaction and :meth:`close` closes it."""
        driver = self._lookup_connection
        if driver is None:
            wrapper = self.engine.raw_connection()
            wrapper.detach()
            driver = wrapper.dbapi_connection
            try:
                driver.autocommit = True  # type: ignore[union-attr]
            except BaseException:
                with suppress(Exception):
                    driver.close()  # type: ignore[union-attr]
                raise
            self._lookup_connection = driver
        try:
            return self._run_lookup(driver, statement, value, lambda _: self._drop_lookup_connection())
        finally:
            if self._closed:  # close() did not wait for this lookup: the connection is this one's to close
                self._drop_lookup_connection()

    def _run_lookup(
        self, driver: Any, statement: str, value: str, dropped: Callable[[BaseException], None]
    ) -> list[tuple[Any, ...]]:
        """Execute *statement* with *value* on a DB-API connection; its rows, or the error
        :meth:`_lookup` describes.  When the server dropped the connection, *dropped* is called
        first, to discard it (never reused)."""
        dialect = self.engine.dialect
        try:
            cursor = driver.cursor()
            try:
                cursor.execute(statement, (value,))
                return [tuple(row) for row in cursor.fetchall()]
            finally:
                cursor.close()
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, driver, None):
                dropped(exc)
            if isinstance(exc, dialect.loaded_dbapi.OperationalError):
                raise StorageError(f"catalog database could not be read ({_first_line(exc)})") from exc
            raise sa.exc.DBAPIError.instance(
                statement, (value,), exc, dialect.loaded_dbapi.Error, dialect=dialect
            ) from exc

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session (a consistent snapshot on SQLite in WAL mode).

        A database that cannot be read for the moment (a server gone, a dropped connection, a
        lock held past the timeout) is a :class:`StorageError`.
        """
        try:
            with Session(self.engine) as session:
                yield session
        except OperationalError as exc:
            raise StorageError(f"catalog database could not be read ({_first_line(exc.orig)})") from exc

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose work commits as one transaction, or not at all.

        A database that cannot be written (read-only, locked past the timeout, disk full) is a
        :class:`StorageError`; the transaction is rolled back.
        """
        try:
            with Session(self._writer) as session, session.begin():
                yield session
        except OperationalError as exc:
            raise StorageError(f"catalog database could not be written ({exc.orig}); nothing was changed") from exc
        except DatabaseError as exc:
            # PostgreSQL: an account allowed only to read, or a read-only server or session.
            if getattr(exc.orig, "sqlstate", None) not in _CANNOT_WRITE:
                raise
            raise StorageError(
                f"catalog database could not be written ({_first_line(exc.orig)}); nothing was changed"
            ) from exc

    @staticmethod
    def appended(session: Session) -> bool:
        """Whether the write transaction *session* appended custody events (asked once, at its
        end: the operation that commits it then writes the checkpoint that ends it)."""
        return bool(session.info.pop("appended", False))

    # -- custody log -------------------------------------------------------------------------

    def append_event(
        self,
        session: Session,
        *,
        at: dt.datetime,
        actor: model.Agent,
        action: str,
        subject: str,
        details: dict[str, Any],
    ) -> model.CustodyEvent:
        """Append one event to the custody log, linked to the last one (the only appender)."""
        event, document = linked_event(
            _log_head(session),
            at=at,
            actor=actor,
            action=action,
            subject=subject,
            details=details,
        )
        _insert(
            session,
            CustodyEventRow,
            seq=event.seq,
            at=event.at,
            actor=unstructure(event.actor),
            action=event.action,
            subject=event.subject,
            details=event.details,
            prev_hash=event.prev_hash,
            hash=event.hash,
        )
        self._add_leaves(session, [event], [document])
        return event

    def append_events(self, session: Session, drafts: Sequence[EventDraft]) -> list[model.CustodyEvent]:
        """Append several events in order, linked as :meth:`append_event` links one, with one
        insert for all of them (a large ingest writes thousands)."""
        table = _t(CustodyEventRow)
        head: model.CustodyEvent | ChainHead | None = _log_head(session)
        events, documents = [], []
        for draft in drafts:
            head, document = linked_event(head, **draft)
            events.append(head)
            documents.append(document)
        if events:
            _run(
                session,
                sa.insert(table),
                [
                    {
                        "seq": e.seq,
                        "at": e.at,
                        "actor": unstructure(e.actor),
                        "action": e.action,
                        "subject": e.subject,
                        "details": e.details,
                        "prev_hash": e.prev_hash,
                        "hash": e.hash,
                    }
                    for e in events
                ],
            )
            self._add_leaves(session, events, documents)
        return events

    def _add_leaves(
        self, session: Session, events: Sequence[model.CustodyEvent], documents: Sequence[dict[str, Any]]
    ) -> None:
        """Put new events (with their documents) into the Merkle tree (the perfect subtrees
        each one completes), and mark the session so that its transaction ends with a
        checkpoint."""
        _insert_nodes(session, [(e.seq - 1, event_leaf(d)) for e, d in zip(events, documents, strict=True)])
        session.info[_HEAD] = ChainHead(seq=events[-1].seq, hash=events[-1].hash)
        session.info["appended"] = True
        # How long the log was before this transaction: what the checkpoint at its end must find
        # covered already by a signed one (see Catalog._write_checkpoint).
        session.info.setdefault(LOG_SIZE_BEFORE, events[0].seq - 1)

    # -- Merkle tree and checkpoints ----------------------------------------------------------

    def tree_size(self, session: Session) -> int:
        """How many events the log has (its Merkle tree's size)."""
        table = _t(CustodyEventRow)
        return int(_run(session, sa.select(sa.func.coalesce(sa.func.max(table.c.seq), 0))).scalar_one())

    def subtrees(self, session: Session) -> merkle.SubtreeSource:
        """Stored perfect subtrees, read on demand (:class:`MerkleError` for one that is missing)."""
        return _stored_subtrees(session)

    def merkle_root(self, session: Session, size: int | None = None) -> bytes:
        """The root of the first *size* events (all when ``None``)."""
        return merkle.root(self.subtrees(session), self.tree_size(session) if size is None else size)

    def queue_timestamp(
        self, session: Session, *, kind: str, subject: str, data_sha256: str, url: str, at: dt.datetime
    ) -> bool:
        """Queue a time-stamp request unless one for the same subject is pending or granted."""
        table = _t(TimestampTokenRow)
        known = _run(
            session,
            sa.select(table.c.id).where(
                table.c.subject_kind == kind, table.c.subject == subject, table.c.status.in_(("pending", "granted"))
            ),
        ).first()
        if known is not None:
            return False
        _insert(
            session,
            TimestampTokenRow,
            subject_kind=kind,
            subject=subject,
            data_sha256=data_sha256,
            tsa_url=url,
            status="pending",
            requested_at=at,
        )
        return True

    def timestamps(self, session: Session, status: str | None = None) -> list[TimestampTokenRow]:
        """Time-stamp requests and tokens, oldest first (only those with *status* if given)."""
        query = select(TimestampTokenRow).order_by(col(TimestampTokenRow.id))
        if status is not None:
            query = query.where(TimestampTokenRow.status == status)
        return list(session.exec(query))

    def settle_timestamp(
        self,
        session: Session,
        row_id: int,
        status: str,
        *,
        token: str | None = None,
        gen_time: dt.datetime | None = None,
        error: str | None = None,
        url: str | None = None,
    ) -> None:
        """Record what became of a queued request (and the TSA that granted it, *url*)."""
        table = _t(TimestampTokenRow)
        values: dict[str, Any] = {"status": status, "token": token, "gen_time": gen_time, "error": error}
        if url is not None:
            values["tsa_url"] = url
        _run(session, sa.update(table).where(table.c.id == row_id).values(**values))

    def stored_nodes(self, session: Session) -> dict[tuple[int, int], bytes]:
        """Every node the stored Merkle tree holds, by (level, index); damaged hex reads as b""."""
        table = _t(MerkleNodeRow)
        found = {}
        for row in _run(session, sa.select(table.c.level, table.c.idx, table.c.hash)):
            try:
                found[(int(row.level), int(row.idx))] = bytes.fromhex(row.hash)
            except (TypeError, ValueError):
                found[(int(row.level), int(row.idx))] = b""
        return found

    def add_checkpoint(
        self, session: Session, *, size: int, root: bytes, note: str, signed: bool, at: dt.datetime
    ) -> None:
        """Keep a checkpoint of the log."""
        _insert(session, CheckpointRow, tree_size=size, root_hash=root.hex(), note=note, signed=signed, created_at=at)

    def checkpoints(self, session: Session) -> list[CheckpointRow]:
        """Every checkpoint kept, oldest first."""
        return list(session.exec(select(CheckpointRow).order_by(col(CheckpointRow.id))))

    def checkpoint(self, session: Session, checkpoint_id: int) -> CheckpointRow | None:
        """The checkpoint with this number, if kept."""
        return session.get(CheckpointRow, checkpoint_id)

    def signed_checkpoints_by_size(self, session: Session) -> Iterator[CheckpointRow]:
        """The checkpoints kept as signed, largest (as their rows say) first, newest first among
        equals; read a page at a time (no cursor is left open between them), as a caller stops
        at the first one that checks -- in a catalog that was not tampered with, the first."""
        query = (
            select(CheckpointRow)
            .where(col(CheckpointRow.signed).is_(True))
            .order_by(col(CheckpointRow.tree_size).desc(), col(CheckpointRow.id).desc())
        )
        offset, page = 0, 8
        while rows := list(session.exec(query.offset(offset).limit(page))):
            yield from rows
            offset, page = offset + len(rows), min(page * 4, 4096)

    def latest_checkpoint(self, session: Session, *, signed: bool = False) -> CheckpointRow | None:
        """The newest checkpoint (the newest signed one with *signed*), if any."""
        query = select(CheckpointRow).order_by(col(CheckpointRow.id).desc()).limit(1)
        if signed:
            query = query.where(col(CheckpointRow.signed).is_(True))
        return session.exec(query).first()

    def insert_rows(self, session: Session, rows: dict[str, list[dict[str, Any]]]) -> None:
        """Insert prepared rows, table by table (``artifact`` and ``record`` first: others refer
        to them), one statement per table."""
        for name in ("artifact", "record", "record_tag", "record_artifact", "acquisition", "record_part"):
            if rows.get(name):
                _run(session, sa.insert(_ROW_TYPES[name].__table__), rows[name])

    def event_documents(
        self, session: Session, subject: str | None = None, *, action: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """The custody log in sequence order as plain JSON objects, read from the stored text.

        Nothing is validated or trusted: a damaged column (JSON that does not parse, a time
        that is not a time) is handed on as the text it holds, so that verification can name
        the event instead of failing on it.
        """
        table = _t(CustodyEventRow)
        as_text = [sa.cast(table.c[name], sa.Text) for name in ("at", "actor", "details")]
        query = sa.select(
            table.c.seq, *as_text, table.c.action, table.c.subject, table.c.prev_hash, table.c.hash
        ).order_by(table.c.seq)
        if subject is not None:
            query = query.where(table.c.subject == subject)
        if action is not None:
            query = query.where(table.c.action == action)
        # Streamed (a server-side cursor on PostgreSQL, whose driver otherwise fetches the whole
        # result at once): verifying a log of millions of events holds one page at a time.
        for row in _run(session, query.execution_options(stream_results=True, yield_per=2000)):
            yield _event_document(tuple(row))

    def events_by_action(self, session: Session, action: str) -> list[model.CustodyEvent]:
        """The events with one action, in log order (the action column is indexed)."""
        return [structure_event(document) for document in self.event_documents(session, action=action)]

    def events(self, session: Session, subject: str | None = None) -> Iterator[model.CustodyEvent]:
        """The custody log in sequence order, optionally only events about *subject*.

        Raises :class:`ValidationError` naming the first event that is not a valid event.
        """
        for document in self.event_documents(session, subject):
            yield structure_event(document)

    # -- artifacts ---------------------------------------------------------------------------

    def artifact(self, session: Session, sha256: str) -> model.Artifact | None:
        """The artifact with this SHA-256, if catalogued."""
        table = _t(ArtifactRow)
        row = _run(session, sa.select(table).where(table.c.sha256 == sha256)).first()
        return None if row is None else _artifact_from_row(row)

    def artifact_digests(self, session: Session) -> Iterator[tuple[str, int, model.Digests | str]]:
        """(SHA-256, size, recorded digests) of every artifact, for re-hashing; where a row's
        digests are no longer valid, the reason instead of the digests."""
        table = _t(ArtifactRow)
        columns = (table.c.sha256, table.c.size, table.c.md5, table.c.sha1, table.c.sha512, table.c.blake2b)
        for row in _run(session, sa.select(*columns).order_by(table.c.sha256)):
            try:
                digests: model.Digests | str = model.Digests(
                    sha256=row.sha256, md5=row.md5, sha1=row.sha1, sha512=row.sha512, blake2b=row.blake2b
                )
            except (TypeError, ValueError) as exc:
                digests = str(exc)
            size = row.size
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                digests, size = f"size {size!r} is not a byte count", 0
            yield row.sha256, size, digests

    def artifacts(self, session: Session, sha256s: Iterable[str]) -> dict[str, model.Artifact]:
        """The catalogued artifacts among these SHA-256s, by SHA-256 (one query per 500)."""
        table = _t(ArtifactRow)
        found: dict[str, model.Artifact] = {}
        for chunk in _chunks(sha256s):
            for row in _run(session, sa.select(table).where(table.c.sha256.in_(chunk))):
                found[row.sha256] = _artifact_from_row(row)
        return found

    def add_artifact(self, session: Session, artifact: model.Artifact, *, at: dt.datetime) -> None:
        """Insert a new artifact (the caller has checked that it is not catalogued yet)."""
        _run(session, sa.insert(_t(ArtifactRow)), [artifact_row(artifact, at)])

    def artifact_bytes(self, session: Session, record_ids: Sequence[str] | None = None) -> int:
        """The bytes of every artifact on these records (all records when ``None``), counted
        once per record that holds it: what an export of them copies."""
        entry, artifact = _t(RecordArtifactRow), _t(ArtifactRow)
        query = sa.select(sa.func.coalesce(sa.func.sum(artifact.c.size), 0)).select_from(
            entry.join(artifact, artifact.c.sha256 == entry.c.sha256)
        )
        if record_ids is None:
            return int(_run(session, query).scalar_one())
        total = 0
        ids = list(record_ids)
        for start in range(0, len(ids), 500):
            total += int(_run(session, query.where(entry.c.record_id.in_(ids[start : start + 500]))).scalar_one())
        return total

    def ids_in_use(self, session: Session, ids: Sequence[str]) -> set[str]:
        """Which of these ids a record part or an acquisition already has (ids are unique
        across the catalog)."""
        found: set[str] = set()
        wanted = list(ids)
        for table in (_t(RecordPartRow), _t(AcquisitionRow)):
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                found.update(_run(session, sa.select(table.c.id).where(table.c.id.in_(chunk))).scalars())
        return found

    def records_holding(self, session: Session, sha256: str) -> list[str]:
        """Ids of the records that hold an artifact, oldest first."""
        table = _t(RecordArtifactRow)
        query = sa.select(table.c.record_id).where(table.c.sha256 == sha256).order_by(table.c.record_id)
        return list(_run(session, query).scalars())

    def holders(self, session: Session, sha256s: Iterable[str]) -> dict[str, list[str]]:
        """:meth:`records_holding` of many artifacts at once: the ids of the records holding
        each, oldest first (an artifact no record holds is left out)."""
        table = _t(RecordArtifactRow)
        found: dict[str, list[str]] = {}
        for chunk in _chunks(sha256s):
            query = sa.select(table.c.sha256, table.c.record_id).where(table.c.sha256.in_(chunk))
            for row in _run(session, query):
                found.setdefault(row.sha256, []).append(row.record_id)
        for ids in found.values():
            ids.sort()
        return found

    def held_by(self, session: Session, record_ids: Iterable[str]) -> dict[str, list[str]]:
        """:meth:`artifacts_of` of many records at once (every record given is a key)."""
        table = _t(RecordArtifactRow)
        found: dict[str, list[str]] = {}
        for chunk in _chunks(record_ids):
            found.update((record_id, []) for record_id in chunk)
            query = (
                sa.select(table.c.record_id, table.c.sha256)
                .where(table.c.record_id.in_(chunk))
                .order_by(table.c.record_id, table.c.position)
            )
            for row in _run(session, query):
                found[row.record_id].append(row.sha256)
        return found

    def tags_of(self, session: Session, record_ids: Iterable[str]) -> dict[str, set[str]]:
        """The tags of each of these records (every record given is a key)."""
        table = _t(RecordTagRow)
        found: dict[str, set[str]] = {}
        for chunk in _chunks(record_ids):
            found.update((record_id, set()) for record_id in chunk)
            query = sa.select(table.c.record_id, table.c.tag).where(table.c.record_id.in_(chunk))
            for row in _run(session, query):
                found[row.record_id].add(row.tag)
        return found

    # -- records -----------------------------------------------------------------------------

    def artifacts_of(self, session: Session, record_id: str) -> list[str]:
        """SHA-256 of every artifact on a record, in the order they were attached."""
        table = _t(RecordArtifactRow)
        query = sa.select(table.c.sha256).where(table.c.record_id == record_id).order_by(table.c.position)
        return list(_run(session, query).scalars())

    def record_exists(self, session: Session, record_id: str) -> bool:
        """Tell whether a record with this id exists."""
        table = _t(RecordRow)
        return _run(session, sa.select(table.c.id).where(table.c.id == record_id)).first() is not None

    def add_record(self, session: Session, record: model.EvidenceRecord) -> None:
        """Insert a new record with its own columns and tags (parts are added separately)."""
        _insert(session, RecordRow, **record_row(record))
        for tag in record.tags:
            _insert(session, RecordTagRow, record_id=record.id, tag=tag)

    def add_tags(self, session: Session, record_id: str, tags: Sequence[str]) -> list[str]:
        """Add tags a record does not have yet; return those added."""
        if not tags:
            return []
        table = _t(RecordTagRow)
        have = set(_run(session, sa.select(table.c.tag).where(table.c.record_id == record_id)).scalars())
        added = sorted(set(tags) - have)
        for tag in added:
            _insert(session, RecordTagRow, record_id=record_id, tag=tag)
        return added

    def attach_artifact(self, session: Session, record_id: str, entry: model.RecordArtifact) -> bool:
        """Put an artifact on a record unless it is there already; return True when attached."""
        table = _t(RecordArtifactRow)
        held = list(_run(session, sa.select(table.c.sha256).where(table.c.record_id == record_id)).scalars())
        if entry.artifact.sha256 in held:
            return False
        _insert(session, RecordArtifactRow, **record_artifact_row(record_id, entry, len(held)))
        return True

    def add_acquisition(
        self, session: Session, record_id: str, acquisition: model.Acquisition, custody_seq: int, position: int = 0
    ) -> None:
        """Record an acquisition on a record, tied to the custody event that logged it (the
        *position*-th that event logged)."""
        _insert(session, AcquisitionRow, **acquisition_row(record_id, acquisition, custody_seq, position))

    def earlier_capture(
        self, session: Session, *, platform_key: str | None, requested_url: str | None, record_id: str | None = None
    ) -> tuple[str, str, str] | None:
        """The newest successful capture of the same item: ``(record id, main artifact SHA-256,
        acquisition id)``.

        The same item is the same extractor and platform id when both are known, else the same
        requested URL.  With *record_id*, only captures on that record count.
        """
        table = _t(AcquisitionRow)
        if platform_key is not None:
            same = table.c.platform_key == platform_key
        elif requested_url is not None:
            same = table.c.requested_url == requested_url
        else:
            return None
        query = (
            sa.select(table.c.record_id, table.c.artifact_sha256, table.c.id)
            .where(
                same,
                table.c.outcome == model.Outcome.SUCCEEDED.value,
                table.c.method == model.AcquisitionMethod.CAPTURED_FROM_URL.value,
                table.c.artifact_sha256.is_not(None),
            )
            .order_by(table.c.custody_seq.desc())
            .limit(1)
        )
        if record_id is not None:
            query = query.where(table.c.record_id == record_id)
        row = _run(session, query).first()
        return None if row is None else (str(row.record_id), str(row.artifact_sha256), str(row.id))

    def record_with_report(self, session: Session, identity: str) -> str | None:
        """The record holding a report with this identity, if any."""
        table = _t(RecordPartRow)
        query = sa.select(table.c.record_id).where(table.c.kind == "report", table.c.identity == identity).limit(1)
        found = _run(session, query).scalar()
        return None if found is None else str(found)

    def add_part(self, session: Session, record_id: str, kind: str, part: Any, custody_seq: int) -> None:
        """Add a report, note, flag, relation, claim or assessment to a record."""
        if not isinstance(part, PART_KINDS[kind]):
            raise TypeError(f"a {kind} part must be a {PART_KINDS[kind].__name__}")
        table = _t(RecordPartRow)
        position = _run(
            session,
            sa.select(sa.func.count()).select_from(table).where(table.c.record_id == record_id, table.c.kind == kind),
        ).scalar_one()
        _insert(session, RecordPartRow, **part_row(record_id, kind, part, custody_seq, position))

    def report(self, session: Session, report_id: str) -> tuple[str, model.Report] | None:
        """The record holding a report, and the report, by the report's id."""
        table = _t(RecordPartRow)
        row = _run(
            session,
            sa.select(table.c.record_id, table.c.body).where(table.c.id == report_id, table.c.kind == "report"),
        ).first()
        return None if row is None else (str(row.record_id), structure(_json_body(row.body), model.Report))

    def reports(self, session: Session) -> Iterator[tuple[str, model.Report]]:
        """``(record id, report)`` of every report, in the order they were catalogued."""
        table = _t(RecordPartRow)
        query = (
            sa.select(table.c.record_id, table.c.body)
            .where(table.c.kind == "report")
            .order_by(table.c.custody_seq, table.c.position)
            .execution_options(yield_per=1000)
        )
        for row in _run(session, query):
            yield str(row.record_id), structure(_json_body(row.body), model.Report)

    def captures(self, session: Session) -> Iterator[tuple[str, model.Acquisition]]:
        """``(record id, acquisition)`` of every successful capture from a URL."""
        table = _t(AcquisitionRow)
        query = sa.select(table.c.record_id, table.c.body).where(
            table.c.method == model.AcquisitionMethod.CAPTURED_FROM_URL.value, table.c.outcome == "succeeded"
        )
        for row in _run(session, query):
            yield str(row.record_id), structure(_json_body(row.body), model.Acquisition)

    def move_report(self, session: Session, report_id: str, record_id: str, custody_seq: int) -> None:
        """Put a report on another record, after the reports it holds (see ``report.linked``).

        After the *last* of them, not at their count: a record that a report left has a gap in
        its positions, and a count would give the newcomer the position of one already there
        (their order would then differ from the custody log's)."""
        table = _t(RecordPartRow)
        position = _run(
            session,
            sa.select(sa.func.coalesce(sa.func.max(table.c.position) + 1, 0)).where(
                table.c.record_id == record_id, table.c.kind == "report"
            ),
        ).scalar_one()
        _run(
            session,
            sa.update(table)
            .where(table.c.id == report_id)
            .values(record_id=record_id, position=position, custody_seq=custody_seq),
        )

    def search_reports(
        self,
        session: Session,
        *,
        text: str,
        terms: Sequence[tuple[str, str]],
        since: dt.datetime | None,
        limit: int | None,
        offset: int = 0,
    ) -> list[tuple[str, model.Report]]:
        """``(record id, report)`` of the reports holding every word of *text* (any report when
        it has none) and every ``(kind, key)`` term, searched by time at or after *since*; best
        match first on SQLite (FTS5 rank), then newest first."""
        from evidence_catalog.store.search import FTS_TABLE, fts_query

        part, index, term = _t(RecordPartRow), _t(ReportIndexRow), _t(ReportTermRow)
        query = sa.select(part.c.record_id, part.c.body).join(index, index.c.part_id == part.c.id)
        for kind, value in terms:
            query = query.where(
                sa.exists().where(term.c.part_id == part.c.id, term.c.kind == kind, term.c.value == value)
            )
        if since is not None:
            query = query.where(index.c.at >= since)
        match = fts_query(text)
        if match is not None and self.engine.dialect.name == "sqlite":
            fts = sa.table(FTS_TABLE, sa.column("rowid", sa.Integer))
            query = (
                query.join(fts, fts.c.rowid == index.c.num)
                .where(sa.text(f"{FTS_TABLE} MATCH :match").bindparams(match=match))
                .order_by(sa.literal_column(f"{FTS_TABLE}.rank"))
            )
        elif match is not None:  # no FTS5: the same words, as runs in report_index.words
            from evidence_catalog.store.search import word_patterns

            for pattern in word_patterns(text) or ():
                query = query.where(index.c.words.like(pattern))
        query = query.order_by(index.c.at.desc(), index.c.num.desc())
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        return [(str(row.record_id), structure(_json_body(row.body), model.Report)) for row in _run(session, query)]

    def record_ids(self, session: Session, *, after: str | None = None, limit: int | None = None) -> list[str]:
        """Record ids, oldest first (ids are time-ordered): all of them, or a page of at most
        *limit* ids after the id *after* (a keyset page: as fast on the millionth page as on
        the first)."""
        query = select(RecordRow.id).order_by(col(RecordRow.id))
        if after is not None:
            query = query.where(col(RecordRow.id) > after)
        if limit is not None:
            query = query.limit(limit)
        return list(session.exec(query))

    def record(self, session: Session, record_id: str) -> model.EvidenceRecord:
        """Assemble a whole record from its rows; :class:`ValidationError` if a row is invalid."""
        try:
            return self._assemble(session, record_id)
        except NotFoundError:
            raise
        except EvidenceError as exc:
            raise ValidationError(str(exc), where=f"record {record_id}") from exc
        except (TypeError, ValueError, KeyError) as exc:  # a row edited into nonsense
            raise ValidationError(f"{type(exc).__name__}: {exc}", where=f"record {record_id}") from exc

    def records(
        self, session: Session, record_ids: Sequence[str], *, batch: int = 500
    ) -> Iterator[model.EvidenceRecord]:
        """Whole records in the order of *record_ids*, read a batch at a time (a few queries per
        batch instead of a few per record: an export of many records is bound by the disk, not
        by the queries).  Each record is what :meth:`record` returns; a record whose rows do not
        make a valid record is a :class:`ValidationError` naming it."""
        for start in range(0, len(record_ids), batch):
            ids = list(record_ids[start : start + batch])
            rows = {r.id: r for r in session.exec(select(RecordRow).where(col(RecordRow.id).in_(ids)))}
            entries: dict[str, list[Any]] = {i: [] for i in ids}
            for entry, artifact in session.exec(
                select(RecordArtifactRow, ArtifactRow)
                .join(ArtifactRow, col(ArtifactRow.sha256) == col(RecordArtifactRow.sha256))
                .where(col(RecordArtifactRow.record_id).in_(ids))
                .order_by(col(RecordArtifactRow.record_id), col(RecordArtifactRow.position))
            ):
                entries[entry.record_id].append((entry, artifact))
            acquisitions: dict[str, list[Any]] = {i: [] for i in ids}
            for acquisition in session.exec(
                select(AcquisitionRow)
                .where(col(AcquisitionRow.record_id).in_(ids))
                .order_by(
                    col(AcquisitionRow.record_id),
                    col(AcquisitionRow.custody_seq),
                    col(AcquisitionRow.position),
                    col(AcquisitionRow.id),
                )
            ):
                acquisitions[acquisition.record_id].append(acquisition)
            tags: dict[str, list[str]] = {i: [] for i in ids}
            for tag_row in session.exec(select(RecordTagRow).where(col(RecordTagRow.record_id).in_(ids))):
                tags[tag_row.record_id].append(tag_row.tag)
            parts: dict[str, list[Any]] = {i: [] for i in ids}
            for part in session.exec(
                select(RecordPartRow)
                .where(col(RecordPartRow.record_id).in_(ids))
                .order_by(col(RecordPartRow.record_id), col(RecordPartRow.kind), col(RecordPartRow.position))
            ):
                parts[part.record_id].append(part)
            for record_id in ids:
                row = rows.get(record_id)
                if row is None:
                    raise NotFoundError(f"no record with id {record_id}")
                try:
                    yield _build_record(
                        row, entries[record_id], acquisitions[record_id], tags[record_id], parts[record_id]
                    )
                except EvidenceError as exc:
                    raise ValidationError(str(exc), where=f"record {record_id}") from exc
                except (TypeError, ValueError, KeyError) as exc:
                    raise ValidationError(f"{type(exc).__name__}: {exc}", where=f"record {record_id}") from exc

    def _assemble(self, session: Session, record_id: str) -> model.EvidenceRecord:
        row = session.get(RecordRow, record_id)
        if row is None:
            raise NotFoundError(f"no record with id {record_id}")
        entries = session.exec(
            select(RecordArtifactRow, ArtifactRow)
            .join(ArtifactRow, col(ArtifactRow.sha256) == col(RecordArtifactRow.sha256))
            .where(RecordArtifactRow.record_id == record_id)
            .order_by(col(RecordArtifactRow.position))
        ).all()
        acquisitions = session.exec(
            select(AcquisitionRow)
            .where(AcquisitionRow.record_id == record_id)
            .order_by(col(AcquisitionRow.custody_seq), col(AcquisitionRow.position), col(AcquisitionRow.id))
        ).all()
        tags = session.exec(select(RecordTagRow.tag).where(RecordTagRow.record_id == record_id)).all()
        parts = session.exec(
            select(RecordPartRow)
            .where(RecordPartRow.record_id == record_id)
            .order_by(col(RecordPartRow.kind), col(RecordPartRow.position))
        ).all()
        return _build_record(row, entries, acquisitions, tags, parts)


def _build_record(
    row: Any, entries: Sequence[Any], acquisitions: Sequence[Any], tags: Sequence[str], part_rows: Sequence[Any]
) -> model.EvidenceRecord:
    """A record from its rows: its own, (record_artifact, artifact) pairs and acquisitions in
    order, its tags, and its parts ordered by kind and position."""
    parts: dict[str, list[Any]] = {name: [] for name in _PART_FIELDS.values()}
    for part in part_rows:
        parts[_PART_FIELDS[part.kind]].append(structure(part.body, PART_KINDS[part.kind]))
    return model.EvidenceRecord(
        id=row.id,
        created_at=aware(row.created_at),
        created_by=structure(row.created_by, model.Agent),
        title=row.title,
        artifacts=[
            model.RecordArtifact(
                artifact=_artifact_from_row(artifact),
                role=entry.role,
                derived_from=entry.derived_from or (),
                derivation=entry.derivation,
                version_of=entry.version_of,
            )
            for entry, artifact in entries
        ],
        acquisitions=[structure(a.body, model.Acquisition) for a in acquisitions],
        tags=tags,
        **parts,
    )


def _item_key(acquisition: model.Acquisition) -> str | None:
    if acquisition.method is not model.AcquisitionMethod.CAPTURED_FROM_URL:
        return None
    from evidence_catalog.capture.ytdlp import item_key

    return item_key(acquisition.extractor, acquisition.platform_id)


def artifact_row(artifact: model.Artifact, at: dt.datetime) -> dict[str, Any]:
    """The ``artifact`` row describing stored bytes, catalogued at *at*."""
    digests = artifact.digests
    return {
        "sha256": digests.sha256,
        "size": artifact.size,
        "media_type": artifact.media_type,
        "md5": digests.md5,
        "sha1": digests.sha1,
        "sha512": digests.sha512,
        "blake2b": digests.blake2b,
        "extracted": None if artifact.metadata is None else unstructure(artifact.metadata),
        "stored_at": at,
    }


def record_row(record: model.EvidenceRecord) -> dict[str, Any]:
    """The ``record`` row of a record's own columns."""
    return {
        "id": record.id,
        "created_at": record.created_at,
        "created_by": unstructure(record.created_by),
        "title": record.title,
    }


def record_artifact_row(record_id: str, entry: model.RecordArtifact, position: int) -> dict[str, Any]:
    """The ``record_artifact`` row putting an artifact on a record at *position*."""
    return {
        "record_id": record_id,
        "sha256": entry.artifact.sha256,
        "position": position,
        "role": entry.role.value,
        "derived_from": list(entry.derived_from) or None,
        "derivation": entry.derivation,
        "version_of": entry.version_of,
    }


def acquisition_row(
    record_id: str, acquisition: model.Acquisition, custody_seq: int, position: int = 0
) -> dict[str, Any]:
    """The ``acquisition`` row of an acquisition on a record, logged by event *custody_seq*
    (the *position*-th that event logged)."""
    return {
        "id": acquisition.id,
        "record_id": record_id,
        "artifact_sha256": acquisition.artifact_sha256,
        "method": acquisition.method.value,
        "started_at": acquisition.started_at,
        "custody_seq": custody_seq,
        "requested_url": acquisition.requested_url,
        "platform_key": _item_key(acquisition),
        "outcome": acquisition.outcome.value,
        "position": position,
        "body": unstructure(acquisition),
    }


def part_row(record_id: str, kind: str, part: Any, custody_seq: int, position: int) -> dict[str, Any]:
    """The ``record_part`` row of a report, note, flag, relation, claim or assessment."""
    return {
        "id": getattr(part, "id", None) or model.new_id(),
        "record_id": record_id,
        "kind": kind,
        "identity": getattr(part, "identity", None),
        "position": position,
        "custody_seq": custody_seq,
        "body": unstructure(part),
    }


class EventDraft(TypedDict):
    """An event's content before it is linked into the log (see :meth:`append_events`)."""

    at: dt.datetime
    actor: model.Agent
    action: str
    subject: str
    details: dict[str, Any]


_ROW_TYPES: dict[str, Any] = {
    "artifact": ArtifactRow,
    "record": RecordRow,
    "record_tag": RecordTagRow,
    "record_artifact": RecordArtifactRow,
    "acquisition": AcquisitionRow,
    "record_part": RecordPartRow,
}


def _t(row_type: type[Any]) -> sa.Table:
    """The table behind a row class (the write path uses SQLAlchemy Core: the ORM's unit of
    work costs more than the inserts themselves for a catalog of many small files)."""
    table: sa.Table = row_type.__table__
    return table


def _run(session: Session, statement: sa.Executable, rows: list[dict[str, Any]] | None = None) -> sa.CursorResult[Any]:
    return session.connection().execute(statement, rows)


def _chunks(values: Iterable[str], size: int = 500) -> Iterator[list[str]]:
    """Distinct *values* in lists of at most *size* (for ``IN (...)``: SQLite allows at most
    32,766 parameters a statement, older builds 999)."""
    distinct = list(dict.fromkeys(values))
    for start in range(0, len(distinct), size):
        yield distinct[start : start + size]


def _insert(session: Session, row_type: type[Any], **values: Any) -> None:
    # Values as parameters, not baked into the statement: one compiled INSERT per table and
    # set of columns, reused (building and compiling a statement per row was most of an add).
    _run(session, sa.insert(_t(row_type)), [values])


def _artifact_from_row(row: Any) -> model.Artifact:
    return model.Artifact(
        digests=model.Digests(sha256=row.sha256, md5=row.md5, sha1=row.sha1, sha512=row.sha512, blake2b=row.blake2b),
        size=row.size,
        media_type=row.media_type,
        metadata=None if row.extracted is None else structure(row.extracted, model.EmbeddedMetadata),
    )


def _json_text(text: str | None) -> Any:
    try:
        return None if text is None else json.loads(text)
    except ValueError:
        return text


def _timestamp_text(text: str | None) -> Any:
    try:
        return format_timestamp(aware(dt.datetime.fromisoformat(str(text))))
    except ValueError:
        return text


def structure_event(document: dict[str, Any]) -> model.CustodyEvent:
    """The custody event a stored document holds; :class:`ValidationError` naming the event."""
    try:
        return structure(document, model.CustodyEvent)
    except ValidationError as exc:
        raise ValidationError(exc.message, where=f"custody event {document.get('seq')}") from exc


def index_rows(
    bind: Session | sa.Connection,
    reports: Sequence[tuple[str, model.Report, dt.datetime]],
    *,
    with_words: bool = True,
) -> None:
    """Put reports -- ``(part id, report, when it was found)`` -- into the search index.

    *with_words* False leaves out ``report_index.words`` (migration 0003 runs before the
    column exists; 0006 fills it)."""
    from evidence_catalog.store.search import FTS_TABLE, fts_body, indexed_words, report_terms, search_time

    if not reports:
        return
    sqlite = (bind.get_bind() if isinstance(bind, Session) else bind).dialect.name == "sqlite"
    index, terms = _t(ReportIndexRow), _t(ReportTermRow)
    first = (bind.execute(sa.select(sa.func.max(index.c.num))).scalar() or 0) + 1
    numbered = list(enumerate(reports, start=first))
    bind.execute(
        sa.insert(index),
        [
            {
                "num": num,
                "part_id": part_id,
                "at": search_time(report, found),
                **({"words": None if sqlite else indexed_words(report)} if with_words else {}),
            }
            for num, (part_id, report, found) in numbered
        ],
    )
    term_rows = [
        {"part_id": part_id, "kind": kind, "value": value}
        for part_id, report, _ in reports
        for kind, value in report_terms(report)
    ]
    if term_rows:
        bind.execute(sa.insert(terms), term_rows)
    if sqlite:
        bind.execute(
            sa.text(f"INSERT INTO {FTS_TABLE}(rowid, body) VALUES (:num, :body)"),
            [{"num": num, "body": fts_body(report)} for num, (_, report, _) in numbered],
        )


def _indexed_reports(bind: sa.Connection, batch: int = 2000) -> Iterator[list[tuple[int, model.Report]]]:
    """Every indexed report with its ``report_index.num``, a batch at a time (keyset pages:
    memory stays bounded however many reports there are)."""
    index, part = _t(ReportIndexRow), _t(RecordPartRow)
    after = 0
    while True:
        rows = bind.execute(
            sa.select(index.c.num, part.c.body)
            .join(part, part.c.id == index.c.part_id)
            .where(index.c.num > after)
            .order_by(index.c.num)
            .limit(batch)
        ).all()
        if not rows:
            return
        yield [(num, structure(_json_body(body), model.Report)) for num, body in rows]
        after = rows[-1][0]


def fill_report_words(bind: sa.Connection) -> None:
    """Fill ``report_index.words`` for every indexed report (migrations 0006 and 0007)."""
    from evidence_catalog.store.search import indexed_words

    index = _t(ReportIndexRow)
    for reports in _indexed_reports(bind):
        bind.execute(
            sa.update(index).where(index.c.num == sa.bindparam("n")).values(words=sa.bindparam("w")),
            [{"n": num, "w": indexed_words(report)} for num, report in reports],
        )


def fill_fts(bind: sa.Connection) -> None:
    """Put every indexed report into SQLite's (empty) FTS5 table (migration 0007)."""
    from evidence_catalog.store.search import FTS_TABLE, fts_body

    for reports in _indexed_reports(bind):
        bind.execute(
            sa.text(f"INSERT INTO {FTS_TABLE}(rowid, body) VALUES (:num, :body)"),
            [{"num": num, "body": fts_body(report)} for num, report in reports],
        )


def _json_body(body: Any) -> Any:
    """A JSON column's value: parsed already, or text on a connection that did not parse it."""
    return json.loads(body) if isinstance(body, str) else body


#: SQLSTATEs of a write refused for want of the right: insufficient_privilege,
#: read_only_sql_transaction.
_CANNOT_WRITE = frozenset({"42501", "25006"})


def _first_line(error: object) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class MerkleError(ValueError):
    """A perfect subtree the Merkle tree needs is not stored."""


def _stored_subtrees(bind: Session | sa.Connection) -> merkle.SubtreeSource:
    table = _t(MerkleNodeRow)
    cache: dict[tuple[int, int], bytes] = {}

    def subtree(level: int, index: int) -> bytes:
        found = cache.get((level, index))
        if found is None:
            text = bind.execute(sa.select(table.c.hash).where(table.c.level == level, table.c.idx == index)).scalar()
            if text is None:
                raise MerkleError(f"the Merkle tree has no node at level {level}, index {index}")
            found = cache[(level, index)] = bytes.fromhex(text)
        return found

    return subtree


def _insert_nodes(bind: Session | sa.Connection, leaves: Sequence[tuple[int, bytes]]) -> None:
    """Insert leaves (index, leaf hash), in order after those stored, with every perfect subtree
    each completes."""
    if not leaves:
        return
    stored = _stored_subtrees(bind)
    # Nodes this transaction wrote, kept for its later appends: the sibling a new leaf needs
    # was, almost always, written moments before (a batch of files appends an event per file).
    # Only a session's: a connection's ``info`` outlives the transaction (it stays with the pool).
    written: dict[tuple[int, int], bytes] = bind.info.setdefault(_NODES, {}) if isinstance(bind, Session) else {}
    added: dict[tuple[int, int], bytes] = {}

    def subtree(level: int, index: int) -> bytes:
        return added.get((level, index)) or written.get((level, index)) or stored(level, index)

    for index, leaf in leaves:
        for level, position, value in merkle.completed_nodes(index, leaf, subtree):
            added[(level, position)] = value
    bind.execute(
        sa.insert(_t(MerkleNodeRow)),
        [{"level": level, "idx": index, "hash": value.hex()} for (level, index), value in added.items()],
    )
    written.update(added)


#: ``Session.info`` keys of what one write transaction appended: the log's last event, and the
#: Merkle nodes it wrote.  Only :meth:`Database.append_event` and :meth:`~Database.append_events`
#: add events, under the write lock, and a session is one transaction: nothing else moves them.
_HEAD = "log_head"
_NODES = "merkle_nodes_written"
#: ``Session.info`` key: how many events the log had before the transaction appended any.
LOG_SIZE_BEFORE = "log_size_before"


def _log_head(session: Session) -> ChainHead | None:
    """The last event of the log as this transaction sees it (read once, then kept)."""
    head: ChainHead | None = session.info.get(_HEAD)
    if head is None:
        table = _t(CustodyEventRow)
        last = _run(session, sa.select(table.c.seq, table.c.hash).order_by(table.c.seq.desc()).limit(1)).first()
        head = None if last is None else ChainHead(seq=last.seq, hash=last.hash)
    return head


def build_merkle_nodes(bind: sa.Connection) -> None:
    """Fill ``merkle_node`` from the events already in the log (migration 0005), in batches."""
    table = _t(CustodyEventRow)
    as_text = [sa.cast(table.c[name], sa.Text) for name in ("at", "actor", "details")]
    query = sa.select(table.c.seq, *as_text, table.c.action, table.c.subject, table.c.prev_hash, table.c.hash).order_by(
        table.c.seq
    )
    batch: list[tuple[int, bytes]] = []
    for row in bind.execute(query):
        batch.append((row[0] - 1, event_leaf(_event_document(tuple(row)))))
        if len(batch) == 5000:
            _insert_nodes(bind, batch)
            batch = []
    _insert_nodes(bind, batch)


def _event_document(row: tuple[Any, ...]) -> dict[str, Any]:
    """An event document from a row (seq, at, actor, details as text, action, subject,
    prev_hash, hash): damaged text is handed on as it is."""
    seq, at, actor, details, action, about, prev_hash, stored_hash = row
    return {
        "seq": seq,
        "at": _timestamp_text(at),
        "actor": _json_text(actor),
        "action": action,
        "subject": about,
        "prev_hash": prev_hash,
        "hash": stored_hash,
        "details": _json_text(details),
    }
