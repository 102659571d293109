"""Importing what bellingcat's auto-archiver archived, against its real output
(tests/fixtures/auto_archiver/out, made by make_fixture.sh running auto-archiver 1.2.9 offline).

The bad inputs are made here from a copy of that output: files missing or changed, formula
cells, broken rows, hashes and URLs in the wrong form, paths that leave the folder.  The
SQLite run is enough (no_postgresql_pass): nothing here is particular to the database."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence_catalog import Catalog
from evidence_catalog.custody import Action
from evidence_catalog.interchange import auto_archiver as aa
from evidence_catalog.model import AcquisitionMethod, ArtifactRole
from evidence_catalog.operations.migrating import MigrationError
from tests.aa_rows import FIXTURE, P, index_of, rows_of, write_rows

pytestmark = pytest.mark.no_postgresql_pass

KEY = re.compile(r"'_key': '(\./local_archive/[^']+)'")


def number_of(rows: list[list[str]], url: str) -> int:
    """The spreadsheet row number (header = 1) of the row of *url*."""
    return index_of(rows, url) + 1


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    copy = tmp_path / "aa"
    shutil.copytree(FIXTURE, copy)
    return copy


def test_every_archived_row_becomes_a_record_with_its_files_hashes_url_title_and_time(
    catalog: Catalog, folder: Path
) -> None:
    result = catalog.import_auto_archiver(folder)
    rows = rows_of(folder)[1:]
    assert len(result.records_added) == len(rows) == 6 and not result.findings
    assert result.tool_version == "1.2.9"
    records = {r.acquisitions[0].requested_url: r for r in catalog.records()}
    assert set(records) == {
        P + n for n in ("page.html", "clip.mp4", "video.html", "gallery.html", "formula.html", "missing.html")
    }
    # Analysed after the import, as add and ingest do by default: each picture and video it
    # brought as an original or a thumbnail has its analysis document on its record.
    for record in records.values():
        pictures = {
            e.artifact.sha256
            for e in record.artifacts
            if e.role in (ArtifactRole.ORIGINAL, ArtifactRole.THUMBNAIL)
            and e.artifact.media_type.startswith(("image/", "video/"))
        }
        analysed = {source for e in record.artifacts for source in e.derived_from}
        assert pictures <= analysed, record.title
    assert all(
        any(e.derived_from for e in records[P + name].artifacts) for name in ("clip.mp4", "video.html", "page.html")
    )
    for number, row in enumerate(rows, start=2):
        record = records[re.search(r"'url': '([^']+)'", row[1]).group(1)]  # type: ignore[union-attr]
        held = {e.artifact.sha256: e for e in record.artifacts}
        for key in KEY.findall(row[2]):  # every file the row names, hashed here independently
            assert hashlib.sha256((folder / key).read_bytes()).hexdigest() in held
        parsed, _ = aa.parse_row(number, row)
        assert parsed is not None
        asserted = [(m.key, m.asserted) for m in parsed.media if m.asserted]
        assert asserted
        for key, value in asserted:
            assert f"SHA-256:{hashlib.sha256((folder / str(key)).read_bytes()).hexdigest()}" == value
        acquisition, *analyses = record.acquisitions  # the import's, then the analyses'
        assert all(a.method is AcquisitionMethod.DERIVED for a in analyses)
        assert acquisition.method is AcquisitionMethod.IMPORTED
        assert any(t.name == "auto-archiver" and t.version == "1.2.9" for t in acquisition.tools)
        stamp = re.search(r"'_processed_at': datetime\.datetime\(([\d, ]+)", row[1]).group(1)  # type: ignore[union-attr]
        started = acquisition.started_at
        assert [int(x) for x in stamp.split(",") if x.strip()] == [*started.timetuple()[:6], started.microsecond]
        # the row, verbatim, as its own document
        files = {hashlib.sha256((folder / key).read_bytes()).hexdigest() for key in KEY.findall(row[2])}
        [document] = [e for e in record.artifacts if e.artifact.sha256 not in files and not e.derived_from]
        assert document.role is ArtifactRole.PLATFORM_METADATA
        with catalog.open_artifact(document.artifact.sha256) as stream:
            kept = json.loads(stream.read())
        assert (kept["status"], kept["metadata"], kept["media"]) == tuple(row)
        [event] = [e for e in catalog.record_events(record.id) if e.action == Action.RECORD_IMPORTED]
        source = event.details["source"]
        assert (source["tool"], source["version"], source["row"]) == ("auto-archiver", "1.2.9", number)
        assert source["path"].endswith("aa") and source["database"].endswith("db.csv")
    page = records[P + "page.html"]
    assert page.title == "Test page with image"
    roles = {e.role for e in page.artifacts}
    assert {
        ArtifactRole.SCREENSHOT,
        ArtifactRole.PAGE_PRINT,
        ArtifactRole.RENDERED_PAGE,
        ArtifactRole.ORIGINAL,
    } <= roles
    clip = records[P + "clip.mp4"]
    # The CSV gives the platform's time in the zone of the machine auto-archiver ran on
    # (tzlocal()), which it does not say; auto-archiver's own metadata.json of the item gives the
    # same time with its offset (the fixture was made with TZ=UTC).
    [clip_row] = [r for r in rows if f"'url': '{P}clip.mp4'" in r[1]]
    assert "'timestamp': datetime.datetime(2026, 12, 5, 19, 34, 24, tzinfo=tzlocal())" in clip_row[1]
    assert clip.acquisitions[0].platform_info is not None
    assert clip.acquisitions[0].platform_info.uploaded_at == dt.datetime(2026, 12, 5, 19, 34, 24, tzinfo=dt.UTC)
    [clip_event] = [e for e in catalog.history() if e.action == Action.RECORD_IMPORTED and e.subject == clip.id]
    assert clip_event.details["source"]["timestamp_zone_from"] == "metadata_json"
    with_zone, _ = aa.parse_row(
        3, [clip_row[0], clip_row[1].replace("tzlocal()", "datetime.timezone.utc"), clip_row[2]]
    )
    assert with_zone is not None and with_zone.platform_at is not None
    assert any(e.role is ArtifactRole.THUMBNAIL for e in clip.artifacts)
    assert records[P + "formula.html"].title == '=HYPERLINK("http://127.0.0.1:8765/x","click")'  # data, kept as it is
    assert catalog.verify().ok


def test_importing_again_adds_nothing_and_a_second_folder_stores_shared_bytes_once(
    catalog: Catalog, folder: Path, tmp_path: Path
) -> None:
    first = catalog.import_auto_archiver(folder / "db.csv", analyze=False)
    again = catalog.import_auto_archiver(folder, analyze=False)
    assert again.records_added == () and set(again.records_present) == set(first.records_added)
    assert again.artifacts_stored == 0
    other = tmp_path / "other"
    shutil.copytree(FIXTURE, other)
    rows = rows_of(other)
    rows[number_of(rows, P + "clip.mp4") - 1][1] = rows[number_of(rows, P + "clip.mp4") - 1][1].replace(
        P + "clip.mp4", P + "clip-again.mp4"
    )
    write_rows(other, rows)
    second = catalog.import_auto_archiver(other, analyze=False)
    assert len(second.records_added) == 1 and len(second.records_present) == 5
    assert second.artifacts_stored == 1  # the new row's own document; its files are here already
    assert catalog.verify().ok


def _rows(folder: Path, change: Callable[[list[list[str]]], None]) -> None:
    rows = rows_of(folder)
    change(rows)
    write_rows(folder, rows)


def _text(folder: Path, old: str, new: str) -> None:
    text = (folder / "db.csv").read_text(encoding="utf-8")
    assert old in text
    (folder / "db.csv").write_text(text.replace(old, new), encoding="utf-8")


def _missing(folder: Path) -> None:
    next((folder / "local_archive" / "http-127-0-0-1-8765-clip-mp4").glob("*.mp4")).unlink()


def _tampered(folder: Path) -> None:
    with open(next((folder / "local_archive" / "http-127-0-0-1-8765-page-html").glob("*.jpg")), "ab") as f:
        f.write(b"x")


def _formula(start: str) -> Callable[[Path], None]:
    def change(rows: list[list[str]]) -> None:
        rows[number_of(rows, P + "page.html") - 1][0] = start + 'HYPERLINK("http://127.0.0.1/x","success")'

    return lambda folder: _rows(folder, change)


def _cell(column: int, value: str) -> Callable[[Path], None]:
    def change(rows: list[list[str]]) -> None:
        rows[number_of(rows, P + "page.html") - 1][column] = value

    return lambda folder: _rows(folder, change)


def _short_row(folder: Path) -> None:
    _rows(folder, lambda rows: rows[number_of(rows, P + "page.html") - 1].pop())


def _truncated(folder: Path) -> None:
    data = (folder / "db.csv").read_bytes()
    (folder / "db.csv").write_bytes(data[: len(data) - 700])  # as a killed append would leave it


def _hash(old_value: Callable[[str], str]) -> Callable[[Path], None]:
    full = re.search(r"SHA-256:0[0-9a-f]{63}", (FIXTURE / "db.csv").read_text()).group(0)  # type: ignore[union-attr]
    return lambda folder: _text(folder, full, old_value(full))


def _url(value: str) -> Callable[[Path], None]:
    return lambda folder: _text(folder, f"'url': '{P}page.html'", f"'url': {value!r}")


def _key(value: str) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        key = KEY.findall(rows_of(folder)[number_of(rows_of(folder), P + "page.html") - 1][2])[0]
        _text(folder, f"'_key': '{key}'", f"'_key': {value!r}")

    return change


def _symlink_out(folder: Path) -> None:
    outside = folder.parent / "secret.txt"
    outside.write_text("not auto-archiver's")
    (folder / "local_archive" / "link").symlink_to(outside)
    _key("./local_archive/link")(folder)


#: Each bad input: how it is made, the URL of the row it is in, the field and why.
BAD = {
    "missing media": (_missing, "clip.mp4", "media[0]._key", "no such file"),
    "tampered bytes": (_tampered, "page.html", "media[3].properties.hash", "changed since it was archived"),
    "formula =": (_formula("="), "page.html", "status", "spreadsheet formula"),
    "formula +": (_formula("+"), "page.html", "status", "spreadsheet formula"),
    "formula -": (_formula("-"), "page.html", "status", "spreadsheet formula"),
    "formula @": (_formula("@"), "page.html", "status", "spreadsheet formula"),
    "formula in metadata": (_cell(1, "=1+1"), "page.html", "metadata", "spreadsheet formula"),
    "short row": (_short_row, "page.html", "row", "has 2 cell(s)"),
    "not a literal": (
        _cell(1, "{'url': 'http://127.0.0.1:8765/a.html', "),
        "page.html",
        "metadata",
        "not a Python literal",
    ),
    "a call": (_cell(2, "[__import__('os').system('touch PWNED')]"), "page.html", "media", "never writes"),
    "not a dict": (_cell(1, "['not', 'a', 'dict']"), "page.html", "metadata", "is list"),
    "failed status": (_cell(0, "nothing archived"), "page.html", "status", "did not archive"),
    "truncated last row": (_truncated, "missing.html", "media", "not a Python literal"),
    "short hex": (
        _hash(lambda h: "SHA-256:" + h[8:].lstrip("0")),
        "gallery.html",
        ".properties.hash",
        "without its leading zeros",
    ),
    "wrong prefix": (_hash(lambda h: "MD5:" + h[8:]), "gallery.html", ".properties.hash", "algorithm prefix 'MD5'"),
    "wrong length": (_hash(lambda h: h + "0"), "gallery.html", ".properties.hash", "65 hex digits, not 64"),
    "javascript": (_url("javascript:alert(1)"), "page.html", "metadata.url", "javascript: URL"),
    "relative": (_url("/page.html"), "page.html", "metadata.url", "not an absolute URL"),
    "empty url": (_url(""), "page.html", "metadata.url", "is empty"),
    "control character": (_url("http://127.0.0.1:8765/a\x01b"), "page.html", "metadata.url", "control characters"),
    "key ..": (_key("./local_archive/../../secret.txt"), "page.html", "media[0]._key", "leaves the folder"),
    "key absolute": (_key("/etc/passwd"), "page.html", "media[0]._key", "absolute path"),
    "key symlink out": (_symlink_out, "page.html", "media[0]._key", "symbolic link"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_input_names_row_field_and_why_and_imports_nothing_unless_keep_going(
    catalog: Catalog, folder: Path, case: str
) -> None:
    make, url, field, why = BAD[case]
    number = number_of(rows_of(folder), P + url)
    make(folder)
    blobs = catalog.path / "blobs"
    before = sorted(p.name for p in blobs.rglob("*") if p.is_file() and not p.name.startswith("."))
    with pytest.raises(MigrationError) as refused:
        catalog.import_auto_archiver(folder, analyze=False)
    assert any(f.row == number and field in f.field and why in f.message for f in refused.value.findings), [
        str(f) for f in refused.value.findings
    ]
    assert list(catalog.records()) == []
    assert (
        sorted(p.name for p in blobs.rglob("*") if p.is_file() and not p.name.startswith(".")) == before
    )  # nothing stored stays
    assert not (folder / "PWNED").exists() and not Path("PWNED").exists()
    kept = catalog.import_auto_archiver(folder, keep_going=True, analyze=False)
    assert number in kept.rows_refused
    assert len(kept.records_added) == 6 - len(kept.rows_refused) >= 4
    assert catalog.verify().ok


def test_cli_exit_codes_and_findings(run_cli: Any, folder: Path, tmp_path: Path) -> None:
    home = tmp_path / "cat"
    assert run_cli("init", home, "--quiet").code == 0
    _missing(folder)
    refused = run_cli("import", "--from", "auto-archiver", folder, "--catalog", home)
    assert refused.code == 2 and "Traceback" not in refused.err
    assert "finding: row 3: media[0]._key:" in refused.err and "nothing was imported" in refused.err
    kept = run_cli(
        "import", "--from", "auto-archiver", folder / "db.csv", "--catalog", home, "--keep-going", "--no-analyze"
    )
    assert kept.code == 1 and "imported 5 record(s)" in kept.out and "1 row(s) left out" in kept.out
    again = run_cli("import", "--from", "auto-archiver", FIXTURE, "--catalog", home)
    assert again.code == 0 and "imported 1 record(s) (5 already here) from auto-archiver 1.2.9" in again.out
    nothing = run_cli("import", "--from", "auto-archiver", tmp_path, "--catalog", home)
    assert nothing.code == 2 and "holds no db.csv" in nothing.err


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(max_size=60), min_size=0, max_size=5))
def test_arbitrary_cells_never_crash_the_reader(cells: list[str]) -> None:
    row, findings = aa.parse_row(2, cells)
    assert (row is None) == bool(findings)  # a row or the reasons there is none, never an exception


#: Any text a catalog can hold: no lone surrogates (hypothesis draws none) and no NUL (a finding).
CELL_TEXT = st.characters(codec="utf-8", exclude_characters="\x00")


@settings(max_examples=60, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(CELL_TEXT, max_size=20),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(CELL_TEXT, max_size=5), c, max_size=3),
        max_leaves=10,
    )
)
def test_the_literal_reader_reads_what_repr_writes(value: Any) -> None:
    assert aa.literal(repr(value)) == value


@given(st.binary(min_size=32, max_size=32))
def test_sha256_as_auto_archiver_writes_it_round_trips_and_a_short_one_is_refused(data: bytes) -> None:
    digest = hashlib.sha256(data).hexdigest()
    assert aa.parse_hash(aa.format_hash("sha256", digest)) == ("sha256", digest)
    as_number = format(int(digest, 16), "x")  # what hex(int(...)) writes: no leading zeros
    if as_number != digest:
        with pytest.raises(ValueError, match="leading zeros"):
            aa.parse_hash("SHA-256:" + as_number)


def test_the_roles_auto_archiver_gives_its_web_archives_and_certificates_are_kept() -> None:
    """auto-archiver 1.2.9 names the WACZ its wacz_extractor_enricher makes ``browsertrix``, the
    screenshots it takes from it ``browsertrix-screenshot-N`` and the page's TLS certificate
    ``ssl_certificate`` (its code: ``add_media(..., "browsertrix")`` and so on); the fixture,
    made without Docker, has none, so the real video row is given those ids here."""
    rows = rows_of(FIXTURE)
    cells = rows[index_of(rows, P + "video.html")]
    renamed = {"html_source_code": "browsertrix", "screenshot": "browsertrix-screenshot-0", "pdf": "ssl_certificate"}
    media = cells[2]
    for old, new in renamed.items():
        assert f"'id': '{old}'" in media
        media = media.replace(f"'id': '{old}'", f"'id': '{new}'")
    row, findings = aa.parse_row(2, [cells[0], cells[1], media])
    assert row is not None and not findings
    roles = {m.aa_id: m.role for m in row.media}
    assert roles["browsertrix"] is ArtifactRole.WEB_ARCHIVE
    assert roles["browsertrix-screenshot-0"] is ArtifactRole.SCREENSHOT
    assert roles["ssl_certificate"] is ArtifactRole.SOURCE_DOCUMENT


@pytest.mark.parametrize(
    ("stated", "expected"),
    [
        ("2026-12-05 19:34:24+02:00", dt.datetime(2026, 12, 5, 17, 34, 24, tzinfo=dt.UTC)),
        ("2026-12-05 19:34:24+00:00", dt.datetime(2026, 12, 5, 19, 34, 24, tzinfo=dt.UTC)),
        ("2026-12-05 19:34:25+00:00", None),  # another time: not this one's zone
        ("2026-12-05 19:34:24", None),  # no offset either
        ("yesterday", None),
        (12345, None),
    ],
)
def test_a_platform_time_without_its_zone_is_placed_only_by_the_same_time_with_an_offset(
    stated: object, expected: dt.datetime | None
) -> None:
    document = json.dumps({"metadata": {"timestamp": stated}}).encode()
    assert aa.zoned_timestamp(document, dt.datetime(2026, 12, 5, 19, 34, 24)) == expected
    # not JSON a reader can take: no zone, no crash
    assert aa.zoned_timestamp(b"[" * 100_000, dt.datetime(2026, 12, 5, 19, 34, 24)) is None


def test_the_cover_auto_archivers_generic_extractor_downloads_is_a_thumbnail_not_an_original() -> None:
    """auto-archiver 1.2.9's generic_extractor downloads the thumbnail yt-dlp names
    (``video_data["thumbnail"]``) and adds it with ``add_media(media, id="cover")``: the
    platform's picture of the item, not the item itself.  As an original it would be analysed
    and cited as the evidence, and be the record's main file where a post has no other media."""
    rows = rows_of(FIXTURE)
    cells = rows[index_of(rows, P + "video.html")]
    assert "'id': 'pdf'" in cells[2]
    row, findings = aa.parse_row(2, [cells[0], cells[1], cells[2].replace("'id': 'pdf'", "'id': 'cover'")])
    assert row is not None and not findings
    roles = {m.aa_id: m.role for m in row.media}
    assert roles["cover"] is ArtifactRole.THUMBNAIL
    assert ArtifactRole.ORIGINAL in {m.role for m in row.media if m.aa_id is None}  # what it downloaded


