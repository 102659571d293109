"""Media type sniffed from the bytes themselves (a name or a server's header is not evidence)."""

from __future__ import annotations

import re
from pathlib import Path

import puremagic

_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
OCTET_STREAM = "application/octet-stream"
_TEXT_PROBE = 64 * 1024


def sniff_media_type(path: Path) -> str:
    """Return the media type of the file at *path* judged from its content.

    Falls back to ``text/plain`` for UTF-8 text without NUL bytes, and to
    ``application/octet-stream`` when nothing is recognised (including empty files).
    """
    try:
        found = puremagic.from_file(str(path), mime=True)
    except (puremagic.PureError, ValueError, OSError, IndexError):
        found = ""
    found = found.strip().lower()
    if found in ("video/mp4", "audio/mp4", "video/quicktime"):
        found = _iso_media_type(path) or found
    if found and _MEDIA_TYPE.match(found):
        return found
    return "text/plain" if _looks_like_text(path) else OCTET_STREAM


#: Major brands of ISO base media files that hold sound only (ISO/IEC 14496-12 ``ftyp``).
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}


def _iso_media_type(path: Path) -> str | None:
    """``audio/mp4`` for an MP4 file whose brand says audio only (an .m4a stream), else None."""
    with open(path, "rb") as stream:
        head = stream.read(12)
    if len(head) == 12 and head[4:8] == b"ftyp" and head[8:12] in _AUDIO_BRANDS:
        return "audio/mp4"
    return None


def _looks_like_text(path: Path) -> bool:
    with open(path, "rb") as stream:
        head = stream.read(_TEXT_PROBE)
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the probe's end is still text.
        return exc.start >= len(head) - 3 and len(head) == _TEXT_PROBE
    return True
