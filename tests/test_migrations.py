"""The database schema is made by Alembic migrations, and they match the SQLModel tables.

A catalog made at any earlier schema revision (0001 to 0008) opens with this library, on SQLite
and on PostgreSQL: it is upgraded in place, once, and the upgrade is in its custody log; every
record, artifact and custody event reads exactly as before; the log still verifies, gets its
Merkle tree (0005) and signed checkpoints, and its reports are found by their words (0003 on
SQLite's FTS5, 0006 on PostgreSQL; 0007 makes the words in Python for both; 0009 gives PostgreSQL
its own full-text index of them).

Each old catalog holds what the library of its revision could make (files from 0001; ingested
reports from 0002; links, claims, assessments, relations, flags, notes, tags and categories
from 0003; imported records from 0004).  Old catalogs are made two ways:

* *built at the revision*: the schema is made by running the migrations up to that revision on
  an empty database -- as the library of that revision made it -- and the rows of a catalog
  filled by this library are written into it in the old format (only the columns and tables
  the old schema has; format-1 acquisition bodies without the capture fields; before 0005 a
  ``catalog.created`` event that names no log key, and no ``keys/``), on PostgreSQL in a
  database that shows times in local time (+05:45), not UTC;
* *taken back down*: a copy of a catalog filled by this library is downgraded to the revision
  (and its rows made the old format, as above); the downgraded schema must be exactly the one
  the migrations make at that revision.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from unittest import mock

import attrs
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from evidence_catalog import Agent, Catalog, model
from evidence_catalog.config import CatalogConfig
from evidence_catalog.errors import CatalogError
from evidence_catalog.serialize import canonical_json, structure, unstructure
from evidence_catalog.store import tables  # noqa: F401  (registers the tables on the metadata)
from evidence_catalog.store.database import HEAD_REVISION, CatalogDatabase, _alembic_config
from evidence_catalog.store.search import (
    FTS_CREATE,
    FTS_TABLE,
    PG_INDEX_CREATE,
    fts_body,
    indexed_words,
    lexemes_literal,
    outside_metadata,
    report_words,
    word_repeats,
    word_tokens,
)
from tests.conftest import FixedClock, make_jpeg
from tests.pg_server import PostgresServer
from tests.salted import leaf_by_hand, unsalted_linked_event

BACKENDS = ("sqlite", "postgresql")
OLD_REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009", "0010")
OPERATOR = Agent(name="Test Analyst", email="analyst@example.org", organization="Example NGO", host="test-host")
UPGRADER = "Upgrader <upgrader@example.org>"

#: The fields a format-1 (revision 0001) acquisition body had: the capture fields came with 0002.
FORMAT_1_ACQUISITION_FIELDS = {
    "id",
    "method",
    "started_at",
    "ended_at",
    "operator",
    "tools",
    "artifact_sha256",
    "outcome",
    "original_path",
    "original_path_b64",
    "file_modified_at",
    "source_url",
    "requested_url",
    "final_url",
    "http_status",
    "platform",
    "extractor",
    "platform_id",
    "error",
    "note",
}

# -- the reports of the catalogs (a feed-reader digest) ----------------------------------------

BERTHS = "Shelling near the berths @portlog #Putin"
CAFE = "Бучі: the café on Vokzalna street is gone"
FERRY = "Ferry convoy seen off the coast"
LATE = "Late report: the berths are burning"
DIGEST = f"Kyiv Desk (Telegram)\n{BERTHS}\n{BERTHS}\n{CAFE}\n{CAFE}\nCoast Watch (Twitter)\n{FERRY}\n{FERRY}\n"

#: Searches, and the reports each finds (by text).  Words are found case and diacritics folded,
#: in any script, as runs of words; the other filters are exact.
SEARCHES: list[tuple[dict[str, Any], set[str]]] = [
    ({"text": "berths"}, {BERTHS}),
    ({"text": "БУЧІ"}, {CAFE}),
    ({"text": "cafe vokzalna"}, {CAFE}),
    ({"text": "shelling berths"}, {BERTHS}),
    ({"text": "convoy coast"}, {FERRY}),
    ({"text": "gone berths"}, set()),
    ({"mention": "portlog"}, {BERTHS}),
    ({"hashtag": "putin"}, {BERTHS}),
    ({"feed": "coast watch"}, {FERRY}),
    ({"author": "Kyiv Desk"}, {BERTHS, CAFE}),
    ({}, {BERTHS, CAFE, FERRY}),
]


def _searches(catalog: Catalog) -> list[list[model.Report]]:
    results = []
    for query, _ in SEARCHES:
        query = dict(query)
        results.append([hit.report for hit in catalog.search(query.pop("text", ""), limit=None, **query)])
    return results


def run_searches(catalog: Catalog) -> tuple[list[list[str]], list[set[str]]]:
    """The report ids each of SEARCHES finds, in the order found (best match first, then
    newest), and their texts."""
    found = _searches(catalog)
    return [[report.id for report in reports] for reports in found], [{r.text for r in reports} for reports in found]


# -- independent RFC 6962 helpers ---------------------------------------------------------------


def leaf_of(event_document: dict[str, Any]) -> bytes:
    return leaf_by_hand(event_document)  # written from docs/verification.md


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1 Merkle tree hash, written out directly."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node(mth(leaves[:k]), mth(leaves[k:]))


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes | None:
    """RFC 9162 section 2.1.3.2: the root an inclusion proof leads to (``None``: malformed)."""
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


# -- where the catalogs' databases are ----------------------------------------------------------


class Databases:
    """Where catalogs keep their databases: SQLite files in their folders, or each a database of
    its own on the test PostgreSQL server (dropped by :meth:`drop`)."""

    def __init__(self, backend: str, server: PostgresServer | None) -> None:
        self.backend = backend
        self.server = server
        self.made: list[str] = []

    def new(self) -> str | None:
        """A new, empty database's URL (``None`` on SQLite: the catalog's own ``catalog.db``)."""
        if self.server is None:
            return None
        self.made.append(self.server.new_database())
        return self.made[-1]

    def copy_catalog(self, folder: Path, url: str | None, to: Path) -> str | None:
        """Copy a closed catalog -- its folder and its database -- to *to*; the copy's URL."""
        shutil.copytree(folder, to)
        if url is None:
            return None
        parsed = sa.make_url(url)
        name = f"ec_{uuid.uuid4().hex[:16]}"
        admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
        import psycopg

        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{parsed.database}"')
        copy = parsed.set(database=name).render_as_string(hide_password=False)
        self.made.append(copy)
        point_at(to, copy)
        return copy

    def drop(self) -> None:
        for url in self.made:
            assert self.server is not None
            self.server.drop_database(url)
        self.made.clear()


