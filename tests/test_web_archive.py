"""The WACZ web archive of a capture: every HTTP exchange yt-dlp made, recorded as it was made
(tests/media_server.py: a real server on 127.0.0.1), checked with warcio and py-wacz's own
commands, and the WARC writer's round trip as a property."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import io
import itertools
import json
import subprocess
import sys
import urllib.parse
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from warcio.archiveiterator import ArchiveIterator

from evidence_catalog import Catalog, model
from evidence_catalog.capture import CaptureOptions
from evidence_catalog.capture.warc import WITHHELD_HEADERS, WarcRecorder
from evidence_catalog.capture.webarchive import Page, package
from evidence_catalog.extract import sniff_media_type
from evidence_catalog.serialize import unstructure
from tests.media_server import MediaServer, Route, video_page
from tests.test_capture import CLIP, FAST, blob_files, sha256, stored, unused_port, work_area

Role = model.ArtifactRole
BIN = Path(sys.executable).parent
SECRET = "s3ss10n-c00k1e-value"
SERVER_SECRET = "server-set-c00k1e-value"


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    with Catalog.init(tmp_path / "catalog", operator="tester") as opened:
        yield opened


@pytest.fixture
def server() -> Iterator[MediaServer]:
    with MediaServer() as running:
        yield running


def wacz_of(catalog: Catalog, record: model.EvidenceRecord) -> Path:
    [entry] = [e for e in record.artifacts if e.role is Role.WEB_ARCHIVE]
    assert entry.artifact.media_type == "application/wacz"
    return catalog.artifact_path(entry.artifact.sha256)


def warc_records(wacz: Path) -> list[dict[str, Any]]:
    """Every record of the WARC in *wacz*: its WARC headers, HTTP head and body as stored."""
    with zipfile.ZipFile(wacz) as zf:
        [name] = [n for n in zf.namelist() if n.startswith("archive/")]
        data = zf.read(name)
    found = []
    for record in ArchiveIterator(io.BytesIO(data), check_digests=True):
        body = record.raw_stream.read()
        assert record.digest_checker.passed is not False, record.digest_checker.problems
        found.append(
            {
                "type": record.rec_type,
                "uri": record.rec_headers.get_header("WARC-Target-URI"),
                "warc": dict(record.rec_headers.headers),
                "status": record.http_headers.get_statuscode() if record.http_headers else None,
                "http": list(record.http_headers.headers) if record.http_headers else [],
                "body": body,
            }
        )
    return found


def check_with_tools(wacz: Path, tmp_path: Path) -> None:
    """``wacz validate`` on the WACZ and ``warcio check`` on the WARC inside pass."""
    done = subprocess.run([BIN / "wacz", "validate", "-f", wacz], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "is valid" in done.stdout, done.stdout + done.stderr
    with zipfile.ZipFile(wacz) as zf:
        [name] = [n for n in zf.namelist() if n.startswith("archive/")]
        warc = tmp_path / Path(name).name
        warc.write_bytes(zf.read(name))
    done = subprocess.run([BIN / "warcio", "check", "-v", warc], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "digest pass" in done.stdout, done.stdout + done.stderr
    assert "fail" not in done.stdout, done.stdout


def everything_in(wacz: Path) -> bytes:
    """The WACZ's entries, and the WARC's records, decompressed: what a reader of it can see."""
    seen = [wacz.read_bytes()]
    with zipfile.ZipFile(wacz) as zf:
        for name in zf.namelist():
            data = zf.read(name)
            seen.append(data)
            if name.endswith(".gz"):
                seen.append(gzip.decompress(data))
    return b"\n".join(seen)


# -- a capture and its archive --------------------------------------------------------------------


def test_a_capture_stores_a_wacz_of_every_exchange_it_made(
    catalog: Catalog, server: MediaServer, tmp_path: Path
) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(f"# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\t{SECRET}\n")
    set_cookie = {"Set-Cookie": f"tracker={SERVER_SECRET}; Path=/"}
    video = server.route("/media/clip.mp4", Route(body=CLIP, media_type="video/mp4", headers=set_cookie))
    dead = f"http://127.0.0.1:{unused_port()}/poster.jpg"  # refused: a failed attempt
    html = video_page(video, title="Shelling of the market", thumbnail_url=dead)
    page = server.route("/watch/1", Route(body=html, media_type="text/html", headers=set_cookie))
    short = server.route("/s/abc", Route(redirect="/watch/1"))

    options = CaptureOptions(retries=0, socket_timeout=2, cookies_file=cookies)
    result = catalog.capture_url(short, options=options, analyze=False)

    assert result.ok, result.error
    record = catalog.record(result.record_id)
    wacz = wacz_of(catalog, record)
    check_with_tools(wacz, tmp_path)
    records = warc_records(wacz)
    responses = [r for r in records if r["type"] == "response"]
    requests = [r for r in records if r["type"] == "request"]

    # The redirect is two exchanges: the short link's 302, then the page.
    [hop] = [r for r in responses if r["uri"] == short]
    assert hop["status"] == "302" and ("Location", "/watch/1") in hop["http"]
    assert any(r["uri"] == page and r["status"] == "200" and r["body"] == html for r in responses)
    # The media in the WARC is the stored media, byte for byte, and its payload digest is the
    # catalog's SHA-256 of it.
    [media] = [r for r in responses if r["uri"] == video]
    assert media["body"] == stored(catalog, result.sha256) == CLIP
    assert media["warc"]["WARC-Payload-Digest"] == f"sha256:{sha256(CLIP)}"
    assert "WARC-Truncated" not in media["warc"]
    # The refused thumbnail: its request, and a metadata record saying why there is no response.
    [failed] = [r for r in records if r["type"] == "metadata"]
    assert failed["uri"] == dead and failed["body"].startswith(b"error: ") and b"refused" in failed["body"].lower()
    assert any(r["uri"] == dead for r in requests)
    # Every response has its request, linked.
    ids = {r["warc"]["WARC-Record-ID"] for r in records}
    assert all(r["warc"]["WARC-Concurrent-To"] in ids for r in requests)
    assert len(requests) == len(responses) + 1

    # Credentials withheld, names kept, and said so; the values nowhere in the archive.
    assert all(("Cookie", model.WITHHELD) in r["http"] for r in requests if r["uri"] != dead)
    assert ("Set-Cookie", model.WITHHELD) in media["http"]
    [info] = [r for r in records if r["type"] == "warcinfo"]
    assert b"withheld" in info["body"] and all(name.encode() in info["body"] for name in WITHHELD_HEADERS)
    seen = everything_in(wacz)
    assert SECRET.encode() not in seen and SERVER_SECRET.encode() not in seen
    with zipfile.ZipFile(wacz) as zf:
        datapackage = json.loads(zf.read("datapackage.json"))
        pages = [json.loads(line) for line in zf.read("pages/pages.jsonl").splitlines()]
        assert zf.namelist()[0] == "datapackage.json"
    assert "Cookie" in datapackage["withheld"] and "Withheld" in datapackage["description"]
    # The captured page (the URL asked for) is the entry point.
    assert [p["url"] for p in pages[1:]] == [short] == [datapackage["mainPageURL"]]
    assert pages[1]["title"].startswith("Shelling of the market")

    # The archive's SHA-256 is in the capture's custody event, like the media's.
    sha = hashlib.sha256(wacz.read_bytes()).hexdigest()
    [event] = [e for e in catalog.history() if e.action == "media.captured"]
    assert sha in json.dumps(unstructure(event)) and result.sha256 in json.dumps(unstructure(event))
    [acquisition] = record.acquisitions
    assert sha in acquisition.other_artifacts
    assert {"warcio", "py-wacz"} <= {t.name for t in acquisition.tools}
    assert "Cookie, Set-Cookie header values in the web archive (WACZ)" in acquisition.withheld
    assert catalog.verify().ok
    assert work_area(catalog) == []


CSRF = "csrf-t0ken-from-the-c00kie-jar"


def with_cookie_api_extractor(monkeypatch: pytest.MonkeyPatch) -> None:
    """yt-dlp made with, first of its extractors, one that does what several of yt-dlp's own do
    with the operator's cookies (twitter.py: the ct0 cookie as an x-csrf-token header; globo.py:
    a session cookie in a POST body; others in a query string)."""
    from yt_dlp.extractor.common import InfoExtractor

    from evidence_catalog.capture import youtubedl

    class CookieApiIE(InfoExtractor):  # type: ignore[misc]
        _VALID_URL = r"http://127\.0\.0\.1:\d+/api-site/(?P<id>\w+)"

        def _real_extract(self, url: str) -> dict[str, Any]:
            video_id = self._match_id(url)
            token = self._get_cookies(url)["ct0"].value
            api = url.replace("/api-site/", "/api/") + f"?csrf={token}"
            body = json.dumps({"Authorization": f"Bearer {token}"}).encode()
            info = self._download_json(api, video_id, data=body, headers={"X-CSRF-Token": token})
            return {"id": video_id, "title": "Cookie API", "url": info["media"], "ext": "mp4"}

    original = youtubedl.make_youtube_dl

    def make(params: dict[str, Any]) -> Any:
        ydl = original(params)
        ydl.add_info_extractor(CookieApiIE())
        ydl._ies = {"CookieApi": ydl._ies.pop("CookieApi"), **ydl._ies}
        return ydl

    monkeypatch.setattr(youtubedl, "make_youtube_dl", make)


def test_cookie_values_an_extractor_copies_elsewhere_are_withheld_too(
    catalog: Catalog, server: MediaServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_cookie_api_extractor(monkeypatch)
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(f"# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tct0\t{CSRF}\n")
    video = server.route("/media/api.mp4", Route(body=CLIP, media_type="video/mp4"))
    # The API echoes the token in a header of its own, as some do.
    server.route(
        "/api/v1",
        Route(
            body=json.dumps({"media": video}).encode(), media_type="application/json", headers={"X-Echo-Token": CSRF}
        ),
    )
    url = server.url("/api-site/v1")

    result = catalog.capture_url(
        url, options=CaptureOptions(retries=0, socket_timeout=2, cookies_file=cookies), analyze=False
    )

    assert result.ok, result.error
    [sent] = server.seen("/api/v1")
    assert {k.lower(): v for k, v in sent.headers.items()}["x-csrf-token"] == CSRF  # the extractor sent it
    record = catalog.record(result.record_id)
    wacz = wacz_of(catalog, record)
    check_with_tools(wacz, tmp_path)
    seen = everything_in(wacz)
    assert CSRF.encode() not in seen
    assert urllib.parse.quote(CSRF).encode() not in seen and base64.b64encode(CSRF.encode())[:24] not in seen
    records = warc_records(wacz)
    [request] = [r for r in records if r["type"] == "request" and "/api/v1" in r["uri"]]
    assert ("x-csrf-token", model.WITHHELD) in [(k.lower(), v) for k, v in request["http"]]
    assert model.WITHHELD.encode() in request["body"]
    [response] = [r for r in records if r["type"] == "response" and "/api/v1" in r["uri"]]
    assert ("X-Echo-Token", model.WITHHELD) in response["http"]
    [acquisition] = record.acquisitions
    assert any("X-Csrf-Token" in w and "URL" in w for w in acquisition.withheld), acquisition.withheld
    # (The acquisition's final_url is the API's URL, token and all: outside the archive.)


def test_a_compressed_page_is_archived_as_sent_and_an_error_response_too(
    catalog: Catalog, server: MediaServer, tmp_path: Path
) -> None:
    video = server.route("/v/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    missing = server.url("/v/poster.jpg")  # 404
    html = video_page(video, title="Compressed", thumbnail_url=missing)
    sent = gzip.compress(html, mtime=0)
    page = server.route("/v/page", Route(body=sent, media_type="text/html", headers={"Content-Encoding": "gzip"}))

    result = catalog.capture_url(page, options=FAST, analyze=False)

    assert result.ok, result.error
    record = catalog.record(result.record_id)
    wacz = wacz_of(catalog, record)
    check_with_tools(wacz, tmp_path)
    responses = [r for r in warc_records(wacz) if r["type"] == "response"]
    # The body as it came off the connection (gzip), the snapshot as the extractor read it.
    assert any(r["uri"] == page and r["body"] == sent for r in responses)
    [snapshot] = [e for e in record.artifacts if e.role is Role.PAGE_SNAPSHOT]
    assert stored(catalog, snapshot.artifact.sha256) == html
    [not_found] = [r for r in responses if r["uri"] == missing]
    # yt-dlp did not read the error's body: recorded as far as it was read, and marked so.
    assert not_found["status"] == "404" and not_found["body"] == b""
    assert not_found["warc"]["WARC-Truncated"] == "unspecified"


def test_a_head_that_is_not_ascii_is_recorded_as_sent_and_fetched_once(
    catalog: Catalog, server: MediaServer, tmp_path: Path
) -> None:
    # http.client reads a head as ISO-8859-1; warcio cannot write such a status line, and
    # percent-encodes such a value.  (A name that is not ASCII, http.client drops.)
    headers = {"X-Test": "caf\u00e9 \u00ff"}
    url = server.route(
        "/files/odd.mp4", Route(body=CLIP, media_type="video/mp4", reason="OK caf\u00e9", headers=headers)
    )

    result = catalog.capture_url(url, options=FAST, analyze=False)

    assert result.ok, result.error
    assert len(server.seen("/files/odd.mp4")) == 1  # not fetched again by another handler
    wacz = wacz_of(catalog, catalog.record(result.record_id))
    check_with_tools(wacz, tmp_path)
    [media] = [r for r in warc_records(wacz) if r["type"] == "response" and r["uri"] == url]
    assert media["body"] == CLIP and media["warc"]["WARC-Payload-Digest"] == f"sha256:{result.sha256}"
    with zipfile.ZipFile(wacz) as zf:
        [name] = [n for n in zf.namelist() if n.startswith("archive/")]
        warc = gzip.decompress(zf.read(name))
    assert b" 200 OK caf\xe9\r\n" in warc and b"\r\nX-Test: caf\xe9 \xff\r\n" in warc  # the bytes sent


def test_a_response_the_recording_fails_on_is_not_fetched_again(
    catalog: Catalog, server: MediaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evidence_catalog.capture.warc import Exchange

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("the recorder broke")

    monkeypatch.setattr(Exchange, "respond", broken)
    url = server.route("/files/clip.mp4", Route(body=CLIP, media_type="video/mp4"))

    result = catalog.capture_url(url, options=FAST, analyze=False)

    assert result.ok, result.error
    assert len(server.seen("/files/clip.mp4")) == 1
    records = warc_records(wacz_of(catalog, catalog.record(result.record_id)))
    [note] = [r for r in records if r["type"] == "metadata"]
    assert note["uri"] == url and b"could not be recorded: RuntimeError: the recorder broke" in note["body"]


def test_a_large_body_is_spooled_and_recorded_whole(catalog: Catalog, server: MediaServer, tmp_path: Path) -> None:
    big = bytes(range(256)) * (3 * 4096 + 7)  # over the in-memory spool's size
    url = server.route("/files/big.mp4", Route(body=big, media_type="video/mp4"))

    result = catalog.capture_url(url, options=FAST, analyze=False)

    assert result.ok, result.error
    wacz = wacz_of(catalog, catalog.record(result.record_id))
    [media] = [r for r in warc_records(wacz) if r["type"] == "response" and r["uri"] == url]
    assert media["body"] == big == stored(catalog, result.sha256)


def test_a_chunked_body_read_to_its_end_is_not_marked_truncated(
    catalog: Catalog, server: MediaServer, tmp_path: Path
) -> None:
    # http.client reads the last chunk and the terminating one in the same read and closes the
    # response: the body ended there, though no empty read follows it.
    url = server.route("/files/chunked.mp4", Route(body=CLIP, media_type="video/mp4", chunked=1000))

    result = catalog.capture_url(url, options=FAST, analyze=False)

    assert result.ok, result.error
    wacz = wacz_of(catalog, catalog.record(result.record_id))
    check_with_tools(wacz, tmp_path)
    [media] = [r for r in warc_records(wacz) if r["type"] == "response" and r["uri"] == url]
    assert ("Transfer-Encoding", "chunked") in media["http"]
    assert media["body"] == CLIP == stored(catalog, result.sha256)
    assert "WARC-Truncated" not in media["warc"], media["warc"]


def test_a_body_read_to_the_close_of_its_connection_is_whole(
    catalog: Catalog, server: MediaServer, tmp_path: Path
) -> None:
    url = server.route("/files/unannounced.mp4", Route(body=CLIP, media_type="video/mp4", unannounced=True))

    result = catalog.capture_url(url, options=FAST, analyze=False)

    assert result.ok, result.error
    wacz = wacz_of(catalog, catalog.record(result.record_id))
    [media] = [r for r in warc_records(wacz) if r["type"] == "response" and r["uri"] == url]
    assert not any(name.lower() == "content-length" for name, _ in media["http"])
    assert media["body"] == CLIP and "WARC-Truncated" not in media["warc"], media["warc"]


def test_a_download_cut_short_and_resumed_is_every_piece_marked_as_it_ended(
    catalog: Catalog, server: MediaServer, tmp_path: Path
) -> None:
    # Each answer stops 2000 bytes after where it starts; yt-dlp resumes with a Range request.
    url = server.route("/files/cut.mp4", Route(body=CLIP, media_type="video/mp4", truncate_at=2000))

    result = catalog.capture_url(url, options=CaptureOptions(retries=10, socket_timeout=2), analyze=False)

    assert result.ok, result.error
    assert stored(catalog, result.sha256) == CLIP
    wacz = wacz_of(catalog, catalog.record(result.record_id))
    check_with_tools(wacz, tmp_path)
    pieces = [r for r in warc_records(wacz) if r["type"] == "response" and r["uri"] == url]
    assert len(pieces) >= 3 and [p["status"] for p in pieces[1:]] == ["206"] * (len(pieces) - 1)
    # The server closed the connection before the length it announced: a disconnect, not a
    # reader that stopped.
    assert all(p["warc"].get("WARC-Truncated") == "disconnect" for p in pieces[:-1]), [p["warc"] for p in pieces]
    assert "WARC-Truncated" not in pieces[-1]["warc"]
    # No one response is the media: its payload digest is not the artifact's SHA-256.
    assert f"sha256:{result.sha256}" not in {p["warc"]["WARC-Payload-Digest"] for p in pieces}


def test_no_archive_when_asked_not_to(catalog: Catalog, server: MediaServer) -> None:
    url = server.route("/files/clip.mp4", Route(body=CLIP, media_type="video/mp4"))

    result = catalog.capture_url(url, options=CaptureOptions(retries=0, socket_timeout=2, archive=False), analyze=False)

    assert result.ok, result.error
    record = catalog.record(result.record_id)
    assert Role.WEB_ARCHIVE not in {e.role for e in record.artifacts}
    [acquisition] = record.acquisitions
    assert "archive=off" in acquisition.settings
    assert not {"warcio", "py-wacz"} & {t.name for t in acquisition.tools}


def test_a_failed_capture_stores_no_archive(catalog: Catalog, server: MediaServer) -> None:
    url = server.route("/files/cut.mp4", Route(body=CLIP, media_type="video/mp4", truncate_at=100))

    result = catalog.capture_url(url, options=FAST)

    assert not result.ok and result.record_id is None
    assert blob_files(catalog) == [] and work_area(catalog) == []
    assert catalog.verify().ok


def test_the_web_archive_travels_through_a_bag_and_back(catalog: Catalog, server: MediaServer, tmp_path: Path) -> None:
    url = server.route("/files/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    result = catalog.capture_url(url, options=FAST, analyze=False)
    assert result.ok, result.error
    original = catalog.record(result.record_id)
    catalog.export(tmp_path / "bag", format="bagit")
    exported = [p.name for p in (tmp_path / "bag" / "data").rglob("*.wacz")]
    assert exported, "the WACZ is exported under a .wacz name"

    with Catalog.init(tmp_path / "other", operator="tester") as other:
        other.import_records(tmp_path / "bag")
        imported = other.record(result.record_id)
        [entry] = [e for e in imported.artifacts if e.role is Role.WEB_ARCHIVE]
        assert entry == next(e for e in original.artifacts if e.role is Role.WEB_ARCHIVE)
        assert other.verify().ok


def test_the_cli_capture_no_archive_option(tmp_path: Path, server: MediaServer) -> None:
    url = server.route("/files/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    path = tmp_path / "c"
    Catalog.init(path, operator="tester").close()
    command = [BIN / "evidence-catalog", "capture", "--catalog", path, "--no-archive", "--no-analyze", "--retries", "0"]
    done = subprocess.run([*command, url], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with Catalog.open(path) as opened:
        [record_id] = [line.split("\t")[0] for line in done.stdout.splitlines()]
        assert Role.WEB_ARCHIVE not in {e.role for e in opened.record(record_id).artifacts}


# -- the recording's dependencies -----------------------------------------------------------------


def test_urllib3_still_has_the_methods_the_recording_reads_bodies_through() -> None:
    from urllib3.response import HTTPResponse

    for name in ("_fp_read", "_handle_chunk", "read_chunked", "release_conn", "close"):
        assert callable(getattr(HTTPResponse, name, None)), name


def test_a_request_no_recorded_handler_sends_is_named_in_the_archive(tmp_path: Path) -> None:
    # A live stream's WebSocket (yt-dlp's Websockets handler, or none when the package is
    # missing): not recorded byte for byte, but not invisible either.
    from evidence_catalog.capture import youtubedl

    log = youtubedl.Log()
    ydl = youtubedl.make_youtube_dl(youtubedl.params(tmp_path, FAST, log, lambda _: None))
    recorder = WarcRecorder(tmp_path / "data.warc.gz", software="test")
    ydl.start_capture(log, tmp_path, None, recorder)
    live = f"ws://127.0.0.1:{unused_port()}/live"
    with pytest.raises(Exception):  # noqa: B017 -- refused, or no WebSocket support installed
        ydl.urlopen(live)
    ydl.close()
    recorder.close()

    with open(recorder.path, "rb") as stream:
        found = [(r.rec_type, r.rec_headers.get_header("WARC-Target-URI")) for r in ArchiveIterator(stream)]
    assert ("request", live) in found and ("metadata", live) in found


# -- the writer and the package, without yt-dlp ---------------------------------------------------

_TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=20)
_VALUE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(str.strip)
_HEADERS = st.lists(st.tuples(st.one_of(_TOKEN, st.sampled_from(WITHHELD_HEADERS)), _VALUE), max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    request_headers=_HEADERS,
    response_headers=_HEADERS,
    body=st.binary(max_size=5000),
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=6),
    status=st.integers(min_value=200, max_value=599).filter(lambda s: s not in (204, 304)),  # those have no body
    announced=st.booleans(),
    read_all=st.booleans(),
)
def test_what_is_recorded_reads_back_the_same(
    tmp_path_factory: pytest.TempPathFactory,
    request_headers: list[tuple[str, str]],
    response_headers: list[tuple[str, str]],
    body: bytes,
    cuts: list[int],
    status: int,
    announced: bool,
    read_all: bool,
) -> None:
    folder = tmp_path_factory.mktemp("warc")
    path = folder / "data.warc.gz"
    headers = [(n, v) for n, v in response_headers if n.lower() not in ("content-length", "transfer-encoding")]
    if announced:
        headers.append(("Content-Length", str(len(body))))
    read = body if read_all else body[: len(body) // 2]
    recorder = WarcRecorder(path, software="test")
    exchange = recorder.exchange("GET", "http://example.test/a?b=1", request_headers)
    exchange.respond(status, "Reason", headers)
    edges = sorted({0, len(read), *(c for c in cuts if c <= len(read))})
    for start, end in itertools.pairwise(edges):
        exchange.body(read[start:end])
    if read_all:
        exchange.end()
    recorder.close()

    def expected(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(n, model.WITHHELD if n.lower() in {w.lower() for w in WITHHELD_HEADERS} else v) for n, v in pairs]

    found = {}
    with open(path, "rb") as stream:
        for record in ArchiveIterator(stream, check_digests=True):
            found[record.rec_type] = (record, record.raw_stream.read())
            assert record.digest_checker.passed is not False, record.digest_checker.problems
    response, payload = found["response"]
    request, _ = found["request"]
    assert payload == read
    assert response.http_headers.get_statuscode() == str(status)
    assert response.http_headers.headers == expected(headers)
    assert request.http_headers.headers == expected(request_headers)
    assert response.rec_headers.get_header("WARC-Payload-Digest") == f"sha256:{hashlib.sha256(read).hexdigest()}"
    truncated = response.rec_headers.get_header("WARC-Truncated")
    assert truncated == (None if (read_all or (announced and not body)) else "unspecified")


_SECRET = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~+/=%", min_size=6, max_size=40
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    secret=_SECRET.map(lambda tail: f"sEcReT{tail}"),
    around=st.tuples(_VALUE, _VALUE),
    places=st.sets(st.sampled_from(["header", "url", "body", "response"]), min_size=1),
    quoted=st.booleans(),
)
def test_a_secret_is_withheld_wherever_it_is_in_an_exchange(
    tmp_path_factory: pytest.TempPathFactory, secret: str, around: tuple[str, str], places: set[str], quoted: bool
) -> None:
    path = tmp_path_factory.mktemp("warc") / "data.warc.gz"
    form = urllib.parse.quote(secret, safe="") if quoted else secret
    held = f"{around[0]}{form}{around[1]}"
    url = f"http://example.test/api?q={form if 'url' in places else 'x'}"
    headers = [("Host", "example.test"), ("X-Token", held if "header" in places else "x"), ("X-Word", "short")]
    body = held.encode() if "body" in places else b"plain"
    recorder = WarcRecorder(path, software="test")
    exchange = recorder.exchange("POST", url, headers, body, secrets=["short", secret])
    exchange.respond(200, "OK", [("Content-Length", "2"), ("X-Echo", held if "response" in places else "x")])
    exchange.body(b"ok")
    recorder.close()

    with open(path, "rb") as stream:
        warc = b"".join(gzip.decompress(stream.read()).split(b"\n"))
    assert secret.encode() not in warc and urllib.parse.quote(secret, safe="").encode() not in warc
    assert ("URLs" in recorder.withheld_elsewhere) == ("url" in places)
    assert ("bodies" in recorder.withheld_elsewhere) == ("body" in places)
    assert {"X-Token", "X-Echo"} & recorder.withheld == {
        name for name, place in (("X-Token", "header"), ("X-Echo", "response")) if place in places
    }
    assert b"X-Word: short" in warc  # a short cookie value is not looked for (too common a word)


def small_warc(folder: Path) -> tuple[Path, Page]:
    recorder = WarcRecorder(folder / "data.warc.gz", software="test")
    exchange = recorder.exchange("GET", "http://example.test/", [("Host", "example.test")])
    exchange.respond(200, "OK", [("Content-Type", "text/html"), ("Content-Length", "5")])
    exchange.body(b"hello")
    recorder.close()
    [seen] = recorder.responses
    return recorder.path, Page("p", seen.url, seen.date, "Example")


def test_the_same_warc_packages_into_the_same_bytes_and_sniffs_as_wacz(tmp_path: Path) -> None:
    warc, page = small_warc(tmp_path)
    created = dt.datetime(2024, 2, 24, 5, 0, tzinfo=dt.UTC)
    outputs = []
    for name in ("a.wacz", "b.wacz"):
        package(
            warc,
            tmp_path / name,
            pages=[page],
            created=created,
            title="t",
            description="d.",
            software="s",
            withheld="w",
        )
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]
    assert sniff_media_type(tmp_path / "a.wacz") == "application/wacz"
    with zipfile.ZipFile(tmp_path / "a.wacz") as zf:
        assert all(info.date_time == (2024, 2, 24, 5, 0, 0) for info in zf.infolist())
        assert json.loads(zf.read("datapackage.json"))["created"] == "2024-02-24T05:00:00Z"
    # A zip that is not a WACZ written so is not taken for one.
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("datapackage.json", '{"profile": "data-package"}')
    assert sniff_media_type(plain) != "application/wacz"


def test_a_redacted_export_withholds_the_archive_with_the_media_it_holds(
    catalog: Catalog, server: MediaServer, tmp_path: Path
) -> None:
    url = server.route("/files/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    result = catalog.capture_url(url, options=FAST, analyze=False)
    assert result.ok, result.error
    record = catalog.record(result.record_id)
    [archive] = [e.artifact.sha256 for e in record.artifacts if e.role is Role.WEB_ARCHIVE]
    catalog.flag(result.record_id, "graphic", "shows the wounded", artifacts=[result.sha256])

    exported = catalog.export(tmp_path / "bag", format="bagit", redact=True)

    assert exported.withheld_artifacts == 2  # the media, and the archive that holds it too
    payload = [p.read_bytes() for p in (tmp_path / "bag" / "data").rglob("*") if p.is_file()]
    assert catalog.artifact_path(archive).read_bytes() not in payload and CLIP not in payload
    redaction = json.loads((tmp_path / "bag" / "data" / "contents.json").read_text())["redaction"]
    [why] = [a for a in redaction["withheld_artifacts"] if a["sha256"] == archive]
    assert "web archive" in json.dumps(why)


def test_a_redacted_export_withholds_an_archive_whose_exchanges_hold_a_withheld_text(
    catalog: Catalog, server: MediaServer, tmp_path: Path
) -> None:
    # The name is only in the archive: in the gzip-encoded body of a redirect's "moved" page,
    # inside a WARC record that is a gzip member of its own.
    name = "Witness Xyz Secretname"
    first = catalog.capture_url(server.route("/a.mp4", Route(body=CLIP[::-1], media_type="video/mp4")), options=FAST)
    note = catalog.add_note(first.record_id, f"{name} saw it")
    catalog.flag(first.record_id, "personal_data", "names a witness", fields=[f"notes/{note.id}/text"])
    moved = gzip.compress(f"<html><body>Moved. Reported by {note.text}</body></html>".encode(), mtime=0)
    server.route("/m/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    short = server.route(
        "/s/1", Route(redirect="/m/clip.mp4", body=moved, media_type="text/html", headers={"Content-Encoding": "gzip"})
    )
    second = catalog.capture_url(short, options=FAST, analyze=False)
    assert second.ok, second.error
    archive = wacz_of(catalog, catalog.record(second.record_id))
    assert any(r["body"] == moved for r in warc_records(archive) if r["uri"] == short)

    exported = catalog.export(tmp_path / "bag", format="bagit", redact=True)

    payload = [p.read_bytes() for p in (tmp_path / "bag" / "data").rglob("*") if p.is_file()]
    assert archive.read_bytes() not in payload
    assert exported.withheld_artifacts == 1
    assert CLIP in payload  # the media itself does not hold the name
    redaction = json.loads((tmp_path / "bag" / "data" / "contents.json").read_text())["redaction"]
    [why] = redaction["withheld_artifacts"]
    assert why["media_type"] == "application/wacz" and "withheld text" in json.dumps(why)


def test_a_web_archive_that_cannot_be_read_is_taken_to_hold_every_withheld_text(tmp_path: Path) -> None:
    from evidence_catalog.interchange.export import _searchable

    warc, page = small_warc(tmp_path)
    good = tmp_path / "good.wacz"
    created = dt.datetime(2024, 2, 24, tzinfo=dt.UTC)
    package(warc, good, pages=[page], created=created, title="t", description="d.", software="s", withheld="w")
    with open(good, "rb") as stream:
        seen = b"".join(_searchable(stream, "application/wacz", {"Secret Name"}))
    assert b"hello" in seen and b"Secret Name" not in seen  # read: the body, not the texts searched
    cut = io.BytesIO(good.read_bytes()[:-40])  # its central directory gone
    assert b"Secret Name" in b"".join(_searchable(cut, "application/wacz", {"Secret Name"}))
    assert b"Secret Name" not in b"".join(_searchable(io.BytesIO(b"PK"), "application/zip", {"Secret Name"}))


def test_each_capture_of_a_batch_archives_only_its_own_exchanges(catalog: Catalog, server: MediaServer) -> None:
    first = server.route("/batch/one.mp4", Route(body=CLIP, media_type="video/mp4"))
    second = server.route("/batch/two.mp4", Route(body=CLIP[::-1], media_type="video/mp4"))

    results = catalog.capture([first, second], options=FAST, analyze=False)  # one yt-dlp for both

    assert all(r.ok for r in results), [r.error for r in results]
    for result, url in zip(results, (first, second), strict=True):
        wacz = wacz_of(catalog, catalog.record(result.record_id))
        uris = {r["uri"] for r in warc_records(wacz) if r["type"] in ("request", "response")}
        assert uris == {url}


_EXCHANGE = st.tuples(
    st.sampled_from(["GET", "POST", "PUT", "HEAD"]),
    st.sampled_from(
        [
            "text/html",
            "video/mp4",
            "application/json",
            "application/x-www-form-urlencoded",
            "application/x-amf",
            "multipart/form-data; boundary=XX",
            "",
        ]
    ),
    st.sampled_from([200, 206, 302, 404, 500, None]),  # None: no response came
    st.binary(max_size=3000),
    st.sampled_from([b"", b"a=1&b=two", b'{"q": "x", "n": [1, 2]}', b"\x00\xff raw", b"--XX\r\nbroken\r\n\r\n"]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(exchanges=st.lists(_EXCHANGE, min_size=1, max_size=5), path=st.sampled_from(["/", "/v.mp4?x=1", "/api"]))
def test_the_index_equals_py_waczs_own_made_without_copying_bodies(
    tmp_path_factory: pytest.TempPathFactory,
    capfd: pytest.CaptureFixture[str],
    exchanges: list[tuple[str, str, int | None, bytes, bytes]],
    path: str,
) -> None:
    """The WACZ's index is made without copying response bodies (which the indexer never reads),
    and is the very index py-wacz makes reading them: the same lines, offsets, digests and
    POST lookup keys, in the same gzip blocks.  Nothing of what was exchanged is printed while
    it is made (the indexer's libraries print bodies they cannot parse)."""
    from evidence_catalog.capture.webarchive import _index

    folder = tmp_path_factory.mktemp("index")
    recorder = WarcRecorder(folder / "data.warc.gz", software="test")
    for method, media_type, status, body, sent in exchanges:
        headers = [("Host", "example.test"), ("Referer", "http://example.test/"), ("Content-Type", media_type)]
        exchange = recorder.exchange(method, f"http://example.test{path}", headers, sent or None)
        if status is None:
            exchange.fail("ConnectionRefusedError")
            continue
        exchange.respond(status, "R", [("Content-Type", media_type), ("Content-Length", str(len(body)))])
        exchange.body(body)
        exchange.end()
        exchange.finish()
    recorder.close()
    capfd.readouterr()
    ours = _index(recorder.path, folder / "ours.cdx.gz")
    assert capfd.readouterr() == ("", "")
    theirs = _index(recorder.path, folder / "theirs.cdx.gz", read_bodies=True)
    assert ours == theirs
    assert (folder / "ours.cdx.gz").read_bytes() == (folder / "theirs.cdx.gz").read_bytes()
    lines = gzip.decompress((folder / "ours.cdx.gz").read_bytes()).decode().splitlines()
    assert len(lines) == sum(status is not None for _, _, status, _, _ in exchanges)  # a line a response
    assert all('"recordDigest": "sha256:' in line for line in lines)


def _index_one_post(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], media_type: str, body: bytes
) -> tuple[str, str, str]:
    """Index a WARC of one POST of *body* as *media_type*: what was printed (standard output,
    standard error) while it was indexed, and the index's one line."""
    from evidence_catalog.capture.webarchive import _index

    recorder = WarcRecorder(tmp_path / "data.warc.gz", software="test")
    headers = [("Host", "example.test"), ("Content-Type", media_type)]
    exchange = recorder.exchange("POST", "http://example.test/api", headers, body)
    exchange.respond(200, "OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    exchange.body(b"ok")
    exchange.end()
    exchange.finish()
    recorder.close()
    capfd.readouterr()
    _index(recorder.path, tmp_path / "index.cdx.gz")
    out, err = capfd.readouterr()
    [line] = gzip.decompress((tmp_path / "index.cdx.gz").read_bytes()).decode().splitlines()
    assert '"method": "POST"' in line
    return out, err, line


def test_a_posted_body_that_is_not_the_json_it_claims_is_indexed_without_being_printed(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """cdxj-indexer writes such a body to standard error whole; indexing a capture must not put
    what a page posted (a token, a password) on the terminal.  The index keeps its line."""
    out, err, _ = _index_one_post(tmp_path, capfd, "application/json", b"session=4f1c9e-not-json")
    assert out == "" and err == ""


def test_a_posted_body_that_is_not_the_amf_it_claims_is_indexed_without_being_printed(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """cdxj-indexer's parser of AMF (Flash remoting) bodies prints a traceback to standard error
    and the decoder's complaint (which quotes the body's bytes) to standard output, where a
    command's JSON goes.  Indexing a capture prints neither; the index keeps its line."""
    out, err, _ = _index_one_post(tmp_path, capfd, "application/x-amf", b"\x00\x03\x00\x01\x00\x05tokenN")
    assert out == "" and err == ""


def test_a_posted_multipart_body_that_does_not_parse_is_indexed_as_its_bytes(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """cdxj-indexer raises on a multipart body it cannot parse (a page can post one), which
    failed the whole capture; its line is now made as for a multipart body without a boundary:
    the body's bytes, base64-encoded."""
    body = b"--XX\r\nnot a part header\r\n\r\n"
    out, err, line = _index_one_post(tmp_path, capfd, "multipart/form-data; boundary=XX", body)
    assert out == "" and err == ""
    assert '"requestBody": "__wb_post_data=' + base64.b64encode(body).decode() in line


def test_a_redacted_export_reads_a_brotli_encoded_body_of_the_archive(
    catalog: Catalog, server: MediaServer, tmp_path: Path
) -> None:
    # As the gzip case above, in brotli (which servers send whether asked or not): warcio's own
    # brotli decoder fails with the brotli package, and the export must not.
    brotli = pytest.importorskip("brotli")
    name = "Witness Brotli Secretname"
    first = catalog.capture_url(server.route("/b.mp4", Route(body=CLIP[::-1], media_type="video/mp4")), options=FAST)
    note = catalog.add_note(first.record_id, f"{name} saw it")
    catalog.flag(first.record_id, "personal_data", "names a witness", fields=[f"notes/{note.id}/text"])
    moved = brotli.compress(f"<html><body>Moved. Reported by {note.text}</body></html>".encode())
    server.route("/mb/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    short = server.route(
        "/sb/1", Route(redirect="/mb/clip.mp4", body=moved, media_type="text/html", headers={"Content-Encoding": "br"})
    )
    second = catalog.capture_url(short, options=FAST, analyze=False)
    assert second.ok, second.error

    exported = catalog.export(tmp_path / "bag", format="bagit", redact=True)

    assert exported.withheld_artifacts == 1
    redaction = json.loads((tmp_path / "bag" / "data" / "contents.json").read_text())["redaction"]
    [why] = redaction["withheld_artifacts"]
    assert why["media_type"] == "application/wacz" and "withheld text" in json.dumps(why)


def test_brotli_bodies_are_decoded_a_block_at_a_time_and_a_posted_one_is_indexed(tmp_path: Path) -> None:
    """A few hundred bytes of brotli can decode to gigabytes: what reads an archive (the index of
    a POST's body, the search of a redacted export) decodes it a block at a time.  A body that
    is not brotli at all (a page's script can say anything of what it posts) is indexed as far
    as it decodes, and is an archive that cannot be read to a search (it withholds it)."""
    brotli = pytest.importorskip("brotli")
    from evidence_catalog.capture.webarchive import _index, contents

    bomb = brotli.compress(b"\0" * (64 << 20) + b"the end")
    form = [("Content-Type", "application/x-www-form-urlencoded"), ("Content-Encoding", "br")]
    created = dt.datetime(2024, 2, 24, tzinfo=dt.UTC)
    page = Page("p", "http://example.test/api", "2024-02-24T00:00:00Z", "t")
    for name, posted in [("good", brotli.compress(b"a=1&b=two")), ("bad", b"not brotli at all")]:
        folder = tmp_path / name
        folder.mkdir()
        recorder = WarcRecorder(folder / "data.warc.gz", software="test")
        for method, body in [("GET", None), ("POST", posted)]:
            exchange = recorder.exchange(method, "http://example.test/api", form, body)
            exchange.respond(200, "OK", [("Content-Type", "text/html"), ("Content-Encoding", "br")])
            exchange.body(bomb)
            exchange.end()
            exchange.finish()
        recorder.close()
        _index(recorder.path, folder / "index.cdx.gz")
        lines = gzip.decompress((folder / "index.cdx.gz").read_bytes()).decode().splitlines()
        assert len(lines) == 2
        assert ("__wb_method=post&a=1&b=two" in lines[1]) is (name == "good")
        wacz = folder / "out.wacz"
        package(
            recorder.path, wacz, pages=[page], created=created, title="t", description="d.", software="s", withheld="w"
        )
        with open(wacz, "rb") as stream:
            if name == "bad":
                with pytest.raises(ValueError, match="not brotli"):
                    list(contents(stream))
                continue
            blocks = list(contents(stream))
        assert max(len(block) for block in blocks) < 8 << 20
        assert sum(block.count(b"the end") for block in blocks) == 2
        assert b"a=1&b=two" in b"".join(blocks)
