"""Hostile and large images and media, found in review: real files, the catalog's own reader.

Each image here is a real file: made with Pillow (a WebP photo larger than a mebibyte) or
crafted byte by byte where no encoder writes such a file (a HEIF box of an absurd size, a JPEG
of fill bytes only)."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from evidence_catalog import Catalog, model
from evidence_catalog.extract import image as image_reader
from evidence_catalog.extract import read_image_header


def _heif_with_a_box_of(size: int) -> bytes:
    """A HEIF file (``ftyp`` heic) whose second top-level box states *size* bytes (64-bit size)."""
    head = struct.pack(">I4s4sI4s", 20, b"ftyp", b"heic", 0, b"mif1")
    return head + struct.pack(">I4sQ", 1, b"free", size) + bytes(32)


@pytest.mark.parametrize("size", [2**64 - 1, 2**63 + 5, 2**63 - 1, 2**40])
def test_a_heif_box_of_an_absurd_size_is_an_error_not_a_crash(tmp_path: Path, size: int) -> None:
    path = tmp_path / "absurd.heic"
    path.write_bytes(_heif_with_a_box_of(size))
    found, errors = read_image_header(path)
    assert found is None
    assert errors and errors[0].startswith("image size could not be read")


def test_a_heif_box_of_an_absurd_size_is_catalogued(catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "absurd.heic"
    path.write_bytes(_heif_with_a_box_of(2**64 - 1))
    [added] = catalog.add([path])
    metadata = catalog.record(added.record_id).artifacts[0].artifact.metadata
    assert metadata is not None and metadata.image is None
    assert any(error.startswith("image size could not be read") for error in metadata.errors)
    assert catalog.verify().ok


class _Counted:
    """A file opened by the reader, counting the bytes read from it."""

    read_bytes = 0

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def __enter__(self) -> _Counted:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.close()

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.stream.read(size)
        _Counted.read_bytes += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def test_a_jpeg_of_fill_bytes_costs_a_bounded_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fill bytes (0xFF) before a marker are read one at a time: a file of them alone must not be
    read to its end a byte at a time (a gigabyte of them held the catalog for minutes)."""
    path = tmp_path / "fill.jpg"
    path.write_bytes(b"\xff\xd8" + b"\xff" * (4 << 20))
    monkeypatch.setattr(image_reader, "open", lambda *a, **k: _Counted(open(*a, **k)), raising=False)  # noqa: SIM115
    _Counted.read_bytes = 0
    found, errors = read_image_header(path)
    assert found is None and errors and errors[0].startswith("image size could not be read")
    assert _Counted.read_bytes < 1 << 20


def test_a_jpeg_of_many_segments_each_after_fill_bytes_costs_a_bounded_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bound holds for the whole file, not per marker: 4,096 segments each after 65,536 fill
    bytes would be a quarter of a gigabyte read a byte at a time."""
    path = tmp_path / "fills.jpg"
    segment = b"\xff" * 60_000 + b"\xfe\x00\x02"  # fill bytes, then an empty comment segment
    path.write_bytes(b"\xff\xd8" + segment * 100)
    monkeypatch.setattr(image_reader, "open", lambda *a, **k: _Counted(open(*a, **k)), raising=False)  # noqa: SIM115
    _Counted.read_bytes = 0
    found, errors = read_image_header(path)
    assert found is None and errors and errors[0].startswith("image size could not be read")
    assert _Counted.read_bytes < 1 << 20


def test_a_jpeg_with_fill_bytes_before_its_markers_is_read(tmp_path: Path) -> None:
    from tests.test_media import make_image

    data = make_image(tmp_path / "photo.jpg", size=(33, 21), orientation=8).read_bytes()
    padded = tmp_path / "padded.jpg"
    padded.write_bytes(data[:2] + b"\xff" * 100 + data[2:])
    assert read_image_header(padded) == (model.ImageInfo(width=33, height=21, orientation=8), ())


def test_a_webp_larger_than_a_mebibyte_keeps_its_orientation(tmp_path: Path) -> None:
    """A WebP's EXIF chunk follows its image data: a VP8 chunk of more than the mebibyte read of
    it must be skipped whole, else the orientation is silently lost (read as no orientation)."""
    picture = Image.frombytes("RGB", (1100, 1100), os.urandom(1100 * 1100 * 3))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "large.webp"
    picture.save(path, format="WEBP", quality=100, exif=exif)
    assert path.stat().st_size > 1 << 20
    assert read_image_header(path) == (model.ImageInfo(width=1100, height=1100, orientation=6), ())


@pytest.mark.parametrize("name", ["case:12.mp4", "file:clip.mp4"])
def test_a_video_at_a_relative_path_with_a_colon_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """FFmpeg takes what precedes a colon in a relative name for a protocol: a catalog or a bag at
    such a path (``evidence-catalog import case:12``) had no video read, and an import from it
    refused every video whose export had been read."""
    from evidence_catalog.extract.media import read_media
    from tests.test_media import make_video

    monkeypatch.chdir(tmp_path)
    make_video(Path("clip.mp4")).rename(name)
    media, errors, _ = read_media(Path(name))
    assert errors == () and media is not None and len(media.streams) == 2


def test_a_catalog_at_a_relative_path_with_a_colon_reads_its_videos(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_media import make_video

    monkeypatch.chdir(tmp_path)
    video = make_video(tmp_path / "clip.mp4")
    with Catalog.init(Path("case:12"), operator=model.Agent(name="A. Analyst")) as catalog:
        [added] = catalog.add([video])
        metadata = catalog.record(added.record_id).artifacts[0].artifact.metadata
        assert metadata is not None and metadata.errors == () and metadata.media is not None


def test_a_video_whose_reader_timed_out_at_add_still_imports(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy or slow machine that stopped the media reader at its time limit records why,
    truthfully; another catalog that reads the same bytes in time must still import the record
    (its bytes are intact: what differs is the machine that read them)."""
    from evidence_catalog.extract import media as media_reader
    from tests.test_media import make_video

    with monkeypatch.context() as slow:
        slow.setattr(media_reader, "TIME_LIMIT_S", 0)
        [added] = catalog.add([make_video(tmp_path / "clip.mp4")])
    metadata = catalog.record(added.record_id).artifacts[0].artifact.metadata
    assert metadata is not None and metadata.media is None
    assert any("did not finish" in error for error in metadata.errors)
    bag = tmp_path / "bag"
    catalog.export(bag, format="bagit")
    with Catalog.init(tmp_path / "other", operator=model.Agent(name="B. Analyst")) as other:
        other.import_records(bag)
        assert other.verify().ok
        imported = other.record(added.record_id).artifacts[0].artifact.metadata
        assert imported == metadata  # kept as the adding machine wrote it: no reading claimed


