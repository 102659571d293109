"""Container and stream metadata of audio and video, and the size and orientation of images.

The media are real: encoded here with PyAV (H.264 and AAC in MP4 and MOV, Opus in WebM) and
Pillow; the hostile ones are real files cut short, mislabelled or crafted, and a real hang (a
named pipe FFmpeg waits on).  Crashes and memory exhaustion are those of a real child process
running the probe's own code.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import av
import jsonschema  # type: ignore[import-untyped]
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from evidence_catalog import Catalog, model
from evidence_catalog.cli import cli
from evidence_catalog.extract import extract_metadata, legacy_metadata, read_image_header
from evidence_catalog.extract import media as media_reader
from evidence_catalog.extract.media import location, parse_iso6709
from evidence_catalog.hashing import hash_file
from evidence_catalog.interchange.import_checks import check_artifact_bytes
from evidence_catalog.schema_files import load_schema
from evidence_catalog.serialize import canonical_json, from_document, structure, to_document, unstructure
from tests import strategies as s
from tests.media_server import MediaServer, Route, video_page

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
PARIS = "+48.8577+002.2950+035.000/"


# -- media made here --------------------------------------------------------------------------------


def _video_frames(stream: Any, container: Any, count: int) -> None:
    for number in range(count):
        frame = av.VideoFrame(stream.width, stream.height, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([16 + 8 * number % 200]) * plane.buffer_size)
        frame.pts = number
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def _audio_frames(stream: Any, container: Any, count: int, layout: str = "stereo") -> None:
    size = stream.codec_context.frame_size or 1024
    for number in range(count):
        frame = av.AudioFrame(format=stream.codec_context.format.name, layout=layout, samples=size)
        frame.sample_rate = stream.codec_context.sample_rate
        frame.pts = number * size
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def make_video(
    path: Path,
    *,
    tags: dict[str, str] | None = None,
    rotation: float | None = None,
    size: tuple[int, int] = (64, 48),
    frames: int = 10,
    audio: bool = True,
    options: dict[str, str] | None = None,
) -> Path:
    """An H.264 (+ AAC) file of *frames* frames at 25 fps, in the container *path*'s suffix names."""
    with av.open(str(path), "w", options=options or {}) as container:
        container.metadata.update(tags or {})
        video = container.add_stream("libx264", rate=25)
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        if rotation is not None:
            video.set_display_rotation(rotation)
        sound = container.add_stream("aac", rate=48000) if audio else None
        _video_frames(video, container, frames)
        if sound is not None:
            _audio_frames(sound, container, 10)
    return path


def make_webm_audio(path: Path, tags: dict[str, str] | None = None) -> Path:
    with av.open(str(path), "w", format="webm") as container:
        container.metadata.update(tags or {})
        sound = container.add_stream("libopus", rate=48000)
        sound.layout = "mono"
        _audio_frames(sound, container, 20, layout="mono")
    return path


def make_image(path: Path, *, size: tuple[int, int] = (120, 80), orientation: int | None = None) -> Path:
    image = Image.new("RGB", size, (200, 100, 50))
    kind = {".jpg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF", ".gif": "GIF", ".bmp": "BMP"}[path.suffix]
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    extra = {"exif": exif} if orientation is not None else {}
    image.save(path, format=kind, **extra)
    return path


# -- what is read ---------------------------------------------------------------------------------


def test_an_mp4_is_described_stream_by_stream(tmp_path: Path) -> None:
    path = make_video(tmp_path / "clip.mp4", frames=25)
    metadata = extract_metadata(path, "video/mp4")
    assert metadata is not None and metadata.errors == () and metadata.exif is None and metadata.image is None
    assert metadata.extractor.name == "PyAV"
    assert metadata.extractor.version == f"{av.__version__} (FFmpeg {av.ffmpeg_version_info})"
    media = metadata.media
    assert media is not None
    assert media.format == "mov,mp4,m4a,3gp,3g2,mj2"
    assert media.duration_s is not None and 0.9 <= media.duration_s <= 1.1
    assert media.bit_rate is not None and media.bit_rate > 0
    video, audio = media.streams
    assert (video.index, video.kind, video.codec, video.profile) == (0, model.StreamKind.VIDEO, "h264", "High")
    assert (video.width, video.height, video.frame_rate, video.rotation, video.frames) == (64, 48, 25.0, 0, 25)
    assert (audio.index, audio.kind, audio.codec, audio.profile) == (1, model.StreamKind.AUDIO, "aac", "LC")
    assert (audio.sample_rate, audio.channels, audio.width, audio.frame_rate) == (48000, 2, None, None)
    assert media.tags["major_brand"] == "isom" and media.tags["encoder"].startswith("Lavf")
    assert media.created_at is None and media.location is None  # the file says neither


