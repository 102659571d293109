"""Capture against hostile or odd input: URLs a court must not read a password in, URLs that are not
URLs at all, pages that offer no media or point at local files.  Real loopback server, real catalog.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evidence_catalog import Catalog
from evidence_catalog.capture import CaptureOptions
from evidence_catalog.errors import InputError
from tests.media_server import MediaServer, Route
from tests.test_capture import capture_page

CLIP = (Path(__file__).parent / "data" / "clip.mp4").read_bytes()
FAST = CaptureOptions(retries=0, socket_timeout=2)


def _nothing_happened(catalog: Catalog) -> None:
    assert [e.action for e in catalog.history()] == ["catalog.created"]
    assert catalog.record_ids() == []


# -- URLs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1/clip.mp4",  # urlsplit raises ValueError
        "http://127.0.0.1:port/clip.mp4",  # a port that is not a number
        "http://127.0.0.1:99999/clip.mp4",  # a port out of range
        "http://" + "a" * 64 + ".example.org/clip.mp4",  # a host name label longer than DNS allows
    ],
)
def test_a_url_that_cannot_be_parsed_is_a_one_line_error_with_exit_2(
    catalog: Catalog, run_cli: Any, url: str, tmp_path: Path
) -> None:
    with pytest.raises(InputError):
        catalog.capture_url(url, options=FAST)
    _nothing_happened(catalog)
    catalog.close()
    result = run_cli("capture", url, "--catalog", catalog.path)
    assert result.code == 2, result.err
    assert result.err.startswith("error: url: ") and len(result.err.strip().splitlines()) == 1, result.err
    listed = tmp_path / "urls.txt"
    listed.write_text(url + "\n", encoding="utf-8")
    result = run_cli("capture", "--from-file", listed, "--catalog", catalog.path)
    assert result.code == 2, result.err
    assert "line 1" in result.err and len(result.err.strip().splitlines()) == 1, result.err
    with Catalog.open(catalog.path) as reopened:
        _nothing_happened(reopened)


@pytest.mark.parametrize("userinfo", ["analyst:s3cret-Pa55@", "analyst@", ":s3cret-Pa55@"])
def test_credentials_in_a_url_are_refused_never_stored(
    catalog: Catalog, server: MediaServer, base: str, userinfo: str
) -> None:
    # requested_url goes into the hash-chained custody log (and yt-dlp's info.json keeps it as
    # well): a password written there can never be taken out again, and is in every export.
    server.route(f"{base}/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    url = server.url(f"{base}/clip.mp4").replace("http://", f"http://{userinfo}")
    with pytest.raises(InputError, match="user name or password") as refused:
        catalog.capture_url(url, options=FAST)
    assert "s3cret" not in str(refused.value)  # not even on the screen
    with pytest.raises(InputError, match="user name or password"):
        catalog.capture([server.url(f"{base}/clip.mp4"), url], options=FAST)
    assert server.seen(f"{base}/clip.mp4") == []
    _nothing_happened(catalog)
    assert not any("s3cret" in json.dumps(e.details) for e in catalog.history())


# -- pages ----------------------------------------------------------------------------------------


def test_a_feed_without_items_is_a_failure_not_a_capture_of_its_metadata(
    catalog: Catalog, server: MediaServer, base: str
) -> None:
    # yt-dlp reads an RSS feed as a playlist; with no items it "succeeds" with nothing downloaded.
    # The capture must not report success with info.json standing in as the main media file.
    feed = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>Empty feed</title>'
        b"<link>http://example.org/</link></channel></rss>"
    )
    url = server.route(f"{base}/feed.xml", Route(body=feed, media_type="application/rss+xml"))

    result = catalog.capture_url(url, options=FAST)

    assert not result.ok
    assert result.sha256 is None and result.record_id is None
    assert "no media" in (result.error or ""), result.error
    assert catalog.record_ids() == []
    assert [e.action for e in catalog.history()][1:] == ["capture.failed"]
    assert not any((catalog.path / "blobs").rglob("sha256/*/*/*"))
    assert catalog.verify().ok


def test_each_video_of_a_post_with_several_keeps_its_own_metadata(
    catalog: Catalog, server: MediaServer, base: str
) -> None:
    # yt-dlp's info dict of a playlist leaves out its entries ("--write-info-json" writes one file
    # for the playlist and one per video): what each video was, which formats it was offered in
    # and from which URL it came must not be lost.
    first = server.route(f"{base}/one.mp4", Route(body=CLIP, media_type="video/mp4"))
    second = server.route(f"{base}/two.mp4", Route(body=CLIP + b"\0", media_type="video/mp4"))

    _, record = capture_page(catalog, server, base, f'<video src="{first}"></video><video src="{second}"></video>')

    infos = [
        json.loads(catalog.artifact_path(e.artifact.sha256).read_bytes())
        for e in record.artifacts
        if e.role.value == "platform_metadata"
    ]
    media_urls = {info.get("url") for info in infos}
    assert {first, second} <= media_urls, infos
    assert any(info.get("_type") == "playlist" for info in infos)
    assert set(record.acquisitions[0].other_artifacts) >= {
        e.artifact.sha256 for e in record.artifacts if e.role.value == "platform_metadata"
    }
    assert catalog.verify().ok


# -- options --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        *(("format", spec) for spec in ["[[[", "bv*+", "best[height<=", "((("]),
        *(
            ("proxy", proxy)
            for proxy in [
                "http://[::1",
                "socks5://127.0.0.1:abc",
                "http://127.0.0.1:70000",
                "ftp://127.0.0.1:21",
                "socks5://",
            ]
        ),
    ],
)
def test_an_option_yt_dlp_could_not_use_is_a_one_line_error_with_exit_2(
    catalog: Catalog, run_cli: Any, server: MediaServer, base: str, option: str, value: str
) -> None:
    # A format selector yt-dlp cannot parse, or a proxy URL that is not one, would otherwise fail
    # only once the capture had started (or crash describing the capture's settings).
    url = server.route(f"{base}/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    with pytest.raises(InputError, match=option):
        CaptureOptions(**{option: value})
    catalog.close()
    result = run_cli(
        "capture", url, f"--{option}", value, "--catalog", catalog.path, "--retries", "0", "--timeout", "1"
    )
    assert result.code == 2, result.err
    assert result.err.startswith(f"error: {option}: ") and len(result.err.strip().splitlines()) == 1, result.err
    assert server.seen(f"{base}/clip.mp4") == []
    with Catalog.open(catalog.path) as reopened:
        _nothing_happened(reopened)


@pytest.mark.parametrize(
    "content",
    [
        "127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tabc\n",  # right fields, but no "# Netscape HTTP Cookie File"
        "# my cookies\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tabc\n",  # a comment is not that header
        "# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\t\udcff\n",  # not UTF-8
    ],
)
def test_a_cookies_file_yt_dlp_would_not_load_is_refused_up_front(
    catalog: Catalog, run_cli: Any, server: MediaServer, base: str, tmp_path: Path, content: str
) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_bytes(content.encode("utf-8", "surrogateescape"))
    with pytest.raises(InputError, match="cookies"):
        CaptureOptions(cookies_file=cookies)
    url = server.route(f"{base}/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    catalog.close()
    result = run_cli("capture", url, "--cookies", cookies, "--catalog", catalog.path)
    assert result.code == 2, result.err
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert str(cookies) in result.err
    assert server.seen(f"{base}/clip.mp4") == []
    with Catalog.open(catalog.path) as reopened:
        _nothing_happened(reopened)


def test_a_url_list_saved_with_a_byte_order_mark_and_crlf_is_read(
    catalog: Catalog, run_cli: Any, server: MediaServer, base: str, tmp_path: Path
) -> None:
    # Windows editors and spreadsheets save "UTF-8" lists with a byte order mark and CRLF.
    url = server.route(f"{base}/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    listed = tmp_path / "urls.txt"
    listed.write_bytes(b"\xef\xbb\xbf" + url.encode() + b"\r\n")
    catalog.close()
    result = run_cli("capture", "--from-file", listed, "--catalog", catalog.path, "--retries", "0", "--timeout", "2")
    assert result.code == 0, result.err
    assert result.out.split("\t")[-1].strip() == url
