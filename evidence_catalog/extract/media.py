"""Container and stream metadata of audio and video files, read with PyAV (FFmpeg).

FFmpeg parses the file in a child process (:mod:`evidence_catalog.extract.media_probe`) under a
wall-time limit (:data:`TIME_LIMIT_S`) and an address-space limit (:data:`MEMORY_LIMIT_BYTES`):
a hostile file that makes FFmpeg crash, loop or allocate without end ends that process, never
this one, and the artifact is catalogued all the same with the reason in its ``errors``.  No
frame is decoded; FFmpeg reads at most the first few megabytes to find the streams' parameters.

What the child reports is checked here, not trusted: every value is built into the model (which
refuses what is impossible), every tag is kept as text exactly as read, and the tags people ask
about are pulled out and typed -- ``creation_time`` as a UTC time, the ISO 6709 location a
phone or camera writes as a position -- with anything malformed kept as text and named in
``errors``, never guessed at.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path
from typing import Any

from evidence_catalog.errors import EvidenceError
from evidence_catalog.extract.sandbox import clean as _clean
from evidence_catalog.extract.sandbox import report, run_script
from evidence_catalog.model import Agent, AgentKind, GeoPosition, MediaInfo, MediaLocation, MediaStream, StreamKind

#: Wall time one file may take to be read (a normal file takes a tenth of a second).
TIME_LIMIT_S = 30
#: Address space the reading process may use (FFmpeg's libraries alone map some 120 MiB).
MEMORY_LIMIT_BYTES = 1024 * 1024 * 1024
_PROBE = Path(__file__).with_name("media_probe.py")
#: What the reader's fork server imports once (:func:`~evidence_catalog.extract.sandbox.run_script`).
PRELOAD = ("av",)

#: Tags that hold an ISO 6709 position, most specific first (``©xyz`` is QuickTime's, which
#: FFmpeg calls ``location``; Apple's own key names the standard).
LOCATION_TAGS = (
    "com.apple.quicktime.location.ISO6709",
    "location",
    "location-eng",
    "©xyz",
    "\\xa9xyz",
)
#: ISO 6709 (Annex H text): latitude, longitude, optional altitude, optional CRS, then ``/``.
_ISO6709 = re.compile(
    r"^(?P<lat>[+-]\d{2}(?:\d{2}(?:\d{2})?)?(?:\.\d+)?)"
    r"(?P<lon>[+-]\d{3}(?:\d{2}(?:\d{2})?)?(?:\.\d+)?)"
    r"(?P<alt>[+-]\d+(?:\.\d+)?)?"
    r"(?:CRS(?P<crs>[A-Za-z0-9_:.-]+))?/?$",
    re.ASCII,  # the digits 0-9 only: Python's int() would read Arabic-Indic or full-width ones too
)
_WGS84 = frozenset({"WGS_84", "WGS84", "EPSG:4326", "EPSG:4979"})
#: QuickTime counts from 1904: a zero there is a clock never set, not a time.
_UNSET_TIMES = frozenset({dt.datetime(1904, 1, 1, tzinfo=dt.UTC)})
_KINDS = {kind.value for kind in StreamKind}


def read_media(path: Path) -> tuple[MediaInfo | None, tuple[str, ...], Agent]:
    """Read the container and stream metadata of the audio or video file at *path*.

    Returns what was read (``None`` when nothing could be), the problems met, and the reader
    as an agent (PyAV, with the FFmpeg it carries)."""
    raw, errors = _run_probe(path)
    agent = _agent(raw)
    if raw is None or "error" in raw:
        return None, tuple(errors), agent
    errors.extend(str(note) for note in raw.get("notes", ()) if isinstance(note, str))
    try:
        info = _media_info(raw, errors)
    except (EvidenceError, TypeError, ValueError, KeyError, AttributeError) as exc:
        errors.append(f"the media reader's report could not be used: {exc}")
        return None, tuple(errors), agent
    if not info.streams:
        errors.append("FFmpeg found no stream in this container (cut short, or empty)")
    return info, tuple(errors), agent


def _agent(raw: dict[str, Any] | None) -> Agent:
    from evidence_catalog.versions import package_version

    pyav = raw.get("pyav") if raw is not None else None
    if not isinstance(pyav, str):
        pyav = package_version("av")
    ffmpeg = raw.get("ffmpeg") if raw is not None else None
    text = f"{pyav} (FFmpeg {ffmpeg})" if pyav and isinstance(ffmpeg, str) and ffmpeg.strip() else pyav
    return Agent(name="PyAV", kind=AgentKind.SOFTWARE, version=text or None)


#: How the errors of :func:`_run_probe` begin that say the reader stopped for a reason of the
#: machine that ran it -- a time, CPU or memory limit, a crash, a reader that could not be
#: started or loaded -- rather than what the file holds: the same bytes may read in full on
#: another machine, or with another PyAV.  Such a description claims nothing of the file.
_STOPPED_BY_THE_MACHINE = (
    "the media reader did not finish within ",
    "the media reader could not be started",
    "the media reader used up its CPU time limit",
    "the media reader was killed",
    "the media reader crashed",
    "the media reader gave ",
    "the media reader failed ",
    "the media reader ran out of its memory limit",
    "PyAV could not be loaded",
)


def stopped_by_the_machine(errors: tuple[str, ...]) -> str | None:
    """The first of *errors* that says the media reader stopped for a reason of the machine
    that ran it (see ``_STOPPED_BY_THE_MACHINE``), or ``None``."""
    return next((error for error in errors if error.startswith(_STOPPED_BY_THE_MACHINE)), None)


def _run_probe(path: Path) -> tuple[dict[str, Any] | None, list[str]]:
    # Absolute: FFmpeg reads a relative name with a colon (``case:12/clip.mp4``) as a protocol.
    args = [str(path.absolute()), str(MEMORY_LIMIT_BYTES), str(TIME_LIMIT_S)]
    done, stopped = run_script(
        _PROBE, args, preload=PRELOAD, seconds=TIME_LIMIT_S, reader="media reader", nothing="nothing was read"
    )
    if done is None:
        return None, stopped
    output = done.stdout  # bounded by the child: its tags are capped (media_probe.MAX_TAGS_TOTAL_CHARS)
    raw = report(output)
    if raw is None:
        if done.returncode == 0 or not output:
            status = "no report" if not output else "a report that is not JSON"
            return None, [f"the media reader gave {status} (exit status {done.returncode}); nothing was read"]
        return None, [f"the media reader failed (exit status {done.returncode}); nothing was read"]
    error = raw.get("error")
    if error == "memory":
        limit = MEMORY_LIMIT_BYTES // (1024 * 1024)
        return raw, [f"the media reader ran out of its memory limit ({limit} MiB) on this file; nothing was read"]
    if error == "unavailable":
        return raw, [f"PyAV could not be loaded, so nothing was read: {_clean(raw.get('message'))}"]
    if error is not None:
        return raw, [f"FFmpeg could not read this file as audio or video: {_clean(raw.get('message'))}"]
    return raw, []


def _int(value: Any) -> int | None:
    """A positive integer, else ``None`` (FFmpeg says 0 or a negative number for "unknown")."""
    return value if type(value) is int and value > 0 else None


def _seconds(value: Any) -> float | None:
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = _clean(value)
    return value if value.strip() else None


def _tag_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {_clean(k): _clean(v) for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def _media_info(raw: dict[str, Any], errors: list[str]) -> MediaInfo:
    tags = _tag_map(raw.get("tags"))
    duration = raw.get("duration")
    return MediaInfo(
        format=_clean(raw["format"]),
        format_name=_text(raw.get("format_name")),
        duration_s=None if type(duration) is not int or duration < 0 else duration / 1_000_000,
        bit_rate=_int(raw.get("bit_rate")),
        streams=tuple(_stream(item, errors) for item in raw.get("streams", ()) if isinstance(item, dict)),
        tags=tags,
        created_at=creation_time(tags, errors),
        location=location(tags, errors),
    )


def _stream(item: dict[str, Any], errors: list[str]) -> MediaStream:
    kind = item.get("type")
    index = item["index"]
    tags = _tag_map(item.get("tags"))
    return MediaStream(
        index=index,
        kind=kind if kind in _KINDS else StreamKind.UNKNOWN,
        codec=_text(item.get("codec")),
        profile=_text(item.get("profile")),
        width=_int(item.get("width")),
        height=_int(item.get("height")),
        frame_rate=_seconds(item.get("frame_rate")) or None,
        rotation=_rotation(index, item.get("matrix"), tags, errors) if kind == "video" else None,
        bit_rate=_int(item.get("bit_rate")),
        sample_rate=_int(item.get("sample_rate")),
        channels=_int(item.get("channels")),
        duration_s=_seconds(item.get("duration")),
        frames=_int(item.get("frames")),
        tags=tags,
    )


def _rotation(index: int, matrix: Any, tags: dict[str, str], errors: list[str]) -> int | None:
    """Degrees clockwise to turn the decoded picture for display, from the track's display
    matrix (MP4, MOV) or else the stream's ``rotate`` tag; a matrix that is no quarter turn (a
    mirror, a skew, a scale) gives ``None`` and an error naming it."""
    if isinstance(matrix, list) and len(matrix) == 9 and all(type(v) is int for v in matrix):
        a, b, c, d = matrix[0], matrix[1], matrix[3], matrix[4]
        one = 1 << 16
        turns = {(one, 0, 0, one): 0, (0, one, -one, 0): 90, (-one, 0, 0, -one): 180, (0, -one, one, 0): 270}
        found = turns.get((a, b, c, d))
        if found is None:
            errors.append(
                f"stream {index}: its display matrix {matrix} is not a quarter turn (mirrored or scaled);"
                " the rotation is left unknown"
            )
        return found
    text = tags.get("rotate")
    if text is None:
        return None
    if re.fullmatch(r"-?[0-9]{1,4}", text.strip()) and int(text) % 90 == 0:
        return int(text) % 360
    errors.append(f"stream {index}: its rotate tag {text!r} is not a multiple of 90 degrees; left unknown")
    return None


def creation_time(tags: dict[str, str], errors: list[str]) -> dt.datetime | None:
    """The container's ``creation_time`` tag as a UTC time: ``None`` when there is none or it
    is QuickTime's zero (1904-01-01), and with an error when it is not a time with a zone."""
    text = tags.get("creation_time")
    if text is None or not text.strip():
        return None
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        errors.append(f"creation_time {text!r} is not an ISO 8601 date and time; it is kept only as a tag")
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        errors.append(f"creation_time {text!r} states no time zone; it is kept only as a tag")
        return None
    try:
        moment = moment.astimezone(dt.UTC)
    except OverflowError:
        errors.append(f"creation_time {text!r} is outside the times UTC can represent; it is kept only as a tag")
        return None
    return None if moment in _UNSET_TIMES else moment


