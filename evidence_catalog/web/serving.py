"""Stored files as the viewer serves them: byte ranges (RFC 9110 section 14) from any blob
store, headers that keep a hostile file inert, and thumbnails made in a sandboxed child.

Only pictures, video, sound and plain text are served for display (``inline``); everything
else -- HTML, SVG, XML, PDF, scripts, archives -- is served as ``application/octet-stream``
with ``Content-Disposition: attachment``, so a browser saves it instead of running it.  Every
file also gets ``X-Content-Type-Options: nosniff`` and a Content-Security-Policy that blocks
everything and sandboxes the document, should a browser open one anyway.
"""

from __future__ import annotations

import collections
import os
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from starlette.responses import Response, StreamingResponse

#: Media types a browser shows without running anything (their decoders run in the browser's
#: own sandbox); everything else is offered as a download.
INLINE_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "image/avif",
        "image/bmp",
        "video/mp4",
        "video/webm",
        "video/ogg",
        "video/quicktime",
        "audio/mpeg",
        "audio/mp4",
        "audio/ogg",
        "audio/wav",
        "audio/aac",
        "audio/webm",
        "audio/flac",
        "text/plain",
    }
)
#: Other names of those types, among them those the catalog sniffs (puremagic calls a WAV file
#: ``audio/wave``, a BMP ``image/x-ms-bmp``): served under the name browsers know (Chromium
#: saves an ``audio/wave`` file it is sent to instead of playing it).
ALIASES = {
    "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "audio/x-wav": "audio/wav",
    "image/x-ms-bmp": "image/bmp",
}
#: What a served file's own document may do if a browser opens it: nothing but show the file.
#: The browser's own viewer of a picture, a video or a text styles its document inline, and its
#: player loads the video again from the file's address: so inline style is allowed, and the
#: sandbox keeps the document's origin (without it, Chromium's player is refused the video as
#: a request from no origin).  The sandbox still runs no script, no form, no plugin, no popup.
FILE_POLICY = (
    "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox allow-same-origin"
)
_CHUNK = 256 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def display_type(media_type: str) -> str | None:
    """The type a file is served as for display, or ``None`` when it is offered as a download."""
    base = media_type.split(";")[0].strip().lower()
    base = ALIASES.get(base, base)
    return base if base in INLINE_TYPES else None


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """The one byte range ``(first, last)`` (inclusive) a ``Range`` header asks for; ``None``
    for the whole file (no header, several ranges, or a unit other than bytes: a server may
    answer those with the whole file); ``"unsatisfiable"`` when the range starts past the end."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:  # the last N bytes
        length = int(last_text)
        if length == 0:
            return "unsatisfiable"
        return (max(0, size - length), size - 1) if size else "unsatisfiable"
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if first >= size:
        return "unsatisfiable"
    if last < first:
        return None
    return first, min(last, size - 1)


def file_response(
    *,
    open_blob: Callable[[], BinaryIO],
    sha256: str,
    size: int,
    media_type: str,
    filename: str,
    range_header: str | None,
    if_range: str | None,
    head: bool = False,
) -> Response:
    """The response serving a stored file (a 206 for a satisfiable single range)."""
    shown = display_type(media_type)
    etag = f'"{sha256}"'
    quoted = urllib.parse.quote(filename, safe="")
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Content-Disposition": f"{'inline' if shown else 'attachment'}; filename*=UTF-8''{quoted}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": FILE_POLICY,
        "Cache-Control": "no-store",
        "Cross-Origin-Resource-Policy": "same-origin",
    }
    content_type = (
        (shown + ("; charset=utf-8" if shown == "text/plain" else "")) if shown else "application/octet-stream"
    )
    wanted = parse_range(range_header, size) if (if_range is None or if_range == etag) else None
    if isinstance(wanted, str):  # unsatisfiable
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    first, last = (0, size - 1) if wanted is None else wanted
    status = 200 if wanted is None else 206
    if status == 206:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    length = max(0, last - first + 1)
    headers["Content-Length"] = str(length)
    stream = _opened(open_blob, size)  # before any status is sent: a missing file is no 200
    if head or length == 0:
        stream.close()
        return Response(status_code=status, headers=headers, media_type=content_type)
    return StreamingResponse(_read(stream, first, length), status_code=status, headers=headers, media_type=content_type)


def _opened(open_blob: Callable[[], BinaryIO], size: int) -> BinaryIO:
    """The stored file, open; :class:`NotFoundError` when the blob store does not hold it, and
    :class:`IntegrityError` when it is a local file of another size than recorded."""
    from evidence_catalog.errors import IntegrityError, NotFoundError

    try:
        stream = open_blob()
    except FileNotFoundError as exc:
        raise NotFoundError(
            "the stored file is missing from the blob store; run `evidence-catalog verify`", where="blob store"
        ) from exc
    try:
        found = os.fstat(stream.fileno()).st_size
    except (OSError, AttributeError, ValueError):  # not a local file (an object store's reader)
        return stream
    if found != size:
        stream.close()
        raise IntegrityError(
            f"the stored file's size is {found} bytes, not the {size} recorded; run `evidence-catalog verify`",
            where="blob store",
        )
    return stream


def _read(stream: BinaryIO, first: int, length: int) -> Iterator[bytes]:
    """*length* bytes from *first* (read in a worker thread by Starlette, a chunk at a time)."""
    with stream:
        if first:
            stream.seek(first)
        left = length
        while left > 0:
            chunk = stream.read(min(_CHUNK, left))
            if not chunk:  # shorter than recorded: the connection ends short, as it must
                raise OSError("the stored file is shorter than its recorded size; run verify")
            left -= len(chunk)
            yield chunk


# -- thumbnails ------------------------------------------------------------------------------

#: The longest side of a thumbnail, pixels.
THUMBNAIL_SIDE = 320
#: The largest picture a thumbnail is made of (pixels), and the child's limits.
THUMBNAIL_MAX_PIXELS = 200_000_000
THUMBNAIL_MEMORY = 1024 * 1024 * 1024
THUMBNAIL_SECONDS = 20
#: Thumbnails made at once: each child may take THUMBNAIL_MEMORY, and a page of pictures (or a
#: script) asks for many at once.
THUMBNAIL_WORKERS = 2
_CHILD = Path(__file__).with_name("thumbnail_child.py")


class Thumbnails:
    """Thumbnails made on demand, in a sandboxed child per picture, and kept in memory (least
    recently used dropped past *budget* bytes).  Nothing is written to the catalog."""

    def __init__(self, budget: int = 64 * 1024 * 1024, workers: int = THUMBNAIL_WORKERS) -> None:
        self.budget = budget
        self._kept: collections.OrderedDict[str, bytes | None] = collections.OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self._workers = threading.BoundedSemaphore(workers)
        #: SHA-256 -> (the lock of the one request making it, how many requests want it).
        self._making: dict[str, tuple[threading.Lock, list[int]]] = {}

    def _cached(self, sha256: str) -> tuple[bool, bytes | None]:
        with self._lock:
            if sha256 in self._kept:
                self._kept.move_to_end(sha256)
                return True, self._kept[sha256]
        return False, None

    def get(self, sha256: str, local_copy: Callable[[], object]) -> bytes | None:
        """The JPEG thumbnail of the picture stored under *sha256* (``None`` when it cannot be
        decoded); *local_copy* gives a context manager yielding the stored file's path.  At
        most ``workers`` are made at once; a picture asked for again meanwhile waits for it."""
        found, made = self._cached(sha256)
        if found:
            return made
        with self._lock:
            own, waiting = self._making.setdefault(sha256, (threading.Lock(), [0]))
            waiting[0] += 1
        try:
            with own:
                found, made = self._cached(sha256)  # made while this request waited
                if found:
                    return made
                with self._workers:
                    made = self._make(local_copy)
                self._keep(sha256, made)
                return made
        finally:
            with self._lock:
                waiting[0] -= 1
                if not waiting[0]:
                    del self._making[sha256]

    def _keep(self, sha256: str, made: bytes | None) -> None:
        with self._lock:
            if sha256 not in self._kept:
                self._kept[sha256] = made
                self._size += len(made or b"")
            while self._size > self.budget and self._kept:
                _, dropped = self._kept.popitem(last=False)
                self._size -= len(dropped or b"")

    def _make(self, local_copy: Callable[[], object]) -> bytes | None:
        from evidence_catalog.extract.sandbox import run_script

        with local_copy() as path:  # type: ignore[attr-defined]
            args = [
                str(Path(path).absolute()),
                str(THUMBNAIL_SIDE),
                str(THUMBNAIL_MAX_PIXELS),
                str(THUMBNAIL_MEMORY),
                str(THUMBNAIL_SECONDS),
            ]
            done, _ = run_script(
                _CHILD,
                args,
                preload=("PIL.Image:init",),
                seconds=THUMBNAIL_SECONDS,
                reader="thumbnail maker",
                nothing="no thumbnail was made",
            )
        if done is None or done.returncode != 0 or not done.stdout.startswith(b"\xff\xd8"):
            return None
        return bytes(done.stdout)


__all__ = ["FILE_POLICY", "INLINE_TYPES", "Thumbnails", "display_type", "file_response", "parse_range"]