@pytest.fixture(params=BACKENDS)
def databases(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Databases]:
    # Each test here says where its catalogs live, whatever --backend the whole run has.
    monkeypatch.setattr(Catalog, "_default_database", None)
    server = request.getfixturevalue("pg_server") if request.param == "postgresql" else None
    made = Databases(request.param, server)
    yield made
    made.drop()


def point_at(folder: Path, url: str) -> None:
    """Make a catalog folder's settings name the PostgreSQL database at *url*."""
    config = attrs.evolve(CatalogConfig.load(folder), database_url=url)
    (folder / "catalog.toml").write_text(config.to_toml(), encoding="utf-8")


def local_time(url: str, zone: str = "Asia/Kathmandu") -> None:
    """Make a PostgreSQL database show times in a zone of its own (+05:45), as a server set up
    in local time does: a timestamp read as text carries that offset."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"ALTER DATABASE \"{sa.make_url(url).database}\" SET timezone TO '{zone}'")
    finally:
        engine.dispose()


def engine_of(folder: Path, url: str | None) -> sa.Engine:
    """An engine on a catalog's database (*url*, or the folder's ``catalog.db``)."""
    return sa.create_engine(url if url is not None else f"sqlite:///{folder / 'catalog.db'}")


def revision_of(engine: sa.Engine) -> list[tuple[str, ...]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.exec_driver_sql("SELECT version_num FROM alembic_version")]


def differences_from_the_tables(engine: sa.Engine) -> list[Any]:
    """What Alembic's autogenerate finds different between the database and the SQLModel tables."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": outside_metadata})
        return list(compare_metadata(context, SQLModel.metadata))


