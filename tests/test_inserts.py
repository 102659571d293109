"""``inserts.insert_many``: on SQLite, rows go straight to the driver, each value through the bind
processor SQLAlchemy would have applied.  Whatever the rows hold, the database must hold the
very same values, of the very same SQLite types, as after SQLAlchemy's own insert of them, and
the driver's errors must reach callers as SQLAlchemy's."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import sqlmodel
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event as sa_event

from evidence_catalog import Catalog
from evidence_catalog.errors import StorageError
from evidence_catalog.store import engine as engine_module
from evidence_catalog.store import tables  # noqa: F401  (the tables are defined on import)
from evidence_catalog.store.engine import head_schema_statements
from evidence_catalog.store.inserts import _compiled_insert, insert_many
from evidence_catalog.store.jsontext import JSONText
from evidence_catalog.store.tables import MerkleNodeRow

from .strategies import timestamps

TABLES = {t.name: t for t in sqlmodel.SQLModel.metadata.sorted_tables}
#: Every table the write path inserts into through insert_many.
WRITTEN = (
    "artifact",
    "record",
    "record_tag",
    "record_artifact",
    "acquisition",
    "record_part",
    "custody_event",
    "merkle_node",
    "report_index",
    "report_term",
    "perceptual_hash",
    "checkpoint",
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def _values(column: sa.Column[Any]) -> st.SearchStrategy[Any]:
    """Values of the column's Python type (and ``None`` where it may be null)."""
    kind = column.type
    if isinstance(kind, sa.JSON):
        found: st.SearchStrategy[Any] = json_values
    elif isinstance(kind, sa.DateTime):
        found = timestamps | st.datetimes()
    elif isinstance(kind, sa.Boolean):
        found = st.booleans()
    elif isinstance(kind, sa.Integer):
        found = st.integers(min_value=-(2**63), max_value=2**63 - 1)
    elif isinstance(kind, sa.LargeBinary):
        found = st.binary(max_size=16)
    elif isinstance(kind, sa.Float):
        found = st.floats(allow_nan=False)
    else:
        found = st.text(max_size=20)
    return st.none() | found if column.nullable else found


@st.composite
def table_rows(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]]]:
    """A table the write path inserts into, and rows for it: every column given (an
    autoincremented key left out or not), in an order of the draw's choosing."""
    name = draw(st.sampled_from(WRITTEN))
    table = TABLES[name]
    columns = [
        c
        for c in table.columns
        if not (
            c.primary_key and c.autoincrement is True and len(table.primary_key) == 1 and isinstance(c.type, sa.Integer)
        )
    ]
    columns = draw(st.permutations(columns))
    count = draw(st.integers(min_value=1, max_value=4))
    rows: list[dict[str, Any]] = []
    for _ in range(count):
        # A value may be the very object the row before gave (insert_many processes it once),
        # and a JSON column's value its text made already (JSONText).
        row = {c.name: rows[-1][c.name] if rows and draw(st.booleans()) else draw(_values(c)) for c in columns}
        for column in columns:
            if isinstance(column.type, sa.JSON) and type(row[column.name]) is not JSONText and draw(st.booleans()):
                row[column.name] = JSONText(row[column.name])
        rows.append(row)
    unique = _unique_columns(table)
    for index, row in enumerate(rows):  # distinct keys (the two inserts must both succeed)
        for key in unique:
            if key.name in row:
                row[key.name] = _distinct(key, index)
    return name, rows


def _unique_columns(table: sa.Table) -> list[sa.Column[Any]]:
    """The columns of *table*'s primary key, unique constraints and unique indexes."""
    found = list(table.primary_key)
    found += [c for c in table.columns if c.unique]
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint):
            found += list(constraint.columns)
    for index in table.indexes:
        if index.unique:
            found += [c for c in index.columns if isinstance(c, sa.Column)]
    return list(dict.fromkeys(found))


def _distinct(column: sa.Column[Any], index: int) -> Any:
    return index + 1 if isinstance(column.type, sa.Integer) else f"key-{index}"


