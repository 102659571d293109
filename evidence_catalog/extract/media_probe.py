"""The child side of the media reader: run as a script in its own interpreter
(``python -I media_probe.py FILE MEMORY_BYTES SECONDS``), it lowers its own limits, opens *FILE*
with PyAV, reads the container's and streams' headers -- no frame is decoded -- and writes one
JSON object to standard output.

It imports only the standard library and ``av`` (never :mod:`evidence_catalog`): it must start
fast and run whatever the parent's path.  Whatever FFmpeg does with a hostile file happens here:
a crash, a hang or an allocation past the limit ends this process, and the parent
(:mod:`evidence_catalog.extract.media`) records what happened.
"""

from __future__ import annotations

import json
import resource
import signal
import struct
import sys
from typing import Any

#: The demuxers FFmpeg may use: containers of audio and video only.  Playlists, concatenation
#: lists and image sequences (hls, dash, concat, image2 ...) would open other files or URLs.
FORMATS = (
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,flv,mpegts,mpeg,mpegvideo,ogg,mp3,wav,w64,flac,aac,"
    "asf,aiff,amr,caf,wv,ape,tta,au,ivf,h264,hevc,m4v,dv,rm,nut,mxf,gxf,3gp,mp4"
)
#: The most tags kept per container or stream, the longest value kept, the most characters of
#: tags kept in all (what the report, and the custody event that holds it, may weigh), the most
#: streams described.
MAX_TAGS = 1000
MAX_TAG_CHARS = 65536
MAX_TAGS_TOTAL_CHARS = 8 * 1024 * 1024
MAX_STREAMS = 256
_budget = [MAX_TAGS_TOTAL_CHARS]
#: How much of the file FFmpeg reads to find the streams' parameters (its defaults, stated).
PROBE_BYTES = 5_000_000
ANALYZE_MICROSECONDS = 5_000_000
_MOV_CONTAINERS = frozenset({b"moov", b"trak"})


def _limit(memory: int, seconds: int) -> None:
    """Limit this process: its address space, its CPU time, no core dump, no file written, and
    an alarm that ends it a second after the parent would have (should the parent itself be
    gone, a reader waiting on a file still ends)."""
    signal.alarm(seconds + 1)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def _tags(metadata: Any, where: str, notes: list[str]) -> dict[str, str]:
    items = list(metadata.items())
    if len(items) > MAX_TAGS:
        notes.append(f"{where} has {len(items)} tags; the first {MAX_TAGS} are kept")
    kept: dict[str, str] = {}
    for name, value in items[:MAX_TAGS]:
        text = str(value)
        if len(text) > MAX_TAG_CHARS:
            notes.append(f"{where} tag {name!r} is {len(text)} characters long; the first {MAX_TAG_CHARS} are kept")
            text = text[:MAX_TAG_CHARS]
        size = len(str(name)) + len(text)
        if size > _budget[0]:
            notes.append(
                f"{where} tag {name!r} and those after it are left out:"
                f" the file's tags exceed {MAX_TAGS_TOTAL_CHARS} characters"
            )
            break
        _budget[0] -= size
        kept[str(name)] = text
    return kept


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return number if number == number and number not in (float("inf"), float("-inf")) else None


def _track_matrices(path: str) -> dict[int, list[int]]:
    """Track id -> the display matrix of its ``tkhd`` box, for an ISO base media (MP4, MOV)
    file: PyAV does not expose the matrix FFmpeg reads from there."""
    found: dict[int, list[int]] = {}
    with open(path, "rb") as stream:
        stream.seek(0, 2)
        end = stream.tell()
        pending = [(0, end)]
        boxes = 0
        while pending and boxes < 100_000:
            start, stop = pending.pop()
            position = start
            while position + 8 <= stop and boxes < 100_000:
                boxes += 1
                stream.seek(position)
                header = stream.read(16)
                if len(header) < 8:
                    break
                size, kind = struct.unpack(">I4s", header[:8])
                body = position + 8
                if size == 1 and len(header) == 16:
                    size, body = struct.unpack(">Q", header[8:16])[0], position + 16
                elif size == 0:
                    size = stop - position
                if size < body - position or position + size > stop:
                    break
                if kind in _MOV_CONTAINERS:
                    pending.append((body, position + size))
                elif kind == b"tkhd":
                    stream.seek(body)
                    data = stream.read(min(size - 8, 128))
                    version = data[0] if data else 0
                    track_at = 12 if version == 0 else 20  # after the creation and modification times
                    matrix_at = track_at + 4 + 4 + (4 if version == 0 else 8) + 8 + 2 + 2 + 2 + 2
                    if len(data) >= matrix_at + 36:
                        track = struct.unpack(">I", data[track_at : track_at + 4])[0]
                        found[track] = list(struct.unpack(">9i", data[matrix_at : matrix_at + 36]))
                position += size
    return found


