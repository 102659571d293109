"""Rows of a record the catalog does not hold, named by ``verify``.

A record's reports, acquisitions, files, tags and perceptual hashes are rows that name it
(``record_id``).  ``verify`` reads each record with its rows and compares it with the log, so a
row naming a record that does not exist was never read: one SQL ``INSERT`` of a report row with
the identity of a post not yet ingested, under a made-up record id, passed ``verify``, and the
next ingest of that post took it as held already and catalogued nothing.  Now every such row is
an ``UnloggedChange``.  (The foreign keys are switched off for the edit, as whoever edits the
database by hand can.)
"""

from __future__ import annotations

import contextlib
import io
import itertools
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from evidence_catalog import Catalog
from evidence_catalog.findings import UnloggedChange

from .conftest import raw_database, run_sql

#: The tables whose rows name a record, with the column that names a row.
CHILDREN = {
    "record_part": "id",
    "acquisition": "id",
    "record_artifact": "sha256",
    "record_tag": "tag",
    "perceptual_hash": "id",
}

POST_B = "Feed (Twitter)\nPost B: video of an execution\nPost B: video of an execution\n"


def picture(path: Path, colour: tuple[int, int, int]) -> Path:
    image = Image.new("RGB", (96, 64), colour)
    for x in range(0, 96, 8):
        for y in range(64):
            image.putpixel((x, y), (255 - colour[0], y * 4, x * 2))
    out = io.BytesIO()
    image.save(out, "PNG")
    path.write_bytes(out.getvalue())
    return path


@pytest.fixture
def filled(catalog: Catalog, tmp_path: Path) -> Catalog:
    files = tmp_path / "files"
    files.mkdir()
    picture(files / "school.png", (120, 10, 10))
    picture(files / "street.png", (10, 120, 10))
    (files / "statement.txt").write_text("a witness statement\n", encoding="utf-8")
    added = catalog.add([files], recursive=True)
    digest = tmp_path / "digest.txt"
    digest.write_text("Feed (Twitter)\nPost A: shelling near a school\nPost A: shelling near a school\n", "utf-8")
    catalog.ingest(digest)
    catalog.tag(added[0].record_id, ["school", "east"])
    return catalog


def rows(catalog: Catalog, table: str) -> list[dict[str, Any]]:
    with raw_database(catalog) as connection:
        return [dict(row) for row in connection.execute(sa.text(f"select * from {table}")).mappings()]


def copy_row(catalog: Catalog, table: str, row: dict[str, Any], **changed: Any) -> None:
    """Insert a copy of *row* (found by its key and record) with the *changed* values."""
    key = CHILDREN[table]
    chosen = ", ".join(f":new_{name}" if name in changed else name for name in row)
    statement = (
        f"insert into {table} ({', '.join(row)}) select {chosen} from {table}"
        f" where {key} = :old_key and record_id = :old_record"
    )
    params = {f"new_{name}": value for name, value in changed.items()}
    run_sql(catalog, statement, {**params, "old_key": row[key], "old_record": row["record_id"]}, foreign_keys=False)


def unlogged(catalog: Catalog) -> list[str]:
    """The subjects of ``verify``'s unlogged changes.  Other checks may find such a row as well
    (a perceptual hash's, or an analysis acquisition's, copied from one its record holds: the
    similarity index and the analyses are checked against every row)."""
    report = catalog.verify(record_event=False, remember=False)
    assert not report.ok
    return [f.subject for f in report.findings if isinstance(f, UnloggedChange)]


def test_every_kind_of_row_is_there_and_none_is_an_orphan(filled: Catalog) -> None:
    with filled.db.read() as session:
        assert filled.db.orphan_rows(session) == []
    for table in CHILDREN:
        assert rows(filled, table), table  # the tests below have a row of each to copy
    assert filled.verify(record_event=False, remember=False).ok


def test_a_report_row_of_no_record_is_named_before_it_can_hide_a_post(filled: Catalog, tmp_path: Path) -> None:
    # The identity post B will have: ingested into a copy of nothing but the catalog's settings.
    with Catalog.init(tmp_path / "scratch", operator=filled.operator) as scratch:
        (tmp_path / "b.txt").write_text(POST_B, encoding="utf-8")
        scratch.ingest(tmp_path / "b.txt")
        [identity] = [row["identity"] for row in rows(scratch, "record_part")]
    [report] = rows(filled, "record_part")
    copy_row(filled, "record_part", report, id="forged-part", record_id="no-such-record", identity=identity)
    assert unlogged(filled) == [
        "record_part row forged-part (of record no-such-record, which the catalog does not hold)"
    ]


