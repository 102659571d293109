"""The catalog database's engine: database URLs, connections, schema creation and upgrades, and
the transactions every read and write runs in.

Every write runs in one transaction that takes the catalog's one write lock first -- ``BEGIN
IMMEDIATE`` on SQLite, a transaction-level advisory lock on PostgreSQL -- so that writers queue
for it instead of failing half-way, and so that appending to the custody log (always in
:meth:`~evidence_catalog.store.log.CustodyLog.append_events`) sees the true last event: one
linear log, whichever process or machine writes.  Reads on PostgreSQL run at ``REPEATABLE READ``,
a consistent snapshot as SQLite's WAL mode gives (a verification reads the log twice and must see
the same log both times); writes at ``READ COMMITTED``, so that after waiting for the lock they
see what the writer before them committed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import threading
import urllib.parse
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlmodel import Session

from evidence_catalog.errors import CatalogDatabaseError, CatalogError, CatalogVersionError, EvidenceError, StorageError
from evidence_catalog.store.jsontext import strict_json as strict_json

MIGRATIONS = Path(__file__).parent / "migrations"


#: The newest migration.  A catalog at this revision opens without loading Alembic at all
#: (a test checks that this matches the migrations folder).
HEAD_REVISION = "0011"


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {rev.revision for rev in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}


def _create_head_schema(connection: sa.Connection) -> None:
    """Make a new catalog's schema at the newest revision in one step: every table and index
    the SQLModel tables describe, SQLite's FTS5 table or PostgreSQL's GIN index of report words,
    and the revision stamped in the table Alembic keeps it in.  That is what
    running every migration from an empty database makes (``tests/test_migrations.py`` compares
    the two, column by column and index by index), without making each earlier revision's
    tables and then altering them: a new catalog is made in about half the time.

    The statements are :func:`head_schema_statements`: made once per process for each kind of
    database, then run as they are."""
    for statement in head_schema_statements(connection.dialect):
        connection.exec_driver_sql(statement)
    connection.execute(sa.insert(_VERSION_TABLE).values(version_num=HEAD_REVISION))


#: The table Alembic records a database's revision in, as Alembic makes it
#: (``alembic.runtime.migration``: its name, column and primary key's name are Alembic's).
_VERSION_TABLE = sa.Table(
    "alembic_version",
    sa.MetaData(),
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)

#: The statements of :func:`head_schema_statements`, by database kind and server version.
_HEAD_SCHEMA: dict[tuple[str, Any], tuple[str, ...]] = {}
_HEAD_SCHEMA_LOCK = threading.Lock()


def head_schema_statements(dialect: sa.Dialect) -> tuple[str, ...]:
    """The DDL that makes a new catalog's tables in an empty database of *dialect*'s kind:
    ``CREATE TABLE`` and ``CREATE INDEX`` of each SQLModel table in dependency order (what
    ``SQLModel.metadata.create_all`` runs), the full-text table or index, and Alembic's
    version table.  Compiled once per process for each kind of database and server version
    (SQLAlchemy compiles DDL anew at every ``create_all``: most of what making a catalog cost)."""
    key = (dialect.name, getattr(dialect, "server_version_info", None))
    with _HEAD_SCHEMA_LOCK:
        known = _HEAD_SCHEMA.get(key)
        if known is not None:
            return known
        from sqlalchemy.schema import CreateIndex, CreateTable
        from sqlmodel import SQLModel

        from evidence_catalog.store import tables  # noqa: F401  (registers the tables on the metadata)
        from evidence_catalog.store.search import FTS_CREATE, PG_INDEX_CREATE

        statements: list[str] = []
        for table in SQLModel.metadata.sorted_tables:
            statements.append(str(CreateTable(table).compile(dialect=dialect)).strip())
            for index in sorted(table.indexes, key=lambda index: index.name or ""):
                statements.append(str(CreateIndex(index).compile(dialect=dialect)).strip())
        if dialect.name == "sqlite":
            statements.append(FTS_CREATE)
        elif dialect.name == "postgresql":
            statements.append(PG_INDEX_CREATE)
        statements.append(str(CreateTable(_VERSION_TABLE).compile(dialect=dialect)).strip())
        _HEAD_SCHEMA[key] = tuple(statements)
        return _HEAD_SCHEMA[key]


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


def check_database_url(url: str | sa.URL, *, where: str = "database") -> sa.URL:
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


def sqlite_url(path: Path, *, read_only: bool = False) -> sa.URL:
    """The URL of the SQLite database file *path*, built from parts: a path is never parsed as a
    URL (a ``?``, ``#`` or ``%41`` in a folder name must not send the database somewhere else)."""
    where = os.path.abspath(path)
    if not read_only:
        return sa.URL.create("sqlite", database=where)
    # On read-only media nobody can be writing, and SQLite cannot create its WAL index there:
    # the database is opened as immutable (a catalog closed cleanly has no WAL to miss).  Where
    # only this account cannot write, another process may be adding: plain read-only mode reads
    # its WAL and sees its commits.
    mode = {"immutable": "1"} if on_read_only_media(path.parent) else {"mode": "ro"}
    uri = "file:" + urllib.parse.quote(os.fsencode(where))
    return sa.URL.create("sqlite", database=uri, query={**mode, "uri": "true"})


def on_read_only_media(directory: Path) -> bool:
    """Whether *directory* is on a file system mounted read-only."""
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def database_error(exc: BaseException, *, where: str | None = None) -> CatalogDatabaseError:
    """The library's error for an error the database answered with (SQLAlchemy's
    ``DatabaseError``, or the driver's own): a server's answer in its words, else a database
    file that cannot be read."""
    orig = getattr(exc, "orig", exc)
    if getattr(orig, "sqlstate", None):  # a database server's answer (PostgreSQL)
        text = str(orig).strip()
        return CatalogDatabaseError(
            f"catalog database server: {text.splitlines()[0] if text else repr(orig)}", where=where
        )
    return CatalogDatabaseError(
        f"catalog database cannot be read ({orig}): it may be corrupt, or its disk full or unreadable", where=where
    )


@contextmanager
def database_errors(error: Callable[[str], EvidenceError]) -> Iterator[None]:
    """Raise ``error(reason)`` -- one of the library's errors, *reason* the database's own words
    -- instead of an error the database reported inside the block (SQLAlchemy's
    ``DatabaseError``), so that no caller outside the store needs to know SQLAlchemy's."""
    try:
        yield
    except DatabaseError as exc:
        raise error(str(exc.orig)) from exc


def _make_engine(url: str | sa.URL, *, read_only: bool = False) -> sa.Engine:
    url = sa.make_url(url)
    if url.get_backend_name() == "postgresql":
        return _make_pg_engine(url, read_only=read_only)
    engine = sa.create_engine(url, json_deserializer=strict_json)
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
        json_deserializer=strict_json,
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


#: Every catalog database made in this process (weakly: a closed and dropped one goes).
_OPEN_DATABASES: weakref.WeakSet[Connections] = weakref.WeakSet()
#: In a forked child: the parent's lookup connections, kept so that they are never closed (that
#: would end the parent's session) nor collected with a warning that they were left open.
_INHERITED: list[Any] = []
#: Seconds :meth:`Connections.close` waits for a lookup still running on the lookups' own
#: connection before it leaves that lookup to close it.
CLOSE_WAIT = 10.0


def _after_fork_in_child() -> None:
    """A process forked with catalogs open (``multiprocessing`` on Linux does this) must not use
    its parent's database connections: two processes on one socket garble each other's
    statements.  Each open catalog's connections are let go of in the child, not closed."""
    for database in list(_OPEN_DATABASES):
        database._forget_connections()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Connections:
    """A catalog database's engine and connections: made or opened (and upgraded), read and
    written in transactions, closed.  What is kept in it is read and written by the classes
    :class:`~evidence_catalog.store.database.CatalogDatabase` is made of."""

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
    def create(cls, url: str | sa.URL, *, where: str | None = None) -> Self:
        """Create the newest schema in an empty database (:func:`_create_head_schema`).

        A database that already holds a catalog, or any other table (or that cannot be
        reached), is refused, naming it.
        """
        db = cls(_make_engine(url))
        others: list[str] = []
        try:
            # Looked at and made under the write lock: of two inits racing for one empty
            # database, the second finds the first's schema and is refused (it must not go on
            # to log a second creation into the first's log, nor drop its tables on failure).
            # Tables of anything else are refused too: the schema is made without looking
            # for each table first, and a catalog never takes over another program's table.
            with db._writer.begin() as connection:
                others = sorted(sa.inspect(connection).get_table_names())
                if not others:
                    _create_head_schema(connection)
        except (DatabaseError, OperationalError) as exc:
            db.close()
            raise StorageError(
                f"cannot reach the catalog database ({first_line(exc.orig)})", where=where or safe_url(url)
            ) from exc
        except BaseException:
            db.close()
            raise
        if "alembic_version" in others:
            db.close()
            raise CatalogError(
                "the database already holds a catalog: give each catalog an empty database of its own",
                where=where or safe_url(url),
            )
        if others:
            db.close()
            shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
            raise CatalogError(
                f"the database is not empty (it holds the tables {shown}): give each catalog an empty database"
                " of its own",
                where=where or safe_url(url),
            )
        return db

    def drop_schema(self) -> None:
        """Remove every table :meth:`create` made (undoing an ``init`` that failed later on); a
        :class:`StorageError` when the database cannot do it."""
        from sqlmodel import SQLModel

        from evidence_catalog.store.search import FTS_TABLE

        with database_errors(lambda reason: StorageError(f"the catalog's tables could not be removed ({reason})")):
            with self._writer.begin() as connection:
                SQLModel.metadata.drop_all(connection)
                connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
                if connection.dialect.name == "sqlite":  # the full-text table (PostgreSQL's index went with its table)
                    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {FTS_TABLE}")

    @classmethod
    def open(cls, url: str | sa.URL, *, where: str, read_only: bool = False) -> Self:
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
                    f"cannot reach the catalog database ({first_line(exc.orig)}); nothing was changed", where=where
                ) from exc
            raise database_error(exc, where=where) from exc
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
                f" ({first_line(exc.orig)}); nothing was changed",
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
        damaged file) is a :class:`StorageError`; other driver errors are a
        :class:`CatalogDatabaseError`, as every other read raises them.  A dropped connection is not used again:
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
                raise self.unreadable(exc) from exc
            raise database_error(exc) from exc

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session (a consistent snapshot on SQLite in WAL mode).

        A database that cannot be read for the moment (a server gone, a dropped connection, a
        lock held past the timeout) is a :class:`StorageError`; one that answers with another
        error (a damaged file, a server's refusal), a :class:`CatalogDatabaseError`.
        """
        try:
            with Session(self.engine) as session:
                yield session
        except OperationalError as exc:
            raise self.unreadable(exc.orig or exc) from exc
        except DatabaseError as exc:  # a damaged database, or a server's refusal
            raise database_error(exc) from exc

    def unreadable(self, error: BaseException) -> EvidenceError:
        """The error for a read the driver refused with *error*: a :class:`StorageError` (the
        database cannot be read for the moment), or, when it refused a value that is not UTF-8
        text (SQLite stores any bytes as text), a :class:`CatalogDatabaseError` naming the rows
        that hold such values (the driver names only the column), which it keeps for ``verify``."""
        reason = first_line(error)
        if "UTF-8" in reason:
            from evidence_catalog.store.undecodable import UndecodableError, described, undecodable_values

            with suppress(Exception):  # else the driver's own words
                values = undecodable_values(self.engine)
                if values:
                    return UndecodableError(f"catalog database cannot be read ({described(values)})", values)
        return StorageError(f"catalog database could not be read ({reason})")

    @contextmanager
    def write(self, *, sealed: bool = False) -> Iterator[Session]:
        """A session whose work commits as one transaction, or not at all.

        A transaction that appends custody events must end with a signed checkpoint of the log,
        which the caller writes: *sealed* says it does (the catalog's operations open their
        transactions with ``Context.write()``, which does).  Events appended in a transaction
        that is not sealed are refused with a :class:`CatalogError` and nothing is written: a
        script writing through the database directly would otherwise leave an unsigned tail
        that ``verify`` reports and every later change refuses to sign over.

        A database that cannot be written (read-only, locked past the timeout, disk full) is a
        :class:`StorageError`; one that answers with another error (a damaged file, a server's
        refusal), a :class:`CatalogDatabaseError`.  The transaction is rolled back.
        """
        try:
            with Session(self._writer) as session, session.begin():
                yield session
                if not sealed and session.info.get("appended"):
                    raise CatalogError(
                        "custody events are appended only by the catalog's operations (the methods of"
                        " Catalog), which end the transaction with a signed checkpoint; nothing was written"
                    )
        except OperationalError as exc:
            if "UTF-8" in first_line(exc.orig):  # a damaged value met, not a write refused: named
                raise self.unreadable(exc.orig or exc) from exc
            raise StorageError(f"catalog database could not be written ({exc.orig}); nothing was changed") from exc
        except DatabaseError as exc:
            # PostgreSQL: an account allowed only to read, or a read-only server or session.
            if getattr(exc.orig, "sqlstate", None) not in _CANNOT_WRITE:
                raise database_error(exc) from exc
            raise StorageError(
                f"catalog database could not be written ({first_line(exc.orig)}); nothing was changed"
            ) from exc


#: SQLSTATEs of a write refused for want of the right: insufficient_privilege,
#: read_only_sql_transaction.
_CANNOT_WRITE = frozenset({"42501", "25006"})


def first_line(error: object) -> str:
    """The first line of a database's error message (PostgreSQL's run on for several)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


# -- statements (the write path uses SQLAlchemy Core: the ORM's unit of work costs more than the
# inserts themselves for a catalog of many small files) ----------------------------------------


def table_of(row_type: type[Any]) -> sa.Table:
    """The table behind a row class."""
    table: sa.Table = row_type.__table__
    return table


def execute(
    session: Session, statement: sa.Executable, rows: list[dict[str, Any]] | None = None
) -> sa.CursorResult[Any]:
    """Run a Core statement in the session's transaction (with *rows* as its parameters)."""
    return session.connection().execute(statement, rows)


def chunks(values: Iterable[str], size: int = 500) -> Iterator[list[str]]:
    """Distinct *values* in lists of at most *size* (for ``IN (...)``: SQLite allows at most
    32,766 parameters a statement, older builds 999)."""
    distinct = list(dict.fromkeys(values))
    for start in range(0, len(distinct), size):
        yield distinct[start : start + size]


def json_body(body: Any) -> Any:
    """A JSON column's value: parsed already, or text on a connection that did not parse it."""
    return json.loads(body) if isinstance(body, str) else body
