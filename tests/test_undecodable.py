"""A SQLite value that is not UTF-8 text, named by ``verify``.

SQLite stores any bytes as TEXT, and the driver refuses to hand such a value over: the whole
query fails.  A review put such bytes into one column and ``verify`` stopped with "catalog
database could not be read (Could not decode to UTF-8 column 'details' ...)", naming neither the
table nor the row.  Now it reports every such value, the row named as the catalog names it, and
says that nothing else was checked.  PostgreSQL checks the encoding of what it stores.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence_catalog import Catalog
from evidence_catalog.errors import CatalogDatabaseError
from evidence_catalog.findings import EntryUnreadable
from evidence_catalog.store.undecodable import undecodable_values
from tests.conftest import catalog_database_url

from .test_hostile_log import OPERATOR, database, new_catalog

pytestmark = pytest.mark.sqlite_only

DIGEST = "Feed (Twitter)\nFirst post, naïve café\nFirst post\nSecond post 🙂\nSecond post\n"


def made(path: Path) -> Path:
    files = path.parent / f"{path.name}-files"
    files.mkdir()
    for n in range(2):
        (files / f"photo-{n}.bin").write_bytes(f"bytes of file {n}".encode())
    digest = path.parent / f"{path.name}-digest.txt"
    digest.write_text(DIGEST, encoding="utf-8")
    with new_catalog(path, encrypted=False) as catalog:
        added = catalog.add([files], recursive=True, analyze=False)
        catalog.ingest(digest)
        catalog.tag(added[0].record_id, ["school"])
    return path


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return made(tmp_path_factory.mktemp("undecodable") / "catalog")


@pytest.fixture
def copy(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / "catalog"
    shutil.copytree(source, target)
    return target


def cells(path: Path) -> list[tuple[str, str, int]]:
    """Every (table, column, rowid) holding text, outside the search index (``report_*``), which
    verification does not read."""
    found: list[tuple[str, str, int]] = []
    with database(path) as db:
        tables = db.execute(
            sa.text(
                "select name from sqlite_schema where type = 'table' and name not like 'sqlite_%'"
                " and sql not like 'CREATE VIRTUAL%' and name not like 'report_%' order by name"
            )
        ).scalars()
        for table in list(tables):
            if not db.execute(sa.text(f"select count(*) from pragma_table_info('{table}') where pk = 1")).scalar():
                continue
            columns = db.execute(sa.text(f"select name from pragma_table_info('{table}')")).scalars().all()
            for column in columns:
                rows = db.execute(sa.text(f'select rowid from "{table}" where typeof("{column}") = \'text\''))
                found.extend((table, column, rowid) for (rowid,) in rows)
    return found


def damage(path: Path, table: str, column: str, rowid: int, value: bytes) -> None:
    with database(path) as db:
        db.execute(
            sa.text(f'update "{table}" set "{column}" = cast(:value as text) where rowid = :rowid'),
            {"value": value, "rowid": rowid},
        )


def verify_command(path: Path) -> subprocess.CompletedProcess[str]:
    """``evidence-catalog verify`` of the catalog at *path*, in a new interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "evidence_catalog", "verify", "--catalog", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def opens_neither_way(path: Path) -> None:
    """The catalog at *path*, its schema's version not UTF-8, is refused to read and to write,
    the column named."""
    for read_only in (True, False):
        with pytest.raises(CatalogDatabaseError, match="column 'version_num'"):
            Catalog.open(path, read_only=read_only)


def verified(path: Path) -> Any:
    with Catalog.open(path, operator=OPERATOR) as catalog:
        return catalog.verify(record_event=False, remember=False)


def not_utf8() -> st.SearchStrategy[bytes]:
    def bad(data: bytes) -> bool:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return True
        return False

    return st.binary(min_size=1, max_size=80).filter(bad)


def test_a_catalog_with_text_in_many_scripts_has_no_undecodable_value(source: Path) -> None:
    with Catalog.open(source, read_only=True) as catalog:
        assert undecodable_values(catalog.db.engine) == []
    assert verified(source).ok


@pytest.mark.parametrize(
    ("table", "column", "subject"),
    [
        ("custody_event", "details", "custody event 3"),
        ("custody_event", "action", "custody event 3"),
        ("record", "title", "record "),
        ("artifact", "media_type", "artifact "),
        ("acquisition", "method", "record "),
        ("acquisition", "body", "record "),
        ("record_part", "body", "record "),
        ("record_part", "identity", "record "),
        ("checkpoint", "note", "checkpoint 1"),
        ("merkle_node", "hash", "Merkle tree node 0 of level 0"),
        ("record_tag", "tag", "record "),
    ],
)
def test_a_value_that_is_not_utf8_is_named_and_nothing_is_called_checked(
    copy: Path, table: str, column: str, subject: str
) -> None:
    where = "seq = 3" if table == "custody_event" else f'"{column}" is not null'
    with database(copy) as db:
        rowid = db.execute(sa.text(f'select min(rowid) from "{table}" where {where}')).scalar()
    assert rowid is not None
    damage(copy, table, column, rowid, b"caf\xe9")
    report = verified(copy)
    assert not report.ok and report.records_checked == report.events_checked == report.artifacts_checked == 0
    first, rest = report.findings
    assert isinstance(first, EntryUnreadable) and first.subject.startswith(subject), first
    assert f"column '{column}' of table '{table}'" in first.reason and "63 61 66 e9" in first.reason
    assert isinstance(rest, EntryUnreadable) and "nothing else was checked" in rest.reason


