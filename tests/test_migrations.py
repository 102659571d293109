"""The database schema is made by Alembic migrations, and they match the SQLModel tables."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from evidence_catalog import Catalog
from evidence_catalog.store.database import HEAD_REVISION


def test_migrations_produce_exactly_the_tables_the_code_uses(catalog: Catalog) -> None:
    with catalog.db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def test_catalog_database_records_its_schema_revision(catalog: Catalog) -> None:
    with sqlite3.connect(catalog.path / "catalog.db") as db:
        assert db.execute("select version_num from alembic_version").fetchall() == [(HEAD_REVISION,)]


def test_reopening_does_not_recreate_or_change_the_schema(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "a").write_text("a")
    catalog.add([tmp_path / "a"])
    catalog.close()
    with sqlite3.connect(catalog.path / "catalog.db") as db:
        before = db.execute("select sql from sqlite_master order by name").fetchall()
    with Catalog.open(catalog.path) as again:
        assert len(list(again.records())) == 1
    with sqlite3.connect(catalog.path / "catalog.db") as db:
        assert db.execute("select sql from sqlite_master order by name").fetchall() == before


def test_the_head_revision_constant_names_the_newest_migration() -> None:
    from alembic.script import ScriptDirectory

    from evidence_catalog.store.database import HEAD_REVISION, _alembic_config

    assert ScriptDirectory.from_config(_alembic_config()).get_current_head() == HEAD_REVISION
