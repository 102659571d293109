"""Downloads hashed as they are written (``evidence_catalog/capture/written.py``), and a batch that
sets yt-dlp up once (``Capturer``): what they vouch for, when they give up, and that a capture
stores the same bytes under the same digests as one that reads its files again.

The downloads come from the real HTTP server on 127.0.0.1 (``tests/media_server.py``) through
yt-dlp, into real catalogs; ``Writes`` is also driven directly with yt-dlp's own
``sanitize_open``, the function its downloaders open their files with.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yt_dlp
from hypothesis import given, settings
from hypothesis import strategies as st
from yt_dlp.utils import sanitize_open

from evidence_catalog import Catalog, model
from evidence_catalog.capture.written import Writes, write_known
from evidence_catalog.capture.ytdlp import CaptureOptions, Capturer
from evidence_catalog.store.blobstore import BlobStore
from tests.conftest import make_jpeg
from tests.media_server import MediaServer, Route, video_page

CLIP = (Path(__file__).parent / "data" / "clip.mp4").read_bytes()
FAST = CaptureOptions(retries=0, socket_timeout=2)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Downloader:
    """The two methods of yt-dlp's ``FileDownloader`` that ``Writes`` routes, as yt-dlp has them."""

    def sanitize_open(self, filename: str, open_mode: str) -> tuple[Any, str]:
        return sanitize_open(filename, open_mode)  # type: ignore[no-any-return]

    def try_rename(self, old: str, new: str) -> None:
        os.replace(old, new)


def attached(tmp_path: Path, algorithms: tuple[str, ...] = ("sha256",)) -> tuple[Writes, Downloader]:
    writes = Writes(algorithms)
    downloader = Downloader()
    writes.attach(downloader)
    return writes, downloader


def download(downloader: Downloader, directory: Path, chunks: list[bytes]) -> Path:
    """Write *chunks* as yt-dlp's HTTP downloader does: open ``.part``, write, close, rename."""
    stream, name = downloader.sanitize_open(str(directory / "001.mp4.part"), "wb")
    for chunk in chunks:
        stream.write(chunk)
    stream.close()
    downloader.try_rename(name, str(directory / "001.mp4"))
    return directory / "001.mp4"


# -- Writes, driven directly ----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(chunks=st.lists(st.binary(max_size=70_000), max_size=12), extra=st.sampled_from([(), ("md5",), ("sha1", "md5")]))
def test_the_digests_of_a_written_file_are_those_of_its_bytes(
    tmp_path_factory: pytest.TempPathFactory, chunks: list[bytes], extra: tuple[str, ...]
) -> None:
    directory = tmp_path_factory.mktemp("written")
    writes, downloader = attached(directory, ("sha256", *extra))
    path = download(downloader, directory, chunks)
    writes.close()

    found = writes.written(path)
    data = b"".join(chunks)
    assert found is not None and found.size == len(data) == path.stat().st_size
    assert found.digests.sha256 == sha256(data)
    for algorithm in extra:
        assert getattr(found.digests, algorithm) == hashlib.new(algorithm, data).hexdigest()
    assert found.unchanged(path)
    assert writes.written(directory / "001.mp4.part") is None  # named by where it is now


@pytest.mark.parametrize(
    "meddle",
    [
        pytest.param(lambda stream: stream.seek(0), id="seek"),
        pytest.param(lambda stream: stream.truncate(10), id="truncate"),
        pytest.param(lambda stream: stream.writelines([b"x"]), id="writelines"),
    ],
)
def test_a_handle_used_other_than_to_append_vouches_for_nothing(
    tmp_path: Path, meddle: Callable[[Any], object]
) -> None:
    writes, downloader = attached(tmp_path)
    stream, name = downloader.sanitize_open(str(tmp_path / "001.mp4.part"), "wb")
    stream.write(b"a" * 5000)
    meddle(stream)
    stream.write(b"b" * 5000)
    stream.close()
    downloader.try_rename(name, str(tmp_path / "001.mp4"))
    writes.close()
    assert writes.written(tmp_path / "001.mp4") is None


def test_a_resumed_or_reopened_file_vouches_for_nothing(tmp_path: Path) -> None:
    writes, downloader = attached(tmp_path)
    part = str(tmp_path / "001.mp4.part")
    stream, _ = downloader.sanitize_open(part, "wb")
    stream.write(b"first half")
    stream.close()
    # A download cut short and resumed: yt-dlp appends to the part it has.
    stream, _ = downloader.sanitize_open(part, "ab")
    stream.write(b" second half")
    stream.close()
    downloader.try_rename(part, str(tmp_path / "001.mp4"))
    assert writes.written(tmp_path / "001.mp4") is None

    # Written whole once, then opened for writing again (and left as it was): still nothing.
    again = download(downloader, tmp_path, [b"whole"])
    assert writes.written(again) is not None
    stream, _ = downloader.sanitize_open(str(again), "ab")
    stream.close()
    assert writes.written(again) is None
    writes.close()


