"""A WARC file of the HTTP exchanges a capture makes, written while they happen (warcio).

:class:`WarcRecorder` knows nothing of yt-dlp or of any HTTP library: whoever makes requests
tells it what was sent and what came back, block by block as it is read (see
:mod:`evidence_catalog.capture.recording` for yt-dlp's requests; a browser's network log can
drive it the same way).  Each exchange becomes, once its response is over:

* a ``request`` record (the request line and headers as sent, the body if any), and
* a ``response`` record (status line, headers, and the body exactly as it came off the
  connection: still compressed when the server compressed it, as replay tools expect), with
  ``WARC-Concurrent-To`` linking the two; or, when no response came (connection refused, a
  time-out, a name that does not resolve), a ``metadata`` record saying what failed and why.

A body is spooled to a temporary file as it is read (never held in memory) and hashed on the
way; the record is written from the spool when the body ends, when its reader gives up on it or
when the recording ends.  A body not read to its end is recorded as far as it was read, with
``WARC-Truncated`` (``disconnect`` or ``time`` when reading failed, ``unspecified`` when the
reader stopped).

Digests (``WARC-Block-Digest``, ``WARC-Payload-Digest``) are SHA-256 in hexadecimal,
``sha256:<64 hex digits>``: accepted by ``warcio check`` and the form ReplayWeb.page's own
recorder writes, and the payload digest of a media response is then the catalog's SHA-256 of the
media file it became, when it came whole in one response (not resumed, not fetched in ranges).

Credentials never reach the file: the values of the headers in :data:`WITHHELD_HEADERS` are
replaced by :data:`~evidence_catalog.model.WITHHELD` (the header names are kept), and so are the
values of cookies wherever else they appear (*secrets*: an extractor copies a cookie into a
header of its own, a query string or a request body), and the ``warcinfo`` record says so.
Response bodies are kept as received.  Each record is its own gzip member (``.warc.gz``);
bodies that do not compress (media) are stored in it uncompressed, which costs no time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import io
import os
import tempfile
import threading
import urllib.parse
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from evidence_catalog.model import WITHHELD

__all__ = ["WITHHELD_HEADERS", "Exchange", "RecordedResponse", "WarcRecorder", "secret_forms", "withhold"]

#: Headers whose values never reach a WARC (credentials: a session cookie logs anyone in).
WITHHELD_HEADERS = ("Authorization", "Cookie", "Proxy-Authorization", "Set-Cookie", "Set-Cookie2")
_WITHHELD_LOWER = frozenset(name.lower() for name in WITHHELD_HEADERS)

#: Secrets shorter than this are not looked for elsewhere (a cookie ``1`` or ``en`` is in many
#: URLs and is no credential); their headers are withheld all the same.
SECRET_MIN_LENGTH = 8

#: What the ``warcinfo`` record and the WACZ say about withheld values.
WITHHELD_NOTE = (
    f"the values of the HTTP headers {', '.join(WITHHELD_HEADERS)} are replaced by {WITHHELD!r}"
    " (the header names are kept), and so is every cookie value of at least"
    f" {SECRET_MIN_LENGTH} characters found elsewhere: the whole value of a header that holds it,"
    " the value itself in a URL or a request body (response bodies are kept as received)"
)

#: Bodies up to this size are spooled in memory, larger ones in a temporary file.
SPOOL_IN_MEMORY = 1024 * 1024
_COPY_BLOCK = 1024 * 1024

#: Media types worth compressing (the rest -- video, audio, images, archives -- is stored as is).
_COMPRESSIBLE = (
    "text/",
    "application/json",
    "application/ld+json",
    "application/javascript",
    "application/x-javascript",
    "application/xml",
    "application/xhtml+xml",
    "application/rss+xml",
    "application/atom+xml",
    "application/dash+xml",
    "application/vnd.apple.mpegurl",
    "application/x-mpegurl",
    "image/svg+xml",
)


def secret_forms(secrets: Iterable[str]) -> tuple[str, ...]:
    """The forms in which *secrets* (cookie values) are looked for: as they are, and
    percent-encoded, those of at least :data:`SECRET_MIN_LENGTH` characters, longest first."""
    forms: set[str] = set()
    for secret in secrets:
        if len(secret) >= SECRET_MIN_LENGTH:
            forms.update((secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)))
    return tuple(sorted(forms, key=lambda form: (-len(form), form)))


def withhold(
    headers: Iterable[tuple[str, str]], secrets: Sequence[str] = ()
) -> tuple[list[tuple[str, str]], list[str]]:
    """*headers* with the values of :data:`WITHHELD_HEADERS`, and those that hold one of
    *secrets* (see :func:`secret_forms`), replaced; and the names replaced."""
    kept: list[tuple[str, str]] = []
    withheld: list[str] = []
    for name, value in headers:
        if str(name).lower() in _WITHHELD_LOWER or any(form in str(value) for form in secrets):
            kept.append((str(name), WITHHELD))
            withheld.append(str(name))
        else:
            kept.append((str(name), str(value)))
    return kept, withheld


def _replace_secrets(text: str, secrets: Sequence[str], marker: str) -> str:
    for form in secrets:
        text = text.replace(form, marker)
    return text


def _sha256_label(hasher: Any) -> str:
    return f"sha256:{hasher.hexdigest()}"


def warc_date(moment: dt.datetime) -> str:
    """A WARC 1.1 date (UTC, microseconds)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Digester:
    """warcio's digester, SHA-256 in hexadecimal (for the records warcio digests itself)."""

    def __init__(self, *_: object) -> None:
        self._hash = hashlib.sha256()

    def update(self, data: bytes) -> None:
        self._hash.update(data)

    def __str__(self) -> str:
        return _sha256_label(self._hash)


