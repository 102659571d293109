"""``capture --page``: a page loaded in the system's Chromium (Playwright), its network recorded
into a WACZ while it loads, and its screenshot, rendered HTML, PDF print and text stored; real
pages served by tests/media_server.py on 127.0.0.1, checked with Pillow, pdftotext, warcio and
py-wacz's own commands.  Bad pages: one that never finishes loading, one that redirects to
another host, a huge one, pop-ups and downloads, a browser killed mid-capture."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from warcio.archiveiterator import ArchiveIterator

from evidence_catalog import Catalog, model
from evidence_catalog.capture.browser import recorded_headers
from evidence_catalog.capture.page import PageOptions
from tests.media_server import MediaServer, Route
from tests.test_capture import blob_files, work_area

Role = model.ArtifactRole
BIN = Path(sys.executable).parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
# BROWSER_ONLY: the tests marked `no_postgresql_pass` with this note check what the browser did
# and what the WARC holds, which no database changes; the PostgreSQL run keeps the page captures
# that check what a capture records (a whole page, a partial one, a failed one, the command
# line).  Each would cost it 2-11 s.
FAST = PageOptions(width=800, height=600, time_limit=15, max_pdf_pages=5)


def png(width: int, height: int, colour: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


IMAGE = png(40, 30)
STUCK = b"<html><body><img src='/stuck.png'></body></html>"
SCRIPT_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Shelling of the market</title></head>
<body><h1>Shelling of the market</h1><img src="/img.png" alt="crater"><p id="api">waiting</p>
<script>fetch("/api").then(r => r.json()).then(j => { document.getElementById("api").textContent =
"fetched " + j.answer; });</script></body></html>"""


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    with Catalog.init(tmp_path / "catalog", operator="tester") as opened:
        yield opened


@pytest.fixture
def server() -> Iterator[MediaServer]:
    with MediaServer() as running:
        yield running


def entry(record: model.EvidenceRecord, role: model.ArtifactRole) -> model.RecordArtifact:
    [found] = [e for e in record.artifacts if e.role is role]
    return found


def warc_of(catalog: Catalog, record: model.EvidenceRecord, into: Path) -> Path:
    wacz = catalog.artifact_path(entry(record, Role.WEB_ARCHIVE).artifact.sha256)
    with zipfile.ZipFile(wacz) as zf:
        zf.extract("archive/data.warc.gz", into)
    return into / "archive" / "data.warc.gz"


def responses(warc: Path) -> dict[str, tuple[int, bytes, Any]]:
    found = {}
    with open(warc, "rb") as stream:
        for record in ArchiveIterator(stream):
            if record.rec_type == "response":
                url = record.rec_headers.get_header("WARC-Target-URI")
                found[url] = (int(record.http_headers.get_statuscode()), record.content_stream().read(), record)
    return found


