"""Adding many files with group commit (the default): files are catalogued in batches that end by
count, by bytes or by time; a batch's bytes are made durable with one sync of the blob store
before the transaction that names them; the bytes of the next files are stored on a thread of
their own while a batch is catalogued; callbacks run on the calling thread; a file that cannot
be read stops the add after the files before it are catalogued.  (What a SIGKILL at any point
leaves is in ``test_crash.py``.)
"""

from __future__ import annotations

import ctypes
import errno
import gc
import hashlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence_catalog import Agent, Catalog, InputError, StorageError
from evidence_catalog.operations import adding, common
from evidence_catalog.store import blobstore
from tests.conftest import CliResult, make_jpeg


def _files(folder: Path, count: int, size: int = 3000) -> list[Path]:
    """*count* files of distinct content (a photo among them), in two folders."""
    paths = []
    for number in range(count):
        path = folder / f"d{number % 2}" / f"file-{number:03d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = make_jpeg(colour=(number, 1, 2)) if number == 1 else f"{number:04d}\n".encode() * (size // 5)
        path.write_bytes(data)
        paths.append(path)
    return sorted(paths)


def _spy_batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of files of each transaction ``add`` commits (the real function runs)."""
    sizes: list[int] = []
    real = adding.commit_batch

    def spy(ctx: Any, prepared: Any, *args: Any, **kwargs: Any) -> Any:
        sizes.append(len(prepared))
        return real(ctx, prepared, *args, **kwargs)

    monkeypatch.setattr(adding, "commit_batch", spy)
    return sizes


def _orphans(catalog: Catalog) -> set[str]:
    return {entry.sha256 for entry in catalog.fsck().orphaned_blobs if entry.sha256 is not None}


def test_files_are_catalogued_in_batches_of_the_given_count(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _files(tmp_path / "in", 7)
    sizes = _spy_batches(monkeypatch)
    results = catalog.add(paths, batch=3)
    assert sizes == [3, 3, 1]
    assert [r.path for r in results] == paths and all(r.new_record for r in results)
    assert catalog.verify().ok and catalog.fsck().clean


def test_by_default_a_thousand_files_a_batch(catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert adding.BATCH_FILES == 1000
    paths = _files(tmp_path / "in", 5)
    sizes = _spy_batches(monkeypatch)
    catalog.add(paths)
    assert sizes == [5]


def test_the_last_files_are_committed_in_halving_batches(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Near the end, a batch ends once it holds as many files as are left after it (and at
    # least TAPER_FILES): the add ends soon after its last file is stored.
    assert adding.TAPER_FILES == 100
    paths = _files(tmp_path / "in", 14)
    monkeypatch.setattr(adding, "TAPER_FILES", 2)
    sizes = _spy_batches(monkeypatch)
    results = catalog.add(paths, batch=4)
    assert sizes == [4, 4, 3, 2, 1]  # 14 = 4 + 4, then 3 of the 6 left, 2 of 3, the last one
    assert [r.path for r in results] == paths and all(r.new_record for r in results)
    assert catalog.verify().ok and catalog.fsck().clean


def test_automatic_garbage_collection_is_paused_while_adding_and_turned_on_again(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The young generations are collected after each batch instead; a collector the caller
    # had turned off stays off, and one that was on is on again however the add ends.
    paths = _files(tmp_path / "in", 4)
    enabled: list[bool] = []
    collected: list[int] = []
    real_store, real_collect = adding.store_added_file, gc.collect

    def store(ctx: Any, path: Path, *args: Any, **kwargs: Any) -> Any:
        enabled.append(gc.isenabled())
        return real_store(ctx, path, *args, **kwargs)

    def collect(generation: int = 2) -> int:
        collected.append(generation)
        return real_collect(generation)

    monkeypatch.setattr(adding, "store_added_file", store)
    monkeypatch.setattr(gc, "collect", collect)
    assert gc.isenabled()
    catalog.add(paths, batch=2)
    assert enabled == [False] * 4 and collected == [1, 1] and gc.isenabled()
    gc.disable()
    try:
        catalog.add(_files(tmp_path / "more", 3), batch=2)
        assert not gc.isenabled()
    finally:
        gc.enable()
    third = _files(tmp_path / "third", 4)

    def failing(ctx: Any, path: Path, *args: Any, **kwargs: Any) -> Any:
        if path == third[2]:
            raise InputError("cannot be read", where=str(path))
        return real_store(ctx, path, *args, **kwargs)

    monkeypatch.setattr(adding, "store_added_file", failing)
    with pytest.raises(InputError):
        catalog.add(third, batch=2)
    assert gc.isenabled()
    assert catalog.verify().ok


def test_a_batch_ends_once_its_files_hold_the_byte_limit(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _files(tmp_path / "in", 8, size=3000)
    monkeypatch.setattr(adding, "BATCH_BYTES", 6000)  # two or three files reach it
    sizes = _spy_batches(monkeypatch)
    catalog.add(paths)
    assert sum(sizes) == len(paths) and len(sizes) >= 3
    lengths = [p.stat().st_size for p in paths]
    start = 0
    for size in sizes[:-1]:  # each ends with the file that reaches the limit
        batch = lengths[start : start + size]
        assert sum(batch[:-1]) < 6000 <= sum(batch)
        start += size


def test_a_large_file_is_stored_once_the_batch_before_it_is_committed(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The files before a large one are not held back while it is read and hashed: their batch
    # is committed (and reported) first.
    paths = _files(tmp_path / "in", 6)
    large = paths[3]
    large.write_bytes(os.urandom(50_000))
    monkeypatch.setattr(adding, "LARGE_FILE", 40_000)
    reported: list[Path] = []
    seen_when_large: list[list[Path]] = []
    real = adding.store_added_file

    def store(ctx: Any, path: Path, *args: Any, **kwargs: Any) -> Any:
        if path == large:
            seen_when_large.append(list(reported))
        return real(ctx, path, *args, **kwargs)

    monkeypatch.setattr(adding, "store_added_file", store)
    sizes = _spy_batches(monkeypatch)
    results = catalog.add(paths, on_added=lambda r: reported.append(r.path))
    assert seen_when_large == [paths[:3]]
    assert sizes == [3, 3] and reported == paths == [r.path for r in results]
    assert catalog.verify().ok


def test_a_batch_ends_when_its_first_file_was_stored_long_enough_ago(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _files(tmp_path / "in", 5)
    monkeypatch.setattr(adding, "BATCH_SECONDS", 0.3)
    real = adding.store_added_file

    def store(ctx: Any, path: Path, *args: Any, **kwargs: Any) -> Any:
        if path == paths[1]:
            time.sleep(0.5)  # a slow read: the batch is due once this file is stored
        return real(ctx, path, *args, **kwargs)

    monkeypatch.setattr(adding, "store_added_file", store)
    sizes = _spy_batches(monkeypatch)
    catalog.add(paths)
    assert sizes == [2, 3]


def test_a_batch_is_made_durable_by_one_sync_not_an_fsync_per_file(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _files(tmp_path / "in", 12)
    syncs: list[str] = []
    fsyncs: list[int] = []
    real_sync, real_fsync = blobstore.BlobStore.sync, os.fsync

    def sync(store: blobstore.BlobStore) -> None:
        syncs.append("sync")
        real_sync(store)

    def fsync(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(blobstore.BlobStore, "sync", sync)
    monkeypatch.setattr(os, "fsync", fsync)
    catalog.add(paths, batch=5, analyze=False)  # the batches' syncs only (an analysis stores files of its own)
    assert syncs == ["sync"] * 3 and fsyncs == []  # (SQLite syncs its own files, not through os.fsync)
    # one file a transaction: every file and its folder synced on its own
    more = _files(tmp_path / "more", 3, size=5000)
    catalog.add(more, batch=1)
    assert syncs == ["sync"] * 3 and len(fsyncs) >= 2 * len(more)


def test_without_syncfs_each_file_and_folder_is_synced_before_the_transaction(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _files(tmp_path / "in", 6)
    monkeypatch.setattr(blobstore, "_syncfs", None)
    order: list[tuple[str, str]] = []
    real_file, real_dir, real_catalogue = blobstore._fsync_file, blobstore.fsync_dir, adding.catalogue_files

    def fsync_file(path: Path) -> None:
        order.append(("file", path.name))
        real_file(path)

    def fsync_dir(path: Path) -> None:
        order.append(("folder", os.fspath(path)))
        real_dir(path)

    def catalogue(ctx: Any, session: Any, prepared: Any, *args: Any) -> Any:
        order.append(("transaction", str(len(prepared))))
        return real_catalogue(ctx, session, prepared, *args)

    monkeypatch.setattr(blobstore, "_fsync_file", fsync_file)
    monkeypatch.setattr(blobstore, "fsync_dir", fsync_dir)
    monkeypatch.setattr(adding, "catalogue_files", catalogue)
    results = catalog.add(paths, batch=3, analyze=False)  # the add's own syncs, last its transaction
    first, second = order.index(("transaction", "3")), len(order) - 1
    assert order[second] == ("transaction", "3")
    # Every file of a batch, and its folder, is synced before the transaction that names it.
    # (The next batch is stored on another thread meanwhile: one of its files may already be
    # synced with this batch, which is early, never late.)
    for batch, end in zip((results[:3], results[3:]), (first, second), strict=True):
        synced = order[:end]
        assert {r.sha256 for r in batch} <= {name for kind, name in synced if kind == "file"}
        folders = {name for kind, name in synced if kind == "folder"}
        assert {os.fspath(catalog.artifact_path(r.sha256).parent) for r in batch} <= folders
    assert {name for kind, name in order if kind == "file"} == {r.sha256 for r in results}
    assert catalog.verify().ok


def test_a_write_back_that_failed_fails_the_batch_and_records_nothing_of_it(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _files(tmp_path / "in", 5)
    shas = [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    real = blobstore._syncfs
    assert real is not None
    calls: list[int] = []

    def failing(fd: int) -> int:  # what syncfs(2) says when the disk lost a write: -1, EIO
        calls.append(fd)
        if len(calls) == 2:
            ctypes.set_errno(errno.EIO)
            return -1
        return real(fd)

    monkeypatch.setattr(blobstore, "_syncfs", failing)
    with pytest.raises(StorageError, match="could not be written to disk"):
        catalog.add(paths, batch=2)
    assert len(calls) == 2
    assert catalog.records_with_artifact(shas[0]) and catalog.records_with_artifact(shas[1])
    assert all(catalog.records_with_artifact(sha) == [] for sha in shas[2:])  # the failed batch and after
    assert _orphans(catalog) <= set(shas[2:]) and set(shas[2:4]) <= _orphans(catalog)
    monkeypatch.setattr(blobstore, "_syncfs", real)
    again = catalog.add(paths)  # adding again completes the work, with the bytes stored
    assert [r.new_record for r in again] == [False, False, True, True, True]
    assert catalog.verify().ok and catalog.fsck().clean


def test_syncfs_is_called_on_a_descriptor_opened_before_the_batch_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # syncfs reports a write-back that failed since its descriptor was opened: the descriptor
    # must be older than the first byte of its batch -- and the next batch's is opened before
    # this batch's sync, since the next files may be being written meanwhile.
    store = blobstore.BlobStore(tmp_path / "blobs")
    real = blobstore._syncfs
    assert real is not None
    seen: list[str] = []
    names: dict[int, str] = {}
    real_watch, real_write = blobstore._Deferred.watch, os.write

    def watch(deferred: blobstore._Deferred, root: Path) -> None:
        before = deferred.fd
        real_watch(deferred, root)
        if before is None and deferred.fd is not None:
            names[deferred.fd] = "ABC"[len(seen) - seen.count("write") - seen.count("syncfs A")]
            seen.append(f"open {names[deferred.fd]}")

    def write(fd: int, data: Any) -> int:
        seen.append("write")
        return real_write(fd, data)

    def syncfs(fd: int) -> int:
        seen.append(f"syncfs {names[fd]}")
        return real(fd)

    monkeypatch.setattr(blobstore._Deferred, "watch", watch)
    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(blobstore, "_syncfs", syncfs)
    store.put_stream(_Bytes(b"one"), defer_sync=True)
    store.put_stream(_Bytes(b"two"), defer_sync=True)
    store.sync()
    store.put_stream(_Bytes(b"three"), defer_sync=True)
    store.sync()
    monkeypatch.undo()
    assert seen == ["open A", "write", "write", "open B", "syncfs A", "write", "open C", "syncfs B"]


def test_a_durable_put_after_a_batch_not_yet_synced_syncs_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The durable file may land in a folder the batch made: that folder must be on disk first.
    store = blobstore.BlobStore(tmp_path / "blobs")
    syncs: list[str] = []
    real = blobstore.BlobStore.sync

    def sync(self: blobstore.BlobStore) -> None:
        syncs.append("sync")
        real(self)

    monkeypatch.setattr(blobstore.BlobStore, "sync", sync)
    store.put_stream(_Bytes(b"deferred"), defer_sync=True)
    store.put_stream(_Bytes(b"durable"))
    assert syncs == ["sync"]
    store.put_stream(_Bytes(b"durable again"))
    assert syncs == ["sync"]  # nothing deferred any more: the file and its folder only


def test_a_file_that_cannot_be_read_stops_the_add_after_the_files_before_it(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _files(tmp_path / "in", 6)
    bad = paths[3]
    real = common.SourceFile.readinto

    class BadSector:
        def readinto(self, buffer: memoryview) -> int:
            raise OSError(errno.EIO, "Input/output error")

    def readinto(self: common.SourceFile, buffer: memoryview) -> int | None:
        if self.where.endswith(bad.name):
            self.stream = BadSector()
        return real(self, buffer)

    monkeypatch.setattr(common.SourceFile, "readinto", readinto)
    reported: list[Path] = []
    with pytest.raises(InputError, match="cannot be read") as raised:
        catalog.add(paths, on_added=lambda r: reported.append(r.path))
    assert bad.name in str(raised.value)
    assert reported == paths[:3]
    assert len(catalog.record_ids()) == 3
    assert catalog.fsck().clean  # nothing of the bad file or after it was stored
    assert not [t for t in threading.enumerate() if t.name == "evidence-catalog-sync"]


def test_callbacks_run_on_the_calling_thread_and_progress_counts_every_byte(catalog: Catalog, tmp_path: Path) -> None:
    paths = _files(tmp_path / "in", 9)
    threads: set[int] = set()
    done: list[int] = []

    def progress(size: int) -> None:
        threads.add(threading.get_ident())
        done.append(size)

    catalog.add(paths, batch=4, progress=progress, on_added=lambda _: threads.add(threading.get_ident()))
    assert threads == {threading.get_ident()}
    assert sum(done) == sum(p.stat().st_size for p in paths)


def test_an_add_that_fails_while_committing_leaves_no_thread_storing(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _files(tmp_path / "in", 8)
    real = adding.catalogue_files

    def failing(*args: Any) -> Any:
        raise StorageError("the disk is full")

    monkeypatch.setattr(adding, "catalogue_files", failing)
    with pytest.raises(StorageError, match="disk is full"):
        catalog.add(paths, batch=2)
    assert not [t for t in threading.enumerate() if t.name == "evidence-catalog-sync"]
    assert catalog.record_ids() == []
    stored = _orphans(catalog)
    assert 2 <= len(stored) <= 4  # the failed batch and the one after it, none past them
    assert not catalog.fsck().temporary
    monkeypatch.setattr(adding, "catalogue_files", real)
    assert all(r.new_record for r in catalog.add(paths))
    assert catalog.fsck().clean


class _Bytes:
    """A readable stream of *data*."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def readinto(self, buffer: memoryview) -> int:
        size = min(len(buffer), len(self.data))
        buffer[:size] = self.data[:size]
        self.data = self.data[size:]
        return size


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    count=st.integers(2, 12),
    batch=st.integers(1, 5),
    limit=st.sampled_from([1, 5000, 10**9]),
    seconds=st.sampled_from([0.0, 60.0]),
)
def test_whatever_ends_the_batches_every_file_is_added_once_in_order(
    tmp_path_factory: pytest.TempPathFactory,
    count: int,
    batch: int,
    limit: int,
    seconds: float,
) -> None:
    base = tmp_path_factory.mktemp("ends")
    paths = _files(base / "in", count)
    with pytest.MonkeyPatch.context() as patch, Catalog.init(base / "catalog", operator=Agent(name="p")) as catalog:
        patch.setattr(adding, "BATCH_BYTES", limit)
        patch.setattr(adding, "BATCH_SECONDS", seconds)
        sizes = _spy_batches(patch)
        results = catalog.add(paths, batch=batch)
        assert [r.path for r in results] == paths and all(r.new_record and r.new_bytes for r in results)
        assert sum(sizes) == count and max(sizes) <= batch
        if limit == 1 or seconds == 0.0:
            assert set(sizes) == {1}
        if limit == 10**9 and seconds == 60.0 and batch > 1:
            assert sizes[:-1] == [batch] * (len(sizes) - 1)
        history = catalog.history()
        assert [e.subject for e in history if e.action == "artifact.added"] == [r.record_id for r in results]
        assert catalog.verify().ok and catalog.fsck().clean


