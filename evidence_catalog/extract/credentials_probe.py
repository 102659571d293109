"""The child side of the Content Credentials reader: run as a script in its own interpreter
(``python -I credentials_probe.py FILE MEDIA_TYPE MEMORY_BYTES SECONDS``, the c2pa settings as
JSON on standard input), it lowers its own limits, reads and validates *FILE*'s C2PA manifest
store with c2pa-python (the Rust c2pa-rs library), finds the store's bytes in the file, and
writes one JSON object to standard output.

It imports only the standard library and ``c2pa`` (never :mod:`evidence_catalog`): it must start
fast and run whatever the parent's path.  Whatever c2pa-rs does with a hostile file happens
here: a crash, a hang or an allocation past the limit ends this process, and the parent
(:mod:`evidence_catalog.extract.credentials`) records what happened.

The manifest store is taken from the file by this script, not from c2pa (whose reader hands
back its reading of the store as JSON, never the store's bytes): from the JPEG APP11 segments
joined as c2pa-rs joins them, the PNG ``caBX`` chunk, the ISO BMFF ``uuid`` box of C2PA's UUID,
and in any other container from the first C2PA JUMBF superbox found whole in the bytes.
"""

from __future__ import annotations

import base64
import json
import resource
import signal
import struct
import sys
from typing import Any

#: The JUMBF description box of a C2PA manifest store: the box type ``jumd`` and the first four
#: bytes of C2PA's UUID (``c2pa`` 0011-0010-8000-00AA00389B71).
MARKER = b"jumdc2pa"
_C2PA_UUID = bytes.fromhex("6332706100110010800000aa00389b71")
#: ISO BMFF: the extended type of the box C2PA keeps its manifest store in.
_BMFF_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")
#: The most manifest store bytes kept; a larger store is validated but not kept.
MAX_STORE_BYTES = 64 * 1024 * 1024
#: The most characters of c2pa's report passed on.
MAX_REPORT_CHARS = 32 * 1024 * 1024
_MAX_BOXES = 100_000
_CHUNK = 1024 * 1024


