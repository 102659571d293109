"""How many requests a capture makes: a direct media link is asked for once, as ``curl`` asks.

yt-dlp's generic extractor requests a URL to see what it is; for a direct link to media it
returns without reading the body, and its download asks for the same URL again.  The capture
holds that first answer back, unread, and the download reads it instead of asking the server a
second time (``capture/youtubedl.py``: ``_Held``).  These tests count the requests a real HTTP
server on 127.0.0.1 receives, and check that what a capture records is as complete as before:
the bytes, the response and its headers, the final URL, yt-dlp's info dict.  A body the
extractors read some of, or a download that would not send the same request (a cookie set
meanwhile), is fetched again, whole.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence_catalog import Catalog, model
from evidence_catalog.capture import CaptureOptions
from tests.media_server import MediaServer, Route

CLIP = (Path(__file__).parent / "data" / "clip.mp4").read_bytes()
FAST = CaptureOptions(retries=0, socket_timeout=2)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def gets(server: MediaServer, path: str) -> int:
    return sum(1 for seen in server.seen(path) if seen.method == "GET")


def only_acquisition(catalog: Catalog, record_id: str | None) -> model.Acquisition:
    assert record_id is not None
    [acquisition] = catalog.record(record_id).acquisitions
    return acquisition


def test_a_direct_media_link_is_requested_once_and_recorded_in_full(
    catalog: Catalog, server: MediaServer, base: str
) -> None:
    path = f"{base}/clip.mp4"
    url = server.route(path, Route(body=CLIP, media_type="video/mp4", headers={"ETag": '"v1"'}))

    result = catalog.capture_url(url, options=FAST, analyze=False)

    assert result.ok, result.error
    assert gets(server, path) == 1  # curl asks once; so does the capture
    assert (result.sha256, result.size) == (sha256(CLIP), len(CLIP))
    assert catalog.artifact_path(sha256(CLIP)).read_bytes() == CLIP
    acquisition = only_acquisition(catalog, result.record_id)
    assert (acquisition.final_url, acquisition.http_status) == (url, 200)
    [response] = [r for r in acquisition.responses if r.url == url]
    headers = dict(response.headers)
    assert response.status == 200
    assert headers["Content-Type"] == "video/mp4"
    assert headers["Content-Length"] == str(len(CLIP))
    assert headers["ETag"] == '"v1"'
    assert acquisition.extractor == "Generic"
    record = catalog.record(result.record_id or "")
    [metadata] = [e for e in record.artifacts if e.role is model.ArtifactRole.PLATFORM_METADATA]
    info = json.loads(catalog.artifact_path(metadata.artifact.sha256).read_bytes())
    assert (info["webpage_url"], info["direct"]) == (url, True)
    assert catalog.verify().ok


def test_each_link_of_a_batch_is_requested_once(catalog: Catalog, server: MediaServer, base: str) -> None:
    bodies = [CLIP + bytes([n]) for n in range(3)]
    urls = [server.route(f"{base}/{n}.mp4", Route(body=b, media_type="video/mp4")) for n, b in enumerate(bodies)]

    results = catalog.capture(urls, options=FAST)

    assert [r.sha256 for r in results] == [sha256(b) for b in bodies]
    assert [gets(server, f"{base}/{n}.mp4") for n in range(3)] == [1, 1, 1]


def test_a_body_the_extractor_read_from_is_requested_again_and_stored_whole(
    catalog: Catalog, server: MediaServer, base: str
) -> None:
    """Served without a media type, the generic extractor reads the first bytes to see what it
    is: those bytes are gone from that answer, so the download must ask again."""
    path = f"{base}/clip.mp4"
    url = server.route(path, Route(body=CLIP, media_type="application/octet-stream"))

    result = catalog.capture_url(url, options=FAST)

    assert result.ok, result.error
    assert gets(server, path) == 2
    assert catalog.artifact_path(result.sha256 or "").read_bytes() == CLIP


def test_a_cookie_set_by_the_first_answer_makes_the_download_ask_again(
    catalog: Catalog, server: MediaServer, base: str
) -> None:
    """The download's request would carry the cookie the first answer set: not the same
    request, so its own answer is the one kept."""
    path = f"{base}/clip.mp4"
    headers = {"Set-Cookie": "visit=1; Path=/"}
    url = server.route(path, Route(body=CLIP, media_type="video/mp4", headers=headers))

    result = catalog.capture_url(url, options=FAST)

    assert result.ok, result.error
    first, second = server.seen(path)
    assert "visit=1" not in first.headers.get("Cookie", "")
    assert "visit=1" in second.headers.get("Cookie", "")
    assert catalog.artifact_path(result.sha256 or "").read_bytes() == CLIP


def test_a_redirected_link_is_recorded_with_where_it_led(catalog: Catalog, server: MediaServer, base: str) -> None:
    """yt-dlp follows the redirect and extracts the URL it led to again: that extraction's
    answer is the one the download reads (three requests in all: before, four)."""
    target = server.route(f"{base}/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    short = server.route(f"{base}/go", Route(redirect=f"{base}/clip.mp4"))

    result = catalog.capture_url(short, options=FAST, analyze=False)

    assert result.ok, result.error
    assert (gets(server, f"{base}/go"), gets(server, f"{base}/clip.mp4")) == (1, 2)
    acquisition = only_acquisition(catalog, result.record_id)
    assert acquisition.requested_url == short
    assert acquisition.final_url == target
    assert any(r.url == target and r.status == 200 for r in acquisition.responses)
    assert catalog.artifact_path(result.sha256 or "").read_bytes() == CLIP


class CutOnce(Route):
    """A route whose first answer is cut short after 1000 bytes of the body; later ones are
    whole (the server logs each request before it answers it)."""

    seen: Callable[[], int] = staticmethod(lambda: 0)

    @property  # type: ignore[override]
    def truncate_at(self) -> int | None:
        return 1000 if self.seen() == 1 else None

    @truncate_at.setter
    def truncate_at(self, _value: int | None) -> None:
        pass


def test_a_held_answer_cut_short_is_fetched_again(catalog: Catalog, server: MediaServer, base: str) -> None:
    """The answer held for the download ends early: yt-dlp retries with a request of its own,
    and the file stored is the whole body."""
    path = f"{base}/clip.mp4"
    route = CutOnce(body=CLIP, media_type="video/mp4")
    route.seen = lambda: len(server.seen(path))
    url = server.route(path, route)

    result = catalog.capture_url(url, options=CaptureOptions(retries=2, socket_timeout=2))

    assert result.ok, result.error
    first, _again = server.seen(path)  # yt-dlp asked again (from where its file stopped, if anywhere)
    assert "Range" not in first.headers
    assert catalog.artifact_path(result.sha256 or "").read_bytes() == CLIP


@pytest.mark.parametrize("media_type", ["video/mp4", "audio/mpeg", "video/webm"])
def test_the_command_requests_a_direct_link_once(
    tmp_path: Path, server: MediaServer, base: str, media_type: str, run_cli: object
) -> None:
    path = f"{base}/clip"
    url = server.route(path, Route(body=CLIP, media_type=media_type))
    Catalog.init(tmp_path / "cat", operator="Tester <t@example.org>").close()

    result = run_cli("capture", url, "--catalog", tmp_path / "cat", "--retries", "0", "--quiet")  # type: ignore[operator]

    assert result.code == 0, result.err
    assert result.out.split("\t")[1] == sha256(CLIP)
    assert gets(server, path) == 1


def test_any_body_is_stored_exactly_whichever_way_it_was_fetched(
    tmp_path: Path, server: MediaServer, base: str
) -> None:
    """Whatever the body and whether its answer was held for the download or not (a media type
    the generic extractor takes at its word, or one it reads the start of), the stored bytes
    are the body, and the server was asked once or twice accordingly."""
    catalog = Catalog.init(tmp_path / "cat", operator="Tester <t@example.org>")
    counter = iter(range(10**6))

    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        body=st.binary(min_size=1, max_size=20_000),
        media_type=st.sampled_from(["video/mp4", "audio/ogg", "application/octet-stream"]),
    )
    def check(body: bytes, media_type: str) -> None:
        path = f"{base}/{next(counter)}.mp4"
        url = server.route(path, Route(body=body, media_type=media_type))
        result = catalog.capture_url(url, options=FAST)
        if not result.ok:  # yt-dlp may take a body it reads for a page: then no media is stored
            assert media_type == "application/octet-stream", result.error
            return
        assert catalog.artifact_path(result.sha256 or "").read_bytes() == body
        assert gets(server, path) == (1 if media_type != "application/octet-stream" else 2)

    with catalog:
        check()
        assert catalog.verify().ok