def test_the_command_line_batch_default_is_the_librarys() -> None:
    from evidence_catalog.cli.adding import add

    [option] = [p for p in add.params if p.name == "batch"]
    assert option.default == adding.BATCH_FILES


def test_ctrl_c_keeps_the_batches_recorded_before_it_and_their_lines(
    tmp_path: Path, operator: Agent, run_cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    Catalog.init(tmp_path / "catalog", operator=operator).close()
    paths = _files(tmp_path / "in", 7)
    real = adding.commit_batch
    calls: list[int] = []

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        calls.append(len(calls))
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C while the second batch is being committed
        return real(*args, **kwargs)

    monkeypatch.setattr(adding, "commit_batch", interrupted)
    result = run_cli("add", *paths, "--catalog", tmp_path / "catalog", "--batch", "3")
    assert result.code == 130 and "interrupted" in result.err
    assert [line.split("\t")[3] for line in result.out.splitlines()] == [str(p) for p in paths[:3]]
    assert not [t for t in threading.enumerate() if t.name == "evidence-catalog-sync"]
    with Catalog.open(tmp_path / "catalog") as catalog:
        assert len(catalog.record_ids()) == 3 and catalog.verify().ok
        listing = catalog.fsck()
        assert not listing.temporary and 3 <= len(listing.orphaned_blobs) <= 4
    monkeypatch.setattr(adding, "commit_batch", real)
    again = run_cli("add", *paths, "--catalog", tmp_path / "catalog")
    statuses = [line.split("\t")[2] for line in again.out.splitlines()]
    assert again.code == 0 and statuses == ["already catalogued"] * 3 + ["new"] * 4


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("put"), st.binary(max_size=40), st.booleans()),
            st.tuples(st.just("sync"), st.just(b""), st.just(False)),
        ),
        max_size=12,
    )
)
def test_without_syncfs_every_file_stored_unsynced_is_synced_with_its_folders_by_the_next_sync(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, bytes, bool]]
) -> None:
    # Any mix of puts without syncing (True), durable puts and syncs: each file stored without
    # syncing, and the folders its name and its fan-out were made in, are synced by the next
    # sync (a durable put after them syncs them too); every stored file reads back as given.
    root = tmp_path_factory.mktemp("mix") / "blobs"
    synced: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(blobstore, "_syncfs", None)
        real_file, real_dir = blobstore._fsync_file, blobstore.fsync_dir
        patch.setattr(blobstore, "_fsync_file", lambda p: (synced.append(os.fspath(p)), real_file(p))[1])
        patch.setattr(blobstore, "fsync_dir", lambda p: (synced.append(os.fspath(p)), real_dir(p))[1])
        store = blobstore.BlobStore(root)
        waiting: set[str] = set()  # paths a sync must still cover
        stored: dict[str, bytes] = {}
        for kind, data, deferred in [*steps, ("sync", b"", False)]:
            if kind == "put":
                existed = {os.fspath(p) for p in root.rglob("*")} if root.exists() else set()
                synced.clear()
                blob = store.put_stream(_Bytes(data), defer_sync=deferred)
                stored[blob.sha256] = data
                final = store.path_for(blob.sha256)
                made = {os.fspath(p) for p in root.rglob("*")} - existed
                if deferred:
                    waiting |= {os.fspath(final), os.fspath(final.parent)}
                    waiting |= {os.fspath(Path(p).parent) for p in made if Path(p).is_dir()}
                else:  # durable: its own file, folder and the batch before it are synced now
                    assert os.fspath(final.parent) in synced
                    assert waiting <= set(synced), waiting - set(synced)
                    waiting.clear()
            else:
                synced.clear()
                store.sync()
                assert waiting <= set(synced), waiting - set(synced)
                waiting.clear()
        for sha, data in stored.items():
            assert store.path_for(sha).read_bytes() == data
            assert hashlib.sha256(data).hexdigest() == sha
