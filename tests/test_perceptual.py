"""PDQ perceptual hashes of images and video frames, keyframes and contact sheets.

The media are real: images made with Pillow, videos encoded with PyAV (H.264 in MP4, MJPEG in
AVI), and five images of Meta's ThreatExchange (``tests/data/pdq``, BSD licence beside them)
whose PDQ hashes its own tests state.  The hostile files are real files cut short, mislabelled or
crafted, a real hang (a named pipe) and a real child process that crashes or runs out of memory.
The properties (re-encoding, resizing, unrelated pictures, EXIF orientation) run the child's own
hashing code in this process, to be quick; everything else goes through the child process.
"""

from __future__ import annotations

import io
import os
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from evidence_catalog.analysis import DEFAULT_MAX_DISTANCE, MIN_QUALITY, hamming
from evidence_catalog.extract import perceptual
from evidence_catalog.extract import perceptual_child as child
from evidence_catalog.extract.perceptual import PerceptualResult, analysable, perceptual_hashes

PDQ_DATA = Path(__file__).parent / "data" / "pdq"
CHILD_PARAMS = {"max_pixels": perceptual.MAX_PIXELS, "image_box": perceptual.BOX}

#: ThreatExchange's own expected hashes (pdq/python/pdqhashing/tests/pdq_test.py).
REFERENCE = {
    "bridge-1-original.jpg": "d8f8f0cce0f4a84f0e370a22028f67f0b36e2ed596623e1d33e6b39c4e9c9b22",
    "small.jpg": "0007001f003f003f007f00ff00ff00ff01ff01ff01ff03ff03ff03ff03ff03ff",
    "wee.jpg": "6227401f601ff4ccafcc9fad4b0d95d371a2eb7265a3285234d228ca94deeb2d",
    "q0122.jpg": "cfb2009ddd21c6dab0046a7745b5984757a8a4535b3377aea2591d32b33ff940",
    "q2821.jpg": "b150231ffae4710ffcf4f18bb574b109a576f14bb8543189f8743289f174b109",
}


# -- media made here --------------------------------------------------------------------------------


def picture(seed: int, size: tuple[int, int] = (320, 240), grid: tuple[int, int] = (4, 3)) -> Image.Image:
    """A random picture with detail at every scale, as a photo has: random grids of colour, each
    twice as fine and fainter than the last, enlarged smoothly and summed."""
    rng = np.random.default_rng(seed)
    total = np.zeros((size[1], size[0], 3))
    for level in range(5):
        cells = rng.random((grid[1] << level, grid[0] << level, 3)).astype(np.float32)
        layers = [Image.fromarray(cells[:, :, c], mode="F").resize(size, Image.Resampling.BICUBIC) for c in range(3)]
        total += np.stack([np.asarray(layer) for layer in layers], axis=2) / (1.6**level)
    total -= total.min()
    total *= 255 / total.max()
    return Image.fromarray(total.astype(np.uint8))


def jpeg_bytes(image: Image.Image, quality: int = 95, exif: bytes | None = None) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality, **({"exif": exif} if exif else {}))
    return out.getvalue()


def image_hash(data: bytes, tmp: Path) -> tuple[str, int]:
    """The child's own hashing of an image, in this process."""
    path = tmp / "image"
    path.write_bytes(data)
    found = child.hash_image(str(path), CHILD_PARAMS, [])["hashes"][0]
    return found["value"], found["quality"]


def make_video(
    path: Path,
    scenes: list[Image.Image],
    *,
    seconds_each: float = 1.0,
    rate: int = 10,
    size: tuple[int, int] | None = None,
    rotation: int | None = None,
    codec: str = "libx264",
) -> Path:
    """A video showing each of *scenes* for *seconds_each* seconds (shaking by a pixel, so
    frames are not all equal)."""
    width, height = size or scenes[0].size
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if rotation is not None:
            stream.set_display_rotation(rotation)
        number = 0
        for scene in scenes:
            pixels = np.asarray(scene.resize((width, height), Image.Resampling.BICUBIC))
            for step in range(round(seconds_each * rate)):
                frame = av.VideoFrame.from_ndarray(np.roll(pixels, step % 2, axis=1), format="rgb24")
                frame.pts = number
                number += 1
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def reencode(source: Path, target: Path, size: tuple[int, int], crf: int) -> Path:
    """*source* decoded and encoded again at *size* and a lower quality (as a repost is)."""
    with av.open(str(source)) as original, av.open(str(target), "w") as container:
        stream = container.add_stream("libx264", rate=10, options={"crf": str(crf)})
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for number, frame in enumerate(original.decode(video=0)):
            pixels = frame.reformat(size[0], size[1], format="rgb24").to_ndarray()
            small = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            small.pts = number
            for packet in stream.encode(small):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return target