def test_a_mov_gives_its_creation_time_location_and_rotation(tmp_path: Path) -> None:
    tags = {"creation_time": "2024-03-01T10:15:30.000000Z", "location": PARIS}
    # PyAV, like FFmpeg, takes the rotation anticlockwise: -90 is a quarter turn clockwise.
    path = make_video(tmp_path / "phone.mov", tags=tags, rotation=-90)
    media = extract_metadata(path, "video/quicktime").media  # type: ignore[union-attr]
    assert media is not None
    assert media.created_at == dt.datetime(2024, 3, 1, 10, 15, 30, tzinfo=dt.UTC)  # MOV counts whole seconds
    assert media.tags["creation_time"] == "2024-03-01T10:15:30.000000Z"  # kept as read
    assert media.location == model.MediaLocation(
        tag="location", text=PARIS, position=model.GeoPosition(latitude=48.8577, longitude=2.295, altitude_m=35.0)
    )
    assert media.streams[0].rotation == 90
    assert media.streams[0].width == 64  # as coded; shown 48 wide


def test_apple_location_key_is_read_and_a_disagreeing_tag_is_named(tmp_path: Path) -> None:
    tags = {"com.apple.quicktime.location.ISO6709": PARIS, "location": "+50.4503+030.5235/"}
    path = make_video(tmp_path / "two-places.mp4", tags=tags, options={"movflags": "use_metadata_tags"})
    metadata = extract_metadata(path, "video/mp4")
    assert metadata is not None and metadata.media is not None
    where = metadata.media.location
    assert where is not None and where.tag == "com.apple.quicktime.location.ISO6709" and where.text == PARIS
    assert where.position == model.GeoPosition(latitude=48.8577, longitude=2.295, altitude_m=35.0)
    assert any("location tags disagree" in error for error in metadata.errors), metadata.errors


def test_a_webm_opus_recording_is_described(tmp_path: Path) -> None:
    path = make_webm_audio(tmp_path / "voice.webm", tags={"title": "Перехоплення"})
    metadata = extract_metadata(path, "audio/webm")
    assert metadata is not None and metadata.media is not None, metadata
    media = metadata.media
    assert media.format == "matroska,webm"
    [audio] = media.streams
    assert (audio.kind, audio.codec, audio.sample_rate, audio.channels) == (model.StreamKind.AUDIO, "opus", 48000, 1)
    assert media.tags["title"] == "Перехоплення"
    assert media.duration_s is not None and media.duration_s > 0


def test_many_and_long_tags_are_kept_up_to_a_bound_that_is_said(tmp_path: Path) -> None:
    tags = {f"note{n:04d}": f"value {n}" for n in range(1200)}
    tags["long"] = "x" * 70_000
    path = tmp_path / "tagged.mkv"
    with av.open(str(path), "w", format="matroska") as container:
        container.metadata.update(tags)
        sound = container.add_stream("libopus", rate=48000)
        sound.layout = "mono"
        _audio_frames(sound, container, 2, layout="mono")
    metadata = extract_metadata(path, "video/x-matroska")
    assert metadata is not None and metadata.media is not None
    kept = metadata.media.tags
    assert len(kept) == 1000
    assert all(kept[name] == tags[name] for name in kept if name in tags and name != "long")
    assert any("tags; the first 1000 are kept" in e for e in metadata.errors), metadata.errors
    if "long" in kept:
        assert kept["long"] == "x" * 65536


