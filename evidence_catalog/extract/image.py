"""An image's width, height and EXIF orientation, read from its header alone.

No pixel is decoded and no image library is loaded: the few structures that state the size (a
JPEG frame header, a PNG ``IHDR`` chunk, a GIF screen descriptor, a WebP ``VP8``/``VP8L``/``VP8X``
chunk, a BMP info header, a TIFF's first directory, a HEIF primary item's ``ispe`` property) are
read where the format puts them, and the orientation from the first directory of the file's EXIF
block.  Reading stops after :data:`MAX_SEGMENTS` structures or at the end of the file, so a
hostile file costs a bounded number of small reads.  A format this reader does not know (ICO,
PSD, SVG, ...) gives no size and no error; a header that is cut short or inconsistent gives no
size and an error saying so.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from evidence_catalog.model import ImageInfo

#: The most markers, chunks or directory entries looked at in one file.
MAX_SEGMENTS = 4096
#: The most fill bytes (0xFF) read in one JPEG, before all its markers (they are read a byte at a time).
MAX_FILL_BYTES = 65536
_ORIENTATION_TAG = 0x0112
_WIDTH_TAG, _HEIGHT_TAG = 0x0100, 0x0101
#: JPEG start-of-frame markers (all but DHT 0xC4, JPG 0xC8 and DAC 0xCC).
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


#: Major brands of HEIF files (HEIC photos, AVIF).
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"})
#: The most bytes of a HEIF ``meta`` box read (it holds item and property tables, not pixels).
_HEIF_META = 1 << 20


class _MalformedError(Exception):
    """The header is cut short or says something impossible."""


def read_image_header(path: Path) -> tuple[ImageInfo | None, tuple[str, ...]]:
    """The size and orientation of the image in *path*, and the problems met reading them;
    ``(None, ())`` for a format this reader does not know."""
    errors: list[str] = []
    try:
        with open(path, "rb") as stream:
            head = stream.read(32)
            found = _read(stream, head, errors)
    except _MalformedError as exc:
        return None, (f"image size could not be read: {exc}",)
    except struct.error:
        return None, ("image size could not be read: the header is cut short",)
    except (ValueError, OverflowError):  # an offset past what a file can have (a seek refused)
        return None, ("image size could not be read: the header states an offset no file can have",)
    except OSError as exc:
        return None, (f"image size could not be read: {exc.strerror or exc}",)
    if found is None:
        return None, tuple(errors)
    width, height, orientation = found
    if width < 1 or height < 1:
        return None, (*errors, f"image header states a size of {width} × {height} pixels")
    if orientation is not None and not 1 <= orientation <= 8:
        errors.append(f"EXIF Orientation {orientation} is not one of 1-8; the orientation is left unknown")
        orientation = None
    return ImageInfo(width=width, height=height, orientation=orientation), tuple(errors)


Found = tuple[int, int, int | None]


def _read(stream: BinaryIO, head: bytes, errors: list[str]) -> Found | None:
    if head[:3] == b"\xff\xd8\xff":
        return _jpeg(stream)
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return _png(stream)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        _need(head, 10)
        return (*struct.unpack("<HH", head[6:10]), None)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp(stream)
    if head[:2] == b"BM":
        return _bmp(head)
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        stream.seek(0)
        return _tiff_size(stream)
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return _heif(stream)
    return None


def _need(data: bytes, size: int) -> bool:
    if len(data) < size:
        raise _MalformedError("the header is cut short")
    return True


def _jpeg(stream: BinaryIO) -> Found:
    stream.seek(2)
    orientation: int | None = None
    fill = 0
    for _ in range(MAX_SEGMENTS):
        marker = stream.read(2)
        while marker[:1] == b"\xff" and marker[1:2] == b"\xff":  # fill bytes
            fill += 1
            if fill > MAX_FILL_BYTES:
                raise _MalformedError(f"more than {MAX_FILL_BYTES} fill bytes between its markers")
            marker = marker[1:] + stream.read(1)
        _need(marker, 2)
        if marker[0] != 0xFF:
            raise _MalformedError(f"no JPEG marker where one must be (byte {stream.tell() - 2})")
        kind = marker[1]
        if kind == 0x01 or 0xD0 <= kind <= 0xD7:
            continue
        if kind in (0xD9, 0xDA):
            raise _MalformedError("the JPEG has no frame header before its image data")
        length_bytes = stream.read(2)
        _need(length_bytes, 2)
        length = int.from_bytes(length_bytes, "big")
        if length < 2:
            raise _MalformedError(f"a JPEG segment states a length of {length}")
        if kind in _SOF:
            body = stream.read(5)
            _need(body, 5)
            height, width = struct.unpack(">HH", body[1:5])
            return width, height, orientation
        if kind == 0xE1 and orientation is None:
            body = stream.read(length - 2)
            if body[:6] == b"Exif\x00\x00":
                orientation = _tiff_orientation(body[6:])
            continue
        stream.seek(length - 2, 1)
    raise _MalformedError(f"no JPEG frame header in the first {MAX_SEGMENTS} segments")


def _png(stream: BinaryIO) -> Found:
    stream.seek(8)
    size: tuple[int, int] | None = None
    for _ in range(MAX_SEGMENTS):
        chunk = stream.read(8)
        if len(chunk) < 8:
            break
        length, kind = int.from_bytes(chunk[:4], "big"), chunk[4:]
        if size is None:
            if kind != b"IHDR" or length < 8:
                raise _MalformedError("a PNG must begin with its IHDR chunk")
            body = stream.read(8)
            _need(body, 8)
            size = struct.unpack(">II", body)
            stream.seek(length - 8 + 4, 1)
            continue
        if kind == b"eXIf":
            return (*size, _tiff_orientation(stream.read(min(length, 1 << 20))))
        if kind in (b"IDAT", b"IEND"):  # eXIf must come before the image data
            break
        stream.seek(length + 4, 1)
    if size is None:
        raise _MalformedError("the PNG has no IHDR chunk")
    return (*size, None)


def _webp(stream: BinaryIO) -> Found:
    stream.seek(12)
    size: tuple[int, int] | None = None
    orientation: int | None = None
    for _ in range(MAX_SEGMENTS):
        chunk = stream.read(8)
        if len(chunk) < 8:
            break
        kind, length = chunk[:4], int.from_bytes(chunk[4:], "little")
        end = stream.tell() + length + (length & 1)  # the next chunk, however much of this one is read
        body = stream.read(min(length, 1 << 20)) if kind in (b"VP8X", b"VP8 ", b"VP8L", b"EXIF") else b""
        if kind == b"VP8X" and _need(body, 10):
            size = (int.from_bytes(body[4:7], "little") + 1, int.from_bytes(body[7:10], "little") + 1)
        elif kind == b"VP8 " and size is None and _need(body, 10):
            if body[3:6] != b"\x9d\x01\x2a":
                raise _MalformedError("the WebP VP8 frame has no start code")
            width, height = struct.unpack("<HH", body[6:10])
            size = (width & 0x3FFF, height & 0x3FFF)
        elif kind == b"VP8L" and size is None and _need(body, 5):
            if body[0] != 0x2F:
                raise _MalformedError("the WebP VP8L frame has no signature")
            bits = int.from_bytes(body[1:5], "little")
            size = ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
        elif kind == b"EXIF":
            orientation = _tiff_orientation(body[6:] if body[:6] == b"Exif\x00\x00" else body)
        stream.seek(end)
    if size is None:
        raise _MalformedError("the WebP has no frame header")
    return (*size, orientation)


def _bmp(head: bytes) -> Found:
    _need(head, 26)
    header_size = int.from_bytes(head[14:18], "little")
    if header_size == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack("<HH", head[18:22])
    else:
        width, height = struct.unpack("<ii", head[18:26])
    return width, abs(height), None  # a negative height is a top-down bitmap


def _ifd0(data: bytes) -> dict[int, int]:
    """The numeric values of the first directory of a TIFF structure, by tag: only SHORT and
    LONG values that fit in the entry."""
    _need(data, 8)
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None:
        raise _MalformedError("the EXIF block has no TIFF byte order mark")
    offset = struct.unpack(order + "I", data[4:8])[0]
    _need(data, offset + 2)
    count = struct.unpack(order + "H", data[offset : offset + 2])[0]
    values: dict[int, int] = {}
    for number in range(min(count, MAX_SEGMENTS)):
        entry = data[offset + 2 + 12 * number : offset + 14 + 12 * number]
        _need(entry, 12)
        tag, kind, items = struct.unpack(order + "HHI", entry[:8])
        if items == 1 and kind == 3:
            values.setdefault(tag, struct.unpack(order + "H", entry[8:10])[0])
        elif items == 1 and kind == 4:
            values.setdefault(tag, struct.unpack(order + "I", entry[8:12])[0])
    return values


def _tiff_orientation(data: bytes) -> int | None:
    """The orientation an EXIF block states; ``None`` for a block that cannot be read (which
    the EXIF reader reports)."""
    try:
        return _ifd0(data).get(_ORIENTATION_TAG)
    except (_MalformedError, struct.error):
        return None


def _tiff_size(stream: BinaryIO) -> Found:
    """A TIFF's size from its first directory, wherever in the file it is (writers often put it
    after the image data): the header, then the directory alone are read."""
    stream.seek(0)
    header = stream.read(8)
    _need(header, 8)
    order = "<" if header[:2] == b"II" else ">"
    offset = struct.unpack(order + "I", header[4:8])[0]
    stream.seek(offset)
    count_bytes = stream.read(2)
    _need(count_bytes, 2)
    count = min(struct.unpack(order + "H", count_bytes)[0], MAX_SEGMENTS)
    # The directory as if it followed the header at offset 8: the form _ifd0 reads.
    directory = count_bytes + stream.read(12 * count)
    values = _ifd0(header[:4] + struct.pack(order + "I", 8) + directory)
    if _WIDTH_TAG not in values or _HEIGHT_TAG not in values:
        raise _MalformedError("the TIFF's first directory states no width and height")
    return values[_WIDTH_TAG], values[_HEIGHT_TAG], values.get(_ORIENTATION_TAG)


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> dict[bytes, tuple[int, int]]:
    """The first box of each type in *data[start:end]*: type -> (start of its body, its end)."""
    end = len(data) if end is None else end
    found: dict[bytes, tuple[int, int]] = {}
    position = start
    for _ in range(MAX_SEGMENTS):
        if position + 8 > end:
            break
        size, kind = struct.unpack(">I4s", data[position : position + 8])
        body = position + 8
        if size == 1:
            _need(data[position : position + 16], 16)
            size, body = struct.unpack(">Q", data[position + 8 : position + 16])[0], position + 16
        elif size == 0:
            size = end - position
        if size < body - position:
            raise _MalformedError(f"a box states a size of {size}")
        found.setdefault(kind, (body, min(position + size, end)))
        position += size
    return found


def _heif(stream: BinaryIO) -> Found:
    """A HEIF image's size (HEIC, AVIF): the ``ispe`` property of its primary item.  The
    picture's transforms (``irot``, ``imir``) are not EXIF orientation: it is left unknown."""
    position, found = 0, None
    stream.seek(0, 2)
    file_end = stream.tell()
    for _ in range(MAX_SEGMENTS):  # the top-level boxes, by their sizes alone
        if position >= file_end:
            break
        stream.seek(position)
        header = stream.read(16)
        if len(header) < 8:
            break
        size, kind = struct.unpack(">I4s", header[:8])
        if size == 1 and len(header) == 16:
            size = struct.unpack(">Q", header[8:])[0]
        if kind == b"meta":
            found = (position, size)
            break
        if size < 8:
            break
        position += size
    if found is None:
        raise _MalformedError("the HEIF file has no meta box")
    stream.seek(found[0])
    top = stream.read(min(found[1], _HEIF_META) if found[1] >= 8 else _HEIF_META)
    boxes = _boxes(top)
    if b"meta" not in boxes:
        raise _MalformedError("the HEIF meta box is cut short")
    meta_start, meta_end = boxes[b"meta"]
    meta = _boxes(top, meta_start + 4, meta_end)  # meta is a full box: version and flags first
    if b"pitm" not in meta or b"iprp" not in meta:
        raise _MalformedError("the HEIF meta box names no primary item or no properties")
    pitm = top[meta[b"pitm"][0] : meta[b"pitm"][1]]
    _need(pitm, 6)
    primary = struct.unpack(">H", pitm[4:6])[0] if pitm[0] == 0 else struct.unpack(">I", pitm[4:8])[0]
    iprp = _boxes(top, *meta[b"iprp"])
    if b"ipco" not in iprp or b"ipma" not in iprp:
        raise _MalformedError("the HEIF properties have no ipco or ipma box")
    properties = _property_list(top, *iprp[b"ipco"])
    for index in _associations(top[iprp[b"ipma"][0] : iprp[b"ipma"][1]], primary):
        if 1 <= index <= len(properties) and properties[index - 1][0] == b"ispe":
            body = properties[index - 1][1]
            _need(body, 12)
            width, height = struct.unpack(">II", body[4:12])
            return width, height, None
    raise _MalformedError("the HEIF primary item has no ispe (size) property")


