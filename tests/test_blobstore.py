"""The blob store: content-addressed, write-once, atomic, deduplicating, verifiable.

The contract tests run against both stores -- ``BlobStore`` in a local folder and
``ObjectBlobStore`` on a real S3-compatible server (the ``backend`` fixture and the server come
from ``test_objectstore.py``); the rest are about the local store's own means (file modes,
``fsync``, short writes, a full disk).
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import stat
import threading
import time
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from evidence_catalog.errors import StorageError
from evidence_catalog.findings import BlobMissing, DigestMismatch, Finding, SizeMismatch
from evidence_catalog.store.blobstore import BlobStore
from evidence_catalog.store.objectstore import PART_SIZE

from .conftest import ZeroStream
from .test_objectstore import (  # noqa: F401  (the fixtures the S3 backend needs)
    Backend,
    FailingStream,
    _botocore_models_parsed_once,
    address,
    aws_env,
    bucket,
    closed_endpoint,
    pick_backend,
    s3,
    s3_backend,
    s3_endpoint,
)


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The same contract, once on a local folder and once in object storage."""
    return pick_backend(request, tmp_path)


class Big(bytes):
    """Bytes too many to print when an example fails."""

    def __repr__(self) -> str:
        return f"Big(<{len(self)} bytes, SHA-256 {hashlib.sha256(self).hexdigest()}>)"


#: More than one part of an upload (and more than one hashing block): the part boundary exactly
#: reached, and passed by some bytes.
ONE_PART = Big(random.Random(1).randbytes(PART_SIZE))
PART_AND_SOME = Big(random.Random(2).randbytes(PART_SIZE + 1_000_003))


def test_blob_lives_under_its_sha256_fanned_out(backend: Backend) -> None:
    store = backend.store()
    blob = store.put_stream(io.BytesIO(b"evidence"))
    sha = hashlib.sha256(b"evidence").hexdigest()
    assert blob.sha256 == sha and blob.size == 8 and blob.created
    assert backend.read(f"sha256/{sha[:2]}/{sha[2:4]}/{sha}") == b"evidence"
    assert backend.names("sha256") == [address(sha)]
    assert store.exists(sha) and not store.exists(hashlib.sha256(b"other").hexdigest())
    if isinstance(store, BlobStore):
        assert store.path_for(sha) == store.root / address(sha)


def test_stored_blob_is_read_only(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    blob = store.put_stream(io.BytesIO(b"x"))
    mode = stat.S_IMODE(os.stat(store.path_for(blob.sha256)).st_mode)
    assert mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) == 0


ALGORITHMS = ("md5", "sha1", "sha512", "blake2b")


@pytest.mark.slow
def test_stored_bytes_read_back_and_identical_bytes_are_stored_once(backend: Backend) -> None:
    store = backend.store(ALGORITHMS)

    def round_trip(data: bytes) -> None:
        sha = hashlib.sha256(data).hexdigest()
        there_before = store.exists(sha)  # examples share the store: an earlier one may have put them
        first = store.put_stream(io.BytesIO(data))
        expected = {a: hashlib.new(a, data).hexdigest() for a in ("sha256", *ALGORITHMS)}
        assert first.digests.as_dict() == expected
        assert (first.sha256, first.size, first.created, first.quarantined) == (sha, len(data), not there_before, None)
        assert set(backend.version_bytes(address(sha))) == {data}  # only these bytes under the address
        assert backend.names("sha256").count(address(sha)) == 1  # one object, nothing beside it

        second = store.put_stream(io.BytesIO(data))
        assert (second.digests, second.size) == (first.digests, len(data))
        assert (second.created, second.quarantined) == (False, None)
        # Never other bytes under the address: identical bytes may be put there again (which
        # keeps the blob young for fsck while the record claiming it is committed).
        assert set(backend.version_bytes(address(sha))) == {data}
        with store.open(sha) as stream:
            assert stream.read() == data
        with store.local_copy(sha) as path:
            assert path.read_bytes() == data
        assert store.verify(sha, first.digests, first.size) == []
        assert backend.names("tmp") == [] and backend.unfinished_uploads() == []

    # Every request to the S3 test server takes a while (and 16 MiB take seconds): fewer
    # examples there, one of them past the end of the first part.
    local = backend.name == "local"
    check = given(data=st.binary(max_size=3000))(round_trip)
    for big in [PART_AND_SOME, ONE_PART] if local else [PART_AND_SOME]:
        check = example(data=big)(check)
    check = example(data=b"")(check)
    settings(max_examples=30 if local else 4)(check)()
    assert [e.sha256 for e in store.stored(time.time())] == sorted(n.rsplit("/", 1)[1] for n in backend.names("sha256"))


