"""Ingesting feeds from http(s) URLs, media fields of feed entries, ``capture_media`` and
``keep_going``: real HTTP on 127.0.0.1 (``tests/media_server.py`` and a byte-for-byte scripted
server below), real feeds parsed by feedparser, real media captured by yt-dlp, real catalogs.

Nothing here needs the internet.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import socket
import socketserver
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from evidence_catalog import Agent, Catalog, model
from evidence_catalog.capture import CaptureOptions
from evidence_catalog.errors import InputError, NetworkError
from evidence_catalog.ingest import fetch
from evidence_catalog.ingest.fetch import WITHHELD, WITHHELD_SET_COOKIE
from tests.conftest import FixedClock, make_jpeg
from tests.media_server import MediaServer, Route

DATA = Path(__file__).parent / "data"
CLIP = (DATA / "clip.mp4").read_bytes()
CLIP_VIDEO = (DATA / "clip-video.mp4").read_bytes()

#: Fail fast: no retries, a short socket timeout.
FAST = CaptureOptions(retries=0, socket_timeout=2)
Role = model.ArtifactRole


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- feeds written here -------------------------------------------------------------------------


def rss_item(
    guid: str, title: str, *, extra: str = "", pub_date: str | None = "Mon, 05 May 2025 21:30:00 +0300"
) -> str:
    date = f"\n    <pubDate>{pub_date}</pubDate>" if pub_date else ""
    return f"""  <item>
    <title>{escape(title)}</title>
    <link>https://monitor.example.org/posts/{guid}</link>
    <guid isPermaLink="false">{guid}</guid>{date}
    <description>About {escape(title)}</description>{extra}
  </item>
"""


def rss(*items: str, title: str = "Harbour Monitor") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/">\n<channel>\n'
        f"  <title>{escape(title)}</title>\n  <link>https://monitor.example.org/</link>\n"
        "  <description>Posts about the East Quay yard</description>\n" + "".join(items) + "</channel>\n</rss>\n"
    ).encode()


def enclosure(url: str, *, media_type: str = "video/mp4", length: int | None = None) -> str:
    size = f" length={quoteattr(str(length))}" if length is not None else ""
    return f"\n    <enclosure url={quoteattr(url)} type={quoteattr(media_type)}{size}/>"


#: One RSS item with an enclosure and a Media RSS item; another with neither.
RSS_FEED = rss(
    rss_item(
        "monitor-101",
        "Two new berths at the East Quay yard",
        extra=enclosure("https://cdn.example.org/101.mp4", length=5234)
        + '\n    <media:content url="https://cdn.example.org/101-hd.mp4" type="video/mp4" fileSize="99001"/>',
    ),
    rss_item("monitor-102", "Gate closed on 4 May — “maintenance”"),
)

ATOM_FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Records Desk</title>
  <id>urn:uuid:60a76c80-d399-11d9-b93c-0003939e0af6</id>
  <updated>2025-05-06T08:00:00Z</updated>
  <link href="https://desk.example.net/"/>
  <entry>
    <title>Our film on the yard ledgers</title>
    <id>tag:desk.example.net,2025:film-7</id>
    <link rel="alternate" href="https://desk.example.net/film-7"/>
    <link rel="enclosure" href="https://video.example.net/film-7.mp4" type="video/mp4" length="734003"/>
    <author><name>City Paper</name></author>
    <published>2025-05-06T07:45:00+02:00</published>
    <updated>2025-05-07T09:00:00Z</updated>
    <summary>Two reporters compared ledgers with satellite pictures.</summary>
  </entry>
  <entry>
    <title>Correction to the ledger film</title>
    <id>tag:desk.example.net,2025:film-7-correction</id>
    <link rel="alternate" href="https://desk.example.net/film-7-correction"/>
    <updated>2025-05-08T10:30:00Z</updated>
    <summary>Only an updated time: no published one.</summary>
  </entry>
</feed>
"""


# -- the catalog's state, before and after ------------------------------------------------------


def blob_files(catalog: Catalog) -> dict[str, bytes]:
    root = catalog.path / "blobs"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def work_area(catalog: Catalog) -> list[str]:
    area = catalog.path / "tmp"
    return sorted(p.name for p in area.iterdir()) if area.exists() else []


def state(catalog: Catalog) -> tuple[int, list[str], dict[str, bytes], list[str]]:
    """Custody log length, records, stored blob files (with their bytes), temporary area."""
    return len(catalog.history()), catalog.record_ids(), blob_files(catalog), work_area(catalog)


def all_catalog_bytes(catalog: Catalog) -> Iterator[tuple[Path, bytes]]:
    for path in sorted(catalog.path.rglob("*")):
        if path.is_file():
            yield path, path.read_bytes()


def records(catalog: Catalog) -> list[model.EvidenceRecord]:
    return [catalog.record(r) for r in catalog.record_ids()]


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- a server that writes its answers byte for byte ---------------------------------------------