@needs_chromium
def test_a_page_with_an_image_a_script_and_a_redirect_to_another_host_is_captured_whole(
    catalog: Catalog, server: MediaServer, tmp_path: Path
) -> None:
    server.route("/img.png", Route(body=IMAGE, media_type="image/png"))
    server.route("/api", Route(body=b'{"answer": 42}', media_type="application/json"))
    server.route("/article", Route(body=SCRIPT_PAGE.encode(), media_type="text/html; charset=utf-8"))
    other_host = f"http://localhost:{server.port}/article"
    start = server.route("/start", Route(redirect=other_host))

    result = catalog.capture_page(start, options=FAST, tags=["market"])

    assert result.ok and result.new_record and result.not_kept is None, result
    record = catalog.record(result.record_id)
    assert {e.role for e in record.artifacts} == {
        Role.SCREENSHOT,
        Role.RENDERED_PAGE,
        Role.PAGE_PRINT,
        Role.PAGE_TEXT,
        Role.WEB_ARCHIVE,
    }
    shot = entry(record, Role.SCREENSHOT)
    assert result.sha256 == shot.artifact.sha256 and shot.artifact.media_type == "image/png"
    with Image.open(catalog.artifact_path(shot.artifact.sha256)) as image:
        image.load()
        assert image.width == 800 and image.height >= 600
    html = catalog.artifact_path(entry(record, Role.RENDERED_PAGE).artifact.sha256).read_text("utf-8")
    assert "fetched 42" in html  # the DOM after the script ran, not the page as served
    text = catalog.artifact_path(entry(record, Role.PAGE_TEXT).artifact.sha256).read_text("utf-8")
    assert "Shelling of the market" in text and "fetched 42" in text and "<h1>" not in text
    pdf = entry(record, Role.PAGE_PRINT)
    assert pdf.artifact.media_type == "application/pdf"
    printed = subprocess.run(
        ["pdftotext", catalog.artifact_path(pdf.artifact.sha256), "-"], capture_output=True, text=True, check=True
    )
    assert "Shelling of the market" in printed.stdout

    [acquisition] = record.acquisitions
    assert (acquisition.requested_url, acquisition.final_url, acquisition.http_status) == (start, other_host, 200)
    tools = {tool.name: tool.version for tool in acquisition.tools}
    assert tools["Chromium (Chrome)"] and tools["Chromium (Chrome)"][0].isdigit()
    assert tools["Playwright"] and tools["warcio"] and tools["py-wacz"]
    assert "viewport=800x600" in acquisition.settings and "time_limit=15s" in acquisition.settings
    assert any(s.startswith("user_agent_sent=Mozilla/") for s in acquisition.settings)
    [event] = [e for e in catalog.history() if e.action == "media.captured"]
    logged = str(event.details)
    assert all(e.artifact.sha256 in logged for e in record.artifacts)

    warc = warc_of(catalog, record, tmp_path)
    seen = responses(warc)
    assert seen[start][0] == 302
    assert seen[other_host][1] == SCRIPT_PAGE.encode()  # the bytes the server sent
    assert seen[f"http://localhost:{server.port}/img.png"][1] == IMAGE
    assert seen[f"http://localhost:{server.port}/api"][1] == b'{"answer": 42}'
    assert len(server.seen("/img.png")) == 1 and len(server.seen("/api")) == 1  # never fetched twice
    with open(warc, "rb") as stream:  # one request record per response, no exchange left unanswered
        types = [r.rec_type for r in ArchiveIterator(stream)]
    assert types.count("request") == types.count("response") == len(seen) and "metadata" not in types
    done = subprocess.run([BIN / "warcio", "check", "-v", warc], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    wacz = catalog.artifact_path(entry(record, Role.WEB_ARCHIVE).artifact.sha256)
    done = subprocess.run([BIN / "wacz", "validate", "-f", wacz], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    with zipfile.ZipFile(wacz) as zf:
        assert start in zf.read("pages/pages.jsonl").decode()  # the requested page is the entry point
    assert work_area(catalog) == []


@needs_chromium
def test_a_page_that_never_finishes_loading_is_kept_as_a_partial_capture(
    catalog: Catalog, server: MediaServer, tmp_path: Path
) -> None:
    server.route("/never.png", Route(body=IMAGE, media_type="image/png", delay=60))
    page = b"<html><head><title>Slow</title></head><body><p>visible before the load</p><img src='/never.png'></body>"
    url = server.route("/slow", Route(body=page, media_type="text/html"))

    result = catalog.capture_page(url, options=PageOptions(width=800, height=600, time_limit=3))

    assert result.ok and result.not_kept is not None and result.not_kept.startswith("partial capture"), result
    record = catalog.record(result.record_id)
    assert record.acquisitions[0].note is not None and "partial capture" in record.acquisitions[0].note
    text = catalog.artifact_path(entry(record, Role.PAGE_TEXT).artifact.sha256).read_text("utf-8")
    assert "visible before the load" in text
    warc = warc_of(catalog, record, tmp_path)
    assert responses(warc)[url][1] == page
    with open(warc, "rb") as stream:  # the request still waiting for its answer is there, said so
        unanswered = [
            r.content_stream().read()
            for r in ArchiveIterator(stream)
            if r.rec_type == "metadata" and r.rec_headers.get_header("WARC-Target-URI") == server.url("/never.png")
        ]
    assert unanswered == [b"error: no response was received\r\n"]


@needs_chromium
@pytest.mark.no_postgresql_pass  # BROWSER_ONLY (see above)
def test_pop_ups_are_closed_and_downloads_refused_and_said(catalog: Catalog, server: MediaServer) -> None:
    server.route("/other", Route(body=b"<p>pop-up</p>", media_type="text/html"))
    server.route(
        "/file.zip",
        Route(
            body=b"PK\x05\x06" + bytes(18), media_type="application/zip", headers={"Content-Disposition": "attachment"}
        ),
    )
    page = b"""<html><body><p>hostile</p><a id=d href="/file.zip" download>zip</a>
<script>window.open("/other"); document.getElementById("d").click();</script></body></html>"""
    url = server.route("/hostile", Route(body=page, media_type="text/html"))

    result = catalog.capture_page(url, options=FAST)

    assert result.ok, result
    assert result.not_kept is not None and "pop-ups closed" in result.not_kept and "/other" in result.not_kept
    assert "downloads refused" in result.not_kept and "/file.zip" in result.not_kept


@needs_chromium
def test_a_url_that_is_a_download_fails_and_is_logged(catalog: Catalog, server: MediaServer) -> None:
    url = server.route(
        "/report.bin", Route(body=bytes(1000), headers={"Content-Disposition": "attachment; filename=report.bin"})
    )
    before = blob_files(catalog)

    result = catalog.capture_page(url, options=FAST)

    assert not result.ok and result.error is not None and "download" in result.error
    assert catalog.history()[-1].action == "capture.failed" and blob_files(catalog) == before


@needs_chromium
@pytest.mark.no_postgresql_pass  # BROWSER_ONLY (see above)
def test_a_huge_page_is_cut_to_the_limits_and_says_so(catalog: Catalog, server: MediaServer, tmp_path: Path) -> None:
    big = png(2000, 2000, "blue")  # a large response, recorded without its body over the limit
    server.route("/big.png", Route(body=big, media_type="image/png"))
    page = b"<html><body><div style='height:50000px'>tall</div><img src='/big.png'></body></html>"
    url = server.route("/tall", Route(body=page, media_type="text/html"))
    options = PageOptions(width=800, height=600, time_limit=15, max_height=3000, max_resource_bytes=len(big) - 1)

    result = catalog.capture_page(url, options=options)

    assert result.ok and result.not_kept is not None, result
    assert "screenshot cut at 3000 pixels" in result.not_kept and "/big.png" in result.not_kept
    record = catalog.record(result.record_id)
    with Image.open(catalog.artifact_path(result.sha256)) as image:
        assert image.size == (800, 3000)
    _, body, warc_record = responses(warc_of(catalog, record, tmp_path))[server.url("/big.png")]
    assert body == b"" and warc_record.rec_headers.get_header("WARC-Truncated") == "length"


def _chromium_of(folder: Path) -> list[int]:
    """The Chromium processes whose profile is under *folder*."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(folder).encode() in command and b"--user-data-dir" in command:
                found.append(int(entry.name))
    return found


@needs_chromium
def test_a_browser_killed_mid_capture_gives_a_failed_capture_and_stores_nothing(
    catalog: Catalog, server: MediaServer
) -> None:
    server.route("/stuck.png", Route(body=IMAGE, media_type="image/png", delay=30))
    url = server.route(
        "/stuck", Route(body=b"<html><body><img src='/stuck.png'></body></html>", media_type="text/html")
    )
    before = blob_files(catalog)

    def kill_when_loading() -> None:
        deadline = time.monotonic() + 30
        while not server.seen("/stuck.png") and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in _chromium_of(catalog.path):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_when_loading)
    killer.start()
    result = catalog.capture_page(url, options=PageOptions(width=800, height=600, time_limit=20))
    killer.join()

    assert not result.ok and result.error is not None, result
    assert catalog.history()[-1].action == "capture.failed"
    assert blob_files(catalog) == before and work_area(catalog) == []


@needs_chromium
@pytest.mark.no_postgresql_pass  # waiting for a limit the database plays no part in
def test_the_hard_time_limit_kills_the_browser_and_keeps_nothing(catalog: Catalog, server: MediaServer) -> None:
    server.route("/stuck.png", Route(body=IMAGE, media_type="image/png", delay=30))
    url = server.route(
        "/stuck", Route(body=b"<html><body><img src='/stuck.png'></body></html>", media_type="text/html")
    )
    before = blob_files(catalog)

    started = time.monotonic()
    # (the image never comes: the limit is met whether the browser took a second to start or more)
    result = catalog.capture_page(url, options=PageOptions(time_limit=4, hard_limit=4))

    assert time.monotonic() - started < 21
    assert not result.ok and result.error is not None and "did not finish within 4 s" in result.error
    assert _chromium_of(catalog.path) == [] and blob_files(catalog) == before
    assert catalog.history()[-1].action == "capture.failed"


def test_without_chromium_capture_page_says_so_in_one_line(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    Catalog.init(tmp_path / "catalog", operator="tester").close()

    done = run_cli("capture", "--page", "https://example.org/", "--catalog", tmp_path / "catalog")

    assert done.code == 2 and "Traceback" not in done.err
    [line] = done.err.strip().splitlines()
    assert "Chromium is not installed" in line and "apt-get install chromium" in line


def test_media_only_options_are_refused_with_page(tmp_path: Path, run_cli: Any) -> None:
    Catalog.init(tmp_path / "catalog", operator="tester").close()
    done = run_cli("capture", "--page", "--format", "best", "https://example.org/", "--catalog", tmp_path / "catalog")
    assert done.code != 0 and "--format cannot be used with --page" in done.err


header = st.tuples(
    st.sampled_from(["Content-Type", "Content-Encoding", "content-length", "Content-Length", "ETag", "Vary"]),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
)


@given(st.lists(header, max_size=8), st.integers(min_value=0, max_value=10**9))
def test_recorded_headers_of_a_decoded_body_keep_every_value_and_announce_its_length(
    headers: list[tuple[str, str]], size: int
) -> None:
    """Each header sent is kept (an encoding one under ``X-Archive-Orig-``), and the body, as
    Chromium decoded it, is announced by exactly one Content-Length when it was encoded."""
    kept = recorded_headers(headers, size)
    encoded = any(n.lower() == "content-encoding" and v.strip().lower() not in ("", "identity") for n, v in headers)
    if not encoded:
        assert kept == headers
        return
    assert [v for n, v in kept if n.lower() == "content-length"] == [str(size)]
    assert not any(n.lower() == "content-encoding" for n, _ in kept)
    originals = [(n.removeprefix("X-Archive-Orig-"), v) for n, v in kept[:-1]]
    assert originals == headers


@needs_chromium
@pytest.mark.no_postgresql_pass  # BROWSER_ONLY (see above)
def test_a_compressed_response_is_recorded_decoded_with_its_encoding_named_and_cookies_withheld(
    catalog: Catalog, server: MediaServer, tmp_path: Path
) -> None:
    """Chromium hands bodies over decoded: the WARC holds the decoded bytes, announces their
    length, keeps the server's Content-Encoding and Content-Length under X-Archive-Orig-; a
    cookie the server set never reaches the WARC (Chromium does not show Set-Cookie to the
    interception, and a Cookie header's value would be withheld)."""
    style = b"body { color: #123456; }\n" * 400
    server.route(
        "/style.css",
        Route(body=gzip.compress(style), media_type="text/css", headers={"Content-Encoding": "gzip"}),
    )
    page = b"<html><head><link rel=stylesheet href='/style.css'></head><body><p>styled</p></body></html>"
    secret = "s3ss10n-c00k1e-value"
    url = server.route("/styled", Route(body=page, media_type="text/html", headers={"Set-Cookie": f"id={secret}"}))

    result = catalog.capture_page(url, options=FAST)

    assert result.ok, result
    record = catalog.record(result.record_id)
    warc = warc_of(catalog, record, tmp_path)
    seen = responses(warc)
    _, body, css = seen[server.url("/style.css")]
    assert body == style
    assert css.http_headers.get_header("Content-Length") == str(len(style))
    assert css.http_headers.get_header("X-Archive-Orig-Content-Encoding") == "gzip"
    assert css.http_headers.get_header("Content-Encoding") is None
    assert secret.encode() not in gzip.decompress(warc.read_bytes())
    assert seen[url][2].http_headers.get_header("Set-Cookie") in (None, model.WITHHELD)
    assert [s.headers.get("Cookie") for s in server.seen("/style.css")] == [f"id={secret}"]  # it was sent
    done = subprocess.run([BIN / "warcio", "check", "-v", warc], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_chromium
@pytest.mark.no_postgresql_pass  # BROWSER_ONLY (see above)
def test_an_error_page_is_captured_and_said_to_be_one(catalog: Catalog, server: MediaServer) -> None:
    url = server.route("/gone", Route(body=b"<html><body>Removed</body></html>", media_type="text/html", status=404))
    result = catalog.capture_page(url, options=FAST)
    assert result.ok and result.not_kept == "the server answered HTTP 404: what was captured is its error page"
    assert catalog.record(result.record_id).acquisitions[0].http_status == 404


@needs_chromium
@pytest.mark.no_postgresql_pass  # BROWSER_ONLY (see above)
def test_a_page_that_posts_a_body_it_calls_brotli_is_captured(
    catalog: Catalog, server: MediaServer, tmp_path: Path
) -> None:
    # A script may say anything of what it posts: the index of the archive reads request bodies
    # (a POST's lookup key), and warcio's brotli decoder fails with the brotli package.
    page = b"""<html><head><title>Posting</title></head><body><p id="x">waiting</p><script>
    fetch("/api", {method: "POST", headers: {"Content-Encoding": "br", "Content-Type": "text/plain"},
    body: "not brotli at all"}).then(r => r.text()).then(t => { document.getElementById("x").textContent = t; });
    </script></body></html>"""
    server.route("/api", Route(body=b"answered", media_type="text/plain"))
    url = server.route("/posting", Route(body=page, media_type="text/html"))

    result = catalog.capture_page(url, options=FAST)

    assert result.ok, result.error
    assert [s.headers.get("Content-Encoding") for s in server.requests if s.method == "POST"] == ["br"]
    assert responses(warc_of(catalog, catalog.record(result.record_id), tmp_path))[server.url("/api")][1] == b"answered"


@needs_chromium
def test_capture_page_on_the_command_line(tmp_path: Path, server: MediaServer, run_cli: Any) -> None:
    url = server.route("/article", Route(body=SCRIPT_PAGE.encode(), media_type="text/html; charset=utf-8"))
    urls = tmp_path / "urls.txt"
    urls.write_text(f"# pages\n{url}\n", encoding="utf-8")
    Catalog.init(tmp_path / "catalog", operator="tester").close()

    done = run_cli("capture", "--page", "--from-file", urls, "--catalog", tmp_path / "catalog", "--tag", "news")

    assert done.code == 0, done.err
    record_id, sha, status, shown = done.out.strip().split("\t")
    assert (status, shown) == ("new", url) and "captured 1 of 1 page(s)" in done.err
    with Catalog.open(tmp_path / "catalog") as catalog:
        record = catalog.record(record_id)
        assert entry(record, Role.SCREENSHOT).artifact.sha256 == sha and "news" in record.tags


@needs_chromium
@pytest.mark.no_postgresql_pass  # BROWSER_ONLY (see above)
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bodies=st.lists(st.binary(max_size=3000), min_size=1, max_size=4))
def test_every_body_a_page_fetches_is_in_the_warc_as_it_was_served(
    server: MediaServer, tmp_path_factory: pytest.TempPathFactory, bodies: list[bytes]
) -> None:
    """Whatever bytes the server sends to a script's fetch() calls are the bytes of their
    response records, each fetched once."""
    folder = tmp_path_factory.mktemp("property")
    tag = folder.name
    for n, body in enumerate(bodies):
        server.route(f"/{tag}/b{n}", Route(body=body, media_type="application/octet-stream"))
    calls = "".join(f'fetch("/{tag}/b{n}").then(r => r.arrayBuffer());' for n in range(len(bodies)))
    page = f"<html><body><script>{calls}</script></body></html>".encode()
    url = server.route(f"/{tag}/page", Route(body=page, media_type="text/html"))
    with Catalog.init(folder / "catalog", operator="tester") as catalog:
        result = catalog.capture_page(url, options=FAST)
        assert result.ok, result
        seen = responses(warc_of(catalog, catalog.record(result.record_id), folder))
    for n, body in enumerate(bodies):
        assert seen[server.url(f"/{tag}/b{n}")][1] == body
        assert len(server.seen(f"/{tag}/b{n}")) == 1


@needs_chromium
@pytest.mark.no_postgresql_pass  # BROWSER_ONLY (see above)
def test_a_cookie_a_script_sets_and_copies_into_urls_and_bodies_never_reaches_the_warc(
    catalog: Catalog, server: MediaServer, tmp_path: Path
) -> None:
    """The WARC says every cookie value found in a URL or a request body is withheld: so it must
    be for the cookies the page itself sets -- by JavaScript (``document.cookie``, its value
    computed, so not in any served byte) as by the server's Set-Cookie -- and then copies into
    the URL or the body of a request, the first request that carries it too."""
    server.route("/track", Route(body=b"ok", media_type="text/plain"))
    server.route("/later", Route(body=b"ok", media_type="text/plain"))
    served = "srv-c00k1e-value"
    computed = "js-" + "c0mputed-v4lue"  # the script builds it: it is in no served byte
    page = b"""<html><body><p>tracked</p><script>
    const v = "js-" + "c0mputed-v4lue";
    document.cookie = "jsid=" + v;
    const s = document.cookie.match(/srv=([^;]+)/)[1];
    fetch("/track?c=" + v + "&s=" + s, {method: "POST", body: "c=" + v + "&s=" + s})
      .then(() => fetch("/later?c=" + v));
    </script></body></html>"""
    url = server.route("/tracked", Route(body=page, media_type="text/html", headers={"Set-Cookie": f"srv={served}"}))

    result = catalog.capture_page(url, options=FAST)

    assert result.ok, result
    assert len(server.seen("/track")) == 1 and len(server.seen("/later")) == 1  # they were sent
    warc = warc_of(catalog, catalog.record(result.record_id), tmp_path).read_bytes()
    assert computed.encode() not in gzip.decompress(warc) and served.encode() not in gzip.decompress(warc)
    requests = [r for r in ArchiveIterator(io.BytesIO(warc)) if r.rec_type == "request"]
    assert sum("/track?" in (r.rec_headers.get_header("WARC-Target-URI") or "") for r in requests) == 1


@needs_chromium
@pytest.mark.no_postgresql_pass  # BROWSER_ONLY (see above)
def test_what_the_print_fetches_is_in_the_warc(catalog: Catalog, server: MediaServer, tmp_path: Path) -> None:
    """A print style sheet's image is fetched only when the PDF is printed; it is in the PDF,
    so its bytes must be in the archive, fetched once."""
    server.route("/print-bg.png", Route(body=IMAGE, media_type="image/png"))
    page = b"""<html><head><style>@media print { body { background: url(/print-bg.png) } }</style></head>
<body><p>printed</p></body></html>"""
    url = server.route("/printed", Route(body=page, media_type="text/html"))

    result = catalog.capture_page(url, options=FAST)

    assert result.ok, result
    assert len(server.seen("/print-bg.png")) == 1
    seen = responses(warc_of(catalog, catalog.record(result.record_id), tmp_path))
    assert seen[server.url("/print-bg.png")][1] == IMAGE


@needs_chromium
@pytest.mark.no_postgresql_pass  # BROWSER_ONLY (see above)
def test_the_browser_does_not_outlive_a_killed_catalog(server: MediaServer, tmp_path: Path) -> None:
    """A catalog process killed mid-capture (SIGKILL, the OOM killer) leaves no browser behind:
    nobody would enforce the hard limit, and it would go on loading into an abandoned area."""
    server.route("/stuck.png", Route(body=IMAGE, media_type="image/png", delay=60))
    url = server.route("/stuck", Route(body=STUCK, media_type="text/html"))
    Catalog.init(tmp_path / "catalog", operator="tester").close()
    script = (
        "import sys; from evidence_catalog import Catalog; from evidence_catalog.capture.page import PageOptions\n"
        "with Catalog.open(sys.argv[1]) as c: c.capture_page(sys.argv[2], options=PageOptions(time_limit=60))\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script, tmp_path / "catalog", url], env=os.environ)
    try:
        deadline = time.monotonic() + 60
        while not server.seen("/stuck.png") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _chromium_of(tmp_path / "catalog")
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while _chromium_of(tmp_path / "catalog") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _chromium_of(tmp_path / "catalog") == []