def test_an_existing_blob_is_never_overwritten(backend: Backend) -> None:
    store = backend.store()
    blob = store.put_stream(io.BytesIO(b"original"))
    before = backend.versions(address(blob.sha256))
    other = store.put_stream(io.BytesIO(b"other bytes"))
    again = store.put_stream(io.BytesIO(b"original"))
    assert not again.created
    assert before[0] in backend.versions(address(blob.sha256))  # the first version is still there
    assert set(backend.version_bytes(address(blob.sha256))) == {b"original"}
    assert backend.read(address(blob.sha256)) == b"original"
    assert backend.read(address(other.sha256)) == b"other bytes"
    assert sorted(backend.names("sha256")) == sorted([address(blob.sha256), address(other.sha256)])


@pytest.mark.parametrize("damage", ["other bytes", "truncated", "deleted"])
def test_a_damaged_copy_is_found_then_moved_aside_by_the_good_bytes(backend: Backend, damage: str) -> None:
    store = backend.store(("md5",))
    good = b"the bytes as acquired"
    blob = store.put_stream(io.BytesIO(good))
    key = address(blob.sha256)
    bad = {"other bytes": b"THE BYTES AS ACQUIRED", "truncated": good[:7], "deleted": None}[damage]
    if bad is None:
        backend.delete(key)
        assert store.verify(blob.sha256, blob.digests, blob.size) == [BlobMissing(sha256=blob.sha256)]
        assert not store.exists(blob.sha256)
    else:
        backend.write(key, bad)
        findings = store.verify(blob.sha256, blob.digests, blob.size)
        expected: list[Finding] = [
            DigestMismatch(sha256=blob.sha256, algorithm=a, expected=blob.digests.as_dict()[a], found=found)
            for a, found in (("sha256", hashlib.sha256(bad).hexdigest()), ("md5", hashlib.md5(bad).hexdigest()))
        ]
        if len(bad) != len(good):
            expected.insert(0, SizeMismatch(sha256=blob.sha256, expected=len(good), found=len(bad)))
        assert findings == expected

    restored = store.put_stream(io.BytesIO(good))
    assert restored.created and restored.digests == blob.digests
    assert backend.read(key) == good
    assert store.verify(blob.sha256, blob.digests, blob.size) == []
    if bad is None:
        assert restored.quarantined is None and backend.names("quarantine") == []
    else:
        moved = restored.quarantined
        assert moved is not None and backend.names("quarantine") == [moved]  # relative to the store
        assert moved.startswith(f"quarantine/{blob.sha256}.")
        assert backend.read(moved) == bad  # kept: evidence of the damage
        assert [e.size for e in store.quarantined(time.time())] == [len(bad)]
    again = store.put_stream(io.BytesIO(good))
    assert not again.created and again.quarantined is None
    assert len(backend.names("quarantine")) == (0 if bad is None else 1)
    assert backend.names("tmp") == []


@pytest.mark.parametrize("good", [7000, PART_SIZE + 3 * 1024 * 1024], ids=["small", "after-a-part"])
def test_a_failure_mid_stream_leaves_no_blob_and_no_temp_file(backend: Backend, good: int) -> None:
    store = backend.store()
    with pytest.raises(StorageError, match=r"Input/output error.*nothing was stored") as raised:
        store.put_stream(FailingStream(good))
    assert raised.value.where == store.location
    assert backend.names("sha256") == [] and backend.names("tmp") == []
    assert backend.unfinished_uploads() == []
    assert list(store.temporary(time.time())) == [] and list(store.stored(time.time())) == []


