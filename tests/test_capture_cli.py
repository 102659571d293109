"""The ``capture`` command: batches, per-URL failures, exit codes, resuming, progress."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evidence_catalog import Catalog
from tests.media_server import MediaServer, Route, video_page
from tests.test_resilience import _run_on_a_terminal

CLIP = (Path(__file__).parent / "data" / "clip.mp4").read_bytes()
FAST = ("--retries", "0", "--timeout", "2")


@pytest.fixture(scope="module")
def server() -> Iterator[MediaServer]:
    with MediaServer() as running:
        running.route("/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
        running.route(
            "/watch", Route(body=video_page(running.url("/clip.mp4"), title="A clip"), media_type="text/html")
        )
        running.route("/other.mp4", Route(body=CLIP + b"\0", media_type="video/mp4"))
        yield running


@pytest.fixture
def cat(tmp_path: Path) -> Path:
    Catalog.init(tmp_path / "cat", operator="Tester <t@example.org>").close()
    return tmp_path / "cat"


def _lines(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.splitlines()]


def test_a_batch_from_a_file_reports_each_url_and_exits_1_if_any_failed(
    cat: Path, server: MediaServer, run_cli: Any, tmp_path: Path
) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text(
        f"# evidence from the report of 3 March\n{server.url('/watch')}\n\n{server.url('/gone')}\n"
        f"  {server.url('/other.mp4')}  \n",
        encoding="utf-8",
    )
    result = run_cli("capture", "--from-file", urls, "--catalog", cat, "--tag", "case-7", *FAST)
    assert result.code == 1
    [first, second, third] = _lines(result.out)
    assert first[1:] == [hashlib.sha256(CLIP).hexdigest(), "new", server.url("/watch")]
    assert second == ["-", "-", "failed", server.url("/gone")]
    assert third[2:] == ["new", server.url("/other.mp4")]
    assert f"error: {server.url('/gone')}: " in result.err and "404" in result.err
    assert "captured 2 of 3 URL(s); 1 failed" in result.err
    logged = run_cli("log", "--catalog", cat).out.splitlines()
    assert f"capture.failed   catalog  {server.url('/gone')}  by Tester" in logged[2]
    with Catalog.open(cat) as catalog:
        # the two videos captured are analysed once the batch is done
        actions = ["media.captured", "capture.failed", "media.captured", "media.analyzed", "media.analyzed"]
        assert [e.action for e in catalog.history()][1:] == actions
        assert catalog.record(first[0]).tags == ("case-7",)
        assert catalog.verify().ok


def test_all_captured_exits_0_and_quiet_prints_no_summary(cat: Path, server: MediaServer, run_cli: Any) -> None:
    result = run_cli("capture", server.url("/clip.mp4"), "--catalog", cat, "--quiet", *FAST)
    assert result.code == 0
    assert result.err == ""
    assert len(_lines(result.out)) == 1


def test_a_bad_line_stops_the_batch_before_anything_is_fetched(
    cat: Path, server: MediaServer, run_cli: Any, tmp_path: Path
) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text(f"{server.url('/clip.mp4')}\nftp://example.org/video.mp4\n", encoding="utf-8")
    before = len(server.seen("/clip.mp4"))
    result = run_cli("capture", "--from-file", urls, "--catalog", cat, *FAST)
    assert result.code == 2
    assert (
        result.err.strip() == f"error: {urls}, line 2: 'ftp://example.org/video.mp4' is not an http:// or https:// URL"
    )
    assert len(server.seen("/clip.mp4")) == before
    with Catalog.open(cat) as catalog:
        assert len(catalog.history()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give at least one URL"),
        (("--from-file", "missing.txt"), "missing.txt: no such file"),
        (("http://x.example", "--rate-limit", "fast"), "rate limit: 'fast' is not a size"),
        (("http://x.example", "--max-filesize", "0"), "max filesize: '0' is not a size"),
        (("http://x.example", "--cookies", "nope.txt"), "nope.txt: no such cookies file"),
        (("http://x.example", "--proxy", "127.0.0.1:9050"), "is not a proxy URL"),
        (("http://x.example", "--record", "not-an-id"), "'not-an-id' is not a record id"),
        (("http://x.example", "--retries", "-1"), "retries: must be a whole number"),
    ],
)
def test_bad_options_are_one_line_errors_with_exit_2(
    cat: Path, run_cli: Any, args: tuple[str, ...], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli("capture", *args, "--catalog", cat)
    assert result.code == 2
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1
    with Catalog.open(cat) as catalog:
        assert len(catalog.history()) == 1


def test_skip_captured_resumes_a_batch_without_fetching_again(
    cat: Path, server: MediaServer, run_cli: Any, tmp_path: Path
) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text(f"{server.url('/watch')}\n", encoding="utf-8")
    assert run_cli("capture", "--from-file", urls, "--catalog", cat, *FAST).code == 0
    urls.write_text(f"{server.url('/watch')}\n{server.url('/other.mp4')}\n", encoding="utf-8")
    fetched = len(server.seen("/watch"))
    result = run_cli("capture", "--from-file", urls, "--catalog", cat, "--skip-captured", *FAST)
    assert result.code == 0
    [first, second] = _lines(result.out)
    assert first[2] == "skipped (captured before)"
    assert second[2] == "new"
    assert len(server.seen("/watch")) == fetched  # not fetched again
    assert "captured 1 of 2 URL(s); 1 skipped (captured before)" in result.err
    # Without the flag, the same URL is captured again: a new acquisition on the same record.
    again = run_cli("capture", server.url("/watch"), "--catalog", cat, *FAST)
    assert _lines(again.out)[0][:3] == [*first[:2], "already catalogued"]
    with Catalog.open(cat) as catalog:
        methods = [a.method.value for a in catalog.record(first[0]).acquisitions]
        assert methods == ["captured_from_url", "derived", "captured_from_url"]  # its analysis is not made again


def test_record_attaches_the_capture_to_an_existing_record(
    cat: Path, server: MediaServer, run_cli: Any, tmp_path: Path
) -> None:
    repost = tmp_path / "repost.txt"
    repost.write_text("RT @example_watch: documentary on executions of prisoners of war\n", encoding="utf-8")
    added = run_cli("add", repost, "--catalog", cat)
    record_id = added.out.split("\t")[0]
    result = run_cli("capture", server.url("/watch"), "--record", record_id, "--catalog", cat, *FAST)
    assert result.code == 0
    assert _lines(result.out)[0][0] == record_id
    shown = run_cli("show", record_id, "--catalog", cat)
    assert f"url      {server.url('/watch')}" in shown.out
    assert "tools    yt-dlp" in shown.out
    assert "(page_snapshot)" in shown.out and "(platform_metadata)" in shown.out


@pytest.mark.slow
@pytest.mark.no_postgresql_pass  # what is drawn on a terminal: no database has a part in it
def test_progress_is_drawn_on_a_terminal_and_not_with_quiet(cat: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(24 * 1024 * 1024))
    with MediaServer() as server:
        url = server.route("/big.bin", Route(file=big, media_type="application/octet-stream"))
        command = [
            sys.executable,
            "-m",
            "evidence_catalog",
            "capture",
            url,
            "--catalog",
            str(cat),
            "--rate-limit",
            "24M",
        ]
        code, drawn = _run_on_a_terminal(command)
        assert code == 0, drawn  # what it said on the terminal, should it fail
        assert "MB" in drawn and "captured 1 of 1" in drawn
        code, drawn = _run_on_a_terminal([*command, "--quiet"])
        assert code == 0 and drawn == "", drawn
