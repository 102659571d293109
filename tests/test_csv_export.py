"""CSV export for spreadsheets: one row per artifact, formula injection neutralised, BOM option."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evidence_catalog import Catalog
from evidence_catalog.errors import InputError
from evidence_catalog.interchange.csv import COLUMNS, neutralise


def _rows(path: Path, *, bom: bool = False) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") is bom
    text = raw.decode("utf-8-sig")
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")  # RFC 4180 line ends only
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    return list(reader)


def test_one_row_per_artifact_with_its_provenance_tags_and_status(catalog: Catalog, tmp_path: Path) -> None:
    photo, statement = tmp_path / "school.jpg", tmp_path / "statement.txt"
    photo.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    statement.write_text("Свидетель: «школа» — 5 March", encoding="utf-8")
    [first] = catalog.add([photo], tags=["school"], source_url="https://t.me/example/123", analyze=False)
    catalog.add([statement], record_id=first.record_id)
    catalog.assess(first.record_id, "in_progress", methods=["geolocation"])
    out = tmp_path / "out.csv"
    result = catalog.export(out, format="csv")
    assert (result.format, result.records, result.custody_events) == ("csv", 1, 0)
    rows = _rows(out)
    assert [r["sha256"] for r in rows] == [first.sha256, catalog.record(first.record_id).artifacts[1].artifact.sha256]
    row = rows[0]
    assert row["record_id"] == first.record_id and row["title"] == "school.jpg"
    assert row["source_url"] == "https://t.me/example/123" and row["acquisition_method"] == "added_from_disk"
    assert row["size"] == str(photo.stat().st_size) and row["tags"] == "school"
    assert row["verification_status"] == "in_progress" and row["operator"]
    assert catalog.history()[-1].action == "records.exported"
    assert catalog.history()[-1].details["format"] == "csv"


def test_what_an_analysis_derived_is_a_row_of_its_own_saying_so(catalog: Catalog, tmp_path: Path) -> None:
    from .test_perceptual import picture

    photo = tmp_path / "street.jpg"
    picture(5).save(photo, "JPEG")
    [added] = catalog.add([photo], source_url="https://t.me/example/7")
    [(document, _)] = catalog.analyses(added.record_id)
    out = tmp_path / "out.csv"
    catalog.export(out, format="csv")
    rows = {r["sha256"]: r for r in _rows(out)}
    assert set(rows) == {added.sha256, document}
    original, derived = rows[added.sha256], rows[document]
    assert (original["role"], original["acquisition_method"]) == ("original", "added_from_disk")
    assert (derived["role"], derived["acquisition_method"]) == ("derived", "derived")
    assert derived["media_type"] == "application/json" and derived["source_url"] == ""


def test_cells_that_a_spreadsheet_would_run_as_formulas_are_neutralised(catalog: Catalog, tmp_path: Path) -> None:
    evil = tmp_path / '=HYPERLINK("http-evil","x").txt'
    evil.write_text("x", encoding="utf-8")
    [added] = catalog.add([evil], tags=["+cmd", "@SUM(1)", "-2", "ok"])
    out = tmp_path / "out.csv"
    catalog.export(out, format="csv", bom=True)
    [row] = _rows(out, bom=True)
    assert row["title"] == "'" + evil.name
    assert row["tags"].startswith("'")  # "+cmd; -2; @SUM(1); ok" starts with a formula sign
    assert row["record_id"] == added.record_id


def test_a_bom_is_for_csv_only_and_nothing_is_written(catalog: Catalog, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="CSV only"):
        catalog.export(tmp_path / "out.json", format="json", bom=True)
    assert not (tmp_path / "out.json").exists()


@given(st.text())
def test_neutralised_cells_never_start_a_formula_and_keep_the_text(cell: str) -> None:
    safe = neutralise(cell)
    assert not safe.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert safe in (cell, "'" + cell)
    assert (safe != cell) == cell.startswith(("=", "+", "-", "@", "\t", "\r"))


def test_the_cli_writes_csv_with_a_bom(catalog: Catalog, tmp_path: Path, run_cli: object) -> None:
    photo = tmp_path / "a.txt"
    photo.write_text("a", encoding="utf-8")
    catalog.add([photo])
    catalog.close()
    out = tmp_path / "out.csv"
    result = run_cli("export", "--catalog", catalog.path, "--format", "csv", "--bom", "-o", out)  # type: ignore[operator]
    assert result.code == 0, result.err
    assert len(_rows(out, bom=True)) == 1