class _Member:
    """One gzip member of the WARC file: one record (as ``.warc.gz`` readers expect)."""

    def __init__(self, out: _HashingFile, level: int) -> None:
        self._out = out
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, zlib.MAX_WBITS + 16)

    def write(self, data: bytes) -> None:
        self._out.write(self._compressor.compress(data))

    def flush(self) -> None:
        self._out.write(self._compressor.flush())


class _HashingFile:
    """The WARC file, hashed as it is written (it is only ever appended to)."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "xb")  # noqa: SIM115 -- closed by close()
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self.hash.update(data)
        self.size += len(data)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class RecordedResponse:
    """A response written to the WARC: where, what, when (for the WACZ's list of pages)."""

    def __init__(self, url: str, status: int, media_type: str, date: str, record_id: str) -> None:
        self.url = url
        self.status = status
        self.media_type = media_type
        self.date = date
        self.record_id = record_id


class Exchange:
    """One HTTP exchange being recorded: a request, then its response and body as they come."""

    def __init__(
        self,
        recorder: WarcRecorder,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
        protocol: str,
        secrets: Sequence[str] = (),
    ) -> None:
        self._recorder = recorder
        self._secrets = secrets
        self.method = method.upper()
        self.url = url
        self.request_headers = headers
        self.request_body = body
        self.protocol = protocol
        self.date = warc_date(recorder.clock())
        self.status: int | None = None
        self._response_head: Any = None
        self._spool: IO[bytes] | None = None
        self._payload = hashlib.sha256()
        self._block = hashlib.sha256()
        self.received = 0
        self._expected: int | None = None
        self._eof = False
        self._truncated: str | None = None
        self.done = False
        self._lock = threading.Lock()

    def respond(self, status: int, reason: str, headers: Sequence[tuple[str, str]], protocol: str = "HTTP/1.1") -> None:
        """The response's status line and headers arrived."""
        kept, withheld = withhold(headers, self._secrets)
        self._recorder.note_withheld(withheld)
        head = _head_class()(f"{int(status)} {reason or ''}".strip(), kept, protocol=protocol or "HTTP/1.1")
        head.compute_headers_buffer()
        with self._lock:
            self.status = int(status)
            self._response_head = head
            self._block.update(head.headers_buff)
            self._spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115 -- closed by finish() or discard()
                SPOOL_IN_MEMORY, dir=os.fspath(self._recorder.spool_dir)
            )
            self._expected = _expected_length(self.method, self.status, head)

    def body(self, data: bytes) -> None:
        """The next bytes of the response body, as they were read off the connection."""
        if not data:
            return
        with self._lock:
            if self._spool is None or self.done or self._recorder.broken is not None:
                return
            try:
                self._spool.write(data)
            except OSError as exc:  # our own disk: said when the recording ends, not as a network error
                self._recorder.broken = exc
                return
            self._payload.update(data)
            self._block.update(data)
            self.received += len(data)

    def end(self) -> None:
        """The body ended (its reader saw the end of it)."""
        self._eof = True

    def interrupted(self, reason: str) -> None:
        """Reading the body failed (``"time"`` for a time-out, else ``"disconnect"``)."""
        if self._truncated is None:
            self._truncated = reason

    @property
    def short(self) -> bool:
        """Whether fewer bytes were recorded than the response announced (a body read to the
        close of its connection announces none)."""
        return self._expected is not None and self.received < self._expected

    @property
    def whole(self) -> bool:
        """Whether every byte of the body was recorded."""
        if self._expected is not None:
            return self.received >= self._expected
        return self._eof and self._truncated is None

    def finish(self) -> None:
        """Write this exchange's records (once; later calls do nothing)."""
        with self._lock:
            if self.done:
                return
            self.done = True
        if self._response_head is None:
            self._recorder._write_failure(self, self._truncated or "no response was received")
            return
        truncated = None if self.whole else (self._truncated or "unspecified")
        try:
            self._recorder._write_exchange(self, truncated)
        finally:
            if self._spool is not None:
                with contextlib.suppress(OSError):
                    self._spool.close()

    def fail(self, reason: str) -> None:
        """No response came: record the request and why it failed."""
        with self._lock:
            if self.done:
                return
            self.done = True
        self._recorder._write_failure(self, reason)

    # -- for the recorder ------------------------------------------------------------------

    def _records_inputs(self) -> tuple[Any, IO[bytes], int, str, str]:
        assert self._spool is not None
        self._spool.seek(0)
        return self._response_head, self._spool, self.received, _sha256_label(self._payload), _sha256_label(self._block)


