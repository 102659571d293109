"""A hostile party's auto-archiver folder: rows copied, times out of range, text that is no
Unicode, files swapped after they were checked, timestamp tokens that do not stamp what they
sit beside.  Each is refused with a finding (or read right), never a traceback, and nothing is
half-imported.  The SQLite run is enough (no_postgresql_pass): nothing here is particular to
the database."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from asn1crypto import cms, tsp

from evidence_catalog import Catalog
from evidence_catalog.interchange import auto_archiver as aa
from evidence_catalog.operations.migrating import MigrationError
from tests.aa_rows import FIXTURE, P, index_of, rows_of, write_rows

pytestmark = pytest.mark.no_postgresql_pass

PROCESSED = re.compile(r"'_processed_at': datetime\.datetime\([^)]*\)")


def change_metadata(folder: Path, url: str, old: str | re.Pattern[str], new: str) -> int:
    """Replace *old* in the metadata cell of *url*'s row; its spreadsheet row number."""
    rows = rows_of(folder)
    i = index_of(rows, url)
    before = rows[i][1]
    rows[i][1] = old.sub(new, before, count=1) if isinstance(old, re.Pattern) else before.replace(old, new)
    assert rows[i][1] != before
    write_rows(folder, rows)
    return i + 1


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    copy = tmp_path / "aa"
    shutil.copytree(FIXTURE, copy)
    return copy


def stored(catalog: Catalog) -> list[str]:
    return sorted(p.name for p in (catalog.path / "blobs").rglob("*") if p.is_file() and not p.name.startswith("."))


def test_the_same_row_twice_in_one_csv_is_one_record_not_a_database_error(catalog: Catalog, folder: Path) -> None:
    rows = rows_of(folder)
    write_rows(folder, [*rows, rows[1], rows[1]])
    result = catalog.import_auto_archiver(folder, analyze=False)
    assert len(result.records_added) == 6 and not result.findings and not result.rows_refused
    assert len(list(catalog.records())) == 6 and catalog.verify().ok


def test_a_copy_of_a_refused_row_is_refused_with_it(catalog: Catalog, folder: Path) -> None:
    rows = rows_of(folder)
    write_rows(folder, [*rows, rows[1]])
    number = len(rows) + 1
    next((folder / "local_archive" / "http-127-0-0-1-8765-page-html").glob("*.jpg")).unlink()
    result = catalog.import_auto_archiver(folder, keep_going=True, analyze=False)
    assert result.rows_refused == (2, number) and len(result.records_added) == 5
    assert result.records_present == ()


OUT_OF_RANGE = {
    "processed after 9999": (
        PROCESSED,
        "'_processed_at': datetime.datetime(9999, 12, 31, 23, 0, "
        "tzinfo=datetime.timezone(datetime.timedelta(days=-1, seconds=68400)))",
        "metadata._processed_at",
    ),
    "processed before 1": (
        PROCESSED,
        "'_processed_at': datetime.datetime(1, 1, 1, 0, 0, "
        "tzinfo=datetime.timezone(datetime.timedelta(seconds=18000)))",
        "metadata._processed_at",
    ),
    "platform after 9999": (
        "'title'",
        "'timestamp': datetime.datetime(9999, 12, 31, 23, 0, tzinfo=tzoffset(None, -18000)), 'title'",
        "metadata.timestamp",
    ),
    "ends after 9999": (
        PROCESSED,
        "'_processed_at': datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc)",
        "metadata.archive_duration_seconds",
    ),
    "lone surrogate": ("'Test page with image'", "'a\\ud800b'", "metadata"),
}


@pytest.mark.parametrize("case", list(OUT_OF_RANGE))
def test_times_out_of_range_and_text_that_is_no_unicode_are_findings_not_crashes(
    catalog: Catalog, folder: Path, case: str
) -> None:
    old, new, field = OUT_OF_RANGE[case]
    number = change_metadata(folder, P + "page.html", old, new)
    with pytest.raises(MigrationError) as refused:
        catalog.import_auto_archiver(folder, analyze=False)
    assert [(f.row, f.field) for f in refused.value.findings] == [(number, field)]
    assert list(catalog.records()) == [] and stored(catalog) == []


