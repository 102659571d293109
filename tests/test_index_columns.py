"""An acquisition row's indexed columns against its body.

``method``, ``started_at``, ``requested_url``, ``platform_key``, ``outcome`` and
``artifact_sha256`` repeat what the acquisition's ``body`` (the document its custody event holds)
says, so that an earlier capture of the same item, or the documents an analysis derived, can be
looked up.  A hostile review changed each of them alone with SQL and ``verify`` still said the
catalog was intact: only the body was compared with the log.  A changed column would steer a
later capture to another record's "earlier capture".  Now ``verify`` names the record.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence_catalog import Catalog
from evidence_catalog.findings import EntryUnreadable

from .test_hostile_log import OPERATOR, database, new_catalog


def made(path: Path) -> Path:
    files = path.parent / f"{path.name}-files"
    files.mkdir()
    for n in range(3):
        (files / f"photo-{n}.bin").write_bytes(f"bytes of file {n}".encode())
    with new_catalog(path, encrypted=False) as catalog:
        catalog.add([files], recursive=True, analyze=False)
    return path


def acquisitions(path: Path) -> list[dict[str, Any]]:
    with database(path) as db:
        query = sa.text("select * from acquisition order by custody_seq")
        return [dict(row._mapping) for row in db.execute(query)]


def set_column(path: Path, acquisition_id: str, column: str, value: object) -> None:
    assert column in {
        "method",
        "started_at",
        "requested_url",
        "platform_key",
        "outcome",
        "artifact_sha256",
        "custody_seq",
    }
    with database(path) as db:
        query = sa.text(f"update acquisition set {column} = :value where id = :id")
        db.execute(query, {"value": value, "id": acquisition_id})


def findings(path: Path) -> list[Any]:
    with Catalog.open(path, operator=OPERATOR) as catalog:
        return list(catalog.verify(record_event=False, remember=False).findings)


FORGED = {
    "method": "captured_from_url",
    "started_at": "2020-01-01 00:00:00.000000",
    "requested_url": "https://example.org/watch?v=other",
    "platform_key": "youtube:other",
    "outcome": "failed",
}


@pytest.mark.parametrize("column", sorted(FORGED))
def test_a_column_changed_alone_is_named(tmp_path: Path, column: str) -> None:
    path = made(tmp_path / "catalog")
    assert findings(path) == []
    row = acquisitions(path)[1]
    set_column(path, row["id"], column, FORGED[column])
    [found] = findings(path)
    assert isinstance(found, EntryUnreadable) and found.subject == f"record {row['record_id']}", found
    assert column in found.reason and row["id"] in found.reason


def test_the_artifact_column_pointed_at_another_artifact_is_named(tmp_path: Path) -> None:
    path = made(tmp_path / "catalog")
    first, second = acquisitions(path)[:2]
    set_column(path, second["id"], "artifact_sha256", first["artifact_sha256"])
    found = findings(path)
    assert any(isinstance(f, EntryUnreadable) and "artifact_sha256" in f.reason for f in found), found


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return made(tmp_path_factory.mktemp("index-columns") / "catalog")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pick=st.integers(min_value=0, max_value=10),
    column=st.sampled_from(["method", "requested_url", "platform_key", "outcome", "artifact_sha256"]),
    value=st.one_of(
        st.text(max_size=40),
        st.just("added_from_disk"),
        st.just("succeeded"),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
    ),
)
def test_any_other_value_in_an_indexed_column_is_a_finding(
    prepared: Path, tmp_path_factory: pytest.TempPathFactory, pick: int, column: str, value: object
) -> None:
    path = tmp_path_factory.mktemp("copy") / "catalog"
    shutil.copytree(prepared, path)
    rows = acquisitions(path)
    row = rows[pick % len(rows)]
    if value == row[column] and type(value) is type(row[column]):
        return
    set_column(path, row["id"], column, value)
    assert any(isinstance(f, EntryUnreadable) and f.subject == f"record {row['record_id']}" for f in findings(path))


DIGEST = Path(__file__).resolve().parent.parent / "examples" / "feeds" / "demo-digest.txt"


def test_a_reports_identity_changed_alone_is_named(tmp_path: Path) -> None:
    # The identity is what an ingest looks a report up by: another would make the same post
    # seem new (a second record of it), or a new post seem held already (not ingested).
    path = tmp_path / "catalog"
    with new_catalog(path, encrypted=False) as catalog:
        catalog.ingest(DIGEST)
    assert findings(path) == []
    with database(path) as db:
        query = sa.text("select id, record_id, identity from record_part where kind = 'report' order by id")
        part_id, record_id, identity = db.execute(query).first()  # type: ignore[misc]
        assert identity
        db.execute(sa.text("update record_part set identity = :v where id = :id"), {"v": identity + "x", "id": part_id})
    [found] = findings(path)
    assert isinstance(found, EntryUnreadable) and found.subject == f"record {record_id}" and "identity" in found.reason


@pytest.mark.sqlite_only  # PostgreSQL refuses such a value
def test_an_unreadable_row_elsewhere_does_not_turn_the_check_off(tmp_path: Path) -> None:
    # A row the driver cannot convert makes a page be read again a record at a time: the
    # columns of every record are still held to their bodies then.
    path = made(tmp_path / "catalog")
    row = acquisitions(path)[-1]
    with database(path) as db:
        first = db.execute(sa.text("select min(id) from record")).scalar_one()
        db.execute(
            sa.text(
                "insert into record_part (id, record_id, kind, identity, position, custody_seq, body)"
                " values ('orphan', :between, 'note', null, 0, 1, '{not json')"
            ),
            {"between": first + "~"},
        )
    set_column(path, row["id"], "outcome", "failed")
    found = findings(path)
    assert any(isinstance(f, EntryUnreadable) and f.subject == f"record {row['record_id']}" for f in found), found


EXAMPLE_PHOTO = Path(__file__).resolve().parent.parent / "examples" / "damaged-building.jpg"


@pytest.mark.sqlite_only  # PostgreSQL refuses such a value
def test_a_time_column_that_is_no_time_is_named_and_the_record_still_reads(tmp_path: Path) -> None:
    # The analysed photo's record is read whole again by the analyses' check: the column must
    # not make that read fail (it is not what the record holds), only be named.
    path = tmp_path / "catalog"
    with new_catalog(path, encrypted=False) as catalog:
        [added] = catalog.add([EXAMPLE_PHOTO], analyze=True)
    with database(path) as db:
        db.execute(
            sa.text(
                "update acquisition set started_at = 'not a time' where record_id = :r and method = 'added_from_disk'"
            ),
            {"r": added.record_id},
        )
    [found] = findings(path)
    assert isinstance(found, EntryUnreadable) and found.subject == f"record {added.record_id}", found
    with Catalog.open(path, operator=OPERATOR) as catalog:
        [record] = catalog.records([added.record_id])
        assert record.id == added.record_id and record.acquisitions


def test_the_event_an_acquisition_names_changed_alone_is_named(tmp_path: Path) -> None:
    # custody_seq orders a record's acquisitions and picks the newest earlier capture of an
    # item: moved to another event (here the newest one), a capture would be taken for the
    # newest, its order kept.
    path = made(tmp_path / "catalog")
    rows = acquisitions(path)
    with database(path) as db:
        newest = db.execute(sa.text("select max(seq) from custody_event")).scalar_one()
    row = rows[0]
    assert row["custody_seq"] != newest
    set_column(path, row["id"], "custody_seq", newest)
    [found] = findings(path)
    assert isinstance(found, EntryUnreadable) and found.subject == f"record {row['record_id']}", found
    assert "custody_seq" in found.reason
