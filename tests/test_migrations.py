"""The database schema is made by Alembic migrations, and they match the SQLModel tables."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from evidence_catalog import Catalog
from evidence_catalog.store.database import HEAD_REVISION
from evidence_catalog.store.search import outside_metadata


def test_migrations_produce_exactly_the_tables_the_code_uses(catalog: Catalog) -> None:
    with catalog.db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": outside_metadata})
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


def test_a_format_1_catalog_with_records_upgrades_to_the_newest_format(tmp_path: Path) -> None:
    """A catalog written by format 1 (revision 0001) opens with this library: it is upgraded in
    place, every record reads as before, and the log still verifies."""
    import shutil

    from alembic import command

    from evidence_catalog.store.database import _alembic_config

    # Build the format-1 catalog the way format-1 code did: add files, then take the schema
    # back down to 0001 (the downgrade restores exactly the format-1 tables).
    source = tmp_path / "a.txt"
    source.write_text("a")
    with Catalog.init(tmp_path / "old") as catalog:
        [added] = catalog.add([source], tags=["t"], note="n")
        before = catalog.record(added.record_id)
        with catalog.db.engine.begin() as connection:
            command.downgrade(_alembic_config(connection), "0001")
    with sqlite3.connect(tmp_path / "old" / "catalog.db") as db:
        assert db.execute("select version_num from alembic_version").fetchall() == [("0001",)]
        columns = {row[1] for row in db.execute("pragma table_info(acquisition)")}
        assert "platform_key" not in columns
        # Format-1 acquisition bodies had none of the capture fields.
        db.execute(
            "update acquisition set body = json_remove(body, '$.other_artifacts', '$.platform_info', "
            "'$.responses', '$.withheld')"
        )
    shutil.copytree(tmp_path / "old", tmp_path / "copy")
    with Catalog.open(tmp_path / "copy", operator="Upgrader") as upgraded:
        assert upgraded.record(added.record_id) == before
        assert upgraded.verify().ok
        upgrade = [e for e in upgraded.history() if e.action == "catalog.upgraded"]
        assert [(e.details["from_revision"], e.details["to_revision"], e.actor.name) for e in upgrade] == [
            ("0001", HEAD_REVISION, "Upgrader")
        ]
    with Catalog.open(tmp_path / "copy") as again:  # upgraded once, logged once
        assert [e.action for e in again.history()].count("catalog.upgraded") == 1
    with sqlite3.connect(tmp_path / "copy" / "catalog.db") as db:
        assert db.execute("select version_num from alembic_version").fetchall() == [(HEAD_REVISION,)]
        assert db.execute("select outcome from acquisition").fetchall() == [("succeeded",)]