def test_an_interrupt_mid_stream_leaves_no_blob_and_no_temp_file(backend: Backend) -> None:
    store = backend.store()
    with pytest.raises(KeyboardInterrupt):
        store.put_stream(FailingStream(70_000, KeyboardInterrupt()))
    assert backend.names("sha256") == [] and backend.names("tmp") == []
    assert backend.unfinished_uploads() == []


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


def test_concurrent_writers_of_the_same_bytes_store_one_blob(backend: Backend) -> None:
    store = backend.store()
    data = os.urandom(256 * 1024)
    results = []
    errors: list[BaseException] = []

    def put() -> None:
        try:
            results.append(store.put_stream(io.BytesIO(data)))
        except BaseException as exc:  # noqa: BLE001  (reported below, not lost in the thread)
            errors.append(exc)

    threads = [threading.Thread(target=put) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 6
    assert {r.digests for r in results} == {results[0].digests}
    if isinstance(store, BlobStore):
        assert sum(r.created for r in results) == 1
    else:  # object stores have no exclusive create: racing writers may each copy the same verified bytes
        assert sum(r.created for r in results) >= 1
    assert all(r.quarantined is None for r in results)
    assert backend.read(address(results[0].sha256)) == data
    assert backend.names("sha256") == [address(results[0].sha256)]
    assert backend.names("tmp") == [] and backend.names("quarantine") == []


def test_verify_finds_changed_missing_and_resized_bytes(backend: Backend) -> None:
    store = backend.store(("md5",))
    blob = store.put_stream(io.BytesIO(b"original bytes"))
    assert store.verify(blob.sha256, blob.digests, blob.size) == []
    key = address(blob.sha256)
    backend.write(key, b"altered bytes!")  # same length
    findings = store.verify(blob.sha256, blob.digests, blob.size)
    assert {(f.algorithm, f.expected) for f in findings if isinstance(f, DigestMismatch)} == {
        ("sha256", blob.sha256),
        ("md5", blob.digests.md5),
    }
    assert not any(isinstance(f, SizeMismatch) for f in findings)
    backend.write(key, b"short")
    assert SizeMismatch(sha256=blob.sha256, expected=blob.size, found=5) in store.verify(
        blob.sha256, blob.digests, blob.size
    )
    backend.delete(key)
    assert store.verify(blob.sha256, blob.digests, blob.size) == [BlobMissing(sha256=blob.sha256)]


def test_progress_is_reported_while_storing_and_verifying(backend: Backend) -> None:
    store = backend.store()
    data = os.urandom(3 * 1024 * 1024 + 5)
    stored: list[int] = []
    checked: list[int] = []
    blob = store.put_stream(io.BytesIO(data), progress=stored.append)
    assert store.verify(blob.sha256, blob.digests, blob.size, progress=checked.append) == []
    assert sum(stored) == sum(checked) == len(data) and len(stored) > 1


def test_a_batch_put_without_syncing_each_file_is_stored_once_synced(backend: Backend) -> None:
    store = backend.store()
    blobs = [store.put_stream(io.BytesIO(data), defer_sync=True) for data in (b"one", b"two", b"one")]
    store.sync()
    assert [b.created for b in blobs] == [True, True, False]
    assert [backend.read(address(b.sha256)) for b in blobs] == [b"one", b"two", b"one"]
    assert backend.names("tmp") == []


def test_a_blob_no_record_claims_can_be_removed_and_listed_leftovers_deleted(backend: Backend) -> None:
    store = backend.store()
    kept = store.put_stream(io.BytesIO(b"kept"))
    gone = store.put_stream(io.BytesIO(b"an import that failed stored this"))
    store.remove(gone.sha256)
    assert not store.exists(gone.sha256) and store.exists(kept.sha256)
    store.remove(gone.sha256)  # already gone: nothing to do
    backend.write("tmp/left-by-a-killed-writer.part", b"half")
    [part] = store.temporary(time.time())
    assert part.path.endswith("tmp/left-by-a-killed-writer.part") and part.size == 4 and part.sha256 is None
    store.delete(part)
    [entry] = store.stored(time.time())
    assert (entry.sha256, entry.size) == (kept.sha256, 4) and entry.path.endswith(address(kept.sha256))
    store.delete(entry)
    assert backend.names("tmp") == [] and backend.names("sha256") == []
    with pytest.raises(FileNotFoundError):
        store.open(kept.sha256)


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