def _database(path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        for statement in head_schema_statements(connection.dialect):
            connection.exec_driver_sql(statement)
    return engine


def _stored(path: Path, table: str) -> list[tuple[Any, ...]]:
    """Every value of *table* as SQLite holds it, with its SQLite type."""
    with sqlite3.connect(path) as connection:
        columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
        picked = ", ".join(f"{c}, typeof({c})" for c in columns)
        return connection.execute(f"SELECT {picked} FROM {table} ORDER BY rowid").fetchall()


@given(table_rows())
def test_the_driver_path_stores_what_sqlalchemy_stores(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[str, list[dict[str, Any]]]
) -> None:
    name, rows = case
    folder = tmp_path_factory.mktemp("inserts")
    ours, theirs = _database(folder / "ours.db"), _database(folder / "theirs.db")
    table = TABLES[name]
    with sqlmodel.Session(ours) as session, session.begin():
        insert_many(session, table, rows)
    with theirs.begin() as connection:
        connection.execute(
            sa.insert(table), [{k: v.value if type(v) is JSONText else v for k, v in r.items()} for r in rows]
        )
    ours.dispose()
    theirs.dispose()
    assert _stored(folder / "ours.db", name) == _stored(folder / "theirs.db", name)
    assert len(_stored(folder / "ours.db", name)) == len(rows)


def test_values_that_are_equal_but_written_differently_are_each_written_as_they_are(tmp_path: Path) -> None:
    """insert_many writes a column's value once for rows that give the very same object; values
    that only compare equal (1, True and 1.0; an equal document that is another object) are each
    written as they are."""
    engine = _database(tmp_path / "ours.db")
    shared = {"name": "A. Analyst", "kind": "person"}
    bodies = [shared, shared, {"n": 1}, {"n": True}, {"n": 1.0}, None, None, [1], [True], shared]
    rows = [
        {"id": f"p{i}", "record_id": "r", "kind": "note", "identity": None, "position": i, "custody_seq": 1}
        | {"body": body}
        for i, body in enumerate(bodies)
    ]
    table = TABLES["record_part"]
    with sqlmodel.Session(engine) as session, session.begin():
        insert_many(session, table, rows)
    engine.dispose()
    with sqlite3.connect(tmp_path / "ours.db") as connection:
        written = [row[0] for row in connection.execute("SELECT body FROM record_part ORDER BY rowid")]
    assert written == [
        '{"name": "A. Analyst", "kind": "person"}',
        '{"name": "A. Analyst", "kind": "person"}',
        '{"n": 1}',
        '{"n": true}',
        '{"n": 1.0}',
        "null",
        "null",
        "[1]",
        "[true]",
        '{"name": "A. Analyst", "kind": "person"}',
    ]


def test_a_column_left_to_its_default_goes_through_sqlalchemy(tmp_path: Path) -> None:
    """A set of columns whose insert needs a default filled in is not compiled for the driver."""
    metadata = sa.MetaData()
    table = sa.Table(
        "t", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("n", sa.Integer, default=7)
    )
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'd.db'}")
    metadata.create_all(engine)
    assert _compiled_insert(engine.dialect, table, ("id",)) is None
    assert _compiled_insert(engine.dialect, table, ("id", "n")) is not None
    with sqlmodel.Session(engine) as session, session.begin():
        insert_many(session, table, [{"id": 1}, {"id": 2}])
    with engine.connect() as connection:
        assert connection.execute(sa.select(table.c.n)).scalars().all() == [7, 7]


def test_the_drivers_error_is_sqlalchemys(tmp_path: Path) -> None:
    """A row the database refuses fails as SQLAlchemy's error of that kind, with the driver's
    as its cause; nothing of the transaction stays."""
    engine = _database(tmp_path / "d.db")
    table = TABLES["record_tag"]
    with pytest.raises(sa.exc.IntegrityError) as raised, sqlmodel.Session(engine) as session, session.begin():
        insert_many(session, table, [{"record_id": "r", "tag": "a"}, {"record_id": "r", "tag": "a"}])
    assert isinstance(raised.value.orig, sqlite3.IntegrityError)
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0


def _limit_pages(engine: sa.Engine | type[sa.Engine], pages: int | None = None) -> Any:
    """Every connection *engine* checks out from its pool gets a database of at most *pages*
    pages (its size when checked out, by default): SQLite itself then refuses, with
    ``SQLITE_FULL`` ("database or disk is full"), any write that needs one more: what a full
    disk makes it say."""

    def limit(dbapi_connection: sqlite3.Connection, *_: Any) -> None:
        count = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages or count}")

    return limit


