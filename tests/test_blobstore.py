"""The blob store: content-addressed, write-once, atomic, deduplicating, verifiable."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence_catalog.errors import StorageError
from evidence_catalog.findings import BlobMissing, DigestMismatch, SizeMismatch
from evidence_catalog.store.blobstore import BlobStore

from .conftest import ZeroStream


def test_blob_lives_under_its_sha256_fanned_out(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    blob = store.put_stream(io.BytesIO(b"evidence"))
    sha = hashlib.sha256(b"evidence").hexdigest()
    assert blob.sha256 == sha and blob.size == 8 and blob.created
    path = tmp_path / "sha256" / sha[:2] / sha[2:4] / sha
    assert path.read_bytes() == b"evidence"
    assert store.path_for(sha) == path


def test_stored_blob_is_read_only(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    blob = store.put_stream(io.BytesIO(b"x"))
    mode = stat.S_IMODE(os.stat(store.path_for(blob.sha256)).st_mode)
    assert mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) == 0


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2000))
def test_identical_bytes_are_stored_once(tmp_path: Path, data: bytes) -> None:
    store = BlobStore(tmp_path / "store", ["md5"])
    first = store.put_stream(io.BytesIO(data))
    second = store.put_stream(io.BytesIO(data))
    assert second.digests == first.digests
    assert not second.created
    assert store.path_for(first.sha256).read_bytes() == data
    assert not list((tmp_path / "store" / "tmp").iterdir())


def test_an_existing_blob_is_never_overwritten(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    blob = store.put_stream(io.BytesIO(b"original"))
    path = store.path_for(blob.sha256)
    before = os.stat(path)
    store.put_stream(io.BytesIO(b"original"))
    after = os.stat(path)
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


class FailingStream:
    """Gives some bytes, then fails like a dying disk or network."""

    def __init__(self, good: bytes) -> None:
        self.good = good

    def readinto(self, buffer: memoryview) -> int:
        if self.good:
            n = min(len(buffer), len(self.good))
            buffer[:n] = self.good[:n]
            self.good = self.good[n:]
            return n
        raise OSError(5, "Input/output error")


def test_a_failure_mid_stream_leaves_no_blob_and_no_temp_file(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(StorageError, match="nothing was stored"):
        store.put_stream(FailingStream(b"partial" * 1000))  # type: ignore[arg-type]
    assert not (tmp_path / "sha256").exists() or not any((tmp_path / "sha256").rglob("*"))
    assert not list((tmp_path / "tmp").iterdir())


def test_a_full_disk_is_reported_and_stores_nothing(tmp_path: Path) -> None:
    # /dev/full is a real device that fails every write with ENOSPC
    if not os.path.exists("/dev/full"):
        pytest.skip("this system has no /dev/full")
    store = BlobStore(tmp_path)
    store.tmp_dir.mkdir(parents=True)

    real_open = os.open

    def open_dev_full(path: object, flags: int, mode: int = 0o777) -> int:
        if str(path).endswith(".part"):
            return real_open("/dev/full", os.O_WRONLY)
        return real_open(path, flags, mode)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "open", open_dev_full)
        with pytest.raises(StorageError, match="no space left"):
            store.put_stream(io.BytesIO(b"x" * 100))
    assert not (tmp_path / "sha256").exists()


def test_concurrent_writers_of_the_same_bytes_store_one_blob(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    data = os.urandom(256 * 1024)
    results = []

    def put() -> None:
        results.append(store.put_stream(io.BytesIO(data)))

    threads = [threading.Thread(target=put) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8
    assert sum(r.created for r in results) == 1
    assert store.path_for(results[0].sha256).read_bytes() == data


def test_verify_finds_changed_missing_and_resized_bytes(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, ["md5"])
    blob = store.put_stream(io.BytesIO(b"original bytes"))
    assert store.verify(blob.sha256, blob.digests, blob.size) == []
    path = store.path_for(blob.sha256)
    os.chmod(path, 0o644)
    path.write_bytes(b"altered bytes!")  # same length
    findings = store.verify(blob.sha256, blob.digests, blob.size)
    assert {(f.algorithm, f.expected) for f in findings if isinstance(f, DigestMismatch)} == {
        ("sha256", blob.sha256),
        ("md5", blob.digests.md5),
    }
    path.write_bytes(b"short")
    assert SizeMismatch(sha256=blob.sha256, expected=blob.size, found=5) in store.verify(
        blob.sha256, blob.digests, blob.size
    )
    path.unlink()
    assert store.verify(blob.sha256, blob.digests, blob.size) == [BlobMissing(sha256=blob.sha256)]


def test_short_writes_are_completed_not_lost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write

    def at_most_7_bytes(fd: int, data: bytes | memoryview) -> int:
        return real_write(fd, bytes(data[:7]))

    monkeypatch.setattr(os, "write", at_most_7_bytes)
    data = os.urandom(100_003)
    blob = BlobStore(tmp_path).put_stream(io.BytesIO(data))
    monkeypatch.undo()
    assert BlobStore(tmp_path).path_for(blob.sha256).read_bytes() == data


def test_large_blobs_are_written_back_while_hashing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.fdatasync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting)
    size = 200 * 1024 * 1024
    blob = BlobStore(tmp_path).put_stream(ZeroStream(size))  # type: ignore[arg-type]
    assert blob.size == size and calls, "write-back should start before the final fsync"
