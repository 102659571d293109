"""A capture that fills the disk is a failed capture like any other: its partial download is
removed *before* the failure is logged (the log needs the room the download took), the failure is
in the custody log, and the next URL is tried.  When even the log cannot be written, the command
says so and exits 2: a failed capture is never lost silently.

Two kinds of disk:

* **a real small disk** (a tmpfs of 2 MiB holding the whole catalog): exactly what an analyst
  meets, with the kernel's ``ENOSPC`` everywhere (yt-dlp's download, the blob store, SQLite's
  write-ahead log).  Mounting one needs privileges a CI container usually lacks: these tests are
  skipped there, saying why.
* **a disk modelled at the catalog's two write boundaries**, which runs anywhere: the file yt-dlp
  downloads into (its ``sanitize_open``) and the database driver (SQLAlchemy's cursor) share one
  capacity measured from the real sizes of the catalog's files.  A write that does not fit fails
  as the kernel would (``OSError(ENOSPC)`` for the download, SQLite's ``database or disk is full``
  for the database), below everything the catalog does; yt-dlp, the work area, the blob store and
  the log above are the real code.  A per-file limit (``RLIMIT_FSIZE``) would fail the download
  for real too, but it cannot show the bug: the log's file never reaches the limit, so the
  partial download would never be in its way.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event as sa_event

from evidence_catalog import Catalog
from evidence_catalog.capture import CaptureOptions
from evidence_catalog.errors import StorageError
from tests.conftest import database_dialect
from tests.media_server import MediaServer, Route

CLIP = (Path(__file__).parent / "data" / "clip.mp4").read_bytes()
FAST = ("--retries", "0", "--timeout", "2")
OPERATOR = "Tester <t@example.org>"


def _files_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def _leftovers(catalog_dir: Path) -> list[Path]:
    area = catalog_dir / "tmp"
    return sorted(area.iterdir()) if area.exists() else []


def _events(catalog_dir: Path) -> list[Any]:
    with Catalog.open(catalog_dir) as catalog:
        return list(catalog.history())


def _sqlite_only(catalog_dir: Path) -> None:
    if database_dialect(catalog_dir) != "sqlite":
        pytest.skip("the disk modelled here is the one a SQLite catalog lives on; a database server has its own")


# -- a real small disk ---------------------------------------------------------------------------


@contextlib.contextmanager
def _small_disk(where: Path, size: str = "2m") -> Iterator[Path]:
    where.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = (getattr(exc, "stderr", None) or str(exc)).strip()
        pytest.skip(f"a full disk is a {size} tmpfs, and mounting one is not permitted here: {detail}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def _fill(disk: Path) -> None:
    """Write a file until the disk has no room left."""
    with open(disk / "filler", "wb", buffering=0) as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 4096)


def test_a_capture_that_fills_a_real_disk_is_logged_and_the_next_url_is_tried(
    tmp_path: Path, server: MediaServer, base: str, run_cli: Any
) -> None:
    big = server.route(f"{base}/big.mp4", Route(body=os.urandom(4 * 1024 * 1024), media_type="video/mp4"))
    small = server.route(f"{base}/small.mp4", Route(body=CLIP, media_type="video/mp4"))
    with _small_disk(tmp_path / "disk") as disk:
        cat = disk / "catalog"
        Catalog.init(cat, operator=OPERATOR).close()
        _sqlite_only(cat)

        result = run_cli("capture", "--catalog", cat, *FAST, big, small)

        assert result.code == 1, result.err
        [failed, captured] = [line.split("\t") for line in result.out.splitlines()]
        assert failed == ["-", "-", "failed", big]
        assert captured[2:] == ["new", small]
        assert f"error: {big}: " in result.err and "No space left on device" in result.err
        assert "captured 1 of 2 URL(s); 1 failed" in result.err
        events = _events(cat)
        # the video captured is analysed too: there is room for that once the big download is gone
        assert [e.action for e in events] == ["catalog.created", "capture.failed", "media.captured", "media.analyzed"]
        logged = events[1].details["acquisition"]
        assert logged["requested_url"] == big and "No space left on device" in logged["error"]
        assert _leftovers(cat) == []
        assert run_cli("verify", "--catalog", cat).code == 0


def test_a_disk_that_fills_before_the_analysis_keeps_the_capture_and_analyze_finishes_later(
    tmp_path: Path, server: MediaServer, base: str
) -> None:
    """The disk fills (another program) between a capture and the analysis of what it stored:
    the capture stays captured and is not failed, the analysis says it could not be written,
    the catalog verifies, and ``analyze`` finishes the work once there is room again."""
    small = server.route(f"{base}/small.mp4", Route(body=CLIP, media_type="video/mp4"))
    with _small_disk(tmp_path / "disk", "4m") as disk:
        cat = disk / "catalog"
        Catalog.init(cat, operator=OPERATOR).close()
        _sqlite_only(cat)
        analysed: list[Any] = []
        with Catalog.open(cat, operator=OPERATOR) as catalog:
            [captured] = catalog.capture(
                [small],
                options=CaptureOptions(retries=0, socket_timeout=2),
                on_result=lambda _: _fill(disk),
                on_analyzed=analysed.append,
            )
        assert captured.ok and captured.new_on_record and captured.record_id is not None
        [analysis] = analysed
        assert (analysis.record_id, analysis.document_sha256, analysis.new) == (captured.record_id, None, False)
        assert any("could not be written" in error for error in analysis.errors), analysis.errors
        (disk / "filler").unlink()
        assert [e.action for e in _events(cat)] == ["catalog.created", "media.captured"]
        assert _leftovers(cat) == []
        with Catalog.open(cat, operator=OPERATOR) as catalog:
            assert catalog.verify().ok
            [done] = catalog.analyze([captured.record_id])
            assert done.new and done.hashes and not done.errors
            assert catalog.verify(deep=True).ok


def test_a_real_disk_too_full_to_log_a_failure_stops_with_a_clear_error(
    tmp_path: Path, server: MediaServer, base: str
) -> None:
    gone = server.url(f"{base}/gone.mp4")  # a 404: the capture fails whatever the disk
    small = server.route(f"{base}/small.mp4", Route(body=CLIP, media_type="video/mp4"))
    with _small_disk(tmp_path / "disk") as disk:
        cat = disk / "catalog"
        Catalog.init(cat, operator=OPERATOR).close()
        _sqlite_only(cat)
        before = [e.hash for e in _events(cat)]
        with Catalog.open(cat, operator=OPERATOR) as catalog:
            _fill(disk)  # by another program, while the catalog is open

            with pytest.raises(StorageError) as raised:
                catalog.capture([gone, small], options=CaptureOptions(retries=0, socket_timeout=2))

        message = raised.value.message
        assert message.startswith(f"capture of {gone} failed (") and "404" in message
        assert "and the failure could not be logged (catalog database could not be written (database or" in message
        assert not server.seen(f"{base}/small.mp4")  # the catalog cannot be written: nothing more is tried
        (disk / "filler").unlink()
        assert [e.hash for e in _events(cat)] == before
        assert _leftovers(cat) == []


# -- a disk modelled at the catalog's write boundaries ---------------------------------------------


class ModelledDisk:
    """The catalog folder on a disk of *capacity* bytes (see the module's docstring)."""

    def __init__(self, root: Path, capacity: int) -> None:
        self.root = root
        self.capacity = capacity
        self.download_refusals = 0
        self.database_refusals = 0

    def free(self) -> int:
        return max(0, self.capacity - _files_size(self.root))


class _DownloadFile:
    """yt-dlp's download file on the modelled disk: a write that does not fit writes what fits
    and fails with ENOSPC, as the kernel's write does."""

    def __init__(self, stream: Any, disk: ModelledDisk) -> None:
        self._stream = stream
        self._disk = disk

    def write(self, data: bytes) -> int:
        room = self._disk.free()
        if len(data) > room:
            self._stream.write(data[:room])
            self._stream.flush()
            self._disk.download_refusals += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written: int = self._stream.write(data)
        self._stream.flush()
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


#: Room a write transaction needs: SQLite appends every transaction to its write-ahead log.
LOG_ROOM = 64 * 1024


@pytest.fixture
def modelled_disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``modelled_disk(catalog_dir, capacity)`` puts that catalog on a disk of *capacity* bytes."""
    from yt_dlp.downloader.common import FileDownloader

    disks: list[ModelledDisk] = []
    original_open = FileDownloader.sanitize_open

    def sanitize_open(self: Any, filename: str, open_mode: str) -> Any:
        stream, name = original_open(self, filename, open_mode)
        for disk in disks:
            if Path(name).resolve().is_relative_to(disk.root.resolve()):
                return _DownloadFile(stream, disk), name
        return stream, name

    def before_cursor_execute(conn: sa.Connection, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            return
        database = str(conn.engine.url.database or "")
        for disk in disks:
            if database and Path(database).resolve().is_relative_to(disk.root.resolve()) and disk.free() < LOG_ROOM:
                disk.database_refusals += 1
                raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(FileDownloader, "sanitize_open", sanitize_open)
    sa_event.listen(sa.engine.Engine, "before_cursor_execute", before_cursor_execute)

    def make(root: Path, capacity: int) -> ModelledDisk:
        disk = ModelledDisk(root, capacity)
        disks.append(disk)
        return disk

    try:
        yield make
    finally:
        sa_event.remove(sa.engine.Engine, "before_cursor_execute", before_cursor_execute)


def test_a_capture_that_fills_the_disk_is_logged_after_its_download_is_removed(
    tmp_path: Path, server: MediaServer, base: str, run_cli: Any, modelled_disk: Any
) -> None:
    big = server.route(f"{base}/big.mp4", Route(body=os.urandom(2 * 1024 * 1024), media_type="video/mp4"))
    small = server.route(f"{base}/small.mp4", Route(body=CLIP, media_type="video/mp4"))
    cat = tmp_path / "catalog"
    Catalog.init(cat, operator=OPERATOR).close()
    _sqlite_only(cat)
    # Room for the small capture and the log, not for the big download.
    disk = modelled_disk(cat, _files_size(cat) + 1024 * 1024)

    result = run_cli("capture", "--catalog", cat, *FAST, big, small)

    assert disk.download_refusals == 1  # the big download really did fill the disk
    assert result.code == 1, result.err
    [failed, captured] = [line.split("\t") for line in result.out.splitlines()]
    assert failed == ["-", "-", "failed", big]
    assert captured[2:] == ["new", small]
    assert f"error: {big}: unable to write data: [Errno 28] No space left on device" in result.err
    events = _events(cat)
    assert [e.action for e in events] == ["catalog.created", "capture.failed", "media.captured", "media.analyzed"]
    logged = events[1].details["acquisition"]
    assert (logged["requested_url"], logged["outcome"]) == (big, "failed")
    assert "No space left on device" in logged["error"]
    assert _leftovers(cat) == []
    assert run_cli("verify", "--catalog", cat).code == 0


def test_a_disk_too_full_to_log_a_failure_stops_with_a_clear_error_and_changes_nothing(
    tmp_path: Path, server: MediaServer, base: str, run_cli: Any, modelled_disk: Any
) -> None:
    first = server.route(f"{base}/first.mp4", Route(body=CLIP, media_type="video/mp4"))
    second = server.route(f"{base}/second.mp4", Route(body=CLIP + b"\0", media_type="video/mp4"))
    cat = tmp_path / "catalog"
    Catalog.init(cat, operator=OPERATOR).close()
    _sqlite_only(cat)
    before = [e.hash for e in _events(cat)]
    disk = modelled_disk(cat, _files_size(cat))  # full before the capture starts

    result = run_cli("capture", "--catalog", cat, *FAST, first, second)

    assert disk.download_refusals == 1 and disk.database_refusals >= 1
    assert result.code == 2, result.err
    assert result.out == ""
    [message] = result.err.strip().splitlines()
    assert message.startswith(f"error: capture of {first} failed (unable to write data: ")
    assert "and the failure could not be logged (catalog database could not be written (database or disk" in message
    assert not server.seen(f"{base}/second.mp4")
    disk.capacity = 1 << 40  # room again: the catalog is as it was
    assert [e.hash for e in _events(cat)] == before
    assert _leftovers(cat) == []