def test_a_video_this_machine_cannot_read_in_time_is_refused_saying_why(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other way round: the description says what the file holds, and the importing
    machine's reader stops at its time limit. What cannot be checked is not taken: the import
    is refused, naming the reason (not as a difference of the file), and nothing is imported."""
    from evidence_catalog.errors import IntegrityError
    from evidence_catalog.extract import media as media_reader
    from tests.test_media import make_video

    catalog.add([make_video(tmp_path / "clip.mp4")])
    bag = tmp_path / "bag"
    catalog.export(bag, format="bagit")
    with Catalog.init(tmp_path / "other", operator=model.Agent(name="B. Analyst")) as other:
        with monkeypatch.context() as slow:
            slow.setattr(media_reader, "TIME_LIMIT_S", 0)
            with pytest.raises(IntegrityError, match=r"cannot be checked on this machine .*did not finish"):
                other.import_records(bag)
        assert list(other.records()) == []


@pytest.mark.parametrize(
    "text",
    [
        "+\u0664\u0668.\u0668\u0665\u0667\u0667+\u0660\u0660\u0662.\u0662\u0669\u0665\u0660/",  # Arabic-Indic digits
        "+\uff14\uff18.8577+002.2950/",  # full-width digits
    ],
)
def test_a_location_in_digits_other_than_0_9_is_not_read_as_a_position(text: str) -> None:
    """ISO 6709 writes 0-9: text in other digits is kept as written and named, never turned into
    a position (Python's ``\\d`` and ``int`` would read it)."""
    from evidence_catalog.extract.media import parse_iso6709

    position, problem = parse_iso6709(text)
    assert position is None and problem is not None


def test_a_rotate_tag_in_digits_other_than_0_9_is_left_unknown(tmp_path: Path) -> None:
    from evidence_catalog.extract.media import _rotation

    errors: list[str] = []
    assert _rotation(0, None, {"rotate": "\u0669\u0660"}, errors) is None
    assert errors and "not a multiple of 90 degrees" in errors[0]
    assert _rotation(0, None, {"rotate": "90"}, []) == 90


@pytest.mark.parametrize(
    ("errors", "refused"),
    [
        (("the media reader crashed (SIGSEGV) on this file; nothing was read",), False),
        (("the media reader crashed (SIGSEGV) on this file; nothing was read", "filmed in Kyiv"), True),
        (("filmed in Kyiv",), True),
        ((), True),
    ],
)
def test_only_a_lone_machine_stop_is_taken_as_saying_nothing(
    tmp_path: Path, errors: tuple[str, ...], refused: bool
) -> None:
    """A description that its reader stopped for a reason of its machine imports whatever is read
    here, but only when that is all it says: any other text beside it (or instead of it) is
    compared with the bytes as before, and refused."""
    from evidence_catalog.errors import IntegrityError
    from evidence_catalog.extract import sniff_media_type
    from evidence_catalog.hashing import hash_file
    from evidence_catalog.interchange.import_checks import check_artifact_bytes
    from tests.test_media import make_video

    video = make_video(tmp_path / "clip.mp4")
    digests, size = hash_file(str(video), ["sha256"])
    claimed = model.Artifact(
        digests=digests,
        size=size,
        media_type=sniff_media_type(video),
        metadata=model.EmbeddedMetadata(extractor=model.Agent(name="PyAV", kind="software"), errors=errors),
    )
    if refused:
        with pytest.raises(IntegrityError, match="is not what its bytes say"):
            check_artifact_bytes(video, claimed, hashed=True, where="test")
    else:
        check_artifact_bytes(video, claimed, hashed=True, where="test")
