"""An add's small files stored in a second process while the first catalogues them.

Adding many small files is Python work in two halves of about equal cost a file: storing it
(reading, SHA-256, the temporary file, the link into the store, the stored copy's media type)
and cataloguing it (rows, the custody event and its commitments, the checkpoint).  One
interpreter runs one of them at a time (a storing thread only waits for its lock), so an add of
a few hundred files or more forks one worker process that stores and sniffs the small files a
batch ahead of the file being catalogued, on the other CPU.

What the worker does, for each file of a chunk: ``put_stream`` with ``defer_sync`` and the
media type of the stored copy; nothing else (no database, no clock, no reader of embedded
metadata: those stay in the adding process, where their servers run).  What stays here: each
file's ``stat`` (taken before it is sent: its size decides its batch and its modification time
is recorded), the acquisition's times (its start read when the file is sent, its end when the
worker's answer is taken: an interval that holds the storing), its description, the sync
before each transaction, and everything in the database.  The sync is one ``syncfs`` of the
store's file system, which covers what any process wrote there; the store's descriptor it is
called on is opened before each chunk is sent, so that a write-back of the worker's that fails
is reported too (:meth:`~evidence_catalog.store.blobstore.BlobStore.expect_deferred`).

The worker is a fork of this process running the same code; what it brings back is used as
the adding process's own ``put_stream`` would have returned it.  It stores a file only if it is
still the file whose ``stat`` was taken (device, inode, size, modification time), and never
moves a damaged stored copy aside (that is recorded in the event of the file that replaces it,
so it is done here).  Whatever it does not bring back (such a file, a file it could not store,
a chunk after the worker died or stopped answering) is looked at again and stored here, in
order, with the same function as without a worker (the add's ``store_added_file``), so the outcome
and the errors are the same.  A file the worker had stored before it died is then found
in the store, as bytes stored before (``new_bytes`` is false for it).  Workers are only forked
on Linux, with two CPUs or more, from a process running no other thread, into a local blob store
whose file system has ``syncfs``.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import attrs

from evidence_catalog.hashing import ProgressCallback
from evidence_catalog.operations import common
from evidence_catalog.operations.context import Context
from evidence_catalog.operations.workers import (
    answer,
    die_with_and_ignore_interrupts,
    forked_pool,
    stop_pool,
    usable_cpus,
)
from evidence_catalog.store.blobstore import BlobStore, StoredBlob

#: Adds of fewer files store them in the adding process: the fork and the worker's first task
#: cost about what storing this many small files beside the cataloguing saves.
OFFLOAD_FILES = 200
#: Files sent to the worker in one task, and tasks sent ahead of the file being catalogued:
#: about a batch's worth (:data:`~evidence_catalog.operations.adding.BATCH_FILES`), so that the
#: worker stores the next batch's files while this process commits one.  Never more files ahead
#: than the add's batch: a killed add leaves at most the bytes of the batch being committed, of
#: the one being filled, and of as many files again stored and unclaimed.
CHUNK_FILES = 32
AHEAD = 32
#: How long a task may take before its files are stored here instead (a worker that never
#: answers must not hold an add up forever).
TASK_TIMEOUT = 300.0
#: How long an add that stops waits for its worker to end the task it is doing (a killed
#: worker could leave a temporary file behind) before it kills it.
CLOSE_SECONDS = 10.0

#: What the worker brings back for a file it stored: its blob, and the stored copy's media type.
Stored = tuple[StoredBlob, str]

#: The worker's blob store (made at its first task, kept for the others).
_STORES: dict[tuple[str, tuple[str, ...], bool], BlobStore] = {}


def worker_store(root: str, algorithms: tuple[str, ...], fsync: bool) -> BlobStore:
    """A worker's blob store in folder *root* (made at its first task, kept for the others),
    which never moves a damaged stored copy aside: the process that gave the task does, and
    records it."""
    key = (root, algorithms, fsync)
    store = _STORES.get(key)
    if store is None:
        store = _STORES[key] = BlobStore(Path(root), algorithms, fsync=fsync)
        store.quarantines = False
    return store


#: What the adding process saw of a file it sends (its ``stat``): the worker stores the file only
#: if it is still that file (device, inode, size, modification time).
Seen = tuple[int, int, int, int]


def seen(info: os.stat_result) -> Seen:
    """What the worker checks of a file's ``stat`` *info*."""
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def store_files(
    root: str, algorithms: tuple[str, ...], fsync: bool, files: Sequence[tuple[str, Seen]]
) -> list[Stored | None]:
    """The worker's task: put each file of *files* (its path, and what the adding process saw
    of it) into the blob store in folder *root* (not synced: the adding process syncs the store
    before any transaction names them) and sniff the stored copy's media type.  It stops at the
    first file it cannot store, or that is not the file the adding process saw (changed since:
    it would be recorded with another modification time), or whose stored copy is damaged (the
    adding process moves it aside, and records that in the file's own event): ``None`` for that
    one and every one after it, which the adding process stores itself (and says why)."""
    from evidence_catalog.extract.mediatype import sniff_media_type

    store = worker_store(root, algorithms, fsync)
    done: list[Stored | None] = []
    for path, expected in files:
        try:
            # Opened without blocking, should it have become a named pipe since it was looked at.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            with open(fd, "rb", buffering=0) as stream:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode) or seen(info) != expected:
                    break
                blob = store.put_stream(stream, defer_sync=True)
            done.append((blob, sniff_media_type(store.path_for(blob.sha256))))
        except Exception:  # noqa: BLE001 -- stored by the adding process, which says why
            break
    return done + [None] * (len(files) - len(done))