def test_image_size_and_orientation_come_from_the_header(tmp_path: Path) -> None:
    for suffix in (".jpg", ".png", ".webp", ".tif", ".gif", ".bmp"):
        path = make_image(tmp_path / f"plain{suffix}", size=(123, 45))
        assert read_image_header(path) == (model.ImageInfo(width=123, height=45, orientation=None), ()), suffix
    for suffix in (".jpg", ".png", ".webp", ".tif"):
        path = make_image(tmp_path / f"turned{suffix}", size=(40, 30), orientation=6)
        assert read_image_header(path) == (model.ImageInfo(width=40, height=30, orientation=6), ()), suffix
    metadata = extract_metadata(tmp_path / "turned.jpg", "image/jpeg")
    assert metadata is not None and metadata.image == model.ImageInfo(width=40, height=30, orientation=6)
    assert metadata.exif is not None and metadata.extractor.name == "exifread"


def test_an_image_header_that_lies_or_is_cut_is_said_so_and_nothing_is_decoded(tmp_path: Path) -> None:
    # A PNG that claims 50,000 x 50,000 pixels (7.5 GB decoded): the header is read, nothing else.
    bomb = tmp_path / "bomb.png"
    header = struct.pack(">II", 50_000, 50_000) + b"\x08\x02\x00\x00\x00"
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + header + b"\x00" * 4)
    assert read_image_header(bomb) == (model.ImageInfo(width=50_000, height=50_000), ())
    jpeg = make_image(tmp_path / "whole.jpg").read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(jpeg[:20])
    info, errors = read_image_header(cut)
    assert info is None and errors and "image size could not be read" in errors[0]
    zero = tmp_path / "zero.gif"
    zero.write_bytes(b"GIF89a" + struct.pack("<HH", 0, 10) + b"\x00" * 10)
    assert read_image_header(zero) == (None, ("image header states a size of 0 × 10 pixels",))
    odd = tmp_path / "odd.tif"
    odd.write_bytes(
        b"II*\x00"
        + struct.pack("<I", 8)
        + struct.pack("<H", 3)
        + b"".join(struct.pack("<HHII", tag, 3, 1, value) for tag, value in ((0x100, 10), (0x101, 20), (0x112, 9)))
        + b"\x00" * 4
    )
    assert read_image_header(odd) == (
        model.ImageInfo(width=10, height=20),
        ("EXIF Orientation 9 is not one of 1-8; the orientation is left unknown",),
    )
    # A TIFF whose directory comes after 2 MiB of image data: found where the header says.
    late = tmp_path / "late.tif"
    entries = b"".join(struct.pack("<HHII", tag, 4, 1, value) for tag, value in ((0x100, 3000), (0x101, 2000)))
    late.write_bytes(b"II*\x00" + struct.pack("<I", 8 + (2 << 20)) + bytes(2 << 20) + struct.pack("<H", 2) + entries)
    assert read_image_header(late) == (model.ImageInfo(width=3000, height=2000), ())
    heif = tmp_path / "photo.heic"
    heif.write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 16)
    assert read_image_header(heif) == (None, ("image size could not be read: the HEIF file has no meta box",))
    icon = tmp_path / "favicon.ico"
    icon.write_bytes(b"\x00\x00\x01\x00\x01\x00\x10\x10" + bytes(40))
    assert read_image_header(icon) == (None, ())  # a format the reader does not know: no claim


# -- ISO 6709 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+48.8577+002.2950+035.000/", (48.8577, 2.295, 35.0)),
        ("+48.8577+002.2950/", (48.8577, 2.295, None)),
        ("-33.8688+151.2093-010.5/", (-33.8688, 151.2093, -10.5)),
        ("+4851.462+00217.700/", (48 + 51.462 / 60, 2 + 17.7 / 60, None)),
        ("+485146.2-0021742.0/", (48 + 51 / 60 + 46.2 / 3600, -(2 + 17 / 60 + 42 / 3600), None)),
        ("+48.8577+002.2950+035.000CRSWGS_84/", (48.8577, 2.295, 35.0)),
    ],
)
def test_iso6709_text_is_read_as_written(text: str, expected: tuple[float, float, float | None]) -> None:
    position, problem = parse_iso6709(text)
    assert problem is None and position is not None
    assert position.latitude == pytest.approx(expected[0], abs=1e-12)
    assert position.longitude == pytest.approx(expected[1], abs=1e-12)
    assert position.altitude_m == expected[2]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("48.8577, 2.2950", "not ISO 6709"),
        ("+48.8577+2.2950/", "not ISO 6709"),  # longitude needs three digits of degrees
        ("+95.0000+002.0000/", "latitude must be between"),
        ("+4875.000+00217.700/", "75 minutes"),
        ("+48.8577+002.2950CRSNAD27/", "not WGS 84"),
        ("", "not ISO 6709"),
    ],
)
def test_malformed_location_text_is_kept_raw_with_an_error_never_guessed(text: str, reason: str) -> None:
    errors: list[str] = []
    found = location({"location": text}, errors)
    assert found == model.MediaLocation(tag="location", text=text, position=None)
    [error] = errors
    assert reason in error and repr(text) in error


