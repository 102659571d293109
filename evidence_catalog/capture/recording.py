"""yt-dlp's HTTP exchanges recorded into a :class:`~evidence_catalog.capture.warc.WarcRecorder`
as yt-dlp makes them: the page, the API calls, the media, each hop of a redirect, and the
attempts that failed.  Nothing is fetched a second time for the archive.

yt-dlp sends HTTP(S) through its ``requests`` network handler (``RequestsRH``, the handler it
prefers), which sends each hop of a request through a ``requests`` transport adapter.
:func:`attach` wraps that adapter's ``send`` in every session the handler makes:

* the request is recorded as it goes out (the prepared request's headers, plus ``Host`` as
  ``http.client`` adds it), and a failure to get any response (connection refused, a time-out,
  a TLS error) is recorded with its reason;
* the response's status line and headers as received (``http.client``'s list, duplicates and
  order kept), and its body *as read off the connection*: the two methods of urllib3's response
  through which every raw byte of a body passes (``_fp_read`` for a body of known length or
  read to its close, ``_handle_chunk`` for a chunked one) are wrapped, so that the bytes are
  recorded before urllib3 decompresses them, whoever reads them (the extractor, the media
  downloader, ``requests`` draining a redirect).

A request that yt-dlp sends through another handler (one it chooses for a request ``requests``
cannot make: a WebSocket, an impersonated browser) is not recorded byte for byte: the WARC gets
a ``metadata`` record naming it, so that its absence is visible.  Those two urllib3 methods are
private: ``tests/test_web_archive.py`` fails if a urllib3 release renames them, rather than the
archive silently missing bodies.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from evidence_catalog.capture.warc import Exchange, WarcRecorder

__all__ = ["attach"]

Current = Callable[[], WarcRecorder | None]
Secrets = Callable[[], Iterable[str]]

_SENT = threading.local()
_VERSIONS = {9: "HTTP/0.9", 10: "HTTP/1.0", 11: "HTTP/1.1", 20: "HTTP/2", 30: "HTTP/3"}


def attach(director: Any, current: Current, secrets: Secrets = tuple) -> None:
    """Make yt-dlp's request *director* record every exchange into ``current()`` (when it is
    not ``None``: a capture without an archive records nothing), withholding ``secrets()``
    (the values of the cookies yt-dlp holds when the request is made) wherever they are."""
    handler = director.handlers.get("Requests")
    if handler is not None:
        make = handler._create_instance

        def create_instance(**kwargs: Any) -> Any:
            session = make(**kwargs)
            for adapter in set(session.adapters.values()):
                _wrap_adapter(adapter, current, secrets)
            return session

        handler._create_instance = create_instance
    send = director.send

    def recording_send(request: Any) -> Any:
        recorder = current()
        before = getattr(_SENT, "count", 0)

        def unrecorded() -> bool:
            return recorder is not None and _http(request.url) and getattr(_SENT, "count", 0) == before

        try:
            response = send(request)
        except BaseException as exc:
            if unrecorded():
                assert recorder is not None
                _not_recorded(recorder, request, f"not sent: {type(exc).__name__}: {exc}", secrets())
            raise
        if unrecorded():
            assert recorder is not None
            _not_recorded(recorder, request, "sent through a network handler of yt-dlp that is not recorded", secrets())
        return response

    director.send = recording_send


def _http(url: object) -> bool:
    """Whether *url* is one of the network's (HTTP, and WebSocket, which starts as HTTP)."""
    return isinstance(url, str) and url.lower().startswith(("http:", "https:", "ws:", "wss:"))


def _not_recorded(recorder: WarcRecorder, request: Any, reason: str, secrets: Iterable[str]) -> None:
    headers = [(str(k), str(v)) for k, v in (getattr(request, "headers", None) or {}).items()]
    method = str(getattr(request, "method", "GET") or "GET")
    recorder.exchange(method, request.url, headers, secrets=secrets).fail(reason)


