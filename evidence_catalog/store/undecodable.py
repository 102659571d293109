"""Values of a SQLite catalog that are not UTF-8 text, found one by one.

SQLite stores whatever bytes it is given as TEXT; the driver refuses to hand over a value that is
not UTF-8 and the whole query fails, so a single damaged value stops every read that meets it
without saying which row it is in.  :func:`undecodable_values` reads every text value as bytes
and names each one that does not decode, for ``verify`` to report.  PostgreSQL checks the
encoding of what it stores, so it has none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attrs import frozen

from evidence_catalog.errors import CatalogDatabaseError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

#: How many bytes of a damaged value a finding shows (as hex).
SHOWN_BYTES = 32

#: How to name a row of the tables that hold what a record or the log is made of; any other
#: table's row is named by the table and its key.
_NAMES = {
    "custody_event": lambda key, row: f"custody event {key['seq']}",
    "record": lambda key, row: f"record {key['id']}",
    "artifact": lambda key, row: f"artifact {key['sha256']}",
    "checkpoint": lambda key, row: f"checkpoint {key['id']}",
    "merkle_node": lambda key, row: f"Merkle tree node {key['idx']} of level {key['level']}",
}


class UndecodableError(CatalogDatabaseError):
    """A read met values that are not UTF-8 text: :attr:`values` are all of them."""

    def __init__(self, message: str, values: list[UndecodableValue]) -> None:
        super().__init__(message)
        self.values = values


@frozen
class UndecodableValue:
    """A value that is not UTF-8 text: where it is, and its first bytes."""

    #: The row, named as the catalog names it (``custody event 12``, ``record <id>``, ...).
    subject: str
    table: str
    column: str
    #: Its first :data:`SHOWN_BYTES` bytes, as hex.
    head: str
    size: int

    @property
    def reason(self) -> str:
        """What is wrong, as a sentence a finding can carry."""
        shown = self.head + (" ..." if self.size > SHOWN_BYTES else "")
        return (
            f"column '{self.column}' of table '{self.table}' holds {self.size} bytes that are not UTF-8"
            f" text (hex: {shown})"
        )


def described(values: list[UndecodableValue], most: int = 3) -> str:
    """*values* as one sentence: the first *most* named, and how many more there are."""
    said = "; ".join(f"{value.subject}: {value.reason}" for value in values[:most])
    if len(values) > most:
        said += f"; and {len(values) - most} more such value(s)"
    return said


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def undecodable_values(engine: Engine) -> list[UndecodableValue]:
    """Every text value of the catalog's tables that is not UTF-8, in table and row order.

    Reads each table once, on a connection of its own that hands text over as bytes; virtual
    tables (the search index's) are left out, their shadow tables are read.  Empty for a
    database other than SQLite.
    """
    if engine.dialect.name != "sqlite":
        return []
    wrapper = engine.raw_connection()
    wrapper.detach()  # its text_factory is changed below: never handed back to the pool
    driver: Any = wrapper.dbapi_connection
    found: list[UndecodableValue] = []
    try:
        driver.text_factory = bytes
        tables = [
            _text(name)
            for (name,) in driver.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                " AND coalesce(sql, '') NOT LIKE 'CREATE VIRTUAL%' ORDER BY name"
            )
        ]
        for table in tables:
            found.extend(_in_table(driver, table))
    finally:
        driver.close()
    return found


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _in_table(driver: Any, table: str) -> list[UndecodableValue]:
    info = list(driver.execute("SELECT name, pk FROM pragma_table_info(?)", (table,)))
    columns = [_text(name) for name, _ in info]
    key = [_text(name) for name, pk in sorted(info, key=lambda c: c[1]) if pk] or ["rowid"]
    if not columns:
        return []
    texts = ", ".join(f"typeof({_quoted(c)}) = 'text'" for c in columns)
    selected = ", ".join(_quoted(c) for c in [*key, *columns])
    found: list[UndecodableValue] = []
    for row in driver.execute(f"SELECT {selected}, {texts} FROM {_quoted(table)}"):  # names from the schema, quoted
        values = row[len(key) : len(key) + len(columns)]
        is_text = row[len(key) + len(columns) :]
        named: str | None = None
        for column, value, text in zip(columns, values, is_text, strict=True):
            if not text or not isinstance(value, bytes):
                continue
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                if named is None:
                    keys = {k: _text(v) for k, v in zip(key, row[: len(key)], strict=True)}
                    named = _subject(table, keys, dict(zip(columns, values, strict=True)))
                found.append(
                    UndecodableValue(
                        subject=named,
                        table=table,
                        column=column,
                        head=value[:SHOWN_BYTES].hex(" "),
                        size=len(value),
                    )
                )
    return found


def _subject(table: str, key: dict[str, str], row: dict[str, Any]) -> str:
    name = _NAMES.get(table)
    if name is not None:
        return name(key, row)
    own = ", ".join(f"{k} {v}" for k, v in key.items())
    if "record_id" in row:
        return f"record {_text(row['record_id'])} ({table} row {own})"
    return f"{table} row {own}"