@functools.cache
def _head_class() -> Any:
    """warcio's HTTP head, written as the bytes that went over the connection."""
    from warcio.statusandheaders import StatusAndHeaders

    class Head(StatusAndHeaders):  # type: ignore[misc]
        """``http.client`` reads a head as ISO-8859-1 and ``requests`` writes one so: encoded so
        again, it is the bytes that were sent.  (warcio's own would percent-encode a value that
        is not ASCII, and fail on such a status line or header name -- a server chooses them.)"""

        def compute_headers_buffer(self, header_filter: Any = None) -> None:
            text = self.to_str(header_filter)
            try:
                data = text.encode("iso-8859-1")
            except UnicodeEncodeError:  # not read off a connection: as UTF-8
                data = text.encode("utf-8", "backslashreplace")
            self.headers_buff = data + b"\r\n"

    return Head


def _expected_length(method: str, status: int, head: Any) -> int | None:
    """How many body bytes a response announces (0 for one that has none), else ``None``."""
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return 0
    if "chunked" in (head.get_header("Transfer-Encoding") or "").lower():
        return None
    length = (head.get_header("Content-Length") or "").strip()
    return int(length) if length.isdigit() else None


class WarcRecorder:
    """A WARC file being written, one exchange after another (thread-safe).

    *path* is made (it must not exist); the ``warcinfo`` record that opens it names the
    *software* and says what was withheld; *info* adds lines to it.  Close it with
    :meth:`close` once every request is over; what was never finished is written then.
    """

    def __init__(
        self,
        path: Path,
        *,
        software: str,
        info: dict[str, str] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        from warcio.warcwriter import WARCWriter

        class Writer(WARCWriter):  # type: ignore[misc]
            _create_digester = staticmethod(_Digester)

        self.path = path
        self.spool_dir = path.parent
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        #: When the recording started.
        self.started = self.clock()
        self._file = _HashingFile(path)
        self._writer = Writer(self._file, gzip=False, warc_version="WARC/1.1")
        self._lock = threading.Lock()
        self._open: list[Exchange] = []
        self.responses: list[RecordedResponse] = []
        self.failures: list[tuple[str, str]] = []
        self.withheld: set[str] = set()
        #: Where else in requests secrets were withheld (``"URLs"``, ``"bodies"``).
        self.withheld_elsewhere: set[str] = set()
        self.exchanges = 0
        #: What went wrong writing the WARC (our own disk): the recording stopped there, and
        #: :meth:`close` raises it.
        self.broken: OSError | None = None
        fields = {
            "software": software,
            "format": "WARC File Format 1.1",
            "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
            "withheld": WITHHELD_NOTE,
            **(info or {}),
        }
        record = self._writer.create_warcinfo_record(path.name, fields)
        self._write(record, level=6)

    def exchange(
        self,
        method: str,
        url: str,
        headers: Iterable[tuple[str, str]],
        body: bytes | None = None,
        protocol: str = "HTTP/1.1",
        secrets: Iterable[str] = (),
    ) -> Exchange:
        """A request about to be sent: its method, URL, headers and body.  The values of
        credentials are withheld here: those of :data:`WITHHELD_HEADERS`, and *secrets* (the
        values of the cookies the client holds) wherever they are in the request or in the
        headers of its response."""
        forms = secret_forms(secrets)
        kept, withheld = withhold(headers, forms)
        self.note_withheld(withheld)
        if forms:
            withheld_url = _replace_secrets(url, forms, urllib.parse.quote(WITHHELD, safe=""))
            if withheld_url != url:
                url = withheld_url
                self.withheld_elsewhere.add("URLs")
            if body:
                withheld_body = body
                for form in forms:
                    withheld_body = withheld_body.replace(form.encode("utf-8"), WITHHELD.encode("utf-8"))
                if withheld_body != body:
                    body = withheld_body
                    self.withheld_elsewhere.add("bodies")
        exchange = Exchange(self, method, url, kept, body, protocol, forms)
        with self._lock:
            self._open.append(exchange)
            self.exchanges += 1
        return exchange

    def note_withheld(self, names: Iterable[str]) -> None:
        for name in names:
            self.withheld.add(name.title())

    def close(self) -> None:
        """Finish every exchange still open (recorded as far as it was read) and close the file."""
        with self._lock:
            pending, self._open = self._open, []
        for exchange in pending:
            exchange.finish()
        self._file.close()
        if self.broken is not None:
            raise self.broken

    def discard(self) -> None:
        """Stop recording without finishing anything (a capture that failed)."""
        with self._lock:
            pending, self._open = self._open, []
        for exchange in pending:
            if exchange._spool is not None:
                with contextlib.suppress(OSError):
                    exchange._spool.close()
        with contextlib.suppress(OSError):
            self._file.close()

    # -- records ---------------------------------------------------------------------------

    def _request_record(self, exchange: Exchange, concurrent_to: str) -> Any:
        parts = urllib.parse.urlsplit(exchange.url)
        target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        head = _head_class()(
            f"{exchange.method} {target} {exchange.protocol}", exchange.request_headers, is_http_request=True
        )
        body = exchange.request_body or b""
        return self._writer.create_warc_record(
            exchange.url,
            "request",
            payload=io.BytesIO(body),
            length=len(body),
            http_headers=head,
            warc_headers_dict={"WARC-Date": exchange.date, "WARC-Concurrent-To": concurrent_to},
        )

    def _write_exchange(self, exchange: Exchange, truncated: str | None) -> None:
        head, spool, size, payload_digest, block_digest = exchange._records_inputs()
        warc_headers = {
            "WARC-Date": exchange.date,
            "WARC-Payload-Digest": payload_digest,
            "WARC-Block-Digest": block_digest,
        }
        if truncated is not None:
            warc_headers["WARC-Truncated"] = truncated
        response = self._writer.create_warc_record(
            exchange.url, "response", payload=spool, length=size, http_headers=head, warc_headers_dict=warc_headers
        )
        record_id = response.rec_headers.get_header("WARC-Record-ID")
        media_type = (head.get_header("Content-Type") or "").split(";")[0].strip().lower()
        compress = media_type.startswith(_COMPRESSIBLE) and not head.get_header("Content-Encoding")
        with self._lock:
            self._write(response, level=6 if compress else 0)
            self._write(self._request_record(exchange, record_id), level=6)
            self._forget(exchange)
            self.responses.append(
                RecordedResponse(exchange.url, exchange.status or 0, media_type, exchange.date, record_id)
            )

    def _write_failure(self, exchange: Exchange, reason: str) -> None:
        note = f"error: {' '.join(reason.split())}\r\n".encode()
        metadata = self._writer.create_warc_record(
            exchange.url,
            "metadata",
            payload=io.BytesIO(note),
            length=len(note),
            warc_content_type="application/warc-fields",
            warc_headers_dict={"WARC-Date": exchange.date},
        )
        record_id = metadata.rec_headers.get_header("WARC-Record-ID")
        with self._lock:
            self._write(self._request_record(exchange, record_id), level=6)
            self._write(metadata, level=6)
            self._forget(exchange)
            self.failures.append((exchange.url, reason))

    def _forget(self, exchange: Exchange) -> None:
        if exchange in self._open:
            self._open.remove(exchange)

    @property
    def digest(self) -> tuple[str, int]:
        """The WARC file's SHA-256 (``sha256:<hex>``) and size, as written so far."""
        return _sha256_label(self._file.hash), self._file.size

    def _write(self, record: Any, *, level: int) -> None:
        if self.broken is not None:
            return
        try:
            self._writer.out = _Member(self._file, level)
            self._writer.write_record(record)
        except OSError as exc:
            self.broken = exc