def probe(path: str) -> dict[str, Any]:
    """What PyAV reads of *path*'s container and streams, as JSON-ready data."""
    import av

    notes: list[str] = []
    av.logging.set_level(None)
    result: dict[str, Any] = {}
    options = {
        "format_whitelist": FORMATS,
        "protocol_whitelist": "file",
        "probesize": str(PROBE_BYTES),
        "analyzeduration": str(ANALYZE_MICROSECONDS),
    }
    with av.open(path, options=options, metadata_errors="backslashreplace") as container:
        streams = list(container.streams)
        if len(streams) > MAX_STREAMS:
            notes.append(f"the container has {len(streams)} streams; the first {MAX_STREAMS} are described")
        matrices: dict[int, list[int]] = {}
        if container.format.name.startswith("mov,"):
            try:
                matrices = _track_matrices(path)
            except (OSError, struct.error) as exc:
                notes.append(f"track headers could not be read for the display matrix: {exc}")
        result["format"] = container.format.name
        result["format_name"] = container.format.long_name
        result["duration"] = container.duration  # in microseconds (AV_TIME_BASE)
        result["bit_rate"] = container.bit_rate
        result["tags"] = _tags(container.metadata, "the container", notes)
        described = []
        for stream in streams[:MAX_STREAMS]:
            try:
                described.append(_stream(stream, matrices, notes))
            except Exception as exc:  # noqa: BLE001 -- one unreadable stream leaves the others
                notes.append(f"stream {stream.index} could not be described: {type(exc).__name__}: {exc}")
        result["streams"] = described
    result["notes"] = notes
    return result


def _stream(stream: Any, matrices: dict[int, list[int]], notes: list[str]) -> dict[str, Any]:
    """One stream's description; a stream FFmpeg found no decoder parameters for (a cut file)
    has no codec context, and is described by what the container says of it."""
    context = stream.codec_context
    duration = stream.duration
    item: dict[str, Any] = {
        "index": stream.index,
        "id": stream.id,
        "type": stream.type,
        "codec": getattr(context, "name", None),
        "profile": getattr(context, "profile", None),
        "bit_rate": getattr(context, "bit_rate", None),
        "frames": stream.frames,
        "duration": _number(duration * stream.time_base) if duration is not None and stream.time_base else None,
        "tags": _tags(stream.metadata, f"stream {stream.index}", notes),
        "matrix": matrices.get(stream.id),
    }
    if context is not None and stream.type == "video":
        item["width"] = context.width
        item["height"] = context.height
        item["frame_rate"] = _number(stream.average_rate) if stream.average_rate else None
    elif context is not None and stream.type == "audio":
        item["sample_rate"] = context.sample_rate
        item["channels"] = context.channels
    return item


def main() -> None:
    """Read the file named first; write the result, or the versions and
    ``"error": kind, "message": ...``."""
    path, memory, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    _limit(memory, seconds)
    result: dict[str, Any] = {}
    try:
        import av
    except Exception as exc:  # noqa: BLE001 -- not installed, or its libraries cannot be loaded
        result.update(error="unavailable", message=f"{type(exc).__name__}: {exc}")
        sys.stdout.write(json.dumps(result, ensure_ascii=True))
        return
    try:
        result.update(pyav=av.__version__, ffmpeg=str(av.ffmpeg_version_info))
        result.update(probe(path))
    except MemoryError:
        result.update(error="memory", message="out of memory")
    except Exception as exc:  # noqa: BLE001 -- FFmpeg's errors, whatever the file makes it raise
        # FFmpeg's errors name the file: its path on this machine is no part of what was read.
        reason = getattr(exc, "strerror", None) or str(exc).replace(path, "<file>")
        kind = "memory" if getattr(exc, "errno", None) == 12 else "unreadable"  # ENOMEM
        result.update(error=kind, message=f"{type(exc).__name__}: {reason}")
    sys.stdout.write(json.dumps(result, ensure_ascii=True))


if __name__ == "__main__":
    main()