def _wrap_adapter(adapter: Any, current: Current, secrets: Secrets) -> None:
    send = adapter.send

    def recording_send(request: Any, *args: Any, **kwargs: Any) -> Any:
        recorder = current()
        if recorder is None:
            return send(request, *args, **kwargs)
        _SENT.count = getattr(_SENT, "count", 0) + 1
        exchange = recorder.exchange(
            request.method or "GET", request.url, sent_headers(request), _body(request), secrets=secrets()
        )
        try:
            response = send(request, *args, **kwargs)
        except BaseException as exc:
            exchange.fail(f"{type(exc).__name__}: {exc}")
            raise
        try:
            _tap(response.raw, exchange)
        except Exception as exc:  # noqa: BLE001 -- whatever the recorder raised, the exchange goes on
            # The recording's own failure, not the exchange's: raised here, yt-dlp would take
            # the response for a failed one and fetch it again through another handler.  The
            # exchange goes on unrecorded, and the archive says so.
            with contextlib.suppress(Exception):
                exchange.fail(f"the response could not be recorded: {type(exc).__name__}: {exc}")
        except BaseException:
            exchange.finish()
            raise
        return response

    adapter.send = recording_send


def sent_headers(request: Any) -> list[tuple[str, str]]:
    """The headers of a prepared request as ``http.client`` sends them: ``Host`` first (when the
    request does not set it), then the request's own."""
    headers = [(str(k), str(v)) for k, v in request.headers.items()]
    if not any(name.lower() == "host" for name, _ in headers):
        parts = urllib.parse.urlsplit(request.url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        default = 443 if parts.scheme == "https" else 80
        if parts.port is not None and parts.port != default:
            host = f"{host}:{parts.port}"
        headers.insert(0, ("Host", host))
    return headers


def _body(request: Any) -> bytes | None:
    body = request.body
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    return None


def _response_headers(raw: Any) -> list[tuple[str, str]]:
    original = getattr(raw, "_original_response", None)
    message = getattr(original, "msg", None)
    if message is not None and hasattr(message, "items"):
        return [(str(k), str(v)) for k, v in message.items()]
    return [(str(k), str(v)) for k, v in raw.headers.items()]


def _truncation(exc: BaseException) -> str:
    text = f"{type(exc).__name__} {exc}".lower()
    return "time" if isinstance(exc, socket.timeout | TimeoutError) or "timed out" in text else "disconnect"


def _ended(raw: Any) -> bool:
    """Whether ``http.client`` saw the end of the body of urllib3's response *raw*: it closes
    its response there (the announced length read, a chunked body's last chunk read -- in the
    same read as the data before it, so that no empty read follows -- or the connection's end
    for a body read to its close), and raises when the body is cut short."""
    original = getattr(raw, "_original_response", None)
    return original is not None and bool(original.isclosed())


def _tap(raw: Any, exchange: Exchange) -> None:
    """Record the status, headers and raw body bytes of urllib3's response *raw*."""
    exchange.respond(
        int(raw.status), str(raw.reason or ""), _response_headers(raw), _VERSIONS.get(raw.version, "HTTP/1.1")
    )
    fp_read = raw._fp_read
    handle_chunk = raw._handle_chunk
    read_chunked = raw.read_chunked
    close = raw.close
    release = raw.release_conn

    def failed(exc: BaseException) -> None:
        if not isinstance(exc, GeneratorExit):
            exchange.interrupted(_truncation(exc))
            exchange.finish()

    def tapped_fp_read(amt: int | None = None, **kwargs: Any) -> bytes:
        try:
            data: bytes = fp_read(amt, **kwargs)
        except BaseException as exc:
            failed(exc)
            raise
        exchange.body(data)
        if amt != 0 and not data and exchange.short:
            # The connection closed before the length the server announced (urllib3 raises
            # IncompleteRead after this returns): cut by the server, not left by the reader.
            exchange.interrupted("disconnect")
        if (amt is None and not kwargs.get("read1")) or (amt != 0 and not data) or _ended(raw):
            exchange.end()
            exchange.finish()
        elif exchange.whole:
            exchange.finish()
        return data

    def tapped_handle_chunk(amt: int | None) -> bytes:
        try:
            data: bytes = handle_chunk(amt)
        except BaseException as exc:
            failed(exc)
            raise
        exchange.body(data)
        return data

    def tapped_read_chunked(*args: Any, **kwargs: Any) -> Any:
        try:
            yield from read_chunked(*args, **kwargs)
        except BaseException as exc:
            failed(exc)
            raise
        exchange.end()
        exchange.finish()

    def tapped_close() -> None:
        try:
            close()
        finally:
            exchange.finish()

    def tapped_release() -> None:
        try:
            release()
        finally:
            if raw._fp is None or getattr(raw._fp, "fp", None) is None or raw.closed:
                exchange.finish()

    raw._fp_read = tapped_fp_read
    raw._handle_chunk = tapped_handle_chunk
    raw.read_chunked = tapped_read_chunked
    raw.close = tapped_close
    raw.release_conn = tapped_release