def schema_of(engine: sa.Engine) -> dict[str, Any]:
    """Every table with its columns (type, nullable, default), keys, indexes and constraints."""
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        schema: dict[str, Any] = {}
        for table in sorted(inspector.get_table_names()):
            schema[table] = {
                "columns": sorted(
                    (
                        c["name"],
                        _type_name(c["type"], connection.dialect),
                        c["nullable"],
                        None if c.get("default") is None else str(c["default"]),
                    )
                    for c in inspector.get_columns(table)
                ),
                "primary key": sorted(inspector.get_pk_constraint(table)["constrained_columns"]),
                "indexes": sorted(
                    (i["name"], tuple(str(c) for c in i["column_names"]), bool(i["unique"]))
                    for i in inspector.get_indexes(table)
                ),
                "unique": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
                "foreign keys": sorted(
                    (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                    for f in inspector.get_foreign_keys(table)
                ),
            }
        return schema


def _type_name(type_: Any, dialect: sa.Dialect) -> str:
    # The columns of SQLite's FTS5 table have no type.
    return "" if isinstance(type_, sa.types.NullType) else str(type_.compile(dialect=dialect))


# -- catalogs with data -------------------------------------------------------------------------


@attrs.frozen
class Filled:
    """A closed catalog filled by this library (at the newest revision) with what the library of
    revision ``content`` could make, and what it read back then.  Read-only to the tests: each
    test copies it."""

    content: str
    path: Path
    url: str | None
    files: Path
    #: Record id -> the record's document (canonical JSON).
    records: dict[str, bytes]
    #: SHA-256 -> the artifact's document (canonical JSON), every artifact in the catalog.
    artifacts: dict[str, bytes]
    #: Every custody event's document (canonical JSON), in order.
    events: list[bytes]
    #: Report ids each of SEARCHES found, in order (empty lists before 0002: no reports).
    searches: list[list[str]]
    #: Table -> its rows (every column), as read through the SQLModel tables.
    rows: dict[str, list[dict[str, Any]]]

    @property
    def with_reports(self) -> bool:
        return self.content >= "0002"


def content_for(revision: str) -> str:
    """The content a catalog at *revision* can hold (0005 brought no new kind of content that
    does not need a time-stamp authority)."""
    return min(revision, "0004")


def snapshot(catalog: Catalog) -> tuple[dict[str, bytes], dict[str, bytes], list[bytes]]:
    records = {r.id: canonical_json(unstructure(r)) for r in catalog.records()}
    with catalog.db.read() as session:
        shas = [row[0] for row in session.execute(sa.text("SELECT sha256 FROM artifact ORDER BY sha256"))]
        artifacts = {sha: canonical_json(unstructure(catalog.db.artifact(session, sha))) for sha in shas}
    events = [canonical_json(unstructure(e)) for e in catalog.history()]
    return records, artifacts, events


def table_rows(engine: sa.Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, as read through the SQLModel tables (the columns the database
    has of them: an older schema lacks some)."""
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        rows = {}
        for table in SQLModel.metadata.sorted_tables:
            if not inspector.has_table(table.name):  # made by a later revision
                continue
            there = {c["name"] for c in inspector.get_columns(table.name)}
            columns = [column for column in table.columns if column.name in there]
            rows[table.name] = [dict(row._mapping) for row in connection.execute(sa.select(*columns))]
        return rows


def _row_key(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, default=_plain)


def _plain(value: object) -> str:
    if isinstance(value, dt.datetime):  # the same instant, whatever zone the session shows it in
        return (value.astimezone(dt.UTC) if value.tzinfo else value).isoformat()
    return repr(value)


#: Tables 0005 made: ``checkpoint`` and ``timestamp_token`` empty, ``merkle_node`` from the log
#: (of a log before 0005, not the one these rows are from: the Merkle checks cover it).  The
#: report index (0003) is made from the reports: its rows must be the ones the library writes.
NEW_IN_0005 = {"checkpoint", "timestamp_token", "merkle_node"}


def check_rows_kept(engine: sa.Engine, source: Filled, revision: str) -> None:
    """Every row of the old catalog is in the upgraded database, every column as it was (the
    old-format rows as written; a column a migration added holding what this library writes);
    so is every row of a table a migration rebuilt from them."""
    after = table_rows(engine)
    for table, rows in old_rows(source, revision).items():
        if revision < "0005" and table in NEW_IN_0005:
            continue
        there = {_row_key(row) for row in after[table]}
        assert [row for row in rows if _row_key(row) not in there] == [], table


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def fill_stages(root: Path, databases: Databases) -> dict[str, Filled]:
    """One catalog, filled in stages with what the library of each revision could make; after
    each stage a closed copy of it (folder and database), by the revision that stage stands for."""
    files = root / "files"
    files.mkdir(parents=True)
    statement = _write(files / "statement.txt", "witness statement\n")
    photo = files / "photo.jpg"
    photo.write_bytes(make_jpeg())
    odd = files / os.fsdecode(b"scan-\xff.txt")  # a file name that is not UTF-8
    odd.write_bytes(b"a scanned page\n")
    _write(files / "digest.txt", DIGEST)
    live, url, clock = root / "live", databases.new(), FixedClock()
    stages: dict[str, Filled] = {}
    ids: dict[str, str] = {}

    def stage_0001(catalog: Catalog) -> None:
        [first] = catalog.add([statement], tags=["kyiv", "witness"], note="handed over on a USB stick")
        assert first.record_id is not None
        # A second artifact on it (not analysed: the old formats had no analyses).
        [photo_added] = catalog.add([photo], record_id=first.record_id, analyze=False)
        catalog.add([statement], tags=["again"])  # the same bytes again: another acquisition
        [other] = catalog.add([odd], source_url="https://example.org/scan")
        assert other.record_id is not None and photo_added.record_id == first.record_id
        ids.update(first=first.record_id, other=other.record_id, photo=photo_added.sha256)

    def stage_0002(catalog: Catalog) -> None:
        assert catalog.ingest(files / "digest.txt", tags=["digest"]).reports_added == 3

    def stage_0003(catalog: Catalog) -> None:
        hits = {hit.report.text: hit for hit in catalog.search(limit=None)}
        catalog.link(hits[BERTHS].report.id, ids["first"], note="the post shows this statement")
        catalog.define_category("port-shelling", "Shelling of a civilian port", reference="local list 1")
        catalog.claim(
            ids["first"],
            summary="shelling of the port",
            category="port-shelling",
            source_report_id=hits[BERTHS].report.id,
        )
        catalog.assess(ids["first"], "in_progress", methods=["geolocation"], confidence="medium", note="roofs")
        catalog.relate(hits[FERRY].record_id, "same_incident_as", ids["first"], note="same morning")
        catalog.flag(ids["first"], "graphic", "shows the dead", artifacts=[ids["photo"]])
        catalog.add_note(ids["other"], "called the witness back")
        catalog.tag(hits[CAFE].record_id, ["bucha"])

    def stage_0004(catalog: Catalog) -> None:
        # A record imported from another catalog: its three acquisitions, logged by one event,
        # keep their order by position.
        side = root / "side"
        with mock.patch.object(Catalog, "_default_database", None):
            elsewhere = Catalog.init(side, operator="Field Team <field@example.org>", clock=FixedClock())
        with elsewhere:
            [made] = elsewhere.add([_write(files / "field.txt", "field notes\n")])
            elsewhere.add([files / "field.txt"], tags=["field"])
            elsewhere.add([_write(files / "map.txt", "a sketch map\n")], record_id=made.record_id)
            elsewhere.export(root / "bag", format="bagit")
        assert len(catalog.import_records(root / "bag").records_added) == 1

    with mock.patch.object(Catalog, "_default_database", None):
        Catalog.init(live, operator=OPERATOR, clock=clock, database=url).close()
    for content, step in (("0001", stage_0001), ("0002", stage_0002), ("0003", stage_0003), ("0004", stage_0004)):
        with Catalog.open(live, operator=OPERATOR, clock=clock) as catalog:
            step(catalog)
            records, artifacts, events = snapshot(catalog)
            searches, texts = run_searches(catalog)
            assert texts == [expected if content >= "0002" else set() for _, expected in SEARCHES]
            assert catalog.verify(record_event=False).ok
        engine = engine_of(live, url)
        try:
            rows = table_rows(engine)
        finally:
            engine.dispose()
        path = root / content
        copy = databases.copy_catalog(live, url, path)
        stages[content] = Filled(content, path, copy, files, records, artifacts, events, searches, rows)
    return stages


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[Databases], dict[str, Filled]]]:
    """The staged catalogs of :func:`fill_stages`, made once per back end for this module."""
    made: dict[str, tuple[dict[str, Filled], Databases]] = {}

    def get(databases: Databases) -> dict[str, Filled]:
        if databases.backend not in made:
            own = Databases(databases.backend, databases.server)  # kept until the module ends
            made[databases.backend] = (fill_stages(tmp_path_factory.mktemp(f"filled-{databases.backend}"), own), own)
        return made[databases.backend][0]

    yield get
    for _, own in made.values():
        own.drop()


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[Databases, str], dict[str, Any]]]:
    """The schema the migrations make on an empty database at each revision, by back end (one
    database per back end, upgraded a revision at a time)."""
    made: dict[str, dict[str, dict[str, Any]]] = {}
    owners: list[Databases] = []

    def get(databases: Databases, revision: str) -> dict[str, Any]:
        if databases.backend not in made:
            own = Databases(databases.backend, databases.server)
            owners.append(own)
            folder = tmp_path_factory.mktemp(f"schemas-{databases.backend}")
            engine = engine_of(folder, own.new())
            try:
                made[databases.backend] = {}
                for step in OLD_REVISIONS:
                    with engine.begin() as connection:
                        command.upgrade(_alembic_config(connection), step)
                    made[databases.backend][step] = schema_of(engine)
            finally:
                engine.dispose()
        return made[databases.backend][revision]

    yield get
    for own in owners:
        own.drop()


# -- old catalogs --------------------------------------------------------------------------------


def to_old_format(table: str, row: dict[str, Any], revision: str) -> dict[str, Any]:
    """A row as the library of *revision* wrote it."""
    if revision == "0001" and table == "acquisition":
        assert row["body"].keys() >= FORMAT_1_ACQUISITION_FIELDS
        row["body"] = {k: v for k, v in row["body"].items() if k in FORMAT_1_ACQUISITION_FIELDS}
    if revision == "0001" and table == "record_artifact":
        assert row["derived_from"] is None  # format 1 made no derived artifacts (0002 says so)
    return row


def log_before_0005(events: list[bytes]) -> list[model.CustodyEvent]:
    """A log as the library before 0005 wrote it: there was no log key, so ``catalog.created``
    names none (and every hash link is made again from there)."""
    head: model.CustodyEvent | None = None
    log = []
    for text in events:
        event = structure(json.loads(text), model.CustodyEvent)
        details = dict(event.details)
        if event.action == "catalog.created":
            del details["log"]
        assert "vkey" not in json.dumps(details)
        head = unsalted_linked_event(  # nor were events salted then
            head, at=event.at, actor=event.actor, action=event.action, subject=event.subject, details=details
        )[0]
        log.append(head)
    return log


def old_events(source: Filled, revision: str) -> list[bytes]:
    """The custody events of *source* as a catalog at *revision* holds them."""
    if revision >= "0005":
        return source.events
    return [canonical_json(unstructure(e)) for e in log_before_0005(source.events)]


def old_rows(source: Filled, revision: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of *source*, as the library of *revision* wrote it."""
    rows = {table: [to_old_format(table, dict(row), revision) for row in rows] for table, rows in source.rows.items()}
    if revision < "0005":
        log = {e.seq: e for e in log_before_0005(source.events)}
        rows["custody_event"] = [
            {
                **row,
                "details": log[row["seq"]].details,
                "prev_hash": log[row["seq"]].prev_hash,
                "hash": log[row["seq"]].hash,
            }
            for row in rows["custody_event"]
        ]
    return rows


def build_at(revision: str, source: Filled, folder: Path, url: str | None) -> None:
    """Make *folder* a catalog at schema *revision* holding *source*'s content: the schema made
    by the migrations up to *revision* on an empty database (*url*, or ``catalog.db``), the rows
    written in that revision's format, the folder's blobs and settings copied."""
    shutil.copytree(source.path, folder, ignore=shutil.ignore_patterns("catalog.db*"))
    if revision < "0005":
        shutil.rmtree(folder / "keys")  # the log key came with the Merkle tree (0005)
    if url is not None:
        point_at(folder, url)
        local_time(url)
    target = engine_of(folder, url)
    try:
        with target.begin() as connection:
            if url is not None:
                assert connection.exec_driver_sql("SHOW timezone").scalar() == "Asia/Kathmandu"
            command.upgrade(_alembic_config(connection), revision)
        with target.begin() as connection:
            _write_rows(connection, old_rows(source, revision), revision)
        assert revision_of(target) == [(revision,)]
    finally:
        target.dispose()


def _write_rows(dst: sa.Connection, rows: dict[str, list[dict[str, Any]]], revision: str) -> None:
    old = sa.inspect(dst)
    names = set(old.get_table_names())
    for table in SQLModel.metadata.sorted_tables:
        if table.name not in names:
            continue
        names.discard(table.name)
        columns = old.get_columns(table.name)
        assert {c["name"] for c in columns} <= set(table.c.keys()), table.name
        if rows[table.name]:
            dst.execute(
                sa.insert(sa.table(table.name, *(sa.column(c["name"], _written_type(c["type"])) for c in columns))),
                [{c["name"]: row[c["name"]] for c in columns} for row in rows[table.name]],
            )
    assert {n for n in names if not n.startswith(FTS_TABLE)} == {"alembic_version"}  # every table written
    if dst.dialect.name == "sqlite" and revision >= "0003":
        # The full-text index, as the library of 0003 to 0006 filled it (it is contentless), or
        # of 0007 (the words made in Python).
        text = report_words if revision < "0007" else fts_body
        indexed = dst.exec_driver_sql(
            "SELECT i.num, p.body FROM report_index i JOIN record_part p ON p.id = i.part_id"
        ).all()
        dst.execute(
            sa.text(f"INSERT INTO {FTS_TABLE}(rowid, body) VALUES (:num, :body)"),
            [{"num": num, "body": text(structure(json.loads(body), model.Report))} for num, body in indexed],
        )
    if dst.dialect.name == "postgresql":
        # Rows written with their ids leave a serial column's sequence behind: move it on, as
        # the inserts of the time did.
        for name in old.get_table_names():
            for column in old.get_columns(name):
                sequence = dst.execute(
                    sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": name, "c": column["name"]}
                ).scalar()
                if sequence is None:
                    continue
                top = dst.exec_driver_sql(f'SELECT max("{column["name"]}") FROM "{name}"').scalar()
                if top is not None:
                    dst.execute(sa.text("SELECT setval(:s, :v)"), {"s": sequence, "v": top})


def _written_type(type_: Any) -> Any:
    """The type an old row's column is written with: a JSON column's ``None`` is SQL ``NULL``,
    as the library leaves a column it does not write (not the JSON ``null``)."""
    return type(type_)(none_as_null=True) if isinstance(type_, sa.JSON) else type_


def take_down_to(revision: str, source: Filled, folder: Path, url: str | None) -> None:
    """Downgrade a closed copy of *source* in *folder* to *revision*, leaving what that
    revision's library would have: format-1 acquisition bodies without the capture fields; no
    log key before 0005."""
    engine = engine_of(folder, url)
    rows = old_rows(source, revision)
    try:
        with engine.begin() as connection:
            command.downgrade(_alembic_config(connection), revision)
        with engine.begin() as connection:
            if revision == "0001":
                acquisition = sa.table("acquisition", sa.column("id", sa.String), sa.column("body", sa.JSON))
                for row in rows["acquisition"]:
                    connection.execute(
                        acquisition.update().where(acquisition.c.id == row["id"]).values(body=row["body"])
                    )
            if revision < "0005":
                event = sa.table(
                    "custody_event",
                    *(sa.column(name, type_) for name, type_ in (("seq", sa.Integer), ("details", sa.JSON))),
                    *(sa.column(name, sa.String) for name in ("prev_hash", "hash")),
                )
                for row in rows["custody_event"]:
                    connection.execute(
                        event.update()
                        .where(event.c.seq == row["seq"])
                        .values(details=row["details"], prev_hash=row["prev_hash"], hash=row["hash"])
                    )
        assert revision_of(engine) == [(revision,)]
    finally:
        engine.dispose()
    if revision < "0005":
        shutil.rmtree(folder / "keys")


# -- what an upgraded catalog must be ----------------------------------------------------------


def check_upgraded(folder: Path, url: str | None, source: Filled, revision: str, work: Path) -> None:
    """Open the catalog at *revision* in *folder*, which holds *source*'s content, and check that
    the upgrade kept everything and left a catalog that works."""
    with Catalog.open(folder, operator=UPGRADER) as upgraded:
        # Every record, artifact and event exactly as before; the upgrade (and, before 0005,
        # the new log key) logged after them, naming the revisions.
        records, artifacts, events = snapshot(upgraded)
        assert records == source.records
        assert artifacts == source.artifacts
        assert events[: len(source.events)] == old_events(source, revision)
        added = [json.loads(e) for e in events[len(source.events) :]]
        assert [e["action"] for e in added] == (
            ["key.created", "catalog.upgraded"] if revision < "0005" else ["catalog.upgraded"]
        )
        upgrade = added[-1]
        assert (upgrade["details"]["from_revision"], upgrade["details"]["to_revision"]) == (revision, HEAD_REVISION)
        assert (upgrade["actor"]["name"], upgrade["subject"]) == ("Upgrader", "catalog")
        assert upgraded.verify(record_event=False).ok
        engine = engine_of(folder, url)
        try:
            check_rows_kept(engine, source, revision)
        finally:
            engine.dispose()

        # The Merkle tree over the whole log: a signed checkpoint of its root, and inclusion
        # proofs (of old events and of those the upgrade added) that lead to that root.
        leaves = [leaf_of(json.loads(e)) for e in events]
        n = len(leaves)
        info = upgraded.checkpoint()
        assert info.signed and (info.size, info.root) == (n, mth(leaves).hex())
        for seq in sorted({1, 2, 3, n // 2, len(source.events), *range(len(source.events) + 1, n + 1)}):
            proof = upgraded.inclusion_proof(seq)
            assert (proof.tree_size, proof.root, proof.leaf_hash) == (n, info.root, leaves[seq - 1].hex())
            path = [bytes.fromhex(h) for h in proof.proof]
            assert root_from_inclusion(seq - 1, n, leaves[seq - 1], path) == mth(leaves)

        # Reports are found by their words and terms as before, in the same order.
        assert run_searches(upgraded)[0] == source.searches
        if source.with_reports:
            # The same digest again adds nothing (the reports are known by their identity).
            repeated = upgraded.ingest(source.files / "digest.txt")
            assert (repeated.reports_added, repeated.reports_present) == (0, 3)
        # New work after the upgrade: a report, a file, a checkpoint covering them.
        late = upgraded.ingest(_write(work / "late.txt", f"Late Desk (Telegram)\n{LATE}\n{LATE}\n"))
        assert late.reports_added == 1
        assert {hit.report.text for hit in upgraded.search("berths", limit=None)} == (
            {BERTHS, LATE} if source.with_reports else {LATE}
        )
        [extra] = upgraded.add([_write(work / "after.txt", "added after the upgrade\n")])
        assert [a.artifact.sha256 for a in upgraded.record(extra.record_id or "").artifacts] == [extra.sha256]
        assert upgraded.checkpoint().size == len(upgraded.history())

    with Catalog.open(folder) as again:  # upgraded once, logged once
        assert [e.action for e in again.history()].count("catalog.upgraded") == 1

    engine = engine_of(folder, url)
    try:
        assert revision_of(engine) == [(HEAD_REVISION,)]
        assert differences_from_the_tables(engine) == []
        with engine.connect() as connection:
            assert {row[0] for row in connection.exec_driver_sql("SELECT outcome FROM acquisition")} == {"succeeded"}
            indexed = connection.exec_driver_sql(
                "SELECT i.num, i.words, i.lexemes, i.word_count, i.word_total, i.word_repeats, p.body"
                " FROM report_index i JOIN record_part p ON p.id = i.part_id ORDER BY i.num"
            ).all()
            literal = (
                (lambda text: connection.execute(sa.text("SELECT CAST(:t AS tsvector)::text"), {"t": text}).scalar())
                if url is not None
                else None
            )
            expected_rows = []
            total = 0
            for _, _, _, _, _, _, body in indexed:
                report = structure(json.loads(body) if isinstance(body, str) else body, model.Report)
                tokens = word_tokens(report_words(report))
                total += len(tokens)
                # On PostgreSQL 0006 filled in the words of the reports indexed before it, 0009
                # their full-text index (the lexemes, the words of each and in all up to it, the
                # repeated ones); SQLite searches its FTS5 table instead and leaves them out.
                expected_rows.append(
                    (indexed_words(report), literal(lexemes_literal(tokens)), len(tokens), total, word_repeats(tokens))
                    if literal is not None
                    else (None, None, None, None, None)
                )
        assert len(indexed) == (4 if source.with_reports else 1)
        assert [row[0] for row in indexed] == list(range(1, len(indexed) + 1))  # numbered 1 to N
        assert [tuple(row[1:6]) for row in indexed] == expected_rows
    finally:
        engine.dispose()


# -- the schema --------------------------------------------------------------------------------


def test_migrations_produce_exactly_the_tables_the_code_uses(databases: Databases, tmp_path: Path) -> None:
    url = databases.new()
    Catalog.init(tmp_path / "catalog", operator=OPERATOR, database=url).close()
    engine = engine_of(tmp_path / "catalog", url)
    try:
        assert engine.dialect.name == databases.backend
        assert differences_from_the_tables(engine) == []
    finally:
        engine.dispose()


def test_a_new_catalog_has_exactly_the_schema_every_migration_in_turn_makes(
    databases: Databases, tmp_path: Path
) -> None:
    """``init`` makes the newest schema in one step (the SQLModel tables, the FTS5 table, the
    revision stamped); an empty database taken through every migration comes out the same:
    every column, type, default, key, index and constraint; on SQLite also the same objects
    (the FTS5 table's shadow tables among them) and the same FTS5 definition."""
    url = databases.new()
    Catalog.init(tmp_path / "catalog", operator=OPERATOR, database=url).close()
    (tmp_path / "migrated").mkdir()
    migrated_url = databases.new()
    made, migrated = engine_of(tmp_path / "catalog", url), engine_of(tmp_path / "migrated", migrated_url)
    try:
        with migrated.begin() as connection:
            command.upgrade(_alembic_config(connection), "head")
        assert revision_of(made) == revision_of(migrated) == [(HEAD_REVISION,)]
        assert schema_of(made) == schema_of(migrated)
        if url is None:
            query = "SELECT type, name, tbl_name FROM sqlite_master ORDER BY name"
            with made.connect() as one, migrated.connect() as other:
                assert one.exec_driver_sql(query).all() == other.exec_driver_sql(query).all()
                fts = f"SELECT sql FROM sqlite_master WHERE name = '{FTS_TABLE}'"
                assert one.exec_driver_sql(fts).scalar() == other.exec_driver_sql(fts).scalar() is not None
    finally:
        made.dispose()
        migrated.dispose()


def test_the_schema_a_new_catalog_gets_is_what_create_all_and_alembic_stamp_make(
    databases: Databases, tmp_path: Path
) -> None:
    """``init`` runs DDL compiled once per process (twice here: the second catalog of a process
    gets the statements the first compiled): the same schema as ``SQLModel.metadata.create_all``
    with the full-text table or index and ``alembic stamp head`` make, and on SQLite the very
    same statements stored for every table, index and constraint."""
    urls = [databases.new(), databases.new()]
    for number, url in enumerate(urls):
        Catalog.init(tmp_path / f"catalog{number}", operator=OPERATOR, database=url).close()
    (tmp_path / "reference").mkdir()
    reference_url = databases.new()
    reference = engine_of(tmp_path / "reference", reference_url)
    made = [engine_of(tmp_path / f"catalog{number}", url) for number, url in enumerate(urls)]
    try:
        with reference.begin() as connection:
            SQLModel.metadata.create_all(connection)
            connection.exec_driver_sql(FTS_CREATE if reference_url is None else PG_INDEX_CREATE)
            command.stamp(_alembic_config(connection), "head")
        for engine in made:
            assert revision_of(engine) == revision_of(reference) == [(HEAD_REVISION,)]
            assert schema_of(engine) == schema_of(reference)
            if reference_url is None:
                query = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"
                with engine.connect() as one, reference.connect() as other:
                    assert one.exec_driver_sql(query).all() == other.exec_driver_sql(query).all()
    finally:
        for engine in (reference, *made):
            engine.dispose()


def test_catalog_database_records_its_schema_revision(databases: Databases, tmp_path: Path) -> None:
    url = databases.new()
    Catalog.init(tmp_path / "catalog", operator=OPERATOR, database=url).close()
    if url is None:
        with sqlite3.connect(tmp_path / "catalog" / "catalog.db") as db:
            assert db.execute("select version_num from alembic_version").fetchall() == [(HEAD_REVISION,)]
    engine = engine_of(tmp_path / "catalog", url)
    try:
        assert revision_of(engine) == [(HEAD_REVISION,)]
    finally:
        engine.dispose()


def test_reopening_does_not_recreate_or_change_the_schema(databases: Databases, tmp_path: Path) -> None:
    url = databases.new()
    with Catalog.init(tmp_path / "catalog", operator=OPERATOR, database=url) as catalog:
        (tmp_path / "a").write_text("a")
        catalog.add([tmp_path / "a"])
    if url is None:
        with sqlite3.connect(tmp_path / "catalog" / "catalog.db") as db:
            sql = db.execute("select name, sql from sqlite_master order by name").fetchall()
    engine = engine_of(tmp_path / "catalog", url)
    try:
        before = schema_of(engine)
        with Catalog.open(tmp_path / "catalog") as again:
            assert len(list(again.records())) == 1
            assert "catalog.upgraded" not in [e.action for e in again.history()]
        assert schema_of(engine) == before
    finally:
        engine.dispose()
    if url is None:  # on SQLite, not even the text of a definition changes
        with sqlite3.connect(tmp_path / "catalog" / "catalog.db") as db:
            assert db.execute("select name, sql from sqlite_master order by name").fetchall() == sql


def test_the_head_revision_constant_names_the_newest_migration() -> None:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(_alembic_config())
    assert scripts.get_current_head() == HEAD_REVISION
    # Every earlier revision is one this module upgrades from.
    assert sorted(r.revision for r in scripts.walk_revisions()) == [*OLD_REVISIONS, HEAD_REVISION]


# -- upgrading old catalogs ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("revision", OLD_REVISIONS)
def test_a_catalog_built_at_an_earlier_revision_upgrades_with_everything_kept(
    databases: Databases, filled: Any, revision: str, tmp_path: Path
) -> None:
    source = filled(databases)[content_for(revision)]
    url = databases.new()
    build_at(revision, source, tmp_path / "old", url)
    check_upgraded(tmp_path / "old", url, source, revision, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("revision", OLD_REVISIONS)
def test_a_catalog_taken_down_to_an_earlier_revision_upgrades_with_everything_kept(
    databases: Databases, filled: Any, schemas: Any, revision: str, tmp_path: Path
) -> None:
    source = filled(databases)[content_for(revision)]
    url = databases.copy_catalog(source.path, source.url, tmp_path / "old")
    take_down_to(revision, source, tmp_path / "old", url)
    # The downgrade leaves exactly the tables the migrations make at that revision.
    engine = engine_of(tmp_path / "old", url)
    try:
        assert schema_of(engine) == schemas(databases, revision)
    finally:
        engine.dispose()
    if revision == "0001" and url is None:
        with sqlite3.connect(tmp_path / "old" / "catalog.db") as db:
            columns = {row[1] for row in db.execute("pragma table_info(acquisition)")}
        assert not columns & {"platform_key", "requested_url", "outcome", "position"}
    if url is not None:
        check_upgraded(tmp_path / "old", url, source, revision, tmp_path)
        return
    # An investigator hands the old catalog folder over: it upgrades in the copy, and only there.
    shutil.copytree(tmp_path / "old", tmp_path / "copy")
    check_upgraded(tmp_path / "copy", None, source, revision, tmp_path)
    with sqlite3.connect(tmp_path / "old" / "catalog.db") as db:
        assert db.execute("select version_num from alembic_version").fetchall() == [(revision,)]


def test_a_single_derived_from_of_revision_0001_becomes_a_list_on_postgresql(pg_database: str) -> None:
    """0002 turns ``record_artifact.derived_from`` into a JSON list; on PostgreSQL it converts a
    value in place (one SHA-256, a one-element list) and the downgrade takes the first back."""
    source, derived = "ab" * 32, "cd" * 32
    engine = sa.create_engine(pg_database)
    try:
        with engine.begin() as connection:
            command.upgrade(_alembic_config(connection), "0001")
            connection.exec_driver_sql(
                "INSERT INTO record (id, created_at, created_by, title) VALUES ('r', now(), '{}', NULL)"
            )
            connection.exec_driver_sql(
                "INSERT INTO artifact (sha256, size, media_type, stored_at) VALUES "
                f"('{source}', 1, 'text/plain', now()), ('{derived}', 1, 'text/plain', now())"
            )
            connection.exec_driver_sql(
                "INSERT INTO record_artifact (record_id, sha256, position, role, derived_from, derivation) VALUES "
                f"('r', '{source}', 0, 'original', NULL, NULL), ('r', '{derived}', 1, 'derived', '{source}', 'cut')"
            )
        with engine.begin() as connection:
            command.upgrade(_alembic_config(connection), "0002")
        table = sa.table("record_artifact", sa.column("sha256", sa.String), sa.column("derived_from", sa.JSON))
        with engine.connect() as connection:
            assert dict(connection.execute(sa.select(table.c.sha256, table.c.derived_from)).all()) == {  # type: ignore[arg-type]
                source: None,
                derived: [source],
            }
        with engine.begin() as connection:
            command.downgrade(_alembic_config(connection), "0001")
        with engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT sha256, derived_from FROM record_artifact").all()
        assert dict(rows) == {source: None, derived: source}  # type: ignore[arg-type]
    finally:
        engine.dispose()


def test_an_old_catalog_opened_twice_at_once_logs_one_upgrade(databases: Databases, tmp_path: Path) -> None:
    """Two investigators open the same old catalog at once (a team's PostgreSQL catalog, or a
    shared folder): both read the old revision, one upgrades, the other waits for the write lock
    and finds nothing left to do.  The log must say one upgrade happened, not two."""
    url = databases.new()
    with Catalog.init(tmp_path / "catalog", operator=OPERATOR, database=url) as catalog:
        catalog.add([_write(tmp_path / "a.txt", "a")])
    engine = engine_of(tmp_path / "catalog", url)
    try:
        with engine.begin() as connection:
            command.downgrade(_alembic_config(connection), "0005")
    finally:
        engine.dispose()

    both_read = threading.Barrier(2, timeout=60)
    upgrade = CatalogDatabase._upgrade

    def upgrade_when_both_have_read(db: CatalogDatabase) -> str | None:
        both_read.wait()  # each has read revision 0005 and is about to upgrade
        return upgrade(db)

    def open_and_close(who: str) -> None:
        Catalog.open(tmp_path / "catalog", operator=who).close()

    with (
        mock.patch.object(CatalogDatabase, "_upgrade", upgrade_when_both_have_read),
        ThreadPoolExecutor(2) as pool,
    ):
        done = [pool.submit(open_and_close, f"Analyst {n} <a{n}@example.org>") for n in (1, 2)]
        for future in done:
            future.result()
    with Catalog.open(tmp_path / "catalog") as after:
        upgrades = [e for e in after.history() if e.action == "catalog.upgraded"]
        assert after.verify(record_event=False).ok
    assert [(e.details["from_revision"], e.details["to_revision"]) for e in upgrades] == [("0005", HEAD_REVISION)]


def test_an_upgrade_that_fails_changes_nothing_and_says_why(databases: Databases, tmp_path: Path) -> None:
    """Someone added by hand the column migration 0006 adds: the upgrade fails on it.  The
    catalog must stay at its old revision with its data, the error must say what failed, and
    once the obstacle is gone the upgrade goes through."""
    url = databases.new()
    with Catalog.init(tmp_path / "catalog", operator=OPERATOR, database=url) as catalog:
        added = catalog.add([_write(tmp_path / "a.txt", "a")])[0]
    engine = engine_of(tmp_path / "catalog", url)
    try:
        with engine.begin() as connection:
            command.downgrade(_alembic_config(connection), "0005")
        with engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE report_index ADD COLUMN words TEXT")
        before = table_rows(engine)
        with pytest.raises(CatalogError, match=r"could not be upgraded from schema '0005'.*nothing was changed"):
            Catalog.open(tmp_path / "catalog", operator=OPERATOR)
        assert revision_of(engine) == [("0005",)]
        assert table_rows(engine) == before
        with engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE report_index DROP COLUMN words")
    finally:
        engine.dispose()
    with Catalog.open(tmp_path / "catalog", operator=OPERATOR) as catalog:
        assert catalog.db.upgraded_from == "0005"
        assert catalog.has_record(added.record_id)
        assert [e.action for e in catalog.history()].count("catalog.upgraded") == 1
        assert catalog.verify(record_event=False).ok