def test_a_file_changed_after_it_was_finished_is_no_longer_vouched_for(tmp_path: Path) -> None:
    writes, downloader = attached(tmp_path)
    path = download(downloader, tmp_path, [b"as served" * 1000])
    found = writes.written(path)
    assert found is not None and found.unchanged(path)

    # Replaced by other bytes of the same size (as an in-place "fix" by a tool does).
    replacement = tmp_path / "other"
    replacement.write_bytes(b"not served" * 900)
    os.replace(replacement, path)
    assert not found.unchanged(path) and writes.written(path) is None

    # Written in place, the size kept (a clock tick later: the times are what tell).
    path = download(downloader, tmp_path, [b"as served" * 1000])
    found = writes.written(path)
    assert found is not None
    time.sleep(0.05)
    with open(path, "r+b") as stream:
        stream.write(b"X")
    assert not found.unchanged(path) and writes.written(path) is None

    # A second name (a hard link) or a change of mode: not the file that was finished either.
    path = download(downloader, tmp_path, [b"as served" * 1000])
    found = writes.written(path)
    assert found is not None
    os.link(path, tmp_path / "elsewhere")
    assert not found.unchanged(path)
    writes.close()


def test_a_known_file_is_written_with_the_digests_of_its_bytes(tmp_path: Path) -> None:
    data = '{"title": "Ünïcode"}'.encode()
    found = write_known(tmp_path / ".info.json", data, ("sha256", "md5"))
    assert (tmp_path / ".info.json").read_bytes() == data
    assert (found.size, found.digests.sha256, found.digests.md5) == (
        len(data),
        sha256(data),
        hashlib.md5(data).hexdigest(),
    )
    assert found.unchanged(tmp_path / ".info.json")


# -- captures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[MediaServer]:
    with MediaServer() as running:
        yield running