@attrs.frozen
class AddPolicy:
    """What the add gives its storing (this module does not import the add's): how it stores a
    file itself (``store_added_file``) and what it catalogues of one the worker stored
    (``prepare_stored``), the size from which a file is stored only once the batch before it is
    committed, and the bytes that end a batch."""

    store_here: Callable[..., Any]
    prepare: Callable[..., Any]
    large_file: int
    batch_bytes: int


class Storing:
    """How the files of one add are stored, in order: each small file by the worker, when one
    runs (:meth:`begin`), else each here, as the add's ``store_added_file`` stores it."""

    def __init__(
        self,
        ctx: Context,
        files: Sequence[Path],
        source_url: str | None,
        progress: ProgressCallback | None,
        batch: int,
        policy: AddPolicy,
    ) -> None:
        self.ctx = ctx
        self.files = files
        self.policy = policy
        #: The most files sent ahead of the one being catalogued, and in one task.
        self.ahead = min(AHEAD * CHUNK_FILES, batch)
        self.chunk = min(CHUNK_FILES, self.ahead)
        self.source_url = source_url
        self.progress = progress
        self.pool: Any = None
        #: The store the worker stores into (the catalog's, local).
        self.store: BlobStore | None = None
        self.broken = False
        #: Each file's ``stat``, taken before it was sent (and kept until it is catalogued).
        self.infos: dict[int, os.stat_result | None] = {}
        #: The chunks sent, in order: their files and the answer to come.
        self.sent: deque[tuple[list[int], Future[list[Stored | None]] | None]] = deque()
        #: When each file sent was sent, and what the worker brought back for each.
        self.started: dict[int, dt.datetime] = {}
        self.stored: dict[int, Stored] = {}
        self.next = 0  # the first file not yet looked at for sending
        #: The size of each file sent and not yet taken (which files those are), and their sum:
        #: at most a batch's bytes (what an add that stops may leave stored and unclaimed beyond
        #: its batches).
        self.sizes: dict[int, int] = {}
        self.bytes_ahead = 0

    @classmethod
    def begin(
        cls,
        ctx: Context,
        files: Sequence[Path],
        source_url: str | None,
        progress: ProgressCallback | None,
        batch: int,
        policy: AddPolicy,
    ) -> Storing:
        """The storing of *files*, added in batches of *batch*, with a worker process where it
        pays and can be had (see the module's documentation), forked now: before the add starts
        any thread."""
        storing = cls(ctx, files, source_url, progress, batch, policy)
        if len(files) < OFFLOAD_FILES or batch < 2 or usable_cpus() < 2 or not sys.platform.startswith("linux"):
            return storing
        store = ctx.blobs
        if not isinstance(store, BlobStore) or threading.active_count() > 1:
            return storing  # (a lock another thread holds would stay held in the forked worker)
        if not store.expect_deferred():
            return storing
        storing.pool = forked_pool(1, TASK_TIMEOUT, die_with_and_ignore_interrupts, os.getpid())
        if storing.pool is None:  # no worker: everything is stored here
            store.expect_no_more()
        else:
            storing.store = store
        return storing

    def stat(self, index: int) -> os.stat_result | None:
        """File *index*'s ``stat`` (``None`` when it cannot be had: storing it says why), as it
        was before the worker read it, if it was sent."""
        if index not in self.infos:
            try:
                self.infos[index] = os.stat(self.files[index])
            except OSError:
                self.infos[index] = None
        return self.infos[index]

    def prepared(self, index: int, info: os.stat_result | None) -> Any:
        """What the add catalogues about file *index* (whose ``stat`` is *info*, from
        :meth:`stat`): stored by the worker, or here."""
        path = self.files[index]
        self.infos.pop(index, None)
        if self.pool is not None and not self.broken:
            self._send_ahead(index)  # (it too, if it was not sent before)
        size = self.sizes.pop(index, None)
        if size is None:  # not sent: stored here
            return self.policy.store_here(self.ctx, path, self.source_url, self.progress, defer_sync=True, info=info)
        self.bytes_ahead -= size
        taken = self._take(index)
        if taken is not None and info is not None:
            (blob, media_type), started_at = taken
            if self.progress is not None:
                self.progress(blob.size)
            artifact = common.describe(self.ctx, blob, media_type)
            return self.policy.prepare(self.ctx, path, blob, artifact, info, self.source_url, started_at)
        # Sent, and not brought back: looked at when it was sent, perhaps a batch ago, so looked
        # at again, as without a worker (a named pipe it has become since would be opened, and
        # waited on for ever, as the regular file it was; a file rewritten since would be
        # recorded with the old modification time).
        return self.policy.store_here(self.ctx, path, self.source_url, self.progress, defer_sync=True, info=None)

    def _send_ahead(self, index: int) -> None:
        """Send the small files after file *index* (and it), up to :attr:`ahead` of them and a
        batch's bytes."""
        store = self.store
        assert store is not None
        count, limit = len(self.files), index + self.ahead
        full = False
        # Whole chunks only (but the last): one file at a time would cost more than it saves.
        while not (full or self.broken) and self.next < count and (self.next + self.chunk <= limit or limit >= count):
            end = min(count, self.next + self.chunk)
            chunk: list[int] = []
            while self.next < end:
                info = self.stat(self.next)
                if info is None or not stat.S_ISREG(info.st_mode) or info.st_size >= self.policy.large_file:
                    # Not sent: its stat is taken again at its turn (it may change before).
                    self.infos.pop(self.next, None)
                    if chunk:
                        break  # it ends the chunk, and is stored here when its turn comes
                    self.next += 1
                    continue
                if self.bytes_ahead + info.st_size > self.policy.batch_bytes and (chunk or self.sizes):
                    full = True  # sent when the files before it are taken
                    break
                chunk.append(self.next)
                self.sizes[self.next] = info.st_size
                self.bytes_ahead += info.st_size
                self.next += 1
            if not chunk:
                continue
            store.expect_deferred()  # before the worker writes a byte of them
            for sent in chunk:
                self.started[sent] = self.ctx.clock()
            files = [(os.fspath(self.files[i]), seen(self._sent_stat(i))) for i in chunk]
            self.sent.append((chunk, self._submit(os.fspath(store.root), store.algorithms, store.fsync, files)))

    def _sent_stat(self, index: int) -> os.stat_result:
        info = self.infos[index]
        assert info is not None  # (only files with a stat are sent)
        return info

    def _submit(
        self, root: str, algorithms: tuple[str, ...], fsync: bool, files: list[tuple[str, Seen]]
    ) -> Future[list[Stored | None]] | None:
        try:
            return self.pool.submit(store_files, root, algorithms, fsync, files)  # type: ignore[no-any-return]
        except Exception:  # noqa: BLE001 -- a broken pool: the rest is stored here
            self.broken = True
            return None

    def _take(self, index: int) -> tuple[Stored, dt.datetime] | None:
        """What the worker brought back for file *index*, and when it was sent; ``None`` when
        it was not sent or not stored there."""
        while index not in self.stored and self.sent and self.sent[0][0][0] <= index:
            chunk, future = self.sent.popleft()
            answer = self._answer(future)
            if answer is None or len(answer) != len(chunk):
                answer = [None] * len(chunk)
            for sent, stored in zip(chunk, answer, strict=True):
                if stored is not None:
                    self.stored[sent] = stored
                else:
                    self.started.pop(sent, None)
        stored = self.stored.pop(index, None)
        started = self.started.pop(index, None)
        return None if stored is None or started is None else (stored, started)

    def _answer(self, future: Future[list[Stored | None]] | None) -> list[Stored | None] | None:
        if future is None or self.broken:
            return None
        from concurrent.futures.process import BrokenProcessPool  # (imported with the pool)

        try:
            found: list[Stored | None] = answer(self.pool, future, TASK_TIMEOUT)  # (at once if the worker is gone)
            return found
        except (TimeoutError, BrokenProcessPool):
            self.broken = True  # (a worker that does not answer is killed when the add closes)
        except Exception:  # noqa: BLE001 -- a task that failed: its files are stored here
            pass
        return None

    def close(self) -> None:
        """Stop the worker: its tasks not started are dropped, the one it is doing is waited
        for (up to :data:`CLOSE_SECONDS`) so that it leaves no temporary file; one given up on
        is killed."""
        pool, self.pool = self.pool, None
        if pool is None:
            return
        if self.store is not None:
            self.store.expect_no_more()  # (after the last sync of the add: nothing is sent since)
        stop_pool(pool, kill=self.broken, seconds=CLOSE_SECONDS)
