"""The child side of the perceptual hasher: run as a script in its own interpreter
(``python -I perceptual_child.py image|video FILE WORK MEMORY_BYTES SECONDS``), it lowers its own
limits, decodes *FILE* (Pillow for an image, PyAV for a video), computes PDQ hashes with
``pdqhash``, writes a video's keyframes and contact sheet as JPEG files into the folder *WORK*,
and writes one JSON object to standard output.

It imports only the standard library, numpy, Pillow, pdqhash and ``av`` (never
:mod:`evidence_catalog`): whatever a decoder does with a hostile file -- a crash, a hang, an
allocation past the limit -- ends this process, and the parent
(:mod:`evidence_catalog.extract.perceptual`) records what happened.  The parent checks every
value reported here; the constants that shape the values are the parent's, passed on the
command line as JSON so that the two cannot disagree.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import warnings
from typing import Any

#: The demuxers FFmpeg may use (as :mod:`media_probe`): containers of video only, never a
#: playlist, a concatenation list or an image sequence that would open other files or URLs.
FORMATS = (
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,flv,mpegts,mpeg,mpegvideo,ogg,asf,ivf,h264,hevc,m4v,dv,rm,nut,mxf,gxf"
)
#: The largest file a JPEG written here may be (bytes).
_MAX_WRITTEN = 64 * 1024 * 1024


class RefusedError(Exception):
    """The file is refused before or during decoding, for a reason stated to the user."""


def _limit(memory: int, seconds: int) -> None:
    signal.alarm(seconds + 1)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (_MAX_WRITTEN, _MAX_WRITTEN))


def _pdq(pixels: Any) -> tuple[str, int]:
    """PDQ of an RGB ``uint8`` array: 64 hex digits in Meta's order (bit 255 first), quality."""
    import numpy as np
    import pdqhash  # type: ignore[import-untyped]

    bits, quality = pdqhash.compute(np.ascontiguousarray(pixels, dtype=np.uint8))
    # pdqhash gives bit 255 first (its hash_to_vector reverses bits 0..255), which is the order
    # of Meta's hex: words 15..0, each written high bit first.
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex(), int(quality)


# ---------------------------------------------------------------------------------------------
# Images