def test_a_full_database_is_sqlalchemys_operational_error(tmp_path: Path) -> None:
    engine = _database(tmp_path / "d.db")
    sa_event.listen(engine, "checkout", _limit_pages(engine))
    table = TABLES["record_tag"]
    rows = [{"record_id": f"r{n}", "tag": "x" * 200} for n in range(2000)]
    with pytest.raises(sa.exc.OperationalError) as raised, sqlmodel.Session(engine) as session, session.begin():
        insert_many(session, table, rows)
    assert isinstance(raised.value.orig, sqlite3.OperationalError)
    assert "full" in str(raised.value.orig)


@pytest.mark.parametrize("files", [60])
def test_a_full_disk_is_a_storage_error_and_changes_nothing(tmp_path: Path, files: int) -> None:
    """A catalog whose database cannot grow (SQLite's own "database or disk is full") refuses
    an add as a StorageError, and keeps what it had: the log, the records, nothing half-done."""
    sources = []
    for n in range(files):
        source = tmp_path / "in" / f"{n}.txt"
        source.parent.mkdir(exist_ok=True)
        source.write_bytes(b"bytes %d " % n * 50)
        sources.append(source)
    with Catalog.init(tmp_path / "cat", operator="Tester <t@example.org>") as catalog:
        _skip_unless_sqlite(catalog)
        before = [e.hash for e in catalog.history()]
        limit = _limit_pages(sa.engine.Engine)
        sa_event.listen(sa.pool.Pool, "checkout", limit)
        try:
            with pytest.raises(StorageError, match="full"):
                catalog.add(sources, batch=files)
        finally:
            sa_event.remove(sa.pool.Pool, "checkout", limit)
    with Catalog.open(tmp_path / "cat", operator="Tester <t@example.org>") as catalog:
        assert [e.hash for e in catalog.history()] == before
        assert list(catalog.records()) == []
        assert catalog.verify().ok


def _skip_unless_sqlite(catalog: Catalog) -> None:
    if catalog.db.engine.dialect.name != "sqlite":
        pytest.skip("the limit is SQLite's own (PRAGMA max_page_count)")


def test_timestamps_are_stored_as_sqlalchemy_writes_them(tmp_path: Path) -> None:
    """A concrete case: an aware time is written as SQLAlchemy's SQLite text, not the driver's."""
    engine = _database(tmp_path / "d.db")
    table = TABLES["record_tag"]
    with sqlmodel.Session(engine) as session, session.begin():
        insert_many(session, table, [{"record_id": "r", "tag": "a"}])
        insert_many(
            session,
            TABLES["timestamp_token"],
            [
                {
                    c.name: (
                        dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
                        if isinstance(c.type, sa.DateTime)
                        else 1
                        if isinstance(c.type, sa.Integer)
                        else b"x"
                        if isinstance(c.type, sa.LargeBinary)
                        else "x"
                    )
                    for c in TABLES["timestamp_token"].columns
                }
            ],
        )
    with sqlite3.connect(tmp_path / "d.db") as connection:
        assert connection.execute("SELECT gen_time FROM timestamp_token").fetchone() == ("2026-01-02 03:04:05.000006",)


@pytest.mark.parametrize("how", ["sqlalchemy", "insert_many"])
def test_an_insert_on_a_connection_not_begun_is_in_its_transaction(tmp_path: Path, how: str) -> None:
    """(From a review.) SQLAlchemy begins a connection's transaction at its first statement,
    with the catalog's BEGIN; the driver path must not insert outside it: a rollback undoes it."""
    engine = engine_module._make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    table = MerkleNodeRow.__table__
    sqlmodel.SQLModel.metadata.create_all(engine, tables=[table])
    try:
        with engine.connect() as connection:
            rows = [{"level": 0, "idx": 1, "hash": "a"}]
            if how == "sqlalchemy":
                connection.execute(sa.insert(table), rows)
            else:
                insert_many(connection, table, rows)
            assert connection.in_transaction()
            connection.rollback()
        with engine.connect() as connection:
            assert connection.execute(sa.select(table.c.idx)).all() == []  # rolled back
    finally:
        engine.dispose()


def test_a_documents_text_made_already_is_the_one_sqlalchemy_writes_and_postgresql_gets_the_value() -> None:
    """On a dialect that is not SQLite, insert_many hands SQLAlchemy the values of JSONText."""
    from evidence_catalog.store.inserts import _documents

    value = {"a": [1, "é"]}
    row = {"id": "x", "body": JSONText(value), "n": 1}
    assert _documents(row) == {"id": "x", "body": value, "n": 1}
    plain = {"id": "x", "body": value}
    assert _documents(plain) is plain