class ScriptedServer:
    """A loopback server answering each path with raw bytes written exactly as scripted (floats
    are pauses): for what :class:`MediaServer` cannot do (a Set-Cookie on a redirect, a body
    without Content-Length, chunked bodies, a stall in the middle of a body)."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[bytes | float]] = {}
        self.heads: list[tuple[str, bytes]] = []
        lock = threading.Lock()
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = sock.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                head = data.split(b"\r\n\r\n", 1)[0]
                path = head.split(b" ", 2)[1].decode("latin-1")
                with lock:
                    owner.heads.append((path, head))
                    script = owner.scripts.get(path, [b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"])
                try:
                    for part in script:
                        if isinstance(part, float):
                            time.sleep(part)
                        else:
                            sock.sendall(part)
                except OSError:
                    pass

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._lock = lock

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def script(self, path: str, *parts: bytes | float) -> str:
        with self._lock:
            self.scripts[path] = list(parts)
        return self.url(path)

    def seen(self, path: str) -> list[bytes]:
        with self._lock:
            return [head for p, head in self.heads if p == path]

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def head(status: str, *headers: tuple[str, str]) -> bytes:
    return (f"HTTP/1.1 {status}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n").encode("latin-1")


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


# -- 1: a feed downloaded as served ---------------------------------------------------------------


@pytest.mark.parametrize(("document", "kind", "platform"), [(RSS_FEED, "rss", "RSS"), (ATOM_FEED, "atom", "Atom")])
def test_a_feed_url_is_stored_exactly_as_served_with_its_responses(
    catalog: Catalog, server: MediaServer, base: str, tmp_path: Path, document: bytes, kind: str, platform: str
) -> None:
    served = tmp_path / f"served.{kind}"
    served.write_bytes(document)
    url = server.route(
        f"{base}/feed.xml",
        Route(file=served, media_type=f"application/{kind}+xml", headers={"X-Feed-Edition": "7"}),
    )

    result = catalog.ingest(url)

    assert (result.format, result.items, result.reports_added, result.records_added) == ("rss", 2, 2, 2)
    assert result.path == url and result.new_bytes and result.sha256 == sha256(document)
    assert catalog.artifact_path(result.sha256).read_bytes() == served.read_bytes()  # byte for byte
    for record in records(catalog):
        [report] = record.reports
        assert report.source.platform == platform and report.document_sha256 == result.sha256
        [source] = record.artifacts
        assert (source.role, source.artifact.sha256) == (Role.SOURCE_DOCUMENT, result.sha256)
        [acquisition] = record.acquisitions
        assert acquisition.method is model.AcquisitionMethod.INGESTED_FROM_FEED
        assert (acquisition.requested_url, acquisition.final_url, acquisition.http_status) == (url, url, 200)
        assert acquisition.original_path is None and acquisition.original_path_b64 is None
        assert acquisition.withheld == ()
        [response] = acquisition.responses
        assert (response.url, response.status) == (url, 200)
        headers = dict(response.headers)
        assert headers["Content-Type"] == f"application/{kind}+xml"
        assert headers["Content-Length"] == str(len(document))
        assert headers["X-Feed-Edition"] == "7"
        names = [name for name, _ in response.headers]
        assert names.index("Content-Type") < names.index("X-Feed-Edition")  # in the order sent
    [*_, summary] = catalog.history()
    assert summary.action == "digest.ingested"
    assert summary.details["url"] == url and summary.details["path"] is None
    assert summary.details["sha256"] == result.sha256 and summary.details["reports_added"] == 2
    # The request asked for the document as it is held: no compression (http.client itself
    # adds "Accept-Encoding: identity", which asks for exactly that).
    [request] = server.seen(f"{base}/feed.xml")
    assert request.method == "GET"
    assert request.headers.get("Accept-Encoding", "identity") == "identity", request.headers
    assert "gzip" not in json.dumps(request.headers).lower()
    assert request.headers["User-Agent"].startswith("evidence-catalog/")
    assert work_area(catalog) == []
    assert catalog.verify().ok


def test_the_same_feed_url_again_adds_nothing_and_logs_the_repeat(
    catalog: Catalog, server: MediaServer, base: str
) -> None:
    url = server.route(f"{base}/feed.xml", Route(body=RSS_FEED, media_type="application/rss+xml"))
    catalog.ingest(url)
    again = catalog.ingest(url)
    assert (again.reports_added, again.reports_present, again.new_bytes) == (0, 2, False)
    assert len(server.seen(f"{base}/feed.xml")) == 2  # downloaded again, as served now
    summaries = [e.details for e in catalog.history() if e.action == "digest.ingested"]
    assert [(s["url"], s["reports_added"], s["reports_present"]) for s in summaries] == [(url, 2, 0), (url, 0, 2)]
    assert catalog.verify().ok


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_followed_and_every_response_is_recorded_in_order(
    catalog: Catalog, server: MediaServer, base: str, status: int
) -> None:
    target = server.route(f"{base}/feeds/current.xml", Route(body=RSS_FEED, media_type="application/rss+xml"))
    start = server.route(f"{base}/feed", Route(redirect=f"{base}/feeds/current.xml", status=status))

    result = catalog.ingest(start)

    assert result.reports_added == 2 and result.path == start
    assert catalog.artifact_path(result.sha256).read_bytes() == RSS_FEED
    for record in records(catalog):
        [acquisition] = record.acquisitions
        assert (acquisition.requested_url, acquisition.final_url, acquisition.http_status) == (start, target, 200)
        first, second = acquisition.responses
        assert (first.url, first.status) == (start, status)
        assert ("Location", f"{base}/feeds/current.xml") in first.headers
        assert (second.url, second.status) == (target, 200)
        assert ("Content-Length", str(len(RSS_FEED))) in second.headers
    assert catalog.history()[-1].details["url"] == start
    assert catalog.verify().ok


def test_a_set_cookie_value_is_withheld_and_never_stored(catalog: Catalog, server: MediaServer, base: str) -> None:
    secret = "sid-5f2c9e71d0a4b3SECRET"
    url = server.route(
        f"{base}/feed.xml",
        Route(
            body=RSS_FEED,
            media_type="application/rss+xml",
            headers={"Set-Cookie": f"session={secret}; Path=/; HttpOnly", "X-Other": "kept"},
        ),
    )

    catalog.ingest(url)

    for record in records(catalog):
        [acquisition] = record.acquisitions
        assert acquisition.withheld == (WITHHELD_SET_COOKIE,)
        [response] = acquisition.responses
        assert ("Set-Cookie", WITHHELD) in response.headers
        assert ("X-Other", "kept") in response.headers
    leaks = [path for path, data in all_catalog_bytes(catalog) if secret.encode() in data]
    assert leaks == []
    assert catalog.verify().ok


def test_a_set_cookie_on_a_redirect_is_withheld_too(catalog: Catalog, scripted: ScriptedServer, base: str) -> None:
    first_secret, second_secret = "redirect-cookie-91e0a77c", "final-cookie-3b8d11f2"
    target = scripted.script(
        f"{base}/feed.xml",
        head(
            "200 OK",
            ("Content-Type", "application/rss+xml"),
            ("Set-Cookie", f"a={second_secret}"),
            ("Set-Cookie", "b=another-one"),
            ("Content-Length", str(len(RSS_FEED))),
            ("Connection", "close"),
        )
        + RSS_FEED,
    )
    start = scripted.script(
        f"{base}/start",
        head(
            "302 Found",
            ("Location", target),
            ("Set-Cookie", f"t={first_secret}; Path=/"),
            ("Content-Length", "0"),
            ("Connection", "close"),
        ),
    )

    result = catalog.ingest(start)

    assert catalog.artifact_path(result.sha256).read_bytes() == RSS_FEED
    acquisition = records(catalog)[0].acquisitions[0]
    assert acquisition.withheld == (WITHHELD_SET_COOKIE,)
    redirect, final = acquisition.responses
    assert (redirect.status, final.status, acquisition.final_url) == (302, 200, target)
    assert [v for n, v in redirect.headers if n.lower() == "set-cookie"] == [WITHHELD]
    assert [v for n, v in final.headers if n.lower() == "set-cookie"] == [WITHHELD, WITHHELD]
    for secret in (first_secret, second_secret, "another-one"):
        assert [p for p, data in all_catalog_bytes(catalog) if secret.encode() in data] == []
    # The cookie of the redirect is not sent back on the next request either.
    [request] = scripted.seen(f"{base}/feed.xml")
    assert b"cookie" not in request.lower()


def test_a_chunked_feed_is_stored_as_the_document_not_the_chunks(
    catalog: Catalog, scripted: ScriptedServer, base: str
) -> None:
    half = len(RSS_FEED) // 2
    chunks = b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in (RSS_FEED[:half], RSS_FEED[half:]))
    url = scripted.script(
        f"{base}/feed.xml",
        head("200 OK", ("Content-Type", "application/rss+xml"), ("Transfer-Encoding", "chunked"))
        + chunks
        + b"0\r\n\r\n",
    )
    result = catalog.ingest(url)
    assert catalog.artifact_path(result.sha256).read_bytes() == RSS_FEED
    assert result.reports_added == 2


# -- 2: failures change nothing -------------------------------------------------------------------


def fail_cleanly(catalog: Catalog, url: str, match: str, **kwargs: Any) -> NetworkError:
    before = state(catalog)
    with pytest.raises(NetworkError, match=match) as raised:
        catalog.ingest(url, **kwargs)
    assert raised.value.where == url  # the error names the URL
    assert url in str(raised.value)
    assert state(catalog) == before
    return raised.value


@pytest.fixture
def earlier(catalog: Catalog, server: MediaServer, base: str) -> Catalog:
    """A catalog that holds something already: a failure must not touch it."""
    catalog.ingest(server.route(f"{base}/earlier.xml", Route(body=ATOM_FEED, media_type="application/atom+xml")))
    assert len(catalog.record_ids()) == 2
    return catalog


@pytest.mark.parametrize(
    ("route", "match"),
    [
        (Route(body=b"not here", status=404), "HTTP 404"),
        (Route(body=b"oops", status=500), "HTTP 500"),
        (Route(body=RSS_FEED, media_type="application/rss+xml", truncate_at=100), "ended after 100 of"),
        (Route(redirect="file:///etc/passwd"), "file:///etc/passwd"),
        (Route(redirect="ftp://127.0.0.1/feed.xml", status=301), "redirected to 'ftp://127.0.0.1/feed.xml'"),
    ],
    ids=["404", "500", "cut-short", "redirect-to-file", "redirect-to-ftp"],
)
def test_a_failed_download_is_a_network_error_that_changes_nothing(
    earlier: Catalog, server: MediaServer, base: str, route: Route, match: str
) -> None:
    url = server.route(f"{base}/feed.xml", route)
    fail_cleanly(earlier, url, match)
    assert earlier.verify().ok


def test_a_redirect_loop_is_a_network_error(earlier: Catalog, server: MediaServer, base: str) -> None:
    url = server.route(f"{base}/loop", Route(redirect=f"{base}/loop"))
    fail_cleanly(earlier, url, "HTTP 30")


def test_a_refused_connection_is_a_network_error(earlier: Catalog) -> None:
    url = f"http://127.0.0.1:{unused_port()}/feed.xml"
    fail_cleanly(earlier, url, "cannot be reached|connection failed")


def test_a_server_that_does_not_answer_in_time_is_a_network_error(
    earlier: Catalog, server: MediaServer, base: str
) -> None:
    url = server.route(f"{base}/feed.xml", Route(body=RSS_FEED, delay=3.0))
    started = time.monotonic()
    fail_cleanly(earlier, url, r"no answer within 0\.5 s|timed out", timeout=0.5)
    assert time.monotonic() - started < 2.5  # the timeout, not the server, ended it


def test_a_body_that_stalls_midway_is_a_network_error(earlier: Catalog, scripted: ScriptedServer, base: str) -> None:
    url = scripted.script(
        f"{base}/feed.xml",
        head("200 OK", ("Content-Type", "application/rss+xml"), ("Content-Length", str(len(RSS_FEED)))),
        RSS_FEED[:200],
        3.0,
        RSS_FEED[200:],
    )
    started = time.monotonic()
    fail_cleanly(earlier, url, r"no answer within 0\.5 s|timed out", timeout=0.5)
    assert time.monotonic() - started < 2.5


def test_a_body_without_length_cut_off_by_a_chunked_error_is_a_network_error(
    earlier: Catalog, scripted: ScriptedServer, base: str
) -> None:
    url = scripted.script(
        f"{base}/feed.xml",
        head("200 OK", ("Content-Type", "application/rss+xml"), ("Transfer-Encoding", "chunked"))
        + f"{len(RSS_FEED):x}\r\n".encode()
        + RSS_FEED[:300],  # the connection closes inside the chunk
    )
    fail_cleanly(earlier, url, "ended early|connection failed")


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """A document limit of the size of RSS_FEED.  ``max_bytes``'s default is bound when
    ``fetch_document`` is defined, so the default itself is changed (MAX_FEED_BYTES too)."""
    limit = len(RSS_FEED)
    monkeypatch.setattr(fetch, "MAX_FEED_BYTES", limit)
    assert fetch.fetch_document.__kwdefaults__ is not None
    monkeypatch.setitem(fetch.fetch_document.__kwdefaults__, "max_bytes", limit)
    return limit


def test_a_document_larger_than_the_limit_is_a_network_error(
    earlier: Catalog, server: MediaServer, scripted: ScriptedServer, base: str, small_limit: int
) -> None:
    at_limit = server.route(f"{base}/fits.xml", Route(body=RSS_FEED, media_type="application/rss+xml"))
    bigger = RSS_FEED.replace(b"</channel>", b"<!-- one byte more:x --></channel>")
    declared = server.route(f"{base}/declared.xml", Route(body=bigger, media_type="application/rss+xml"))
    # Without a Content-Length the limit is found while reading.
    undeclared = scripted.script(
        f"{base}/undeclared.xml", head("200 OK", ("Content-Type", "application/rss+xml")) + bigger * 3
    )
    fail_cleanly(earlier, declared, f"{len(bigger)} bytes, more than the limit of {small_limit}")
    fail_cleanly(earlier, undeclared, f"larger than the limit of {small_limit} bytes")
    assert earlier.ingest(at_limit).reports_added == 2  # exactly the limit is allowed
    assert earlier.verify().ok


@pytest.mark.parametrize(
    "source",
    [
        "ftp://127.0.0.1:{port}{base}/feed.xml",
        "http://analyst:hunter2@127.0.0.1:{port}{base}/feed.xml",
        "https://analyst@127.0.0.1:{port}{base}/feed.xml",
        "http://127.0.0.1:{port}{base}/a feed.xml",
        "http://127.0.0.1:99999{base}/feed.xml",
        "http://",
    ],
)
def test_a_bad_url_is_an_input_error_before_any_request(
    earlier: Catalog, server: MediaServer, base: str, source: str
) -> None:
    server.route(f"{base}/feed.xml", Route(body=RSS_FEED, media_type="application/rss+xml"))
    url = source.format(port=server.port, base=base)
    before = state(earlier)
    with pytest.raises(InputError) as raised:
        earlier.ingest(url)
    assert "hunter2" not in str(raised.value)
    assert [r.path for r in server.requests if r.path.startswith(base)] == [f"{base}/earlier.xml"]
    assert state(earlier) == before


def test_a_non_http_url_is_refused_as_a_url(catalog: Catalog) -> None:
    with pytest.raises(InputError, match="not an http:// or https:// URL"):
        catalog.ingest("ftp://127.0.0.1/feed.xml")


def test_a_bad_timeout_is_an_input_error_before_any_request(catalog: Catalog, server: MediaServer, base: str) -> None:
    url = server.route(f"{base}/feed.xml", Route(body=RSS_FEED, media_type="application/rss+xml"))
    for timeout in (0, -1, 3601, True):
        with pytest.raises(InputError, match="timeout"):
            catalog.ingest(url, timeout=timeout)
    assert server.seen(f"{base}/feed.xml") == []


def test_a_url_that_serves_no_feed_is_an_input_error_that_changes_nothing(
    earlier: Catalog, server: MediaServer, base: str
) -> None:
    url = server.route(f"{base}/page", Route(body=b"<html><body>Hello</body></html>", media_type="text/html"))
    before = state(earlier)
    with pytest.raises(InputError) as raised:
        earlier.ingest(url)
    assert raised.value.where == url
    assert state(earlier) == before


def test_a_telegram_export_from_a_url_cannot_name_files_of_the_catalogs_work_area(
    catalog: Catalog, server: MediaServer, base: str
) -> None:
    export = {
        "name": "Channel",
        "id": 1,
        "messages": [
            {"id": 1, "type": "message", "text": "the download itself", "file": "document"},
            {"id": 2, "type": "message", "text": "the work area's lock", "file": ".lock"},
        ],
    }
    url = server.route(f"{base}/result.json", Route(body=json.dumps(export).encode(), media_type="application/json"))
    with contextlib.suppress(InputError):  # refusing it would do too
        catalog.ingest(url, keep_going=True)
    # Nothing but the served document may be stored: no file of the catalog's own.
    for record in records(catalog):
        assert [e.role for e in record.artifacts] == [Role.SOURCE_DOCUMENT], record.artifacts


def test_the_cli_prints_one_error_line_for_a_failed_download(
    catalog: Catalog, server: MediaServer, base: str, run_cli: Any
) -> None:
    catalog.close()
    gone = server.route(f"{base}/gone.xml", Route(status=404))
    refused = f"http://127.0.0.1:{unused_port()}/feed.xml"
    slow = server.route(f"{base}/slow.xml", Route(body=RSS_FEED, delay=3.0))
    secret = server.url(f"{base}/feed.xml").replace("http://", "http://analyst:hunter2@")
    for url, reason in [
        (gone, "HTTP 404"),
        (refused, "cannot be reached"),
        (slow, "no answer within 0.5 s"),
        (secret, "user name or password"),
    ]:
        result = run_cli("ingest", url, "--catalog", catalog.path, "--timeout", "0.5")
        assert result.code == 2, (url, result.err)
        [line] = result.err.strip().splitlines()
        assert "Traceback" not in result.err and result.out == ""
        assert reason in line, line
        if url == secret:
            assert line.startswith("error: url: ") and "hunter2" not in line
        else:
            assert line.startswith(f"error: {url}: ")
    with Catalog.open(catalog.path) as reopened:
        assert reopened.record_ids() == []
        assert [e.action for e in reopened.history()] == ["catalog.created"]


def test_the_cli_ingests_a_feed_url(catalog: Catalog, server: MediaServer, base: str, run_cli: Any) -> None:
    catalog.close()
    url = server.route(f"{base}/feed.xml", Route(body=RSS_FEED, media_type="application/rss+xml"))
    result = run_cli("ingest", url, "--catalog", catalog.path)
    assert result.code == 0, result.err
    assert result.out.startswith(
        "2 item(s): 2 report(s) added on 2 new record(s), 0 already present; "
        "1 artifact(s) stored, 0 already stored; rss "
    )
    assert result.out.rstrip().endswith(f"; rss {sha256(RSS_FEED)}")


# -- 3: media fields and dates ----------------------------------------------------------------------


def test_rss_enclosures_and_media_content_become_media_links(catalog: Catalog, server: MediaServer, base: str) -> None:
    url = server.route(f"{base}/feed.xml", Route(body=RSS_FEED, media_type="application/rss+xml"))
    result = catalog.ingest(url)
    first, second = (r.reports[0] for r in records(catalog))
    assert first.media == (
        model.MediaLink(url="https://cdn.example.org/101.mp4", kind="enclosure", media_type="video/mp4", length=5234),
        model.MediaLink(
            url="https://cdn.example.org/101-hd.mp4", kind="media_content", media_type="video/mp4", length=99001
        ),
    )
    assert second.media == ()
    assert first.published_at == dt.datetime(2025, 5, 5, 18, 30, tzinfo=dt.UTC) and first.updated_at is None
    first_record = catalog.record_ids()[0]
    assert result.media == (
        (first_record, "https://cdn.example.org/101.mp4"),
        (first_record, "https://cdn.example.org/101-hd.mp4"),
    )
    assert result.captures == ()  # not captured unless asked
    # The media fields are in the custody log too: the record rebuilt from it is the same.
    assert catalog.verify().ok


def test_an_atom_enclosure_and_updated_time_are_kept_apart_from_published(
    catalog: Catalog, server: MediaServer, base: str
) -> None:
    url = server.route(f"{base}/feed.atom", Route(body=ATOM_FEED, media_type="application/atom+xml"))
    result = catalog.ingest(url)
    assert result.warnings == ()
    film, correction = (r.reports[0] for r in records(catalog))
    assert film.media == (
        model.MediaLink(
            url="https://video.example.net/film-7.mp4", kind="enclosure", media_type="video/mp4", length=734003
        ),
    )
    assert film.published_at == dt.datetime(2025, 5, 6, 5, 45, tzinfo=dt.UTC)
    assert film.updated_at == dt.datetime(2025, 5, 7, 9, 0, tzinfo=dt.UTC)
    # Only <updated>: it is not taken for the publication time.
    assert correction.published_at is None
    assert correction.updated_at == dt.datetime(2025, 5, 8, 10, 30, tzinfo=dt.UTC)
    assert correction.media == ()
    assert catalog.verify().ok


def test_odd_media_entries_are_read_as_stated_or_left_out(catalog: Catalog, server: MediaServer, base: str) -> None:
    item = rss_item(
        "odd-1",
        "Odd media",
        extra=enclosure("https://cdn.example.org/a.mp4", length=None)
        + enclosure("https://cdn.example.org/a.mp4", media_type="video/webm", length=7)  # the same URL again
        + '\n    <enclosure url="https://cdn.example.org/b.mp3" type="audio/mpeg" length="unknown"/>'
        + '\n    <enclosure url="  " type="audio/mpeg"/>'
        + '\n    <media:content url="https://cdn.example.org/a.mp4" type="video/mp4"/>',
    )
    url = server.route(f"{base}/feed.xml", Route(body=rss(item), media_type="application/rss+xml"))
    catalog.ingest(url)
    [report] = records(catalog)[0].reports
    assert report.media == (
        model.MediaLink(url="https://cdn.example.org/a.mp4", kind="enclosure", media_type="video/mp4", length=None),
        model.MediaLink(url="https://cdn.example.org/b.mp3", kind="enclosure", media_type="audio/mpeg", length=None),
    )


# -- 4: capture_media ------------------------------------------------------------------------------


def media_feed(server: MediaServer, base: str) -> tuple[str, str, str]:
    """A feed whose first item's enclosure is a real MP4 on the server and whose second item's
    enclosure is missing (404); return the feed URL and the two media URLs."""
    clip = server.route(f"{base}/media/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    missing = server.url(f"{base}/media/missing.mp4")
    feed = rss(
        rss_item("clip-1", "Night images of the yard", extra=enclosure(clip, length=len(CLIP))),
        rss_item("clip-2", "Gate footage", extra=enclosure(missing)),
    )
    return server.route(f"{base}/feed.xml", Route(body=feed, media_type="application/rss+xml")), clip, missing


def test_capture_media_puts_each_enclosure_on_its_reports_record(
    catalog: Catalog, server: MediaServer, base: str
) -> None:
    url, clip, missing = media_feed(server, base)

    result = catalog.ingest(url, capture_media=True, capture_options=FAST, analyze=False)

    assert result.reports_added == 2 and len(catalog.record_ids()) == 2  # no record of its own for media
    first_id, second_id = catalog.record_ids()
    assert result.media == ((first_id, clip), (second_id, missing))
    good, bad = result.captures
    assert good.ok and not good.skipped, good.error
    assert (good.url, good.record_id, good.sha256, good.new_record) == (clip, first_id, sha256(CLIP), False)
    assert catalog.artifact_path(sha256(CLIP)).read_bytes() == CLIP
    first = catalog.record(first_id)
    assert first.reports[0].media[0].url == clip
    roles = [(e.role, e.artifact.sha256) for e in first.artifacts]
    assert roles[0] == (Role.SOURCE_DOCUMENT, result.sha256)
    assert (Role.ORIGINAL, sha256(CLIP)) in roles
    ingested, captured = first.acquisitions
    assert ingested.method is model.AcquisitionMethod.INGESTED_FROM_FEED and ingested.requested_url == url
    assert captured.method is model.AcquisitionMethod.CAPTURED_FROM_URL
    assert (captured.requested_url, captured.http_status, captured.artifact_sha256) == (clip, 200, sha256(CLIP))

    # The missing one: a failed capture, logged on the report's record, and the report stays.
    assert not bad.ok and bad.record_id == second_id and bad.error and "404" in bad.error
    second = catalog.record(second_id)
    assert len(second.reports) == 1 and second.reports[0].media[0].url == missing
    assert [e.role for e in second.artifacts] == [Role.SOURCE_DOCUMENT]
    failed = [a for a in second.acquisitions if a.outcome is model.Outcome.FAILED]
    assert [(a.requested_url, a.method) for a in failed] == [(missing, model.AcquisitionMethod.CAPTURED_FROM_URL)]
    events = [(e.action, e.subject) for e in catalog.history()]
    assert ("capture.failed", second_id) in events and ("media.captured", first_id) in events
    assert events.index(("digest.ingested", "catalog")) < events.index(("media.captured", first_id))
    assert work_area(catalog) == []
    assert catalog.verify().ok

    # Again: the capture that succeeded is not fetched twice; the failed one is tried again.
    clip_requests = len(server.seen(f"{base}/media/clip.mp4"))
    missing_requests = len(server.seen(f"{base}/media/missing.mp4"))
    server.route(f"{base}/media/missing.mp4", Route(body=CLIP_VIDEO, media_type="video/mp4"))
    again = catalog.ingest(url, capture_media=True, capture_options=FAST)
    assert (again.reports_added, again.reports_present) == (0, 2)
    assert again.media == result.media
    skipped, retried = again.captures
    assert skipped.skipped and skipped.ok
    assert (skipped.acquisition_id, skipped.record_id, skipped.sha256) == (good.acquisition_id, first_id, sha256(CLIP))
    assert len(server.seen(f"{base}/media/clip.mp4")) == clip_requests
    assert retried.ok and not retried.skipped, retried.error
    assert (retried.record_id, retried.sha256) == (second_id, sha256(CLIP_VIDEO))
    assert len(server.seen(f"{base}/media/missing.mp4")) > missing_requests
    assert (Role.ORIGINAL, sha256(CLIP_VIDEO)) in [
        (e.role, e.artifact.sha256) for e in catalog.record(second_id).artifacts
    ]
    assert len(catalog.record(first_id).acquisitions) == 2  # nothing added to the first record

    # A third time: both are done.
    third = catalog.ingest(url, capture_media=True, capture_options=FAST)
    assert [c.skipped for c in third.captures] == [True, True]
    assert catalog.verify().ok


def test_capture_media_of_a_non_http_enclosure_is_a_warning_not_a_fetch(
    catalog: Catalog, server: MediaServer, base: str
) -> None:
    feed = rss(rss_item("ftp-1", "Old archive", extra=enclosure("ftp://files.example.org/archive.mp4")))
    url = server.route(f"{base}/feed.xml", Route(body=feed, media_type="application/rss+xml"))
    result = catalog.ingest(url, capture_media=True, capture_options=FAST)
    assert result.reports_added == 1 and result.captures == ()
    assert any("not captured" in message for _, message in result.warnings)
    assert [e.action for e in catalog.history()][-1] == "digest.ingested"


def test_the_cli_exit_code_says_whether_every_media_capture_succeeded(
    tmp_path: Path, operator: Agent, server: MediaServer, base: str, run_cli: Any
) -> None:
    url, clip, missing = media_feed(server, base)
    good_feed = server.route(
        f"{base}/good.xml",
        Route(body=rss(rss_item("clip-1", "Night images", extra=enclosure(clip))), media_type="application/rss+xml"),
    )
    for name in ("good", "mixed"):
        Catalog.init(tmp_path / name, operator=operator, clock=FixedClock()).close()

    ok = run_cli("ingest", good_feed, "--catalog", tmp_path / "good", "--capture-media", "--timeout", "5", "-q")
    assert ok.code == 0, ok.err
    [summary, capture_line] = ok.out.strip().splitlines()
    assert summary.startswith("1 item(s): 1 report(s) added")
    assert capture_line.split("\t")[1:] == [sha256(CLIP), "added", clip]

    mixed = run_cli("ingest", url, "--catalog", tmp_path / "mixed", "--capture-media", "--timeout", "5")
    assert mixed.code == 1, mixed.err
    assert f"-\t-\tfailed\t{missing}" in mixed.out.splitlines()
    assert f"error: {missing}: " in mixed.err and "404" in mixed.err
    assert "media: 1 of 2 captured" in mixed.err
    assert "Traceback" not in mixed.err
    with Catalog.open(tmp_path / "mixed") as reopened:
        assert len(reopened.record_ids()) == 2  # the reports stay
        assert reopened.verify().ok


# -- 5: keep_going ---------------------------------------------------------------------------------


def twarc_page(*ids: str) -> str:
    return json.dumps(
        {
            "data": [{"id": i, "author_id": "111", "text": f"Tweet {i} about #EastQuay"} for i in ids],
            "includes": {"users": [{"id": "111", "username": "harbour_mon"}]},
        }
    )


@pytest.fixture
def broken_jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "tweets.jsonl"
    broken = twarc_page("3")[:25]
    path.write_text(f"{twarc_page('1', '2')}\n{broken}\n{twarc_page('4')}\n", encoding="utf-8")
    return path


def test_a_broken_jsonl_line_stops_the_ingest_without_keep_going(catalog: Catalog, broken_jsonl: Path) -> None:
    before = state(catalog)
    with pytest.raises(InputError, match=r"line 2 is not JSON") as raised:
        catalog.ingest(broken_jsonl)
    assert raised.value.where is not None and "tweets.jsonl" in raised.value.where
    assert state(catalog) == before


def test_keep_going_leaves_the_broken_line_out_and_names_it(catalog: Catalog, broken_jsonl: Path) -> None:
    result = catalog.ingest(broken_jsonl, keep_going=True)
    assert (result.format, result.items, result.reports_added) == ("twarc", 3, 3)
    [(line, reason)] = result.skipped
    assert line == 2 and "line 2 is not JSON" in reason
    assert sorted(r.reports[0].post_id or "" for r in records(catalog)) == ["1", "2", "4"]
    assert catalog.artifact_path(result.sha256).read_bytes() == broken_jsonl.read_bytes()  # stored whole
    [*_, summary] = catalog.history()
    assert summary.action == "digest.ingested"
    assert summary.details["skipped"] == [{"line": 2, "reason": reason}]
    assert catalog.verify().ok


def test_the_cli_exits_1_and_names_what_keep_going_left_out(catalog: Catalog, broken_jsonl: Path, run_cli: Any) -> None:
    catalog.close()
    stopped = run_cli("ingest", broken_jsonl, "--catalog", catalog.path)
    assert stopped.code == 2 and "line 2 is not JSON" in stopped.err
    result = run_cli("ingest", broken_jsonl, "--catalog", catalog.path, "--keep-going")
    assert result.code == 1, result.err
    skipped = [line for line in result.err.splitlines() if line.startswith("skipped:")]
    assert len(skipped) == 1 and "tweets.jsonl" in skipped[0] and "line 2 is not JSON" in skipped[0]
    assert "3 report(s) added on 3 new record(s), 0 already present, 1 left out" in result.out
    again = run_cli("ingest", broken_jsonl, "--catalog", catalog.path, "--keep-going")
    assert again.code == 1 and "0 report(s) added" in again.out and "skipped:" in again.err


def telegram_export(folder: Path) -> Path:
    (folder / "photos").mkdir(parents=True)
    (folder / "video_files").mkdir()
    (folder / "photos" / "photo_1.jpg").write_bytes(make_jpeg())
    (folder / "video_files" / "clip.mp4").write_bytes(CLIP)
    export = {
        "name": "Harbour Monitor",
        "type": "public_channel",
        "id": 1500000001,
        "messages": [
            {"id": 17, "type": "message", "date_unixtime": "1746469800", "photo": "photos/photo_1.jpg", "text": "A"},
            {
                "id": 18,
                "type": "message",
                "date_unixtime": "1746470400",
                "file": "video_files/missing.mp4",
                "photo": "photos/photo_1.jpg",
                "text": "B with a missing file",
            },
            {"id": 19, "type": "message", "date_unixtime": "1746470500", "file": "video_files/clip.mp4", "text": "C"},
        ],
    }
    (folder / "result.json").write_text(json.dumps(export), encoding="utf-8")
    return folder


def test_keep_going_leaves_a_telegram_message_with_missing_media_out_whole(catalog: Catalog, tmp_path: Path) -> None:
    folder = telegram_export(tmp_path / "export")
    before = state(catalog)
    with pytest.raises(InputError, match=r"message 18: media file 'video_files/missing.mp4' is missing"):
        catalog.ingest(folder)
    assert state(catalog) == before

    result = catalog.ingest(folder, keep_going=True, analyze=False)
    assert (result.items, result.reports_added) == (2, 2)
    assert result.skipped == ((18, "message 18: media file 'video_files/missing.mp4' is missing; left out"),)
    by_post = {r.reports[0].post_id or "": r for r in records(catalog)}
    assert sorted(by_post) == ["17", "19"]  # no report for message 18, not even its text
    assert not any("missing file" in r.reports[0].text for r in by_post.values())
    photo = (folder / "photos" / "photo_1.jpg").read_bytes()
    assert [e.artifact.sha256 for e in by_post["17"].artifacts][1:] == [sha256(photo)]
    assert [e.artifact.sha256 for e in by_post["19"].artifacts][1:] == [sha256(CLIP)]
    assert catalog.history()[-1].details["skipped"] == [{"line": 18, "reason": result.skipped[0][1]}]

    # The missing file put in place: ingesting again adds exactly that message, with its media.
    (folder / "video_files" / "missing.mp4").write_bytes(CLIP_VIDEO)
    again = catalog.ingest(folder, keep_going=True, analyze=False)
    assert (again.items, again.reports_added, again.reports_present, again.skipped) == (3, 1, 2, ())
    assert again.new_bytes is False  # the same result.json
    added = {r.reports[0].post_id or "": r for r in records(catalog)}
    assert sorted(added) == ["17", "18", "19"]
    eighteen = added["18"]
    assert eighteen.reports[0].text == "B with a missing file"
    assert sorted(e.artifact.sha256 for e in eighteen.artifacts[1:]) == sorted([sha256(CLIP_VIDEO), sha256(photo)])
    for data in (CLIP_VIDEO, photo):
        assert catalog.artifact_path(sha256(data)).read_bytes() == data
    assert catalog.verify().ok


# -- 6: properties: whatever is served is stored byte for byte ------------------------------------


def fresh_catalog(directory: str) -> Catalog:
    return Catalog.init(Path(directory) / "catalog", operator="Tester <t@example.org>", clock=FixedClock())


_XML_TEXT = st.text(
    st.characters(
        codec="utf-8",
        exclude_categories=["Cs"],
        exclude_characters="\x7f",
    ).filter(lambda c: c in "\t\n\r" or (c >= " " and c not in "\ufffe\uffff")),
    max_size=40,
)


@st.composite
def feed_documents(draw: st.DrawFn) -> tuple[bytes, int]:
    """RSS or Atom documents that vary in what a server may serve: a BOM, CRLF line ends,
    comments, padding, any text in titles (escaped), 1-3 entries."""
    count = draw(st.integers(1, 3))
    titles = [draw(_XML_TEXT) for _ in range(count)]
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    comment = draw(_XML_TEXT).replace("-", "_")
    atom = draw(st.booleans())
    if atom:
        entries = "".join(
            f"<entry><title>{escape(t)}</title><id>urn:x:{n}</id><updated>2025-05-0{n + 1}T10:00:00Z</updated>"
            f"</entry>{newline}"
            for n, t in enumerate(titles)
        )
        body = f'<feed xmlns="http://www.w3.org/2005/Atom">{newline}<title>P</title>{newline}{entries}</feed>'
    else:
        items = "".join(
            f"<item><title>{escape(t)}</title><guid>g-{n}</guid></item>{newline}" for n, t in enumerate(titles)
        )
        body = f'<rss version="2.0"><channel><title>P</title>{newline}{items}</channel></rss>'
    declaration = draw(st.sampled_from(["", '<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-8"?>']))
    text = declaration + newline + f"<!--{comment}-->" + newline + body + newline * draw(st.integers(0, 3))
    bom = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
    return bom + text.encode("utf-8"), count


@pytest.mark.slow
@settings(max_examples=15)
@given(document=feed_documents())
def test_any_feed_document_served_is_stored_byte_for_byte(server: MediaServer, document: tuple[bytes, int]) -> None:
    data, count = document
    path = f"/property-feed-{sha256(data)[:16]}-{time.monotonic_ns()}.xml"
    url = server.route(path, Route(body=data, media_type="application/xml"))
    with tempfile.TemporaryDirectory() as directory, fresh_catalog(directory) as catalog:
        result = catalog.ingest(url, format="rss")
        assert catalog.artifact_path(result.sha256).read_bytes() == data
        assert (result.sha256, result.items, result.reports_added) == (sha256(data), count, count)
        for record in records(catalog):
            [response] = record.acquisitions[0].responses
            assert ("Content-Length", str(len(data))) in response.headers
        assert work_area(catalog) == []


@pytest.mark.slow
@settings(max_examples=10)
@given(data=st.binary(min_size=1, max_size=4096))
@example(data=b"<!DOCTYPE html><html><video src='x.mp4'></video></html>")
@example(data=b"<?xml version='1.0'?><rss version='2.0'><channel><item><title>x</title></item></channel></rss>")
def test_any_bytes_served_as_an_enclosure_are_captured_byte_for_byte(server: MediaServer, data: bytes) -> None:
    stem = f"/property-media-{sha256(data)[:16]}-{time.monotonic_ns()}"
    media = server.route(f"{stem}/media.mp4", Route(body=data, media_type="video/mp4"))
    feed = rss(rss_item("m-1", "Media", extra=enclosure(media, length=len(data))))
    url = server.route(f"{stem}/feed.xml", Route(body=feed, media_type="application/rss+xml"))
    options = CaptureOptions(retries=0, socket_timeout=2, ffmpeg=False)
    with tempfile.TemporaryDirectory() as directory, fresh_catalog(directory) as catalog:
        result = catalog.ingest(url, capture_media=True, capture_options=options)
        [capture] = result.captures
        assert capture.ok, capture.error
        assert (capture.sha256, capture.size, capture.record_id) == (sha256(data), len(data), catalog.record_ids()[0])
        assert catalog.artifact_path(sha256(data)).read_bytes() == data
        assert catalog.artifact_path(result.sha256).read_bytes() == feed
        assert work_area(catalog) == []
        assert catalog.verify().ok