def location(tags: dict[str, str], errors: list[str]) -> MediaLocation | None:
    """The position the first location tag of :data:`LOCATION_TAGS` states, with its text as
    written; other location tags that say something else are named in *errors*."""
    present = [(name, tags[name]) for name in LOCATION_TAGS if name in tags]
    if not present:
        return None
    name, text = present[0]
    for other, other_text in present[1:]:
        if other_text.strip() != text.strip():
            errors.append(f"location tags disagree: {name} says {text!r}, {other} says {other_text!r}")
    position, problem = parse_iso6709(text)
    if problem is not None:
        errors.append(f"location {name} {text!r} is not read as a position: {problem}")
    return MediaLocation(tag=name, text=text, position=position)


def parse_iso6709(text: str) -> tuple[GeoPosition | None, str | None]:
    """The WGS 84 position ISO 6709 *text* states (``+48.8577+002.2950+035.000/``: degrees,
    degrees and minutes, or degrees, minutes and seconds), or ``None`` with the reason."""
    match = _ISO6709.match(text.strip())
    if match is None:
        return None, "not ISO 6709 text (±latitude±longitude[±altitude]/)"
    crs = match.group("crs")
    if crs is not None and crs.upper() not in _WGS84:
        return None, f"its coordinate reference system {crs} is not WGS 84"
    try:
        latitude = _angle(match.group("lat"), 2)
        longitude = _angle(match.group("lon"), 3)
    except ValueError as exc:
        return None, str(exc)
    altitude = float(match.group("alt")) if match.group("alt") else None
    try:
        return GeoPosition(latitude=latitude, longitude=longitude, altitude_m=altitude), None
    except EvidenceError as exc:
        return None, str(exc)


def _angle(text: str, degree_digits: int) -> float:
    sign = -1.0 if text[0] == "-" else 1.0
    whole, _, fraction = text[1:].partition(".")
    part = float("0." + fraction) if fraction else 0.0
    degrees = int(whole[:degree_digits])
    rest = whole[degree_digits:]
    if not rest:
        return sign * (degrees + part)
    minutes = int(rest[:2])
    if len(rest) == 2:
        if minutes >= 60:
            raise ValueError(f"{text} has {minutes} minutes")
        return sign * (degrees + (minutes + part) / 60)
    seconds = int(rest[2:4])
    if minutes >= 60 or seconds >= 60:
        raise ValueError(f"{text} has {minutes} minutes and {seconds} seconds")
    return sign * (degrees + minutes / 60 + (seconds + part) / 3600)