def test_a_time_dateutil_parsed_with_its_offset_is_read_not_refused(catalog: Catalog, folder: Path) -> None:
    # auto-archiver's set_timestamp parses text with dateutil, which writes tzoffset(None, seconds)
    change_metadata(
        folder,
        P + "clip.mp4",
        "'timestamp': datetime.datetime(2026, 12, 5, 19, 34, 24, tzinfo=tzlocal())",
        "'timestamp': datetime.datetime(2026, 12, 5, 21, 34, 24, tzinfo=tzoffset(None, 7200))",
    )
    result = catalog.import_auto_archiver(folder, analyze=False)
    assert not result.findings
    [clip] = [r for r in catalog.records() if r.acquisitions[0].requested_url == P + "clip.mp4"]
    info = clip.acquisitions[0].platform_info
    assert info is not None and info.uploaded_at == dt.datetime(2026, 12, 5, 19, 34, 24, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="cannot be made"):
        aa.literal("datetime.datetime(2026, 1, 1, tzinfo=tzoffset(None, 90000))")


@pytest.fixture
def alarm() -> Iterator[None]:
    """Fail, not hang, if a read blocks."""

    def hung(signum: int, frame: object) -> None:
        raise TimeoutError("the import blocked")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_a_file_swapped_for_a_fifo_after_it_was_checked_is_refused_not_read(
    catalog: Catalog, folder: Path, monkeypatch: pytest.MonkeyPatch, alarm: None
) -> None:
    real = aa.resolve
    target = next((folder / "local_archive" / "http-127-0-0-1-8765-page-html").glob("*.jpg"))

    def racing(where: Path, key: str) -> Path:
        found = real(where, key)
        if found == target:  # checked a regular file; the attacker swaps it before it is opened
            target.unlink()
            os.mkfifo(target)
        return found

    monkeypatch.setattr(aa, "resolve", racing)
    with pytest.raises(MigrationError) as refused:
        catalog.import_auto_archiver(folder, analyze=False)
    assert any("no longer a regular file" in f.message for f in refused.value.findings)
    assert list(catalog.records()) == [] and stored(catalog) == []


PAGE = "http-127-0-0-1-8765-page-html"
PHOTO = "6830dd03a869827bd53b8943b643f98497f3908d885b6d15943c8ff737fbe234"


def reseal_photo(folder: Path) -> tuple[int, str]:
    """Change the page row's photo and its hash in the row (the forger's first step); the row's
    number and the new hash."""
    photo = folder / "local_archive" / PAGE / "6830dd03a869827bd53b8943.jpg"
    photo.write_bytes(photo.read_bytes() + b"forged")
    forged = hashlib.sha256(photo.read_bytes()).hexdigest()
    rows = rows_of(folder)
    i = index_of(rows, P + "page.html")
    rows[i][2] = rows[i][2].replace(f"SHA-256:{PHOTO}", f"SHA-256:{forged}")
    write_rows(folder, rows)
    return i + 1, forged


def hashes_file(folder: Path) -> Path:
    return folder / "local_archive" / PAGE / "06fc0d504ea9e8ca1302f42c.txt"


def token(when: dt.datetime, stamped: bytes) -> bytes:
    """A time-stamp token over *stamped* made at *when* (unsigned: a forger's own TSA)."""
    info = tsp.TSTInfo(
        {
            "version": "v1",
            "policy": "1.2.3.4",
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha512"},
                "hashed_message": hashlib.sha512(stamped).digest(),
            },
            "serial_number": 1,
            "gen_time": when,
        }
    )
    signed = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [],
            "encap_content_info": {"content_type": "tst_info", "content": info},
            "signer_infos": [],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()


def refused_with(catalog: Catalog, folder: Path) -> list[tuple[int | None, str, str]]:
    with pytest.raises(MigrationError) as refused:
        catalog.import_auto_archiver(folder, analyze=False)
    assert list(catalog.records()) == [] and stored(catalog) == []
    return [(f.row, f.field, f.message) for f in refused.value.findings]