@settings(max_examples=200)
@given(
    st.floats(min_value=-90, max_value=90, allow_nan=False),
    st.floats(min_value=-180, max_value=180, allow_nan=False),
    st.none() | st.floats(min_value=-10_000, max_value=10_000, allow_nan=False),
)
def test_any_position_written_as_iso6709_reads_back(lat: float, lon: float, alt: float | None) -> None:
    text = f"{lat:+08.4f}{lon:+09.4f}" + ("" if alt is None else f"{alt:+.3f}") + "/"
    position, problem = parse_iso6709(text)
    assert problem is None and position is not None
    assert position.latitude == pytest.approx(float(f"{lat:.4f}"), abs=1e-9)
    assert position.longitude == pytest.approx(float(f"{lon:.4f}"), abs=1e-9)
    assert position.altitude_m == (None if alt is None else pytest.approx(float(f"{alt:.3f}"), abs=1e-9))


def test_creation_time_without_a_zone_or_at_quicktimes_zero_is_not_a_time() -> None:
    errors: list[str] = []
    assert media_reader.creation_time({"creation_time": "1904-01-01T00:00:00.000000Z"}, errors) is None
    assert errors == []
    assert media_reader.creation_time({"creation_time": "2024-03-01 10:15:30"}, errors) is None
    assert media_reader.creation_time({"creation_time": "yesterday"}, errors) is None
    assert [e.split(" is ")[0].split(" states ")[0] for e in errors] == [
        "creation_time '2024-03-01 10:15:30'",
        "creation_time 'yesterday'",
    ]
    assert media_reader.creation_time({"creation_time": "2024-03-01T12:15:30+02:00"}, errors) == dt.datetime(
        2024, 3, 1, 10, 15, 30, tzinfo=dt.UTC
    )


# -- hostile input ------------------------------------------------------------------------------------


