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

    The file is opened once: its first :data:`_PROBE` bytes (a small file whole) serve every
    test, and only a larger file's last bytes are read on their own.
    """
    with open(path, "rb") as stream:
        head = stream.read(_PROBE)
        if len(head) < _PROBE:  # the whole file
            foot = head[-_FOOT_SIZE:] if _FOOT_SIZE else b""
        else:
            try:
                stream.seek(-_FOOT_SIZE, os.SEEK_END)
            except OSError:
                stream.seek(0)
            foot = stream.read()
    return media_type_of(head, foot, path)


def media_type_of(head: bytes, foot: bytes, path: str | os.PathLike[str]) -> str:
    """:func:`sniff_media_type` of a file (at *path*, for its name) whose first bytes (at least
    :data:`_PROBE`, or the whole file) are *head* and whose last bytes are *foot*."""
    if _is_wacz(head):
        return WACZ
    try:
        if _SIGNATURES is not None:
            found = _SIGNATURES.media_type_of(head[: _SIGNATURES.head_size], foot, path)
        else:
            found = _best_with_type(Path(path))
    except (puremagic.PureError, ValueError, OSError, IndexError):
        found = ""
    found = found.strip().lower()
    if found in ("video/mp4", "audio/mp4", "video/quicktime"):
        found = _iso_media_type(head) or found
    if found and _MEDIA_TYPE.match(found):
        return found
    return "text/plain" if _looks_like_text(head[:_TEXT_PROBE]) else OCTET_STREAM


#: A web archive (WACZ): a zip whose first entry is its ``datapackage.json``, stored.
WACZ = "application/wacz"


def _is_wacz(head: bytes) -> bool:
    """Whether *head* starts a zip whose first entry is an uncompressed ``datapackage.json``
    that names a ``wacz_version`` (as this library writes a WACZ; a WACZ whose package comes
    later in the zip is sniffed as the zip it also is)."""
    if len(head) < 30 or head[:4] != b"PK\x03\x04" or head[8:10] != b"\x00\x00":
        return False
    size = int.from_bytes(head[18:22], "little")
    name_length = int.from_bytes(head[26:28], "little")
    extra_length = int.from_bytes(head[28:30], "little")
    if head[30 : 30 + name_length] != b"datapackage.json":
        return False
    start = 30 + name_length + extra_length
    return b'"wacz_version"' in head[start : start + size]


#: Major brands of ISO base media files that hold sound only (ISO/IEC 14496-12 ``ftyp``).
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}


def _iso_media_type(head: bytes) -> str | None:
    """``audio/mp4`` for an MP4 file (whose first bytes are *head*) whose brand says audio only
    (an .m4a stream), else None."""
    if len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in _AUDIO_BRANDS:
        return "audio/mp4"
    return None


def _looks_like_text(head: bytes) -> bool:
    """Whether a file's first :data:`_TEXT_PROBE` bytes (or all of it), *head*, are UTF-8 text."""
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
        # The same groups by where they start and by the byte there: a head is sliced only for
        # the groups whose first byte it has (most groups are passed over with one lookup).
        by_first: dict[int, dict[int, list[tuple[int, dict[bytes, list[tuple[int, Any]]]]]]] = {}
        for start, end, found in self._groups:
            for first in sorted({signature[0] for signature in found}):
                by_first.setdefault(start, {}).setdefault(first, []).append((end, found))
        self._by_first = sorted(by_first.items())

    @property
    def head_size(self) -> int:
        """How many of a file's first bytes the signatures look at."""
        return self._head_size

    @property
    def foot_size(self) -> int:
        """How many of a file's last bytes the signatures look at."""
        return self._foot_size

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
        return self.media_type_of(head, foot, path)

    def media_type_of(self, head: bytes, foot: bytes, path: str | os.PathLike[str]) -> str:
        """:meth:`media_type` of a file at *path* whose first :attr:`head_size` bytes are
        *head* and last :attr:`foot_size` bytes *foot* (the whole file, when smaller)."""
        if not head:
            raise ValueError("Input was empty")
        # puremagic takes the extension from the whole path; only the file's name can give one
        # that a signature has (one found in a folder's name holds a "/", which none has).
        try:
            matches = self.identify(head, foot, self._tables.ext_from_filename(os.path.basename(path)))
        except puremagic.PureError:  # nothing matched
            return ""
        return next((str(m.mime_type) for m in matches if m.mime_type), "")

    def identify(self, head: bytes, foot: bytes, ext: str | None = None) -> Sequence[Any]:
        """Every signature that matches, ranked as puremagic ranks them (best first)."""
        found: list[tuple[int, Any]] = []
        size = len(head)
        for start, groups in self._by_first:
            if start >= size:
                break
            for end, signatures in groups.get(head[start], ()):
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
#: What :func:`sniff_media_type` reads of a file's head (the signatures' and the text test's
#: share) and of its foot.
_PROBE = max(_TEXT_PROBE, _SIGNATURES.head_size if _SIGNATURES is not None else 0)
_FOOT_SIZE = _SIGNATURES.foot_size if _SIGNATURES is not None else 0