@pytest.fixture
def stores(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """How each file reached the blob store: ``("written", name)`` with the digests computed
    as it was written, ``("read", name)`` hashed by reading it (the real methods do the work)."""
    seen: list[tuple[str, str]] = []
    adopt_file, adopt_hashed_file = BlobStore.adopt_file, BlobStore.adopt_hashed_file

    def read(self: BlobStore, path: Path, **kwargs: Any) -> Any:
        seen.append(("read", Path(path).name))
        return adopt_file(self, path, **kwargs)

    def hashed(self: BlobStore, path: Path, digests: model.Digests, size: int) -> Any:
        seen.append(("written", Path(path).name))
        return adopt_hashed_file(self, path, digests, size)

    monkeypatch.setattr(BlobStore, "adopt_file", read)
    monkeypatch.setattr(BlobStore, "adopt_hashed_file", hashed)
    return seen


def test_downloads_are_stored_without_being_read_again(
    tmp_path: Path, server: MediaServer, stores: list[tuple[str, str]]
) -> None:
    poster = make_jpeg()
    video = server.route("/written/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    thumbnail = server.route("/written/poster.jpg", Route(body=poster, media_type="image/jpeg"))
    html = video_page(video, title="Written", thumbnail_url=thumbnail)
    page = server.route("/written/watch", Route(body=html, media_type="text/html"))
    with Catalog.init(tmp_path / "cat", operator="Tester <t@example.org>", algorithms=("sha256", "md5")) as catalog:
        [result] = catalog.capture(page, options=FAST, analyze=False)  # its own stores only
        assert result.ok, result.error
        record = catalog.record(result.record_id)
        # The media, the page and the metadata were hashed as they were written; the thumbnail
        # (which yt-dlp copies itself, not through a downloader) and the web archive (a zip,
        # whose writer goes back to each entry's header) by reading them.
        assert sorted(stores) == sorted(
            [
                ("written", "001.mp4"),
                ("written", ".page"),
                ("written", ".info.json"),
                ("read", "001.jpg"),
                ("read", ".archive.wacz"),
            ]
        )
        stored = {e.artifact.sha256: catalog.artifact_path(e.artifact.sha256).read_bytes() for e in record.artifacts}
        for entry in record.artifacts:
            data = stored[entry.artifact.sha256]
            assert entry.artifact.digests.sha256 == sha256(data) and entry.artifact.size == len(data)
            assert entry.artifact.digests.md5 == hashlib.md5(data).hexdigest()
        assert stored[sha256(CLIP)] == CLIP and stored[sha256(html)] == html and stored[sha256(poster)] == poster
        assert catalog.verify().ok


def test_a_download_changed_before_it_is_stored_is_stored_as_it_is(
    catalog: Catalog, server: MediaServer, stores: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever changed a finished download (here a replacement of the same size, as a tool that
    "fixes" a file in place makes), what is stored is hashed from the file as it is."""
    url = server.route("/changed/clip.mp4", Route(body=CLIP, media_type="video/mp4"))
    other = bytes(reversed(CLIP))
    download_ = Capturer.download

    def then_change(self: Capturer, *args: Any, **kwargs: Any) -> Any:
        fetched = download_(self, *args, **kwargs)
        media = fetched.files[0].path
        (media.parent / "replacement").write_bytes(other)
        os.replace(media.parent / "replacement", media)
        return fetched

    monkeypatch.setattr(Capturer, "download", then_change)
    result = catalog.capture_url(url, options=FAST)
    assert result.ok, result.error
    assert result.sha256 == sha256(other) != sha256(CLIP)
    assert catalog.artifact_path(result.sha256).read_bytes() == other
    assert ("read", "001.mp4") in stores and ("written", "001.mp4") not in stores
    assert catalog.verify().ok


# -- one YoutubeDL for a batch --------------------------------------------------------------------


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every ``YoutubeDL`` made (the real one, counted)."""
    made: list[object] = []
    init = yt_dlp.YoutubeDL.__init__

    def counted(self: Any, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        init(self, *args, **kwargs)

    monkeypatch.setattr(yt_dlp.YoutubeDL, "__init__", counted)
    return made


def test_a_batch_sets_yt_dlp_up_once_and_again_only_after_a_failure(
    catalog: Catalog, server: MediaServer, made: list[object]
) -> None:
    urls = [server.route(f"/batch/{i}.mp4", Route(body=CLIP + bytes([i]), media_type="video/mp4")) for i in range(3)]
    results = catalog.capture(urls, options=FAST)
    assert [r.ok for r in results] == [True, True, True]
    assert [r.sha256 for r in results] == [sha256(CLIP + bytes([i])) for i in range(3)]
    assert len(made) == 1

    made.clear()
    missing = server.url("/batch/missing.mp4")
    results = catalog.capture([urls[0] + "?again", missing, urls[1] + "?again"], options=FAST)
    assert [r.ok for r in results] == [True, False, True]
    assert len(made) == 2  # what the failure left is not reused
    assert catalog.verify().ok


def test_each_capture_of_a_batch_is_as_if_it_were_alone(catalog: Catalog, server: MediaServer, tmp_path: Path) -> None:
    """Cookies a site set, warnings, parts not kept: none carries over to the next URL."""
    first = server.route(
        "/alone/first.mp4",
        Route(body=CLIP, media_type="video/mp4", headers={"Set-Cookie": "session=from-the-first; Path=/"}),
    )
    broken = video_page(server.url("/alone/second.mp4"), title="Second", thumbnail_url=server.url("/alone/gone.jpg"))
    second = server.route("/alone/second", Route(body=broken, media_type="text/html"))
    server.route("/alone/second.mp4", Route(body=CLIP + b"2", media_type="video/mp4"))
    third = server.route("/alone/third.mp4", Route(body=CLIP + b"3", media_type="video/mp4"))
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(
        "# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\toperator\tgiven\n", encoding="utf-8"
    )
    options = CaptureOptions(retries=0, socket_timeout=2, cookies_file=cookies)

    results = catalog.capture([first, second, third], options=options)

    assert [r.ok for r in results] == [True, True, True], [r.error for r in results]
    assert results[1].not_kept is not None and "thumbnail" in results[1].not_kept
    assert results[2].not_kept is None and results[2].warnings == ()
    for path in ("/alone/second", "/alone/second.mp4", "/alone/third.mp4"):
        for request in server.seen(path):
            sent = request.headers.get("Cookie", "")
            assert "operator=given" in sent and "from-the-first" not in sent, (path, sent)
    assert cookies.read_text(encoding="utf-8").count("\n") == 2  # the operator's file is as it was


def test_the_command_captures_a_list_with_one_yt_dlp(
    tmp_path: Path, server: MediaServer, made: list[object], run_cli: Any
) -> None:
    urls = [server.route(f"/list/{i}.mp4", Route(body=CLIP + bytes([i]), media_type="video/mp4")) for i in range(3)]
    listing = tmp_path / "urls.txt"
    listing.write_text("\n".join(urls) + "\n", encoding="utf-8")
    Catalog.init(tmp_path / "cat", operator="Tester <t@example.org>").close()
    result = run_cli("capture", "--from-file", listing, "--catalog", tmp_path / "cat", "--retries", "0", "--quiet")
    assert result.code == 0, result.err
    assert [line.split("\t")[1] for line in result.out.splitlines()] == [sha256(CLIP + bytes([i])) for i in range(3)]
    assert len(made) == 1