def test_the_html_auto_archivers_antibot_enricher_saves_is_the_rendered_page() -> None:
    """auto-archiver 1.2.9's antibot_extractor_enricher saves ``sb.get_page_source()`` as
    ``html_source_code``: the browser's DOM once the page had loaded and run, what a page capture
    here keeps as ``rendered_page`` -- not the HTML the server sent (``page_snapshot``)."""
    rows = rows_of(FIXTURE)
    cells = rows[index_of(rows, P + "page.html")]
    row, findings = aa.parse_row(2, cells)
    assert row is not None and not findings
    roles = {m.aa_id: m.role for m in row.media}
    assert roles["html_source_code"] is ArtifactRole.RENDERED_PAGE


def test_media_nested_under_any_property_are_read_as_auto_archiver_stores_them() -> None:
    """auto-archiver stores every media entry nested in another's properties (its
    Media.all_inner_media): an Instagram carousel's further pictures under "other media" are
    originals, OpenTimestamps proofs under "opentimestamp_files" source documents."""
    rows = rows_of(FIXTURE)
    status, metadata, media_cell = rows[index_of(rows, P + "video.html")]
    media = aa.literal(media_cell)
    first, *rest = media
    picture = next(m for m in rest if m["properties"].get("id") is None)
    proof = next(m for m in rest if m["properties"].get("id") == "screenshot")
    first["properties"]["other media"] = [dict(picture, properties={})]
    first["properties"]["opentimestamp_files"] = [dict(proof, properties={"opentimestamps_version": "0.4.5"})]
    row, findings = aa.parse_row(2, [status, metadata, repr(media)])
    assert row is not None and not findings
    nested = {m.pointer: m.role for m in row.media if "." in m.pointer}
    assert nested["media[0].other media[0]"] is ArtifactRole.ORIGINAL
    assert nested["media[0].opentimestamp_files[0]"] is ArtifactRole.SOURCE_DOCUMENT
