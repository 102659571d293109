"""An import's files: each artifact file of a bag (or of a JSON export's blob folder) hashed
against its manifests, stored when the catalog lacks its bytes, and held to what its record says
of it (:func:`store_incoming_files`); a bag's large files read while its records are
(:class:`EarlyFiles`).  What to import and the writing are :mod:`evidence_catalog.operations.importing`'s.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import attrs

from evidence_catalog import model
from evidence_catalog.errors import EvidenceError, InputError, IntegrityError, StorageError
from evidence_catalog.hashing import ProgressCallback
from evidence_catalog.interchange import bagfiles
from evidence_catalog.interchange.bag import check_payload_file, compare_digests
from evidence_catalog.interchange.import_checks import check_artifact_bytes
from evidence_catalog.interchange.importing import Incoming, IncomingRecord, PayloadFile
from evidence_catalog.operations import common
from evidence_catalog.operations.adding_offload import worker_store
from evidence_catalog.operations.context import Context
from evidence_catalog.operations.ingesting_offload import Presealing
from evidence_catalog.paths import display_path
from evidence_catalog.store.blobstore import BlobStore, StoredBlob


@attrs.frozen
class _FileCheck:
    """A file an import reads: hashed against its bag's manifests (*expected*, empty for a
    JSON export's blob folder), and stored as the artifact *store* (a SHA-256) when the catalog
    lacks those bytes (or was stored early: *stored*)."""

    path: Path
    name: str
    expected: Mapping[str, str]
    store: str | None
    #: The file as :class:`EarlyFiles` stored it (checked against its manifests already).
    stored: _Read | None = None


def store_incoming_files(
    ctx: Context,
    incoming: Incoming,
    new: list[IncomingRecord],
    where: str,
    progress: ProgressCallback | None = None,
    *,
    early: EarlyFiles | None = None,
    moved: list[StoredBlob] | None = None,
) -> tuple[int, int, int, list[str]]:
    """Store the bytes of every new record's artifacts and check every file the import reads:
    each file of a bag against its manifests (stored or not), each file stored against its
    artifact's SHA-256, size, other digests, media type and embedded metadata (read from the
    stored copy).  Each file is read once (:func:`run_checks`) -- a bag's, when *early* read
    them while the records were read, there (:class:`EarlyFiles`), what the records say of
    them checked here; the stored files are synced to disk together at the end.  Return
    (stored, already held, bytes stored, SHA-256s of the blobs this call created); when a
    check fails, the blobs it was to store and no record holds are removed.  Each blob that
    replaced a damaged stored copy (moved aside) is added to *moved*."""
    found = {} if early is None else early.finish()  # raises the first file that failed
    created: list[str] = [] if early is None else list(early.created)
    missing: list[str] = []
    try:
        needed: dict[str, model.Artifact] = {}
        for item in new:
            for entry in item.record.artifacts:
                needed.setdefault(entry.artifact.sha256, entry.artifact)
        made = set(created) | (set() if early is None else early.unsettled)
        with ctx.db.read() as session:
            described = ctx.db.artifacts(session, list(needed))
        # Bytes no record describes are stored even when a copy is there (an import killed
        # before its records were written left it, or it was damaged since): storing them
        # checks that copy, and moves a damaged one aside.
        missing = [sha for sha in needed if sha in made or sha not in described or not ctx.blobs.exists(sha)]
        for sha in missing:
            if sha not in incoming.files:
                raise InputError(
                    f"artifact {sha} is neither in this catalog nor in the files given"
                    + ("" if incoming.format == "bagit" else " (give the exporting catalog as blobs)")
                    + "; nothing was imported",
                    where=where,
                )
        holders = {e.artifact.sha256: item.record.id for item in reversed(new) for e in item.record.artifacts}
        storing: dict[Path, str | None] = {incoming.files[sha]: sha for sha in missing}
        checks = []
        stored_early = {read.blob.sha256: read for read in found.values() if read.blob is not None}
        for payload in incoming.unchecked:
            store = storing.pop(payload.path, None)
            read = found.get(payload.path)
            if store is not None and read is not None and read.blob is None and store in stored_early:
                # Checked early against its manifests, and its bytes stored early from another
                # file of the bag (the same bytes twice, the other's read done before this one's
                # began): not read again.
                read = stored_early[store]
            if read is None or (store is not None and read.blob is None):  # not read early, or read but not stored
                checks.append(_FileCheck(payload.path, payload.name, payload.expected, store))
            elif store is not None:  # stored early: what its record says of it is left
                checks.append(_FileCheck(payload.path, payload.name, payload.expected, store, read))
        for path, store in storing.items():  # a blob folder's file: checked against the artifact alone
            checks.append(_FileCheck(path, display_path(path), {}, store))
        run_checks(ctx, checks, needed, holders, created, progress, moved)
        if moved is not None and early is not None:
            moved += early.moved
        unneeded = [sha for sha in created if sha not in needed]  # read early for a record not imported
        if unneeded:
            common.remove_unclaimed(ctx, unneeded)
            created = [sha for sha in created if sha in needed]
        if missing:
            ctx.blobs.sync()  # one flush of every file stored, before any record refers to them
    except BaseException:
        # With the blobs it was to store that are there now: one linked on this thread just
        # before an interruption (Ctrl-C) is not in *created* yet.  None was there when the
        # import looked, and none a record holds is removed.
        common.remove_unclaimed(ctx, list(dict.fromkeys([*created, *missing])))
        raise
    size_total = sum(needed[sha].size for sha in created)
    return len(created), len(needed) - len(created), size_total, created


def run_checks(
    ctx: Context,
    checks: Sequence[_FileCheck],
    needed: Mapping[str, model.Artifact],
    holders: Mapping[str, str],
    created: list[str],
    progress: ProgressCallback | None,
    moved: list[StoredBlob] | None = None,
) -> None:
    """Run *checks* in order (:func:`_run_all`: a small file's here, a large one's on a thread
    per CPU, a few at a time), adding the SHA-256 of each blob stored to *created* as it is
    made; the first check that fails (in order) is raised once those under way are done."""
    lock = threading.Lock()

    def report(n: int) -> None:
        assert progress is not None
        with lock:
            progress(n)

    counted = None if progress is None else report

    flusher = bagfiles.Flusher()  # large stored files go to the disk while the next are stored

    def run(check: _FileCheck) -> None:
        if check.store is None:
            check_payload_file(check.name, check.path, check.expected, progress=counted)
            return
        if check.stored is not None:  # stored and flushed early
            check_described(ctx, check, check.stored, needed[check.store], holders[check.store])
            return
        store_checked(ctx, check, needed[check.store], holders[check.store], created, counted, moved)
        stored = ctx.blobs.local_path(check.store)
        if stored is not None and needed[check.store].size >= bagfiles.LARGE_FILE:
            flusher.flush(os.fspath(stored))

    try:
        _run_all(
            checks,
            run,
            max(1, min(8, (os.cpu_count() or 1) * ctx.blobs.readers_per_cpu)),
            on_this_thread=lambda check: _interpreter_bound(ctx, check, needed),
        )
    except BaseException:
        with contextlib.suppress(OSError):
            flusher.close()
        raise
    try:
        flusher.close()
    except OSError as exc:  # the store's sync would find the same
        raise StorageError(
            f"the stored files could not be written to disk ({exc.strerror or exc}); nothing was imported",
            where=ctx.blobs.label,
        ) from exc


_Check = TypeVar("_Check")

#: A file smaller than this, read into a blob store on this machine, is checked on the thread
#: that runs the checks: its time is mostly the interpreter's (opening, hashing a few blocks,
#: naming and linking the stored copy), which threads only take turns at, handing the
#: interpreter's lock back and forth at every system call.  Measured here (the store phase of
#: an import, one thread / two): 10,000 files of 4-64 KiB 3.5 / 5.9 s, 1,500 of 64 KiB 0.7-0.9
#: / 1.1 s, of 128 KiB 0.9-1.0 / 1.1-1.2 s; 300 of 256 KiB 0.46-0.49 / 0.31-0.38 s.
THREADED_BYTES = 256 * 1024


def _interpreter_bound(ctx: Context, check: _FileCheck, needed: Mapping[str, model.Artifact]) -> bool:
    """Whether *check* is mostly the interpreter's work: a small file (or one read and stored
    already, whose description is left to check, unless that means hashing it again) going
    into a store bound by the CPU
    (``readers_per_cpu`` 1: a folder on this machine, not object storage, whose round trips
    threads do overlap)."""
    if ctx.blobs.readers_per_cpu != 1:
        return False
    if check.stored is not None and check.store is not None:
        # Read and stored early: hashed again only for a digest its manifests do not give.
        artifact = needed[check.store]
        return artifact.size < THREADED_BYTES or all(a in check.stored.found for a in artifact.digests.as_dict())
    size = needed[check.store].size if check.store is not None else _size(check.path)
    return size < THREADED_BYTES


def _run_all(
    checks: Sequence[_Check],
    run: Callable[[_Check], None],
    workers: int,
    on_this_thread: Callable[[_Check], bool] = lambda check: False,
) -> None:
    """``run`` each check, in order: those *on_this_thread* says so on the calling thread,
    the others on *workers* threads (a few at a time) meanwhile.  The first that fails (in
    order) is raised once those under way are done; once a failure is seen, no check is begun
    on this thread, and those after it in order that a thread has not begun are dropped."""
    if workers == 1 or len(checks) <= 1:
        for check in checks:
            run(check)
        return
    window = 4 * workers
    failures: list[tuple[int, BaseException]] = []

    def settle(index: int, future: Future[None]) -> None:
        error = future.exception()  # waits for it
        if error is not None:
            failures.append((index, error))

    pool: ThreadPoolExecutor | None = None
    pending: collections.deque[tuple[int, Future[None]]] = collections.deque()
    try:
        for index, check in enumerate(checks):
            if failures:
                break
            if on_this_thread(check):
                try:
                    run(check)
                except Exception as exc:  # noqa: BLE001 -- raised below, once those under way are done
                    failures.append((index, exc))  # (an interruption is raised at once: queued checks are dropped)
            else:
                if pool is None:
                    pool = ThreadPoolExecutor(max_workers=workers)
                pending.append((index, pool.submit(run, check)))
            while len(pending) >= window or (pending and pending[0][1].done()):
                settle(*pending.popleft())
        while pending:
            if failures:  # those after the first failure that no thread has begun are dropped
                first = min(failed for failed, _ in failures)
                for index, future in pending:
                    if index > first:
                        future.cancel()
            index, future = pending.popleft()
            if not future.cancelled():
                settle(index, future)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    if failures:
        raise min(failures, key=lambda failure: failure[0])[1]


class _Hashing:
    """A stream that hashes what is read from it with *algorithms* (those a stored file is
    checked with besides the SHA-256 the blob store makes)."""

    def __init__(self, stream: Any, algorithms: Sequence[str]) -> None:
        self.stream = stream
        self.hashers = [hashlib.new(a) for a in algorithms]
        self.algorithms = tuple(algorithms)

    def readinto(self, buffer: memoryview) -> int | None:
        n: int | None = self.stream.readinto(buffer)
        if n:
            block = buffer[:n]
            for hasher in self.hashers:
                hasher.update(block)
        return n

    def digests(self) -> dict[str, str]:
        return {a: h.hexdigest() for a, h in zip(self.algorithms, self.hashers, strict=True)}


@attrs.frozen
class _Read:
    """A bag's file read once: the blob it was stored as (``None`` when only hashed: the
    catalog has those bytes or describes them already) and every digest made of it."""

    blob: StoredBlob | None
    found: Mapping[str, str]


def store_checked(
    ctx: Context,
    check: _FileCheck,
    artifact: model.Artifact,
    holder: str,
    created: list[str],
    progress: ProgressCallback | None,
    moved: list[StoredBlob] | None = None,
) -> None:
    """Store the file of *check* (its sync left to the caller), hashing it on the way with
    every algorithm its manifests and its artifact name; refuse it when a digest is not the
    manifest's or the artifact's, or when the stored bytes are not what *artifact* says
    (:func:`check_artifact_bytes` on the stored copy)."""
    extra = sorted((set(check.expected) | set(artifact.digests.as_dict())) - {"sha256"})
    read = _store_file(ctx, check.path, check.name, check.expected, extra, created, progress, moved)
    check_described(ctx, check, read, artifact, holder)


def _store_file(
    ctx: Context,
    path: Path,
    name: str,
    expected: Mapping[str, str],
    algorithms: Sequence[str],
    created: list[str],
    progress: ProgressCallback | None,
    moved: list[StoredBlob] | None = None,
) -> _Read:
    """Store the file *path* (the bag's *name*; its sync left to the caller), hashing it on the
    way with *algorithms* besides SHA-256, adding the SHA-256 of a blob it creates to *created*
    (and the blob to *moved* when it replaced a damaged stored copy); refuse it when a digest
    is not the one its manifests give (*expected*)."""
    shown = display_path(path)
    try:
        with open(path, "rb", buffering=0) as stream:
            reader = _Hashing(stream, algorithms)
            blob = ctx.blobs.put_stream(common.SourceFile(reader, shown), progress=progress, defer_sync=True)
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror})", where=shown) from exc
    if blob.created:
        created.append(blob.sha256)
    if blob.quarantined is not None and moved is not None:
        moved.append(blob)
    found = {**reader.digests(), "sha256": blob.sha256}
    compare_digests(name, found, expected)  # a bag's file, as its manifests say
    return _Read(blob, found)


#: Small files a bag's import sends its worker to store at a time.
STORE_CHUNK = 64

#: A SHA-256 as the worker's journal notes it.
_SHA256 = re.compile("[0-9a-f]{64}")


def _stored_elsewhere(
    task: tuple[str, tuple[str, ...], bool, str, list[tuple[str, tuple[str, ...]]]],
) -> list[tuple[StoredBlob, dict[str, str]] | None]:
    """The worker's task: store each file of the chunk (its path, and the algorithms besides
    SHA-256 its manifests name) into the blob store in folder *root* (not synced: the import
    syncs the store before its transaction), hashing it on the way; its blob and digests, or
    ``None`` for the first file that fails and every one after it (the import stores those
    itself, and says why).  The import compares every digest with the manifests.  The SHA-256
    of each blob it creates is appended to the file *journal* at once, so that the import
    knows it (to count it, or remove it) even when this answer never comes."""
    root, algorithms, fsync, journal, files = task
    store = worker_store(root, algorithms, fsync)  # (a damaged stored copy is the import's to move aside)
    done: list[tuple[StoredBlob, dict[str, str]] | None] = []
    noted = os.open(journal, os.O_WRONLY | os.O_APPEND)
    try:
        for path, extra in files:
            try:
                with open(path, "rb", buffering=0) as stream:
                    reader = _Hashing(stream, extra)
                    blob = store.put_stream(reader, defer_sync=True)
                if blob.created:
                    os.write(noted, (blob.sha256 + "\n").encode("ascii"))  # one line, one write
            except Exception:  # noqa: BLE001 -- stored by the import, which says why
                break
            done.append((blob, {**reader.digests(), "sha256": blob.sha256}))
    finally:
        os.close(noted)
    return done + [None] * (len(files) - len(done))


def check_described(ctx: Context, check: _FileCheck, read: _Read, artifact: model.Artifact, holder: str) -> None:
    """Refuse the stored file of *check* (*read*) unless it is the artifact's bytes (SHA-256,
    size, every other digest the artifact names) and what *artifact* says of them
    (:func:`check_artifact_bytes` on the stored copy: a digest the file was not hashed with
    is made from it there)."""
    shown = display_path(check.path)
    blob = read.blob
    assert blob is not None
    if blob.sha256 != check.store or blob.size != artifact.size:
        raise IntegrityError(
            f"holds {blob.size} bytes with SHA-256 {blob.sha256}, not artifact {check.store}; nothing was imported",
            where=shown,
        )
    algorithms = artifact.digests.as_dict()
    measured = None
    if all(a in read.found for a in algorithms):
        measured = (model.Digests(**{a: read.found[a] for a in algorithms}), blob.size)
    stored = ctx.blobs.local_path(blob.sha256)
    check_artifact_bytes(
        check.path if stored is None else stored,
        artifact,
        hashed=True,
        where=f"record {holder}: {shown}",
        measured=measured,
    )


#: A bag's artifact files of at least this many bytes are read while its records are
#: (:class:`EarlyFiles`); smaller ones after them.  Reading a large file is long stretches of
#: hashing and copying without the interpreter's lock, beside the records' parsing; a small
#: file is mostly the interpreter's work (opening, naming, linking it), which would only
#: contend with the records' for the lock.
EARLY_READ_BYTES = bagfiles.LARGE_FILE


def _size(path: Path) -> int:
    """The size of *path*, 0 when it cannot be read (the check that reads it says why)."""
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


class EarlyFiles:
    """A bag's artifact files read while its records are being read and checked: each large
    one on a thread per CPU but one, in order, hashed against its manifests and, when this
    catalog neither holds those bytes nor describes them, stored (not yet synced); and, with a
    worker process (the import's, idle until the import writes), each small one it should
    store, stored and hashed there.  What the records say of each is checked once they are read
    (:func:`store_incoming_files`).  Reading the bytes while the documents are parsed overlaps
    the disk and the hashing with the interpreter; nothing is accepted earlier for it, and what
    it stored for an import that stops goes again (:meth:`abandon`)."""

    def __init__(self, ctx: Context, progress: ProgressCallback | None, worker: Presealing | None = None) -> None:
        self.ctx = ctx
        self.progress = progress
        #: SHA-256s of the blobs stored, as they are made.
        self.created: list[str] = []
        #: The blobs stored that replaced a damaged stored copy (moved aside).
        self.moved: list[StoredBlob] = []
        #: SHA-256s of the small files sent to the worker that it has not been found to have
        #: stored (not answered yet, failed, or not the bytes their manifests give): their files
        #: are stored and checked again by the import, as files not read early.
        self.unsettled: set[str] = set()
        #: Where the worker notes each blob it creates (see :func:`_stored_elsewhere`).
        self._journal: str | None = None
        self._jobs: list[tuple[PayloadFile, Future[_Read | None]]] = []
        self._pool: ThreadPoolExecutor | None = None
        self._stop = threading.Event()
        self._flusher: bagfiles.Flusher | None = None  # large stored files go to the disk while the rest are read
        self._worker = worker
        #: The chunks of small files sent to the worker, each with its task (``None``: not sent).
        self._sent: list[tuple[list[PayloadFile], Future[Any] | None]] = []
        self._told: BlobStore | None = None  # the store told to expect the worker's files

    def start(self, files: Sequence[PayloadFile]) -> None:
        """Start reading those of *files* (a bag's artifact files, in order) of at least
        :data:`EARLY_READ_BYTES`, and have the worker store the smaller ones to be stored."""
        sizes = [_size(f.path) for f in files]
        large = [f for f, size in zip(files, sizes, strict=True) if size >= EARLY_READ_BYTES]
        small = [f for f, size in zip(files, sizes, strict=True) if size < EARLY_READ_BYTES] if self._sends() else []
        if not large and not small:
            return
        manifest_sha = [f.expected.get("sha256") for f in (*large, *small)]
        with self.ctx.db.read() as session:
            described = self.ctx.db.artifacts(session, [sha for sha in manifest_sha if sha is not None])

        def to_store(sha: str | None) -> bool:
            return sha is not None and sha not in described and not self.ctx.blobs.exists(sha)

        if small:
            self._send_small(small, to_store)
        if not large:
            return
        # One CPU is the records' (the interpreter's lock): a reader per other CPU, at least one.
        workers = max(1, min(8, (os.cpu_count() or 1) * self.ctx.blobs.readers_per_cpu) - 1)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="import-read")
        self._flusher = bagfiles.Flusher()
        for file in large:
            self._jobs.append((file, self._pool.submit(self._read, file, to_store(file.expected.get("sha256")))))

    def _sends(self) -> bool:
        """Whether small files go to the worker: there is one, and the blob store is a folder
        whose next sync covers (and reports the failure of) what another process writes."""
        worker, store = self._worker, self.ctx.blobs
        return worker is not None and worker.pool is not None and not worker.broken and isinstance(store, BlobStore)

    def _send_small(self, small: Sequence[PayloadFile], to_store: Callable[[str | None], bool]) -> None:
        """Send the worker, in chunks of :data:`STORE_CHUNK`, the small files to store (each
        SHA-256 once: a second file of the same bytes is checked by the import)."""
        store = self.ctx.blobs
        assert isinstance(store, BlobStore)
        sending: list[PayloadFile] = []
        for file in small:
            sha = file.expected.get("sha256")
            if sha is not None and sha not in self.unsettled and to_store(sha):
                self.unsettled.add(sha)
                sending.append(file)
        if not sending or not store.expect_deferred():  # before the worker writes a byte of them
            self.unsettled.clear()
            return
        self._told = store
        handle, self._journal = tempfile.mkstemp(prefix="evidence-catalog-import-", suffix=".stored")
        os.close(handle)
        assert self._worker is not None
        for start in range(0, len(sending), STORE_CHUNK):
            chunk = sending[start : start + STORE_CHUNK]
            files = [(os.fspath(f.path), tuple(sorted(set(f.expected) - {"sha256"}))) for f in chunk]
            task = (os.fspath(store.root), store.algorithms, store.fsync, self._journal, files)
            self._sent.append((chunk, self._worker.submit(_stored_elsewhere, task)))

    def _settle(self, done: dict[Path, _Read]) -> None:
        """Take the worker's answers, in order: each file it stored that has the digests its
        manifests give is *done*; the rest stay :attr:`unsettled`.  Every blob the worker
        created is :attr:`created` (from its journal: also those of an answer that never came,
        the worker stopped first when one did not)."""
        sent, self._sent = self._sent, []
        heard = True
        for chunk, future in sent:
            assert self._worker is not None
            answer = self._worker.answer_to(future)
            if not isinstance(answer, list) or len(answer) != len(chunk):
                answer = [None] * len(chunk)
                heard = heard and future is not None and future.cancelled()
            for file, stored in zip(chunk, answer, strict=True):
                if stored is None:
                    continue
                blob, found = stored
                try:
                    compare_digests(file.name, found, file.expected)
                except EvidenceError:
                    continue  # stored and checked again by the import, which says so in its turn
                if self.progress is not None:
                    self.progress(blob.size)
                self.unsettled.discard(blob.sha256)
                done[file.path] = _Read(blob, found)
        if self._worker is not None and not heard:
            self._worker.close()  # (what it was doing, done or killed: nothing more is written)
        if self._journal is not None:
            noted: list[str] = []
            with contextlib.suppress(OSError), open(self._journal, "rb") as journal:
                noted = journal.read().decode("ascii", "replace").split()
            with contextlib.suppress(OSError):
                os.unlink(self._journal)
            self._journal = None
            made = set(self.created)
            self.created += [sha for sha in dict.fromkeys(noted) if _SHA256.fullmatch(sha) and sha not in made]
        if self._told is not None:
            self._told.expect_no_more()
            self._told = None

    def _read(self, file: PayloadFile, store: bool) -> _Read | None:
        if self._stop.is_set():
            return None
        if not store:
            check_payload_file(file.name, file.path, file.expected, progress=self.progress)
            return _Read(None, {})
        read = _store_file(
            self.ctx,
            file.path,
            file.name,
            file.expected,
            sorted(set(file.expected) - {"sha256"}),
            self.created,
            self.progress,
            self.moved,
        )
        assert read.blob is not None
        stored = self.ctx.blobs.local_path(read.blob.sha256)
        if stored is not None and self._flusher is not None and read.blob.size >= bagfiles.LARGE_FILE:
            self._flusher.flush(os.fspath(stored))
        return read

    def finish(self) -> dict[Path, _Read]:
        """Every file read, by path, once all are; the first that failed (in order) is raised
        (a small file the worker did not store as its manifests say is left to the import)."""
        failed: BaseException | None = None
        done: dict[Path, _Read] = {}
        self._settle(done)
        for file, job in self._jobs:
            error = job.exception()  # waits for it
            if error is not None:
                failed = failed or error
                continue
            read = job.result()
            if read is not None:
                done[file.path] = read
        self._close()
        try:
            if self._flusher is not None:
                self._flusher.close()
        except OSError as exc:  # the store's sync would find the same
            failed = failed or StorageError(
                f"the stored files could not be written to disk ({exc.strerror or exc}); nothing was imported",
                where=self.ctx.blobs.label,
            )
        if failed is not None:
            raise failed
        return done

    def _close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def abandon(self) -> None:
        """Stop reading (those under way finish; the worker's chunks not begun are dropped) and
        remove the blobs stored, unless a record holds them (also any the worker stored and did
        not say)."""
        self._stop.set()
        if self._worker is not None and any(f is not None and not f.done() for _, f in self._sent):
            # Its chunks not begun are dropped, the one under way ends (or the worker is
            # killed): then its journal says every blob it made.  (Not each future cancelled
            # here: the pool would fail to mark a cancelled one when its worker is killed.)
            self._worker.close()
        with contextlib.suppress(Exception):
            self._settle({})
        self._close()
        if self._flusher is not None:
            with contextlib.suppress(OSError):
                self._flusher.close()
        common.remove_unclaimed(self.ctx, self.created)
