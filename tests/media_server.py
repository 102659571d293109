"""A real HTTP server on 127.0.0.1 for capture tests and benchmarks: no internet needed.

Each path is a :class:`Route`: bytes (or a file) with a media type, or a misbehaviour -- an error
status, a redirect, a body cut short of its Content-Length, a server that never answers.  Routes
can be changed while the server runs (a platform re-encoding a video), and every request is
logged with its headers.

    with MediaServer() as server:
        server.route("/clip.mp4", Route(body=data, media_type="video/mp4"))
        url = server.url("/clip.mp4")
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs


@attrs.define
class Route:
    """What one path answers."""

    body: bytes = b""
    media_type: str = "application/octet-stream"
    status: int = 200
    #: Serve this file instead of ``body`` (streamed with sendfile: for large benchmarks).
    file: Path | None = None
    #: Redirect to this path (with ``status`` 302 unless given otherwise, and ``body``).
    redirect: str | None = None
    #: Send only this many bytes of the body, then close (Content-Length still says all of it).
    truncate_at: int | None = None
    #: Wait this long before answering (a dead server, from the client's side).
    delay: float = 0.0
    headers: dict[str, str] = attrs.field(factory=dict)
    #: Send no Content-Length: the body ends when the connection closes.
    unannounced: bool = False
    #: The reason phrase of the status line (the standard one when ``None``).
    reason: str | None = None
    #: Send the body in HTTP/1.1 chunks of this many bytes (no Content-Length).
    chunked: int | None = None


@attrs.frozen
class Seen:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]


class MediaServer:
    """A threaded HTTP/1.0 server on an ephemeral loopback port."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                self._answer(send_body=False)

            def do_GET(self) -> None:
                self._answer(send_body=True)

            def do_POST(self) -> None:  # an API call: its body is read, and answered like a GET
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._answer(send_body=True)

            def _answer(self, *, send_body: bool) -> None:
                path = self.path.split("?", 1)[0]
                with server._lock:
                    server.requests.append(Seen(self.command, self.path, dict(self.headers.items())))
                    route = server.routes.get(path)
                if route is None:
                    self._plain(404, b"not found\n", send_body)
                    return
                if route.delay:
                    time.sleep(route.delay)
                if route.redirect is not None:
                    self.send_response(route.status if route.status != 200 else 302)
                    self.send_header("Location", route.redirect)
                    self.send_header("Content-Length", str(len(route.body)))  # a "moved" page, if any
                    if route.body:
                        self.send_header("Content-Type", route.media_type)
                    for name, value in route.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    if send_body:
                        self.wfile.write(route.body)
                    return
                size = route.file.stat().st_size if route.file is not None else len(route.body)
                start, end = 0, size
                status = route.status
                wanted = self.headers.get("Range")
                if wanted and wanted.startswith("bytes=") and status == 200:
                    first, _, last = wanted[6:].partition("-")
                    start = int(first or 0)
                    end = min(size, int(last) + 1) if last else size
                    status = 206
                if route.chunked is not None:
                    self._chunked(route, status, send_body)
                    return
                self.send_response(status, route.reason)
                self.send_header("Content-Type", route.media_type)
                if not route.unannounced:
                    self.send_header("Content-Length", str(end - start))
                self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if not send_body:
                    return
                stop = end if route.truncate_at is None else min(end, start + route.truncate_at)
                try:
                    if route.file is not None:
                        with open(route.file, "rb") as stream:
                            offset = start
                            while offset < stop:
                                sent = os.sendfile(self.connection.fileno(), stream.fileno(), offset, stop - offset)
                                if sent == 0:
                                    break
                                offset += sent
                    else:
                        self.wfile.write(route.body[start:stop])
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                if route.truncate_at is not None:
                    self.close_connection = True

            def _chunked(self, route: Route, status: int, send_body: bool) -> None:
                self.protocol_version = "HTTP/1.1"
                self.close_connection = True
                self.send_response(status)
                self.send_header("Content-Type", route.media_type)
                self.send_header("Transfer-Encoding", "chunked")
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if send_body:
                    size = route.chunked or 1
                    for start in range(0, len(route.body), size):
                        piece = route.body[start : start + size]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")

            def _plain(self, status: int, body: bytes, send_body: bool) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if send_body:
                    self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, route: Route) -> str:
        """Answer *path* with *route* from now on; return its URL."""
        with self._lock:
            self.routes[path] = route
        return self.url(path)

    def seen(self, path: str) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.path.split("?", 1)[0] == path]

    def __enter__(self) -> MediaServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def media_server() -> Iterator[MediaServer]:
    with MediaServer() as server:
        yield server


def video_page(video_url: str, *, title: str, thumbnail_url: str | None = None) -> bytes:
    """An HTML page that yt-dlp's generic extractor resolves to *video_url* (Open Graph and a
    ``<video>`` element, as news sites and small platforms publish them)."""
    thumbnail = f'\n<meta property="og:image" content="{thumbnail_url}">' if thumbnail_url else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{title}</title>
<meta property="og:title" content="{title}">
<meta property="og:type" content="video.other">
<meta property="og:video" content="{video_url}">
<meta property="og:video:type" content="video/mp4">{thumbnail}
</head><body>
<h1>{title}</h1>
<video controls src="{video_url}"></video>
</body></html>
""".encode()