def test_a_file_forged_with_its_hash_resealed_in_the_csv_is_caught_by_the_timestamped_hashes(
    catalog: Catalog, folder: Path
) -> None:
    number, _ = reseal_photo(folder)
    assert [(r, f) for r, f, _ in refused_with(catalog, folder)] == [(number, "media[4]._key")]


def test_resealing_the_hashes_file_too_is_caught_by_its_timestamp_token(catalog: Catalog, folder: Path) -> None:
    number, forged = reseal_photo(folder)
    hashes_file(folder).write_text(hashes_file(folder).read_text().replace(PHOTO, forged))
    [(row, field, message)] = refused_with(catalog, folder)
    assert (row, field) == (number, "media[4].timestamp_authority_files[0]._key")
    assert "does not stamp the hashes file" in message


def test_a_new_token_made_later_over_the_forged_hashes_is_caught_by_its_time(catalog: Catalog, folder: Path) -> None:
    number, forged = reseal_photo(folder)
    hashes_file(folder).write_text(hashes_file(folder).read_text().replace(PHOTO, forged))
    later = dt.datetime(2027, 3, 1, tzinfo=dt.UTC)
    (folder / "local_archive" / PAGE / "89cf59b711abb49d02d641d5").write_bytes(
        token(later, hashes_file(folder).read_bytes())
    )
    [(row, field, message)] = refused_with(catalog, folder)
    assert (row, field) == (number, "media[4].timestamp_authority_files[0]._key")
    assert "not while the row was archived" in message
    # made in time (a forger's own TSA, back-dated), it passes: signatures are not checked here
    archived = dt.datetime(2026, 12, 5, 19, 34, 30, tzinfo=dt.UTC)
    (folder / "local_archive" / PAGE / "89cf59b711abb49d02d641d5").write_bytes(
        token(archived, hashes_file(folder).read_bytes())
    )
    assert not catalog.import_auto_archiver(folder, analyze=False).findings


def test_a_token_that_is_no_token_is_a_finding(catalog: Catalog, folder: Path) -> None:
    (folder / "local_archive" / PAGE / "89cf59b711abb49d02d641d5").write_bytes(b"\x30\x80garbage")
    [(_, field, message)] = refused_with(catalog, folder)
    assert field == "media[4].timestamp_authority_files[0]._key" and "not an RFC 3161 time-stamp token" in message


def test_the_version_a_report_states_wins_over_the_one_given_in_the_summary_as_on_the_records(
    catalog: Catalog, folder: Path
) -> None:
    result = catalog.import_auto_archiver(folder, source_version="9.9", analyze=False)
    assert result.tool_version == "1.2.9"
    for record in catalog.records():
        [tool] = [t for t in record.acquisitions[0].tools if t.name == "auto-archiver"]
        [event] = [e for e in catalog.record_events(record.id) if e.details.get("source")]
        assert event.details["source"]["version"] == tool.version == "1.2.9"


def test_a_csv_saved_with_a_byte_order_mark_is_read_as_the_same_rows(catalog: Catalog, folder: Path) -> None:
    """A spreadsheet program saving "CSV UTF-8" starts the file with a byte order mark; the
    header is then still auto-archiver's, and the rows the same records."""
    database = folder / "db.csv"
    database.write_bytes(b"\xef\xbb\xbf" + database.read_bytes())
    result = catalog.import_auto_archiver(folder, analyze=False)
    assert len(result.records_added) == 6 and not result.findings


def test_a_nul_in_a_cell_is_a_finding_on_its_row(catalog: Catalog, folder: Path) -> None:
    """A NUL written as an escape in a cell's text is a finding naming the row: no catalog field
    can hold it (PostgreSQL refuses it), and it must not surface as a 'corrupt database'."""
    number = change_metadata(folder, P + "gallery.html", "'title': 'Gallery'", "'title': 'Gal\\x00lery'")
    with pytest.raises(MigrationError) as refused:
        catalog.import_auto_archiver(folder, analyze=False)
    assert [(f.row, f.field) for f in refused.value.findings] == [(number, "metadata")]
    assert "NUL" in refused.value.findings[0].message
