"""EXIF from the stored copy: raw tags kept, common fields normalised, hostile files survived."""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from evidence_catalog import Catalog
from evidence_catalog.extract import extract_metadata, read_exif, sniff_media_type

from .conftest import make_jpeg


def test_normalised_fields_from_a_real_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "p.jpg"
    path.write_bytes(make_jpeg(gps=(50.450333, 30.5235, 179.5)))
    exif, errors, version = read_exif(path)
    assert errors == () and version
    assert exif is not None
    assert exif.make == "DemoCam" and exif.model == "Model 1" and exif.software == "tests"
    assert exif.datetime_original == "2024-03-01T10:15:30+02:00"
    assert exif.gps is not None
    assert exif.gps.latitude == pytest.approx(50.450333, abs=1e-6)
    assert exif.gps.longitude == pytest.approx(30.5235, abs=1e-6)
    assert exif.gps.altitude_m == pytest.approx(179.5)
    assert exif.raw["Image Make"] == "DemoCam"
    assert exif.raw["EXIF DateTimeOriginal"] == "2024:03:01 10:15:30"


def test_southern_western_and_below_sea_level_positions_are_negative(tmp_path: Path) -> None:
    path = tmp_path / "p.jpg"
    path.write_bytes(make_jpeg(gps=(-33.8688, -70.6693, -12.0)))
    exif, _, _ = read_exif(path)
    assert exif is not None and exif.gps is not None
    assert exif.gps.latitude == pytest.approx(-33.8688, abs=1e-6)
    assert exif.gps.longitude == pytest.approx(-70.6693, abs=1e-6)
    assert exif.gps.altitude_m == pytest.approx(-12.0)


def test_time_without_offset_stays_local_without_a_guessed_zone(tmp_path: Path) -> None:
    path = tmp_path / "p.jpg"
    path.write_bytes(make_jpeg(offset=None, gps=None))
    exif, _, _ = read_exif(path)
    assert exif is not None and exif.datetime_original == "2024-03-01T10:15:30" and exif.gps is None


def test_image_without_exif_has_no_exif_and_no_error(tmp_path: Path) -> None:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, format="PNG")
    path = tmp_path / "plain.png"
    path.write_bytes(out.getvalue())
    assert sniff_media_type(path) == "image/png"
    metadata = extract_metadata(path, "image/png")
    assert metadata is not None and metadata.exif is None and metadata.errors == ()


def test_media_type_comes_from_bytes_not_the_name(tmp_path: Path) -> None:
    disguised = tmp_path / "holiday.txt"
    disguised.write_bytes(make_jpeg())
    assert sniff_media_type(disguised) == "image/jpeg"
    text = tmp_path / "statement.jpg"
    text.write_text("Свидетель — “цитата”", encoding="utf-8")
    assert sniff_media_type(text) == "text/plain"


def _jpeg_with_app1(payload: bytes) -> bytes:
    """A JPEG whose APP1 segment carries *payload* (which should start with Exif\\0\\0)."""
    body = make_jpeg(make=None, model=None, taken=None, offset=None, gps=None)
    assert body[:2] == b"\xff\xd8"
    segment = b"\xff\xe1" + struct.pack(">H", min(len(payload) + 2, 0xFFFF)) + payload[:0xFFFD]
    return body[:2] + segment + body[2:]