def hashed(path: Path, media_type: str, tmp: Path, name: str = "work") -> PerceptualResult:
    work = tmp / name
    work.mkdir(exist_ok=True)
    return perceptual_hashes(path, media_type, work=work)


# -- images ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_an_image_hashes_as_threatexchange_says(name: str, tmp_path: Path) -> None:
    """Meta's own test images give Meta's own hashes, bit for bit: the same reduction (the
    bridge is 1600 x 1004, reduced to fit 512 x 512) and the same hex (bit 255 first)."""
    result = hashed(PDQ_DATA / name, "image/jpeg", tmp_path)
    assert result.errors == ()
    [found] = result.hashes
    assert found.value == REFERENCE[name]
    assert found.offset_s is None
    assert (found.quality >= MIN_QUALITY) is (name != "small.jpg")  # small.jpg is a near-flat gradient


def test_an_image_result_names_its_tools_and_parameters(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    picture(1).save(path)
    result = hashed(path, "image/png", tmp_path)
    assert [tool.name for tool in result.tools] == ["pdqhash", "Pillow", "numpy"]
    assert all(tool.version for tool in result.tools)
    assert result.keyframes == () and result.contact_sheet is None
    assert all(key.startswith("pdq.") for key in result.parameters)
    assert result.parameters["pdq.image.reduce"].startswith("Pillow Image.thumbnail((512, 512))")


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), quality=st.integers(20, 95))
def test_a_reencoded_image_stays_within_the_match_distance(seed: int, quality: int, tmp_path_factory: Any) -> None:
    tmp = tmp_path_factory.mktemp("reencode")
    image = picture(seed)
    original, _ = image_hash(jpeg_bytes(image, 95), tmp)
    again, _ = image_hash(jpeg_bytes(image, quality), tmp)
    assert hamming(original, again) <= DEFAULT_MAX_DISTANCE


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    longer=st.integers(2 * perceptual.BOX + 2, 1400),
    shorter=st.integers(256, 1400),
    upright=st.booleans(),
)
def test_an_image_halved_in_size_stays_within_the_match_distance(
    seed: int, longer: int, shorter: int, upright: bool, tmp_path_factory: Any
) -> None:
    """What the reduction to the 512 x 512 box guarantees: a picture whose half still exceeds
    the box hashes, halved, within the match distance (both are reduced to about the same
    size before PDQ sees them; 6 bits at most over 80 draws and Meta's test images).  A smaller
    picture halved is left to PDQ's own robustness, which has no such bound: docs/media.md
    "Where matching fails" gives the distances measured."""
    tmp = tmp_path_factory.mktemp("resize")
    width, height = (shorter, longer) if upright else (longer, shorter)
    image = picture(seed, (width, height))
    half = image.resize((width // 2, height // 2), Image.Resampling.LANCZOS)
    original, _ = image_hash(jpeg_bytes(image), tmp)
    smaller, _ = image_hash(jpeg_bytes(half), tmp)
    assert hamming(original, smaller) <= DEFAULT_MAX_DISTANCE


@settings(max_examples=25, deadline=None)
@given(seeds=st.lists(st.integers(0, 2**32 - 1), min_size=2, max_size=2, unique=True), grids=st.booleans())
def test_unrelated_images_are_far_apart(seeds: list[int], grids: bool, tmp_path_factory: Any) -> None:
    tmp = tmp_path_factory.mktemp("unrelated")
    first = picture(seeds[0])
    second = picture(seeds[1], grid=(3, 5) if grids else (4, 3))
    a, quality_a = image_hash(jpeg_bytes(first), tmp)
    b, quality_b = image_hash(jpeg_bytes(second), tmp)
    assert quality_a >= MIN_QUALITY and quality_b >= MIN_QUALITY
    assert hamming(a, b) > DEFAULT_MAX_DISTANCE


def _exif_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


#: What a camera stores for each EXIF orientation, given the picture as displayed: the inverse of
#: what a viewer does (``ImageOps.exif_transpose``'s transposes, inverted).
_STORED = {
    2: [Image.Transpose.FLIP_LEFT_RIGHT],
    3: [Image.Transpose.ROTATE_180],
    4: [Image.Transpose.FLIP_TOP_BOTTOM],
    5: [Image.Transpose.TRANSPOSE],
    6: [Image.Transpose.ROTATE_90],
    7: [Image.Transpose.TRANSVERSE],
    8: [Image.Transpose.ROTATE_270],
}


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), orientation=st.sampled_from(sorted(_STORED)))
def test_an_exif_oriented_jpeg_hashes_as_its_upright_pixels(seed: int, orientation: int, tmp_path_factory: Any) -> None:
    tmp = tmp_path_factory.mktemp("exif")
    upright = picture(seed, (400, 300))
    stored = upright
    for step in _STORED[orientation]:
        stored = stored.transpose(step)
    shown, _ = image_hash(jpeg_bytes(upright), tmp)
    oriented, _ = image_hash(jpeg_bytes(stored, exif=_exif_orientation(orientation)), tmp)
    unturned, _ = image_hash(jpeg_bytes(stored), tmp)
    assert hamming(shown, oriented) <= 8
    assert hamming(shown, unturned) > DEFAULT_MAX_DISTANCE  # the orientation made the difference