def hash_image(path: str, params: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """Decode the image at *path* as ThreatExchange's Python reference does (Pillow, reduced to
    fit 512 x 512 with ``Image.thumbnail``, converted to RGB), EXIF orientation applied, and
    hash it."""
    import numpy as np
    from PIL import Image, ImageOps

    max_pixels = int(params["max_pixels"])
    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    Image.init()
    # Every format Pillow reads but EPS, which it renders by running Ghostscript on the file.
    formats = [name for name in Image.OPEN if name != "EPS"]
    with Image.open(path, formats=formats) as image:  # reads the header only
        width, height = image.size
        if width < 1 or height < 1:
            raise RefusedError(f"the image states a size of {width} x {height} pixels")
        if width * height > max_pixels:
            raise RefusedError(
                f"the image states {width} x {height} pixels, over the {max_pixels:,} this hasher decodes;"
                " it was not decoded"
            )
        if getattr(image, "is_animated", False):
            notes.append("the image is animated: its first frame is hashed")
        box = int(params["image_box"])
        image.thumbnail((box, box))  # decodes (a JPEG at a reduced DCT scale where it can)
        rgb = ImageOps.exif_transpose(image).convert("RGB")
        value, quality = _pdq(np.asarray(rgb))
    return {"hashes": [{"value": value, "quality": quality}]}


# ---------------------------------------------------------------------------------------------
# Videos


def _fit(width: int, height: int, box: int) -> tuple[int, int]:
    """*width* x *height* reduced (never enlarged) to fit a *box* x *box* square, the ratio kept."""
    scale = min(1.0, box / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _turns(rotation: Any, notes: list[str], said: list[bool]) -> int:
    """Quarter turns counterclockwise (``numpy.rot90``'s *k*) to show a frame as displayed,
    from FFmpeg's display-matrix rotation (degrees counterclockwise)."""
    if rotation is None:
        return 0
    degrees = round(float(rotation))
    if degrees % 90 != 0 or abs(float(rotation) - degrees) > 1e-6:
        if not said[0]:
            notes.append(
                f"the video's display matrix turns it {rotation} degrees, not a quarter turn;"
                " frames are hashed unturned"
            )
            said[0] = True
        return 0
    return (degrees // 90) % 4


class _Sampler:
    """One frame per interval of video time, the interval doubling whenever more than
    ``max_hashes`` frames are kept (the kept ones then thinned to the first of each new
    interval, which is what sampling at that interval from the start gives); and among the
    kept, candidate frames for keyframes and the contact sheet, thinned the same way to stay
    between ``max_candidates / 2`` and ``max_candidates``."""

    def __init__(self, max_hashes: int, max_candidates: int) -> None:
        self.interval = 1
        self.candidate_interval = 1
        self.max_hashes = max_hashes
        self.max_candidates = max_candidates
        self.hashes: list[dict[str, Any]] = []  # each with "slot": whole seconds, a multiple of interval
        self.candidates: list[tuple[int, float, Any, str, int]] = []  # slot, offset, picture, hash, quality
        self.last_slot = -1

    def wants(self, offset: float) -> int | None:
        slot = int(offset // self.interval) * self.interval
        return slot if slot > self.last_slot else None

    def keep(self, slot: int, offset: float, value: str, quality: int, picture: Any | None) -> None:
        self.last_slot = slot
        self.hashes.append({"slot": slot, "offset_s": round(offset, 3), "value": value, "quality": quality})
        if picture is not None:
            self.candidates.append((slot, offset, picture, value, quality))
        while len(self.hashes) > self.max_hashes:
            self.interval *= 2
            self.hashes = _first_per(self.hashes, self.interval, lambda h: h["slot"])
            self.last_slot = self.hashes[-1]["slot"] if self.hashes else -1
            self.last_slot = (self.last_slot // self.interval) * self.interval
        self.candidate_interval = max(self.candidate_interval, self.interval)
        self.candidates = _first_per(self.candidates, self.candidate_interval, lambda c: c[0])
        while len(self.candidates) > self.max_candidates:
            self.candidate_interval *= 2
            self.candidates = _first_per(self.candidates, self.candidate_interval, lambda c: c[0])

    def is_candidate_slot(self, slot: int) -> bool:
        first = (slot // self.candidate_interval) * self.candidate_interval
        return not self.candidates or self.candidates[-1][0] < first


def _first_per(items: list[Any], interval: int, slot_of: Any) -> list[Any]:
    kept: list[Any] = []
    last = -1
    for item in items:
        slot = slot_of(item) // interval
        if slot != last:
            kept.append(item)
            last = slot
    return kept


def hash_video(path: str, work: str, params: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """Decode the first video stream of *path*, hash one frame per second (see the parent's
    docstring), and write keyframes and a contact sheet into *work*."""
    import av
    import numpy as np

    av.logging.set_level(None)
    max_pixels = int(params["max_pixels"])
    box = int(params["video_box"])
    keyframe_side = int(params["keyframe_max_side"])
    max_offset = float(params["max_offset_s"])
    max_decoded = int(params["max_frames_decoded"])
    options = {"format_whitelist": FORMATS, "protocol_whitelist": "file"}
    sampler = _Sampler(int(params["max_hashes"]), int(params["max_candidates"]))
    said = [False]
    with av.open(path, options=options) as container:
        streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        if not streams:
            raise RefusedError("the file has no video stream")
        stream = streams[0]
        context = stream.codec_context
        width, height = context.width or 0, context.height or 0
        if width * height > max_pixels:
            raise RefusedError(
                f"the video states frames of {width} x {height} pixels, over the {max_pixels:,} this hasher"
                " decodes; it was not decoded"
            )
        context.thread_type = "AUTO"
        context.thread_count = int(params["threads"])
        if stream.time_base is None:
            raise RefusedError("the video stream states no time base")
        start = stream.start_time or 0
        decoded = 0
        no_time = 0
        stop_note = None
        last = 0.0
        try:
            for frame in container.decode(stream):
                decoded += 1
                if decoded > max_decoded:
                    stop_note = f"decoding stopped after {max_decoded:,} frames; frames after that are not hashed"
                    break
                if frame.width * frame.height > max_pixels:
                    size = f"{frame.width} x {frame.height}"
                    raise RefusedError(f"a frame of {size} pixels is over the {max_pixels:,} this hasher decodes")
                if frame.pts is None:
                    no_time += 1
                    continue
                offset = float((frame.pts - start) * stream.time_base)
                last = max(last, offset) if offset == offset else last
                if not offset >= 0.0:  # before the stream's start (or not a number): not on the time line
                    continue
                if offset > max_offset:
                    stop_note = f"frames past {max_offset:,.0f} s of video are not hashed"
                    break
                slot = sampler.wants(offset)
                if slot is None:
                    continue
                turns = _turns(frame.rotation, notes, said)
                w, h = _fit(frame.width, frame.height, box)
                value, quality = _pdq(
                    np.rot90(frame.reformat(w, h, format="rgb24", interpolation="AREA").to_ndarray(), turns)
                )
                picture = None
                if sampler.is_candidate_slot(slot):
                    w, h = _fit(frame.width, frame.height, keyframe_side)
                    shown = frame.reformat(w, h, format="rgb24", interpolation="AREA").to_ndarray()
                    picture = np.ascontiguousarray(np.rot90(shown, turns))
                sampler.keep(slot, offset, value, quality, picture)
        except av.FFmpegError as exc:  # damaged data past the start: the frames before it stay hashed
            if not sampler.hashes:
                raise
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            stop_note = (
                f"decoding stopped after {last:.3f} s on data FFmpeg could not read ({reason}); the rest is not hashed"
            )
        if no_time:
            notes.append(f"{no_time} decoded frames had no time stamp and were not hashed")
        if stop_note is not None:
            notes.append(stop_note)
    if not sampler.hashes:
        raise RefusedError("no frame could be decoded from the video stream")
    keyframes, sheet = _pictures(sampler, work, params)
    for item in sampler.hashes:
        del item["slot"]
    return {
        "hashes": sampler.hashes,
        "interval_s": sampler.interval,
        "keyframes": keyframes,
        "contact_sheet": sheet,
        "frames_decoded": decoded,
    }


def _distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def choose_keyframes(candidates: list[tuple[float, str, int]], count: int, apart: int) -> list[int]:
    """Indices (in time order) of up to *count* of *candidates* ``(offset, hash, quality)``:
    the first usable one, then again and again the one farthest (in PDQ bits) from all chosen
    so far, the earliest on a tie, while it is more than *apart* bits from each -- so a still
    shot gives one keyframe and a film of many scenes one per scene, up to *count*."""
    usable = [i for i, (_, _, quality) in enumerate(candidates) if quality >= 50] or list(range(len(candidates)))
    if not usable:
        return []
    chosen = [usable[0]]
    while len(chosen) < count:
        best, best_far = None, apart
        for i in usable:
            if i in chosen:
                continue
            far = min(_distance(candidates[i][1], candidates[j][1]) for j in chosen)
            if far > best_far:
                best, best_far = i, far
        if best is None:
            break
        chosen.append(best)
    return sorted(chosen)


def _pictures(sampler: _Sampler, work: str, params: dict[str, Any]) -> tuple[list[list[Any]], str | None]:
    from PIL import Image, ImageDraw, ImageFont

    quality = int(params["jpeg_quality"])
    candidates = sampler.candidates
    chosen = choose_keyframes(
        [(offset, value, quality) for _, offset, _, value, quality in candidates],
        int(params["keyframes"]),
        int(params["keyframe_apart"]),
    )
    keyframes: list[list[Any]] = []
    for number, index in enumerate(chosen):
        _, offset, picture, _, _ = candidates[index]
        name = f"keyframe-{number:02d}.jpg"
        _save(Image.fromarray(picture), os.path.join(work, name), quality)
        keyframes.append([round(offset, 3), name])
    tiles = int(params["sheet_tiles"])
    if len(candidates) > tiles:
        picked = [candidates[round(j * (len(candidates) - 1) / (tiles - 1))] for j in range(tiles)]
    else:
        picked = list(candidates)
    if not picked:
        return keyframes, None
    cell = int(params["sheet_cell"])
    first = picked[0][2]
    cell_w, cell_h = (cell, cell * 9 // 16) if first.shape[1] >= first.shape[0] else (cell * 9 // 16, cell)
    columns = min(4, len(picked))
    rows = (len(picked) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), (0, 0, 0))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for n, (_, offset, picture, _, _) in enumerate(picked):
        tile = Image.fromarray(picture)
        tile.thumbnail((cell_w - 2, cell_h - 2), Image.Resampling.BICUBIC)
        x = (n % columns) * cell_w + (cell_w - tile.width) // 2
        y = (n // columns) * cell_h + (cell_h - tile.height) // 2
        sheet.paste(tile, (x, y))
        seconds = int(offset)
        label = f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        left, top = x + 3, y + 3
        bounds = draw.textbbox((left, top), label, font=font)
        draw.rectangle((bounds[0] - 2, bounds[1] - 2, bounds[2] + 2, bounds[3] + 2), fill=(0, 0, 0))
        draw.text((left, top), label, fill=(255, 255, 255), font=font)
    name = "contact-sheet.jpg"
    _save(sheet, os.path.join(work, name), quality)
    return keyframes, name


def _save(image: Any, target: str, quality: int) -> None:
    """A JPEG with fixed settings and nothing but the picture: no EXIF, no comment, no time."""
    image.save(target, format="JPEG", quality=quality, subsampling="4:2:0", optimize=False, progressive=False)


# ---------------------------------------------------------------------------------------------


def _versions(kind: str) -> dict[str, str]:
    found: dict[str, str] = {}
    try:
        import numpy

        found["numpy"] = numpy.__version__
        import PIL

        found["Pillow"] = PIL.__version__
        import pdqhash

        found["pdqhash"] = pdqhash.__version__
        if kind == "video":
            import av

            found["PyAV"] = av.__version__
            found["FFmpeg"] = str(av.ffmpeg_version_info)
    except Exception:  # noqa: BLE001 -- reported as "unavailable" by the work itself
        pass
    return found


def main() -> None:
    """Hash the file named; write the result, or ``"error": kind, "message": ...``."""
    kind, path, work, memory, seconds, params_text = sys.argv[1:7]
    _limit(int(memory), int(seconds))
    params = json.loads(params_text)
    notes: list[str] = []
    result: dict[str, Any] = {"versions": _versions(kind)}
    try:
        try:
            import numpy  # noqa: F401
            import pdqhash  # noqa: F401
            from PIL import Image  # noqa: F401

            if kind == "video":
                import av  # noqa: F401
        except Exception as exc:  # noqa: BLE001 -- not installed, or its libraries cannot be loaded
            result.update(error="unavailable", message=f"{type(exc).__name__}: {exc}")
        else:
            if kind == "image":
                result.update(hash_image(path, params, notes))
            else:
                result.update(hash_video(path, work, params, notes))
    except RefusedError as exc:
        result.update(error="refused", message=str(exc))
    except Warning as exc:  # Pillow's DecompressionBombWarning, made an error above
        result.update(error="refused", message=f"{type(exc).__name__}: {exc}")
    except MemoryError:
        result.update(error="memory", message="out of memory")
    except Exception as exc:  # noqa: BLE001 -- the decoders' errors, whatever the file makes them raise
        reason = getattr(exc, "strerror", None) or str(exc)
        reason = reason.replace(path, "<file>").replace(work, "<work>")
        error = "memory" if getattr(exc, "errno", None) == 12 else "unreadable"  # ENOMEM
        if type(exc).__name__ == "DecompressionBombError":  # Pillow: over twice its MAX_IMAGE_PIXELS
            error = "refused"
        result.update(error=error, message=f"{type(exc).__name__}: {reason}")
    result["notes"] = notes
    sys.stdout.write(json.dumps(result, ensure_ascii=True))


if __name__ == "__main__":
    main()