def test_truncated_zero_length_and_mislabelled_media_are_kept_with_the_reason(catalog: Catalog, tmp_path: Path) -> None:
    whole = make_video(tmp_path / "whole.mp4", frames=50, options={"movflags": "faststart"}).read_bytes()
    files = {
        "cut.mp4": whole[: (whole.index(b"mdat") + len(whole)) // 2],  # in the middle of its frames
        "header-only.mp4": whole[:64],
        "empty.mp4": b"",
        "letter.mp4": b"This is a letter, not a film.\n" * 20,
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    results = catalog.add([tmp_path / name for name in files])
    described = {
        name: catalog.record(r.record_id).artifacts[0].artifact for name, r in zip(files, results, strict=True)
    }
    for name, artifact in described.items():
        assert artifact.size == len(files[name])
        assert catalog.artifact_path(artifact.sha256).read_bytes() == files[name], name  # kept exactly
    # The type is sniffed from the bytes: the letter and the empty file are no video, whatever their name.
    assert described["letter.mp4"].media_type == "text/plain" and described["letter.mp4"].metadata is None
    assert not described["empty.mp4"].media_type.startswith("video/")
    # Cut after its header, an MP4 still says what it holds; cut inside it, it says why not.
    cut = described["cut.mp4"].metadata
    assert described["cut.mp4"].media_type == "video/mp4" and cut is not None and cut.extractor.name == "PyAV"
    assert cut.media is not None and [s.kind.value for s in cut.media.streams] == ["video", "audio"]
    header_only = described["header-only.mp4"].metadata
    assert header_only is not None and header_only.media is not None
    assert header_only.media.streams == () and header_only.media.tags["major_brand"] == "isom"
    assert header_only.errors == ("FFmpeg found no stream in this container (cut short, or empty)",)
    assert catalog.verify().ok


def test_a_zero_length_file_handed_to_the_reader_is_an_error_not_a_crash(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    metadata = extract_metadata(empty, "video/mp4")
    assert metadata is not None and metadata.media is None
    assert metadata.errors == (
        "FFmpeg could not read this file as audio or video: InvalidDataError: Invalid data found when processing input",
    )
    assert str(tmp_path) not in json.dumps(unstructure(metadata))  # no path of this machine


def test_absurd_dimensions_and_duration_in_a_container_cost_nothing(tmp_path: Path) -> None:
    data = bytearray(make_video(tmp_path / "small.mp4", audio=False).read_bytes())
    # The avc1 sample entry states the picture's size (two 16-bit numbers 24 bytes into it), the
    # track header its display size (16.16 fixed point), the movie and media headers a duration:
    # made to say 65535 x 65535 pixels and 4,294,967,295 seconds (136 years).
    entry = data.index(b"avc1", data.index(b"stsd"))
    data[entry + 28 : entry + 32] = struct.pack(">HH", 65535, 65535)
    header = data.index(b"tkhd")
    data[header + 80 : header + 88] = struct.pack(">II", 65535 << 16, 65535 << 16)
    for box in (b"mvhd", b"mdhd"):
        at = data.index(box)
        data[at + 16 : at + 24] = struct.pack(">II", 1, 0xFFFFFFFF)
    path = tmp_path / "absurd.mp4"
    path.write_bytes(bytes(data))
    metadata = extract_metadata(path, "video/mp4")
    assert metadata is not None and metadata.media is not None, metadata
    # FFmpeg takes the size from the H.264 parameter sets, not from the boxes' claims; the
    # duration claimed is no duration it keeps.  Nothing is decoded, nothing waits.
    [video] = metadata.media.streams
    assert (video.codec, video.width, video.height, video.frames) == ("h264", 64, 48, 10)
    assert metadata.media.duration_s is None


@pytest.mark.no_postgresql_pass  # a reader's time limit: no database has a part in it
def test_a_reader_that_hangs_is_stopped_at_the_time_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A named pipe no one writes to: FFmpeg waits on it for ever, as on an endless stream.
    pipe = tmp_path / "endless.mp4"
    os.mkfifo(pipe)
    monkeypatch.setattr(media_reader, "TIME_LIMIT_S", 2)
    metadata = extract_metadata(pipe, "video/mp4")
    assert metadata is not None and metadata.media is None
    assert metadata.errors == ("the media reader did not finish within 2 s and was stopped; nothing was read",)


@pytest.mark.no_postgresql_pass  # a reader's time limit: no database has a part in it
def test_a_reader_left_alone_ends_by_its_own_alarm(tmp_path: Path) -> None:
    """Should the catalog's process die while the reader waits, the reader still ends."""
    pipe = tmp_path / "endless.mp4"
    os.mkfifo(pipe)
    probe = Path(media_reader.__file__).with_name("media_probe.py")
    done = subprocess.run(
        [sys.executable, "-I", str(probe), str(pipe), str(media_reader.MEMORY_LIMIT_BYTES), "1"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -signal.SIGALRM and done.stdout == b""


def _probe_variant(tmp_path: Path, body: str) -> Path:
    """The probe's own script with its ``probe`` function replaced by *body* (limits, error
    handling and reporting stay the probe's)."""
    source = Path(media_reader.__file__).with_name("media_probe.py").read_text(encoding="utf-8")
    start = source.index("def probe(")
    end = source.index("\ndef _stream(")
    variant = tmp_path / "media_probe.py"
    variant.write_text(source[:start] + body + source[end:], encoding="utf-8")
    return variant


def test_a_reader_that_crashes_is_an_error_on_the_artifact(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crash = "def probe(path: str) -> dict[str, Any]:\n    os.kill(os.getpid(), signal.SIGSEGV)\n    return {}\n\n"
    variant = _probe_variant(tmp_path, "import os, signal\n" + crash)
    monkeypatch.setattr(media_reader, "_PROBE", variant)
    video = make_video(tmp_path / "clip.mp4")
    [added] = catalog.add([video])
    artifact = catalog.record(added.record_id).artifacts[0].artifact
    assert artifact.size == video.stat().st_size and artifact.media_type == "video/mp4"
    assert artifact.metadata is not None and artifact.metadata.media is None
    assert artifact.metadata.errors == ("the media reader crashed (SIGSEGV) on this file; nothing was read",)
    assert catalog.verify().ok


def test_a_reader_that_runs_out_of_memory_is_an_error_on_the_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hungry = "def probe(path: str) -> dict[str, Any]:\n    return {'data': bytearray(4 << 30)}\n\n"
    monkeypatch.setattr(media_reader, "_PROBE", _probe_variant(tmp_path, hungry))
    metadata = extract_metadata(make_video(tmp_path / "clip.mp4"), "video/mp4")
    assert metadata is not None and metadata.media is None
    assert metadata.errors == (
        "the media reader ran out of its memory limit (1024 MiB) on this file; nothing was read",
    )


def test_without_pyav_the_artifact_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = Path(media_reader.__file__).with_name("media_probe.py").read_text(encoding="utf-8")
    variant = tmp_path / "media_probe.py"
    future = "from __future__ import annotations\n"
    blocked = future + "import sys\nsys.modules['av'] = None  # as if not installed\n"
    variant.write_text(source.replace(future, blocked, 1), encoding="utf-8")
    monkeypatch.setattr(media_reader, "_PROBE", variant)
    metadata = extract_metadata(make_video(tmp_path / "clip.mp4"), "video/mp4")
    assert metadata is not None and metadata.media is None
    assert metadata.errors == (
        "PyAV could not be loaded, so nothing was read: ModuleNotFoundError: import of av halted; None in sys.modules",
    )


def test_the_reader_runs_under_the_limits_it_states(tmp_path: Path) -> None:
    names = "resource.RLIMIT_AS, resource.RLIMIT_CPU, resource.RLIMIT_CORE, resource.RLIMIT_FSIZE"
    limits = f"[resource.getrlimit(r) for r in ({names})]"
    report = f"def probe(path: str) -> dict[str, Any]:\n    return {{'limits': {limits}}}\n\n"
    variant = _probe_variant(tmp_path, report)
    done = subprocess.run(
        [sys.executable, "-I", str(variant), str(tmp_path / "x"), str(media_reader.MEMORY_LIMIT_BYTES), "30"],
        capture_output=True,
        check=True,
    )
    limits = json.loads(done.stdout)["limits"]
    assert limits == [[media_reader.MEMORY_LIMIT_BYTES] * 2, [30, 31], [0, 0], [0, 0]]


# -- the catalog: add, show, export and import, capture ----------------------------------------------


def test_a_video_added_is_shown_and_survives_export_and_import(catalog: Catalog, tmp_path: Path) -> None:
    tags = {"creation_time": "2024-03-01T10:15:30.000000Z", "location": PARIS}
    video = make_video(tmp_path / "phone.mov", tags=tags, rotation=-90)
    photo = make_image(tmp_path / "photo.jpg", size=(40, 30), orientation=6)
    [added, pictured] = catalog.add([video, photo])
    record = catalog.record(added.record_id)
    media = record.artifacts[0].artifact.metadata.media  # type: ignore[union-attr]
    assert media is not None and media.location is not None and media.created_at is not None

    runner = CliRunner()
    env = {"EVIDENCE_CATALOG": str(catalog.path)}
    shown = runner.invoke(cli, ["show", added.record_id], env=env, catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    assert f"(read with PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info}))" in shown.output
    assert "  created    2024-03-01T10:15:30Z (the container's creation_time: a claim)" in shown.output
    assert f"  location   48.857700, 2.295000, 35 m (location '{PARIS}': a claim)" in shown.output
    assert "video, h264 (High), 64×48, 25 fps, turned 90° clockwise to show" in shown.output
    assert "audio, aac (LC)" in shown.output and "48000 Hz, 2 ch" in shown.output
    as_json = runner.invoke(cli, ["show", "--json", added.record_id], env=env, catch_exceptions=False)
    document = json.loads(as_json.output)
    assert document["artifacts"][0]["artifact"]["metadata"]["media"]["location"]["text"] == PARIS
    jsonschema.Draft202012Validator(load_schema("evidence-record")).validate(document)  # the published schema
    shown_photo = runner.invoke(cli, ["show", pictured.record_id], env=env, catch_exceptions=False)
    assert "  image      40 × 30 pixels, EXIF orientation 6 (shown turned 90° clockwise)" in shown_photo.output

    bag = tmp_path / "bag"
    catalog.export(bag, format="bagit")
    other = Catalog.init(tmp_path / "other", operator=model.Agent(name="B. Analyst"))
    try:
        other.import_records(bag)
        assert other.record(added.record_id) == record
        assert other.record(pictured.record_id) == catalog.record(pictured.record_id)
        assert other.verify().ok
    finally:
        other.close()


def test_an_export_made_before_media_metadata_imports(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records described as the library did before it read images' sizes and media containers
    (EXIF alone) import into a catalog that reads them, each artifact checked as strictly as then."""
    import evidence_catalog.extract

    with monkeypatch.context() as earlier:
        earlier.setattr(evidence_catalog.extract, "extract_metadata", legacy_metadata)
        results = catalog.add([make_video(tmp_path / "clip.mp4"), make_image(tmp_path / "photo.jpg", orientation=3)])
    before = [catalog.record(r.record_id) for r in results]
    assert before[0].artifacts[0].artifact.metadata is None
    assert before[1].artifacts[0].artifact.metadata.image is None  # type: ignore[union-attr]
    bag = tmp_path / "bag"
    catalog.export(bag, format="bagit")
    other = Catalog.init(tmp_path / "other", operator=model.Agent(name="B. Analyst"))
    try:
        other.import_records(bag)
        assert [other.record(r.record_id) for r in results] == before
        assert other.verify().ok
    finally:
        other.close()


def test_an_import_still_refuses_media_metadata_its_bytes_do_not_say(tmp_path: Path) -> None:
    from evidence_catalog.errors import IntegrityError

    path = make_video(tmp_path / "clip.mov", tags={"location": PARIS})
    digests, size = hash_file(str(path), ["sha256"])
    truthful = model.Artifact(
        digests=digests, size=size, media_type="video/quicktime", metadata=extract_metadata(path, "video/quicktime")
    )
    check_artifact_bytes(path, truthful, hashed=False, where="test")
    media = truthful.metadata.media  # type: ignore[union-attr]
    assert media is not None and media.location is not None
    moved = attrs.evolve(media.location, position=model.GeoPosition(latitude=50.45, longitude=30.52))
    forged = attrs.evolve(truthful, metadata=attrs.evolve(truthful.metadata, media=attrs.evolve(media, location=moved)))
    with pytest.raises(IntegrityError, match=r"metadata\.media\.location\.position"):
        check_artifact_bytes(path, forged, hashed=False, where="test")
    stripped = attrs.evolve(truthful, metadata=attrs.evolve(truthful.metadata, media=None))  # keeps PyAV as extractor
    with pytest.raises(IntegrityError, match=r"metadata\.media"):
        check_artifact_bytes(path, stripped, hashed=False, where="test")


def test_descriptions_written_before_media_metadata_read_and_write_back_byte_for_byte() -> None:
    """Stored artifact documents of the library before this change (tests/data/README.md)."""
    stored = json.loads((DATA / "artifacts-before-media.json").read_text(encoding="utf-8"))
    assert len(stored) == 5
    for item in stored:
        document = item["document"]
        artifact = from_document(document, model.Artifact)
        assert canonical_json(to_document(artifact)) == canonical_json(document), item["file"]
        assert json.dumps(to_document(artifact), ensure_ascii=False) == json.dumps(document, ensure_ascii=False)
        check_artifact_bytes(ROOT / item["file"], artifact, hashed=False, where=item["file"])


@settings(max_examples=100)
@given(s.metadata)
def test_embedded_metadata_round_trips_and_leaves_out_only_absent_media(metadata: model.EmbeddedMetadata) -> None:
    data = unstructure(metadata)
    assert structure(json.loads(json.dumps(data)), model.EmbeddedMetadata) == metadata
    assert ("image" in data) == (metadata.image is not None) and ("media" in data) == (metadata.media is not None)
    before = {"extractor": data["extractor"], "exif": data["exif"], "errors": data["errors"]}
    if metadata.image is None and metadata.media is None:
        assert canonical_json(data) == canonical_json(before)


def test_model_refuses_impossible_media_values() -> None:
    from evidence_catalog.errors import ModelError

    with pytest.raises(ModelError, match="rotation must be one of 0, 90, 180, 270, got 45"):
        model.MediaStream(index=0, kind="video", rotation=45)
    with pytest.raises(ModelError, match="orientation must be one of 1, 2, 3, 4, 5, 6, 7, 8, got 0"):
        model.ImageInfo(width=1, height=1, orientation=0)
    with pytest.raises(ModelError, match="width must be a positive integer"):
        model.MediaStream(index=0, kind="video", width=0)
    with pytest.raises(ModelError, match="'picture' is not a stream kind"):
        model.MediaStream(index=0, kind="picture")
    with pytest.raises(ModelError, match="tags must map text to text"):
        model.MediaInfo(format="mov", tags={"a": 1})  # type: ignore[dict-item]
    with pytest.raises(ModelError, match="has no time zone"):
        model.MediaInfo(format="mov", created_at=dt.datetime(2024, 1, 1))


def test_adding_what_is_not_media_starts_no_reader(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[object] = []
    monkeypatch.setattr(media_reader, "_run_probe", lambda path: started.append(path) or (None, []))
    letter = tmp_path / "letter.txt"
    letter.write_text("no film here\n", encoding="utf-8")
    catalog.add([letter, make_image(tmp_path / "photo.png")])
    assert started == []
    catalog.add([make_video(tmp_path / "clip.mp4")])
    assert len(started) == 1


def test_a_captured_video_is_described_too(catalog: Catalog, server: MediaServer, base: str) -> None:
    from evidence_catalog.capture import CaptureOptions

    clip = (DATA / "clip.mp4").read_bytes()
    video = server.route(f"{base}/media/clip.mp4", Route(body=clip, media_type="video/mp4"))
    page = server.route(f"{base}/watch/media", Route(body=video_page(video, title="Clip"), media_type="text/html"))
    [result] = catalog.capture(page, options=CaptureOptions(retries=0, socket_timeout=2))
    assert result.ok, result.error
    original = catalog.record(result.record_id).artifacts[0]
    assert original.role is model.ArtifactRole.ORIGINAL
    metadata = original.artifact.metadata
    assert metadata is not None and metadata.media is not None and metadata.errors == ()
    video_stream, audio_stream = metadata.media.streams
    assert (video_stream.codec, video_stream.width, video_stream.height, video_stream.frame_rate) == (
        "h264",
        64,
        48,
        10.0,
    )
    assert (audio_stream.codec, audio_stream.sample_rate, audio_stream.channels) == ("aac", 44100, 1)
    assert catalog.verify().ok


def test_a_heif_image_gives_the_size_of_its_primary_item(tmp_path: Path) -> None:
    from PIL import features

    if not features.check("avif"):  # Pillow writes AVIF since 11.3, when built with libavif
        pytest.skip("this Pillow cannot write AVIF")
    path = tmp_path / "photo.avif"
    Image.new("RGB", (333, 222), (1, 2, 3)).save(path, format="AVIF")
    assert read_image_header(path) == (model.ImageInfo(width=333, height=222), ())
    metadata = extract_metadata(path, "image/avif")
    assert metadata is not None and metadata.image == model.ImageInfo(width=333, height=222)


def test_images_written_by_pillow_agree_with_pillow(tmp_path: Path) -> None:
    for number, size in enumerate([(1, 1), (4000, 3), (257, 1023)]):
        path = make_image(tmp_path / f"p{number}.png", size=size)
        with Image.open(path) as image:
            assert read_image_header(path)[0] == model.ImageInfo(width=image.width, height=image.height)
    data = io.BytesIO()
    Image.new("L", (33, 17)).save(data, format="JPEG", progressive=True)
    (tmp_path / "progressive.jpg").write_bytes(data.getvalue())
    assert read_image_header(tmp_path / "progressive.jpg")[0] == model.ImageInfo(width=33, height=17)
