"""Capture of online media end to end: a real HTTP server on 127.0.0.1 (``tests/media_server.py``),
real media files, yt-dlp used as a library, and a real catalog in a temporary directory.

Nothing here needs the internet.  Waiting is kept short with ``retries=0`` and a socket timeout of
one or two seconds, so that the failures (a dead server, a body cut short) fail quickly.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yt_dlp.version
from hypothesis import example, given, settings
from hypothesis import strategies as st

from evidence_catalog import Catalog, model
from evidence_catalog.capture import CaptureOptions
from evidence_catalog.capture.downloaded import WITHHELD, WITHHELD_COOKIES, WITHHELD_SET_COOKIE
from evidence_catalog.errors import InputError, NotFoundError
from evidence_catalog.results import CaptureResult
from evidence_catalog.serialize import to_document, unstructure
from tests.conftest import make_jpeg, run_sql
from tests.media_server import MediaServer, Route, video_page

DATA = Path(__file__).parent / "data"
CLIP = (DATA / "clip.mp4").read_bytes()
CLIP_VIDEO = (DATA / "clip-video.mp4").read_bytes()
CLIP_AUDIO = (DATA / "clip-audio.m4a").read_bytes()

#: Fail fast: no retries, a short socket timeout.
FAST = CaptureOptions(retries=0, socket_timeout=2)

Role = model.ArtifactRole
T = TypeVar("T")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- fixtures and helpers -------------------------------------------------------------------------


def stored(catalog: Catalog, sha: str) -> bytes:
    return catalog.artifact_path(sha).read_bytes()


def work_area(catalog: Catalog) -> list[Path]:
    """What is left in the catalog's temporary area for captures."""
    area = catalog.path / "tmp"
    return sorted(area.iterdir()) if area.exists() else []


def artifact_rows(catalog: Catalog) -> int:
    [(count,)] = run_sql(catalog, "select count(*) from artifact")
    return int(count)


def blob_files(catalog: Catalog) -> list[Path]:
    return [p for p in (catalog.path / "blobs").rglob("*") if p.is_file()]


def by_role(record: model.EvidenceRecord, role: model.ArtifactRole) -> list[model.RecordArtifact]:
    return [entry for entry in record.artifacts if entry.role is role]


def capture_page(
    catalog: Catalog, server: MediaServer, base: str, body: str
) -> tuple[CaptureResult, model.EvidenceRecord]:
    """Serve an HTML page with *body* at ``{base}/page``, capture it; return result and record."""
    html = f"<!DOCTYPE html><html><head><title>Page</title></head><body>{body}</body></html>".encode()
    page = server.route(f"{base}/page", Route(body=html, media_type="text/html"))
    result = catalog.capture_url(page, options=FAST)
    assert result.ok, result.error
    return result, catalog.record(result.record_id)


def tool_versions(acquisition: model.Acquisition) -> dict[str, str | None]:
    return {tool.name: tool.version for tool in acquisition.tools}


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], T], *, timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def assert_failed_cleanly(
    catalog: Catalog, result: CaptureResult, url: str, *, error: str | tuple[str, ...], http_status: int | None = None
) -> dict[str, Any]:
    """A failed capture: no record, no artifact, no blob, a ``capture.failed`` event that says what
    was tried and why it failed, a log that still verifies and an empty temporary area."""
    assert not result.ok
    assert result.record_id is None and result.sha256 is None
    alternatives = (error,) if isinstance(error, str) else error
    assert result.error is not None and any(e in result.error for e in alternatives), result.error
    assert catalog.record_ids() == []
    assert artifact_rows(catalog) == 0
    assert blob_files(catalog) == []
    event = catalog.history()[-1]
    assert (event.action, event.subject) == ("capture.failed", "catalog")
    failed = event.details["acquisition"]
    assert failed["id"] == result.acquisition_id
    assert failed["requested_url"] == url
    assert failed["error"] == result.error
    assert failed["outcome"] == "failed"
    assert failed["method"] == "captured_from_url"
    assert failed.get("http_status") == http_status
    assert work_area(catalog) == []
    assert catalog.verify().ok
    return failed


# -- 1, 2: captures that succeed ------------------------------------------------------------------


