"""Inserting rows in bulk: what an add, an ingest or an import of thousands of items writes in
one transaction (its records, reports, artifacts, custody events and search index rows).

SQLAlchemy's per-row work for an ``executemany`` costs about as much as SQLite's own inserts, so
on SQLite the rows go straight to the driver, each value through the very bind processor
SQLAlchemy would have applied to its column, with each statement compiled once per table and set
of columns; a JSON document already written once (:class:`~evidence_catalog.store.jsontext.JSONText`)
is not written again.  On PostgreSQL, and wherever a column would need its default, the rows go
through SQLAlchemy.  ``tests/test_inserts.py`` holds the rows stored the same both ways.
"""

from __future__ import annotations

import json
import operator
import sqlite3
import weakref
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from evidence_catalog.store.engine import execute, table_of
from evidence_catalog.store.jsontext import JSONText


def insert_many(bind: Session | sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert *rows* (each with the keys of the first) into *table* in the transaction of *bind*
    (a session or a connection): what ``execute(session, sa.insert(table), rows)`` does, in the very same rows.

    On SQLite the rows go straight to the driver's ``executemany``, each value through the bind
    processor SQLAlchemy would have applied to its column (a date-time's text, a JSON column's
    text), with the statement compiled once per table and set of columns
    (:func:`_compiled_insert`); SQLAlchemy's per-row work for an ``executemany`` cost about as
    much as SQLite's own inserts.  An error of the driver is raised as SQLAlchemy raises it
    (:class:`~sqlalchemy.exc.DBAPIError`'s subclass for it), so callers handle both alike.
    Elsewhere (PostgreSQL), and for a set of columns that leaves one with a default to fill in,
    through SQLAlchemy."""
    if not rows:
        return
    connection = bind if isinstance(bind, sa.Connection) else bind.connection()
    dialect = connection.dialect
    names = tuple(rows[0])
    compiled = _compiled_insert(dialect, table, names) if dialect.name == "sqlite" else None
    if compiled is None:
        connection.execute(sa.insert(table), [_documents(row) for row in rows])
        return
    text, processors, documents = compiled
    values_of = operator.itemgetter(*names)
    if len(names) == 1:
        parameters: list[Any] = [(values_of(row),) for row in rows]
    else:
        parameters = [values_of(row) for row in rows]
    processed = [(index, process) for index, process in enumerate(processors) if process is not None]
    if processed:
        # A value that is the very object the row before gave the same column (the operator
        # every event of an add names, a null) is processed once: its text is the same.
        last: list[Any] = [_UNSET] * len(names)
        made: list[Any] = [None] * len(names)
        for position, values in enumerate(parameters):
            values = list(values)
            for index, process in processed:
                value = values[index]
                if value is not last[index]:
                    if type(value) is JSONText:
                        last[index], made[index] = value, value.text if index in documents else process(value.value)
                    else:
                        last[index], made[index] = value, process(value)
                values[index] = made[index]
            parameters[position] = tuple(values)
    sqlite_executemany(connection, text, parameters)


#: No value given yet (what no row's value is).
_UNSET = object()


def _documents(row: dict[str, Any]) -> dict[str, Any]:
    """*row* with the value of each :class:`~evidence_catalog.store.jsontext.JSONText` in it,
    for SQLAlchemy to write."""
    if not any(type(value) is JSONText for value in row.values()):
        return row
    return {name: value.value if type(value) is JSONText else value for name, value in row.items()}


def sqlite_executemany(bind: Session | sa.Connection, text: str, parameters: list[Any]) -> None:
    """Run the SQL *text* (``?`` placeholders) once for each of *parameters* (sequences of
    values as SQLite's driver takes them) in the transaction of *bind*, a SQLite catalog's
    session or connection, straight through the driver; its error is raised as SQLAlchemy
    raises it.  Through SQLAlchemy's ``exec_driver_sql`` instead while something listens for
    the statements SQLAlchemy runs (its ``before_cursor_execute`` or ``after_cursor_execute``
    events: a tracer, a test modelling a full disk), so that it sees this one too, and on a
    connection whose transaction has not begun (SQLAlchemy begins it, with the write lock; the
    driver, which the catalog's connections leave in autocommit, would run it outside any
    transaction).  SQLAlchemy's statement-level events (``before_execute``) and its echo
    logging do not see these statements; the catalog uses neither."""
    connection = bind if isinstance(bind, sa.Connection) else bind.connection()
    if (
        connection.dispatch.before_cursor_execute
        or connection.dispatch.after_cursor_execute
        or not connection.in_transaction()  # SQLAlchemy begins it (the write lock), the driver would not
    ):
        connection.exec_driver_sql(text, parameters)
        return
    cursor = connection.connection.cursor()
    try:
        cursor.executemany(text, parameters)
    except sqlite3.Error as exc:
        raise sa.exc.DBAPIError.instance(text, parameters[:1], exc, sqlite3.Error) from exc
    finally:
        cursor.close()


#: Compiled inserts of :func:`insert_many`, by dialect (each engine has its own), table and columns.
_INSERTS: weakref.WeakKeyDictionary[sa.Dialect, dict[tuple[sa.Table, tuple[str, ...]], Any]] = (
    weakref.WeakKeyDictionary()
)


def _compiled_insert(
    dialect: sa.Dialect, table: sa.Table, names: tuple[str, ...]
) -> tuple[str, tuple[Callable[[Any], Any] | None, ...], frozenset[int]] | None:
    """The SQL text of an insert of the columns *names* (in that order) into *table*, each
    column's bind processor (``None`` where a value goes as it is), and the positions of the
    JSON columns (whose value may be a :class:`~evidence_catalog.store.jsontext.JSONText`);
    ``None`` where the statement would need a value the rows do not give (a column's default)."""
    known = _INSERTS.setdefault(dialect, {})
    key = (table, names)
    if key not in known:
        compiled = sa.insert(table).compile(dialect=dialect, column_keys=list(names))
        if compiled.positiontup is None or tuple(compiled.positiontup) != names:
            known[key] = None
        else:
            types = [table.c[name].type.dialect_impl(dialect) for name in names]
            processors = tuple(kind.bind_processor(dialect) for kind in types)
            documents = frozenset(i for i, kind in enumerate(types) if _writes_json_dumps(kind, processors[i]))
            known[key] = (compiled.string, processors, documents)
    found: tuple[str, tuple[Callable[[Any], Any] | None, ...], frozenset[int]] | None = known[key]
    return found


def _writes_json_dumps(kind: sa.types.TypeEngine[Any], process: Callable[[Any], Any] | None) -> bool:
    """Whether a column of this (dialect's) type, with this bind processor, is a JSON column
    whose value is written as ``json.dumps`` writes it (the engine's serializer; checked)."""
    if isinstance(kind, sa.types.TypeDecorator):
        kind = kind.impl_instance
    if not isinstance(kind, sa.JSON) or process is None:
        return False
    probe = {"a": [1, 2.5, None, True], "é": '\u2028\x00"', "n": {}}
    return bool(process(probe) == json.dumps(probe))


def insert_row(session: Session, row_type: type[Any], **values: Any) -> None:
    """Insert one row."""
    # Values as parameters, not baked into the statement: one compiled INSERT per table and
    # set of columns, reused (building and compiling a statement per row was most of an add).
    execute(session, sa.insert(table_of(row_type)), [values])