class _File:
    """A file read by offset and slice, as bytes are (``data[a:b]``, ``data[i]``, ``find``),
    without holding more of it in memory than asked for: a video of gigabytes is never
    mapped into an address space the limit keeps small."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        stream.seek(0, 2)
        self._size: int = stream.tell()

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, key: int | slice) -> Any:
        if isinstance(key, int):
            piece = self[key : key + 1]
            if not piece:
                raise IndexError(key)
            return piece[0]
        start, stop, _ = key.indices(self._size)
        if stop <= start:
            return b""
        self._stream.seek(start)
        return self._stream.read(stop - start)

    def find(self, sub: bytes, start: int = 0, stop: int | None = None) -> int:
        """The first offset of *sub* from *start* (before *stop*), or -1."""
        stop = self._size if stop is None else min(stop, self._size)
        position = start
        while position < stop:
            block: bytes = self[position : min(stop, position + _CHUNK + len(sub) - 1)]
            found = block.find(sub)
            if found >= 0:
                return position + found
            position += _CHUNK
        return -1


def _limit(memory: int, seconds: int) -> None:
    """Limit this process: its address space, its CPU time, no core dump, no file written, and
    an alarm that ends it a second after the parent would have."""
    signal.alarm(seconds + 1)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def _is_store(data: bytes | memoryview) -> bool:
    """Whether *data* begins with a JUMBF superbox described as a C2PA manifest store."""
    return (
        len(data) >= 32
        and bytes(data[4:8]) == b"jumb"
        and bytes(data[12:16]) == b"jumd"
        and (bytes(data[16:32]) == _C2PA_UUID)
    )


class _TooLargeError(Exception):
    """A manifest store over :data:`MAX_STORE_BYTES`."""


def _take(data: _File, start: int, stop: int) -> bytes:
    if stop - start > MAX_STORE_BYTES:
        raise _TooLargeError(stop - start)
    return bytes(data[start:stop])


def _jpeg_store(data: _File, notes: list[str]) -> bytes | None:
    """The store in a JPEG's APP11 segments, joined as c2pa-rs joins them: a segment whose JUMBF
    is C2PA's starts it (its 8-byte JPEG XT header dropped), the following segments of the same
    box instance number and a higher sequence number continue it (their repeated box header
    dropped too)."""
    position, end = 2, len(data)
    buffer = bytearray()
    instance: bytes | None = None
    count = stores = 0
    while position + 4 <= end:
        if data[position] != 0xFF:
            break
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            position += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no more metadata segments
            break
        length = struct.unpack(">H", data[position + 2 : position + 4])[0]
        if length < 2 or position + 2 + length > end:
            notes.append(f"the JPEG segment at offset {position} runs past the end of the file")
            break
        if marker == 0xEB:
            body = data[position + 4 : position + 2 + length]
            if len(body) > 16:
                en = body[2:4]
                z = struct.unpack(">I", body[4:8])[0]
                if count and en == instance:
                    if z <= count:
                        instance = None
                    else:
                        buffer += body[16:]
                        count += 1
                        if len(buffer) > MAX_STORE_BYTES:
                            raise _TooLargeError(len(buffer))
                elif len(body) > 28 and body[24:28] == b"c2pa":
                    stores += 1
                    if stores == 1:
                        buffer += body[8:]
                        count, instance = 1, en
        position += 2 + length
    if stores > 1:
        notes.append(f"the JPEG holds {stores} C2PA manifest stores; the first is kept")
    return bytes(buffer) if buffer else None


def _png_store(data: _File, notes: list[str]) -> bytes | None:
    """The data of a PNG's first ``caBX`` chunk."""
    position, end = 8, len(data)
    found: bytes | None = None
    stores = 0
    while position + 12 <= end:
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        if position + 12 + length > end:
            notes.append(f"the PNG chunk at offset {position} runs past the end of the file")
            break
        if kind == b"caBX":
            stores += 1
            if found is None:
                found = _take(data, position + 8, position + 8 + length)
        if kind == b"IEND":
            break
        position += 12 + length
    if stores > 1:
        notes.append(f"the PNG holds {stores} caBX chunks; the first is kept")
    return found


def _bmff_store(data: _File, notes: list[str]) -> bytes | None:
    """The store in an ISO BMFF file's top-level C2PA ``uuid`` box of purpose ``manifest`` (or
    ``original``): after the box's version and flags, its purpose and an 8-byte offset."""
    position, end, boxes = 0, len(data), 0
    found: bytes | None = None
    while position + 8 <= end and boxes < _MAX_BOXES:
        boxes += 1
        size, kind = struct.unpack(">I4s", data[position : position + 8])
        header = 8
        if size == 1:
            if position + 16 > end:
                break
            size, header = struct.unpack(">Q", data[position + 8 : position + 16])[0], 16
        elif size == 0:
            size = end - position
        if size < header or position + size > end:
            notes.append(f"the box at offset {position} runs past the end of the file")
            break
        if kind == b"uuid" and data[position + header : position + header + 16] == _BMFF_UUID:
            body = position + header + 16 + 4  # the extended type, version and flags
            stop = position + size
            zero = data.find(b"\0", body, min(stop, body + 256))
            purpose = data[body:zero] if zero >= 0 else b""
            if purpose in (b"manifest", b"original") and zero + 1 + 8 <= stop:
                if found is None:
                    found = _take(data, zero + 1 + 8, stop)
                else:
                    notes.append("the file holds more than one C2PA manifest box; the first is kept")
        position += size
    return found


def _contiguous_store(data: _File) -> bytes | None:
    """The first C2PA JUMBF superbox found whole in *data* (containers that keep the store in
    one piece: RIFF, TIFF, MP3 ...)."""
    start = data.find(MARKER)
    while start >= 0:
        box = start - 12
        if box >= 0 and data[box + 4 : box + 8] == b"jumb":
            size = struct.unpack(">I", data[box : box + 4])[0]
            if size >= 32 and box + size <= len(data):
                return _take(data, box, box + size)
        start = data.find(MARKER, start + 1)
    return None