def _property_list(data: bytes, start: int, end: int) -> list[tuple[bytes, bytes]]:
    """The boxes of an ``ipco`` in order (properties are numbered from 1)."""
    found: list[tuple[bytes, bytes]] = []
    position = start
    while position + 8 <= end and len(found) < MAX_SEGMENTS:
        size, kind = struct.unpack(">I4s", data[position : position + 8])
        if size < 8:
            raise _MalformedError(f"a HEIF property states a size of {size}")
        found.append((kind, data[position + 8 : min(position + size, end)]))
        position += size
    return found


def _associations(ipma: bytes, item: int) -> list[int]:
    """The property indexes the ``ipma`` box associates with *item*."""
    _need(ipma, 8)
    version, flags = ipma[0], int.from_bytes(ipma[1:4], "big")
    count = struct.unpack(">I", ipma[4:8])[0]
    position = 8
    for _ in range(min(count, MAX_SEGMENTS)):
        id_size = 2 if version < 1 else 4
        _need(ipma[position:], id_size + 1)
        entry_item = int.from_bytes(ipma[position : position + id_size], "big")
        associations = ipma[position + id_size]
        position += id_size + 1
        width = 2 if flags & 1 else 1
        indexes = []
        for _ in range(associations):
            _need(ipma[position:], width)
            value = int.from_bytes(ipma[position : position + width], "big")
            indexes.append(value & (0x7FFF if width == 2 else 0x7F))
            position += width
        if entry_item == item:
            return indexes
    return []
