"""EXIF via exifread: every raw tag kept as text, the common fields normalised.

A corrupt or hostile EXIF block never stops an add: whatever exifread raises or warns about is
returned as an error message, and the artifact is catalogued all the same.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import exifread

from evidence_catalog.model import ExifData, GeoPosition
from evidence_catalog.versions import package_version

_EXIF_DATETIME = re.compile(r"^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})$")
_OFFSET = re.compile(r"^[+-]\d{2}:\d{2}$")
_SUBSEC = re.compile(r"^\d{1,9}$")
_UNSET_DATETIME = re.compile(r"^[0:\s-]*$")
_UNSET_OFFSET = re.compile(r"^[\s:]*$")
_EXIF_PROBE = 256 * 1024
_NO_EXIF = re.compile(r"(does not have exif|no exif)", re.IGNORECASE)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(_clean(record.getMessage()))


def _clean(text: object) -> str:
    """Printable, valid-UTF-8 text from whatever a hostile file put in a tag."""
    return str(text).rstrip("\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def read_exif(path: Path) -> tuple[ExifData | None, tuple[str, ...], str]:
    """Read EXIF from the file at *path*.

    Returns the data (``None`` when the file has none), the problems met, and exifread's version.
    """
    collector = _Collect()
    logger = logging.getLogger("exifread")
    saved_propagate = logger.propagate
    logger.addHandler(collector)
    logger.propagate = False
    errors: list[str] = []
    try:
        with open(path, "rb") as stream:
            tags = exifread.process_file(stream, details=True, truncate_tags=False, extract_thumbnail=False)
    except Exception as exc:  # noqa: BLE001 -- a hostile file may make the parser fail any way
        tags = {}
        errors.append(f"EXIF could not be read: {type(exc).__name__}: {_clean(exc)}")
    finally:
        logger.removeHandler(collector)
        logger.propagate = saved_propagate
    # "no EXIF here" is an answer, not a problem with the file
    errors.extend(m for m in collector.messages if not _NO_EXIF.search(m))
    exifread_version = package_version("exifread") or "unknown"
    if not tags:
        if not errors and _has_exif_block(path):
            # exifread gives up silently on many broken blocks: say that one was there
            errors.append("an EXIF block is present but could not be read (corrupt or not EXIF)")
        return None, tuple(errors), exifread_version
    raw = {_clean(name): _clean(value) for name, value in tags.items() if name != "JPEGThumbnail"}
    data = ExifData(
        raw=raw,
        datetime_original=_datetime_original(raw, errors),
        make=_text(raw.get("Image Make")),
        model=_text(raw.get("Image Model")),
        software=_text(raw.get("Image Software")),
        gps=_gps(tags, errors),
    )
    return data, tuple(errors), exifread_version


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _datetime_original(raw: dict[str, str], errors: list[str]) -> str | None:
    # Only DateTimeOriginal is the moment of capture; "Image DateTime" is when the file was last
    # changed (it stays in the raw tags) and must not be presented as the capture time.
    value = (raw.get("EXIF DateTimeOriginal") or "").strip()
    if not value or _UNSET_DATETIME.match(value):
        return None  # cameras write blanks or zeros when their clock was never set
    match = _EXIF_DATETIME.match(value)
    try:
        if not match:
            raise ValueError("not in EXIF's 'YYYY:MM:DD HH:MM:SS' form")
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        moment = dt.datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        errors.append(f"DateTimeOriginal {value!r} is not a date and time: {exc}")
        return None
    text = f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}"  # %Y is not zero-padded below 1000
    subsec = (raw.get("EXIF SubSecTimeOriginal") or "").strip()
    if _SUBSEC.match(subsec):
        text += "." + subsec
    offset = (raw.get("EXIF OffsetTimeOriginal") or "").strip()
    if offset:
        hours_minutes = _OFFSET.match(offset)
        if hours_minutes and int(offset[1:3]) * 60 + int(offset[4:6]) <= 14 * 60 and int(offset[4:6]) < 60:
            text += offset
        elif not _UNSET_OFFSET.match(offset):
            errors.append(f"OffsetTimeOriginal {offset!r} is not a UTC offset; the time is kept without one")
    return text


def _has_exif_block(path: Path) -> bool:
    """Whether the file's structure holds an EXIF block (a TIFF header, a JPEG APP1 'Exif'
    segment, a PNG eXIf chunk or a WebP EXIF chunk), whether or not it can be parsed.  Only
    the structure counts: the word "EXIF" in a comment or a text chunk is not a block."""
    with open(path, "rb") as stream:
        head = stream.read(_EXIF_PROBE)
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return True
    if head[:2] == b"\xff\xd8":
        return _jpeg_has_exif(head)
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return _chunks_have(head, 8, b"eXIf", length_first=True)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _chunks_have(head, 12, b"EXIF", length_first=False)
    return False


def _jpeg_has_exif(head: bytes) -> bool:
    i = 2
    while i + 4 <= len(head) and head[i] == 0xFF:
        marker = head[i + 1]
        if marker in (0xD9, 0xDA):  # end of image, start of the compressed data
            return False
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        length = int.from_bytes(head[i + 2 : i + 4], "big")
        if marker == 0xE1 and head[i + 4 : i + 10] == b"Exif\x00\x00":
            return True
        i += 2 + length
    return False


def _chunks_have(head: bytes, start: int, wanted: bytes, *, length_first: bool) -> bool:
    """PNG chunks are length (big-endian), type, data, CRC; RIFF chunks are id, length
    (little-endian), data padded to an even size."""
    i = start
    while i + 8 <= len(head):
        if length_first:
            length, kind = int.from_bytes(head[i : i + 4], "big"), head[i + 4 : i + 8]
            step = 12 + length
        else:
            kind, length = head[i : i + 4], int.from_bytes(head[i + 4 : i + 8], "little")
            step = 8 + length + (length & 1)
        if kind == wanted:
            return True
        i += step
    return False


def _ratio(value: Any) -> Fraction:
    return Fraction(value.num, value.den) if hasattr(value, "num") else Fraction(value)


def _gps(tags: dict[str, Any], errors: list[str]) -> GeoPosition | None:
    lat, lat_ref = tags.get("GPS GPSLatitude"), tags.get("GPS GPSLatitudeRef")
    lon, lon_ref = tags.get("GPS GPSLongitude"), tags.get("GPS GPSLongitudeRef")
    if lat is None or lon is None:
        return None
    try:
        latitude = _degrees(lat.values, str(lat_ref or "N"), "S")
        longitude = _degrees(lon.values, str(lon_ref or "E"), "W")
        altitude = None
        alt = tags.get("GPS GPSAltitude")
        if alt is not None:
            altitude = float(_ratio(alt.values[0]))
            ref = tags.get("GPS GPSAltitudeRef")
            if ref is not None and ref.values and ref.values[0] == 1:
                altitude = -altitude
        return GeoPosition(latitude=latitude, longitude=longitude, altitude_m=altitude)
    except (ZeroDivisionError, ValueError, TypeError, IndexError, AttributeError) as exc:
        errors.append(f"GPS position could not be read: {_clean(exc)}")
        return None


def _degrees(values: Any, ref: str, negative_ref: str) -> float:
    parts = [_ratio(v) for v in values]
    if not 1 <= len(parts) <= 3:
        raise ValueError(f"expected degrees, minutes, seconds; got {len(parts)} values")
    degrees = parts[0] + (parts[1] / 60 if len(parts) > 1 else 0) + (parts[2] / 3600 if len(parts) > 2 else 0)
    value = float(degrees)
    return -value if ref.strip().upper().startswith(negative_ref) else value