def locate_store(path: str, media_type: str, notes: list[str]) -> tuple[bytes | None, int]:
    """The manifest store's bytes as the file holds them (``None`` when not found) and the
    offset of the first C2PA marker anywhere in the file (-1 when there is none)."""
    with open(path, "rb") as stream:
        data = _File(stream)
        marker = data.find(MARKER)
        if marker < 0:
            return None, -1
        store: bytes | None = None
        try:
            if data[:3] == b"\xff\xd8\xff":
                store = _jpeg_store(data, notes)
            elif data[:8] == b"\x89PNG\r\n\x1a\n":
                store = _png_store(data, notes)
            elif data[4:8] in (b"ftyp", b"moov", b"mdat", b"uuid", b"free", b"wide", b"skip"):
                store = _bmff_store(data, notes)
            if store is None:
                store = _contiguous_store(data)
        except _TooLargeError as exc:
            notes.append(f"the manifest store is {exc.args[0]} bytes, over the {MAX_STORE_BYTES} kept; it is not kept")
        except (struct.error, ValueError, IndexError) as exc:
            notes.append(f"the container could not be walked to its manifest store: {exc}")
        if store is not None and not _is_store(store):
            notes.append(f"what the {media_type} file holds where C2PA keeps its store is no C2PA JUMBF box")
        return store, marker


def _error_kind(exc: Exception) -> str:
    """What kind of c2pa error *exc* is, from its class (``_C2paManifestNotFound``) or, for the
    errors c2pa-python does not type, the prefix of its message (``Remote: ...``)."""
    name = type(exc).__name__.lstrip("_")
    if name.startswith("C2pa") and name != "C2paError":
        return name[4:]
    head = str(exc).split(":", 1)[0].strip()
    return head if head.isalpha() else "Other"


def read(path: str, media_type: str, settings: dict[str, Any]) -> dict[str, Any]:
    """What c2pa reads of *path*, and the store's bytes."""
    import c2pa  # type: ignore[import-untyped]

    result: dict[str, Any] = {}
    notes: list[str] = []
    with c2pa.Context.from_dict(settings) as context, open(path, "rb") as stream:
        try:
            with c2pa.Reader(media_type, stream, context=context) as reader:
                report = reader.json()
        except c2pa.C2paError as exc:
            result.update(outcome="error", kind=_error_kind(exc), message=str(exc))
        else:
            if len(report) > MAX_REPORT_CHARS:
                too_long = f"c2pa's report is over {MAX_REPORT_CHARS} characters"
                result.update(outcome="error", kind="Size", message=too_long)
            else:
                result.update(outcome="read", report=report)
    store, marker = locate_store(path, media_type, notes)
    result["marker"] = marker
    result["store"] = base64.b64encode(store).decode("ascii") if store is not None else None
    result["notes"] = notes
    return result


def main() -> None:
    """Read the file named first; write the result, or the versions and
    ``"outcome": "stopped", "kind": ..., "message": ...``."""
    path, media_type, memory, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    settings = json.loads(sys.stdin.read())
    _limit(memory, seconds)
    result: dict[str, Any] = {}
    try:
        from importlib.metadata import version

        import c2pa  # type: ignore[import-untyped]

        result.update(c2pa_python=version("c2pa-python"), c2pa_rs=c2pa.sdk_version())
    except Exception as exc:  # noqa: BLE001 -- not installed, or its library cannot be loaded
        result.update(outcome="stopped", kind="unavailable", message=f"{type(exc).__name__}: {exc}")
        sys.stdout.write(json.dumps(result, ensure_ascii=True))
        return
    try:
        result.update(read(path, media_type, settings))
    except MemoryError:
        result.update(outcome="stopped", kind="memory", message="out of memory")
    except Exception as exc:  # noqa: BLE001 -- whatever the file makes the reader raise
        message = str(exc).replace(path, "<file>")
        result.update(outcome="stopped", kind="failed", message=f"{type(exc).__name__}: {message}")
    sys.stdout.write(json.dumps(result, ensure_ascii=True))


if __name__ == "__main__":
    main()