def test_an_animated_gif_hashes_its_first_frame(tmp_path: Path) -> None:
    frames = [picture(10), picture(11)]
    path = tmp_path / "a.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    still = tmp_path / "first.gif"
    frames[0].save(still)
    result = hashed(path, "image/gif", tmp_path)
    assert result.hashes[0].value == hashed(still, "image/gif", tmp_path).hashes[0].value
    assert result.errors == ("the image is animated: its first frame is hashed",)


def test_what_is_analysable() -> None:
    assert analysable("image/jpeg") and analysable("image/png") and analysable("image/webp")
    assert analysable("video/mp4") and analysable("video/x-matroska")
    assert not analysable("image/svg+xml") and not analysable("text/plain") and not analysable("audio/mpeg")


# -- videos ------------------------------------------------------------------------------------------


def test_a_video_is_hashed_once_a_second_with_keyframes_and_a_contact_sheet(tmp_path: Path) -> None:
    scenes = [picture(20), picture(21), picture(22)]
    video = make_video(tmp_path / "v.mp4", scenes, seconds_each=2.0)
    result = hashed(video, "video/mp4", tmp_path)
    assert result.errors == ()
    assert [h.offset_s for h in result.hashes] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert [tool.name for tool in result.tools] == ["pdqhash", "Pillow", "numpy", "PyAV", "FFmpeg"]
    assert result.parameters["pdq.video.interval_s"] == "1"
    # one keyframe per scene: the scenes' frames are far apart, a scene's frames close
    assert [int(offset // 2) for offset, _ in result.keyframes] == [0, 1, 2]
    for offset, path in result.keyframes:
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.size == (320, 240) and "exif" not in image.info
            index = int(offset)
            assert hamming(child._pdq(np.asarray(image.convert("RGB")))[0], result.hashes[index].value) <= 16
    assert result.contact_sheet is not None
    with Image.open(result.contact_sheet) as sheet:
        assert sheet.format == "JPEG" and sheet.size == (4 * 320, 2 * 180) and "exif" not in sheet.info


def test_a_reencoded_smaller_video_matches_at_the_same_offsets(tmp_path: Path) -> None:
    scenes = [picture(seed) for seed in range(30, 35)]
    video = make_video(tmp_path / "v.mp4", scenes, size=(320, 240))
    repost = reencode(video, tmp_path / "repost.mp4", (160, 120), crf=35)
    original = hashed(video, "video/mp4", tmp_path, "a").hashes
    again = hashed(repost, "video/mp4", tmp_path, "b").hashes
    assert [h.offset_s for h in again] == [h.offset_s for h in original] == [0.0, 1.0, 2.0, 3.0, 4.0]
    for before, after in zip(original, again, strict=True):
        assert before.distance(after) <= DEFAULT_MAX_DISTANCE
    assert all(original[0].distance(after) > DEFAULT_MAX_DISTANCE for after in again[1:])


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_a_rotated_phone_video_hashes_as_displayed(rotation: int, tmp_path: Path) -> None:
    upright = picture(40, (96, 64))
    turns = (rotation // 90) % 4  # FFmpeg's rotation is counterclockwise: numpy's rot90 shows it
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(np.asarray(upright), -turns)))
    plain = hashed(make_video(tmp_path / "plain.mp4", [upright]), "video/mp4", tmp_path, "a")
    turned = hashed(make_video(tmp_path / "turned.mp4", [stored], rotation=rotation), "video/mp4", tmp_path, "b")
    unturned = hashed(make_video(tmp_path / "unturned.mp4", [stored]), "video/mp4", tmp_path, "c")
    assert turned.errors == ()
    assert plain.hashes[0].distance(turned.hashes[0]) <= 16  # chroma subsampled along the other axis
    assert plain.hashes[0].distance(unturned.hashes[0]) > DEFAULT_MAX_DISTANCE
    [(_, keyframe)] = turned.keyframes
    with Image.open(keyframe) as image:
        assert image.size == (96, 64)


def test_the_same_video_gives_the_same_result_and_the_same_bytes(tmp_path: Path) -> None:
    video = make_video(tmp_path / "v.mp4", [picture(50), picture(51)], seconds_each=1.5)
    first = hashed(video, "video/mp4", tmp_path, "a")
    second = hashed(video, "video/mp4", tmp_path, "b")
    assert first.hashes == second.hashes and first.parameters == second.parameters and first.errors == second.errors
    assert [offset for offset, _ in first.keyframes] == [offset for offset, _ in second.keyframes]
    assert first.keyframes and first.contact_sheet is not None and second.contact_sheet is not None
    for (_, a), (_, b) in zip(first.keyframes, second.keyframes, strict=True):
        assert a.read_bytes() == b.read_bytes()
    assert first.contact_sheet.read_bytes() == second.contact_sheet.read_bytes()


def test_past_the_most_hashes_the_interval_doubles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    video = make_video(tmp_path / "v.mp4", [picture(60 + n) for n in range(10)], rate=5)
    monkeypatch.setattr(perceptual, "MAX_HASHES", 4)
    result = hashed(video, "video/mp4", tmp_path)
    assert [h.offset_s for h in result.hashes] == [0.0, 4.0, 8.0]
    assert result.parameters["pdq.video.interval_s"] == "4"
    assert result.errors == ()


def test_a_video_with_a_huge_frame_count_stops_at_the_most_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = make_video(tmp_path / "v.mp4", [picture(70 + n) for n in range(10)], rate=5)
    monkeypatch.setattr(perceptual, "MAX_FRAMES_DECODED", 12)
    result = hashed(video, "video/mp4", tmp_path)
    assert [h.offset_s for h in result.hashes] == [0.0, 1.0, 2.0]
    assert result.errors == ("decoding stopped after 12 frames; frames after that are not hashed",)
    monkeypatch.setattr(perceptual, "MAX_FRAMES_DECODED", 10**6)
    monkeypatch.setattr(perceptual, "MAX_OFFSET_S", 3)
    result = hashed(video, "video/mp4", tmp_path, "b")
    assert [h.offset_s for h in result.hashes] == [0.0, 1.0, 2.0, 3.0]
    assert result.errors == ("frames past 3 s of video are not hashed",)


# -- hostile files -----------------------------------------------------------------------------------


def _no_hash(result: PerceptualResult) -> str:
    assert result.hashes == () and result.keyframes == () and result.contact_sheet is None
    assert len(result.errors) == 1
    return result.errors[0]


@pytest.mark.parametrize("media_type", ["image/jpeg", "video/mp4"])
def test_a_zero_length_file_is_an_error(media_type: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    error = _no_hash(hashed(empty, media_type, tmp_path))
    assert error.startswith("this file could not be decoded as ")


def test_a_truncated_image_is_an_error_not_half_a_hash(tmp_path: Path) -> None:
    data = jpeg_bytes(picture(80, (800, 600)))
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    error = _no_hash(hashed(cut, "image/jpeg", tmp_path))
    assert error.startswith("this file could not be decoded as an image") and "truncated" in error


def test_a_truncated_video_is_an_error(tmp_path: Path) -> None:
    data = make_video(tmp_path / "v.mp4", [picture(81), picture(82)]).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: gone
    assert _no_hash(hashed(cut, "video/mp4", tmp_path)).startswith("this file could not be decoded as video")


def test_a_video_cut_short_after_its_index_keeps_the_frames_before_the_cut(tmp_path: Path) -> None:
    """With the index first (``faststart``), the frames before the cut are decoded: their hashes
    stay (the same on every machine), and an error says where decoding stopped."""
    path = tmp_path / "v.mp4"
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height = 160, 120
        stream.pix_fmt = "yuv420p"
        for number in range(60):
            frame = av.VideoFrame.from_ndarray(np.asarray(picture(number // 10, (160, 120))), format="rgb24")
            frame.pts = number
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = path.read_bytes()
    assert data[4:8] == b"ftyp" and data[36:40] == b"moov"
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    result = hashed(cut, "video/mp4", tmp_path)
    whole = hashed(path, "video/mp4", tmp_path, "whole")
    assert 0 < len(result.hashes) < len(whole.hashes) == 6
    assert result.hashes == whole.hashes[: len(result.hashes)]
    [error] = result.errors
    assert error.startswith("decoding stopped after ") and error.endswith("; the rest is not hashed")


def test_a_video_type_with_no_video_stream_is_an_error(tmp_path: Path) -> None:
    sound = Path(__file__).parent / "data" / "clip-audio.m4a"
    assert _no_hash(hashed(sound, "video/mp4", tmp_path)) == "not hashed: the file has no video stream"


def test_an_mp4_that_is_not_is_an_error(tmp_path: Path) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"this is no video at all " * 100)
    assert _no_hash(hashed(fake, "video/mp4", tmp_path)).startswith("this file could not be decoded as video")


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def test_an_image_claiming_absurd_dimensions_is_refused_before_decoding(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_claiming(50_000, 50_000))
    started = time.monotonic()
    error = _no_hash(hashed(bomb, "image/png", tmp_path))
    assert error == (
        "not hashed: the image states 50000 x 50000 pixels, over the 100,000,000 this hasher decodes;"
        " it was not decoded"
    )
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(("side", "why"), [(12_000, "DecompressionBombWarning"), (20_000, "DecompressionBombError")])
def test_a_format_the_header_reader_does_not_know_is_refused_by_pillow(side: int, why: str, tmp_path: Path) -> None:
    """A PPM is not read by this library's header reader: Pillow's own limit (made an error past
    MAX_PIXELS, as it is past twice that) refuses it on opening, before a pixel is decoded."""
    bomb = tmp_path / "bomb.ppm"
    bomb.write_bytes(f"P6 {side} {side} 255\n".encode() + b"\x00" * 1000)
    error = _no_hash(hashed(bomb, "image/x-portable-pixmap", tmp_path))
    assert error.startswith(f"not hashed: {why}: Image size ({side * side} pixels) exceeds limit of ")


def test_an_eps_handed_over_as_an_image_is_not_rendered(tmp_path: Path) -> None:
    """Pillow renders EPS by running Ghostscript on the file: the hasher never lets it."""
    eps = tmp_path / "x.png"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n0 0 moveto 10 10 lineto stroke\nshowpage\n")
    assert _no_hash(hashed(eps, "image/png", tmp_path)) == (
        "this file could not be decoded as an image, so nothing was hashed:"
        " UnidentifiedImageError: cannot identify image file '<file>'"
    )


def _mjpeg_claiming(tmp: Path, side: int) -> Path:
    """An MJPEG AVI of 16 x 16 frames whose headers and frames claim *side* x *side*."""
    data = bytearray(make_video(tmp / "small.avi", [picture(90)], size=(16, 16), codec="mjpeg").read_bytes())
    data = data.replace(
        b"\xff\xc0\x00\x11\x08\x00\x10\x00\x10", b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", side, side)
    )
    data[:1024] = bytes(data[:1024]).replace(struct.pack("<II", 16, 16), struct.pack("<II", side, side))
    path = tmp / f"claims-{side}.avi"
    path.write_bytes(data)
    return path


def test_a_video_claiming_absurd_dimensions_is_an_error(tmp_path: Path) -> None:
    assert hashed(
        make_video(tmp_path / "ok.avi", [picture(90)], size=(16, 16), codec="mjpeg"), "video/x-msvideo", tmp_path
    ).hashes
    error = _no_hash(hashed(_mjpeg_claiming(tmp_path, 12_000), "video/x-msvideo", tmp_path))
    assert error == (
        "not hashed: the video states frames of 12000 x 12000 pixels, over the 100,000,000 this hasher decodes;"
        " it was not decoded"
    )
    # 50,000 x 50,000 is past what FFmpeg itself accepts: it refuses the stream
    error = _no_hash(hashed(_mjpeg_claiming(tmp_path, 50_000), "video/x-msvideo", tmp_path))
    assert error.startswith("this file could not be decoded as video")


@pytest.mark.parametrize("media_type", ["image/png", "video/mp4"])
def test_a_decoder_that_hangs_is_stopped_at_the_time_limit(
    media_type: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe = tmp_path / "endless"
    os.mkfifo(pipe)  # a read that never ends, as an endless stream's
    monkeypatch.setattr(perceptual, "IMAGE_TIME_LIMIT_S", 2)
    monkeypatch.setattr(perceptual, "VIDEO_TIME_LIMIT_S", 2)
    started = time.monotonic()
    error = _no_hash(hashed(pipe, media_type, tmp_path))
    assert error == "the perceptual hasher did not finish within 2 s and was stopped; nothing was hashed"
    assert perceptual.stopped_by_the_machine((error,)) == error
    assert time.monotonic() - started < 10


def _child_variant(tmp: Path, extra: str) -> Path:
    source = Path(child.__file__).read_text(encoding="utf-8")
    variant = tmp / "perceptual_child.py"
    variant.write_text(
        source.replace('\nif __name__ == "__main__":', extra + '\nif __name__ == "__main__":'), encoding="utf-8"
    )
    return variant


def test_a_decoder_that_crashes_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    crash = "\ndef hash_image(path, params, notes):\n    os.kill(os.getpid(), signal.SIGSEGV)\n\n"
    monkeypatch.setattr(perceptual, "_CHILD", _child_variant(tmp_path, crash))
    image = tmp_path / "a.png"
    picture(1).save(image)
    error = _no_hash(hashed(image, "image/png", tmp_path))
    assert error == "the perceptual hasher crashed (SIGSEGV) on this file; nothing was hashed"
    assert perceptual.stopped_by_the_machine((error,)) == error


def test_a_decoder_that_runs_out_of_memory_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hungry = "\ndef hash_video(path, work, params, notes):\n    return {'data': bytearray(4 << 30)}\n\n"
    monkeypatch.setattr(perceptual, "_CHILD", _child_variant(tmp_path, hungry))
    video = make_video(tmp_path / "v.mp4", [picture(1)])
    error = _no_hash(hashed(video, "video/mp4", tmp_path))
    assert error == "the perceptual hasher ran out of its memory limit (2048 MiB) on this file; nothing was hashed"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ("found['contact_sheet'] = '../../etc/passwd'", "a written file named '../../etc/passwd'"),
        ("found['keyframes'][0][0] = 0.5", "the keyframes are not hashed frames in time order"),
        ("found['hashes'].reverse()", "the frames' offsets are not in time order"),
        ("found['hashes'][0]['value'] = 'f' * 63", "a PDQ hash is 64 lowercase hex digits, got 'fff"),
    ],
)
def test_a_report_the_parent_cannot_trust_is_refused(
    change: str, why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lying = (
        "\n_real = hash_video\n"
        "def hash_video(path, work, params, notes):\n"
        "    found = _real(path, work, params, notes)\n"
        f"    {change}\n"
        "    return found\n\n"
    )
    monkeypatch.setattr(perceptual, "_CHILD", _child_variant(tmp_path, lying))
    video = make_video(tmp_path / "v.mp4", [picture(1), picture(2)])
    error = _no_hash(hashed(video, "video/mp4", tmp_path))
    assert error.startswith(f"the perceptual hasher's report could not be used: {why}")


def test_the_child_runs_under_the_limits_it_states(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = "resource.RLIMIT_AS, resource.RLIMIT_CPU, resource.RLIMIT_CORE, resource.RLIMIT_FSIZE"
    limits = f"str([resource.getrlimit(r) for r in ({names})])"
    report = f"\ndef hash_image(path, params, notes):\n    raise RefusedError({limits})\n\n"
    monkeypatch.setattr(perceptual, "_CHILD", _child_variant(tmp_path, report))
    image = tmp_path / "a.png"
    picture(1).save(image)
    error = _no_hash(hashed(image, "image/png", tmp_path))
    memory, seconds, written = perceptual.MEMORY_LIMIT_BYTES, perceptual.IMAGE_TIME_LIMIT_S, 64 * 1024 * 1024
    assert error == f"not hashed: {[(memory, memory), (seconds, seconds + 1), (0, 0), (written, written)]}"