@pytest.mark.parametrize("table", sorted(CHILDREN))
def test_a_row_of_each_table_naming_no_record_is_named(filled: Catalog, table: str) -> None:
    key = CHILDREN[table]
    row = rows(filled, table)[0]
    new_key: Any = 987654 if key == "id" and isinstance(row[key], int) else f"forged-{table}"
    copy_row(filled, table, row, **{key: new_key, "record_id": "0000-gone"})
    assert unlogged(filled) == [f"{table} row {new_key} (of record 0000-gone, which the catalog does not hold)"]


def test_a_row_moved_to_another_existing_record_is_still_a_mismatch(filled: Catalog) -> None:
    [report] = rows(filled, "record_part")
    other = next(r for r in filled.record_ids() if r != report["record_id"])
    run_sql(filled, "update record_part set record_id = :other where id = :id", {"other": other, "id": report["id"]})
    report_ = filled.verify(record_event=False, remember=False)
    kinds = {f.kind for f in report_.findings}
    assert "record_mismatch" in kinds and "unlogged_change" not in kinds, report_.findings


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_exactly_the_rows_moved_to_no_record_are_named(filled: Catalog, data: st.DataObject) -> None:
    serial = itertools.count()
    every = [(table, row) for table in sorted(CHILDREN) for row in rows(filled, table)]
    chosen = data.draw(st.lists(st.sampled_from(range(len(every))), min_size=1, max_size=4, unique=True))
    gone = data.draw(st.sampled_from(["gone-1", "gone-2", "ZZZ", "0"]))
    expected = []
    for index in chosen:
        table, row = every[index]
        key = CHILDREN[table]
        new_key: Any = 900000 + next(serial) if isinstance(row[key], int) else f"moved-{next(serial)}"
        copy_row(filled, table, row, **{key: new_key, "record_id": gone})
        expected.append(f"{table} row {new_key} (of record {gone}, which the catalog does not hold)")
    try:
        assert sorted(unlogged(filled)) == sorted(expected)
    finally:
        for table in CHILDREN:  # back as it was, for the next example
            run_sql(filled, f"delete from {table} where record_id = :gone", {"gone": gone}, foreign_keys=False)
    assert filled.verify(record_event=False, remember=False).ok


@pytest.mark.sqlite_only
def test_a_row_of_no_record_at_all_is_named(filled: Catalog) -> None:
    # A review dropped NOT NULL from the schema (as whoever can write the file can) and put a
    # report row with no record id: the first version looked its rows up by ``IN (NULL)``,
    # found none, and verify said intact while the next ingest skipped that post.
    with contextlib.closing(sqlite3.connect(filled.path / "catalog.db")) as db:
        db.execute("PRAGMA writable_schema = ON")
        db.execute(
            "update sqlite_schema set sql = replace(sql, 'record_id VARCHAR(36) NOT NULL', 'record_id VARCHAR(36)')"
            " where name = 'record_part'"
        )
        db.commit()
    [report] = rows(filled, "record_part")
    copy_row(filled, "record_part", report, id="forged-null", record_id=None)
    assert unlogged(filled) == ["record_part row forged-null (of record None, which the catalog does not hold)"]


@pytest.mark.sqlite_only
def test_record_ids_of_other_types_are_named_without_a_traceback(filled: Catalog) -> None:
    # SQLite keeps a value of any type in any column: a blob and a text orphan together made the
    # first version's sort raise TypeError, and the similarity index's check too.
    [report] = rows(filled, "record_part")
    copy_row(filled, "record_part", report, id="forged-blob", record_id=b"no-such-record")
    copy_row(filled, "record_part", report, id="forged-text", record_id="text-gone")
    picture_hash = rows(filled, "perceptual_hash")[0]
    copy_row(filled, "perceptual_hash", picture_hash, id=999999, record_id=picture_hash["record_id"].encode())
    subjects = unlogged(filled)
    assert "record_part row forged-blob (of record b'no-such-record', which the catalog does not hold)" in subjects
    assert "record_part row forged-text (of record text-gone, which the catalog does not hold)" in subjects
    assert any(s.startswith("perceptual_hash row 999999 (of record b'") for s in subjects)