def test_a_video_page_is_captured_with_everything_that_came_with_it(
    catalog: Catalog, server: MediaServer, base: str
) -> None:
    poster = make_jpeg()
    video = server.route(f"{base}/media/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    thumbnail = server.route(f"{base}/media/poster.jpg", Route(body=poster, media_type="image/jpeg"))
    html = video_page(video, title="Test clip", thumbnail_url=thumbnail)
    page = server.route(f"{base}/watch/1", Route(body=html, media_type="text/html; charset=utf-8"))

    analysed: list[Any] = []
    [result] = catalog.capture(page, options=FAST, on_analyzed=analysed.append)

    assert result.ok, result.error
    assert (result.url, result.sha256, result.size) == (page, sha256(CLIP), len(CLIP))
    assert result.new_record and result.new_bytes and result.new_on_record
    assert result.version_of is None
    record = catalog.record(result.record_id)
    captured = [entry for entry in record.artifacts if entry.role is not Role.DERIVED]
    assert sorted(entry.role for entry in captured) == sorted(
        [Role.ORIGINAL, Role.THUMBNAIL, Role.PAGE_SNAPSHOT, Role.PLATFORM_METADATA, Role.WEB_ARCHIVE]
    )
    assert result.artifacts == len(captured) == 5
    # Then the video and its poster are analysed, each in a transaction of its own: what that
    # derived is on the record too, each artifact derived from the one analysed.
    assert [(a.record_id, a.sha256, a.new) for a in analysed] == [
        (record.id, sha256(CLIP), True),
        (record.id, sha256(poster), True),
    ]
    derived = [entry for entry in record.artifacts if entry.role is Role.DERIVED]
    assert {entry.derived_from for entry in derived} == {(sha256(CLIP),), (sha256(poster),)}
    assert len(derived) == 2 + analysed[0].keyframes + 1  # two documents, the keyframes, the contact sheet
    assert list(record.artifacts[: len(captured)]) == captured  # the capture's own first

    # The media, the poster and the page, each exactly as served.
    main = record.artifacts[0]
    assert main.role is Role.ORIGINAL and main.artifact.sha256 == sha256(CLIP)
    assert main.artifact.media_type == "video/mp4" and main.artifact.size == len(CLIP)
    assert main.derived_from == () and main.version_of is None
    assert stored(catalog, main.artifact.sha256) == CLIP
    [snapshot] = by_role(record, Role.PAGE_SNAPSHOT)
    assert stored(catalog, snapshot.artifact.sha256) == html
    assert snapshot.artifact.media_type == "text/html"
    [thumb] = by_role(record, Role.THUMBNAIL)
    assert thumb.artifact.sha256 == sha256(poster)
    assert stored(catalog, thumb.artifact.sha256) == poster
    assert thumb.artifact.media_type == "image/jpeg"

    # What the platform said, and how it was fetched.
    [acquisition, *analyses] = record.acquisitions
    assert [a.method for a in analyses] == [model.AcquisitionMethod.DERIVED] * 2
    [metadata] = by_role(record, Role.PLATFORM_METADATA)
    assert metadata.artifact.media_type == "application/json"
    info = json.loads(stored(catalog, metadata.artifact.sha256))
    assert info["id"] == acquisition.platform_id is not None
    assert info["title"] == acquisition.platform_info.title
    assert acquisition.platform_info.title.startswith("Test clip")
    assert record.title == acquisition.platform_info.title
    assert info["webpage_url"] == acquisition.platform_info.webpage_url == page

    assert acquisition.id == result.acquisition_id
    assert acquisition.method is model.AcquisitionMethod.CAPTURED_FROM_URL
    assert acquisition.outcome is model.Outcome.SUCCEEDED
    assert acquisition.requested_url == page and acquisition.final_url == page
    assert acquisition.http_status == 200
    assert acquisition.extractor and acquisition.platform
    assert acquisition.artifact_sha256 == sha256(CLIP)
    assert sorted(acquisition.other_artifacts) == sorted(e.artifact.sha256 for e in captured[1:])
    assert acquisition.error is None and acquisition.withheld == ()
    assert acquisition.started_at <= acquisition.ended_at
    tools = tool_versions(acquisition)
    assert tools["yt-dlp"] == yt_dlp.version.__version__
    assert "ffmpeg" not in tools  # one file as served: nothing was merged
    media_responses = [r for r in acquisition.responses if r.url == video]
    assert media_responses, acquisition.responses
    assert media_responses[0].status == 200
    assert ("Content-Length", str(len(CLIP))) in media_responses[0].headers

    [*_, event, video_analysed, poster_analysed] = catalog.history()
    assert (event.action, event.subject) == ("media.captured", record.id)
    assert [(e.action, e.subject) for e in (video_analysed, poster_analysed)] == [("media.analyzed", record.id)] * 2
    assert catalog.verify().ok
    assert work_area(catalog) == []


def test_a_direct_file_url_is_captured_as_served(catalog: Catalog, server: MediaServer, base: str) -> None:
    url = server.route(f"{base}/files/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    seen: list[tuple[str, int, int | None]] = []

    result = catalog.capture_url(url, options=FAST, progress=lambda *args: seen.append(args), analyze=False)

    assert result.ok, result.error
    assert (result.sha256, result.size, result.new_record) == (sha256(CLIP), len(CLIP), True)
    record = catalog.record(result.record_id)
    assert sorted(e.role for e in record.artifacts) == sorted([Role.ORIGINAL, Role.PLATFORM_METADATA, Role.WEB_ARCHIVE])
    assert stored(catalog, record.artifacts[0].artifact.sha256) == CLIP
    [acquisition] = record.acquisitions
    assert (acquisition.requested_url, acquisition.final_url, acquisition.http_status) == (url, url, 200)
    [response] = [r for r in acquisition.responses if r.url == url]
    assert ("Content-Length", str(len(CLIP))) in response.headers
    assert seen and seen[-1][1] == len(CLIP)  # progress was reported up to the last byte
    assert catalog.verify().ok
    assert work_area(catalog) == []


def test_a_redirected_page_records_where_it_ended(catalog: Catalog, server: MediaServer, base: str) -> None:
    video = server.route(f"{base}/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    target = server.route(f"{base}/watch/2", Route(body=video_page(video, title="Moved"), media_type="text/html"))
    start = server.route(f"{base}/short/2", Route(redirect=f"{base}/watch/2"))

    result = catalog.capture_url(start, options=FAST, analyze=False)

    assert result.ok, result.error
    [acquisition] = catalog.record(result.record_id).acquisitions
    assert (acquisition.requested_url, acquisition.final_url, acquisition.http_status) == (start, target, 200)
    assert stored(catalog, result.sha256) == CLIP


def test_a_compressed_page_is_kept_as_the_page_it_is(catalog: Catalog, server: MediaServer, base: str) -> None:
    video = server.route(f"{base}/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    html = video_page(video, title="Compressed")
    page = server.route(
        f"{base}/watch/gz",
        Route(body=gzip.compress(html), media_type="text/html", headers={"Content-Encoding": "gzip"}),
    )

    result = catalog.capture_url(page, options=FAST)

    assert result.ok, result.error
    [snapshot] = by_role(catalog.record(result.record_id), Role.PAGE_SNAPSHOT)
    assert stored(catalog, snapshot.artifact.sha256) == html


def test_subtitles_the_page_offers_are_kept(catalog: Catalog, server: MediaServer, base: str) -> None:
    vtt = b"WEBVTT\n\n00:00.000 --> 00:01.000\nHello\n"
    server.route(f"{base}/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    server.route(f"{base}/en.vtt", Route(body=vtt, media_type="text/vtt"))
    body = f'<video src="{base}/clip.mp4"><track kind="subtitles" src="{base}/en.vtt" srclang="en"></video>'

    result, record = capture_page(catalog, server, base, body)

    [subtitle] = by_role(record, Role.SUBTITLE)
    assert stored(catalog, subtitle.artifact.sha256) == vtt
    assert stored(catalog, result.sha256) == CLIP
    assert subtitle.artifact.sha256 in record.acquisitions[0].other_artifacts


@pytest.mark.parametrize(
    "track",
    [
        "{base}/gone.vtt",  # a 404
        # A page may name any URL as a subtitle track.  yt-dlp refuses file:// (good); that
        # refusal is a subtitle that could not be fetched, not a reason to lose the video.
        "file:///etc/hostname",
    ],
    ids=["missing", "local-file"],
)
def test_a_subtitle_that_cannot_be_fetched_does_not_cost_the_video(
    catalog: Catalog, server: MediaServer, base: str, track: str
) -> None:
    server.route(f"{base}/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    body = f'<video src="{base}/clip.mp4"><track kind="subtitles" src="{track.format(base=base)}" srclang="en"></video>'

    result, record = capture_page(catalog, server, base, body)

    assert by_role(record, Role.SUBTITLE) == []
    assert stored(catalog, result.sha256) == CLIP
    # The record says what it lacks.
    assert "subtitles" in (record.acquisitions[0].note or "")
    assert catalog.verify().ok


def test_a_thumbnail_cut_short_is_not_stored_and_is_named(catalog: Catalog, server: MediaServer, base: str) -> None:
    thumbnail = make_jpeg()
    video = server.route(f"{base}/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    thumb = server.route(f"{base}/thumb.jpg", Route(body=thumbnail, media_type="image/jpeg", truncate_at=100))
    page = server.route(
        f"{base}/watch",
        Route(body=video_page(video, title="Cut thumbnail", thumbnail_url=thumb), media_type="text/html"),
    )

    result = catalog.capture_url(page, options=FAST)

    assert result.ok, result.error
    record = catalog.record(result.record_id)
    assert by_role(record, Role.THUMBNAIL) == []
    held = {stored(catalog, entry.artifact.sha256) for entry in record.artifacts}
    assert not any(thumbnail[:100] == data for data in held)
    assert "thumbnail" in (record.acquisitions[0].note or "").lower()
    assert work_area(catalog) == []


# -- 3: failures leave nothing but a logged attempt -----------------------------------------------


def test_a_missing_page_fails_cleanly(catalog: Catalog, server: MediaServer, base: str) -> None:
    url = server.url(f"{base}/no-such-page")
    result = catalog.capture_url(url, options=FAST)
    failed = assert_failed_cleanly(catalog, result, url, error="HTTP Error 404", http_status=404)
    assert failed["final_url"] == url


def test_a_server_error_on_the_media_fails_cleanly(catalog: Catalog, server: MediaServer, base: str) -> None:
    video = server.route(f"{base}/broken.mp4", Route(body=b"upstream failed\n", status=500, media_type="text/plain"))
    page = server.route(f"{base}/watch", Route(body=video_page(video, title="Broken"), media_type="text/html"))

    result = catalog.capture_url(page, options=FAST)

    failed = assert_failed_cleanly(catalog, result, page, error="HTTP Error 500", http_status=500)
    assert failed["final_url"] == video
    assert server.seen(f"{base}/broken.mp4")  # it really was asked for


def test_a_refused_connection_fails_cleanly(catalog: Catalog) -> None:
    url = f"http://127.0.0.1:{unused_port()}/watch/1"
    result = catalog.capture_url(url, options=FAST)
    assert_failed_cleanly(catalog, result, url, error="Connection refused")


def test_a_server_that_does_not_answer_in_time_fails_cleanly(catalog: Catalog, server: MediaServer, base: str) -> None:
    video = server.route(f"{base}/slow.mp4", Route(body=CLIP, media_type="video/mp4", delay=3.0))
    page = server.route(f"{base}/watch", Route(body=video_page(video, title="Slow"), media_type="text/html"))

    started = time.monotonic()
    result = catalog.capture_url(page, options=CaptureOptions(retries=0, socket_timeout=1))

    assert time.monotonic() - started < 2.9  # gave up before the server answered
    assert_failed_cleanly(catalog, result, page, error="timed out")


#: How yt-dlp reports a body cut short at byte 1000: its urllib handler, or its requests handler
#: (which it prefers when requests is installed).
CUT_SHORT = (f"expected {len(CLIP)} bytes", f"1000 bytes read, {len(CLIP) - 1000} more expected")


def test_a_body_cut_short_fails_cleanly_even_after_a_retry(catalog: Catalog, server: MediaServer, base: str) -> None:
    url = server.route(f"{base}/cut.mp4", Route(body=CLIP, media_type="video/mp4", truncate_at=1000))

    result = catalog.capture_url(url, options=CaptureOptions(retries=1, socket_timeout=2))

    assert_failed_cleanly(catalog, result, url, error=CUT_SHORT)
    assert len(server.seen(f"{base}/cut.mp4")) >= 2  # the retry happened, and was cut short too


def test_a_failure_is_not_blamed_on_an_earlier_harmless_error(catalog: Catalog, server: MediaServer, base: str) -> None:
    # The page names a poster that is gone (a 404 yt-dlp shrugs off), then the media is cut short:
    # the failed attempt must not say it failed with that 404, at the poster's URL.
    video = server.route(f"{base}/cut.mp4", Route(body=CLIP, media_type="video/mp4", truncate_at=1000))
    html = video_page(video, title="Poster gone", thumbnail_url=server.url(f"{base}/gone.jpg"))
    page = server.route(f"{base}/watch", Route(body=html, media_type="text/html"))

    result = catalog.capture_url(page, options=FAST)

    failed = assert_failed_cleanly(catalog, result, page, error=CUT_SHORT, http_status=None)
    assert failed.get("final_url") is None
    assert server.seen(f"{base}/gone.jpg")  # the poster really was asked for, and was a 404


def test_a_page_without_video_fails_cleanly(catalog: Catalog, server: MediaServer, base: str) -> None:
    html = b"<!DOCTYPE html><html><head><title>News</title></head><body><p>Only text.</p></body></html>"
    url = server.route(f"{base}/article", Route(body=html, media_type="text/html"))
    result = catalog.capture_url(url, options=FAST)
    assert_failed_cleanly(catalog, result, url, error="Unsupported URL")


def test_media_larger_than_max_filesize_fails_cleanly(catalog: Catalog, server: MediaServer, base: str) -> None:
    video = server.route(f"{base}/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    page = server.route(f"{base}/watch", Route(body=video_page(video, title="Big"), media_type="text/html"))

    result = catalog.capture_url(page, options=CaptureOptions(retries=0, socket_timeout=2, max_filesize=1000))

    assert_failed_cleanly(catalog, result, page, error="larger than max-filesize")
    assert f"{len(CLIP)} bytes > 1000 bytes" in (result.error or "")


def test_a_full_disk_fails_cleanly(catalog: Catalog, server: MediaServer, base: str) -> None:
    area = catalog.path / "tmp"
    area.mkdir(exist_ok=True)
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(area)], check=True, capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", None) or exc
        pytest.skip(f"a full disk is simulated with a 64 KiB tmpfs, and mounting one is not permitted here: {detail}")
    try:
        url = server.route(f"{base}/big.mp4", Route(body=os.urandom(512 * 1024), media_type="video/mp4"))
        result = catalog.capture_url(url, options=FAST)
        assert_failed_cleanly(catalog, result, url, error="No space left on device")
    finally:
        subprocess.run(["umount", str(area)], check=True)
    assert work_area(catalog) == []


CHILD = """
import sys
from evidence_catalog import Catalog
from evidence_catalog.capture import CaptureOptions
with Catalog.open(sys.argv[1], operator="Killed Analyst <killed@example.org>") as catalog:
    catalog.capture_url(sys.argv[2], options=CaptureOptions(retries=0, socket_timeout=5, rate_limit=64 * 1024))
print("the capture finished before it was killed")
"""


def _fds_open_on(path: Path) -> list[str]:
    """This process's descriptors open on *path* (Linux only; empty elsewhere)."""
    fds = Path("/proc/self/fd")
    found = []
    for fd in os.listdir(fds) if fds.is_dir() else ():
        with contextlib.suppress(OSError):
            if os.readlink(fds / fd) == str(path):
                found.append(fd)
    return found


@pytest.mark.slow
def test_a_killed_capture_leaves_nothing_and_its_area_is_removed_later(
    catalog: Catalog, server: MediaServer, base: str
) -> None:
    big = server.route(f"{base}/long.mp4", Route(body=os.urandom(4 * 1024 * 1024), media_type="video/mp4"))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(catalog.path), big],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:

        def downloading() -> list[Path]:
            if child.poll() is not None:
                out, err = child.communicate()
                pytest.fail(f"the capture ended on its own ({child.returncode}): {out!r} {err!r}")
            return [p for p in (catalog.path / "tmp").glob("capture-*/*.part") if p.stat().st_size > 0]

        [partial] = wait_for(downloading, timeout=30, what="the download to start")
        abandoned = partial.parent
        # While it runs, another capture (here one that fails) leaves its area alone.
        missing = server.url(f"{base}/missing")
        assert not catalog.capture_url(missing, options=FAST).ok
        assert abandoned.is_dir() and child.poll() is None
        assert _fds_open_on(abandoned / ".lock") == []  # and keeps no descriptor on its lock
    finally:
        child.kill()
        child.communicate()
    assert child.returncode == -signal.SIGKILL

    assert abandoned.is_dir()  # what the killed process left
    assert catalog.record_ids() == []
    assert artifact_rows(catalog) == 0 and blob_files(catalog) == []
    assert all(big not in json.dumps(e.details) for e in catalog.history())  # it never got to log anything
    assert catalog.verify().ok

    small = server.route(f"{base}/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    result = catalog.capture_url(small, options=FAST)
    assert result.ok, result.error
    assert stored(catalog, result.sha256) == CLIP
    assert not abandoned.exists()
    assert work_area(catalog) == []
    assert catalog.verify().ok


# -- 4: captures onto a given record --------------------------------------------------------------


def test_captures_onto_a_given_record(
    catalog: Catalog, server: MediaServer, base: str, jpeg_file: Callable[..., Path]
) -> None:
    [added] = catalog.add([jpeg_file()], analyze=False)
    record_id = added.record_id

    missing = server.url(f"{base}/gone.mp4")
    failed = catalog.capture_url(missing, record_id=record_id, options=FAST, analyze=False)

    assert not failed.ok and failed.record_id == record_id
    record = catalog.record(record_id)
    assert [a.outcome for a in record.acquisitions] == [model.Outcome.SUCCEEDED, model.Outcome.FAILED]
    attempt = record.acquisitions[1]
    assert (attempt.id, attempt.requested_url, attempt.http_status) == (failed.acquisition_id, missing, 404)
    assert attempt.error == failed.error and "404" in attempt.error
    assert [e.artifact.sha256 for e in record.artifacts] == [added.sha256]  # nothing stored
    event = catalog.history()[-1]
    assert (event.action, event.subject) == ("capture.failed", record_id)
    assert catalog.verify().ok  # the replayed log gives the same record, failed attempt included
    assert work_area(catalog) == []

    video = server.route(f"{base}/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    result = catalog.capture_url(video, record_id=record_id, options=FAST, analyze=False)

    assert result.ok, result.error
    assert (result.record_id, result.new_record, result.new_on_record) == (record_id, False, True)
    assert catalog.record_ids() == [record_id]
    record = catalog.record(record_id)
    assert {e.artifact.sha256 for e in by_role(record, Role.ORIGINAL)} == {added.sha256, sha256(CLIP)}
    assert [a.outcome for a in record.acquisitions][-1] is model.Outcome.SUCCEEDED
    assert len(record.acquisitions) == 3
    assert catalog.verify().ok


# -- 5: the same item again -----------------------------------------------------------------------


def test_capturing_again_adds_an_acquisition_or_a_new_version(catalog: Catalog, server: MediaServer, base: str) -> None:
    video_path = f"{base}/media/clip.mp4"
    video = server.route(video_path, Route(body=CLIP, media_type="video/mp4"))
    page = server.route(f"{base}/watch/7", Route(body=video_page(video, title="Again"), media_type="text/html"))

    first = catalog.capture_url(page, options=FAST, analyze=False)
    second = catalog.capture_url(page, options=FAST, analyze=False)

    assert first.ok and second.ok, (first.error, second.error)
    assert second.record_id == first.record_id
    assert second.acquisition_id != first.acquisition_id
    assert (second.sha256, second.new_record, second.new_bytes, second.new_on_record) == (
        first.sha256,
        False,
        False,
        False,
    )
    assert second.version_of is None
    record = catalog.record(first.record_id)
    assert [e.artifact.sha256 for e in by_role(record, Role.ORIGINAL)] == [sha256(CLIP)]
    assert [a.id for a in record.acquisitions] == [first.acquisition_id, second.acquisition_id]
    assert all(a.artifact_sha256 == sha256(CLIP) for a in record.acquisitions)

    reencoded = CLIP + b"\x00re-encoded by the platform"
    server.route(video_path, Route(body=reencoded, media_type="video/mp4"))
    third = catalog.capture_url(page, options=FAST, analyze=False)

    assert third.ok, third.error
    assert third.record_id == first.record_id and not third.new_record
    assert third.sha256 == sha256(reencoded) and third.new_bytes and third.new_on_record
    assert third.version_of == sha256(CLIP)
    record = catalog.record(first.record_id)
    originals = by_role(record, Role.ORIGINAL)
    assert [e.artifact.sha256 for e in originals] == [sha256(CLIP), sha256(reencoded)]
    assert originals[0].version_of is None
    assert originals[1].version_of == sha256(CLIP)
    assert stored(catalog, sha256(reencoded)) == reencoded
    assert stored(catalog, sha256(CLIP)) == CLIP  # the earlier version is kept
    assert len(record.acquisitions) == 3
    assert catalog.record_ids() == [first.record_id]
    assert catalog.verify().ok


# -- 6: several URLs ------------------------------------------------------------------------------


def test_a_batch_goes_on_past_a_failure(catalog: Catalog, server: MediaServer, base: str) -> None:
    first = server.route(f"{base}/one.mp4", Route(body=CLIP, media_type="video/mp4"))
    bad = server.url(f"{base}/missing.mp4")
    second = server.route(f"{base}/two.mp4", Route(body=CLIP_VIDEO, media_type="video/mp4"))
    reported: list[CaptureResult] = []

    results = catalog.capture([first, bad, second], options=FAST, on_result=reported.append)

    assert [r.url for r in results] == [first, bad, second]
    assert [r.ok for r in results] == [True, False, True]
    assert reported == results
    assert results[1].error is not None and "404" in results[1].error
    assert [results[0].sha256, results[2].sha256] == [sha256(CLIP), sha256(CLIP_VIDEO)]
    assert len(catalog.record_ids()) == 2
    # the two videos captured are analysed once the batch is done
    actions = ["media.captured", "capture.failed", "media.captured", "media.analyzed", "media.analyzed"]
    assert [e.action for e in catalog.history()][1:] == actions
    assert catalog.verify().ok
    assert work_area(catalog) == []


# -- 7: separate streams merged by ffmpeg ---------------------------------------------------------

MPD = b"""<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT1S" minBufferTime="PT1S"
     profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">
  <Period>
    <AdaptationSet contentType="video" mimeType="video/mp4">
      <Representation id="video" codecs="avc1.64000a" width="64" height="48" bandwidth="20000">
        <BaseURL>clip-video.mp4</BaseURL>
      </Representation>
    </AdaptationSet>
    <AdaptationSet contentType="audio" mimeType="audio/mp4" lang="en">
      <Representation id="audio" codecs="mp4a.40.2" audioSamplingRate="44100" bandwidth="17000">
        <BaseURL>clip-audio.m4a</BaseURL>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
"""


def serve_dash(server: MediaServer, base: str) -> str:
    """A DASH manifest of one video and one audio stream, each served as a single file."""
    server.route(f"{base}/dash/clip-video.mp4", Route(body=CLIP_VIDEO, media_type="video/mp4"))
    server.route(f"{base}/dash/clip-audio.m4a", Route(body=CLIP_AUDIO, media_type="audio/mp4"))
    return server.route(f"{base}/dash/manifest.mpd", Route(body=MPD, media_type="application/dash+xml"))


def streams_of(path: Path) -> list[str]:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return sorted(probe.stdout.split())


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="merging separate streams needs ffmpeg")
def test_separate_streams_are_kept_and_merged_by_ffmpeg(catalog: Catalog, server: MediaServer, base: str) -> None:
    manifest = serve_dash(server, base)

    result = catalog.capture_url(manifest, options=FAST, analyze=False)

    assert result.ok, result.error
    record = catalog.record(result.record_id)
    main = record.artifacts[0]
    assert main.role is Role.DERIVED
    assert result.sha256 == main.artifact.sha256
    assert sorted(main.derived_from) == sorted([sha256(CLIP_VIDEO), sha256(CLIP_AUDIO)])
    assert main.derivation is not None and "ffmpeg" in main.derivation
    originals = {e.artifact.sha256: e for e in by_role(record, Role.ORIGINAL)}
    assert set(originals) == {sha256(CLIP_VIDEO), sha256(CLIP_AUDIO)}
    assert stored(catalog, sha256(CLIP_VIDEO)) == CLIP_VIDEO
    assert stored(catalog, sha256(CLIP_AUDIO)) == CLIP_AUDIO
    if shutil.which("ffprobe"):
        assert streams_of(catalog.artifact_path(main.artifact.sha256)) == ["audio", "video"]
    [acquisition] = record.acquisitions
    tools = tool_versions(acquisition)
    assert "yt-dlp" in tools and tools.get("ffmpeg")  # with its version
    assert acquisition.artifact_sha256 == main.artifact.sha256
    assert set(acquisition.other_artifacts) >= {sha256(CLIP_VIDEO), sha256(CLIP_AUDIO)}
    assert {r.url for r in acquisition.responses} >= {
        server.url(f"{base}/dash/clip-video.mp4"),
        server.url(f"{base}/dash/clip-audio.m4a"),
    }
    assert catalog.verify().ok
    assert work_area(catalog) == []


def test_without_ffmpeg_a_single_file_format_is_taken_as_served(
    catalog: Catalog, server: MediaServer, base: str
) -> None:
    video = server.route(f"{base}/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    page = server.route(f"{base}/watch", Route(body=video_page(video, title="One file"), media_type="text/html"))

    result = catalog.capture_url(page, options=CaptureOptions(retries=0, socket_timeout=2, ffmpeg=False), analyze=False)

    assert result.ok, result.error
    record = catalog.record(result.record_id)
    assert record.artifacts[0].role is Role.ORIGINAL and stored(catalog, result.sha256) == CLIP
    assert by_role(record, Role.DERIVED) == []
    assert "ffmpeg" not in tool_versions(record.acquisitions[0])
    assert work_area(catalog) == []


def test_without_ffmpeg_separate_streams_fail_cleanly(catalog: Catalog, server: MediaServer, base: str) -> None:
    # Nothing in this manifest is served as one file, and the streams cannot be merged.
    manifest = serve_dash(server, base)
    result = catalog.capture_url(manifest, options=CaptureOptions(retries=0, socket_timeout=2, ffmpeg=False))
    assert_failed_cleanly(catalog, result, manifest, error="ffmpeg")


# -- 8: cookies -----------------------------------------------------------------------------------

SECRET = "s3ss10n-" + "7f3a9c21d0e4"
SERVER_SECRET = "srv-" + "b8e11f02aa56"


def test_cookies_are_sent_but_never_stored(catalog: Catalog, server: MediaServer, base: str, tmp_path: Path) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(
        f"# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\t{SECRET}\n",
        encoding="utf-8",
    )
    before = cookies.read_bytes()
    set_cookie = {"Set-Cookie": f"tracker={SERVER_SECRET}; Path=/"}
    video = server.route(f"{base}/clip.mp4", Route(body=CLIP, media_type="video/mp4", headers=set_cookie))
    page = server.route(
        f"{base}/members/1",
        Route(body=video_page(video, title="Members only"), media_type="text/html", headers=set_cookie),
    )

    result = catalog.capture_url(
        page, options=CaptureOptions(retries=0, socket_timeout=2, cookies_file=cookies), analyze=False
    )

    assert result.ok, result.error
    for path in (f"{base}/members/1", f"{base}/clip.mp4"):
        [request] = server.seen(path)
        assert f"session={SECRET}" in request.headers.get("Cookie", ""), path
    assert cookies.read_bytes() == before  # the operator's file is untouched

    record = catalog.record(result.record_id)
    [acquisition] = record.acquisitions
    in_archive = "Cookie, Set-Cookie header values in the web archive (WACZ)"
    assert set(acquisition.withheld) == {WITHHELD_COOKIES, WITHHELD_SET_COOKIE, in_archive}
    [response] = [r for r in acquisition.responses if r.url == video]
    assert ("Set-Cookie", WITHHELD) in response.headers
    info = json.loads(stored(catalog, by_role(record, Role.PLATFORM_METADATA)[0].artifact.sha256))
    assert WITHHELD in json.dumps(info)

    documents = [json.dumps(to_document(record)), *(json.dumps(unstructure(e)) for e in catalog.history())]
    for secret in (SECRET, SERVER_SECRET):
        assert not any(secret in text for text in documents), secret
        # Nowhere in the catalog at all: blobs, database, its journal.
        leaks = [p for p in catalog.path.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
        assert leaks == [], secret
    assert catalog.verify().ok
    assert work_area(catalog) == []


@pytest.mark.parametrize(
    "content",
    [
        "session=abc; other=def\n",  # a Cookie header, not a cookies.txt
        '{"cookies": [{"name": "session", "value": "abc"}]}\n',  # a browser extension's JSON export
        "127.0.0.1 FALSE / FALSE 0 session abc\n",  # spaces where tabs belong
    ],
)
def test_a_malformed_cookies_file_is_refused_up_front(tmp_path: Path, content: str) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match="cookies"):
        CaptureOptions(cookies_file=cookies)
    with pytest.raises(InputError, match="no such cookies file"):
        CaptureOptions(cookies_file=tmp_path / "absent.txt")


# -- 9: any bytes -------------------------------------------------------------------------------


@pytest.mark.slow
def test_any_served_bytes_are_stored_exactly(catalog: Catalog, server: MediaServer, base: str) -> None:
    # Served as video, so that yt-dlp takes them as a direct link whatever they look like (as
    # application/octet-stream, bytes that start like HTML would be parsed as a page).
    path = f"{base}/any.mp4"
    url = server.url(path)
    options = CaptureOptions(retries=0, socket_timeout=2, ffmpeg=False)

    @settings(max_examples=25)
    @given(data=st.binary(max_size=4096))
    @example(data=b"")
    @example(data=b"<!DOCTYPE html><html><video src='x.mp4'></video></html>")
    @example(data=b"\xff\xd8\xff\xe0 not really a JPEG")  # sniffed as an image: analysed too
    def check(data: bytes) -> None:
        server.route(path, Route(body=data, media_type="video/mp4"))
        result = catalog.capture_url(url, options=options)
        if not data:
            # yt-dlp refuses an empty body ("Did not get any data blocks"): a logged failure.
            assert not result.ok and result.error and "data" in result.error
            assert catalog.history()[-1].action == "capture.failed"
        else:
            assert result.ok, result.error
            assert (result.sha256, result.size) == (sha256(data), len(data))
            assert stored(catalog, result.sha256) == data
        assert work_area(catalog) == []

    check()
    assert catalog.verify().ok


# -- 10: bad input is refused before anything is fetched ------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        "ftp://127.0.0.1/clip.mp4",
        "file:///evidence/clip.mp4",
        "javascript:alert(1)",
        "127.0.0.1/clip.mp4",
        "http://",
        "http://127.0.0.1/a clip.mp4",
        "http://127.0.0.1/clip.mp4\x00",
    ],
)
def test_a_bad_url_is_refused_before_anything_is_fetched(
    catalog: Catalog, server: MediaServer, base: str, url: str
) -> None:
    good = server.route(f"{base}/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    with pytest.raises(InputError):
        catalog.capture_url(url, options=FAST)
    with pytest.raises(InputError):
        catalog.capture([good, url], options=FAST)  # every URL is checked before the first is fetched
    assert server.seen(f"{base}/clip.mp4") == []
    assert [e.action for e in catalog.history()] == ["catalog.created"]
    assert work_area(catalog) == []


def test_a_bad_record_is_refused_before_anything_is_fetched(catalog: Catalog, server: MediaServer, base: str) -> None:
    good = server.route(f"{base}/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    with pytest.raises(InputError):
        catalog.capture_url(good, record_id="not-a-record", options=FAST)
    with pytest.raises(NotFoundError):
        catalog.capture_url(good, record_id=model.new_id(), options=FAST)
    with pytest.raises(NotFoundError):
        catalog.capture([good], record_id=model.new_id(), options=FAST)
    with pytest.raises(InputError):
        catalog.capture([], options=FAST)
    assert server.seen(f"{base}/clip.mp4") == []
    assert [e.action for e in catalog.history()] == ["catalog.created"]
    assert catalog.record_ids() == []


# -- review fixes -------------------------------------------------------------------------------


def test_a_catalog_opened_by_a_relative_path_files_everything_as_it_should(
    tmp_path: Path, server: MediaServer, base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Catalog.init("relative", operator="Tester").close()
    thumbnail = make_jpeg()
    video = server.route(f"{base}/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    thumb = server.route(f"{base}/thumb.jpg", Route(body=thumbnail, media_type="image/jpeg"))
    page = server.route(
        f"{base}/watch", Route(body=video_page(video, title="Relative", thumbnail_url=thumb), media_type="text/html")
    )
    with Catalog.open("relative") as catalog:
        result = catalog.capture_url(page, options=FAST)
        assert result.ok, result.error
        record = catalog.record(result.record_id)
        [kept] = by_role(record, Role.THUMBNAIL)
        assert stored(catalog, kept.artifact.sha256) == thumbnail
        assert record.acquisitions[0].note is None  # nothing reported as not kept
        assert work_area(catalog) == []


def test_different_videos_with_the_same_file_name_are_different_items(
    catalog: Catalog, server: MediaServer, base: str
) -> None:
    one = server.route(f"{base}/one/video.mp4", Route(body=CLIP, media_type="video/mp4"))
    two = server.route(f"{base}/two/video.mp4", Route(body=CLIP + b"\0\0", media_type="video/mp4"))
    first = catalog.capture_url(one, options=FAST)
    second = catalog.capture_url(two, options=FAST)
    assert first.ok and second.ok
    assert catalog.record(first.record_id).acquisitions[0].platform_id == "video"  # yt-dlp's generic id
    assert second.record_id != first.record_id
    assert second.new_record and second.version_of is None


def test_a_thumbnail_yt_dlp_cannot_request_does_not_cost_the_video(
    catalog: Catalog, server: MediaServer, base: str
) -> None:
    video = server.route(f"{base}/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    page = server.route(
        f"{base}/watch",
        Route(body=video_page(video, title="Odd thumbnail", thumbnail_url="thumbs/odd.jpg"), media_type="text/html"),
    )
    result = catalog.capture_url(page, options=FAST)
    assert result.ok, result.error
    assert stored(catalog, result.sha256) == CLIP
    assert catalog.verify().ok


def test_a_redirecting_short_link_keeps_the_page_it_leads_to(catalog: Catalog, server: MediaServer, base: str) -> None:
    video = server.route(f"{base}/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    html = video_page(video, title="Behind a short link")
    server.route(f"{base}/watch", Route(body=html, media_type="text/html"))
    short = server.route(f"{base}/s/x1", Route(redirect=f"{base}/watch"))
    result = catalog.capture_url(short, options=FAST)
    assert result.ok, result.error
    record = catalog.record(result.record_id)
    [page] = by_role(record, Role.PAGE_SNAPSHOT)
    assert stored(catalog, page.artifact.sha256) == html
    assert record.acquisitions[0].final_url == server.url(f"{base}/watch")


def test_the_options_that_shape_a_capture_are_recorded_without_credentials(
    catalog: Catalog, server: MediaServer, base: str
) -> None:
    url = server.route(f"{base}/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    options = CaptureOptions(retries=0, socket_timeout=2, format="best", rate_limit=10_000_000, max_filesize=10**6)
    result = catalog.capture_url(url, options=options)
    assert result.ok, result.error
    settings = catalog.record(result.record_id).acquisitions[0].settings
    assert settings == ("format=best", "rate_limit=10000000", "max_filesize=1000000", "retries=0")
    proxied = CaptureOptions(proxy="socks5://user:secret@127.0.0.1:9", retries=0, socket_timeout=1)
    failed = catalog.capture_url(server.url(f"{base}/clip.mp4?again"), options=proxied)
    assert not failed.ok
    [event] = [e for e in catalog.history() if e.action == "capture.failed"]
    assert "proxy=socks5://127.0.0.1:9" in event.details["acquisition"]["settings"]
    assert "secret" not in json.dumps(event.details)