HOSTILE = {
    "offset past the end": b"Exif\x00\x00II*\x00\xff\xff\xff\x7f",
    "endless IFD loop": b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x01\x00\x0f\x01\x02\x00\xff\xff\xff\xff"
    + b"\x08\x00\x00\x00\x08\x00\x00\x00",
    "huge count": b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x0f\x00\x02\x7f\xff\xff\xff"
    + b"\x00\x00\x00\x1a\x00\x00\x00\x00",
    "GPS IFD with odd types": b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x01\x00%\x88\x04\x00\x01\x00\x00\x00"
    + b"\x1a\x00\x00\x00\x00\x00\x00\x00"
    + b"\x01\x00\x02\x00\x05\x00\x03\x00\x00\x00\x2c\x00\x00\x00\x00\x00\x00\x00"
    + b"\x01\x00\x00\x00\x00\x00\x00\x00" * 3,
    "truncated": b"Exif\x00\x00II*",
    "not tiff": b"Exif\x00\x00garbage garbage garbage",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_exif_never_stops_an_add(catalog: Catalog, tmp_path: Path, name: str) -> None:
    path = tmp_path / "hostile.jpg"
    data = _jpeg_with_app1(HOSTILE[name])
    path.write_bytes(data)
    [result] = catalog.add([path])
    record = catalog.record(result.record_id)
    artifact = record.artifacts[0].artifact
    assert artifact.size == len(data) and artifact.media_type == "image/jpeg"
    assert artifact.metadata is not None
    if artifact.metadata.exif is None:
        assert artifact.metadata.errors, "an unreadable EXIF block must be recorded as a problem, not as 'no EXIF'"
    else:  # exifread read part of the block and stopped without saying why: what it read is kept
        assert artifact.metadata.exif.raw
    assert catalog.artifact_path(result.sha256).read_bytes() == data
    assert catalog.verify().ok


def test_a_gps_ratio_dividing_by_zero_is_recorded_as_an_extraction_error(tmp_path: Path) -> None:
    data = make_jpeg(gps=(50.0, 30.0, None))
    degrees = struct.pack("<II", 50, 1)
    assert data.count(degrees) == 1, "the latitude's degrees as Pillow writes them"
    path = tmp_path / "bad.jpg"
    path.write_bytes(data.replace(degrees, struct.pack("<II", 50, 0)))
    metadata = extract_metadata(path, "image/jpeg")
    assert metadata is not None and metadata.exif is not None
    assert metadata.exif.make == "DemoCam"  # the rest of the block is still read
    assert metadata.exif.gps is None
    assert any("GPS" in e for e in metadata.errors), metadata.errors


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=400), order=st.sampled_from([b"II*\x00", b"MM\x00*"]))
def test_random_exif_payloads_never_raise(tmp_path: Path, payload: bytes, order: bytes) -> None:
    path = tmp_path / "fuzz.jpg"
    path.write_bytes(_jpeg_with_app1(b"Exif\x00\x00" + order + payload))
    metadata: Any = extract_metadata(path, sniff_media_type(path))
    assert metadata is None or isinstance(metadata.errors, tuple)


@pytest.mark.parametrize(
    ("taken", "offset", "expected", "problem"),
    [
        ("0000:00:00 00:00:00", None, None, None),  # clock never set: absent, not an error
        ("    :  :     :  :  ", None, None, None),
        ("2024:13:45 25:61:61", None, None, "not a date and time"),
        ("2024:02:30 10:00:00", None, None, "not a date and time"),
        ("2024:03:01 10:15:30", "+99:99", "2024-03-01T10:15:30", "not a UTC offset"),
        ("2024:03:01 10:15:30", "-03:30", "2024-03-01T10:15:30-03:30", None),
    ],
)
def test_capture_time_is_validated_not_just_reformatted(
    tmp_path: Path, taken: str, offset: str | None, expected: str | None, problem: str | None
) -> None:
    path = tmp_path / "t.jpg"
    path.write_bytes(make_jpeg(taken=taken, offset=offset, gps=None))
    exif, errors, _ = read_exif(path)
    assert exif is not None and exif.datetime_original == expected
    assert [e for e in errors if problem and problem in e] if problem else errors == ()


def test_the_word_exif_in_a_comment_is_not_an_exif_block(tmp_path: Path) -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "EXIF stripped for privacy; Exif\x00\x00 eXIf")
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, format="PNG", pnginfo=info)
    png = tmp_path / "comment.png"
    png.write_bytes(out.getvalue())
    jpeg = tmp_path / "comment.jpg"
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, format="JPEG", comment=b"EXIF removed by tool, Exif\x00\x00")
    jpeg.write_bytes(out.getvalue())
    for path in (png, jpeg):
        metadata = extract_metadata(path, sniff_media_type(path))
        assert metadata is not None and metadata.exif is None and metadata.errors == (), path


@pytest.mark.parametrize(("taken", "expected"), [("0999:01:02 03:04:05", "0999-01-02T03:04:05")])
def test_early_years_stay_iso_8601(tmp_path: Path, taken: str, expected: str) -> None:
    path = tmp_path / "old.jpg"
    path.write_bytes(make_jpeg(taken=taken, offset="+14:30", gps=None))
    exif, errors, _ = read_exif(path)
    assert exif is not None and exif.datetime_original == expected
    assert any("not a UTC offset" in e for e in errors)
