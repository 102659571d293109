"""Perceptual hashes (Meta's PDQ) of an image or of a video's frames, and a video's keyframes and
contact sheet.

**Images.**  Decoded with Pillow as ThreatExchange's Python reference (``pdqhashing``'s
``PDQHasher.fromFile``) does: ``Image.thumbnail((512, 512))`` -- the image reduced, never
enlarged, to fit 512 x 512 with its ratio kept (Pillow's BICUBIC, and for a JPEG a reduced DCT
scale first: the reference's own call, whose defaults these are) -- then turned by its EXIF
orientation (``ImageOps.exif_transpose``: a phone's photo hashes as it is displayed, which the
reference does not do), converted to RGB (an alpha channel dropped, as the reference does), and
hashed by ``pdqhash`` (Meta's C++: luma 0.299 R + 0.587 G + 0.114 B, a Jarosz filter to 64 x 64,
a DCT, 256 bits against the median).  An animated GIF, PNG or WebP: its first frame.  An image
stating more than :data:`MAX_PIXELS` pixels is refused before decoding (from its header, read by
:mod:`evidence_catalog.extract.image`, and again by Pillow's ``MAX_IMAGE_PIXELS``, its warning
made an error); an image cut short is an error, never a hash of half a picture.

**Videos.**  The first video stream (a cover picture is no video) is decoded with PyAV, threaded,
and **one frame per second** of video time is hashed: the first frame at or after each whole
second from the stream's start.  A clip reposted elsewhere is cut at an arbitrary point, so a
hash every second finds it at any second it shares with the original; a scene of a few seconds
gets a few hashes; and the cost (a hash of about 2 ms per second of video, beside decoding
every frame) and the size of the document stay bounded.  Past :data:`MAX_HASHES` hashes the
interval doubles, as often as needed, keeping the first frame of each new interval (what
sampling at that interval from the start would have kept); the interval used is a parameter of
the result.  Each frame is scaled by FFmpeg (swscale's area averaging, the method vPDQ uses when
it reduces frames) to fit 512 x 512 and turned by the stream's display matrix (a phone video
hashes as it is shown).  Its offset is its presentation time from the stream's start, in
seconds, rounded to the millisecond.

**Keyframes and contact sheet.**  While decoding, up to :data:`MAX_CANDIDATES` of the hashed
frames are kept as pictures (at most :data:`KEYFRAME_MAX_SIDE` pixels on a side), spread evenly
over the video the same way.  Keyframes are chosen among them by their hashes: the first usable
frame, then again and again the candidate farthest from all chosen so far, while it is more than
:data:`~evidence_catalog.analysis.DEFAULT_MAX_DISTANCE` bits from each, up to :data:`KEYFRAMES`
-- one per scene that looks different, a still shot gives one.  The contact sheet is a grid of
up to :data:`SHEET_TILES` candidates evenly spread, each with its time.  Both are JPEG files
written with fixed settings and no metadata (no EXIF, no time): the same video and versions give
the same bytes.

**Limits.**  Decoding runs in a child process (:mod:`evidence_catalog.extract.perceptual_child`)
under a wall-time limit, a CPU-time limit, an address-space limit and no core dump, as the
media reader's does: a crash, a hang or an allocation past the limit ends that process, and the
result says so in its ``errors`` -- this function does not raise on any file and does not hang.
A stop of the machine's (a limit, a crash) gives no hash at all, never a part that depends on
the machine's speed; a video's frames past :data:`MAX_OFFSET_S` seconds or past
:data:`MAX_FRAMES_DECODED` decoded frames are not hashed, the hashes before are kept (the same
on every machine), and an error says so.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from pathlib import Path
from typing import Any

import attrs

from evidence_catalog.analysis import DEFAULT_MAX_DISTANCE, PerceptualHash
from evidence_catalog.errors import EvidenceError
from evidence_catalog.extract.sandbox import clean as _clean
from evidence_catalog.extract.sandbox import report, run_script
from evidence_catalog.model import Agent, AgentKind

#: The most pixels an image or a video frame may state to be decoded (100 megapixels: a
#: 12-megapixel photo is far under; a "decompression bomb" is refused from its header).
MAX_PIXELS = 100_000_000
#: The square an image or a frame is reduced to fit before PDQ's own 64 x 64 filter
#: (ThreatExchange's reference reduces to 512 x 512 first).
BOX = 512
#: The most frame hashes of one video; past it the sampling interval doubles.
MAX_HASHES = 3600
#: Video time past which frames are not hashed (24 hours), and the most frames decoded.
MAX_OFFSET_S = 86_400
MAX_FRAMES_DECODED = 3_000_000
#: Keyframes: how many at most, how far apart in PDQ bits, the largest side of their picture.
KEYFRAMES = 6
KEYFRAME_MAX_SIDE = 1280
#: Frames kept as pictures while decoding, to choose keyframes and the contact sheet from.
MAX_CANDIDATES = 32
#: The contact sheet: how many frames, the width of a landscape cell (its height 9/16 of it).
SHEET_TILES = 16
SHEET_CELL = 320
#: The JPEG quality of keyframes and contact sheet (4:2:0, baseline, not optimised).
JPEG_QUALITY = 90
#: Wall time and address space the hashing process may use, for an image and for a video.
IMAGE_TIME_LIMIT_S = 60
VIDEO_TIME_LIMIT_S = 3600
MEMORY_LIMIT_BYTES = 2 * 1024 * 1024 * 1024
#: Decoder threads (the result does not depend on them).
THREADS = max(1, min(4, os.cpu_count() or 1))
_CHILD = Path(__file__).with_name("perceptual_child.py")
#: What the hasher's fork servers import once (:func:`~evidence_catalog.extract.sandbox.run_script`).
IMAGE_PRELOAD = ("numpy", "PIL.Image:init", "pdqhash")
VIDEO_PRELOAD = (*IMAGE_PRELOAD, "av")
_NAME = re.compile(r"[a-z0-9-]{1,64}\.jpg", re.ASCII)


@attrs.frozen
class PerceptualResult:
    """What hashing one image or video gave."""

    #: One hash for an image; one per sampled frame for a video, in time order.
    hashes: tuple[PerceptualHash, ...]
    #: A video's keyframes: (offset in seconds, the JPEG file written in the work folder).
    keyframes: tuple[tuple[float, Path], ...]
    #: A video's contact sheet, a JPEG file written in the work folder.
    contact_sheet: Path | None
    #: The software that made the hashes and pictures, with its versions.
    tools: tuple[Agent, ...]
    #: Every parameter that shapes the values, as text, keys prefixed ``pdq.``.
    parameters: dict[str, str]
    #: What went wrong; with no hash, why there is none.
    errors: tuple[str, ...]


def analysable(media_type: str) -> bool:
    """Whether :func:`perceptual_hashes` hashes artifacts of *media_type*: images Pillow
    decodes, and video."""
    base = media_type.split(";", 1)[0].strip().lower()
    if base.startswith("video/"):
        return True
    return base.startswith("image/") and base in _pillow_types()


#: Other names of image types Pillow decodes (as sniffers name them) than those it registers.
_ALIASES = frozenset(
    {
        "image/x-portable-pixmap",
        "image/x-portable-graymap",
        "image/x-portable-bitmap",
        "image/x-ms-bmp",
        "image/x-bmp",
        "image/vnd.microsoft.icon",
        "image/apng",
        "image/x-png",
        "image/pjpeg",
        "image/jpg",
        "image/x-tiff",
    }
)


def _pillow_types() -> frozenset[str]:
    from PIL import Image

    Image.init()
    return frozenset(value.lower() for value in Image.MIME.values()) | _ALIASES


def parameters(kind: str) -> dict[str, str]:
    """The parameters that shape an image's (*kind* ``image``) or a video's hashes, as text."""
    found = {
        "pdq.implementation": "pdqhash (Meta's C++ reference); hex as Meta writes it, bit 255 first",
        "pdq.luma": "0.299 R + 0.587 G + 0.114 B",
        "pdq.max_pixels": str(MAX_PIXELS),
    }
    if kind == "image":
        found["pdq.image.reduce"] = f"Pillow Image.thumbnail(({BOX}, {BOX})), its defaults (BICUBIC, reducing_gap 2)"
        found["pdq.image.orientation"] = "EXIF orientation applied (ImageOps.exif_transpose)"
        found["pdq.image.frame"] = "the first frame of an animated image"
        return found
    found.update(
        {
            "pdq.video.stream": "the first video stream that is not an attached picture",
            "pdq.video.sampling": "the first frame at or after each interval of presentation time from the start",
            "pdq.video.interval_s": "1",
            "pdq.video.max_hashes": str(MAX_HASHES),
            "pdq.video.max_offset_s": str(MAX_OFFSET_S),
            "pdq.video.max_frames_decoded": str(MAX_FRAMES_DECODED),
            "pdq.video.reduce": f"FFmpeg swscale, area averaging, to fit {BOX} x {BOX}, rgb24",
            "pdq.video.rotation": "the display matrix applied in quarter turns",
            "pdq.keyframes.count": str(KEYFRAMES),
            "pdq.keyframes.choice": (
                "the first usable candidate, then the farthest from those chosen"
                f" while more than {DEFAULT_MAX_DISTANCE} bits from each"
            ),
            "pdq.keyframes.candidates": str(MAX_CANDIDATES),
            "pdq.keyframes.max_side": str(KEYFRAME_MAX_SIDE),
            "pdq.contact_sheet.tiles": str(SHEET_TILES),
            "pdq.contact_sheet.cell": f"{SHEET_CELL} x {SHEET_CELL * 9 // 16}",
            "pdq.jpeg": f"Pillow JPEG quality {JPEG_QUALITY}, 4:2:0, baseline, no metadata",
        }
    )
    return found


def perceptual_hashes(path: Path, media_type: str, *, work: Path) -> PerceptualResult:
    """PDQ hashes of the image or video at *path* (see the module's description), with a
    video's keyframes and contact sheet written as JPEG files into the folder *work*.

    Never raises for what the file holds: what went wrong is in the result's ``errors``."""
    kind = "video" if media_type.split(";", 1)[0].strip().lower().startswith("video/") else "image"
    params = parameters(kind)
    if not analysable(media_type):
        return _nothing(kind, params, [f"{media_type} is not an image or video this hasher decodes"], {})
    if kind == "image":
        refused = _image_too_large(path)
        if refused is not None:
            return _nothing(kind, params, [refused], {})
    raw, errors = _run(kind, path, work)
    versions = raw.get("versions") if raw is not None else None
    versions = versions if isinstance(versions, dict) else {}
    if raw is None or "error" in raw:
        return _nothing(kind, params, errors, versions)
    errors.extend(_clean(note) for note in raw.get("notes", ()) if isinstance(note, str))
    try:
        hashes = tuple(
            PerceptualHash(value=item["value"], quality=item["quality"], offset_s=item.get("offset_s"))
            for item in raw["hashes"]
        )
        offsets = [h.offset_s for h in hashes]
        if kind == "video" and (None in offsets or any(a >= b for a, b in itertools.pairwise(offsets))):  # type: ignore[operator]
            raise ValueError("the frames' offsets are not in time order")
        if kind == "image" and len(hashes) != 1:
            raise ValueError("an image has one hash")
        keyframes = tuple((float(offset), _written(work, name)) for offset, name in raw.get("keyframes", ()))
        kept = [offset for offset, _ in keyframes]
        if kept != sorted(set(kept)) or not set(kept) <= set(offsets):
            raise ValueError("the keyframes are not hashed frames in time order")
        sheet = raw.get("contact_sheet")
        contact_sheet = _written(work, sheet) if sheet is not None else None
        if kind == "video":
            interval = raw["interval_s"]
            if type(interval) is not int or interval < 1:
                raise ValueError(f"a sampling interval of {interval!r}")
            params["pdq.video.interval_s"] = str(interval)
    except (EvidenceError, TypeError, ValueError, KeyError) as exc:
        errors.append(f"the perceptual hasher's report could not be used: {exc}")
        return _nothing(kind, params, errors, versions)
    return PerceptualResult(
        hashes=hashes,
        keyframes=keyframes,
        contact_sheet=contact_sheet,
        tools=_tools(kind, versions),
        parameters=params,
        errors=tuple(errors),
    )


def _nothing(kind: str, params: dict[str, str], errors: list[str], versions: dict[str, Any]) -> PerceptualResult:
    return PerceptualResult(
        hashes=(),
        keyframes=(),
        contact_sheet=None,
        tools=_tools(kind, versions),
        parameters=params,
        errors=tuple(errors),
    )


def _written(work: Path, name: Any) -> Path:
    """A file the child says it wrote: a plain name of its own making, in *work*, there."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"a written file named {name!r}")
    path = work / name
    if not path.is_file():
        raise ValueError(f"{name} was not written")
    return path


def _image_too_large(path: Path) -> str | None:
    from evidence_catalog.extract.image import read_image_header

    if not path.is_file():  # a pipe or a device: left to the child, under its time limit
        return None
    info, _ = read_image_header(path)
    if info is not None and info.width * info.height > MAX_PIXELS:
        return (
            f"not hashed: the image states {info.width} x {info.height} pixels,"
            f" over the {MAX_PIXELS:,} this hasher decodes; it was not decoded"
        )
    return None


def _tools(kind: str, versions: dict[str, Any]) -> tuple[Agent, ...]:
    from importlib.metadata import PackageNotFoundError, version

    names = ["pdqhash", "Pillow", "numpy"] + (["PyAV", "FFmpeg"] if kind == "video" else [])
    distributions = {"pdqhash": "pdqhash", "Pillow": "pillow", "numpy": "numpy", "PyAV": "av"}
    tools = []
    for name in names:
        found = versions.get(name)
        if not isinstance(found, str) or not found.strip():
            try:
                found = version(distributions[name]) if name in distributions else None
            except PackageNotFoundError:
                found = None
        tools.append(Agent(name=name, kind=AgentKind.SOFTWARE, version=_clean(found) if found else None))
    return tuple(tools)


#: How the errors of :func:`_run` begin that say the hasher stopped for a reason of the machine
#: that ran it (a limit, a crash, a library that could not be loaded), not of the file.
_STOPPED_BY_THE_MACHINE = (
    "the perceptual hasher did not finish within ",
    "the perceptual hasher could not be started",
    "the perceptual hasher used up its CPU time limit",
    "the perceptual hasher was killed",
    "the perceptual hasher crashed",
    "the perceptual hasher gave ",
    "the perceptual hasher failed ",
    "the perceptual hasher ran out of its memory limit",
    "the perceptual hasher's libraries could not be loaded",
)


def stopped_by_the_machine(errors: tuple[str, ...]) -> str | None:
    """The first of *errors* that says the hasher stopped for a reason of the machine that ran
    it (a time or memory limit, a crash, a library missing), or ``None``: the same bytes may hash
    in full elsewhere, so such a result claims nothing of the file."""
    return next((error for error in errors if error.startswith(_STOPPED_BY_THE_MACHINE)), None)


def _run(kind: str, path: Path, work: Path) -> tuple[dict[str, Any] | None, list[str]]:
    seconds = IMAGE_TIME_LIMIT_S if kind == "image" else VIDEO_TIME_LIMIT_S
    child_params = {
        "max_pixels": MAX_PIXELS,
        "image_box": BOX,
        "video_box": BOX,
        "max_hashes": MAX_HASHES,
        "max_candidates": MAX_CANDIDATES,
        "max_offset_s": MAX_OFFSET_S,
        "max_frames_decoded": MAX_FRAMES_DECODED,
        "keyframes": KEYFRAMES,
        "keyframe_apart": DEFAULT_MAX_DISTANCE,
        "keyframe_max_side": KEYFRAME_MAX_SIDE,
        "sheet_tiles": SHEET_TILES,
        "sheet_cell": SHEET_CELL,
        "jpeg_quality": JPEG_QUALITY,
        "threads": THREADS,
    }
    # Absolute: FFmpeg reads a relative name with a colon (``case:12/clip.mp4``) as a protocol.
    args = [
        kind,
        str(path.absolute()),
        str(work.absolute()),
        str(MEMORY_LIMIT_BYTES),
        str(seconds),
        json.dumps(child_params),
    ]
    # Few malloc arenas: each decoder thread would otherwise reserve 64 MiB of address space.
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    nothing = "nothing was hashed"
    preload = IMAGE_PRELOAD if kind == "image" else VIDEO_PRELOAD
    done, stopped = run_script(
        _CHILD, args, preload=preload, seconds=seconds, reader="perceptual hasher", nothing=nothing, env=env
    )
    if done is None:
        return None, stopped
    raw = report(done.stdout)
    if raw is None:
        if done.returncode == 0 or not done.stdout:
            status = "no report" if not done.stdout else "a report that is not JSON"
            return None, [f"the perceptual hasher gave {status} (exit status {done.returncode}); nothing was hashed"]
        return None, [f"the perceptual hasher failed (exit status {done.returncode}); nothing was hashed"]
    error = raw.get("error")
    message = _clean(raw.get("message"))
    if error == "memory":
        limit = MEMORY_LIMIT_BYTES // (1024 * 1024)
        return raw, [
            f"the perceptual hasher ran out of its memory limit ({limit} MiB) on this file; nothing was hashed"
        ]
    if error == "unavailable":
        return raw, [f"the perceptual hasher's libraries could not be loaded, so nothing was hashed: {message}"]
    if error == "refused":
        return raw, [f"not hashed: {message}"]
    if error is not None:
        what = "video" if kind == "video" else "an image"
        return raw, [f"this file could not be decoded as {what}, so nothing was hashed: {message}"]
    return raw, []
