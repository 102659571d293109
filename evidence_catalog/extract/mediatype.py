"""Media type sniffed from the bytes themselves (a name or a server's header is not evidence)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

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
        found = _SIGNATURES.media_type(path) if _SIGNATURES is not None else _best_with_type(path)
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


class Signatures:
    """puremagic's signatures, looked up instead of scanned: the same ranking as
    ``puremagic.magic_file(path)``, some ten times faster.

    puremagic compares the file's head with each of its ~1,400 header signatures in turn (a
    loop in Python: about 1 ms a file, most of the time adding a small file took).  Here the
    signatures are grouped by where they sit (offset and length): one slice of the head and one
    dictionary lookup per group (~140) finds every signature that matches.  The matches, in
    puremagic's order, then go through puremagic's own footer and multi-part checks and its
    ranking, so the result is the one it would give (``tests/test_mediatype.py`` holds the two
    equal on every signature puremagic has), except that equally ranked multi-part matches keep
    the order of puremagic's table where puremagic's own order depends on the hash seed.  Built
    from puremagic's module-level tables; when a puremagic release no longer has them,
    :data:`_SIGNATURES` is ``None`` and puremagic's own ``magic_file`` is used.
    """

    def __init__(self, tables: Any) -> None:
        self._tables = tables
        self._confidence: Callable[..., Sequence[Any]] = tables._confidence
        self._head_size: int = tables.max_head
        self._foot_size: int = tables.max_foot
        self._footer = list(tables.magic_footer_array)
        self._multi: dict[bytes, Sequence[Any]] = tables.multi_part_dict
        groups: dict[tuple[int, int], dict[bytes, list[tuple[int, Any]]]] = {}
        for order, row in enumerate(tables.magic_header_array):
            if row.offset < 0:
                raise ValueError("a header signature with a negative offset")  # puremagic has none
            where = (row.offset, len(row.byte_match))
            groups.setdefault(where, {}).setdefault(row.byte_match, []).append((order, row))
        # (start, end, signatures there by their bytes), nearest the start first
        self._groups = sorted((start, start + size, found) for (start, size), found in groups.items())

    def media_type(self, path: str | os.PathLike[str]) -> str:
        """The media type of puremagic's best match for the file at *path* that has one
        (``""`` when none has; ``ValueError`` for an empty file, as puremagic raises)."""
        with open(path, "rb") as stream:
            head = stream.read(self._head_size)
            try:
                stream.seek(-self._foot_size, os.SEEK_END)
            except OSError:
                stream.seek(0)
            foot = stream.read()
        if not head:
            raise ValueError("Input was empty")
        try:
            matches = self.identify(head, foot, self._tables.ext_from_filename(path))
        except puremagic.PureError:  # nothing matched
            return ""
        return next((str(m.mime_type) for m in matches if m.mime_type), "")

    def identify(self, head: bytes, foot: bytes, ext: str | None = None) -> Sequence[Any]:
        """Every signature that matches, ranked as puremagic ranks them (best first)."""
        found: list[tuple[int, Any]] = []
        size = len(head)
        for start, end, signatures in self._groups:
            if end <= size:
                rows = signatures.get(head[start:end])
                if rows is not None:
                    found += rows
        found.sort(key=lambda pair: pair[0])
        matches = [row for _, row in found]
        for row in self._footer:
            start, end = row.offset, row.offset + len(row.byte_match)
            if (foot[start:end] if end != 0 else foot[start:]) == row.byte_match:
                matches.append(row)
        # puremagic collects these in a set, so two equally ranked ones (a MOBI file's footer
        # says Mobipocket and Kindle alike) come out in an order that changes with the string
        # hash seed of the process.  Kept in the order of puremagic's table instead: the same
        # file always gets the same media type.
        extra: dict[Any, None] = {}
        for matched in matches:
            for row in self._multi.get(matched.byte_match, ()):
                start, end = row.offset, row.offset + len(row.byte_match)
                if row.offset < 0:
                    if (foot[start:end] if end != 0 else foot[start:]) == row.byte_match:
                        extra[row._replace(byte_match=matched.byte_match + row.byte_match)] = None
                elif end <= size and head[start:end] == row.byte_match:
                    extra[row._replace(byte_match=head[matched.offset : end])] = None
        matches.extend(extra)
        return self._confidence(matches, ext)


def _best_with_type(path: Path) -> str:
    """The media type of puremagic's best match that has one: its very best may have none (an
    ``.m4a`` file's ``ftypM4A`` signature), and ``from_file`` then answers ``""``."""
    return next((str(m.mime_type) for m in puremagic.magic_file(str(path)) if m.mime_type), "")


def _signatures() -> Signatures | None:
    try:
        from puremagic import main as tables

        return Signatures(tables)
    except (AttributeError, ImportError, TypeError, ValueError):
        return None


_SIGNATURES = _signatures()