def test_a_catalog_that_cannot_be_opened_names_the_value(copy: Path) -> None:
    # The log key's event is read to open the catalog at all: no report of findings, but the one
    # problem ``verify`` reports for a database it cannot read (exit status 1), naming the value.
    damage(copy, "custody_event", "details", 1, b"\x80")
    with pytest.raises(CatalogDatabaseError, match=r"custody event 1: column 'details' of table 'custody_event' holds"):
        Catalog.open(copy, operator=OPERATOR)
    done = verify_command(copy)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "PROBLEM" in done.stdout and "custody event 1: column 'details'" in done.stdout, done


def test_every_damaged_value_is_named_not_only_the_first(copy: Path) -> None:
    damage(copy, "custody_event", "details", 3, b"\xff")
    damage(copy, "record", "title", 1, b"\xc3")
    damage(copy, "record", "id", 2, b"\x80abc")  # the key itself: shown with its bytes escaped
    subjects = [f.subject for f in verified(copy).findings[:-1]]
    assert subjects[0] == "custody event 3"
    assert subjects[1].startswith("record ") and subjects[2] == "record \\x80abc"


def test_other_reads_name_the_row(copy: Path) -> None:
    damage(copy, "record", "title", 1, b"\xc3")
    with Catalog.open(copy, read_only=True) as catalog:
        [first, *_] = catalog.record_ids()
        wrong = rf"record {first}: column 'title' of table 'record' holds 1 bytes"
        with pytest.raises(CatalogDatabaseError, match=wrong):
            catalog.record(first)


def test_the_command_reports_it_and_exits_non_zero(copy: Path) -> None:
    damage(copy, "custody_event", "details", 2, b"\xff\xfe")
    done = verify_command(copy)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "custody event 2 cannot be read" in done.stdout + done.stderr
    assert "ff fe" in done.stdout + done.stderr


def test_a_schema_version_that_is_not_utf8_stops_the_catalog_opening_and_says_where(copy: Path) -> None:
    # (one cell of hundreds: the property test below draws it now and then)
    damage(copy, "alembic_version", "version_num", 1, b"\x80")
    opens_neither_way(copy)
    done = verify_command(copy)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done
    said = done.stdout + done.stderr
    assert "version_num" in said and str(copy / "catalog.db") in said, done


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), value=not_utf8())
def test_any_value_anywhere_that_is_not_utf8_is_named(
    source: Path, tmp_path: Path, data: st.DataObject, value: bytes
) -> None:
    target = tmp_path / f"catalog-{len(list(tmp_path.iterdir()))}"
    shutil.copytree(source, target)
    # artifact.stored_at is written and never read (neither verified nor handed out).
    table, column, rowid = data.draw(st.sampled_from([c for c in cells(source) if c[:2] != ("artifact", "stored_at")]))
    damage(target, table, column, rowid, value)
    engine = sa.create_engine(catalog_database_url(target))  # (one cell makes the catalog unopenable)
    try:
        [named] = undecodable_values(engine)
    finally:
        engine.dispose()
    assert (named.table, named.column, named.size) == (table, column, len(value))
    assert named.head == value[:32].hex(" ")
    if table == "alembic_version":  # the schema's version, read before anything else: the catalog does not open
        opens_neither_way(target)
        return
    # Named when verification meets it; a row nothing reads any more (its key damaged, say)
    # is still a finding of some other kind.  The log key's event stops the catalog opening,
    # but for its action: the key's events are found by their action in SQL, which compares
    # the bytes without reading them, so that one is met by verification, and named there.
    if (table, rowid) == ("custody_event", 1) and column != "action":
        with pytest.raises(CatalogDatabaseError, match=re.escape(named.subject)):
            verified(target)
        return
    report = verified(target)
    assert not report.ok
    if report.events_checked == 0:
        assert any(isinstance(f, EntryUnreadable) and f.subject == named.subject for f in report.findings)


def test_a_write_that_meets_the_value_names_it_and_changes_nothing(copy: Path) -> None:
    with database(copy) as db:
        [(rowid, record_id)] = db.execute(sa.text("select rowid, record_id from record_tag")).all()
    damage(copy, "record_tag", "tag", rowid, b"school\xff")
    with Catalog.open(copy, operator=OPERATOR) as catalog:
        events = len(catalog.history())
        with pytest.raises(CatalogDatabaseError, match=rf"record {record_id} \(record_tag row record_id"):
            catalog.tag(record_id, ["east"])
        assert len(catalog.history()) == events  # nothing was written
