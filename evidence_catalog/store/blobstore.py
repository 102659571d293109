"""Content-addressed, write-once blob store on a local file system.

Layout: ``<root>/sha256/ab/cd/abcd…`` (the first two pairs of hex digits fan the files out).
Bytes are written to ``<root>/tmp/`` while they are hashed, flushed with ``fsync``, and then
*linked* under their content address: a hard link fails if the name exists, so a stored blob is
never overwritten, even by a concurrent writer.  A second copy of the same bytes stores nothing.
A process killed mid-write leaves only a ``*.part`` file in ``tmp/``, never a blob under a name
it does not match.

A batch of many small files is not flushed file by file: each is written and linked with
``defer_sync``, and :meth:`BlobStore.sync` then makes all of them durable at once (one
``syncfs(2)`` of the store's file system, which reports a failed write-back) before anything
refers to them.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import os
import shutil
import stat
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

from attrs import frozen

from evidence_catalog.errors import StorageError
from evidence_catalog.hashing import (
    BLOCK_SIZE,
    ProgressCallback,
    Readable,
    hash_file,
    hash_stream,
    normalise_algorithms,
)
from evidence_catalog.model import Digests

if TYPE_CHECKING:
    from evidence_catalog.findings import Finding


@frozen
class StoreEntry:
    """A stored object outside the index, as housekeeping (``fsck``) lists it: where it is
    (a path in the catalog folder, or an object-store URL), its size, its age, and for a blob
    its SHA-256 (its name)."""

    path: str
    size: int
    age_seconds: float
    sha256: str | None = None


@frozen
class StoredBlob:
    """The outcome of putting bytes into the store."""

    digests: Digests
    size: int
    #: False when identical bytes were already stored (nothing new was written).
    created: bool
    #: Where a damaged stored copy was moved (relative to the store) when these bytes replaced it.
    quarantined: str | None = None

    @property
    def sha256(self) -> str:
        """The blob's address."""
        return self.digests.sha256


#: A stored blob's mode: readable, never writable.
_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


def place_new_file(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Give the complete file *source* the name *target*, which must not exist yet.

    A hard link does it atomically and fails if *target* exists.  File systems without hard
    links (FAT and exFAT memory sticks, some network shares) get the same guarantee by claiming
    the name first with an exclusive create, then renaming over that claim.  *source* keeps its
    name in the first case; the caller removes it either way.
    """
    try:
        os.link(source, target)
        return
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS):
            raise
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        os.replace(source, target)
    except OSError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)  # never leave the empty claim behind
        raise


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load_syncfs() -> Callable[[int], int] | None:
    """``syncfs(2)`` from the C library, when there is one (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return cast(Callable[[int], int], function)


_syncfs = _load_syncfs()


def fsync_dir(path: Path) -> None:
    """Make a directory's entries durable (after creating, linking or renaming in it)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobStore:
    """Write-once storage of bytes under their SHA-256."""

    def __init__(
        self, root: Path, algorithms: Sequence[str] = ("sha256",), *, fsync: bool = True, label: str | None = None
    ):
        self.root = Path(root)
        self.algorithms = tuple(algorithms)
        self.fsync = fsync
        self.tmp_dir = self.root / "tmp"
        #: How paths in this store are shown (``blobs`` in a catalog folder).
        self.label = label if label is not None else str(self.root)
        # Paths as text on the way of every file stored (pathlib costs more than the system calls)
        self._blobs = f"{os.fspath(self.root)}/sha256"
        self._tmp = os.fspath(self.tmp_dir)
        self._lock_file = f"{os.fspath(self.root)}/.lock"
        #: Folders this object made or found (``tmp`` and the fan-out): not looked for again.
        self._folders: set[Path] = set()
        self._fan_out: set[str] = set()
        #: What was stored with ``defer_sync`` since the last :meth:`sync` (under ``_lock``).
        self._lock = threading.Lock()
        self._deferred = _Deferred()
        #: Whether another process may be storing into this store unsynced (see expect_deferred).
        self._others = False
        #: Whether a damaged stored copy is moved aside here (else: StorageError, see put_stream).
        self.quarantines = True
        #: Damaged copies moved aside by this object, not yet said by the custody log
        #: (:class:`~evidence_catalog.store.blobs.BlobStorage`).
        self.moved: list[tuple[str, str]] = []

    @property
    def location(self) -> str:
        """Where the store is, for messages."""
        return str(self.root)

    @contextmanager
    def local_copy(self, sha256: str) -> Iterator[Path]:
        """A path on this machine holding the blob's bytes (here: the stored file itself, which
        must only be read)."""
        yield self.path_for(sha256)

    def remove(self, sha256: str) -> None:
        """Remove a blob that no record claims (an import that failed after storing it)."""
        self.path_for(sha256).unlink(missing_ok=True)

    # -- housekeeping listings (fsck) -----------------------------------------------------

    def _entry(self, path: Path, now: float, *, sha256: str | None = None) -> StoreEntry:
        try:
            info = path.lstat()
            size = (
                info.st_size if not path.is_dir() else sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir())
            )
            age = max(0.0, now - info.st_mtime)
        except OSError:
            size, age = 0, 0.0
        return StoreEntry(
            path=f"{self.label}/{path.relative_to(self.root).as_posix()}", size=size, age_seconds=age, sha256=sha256
        )

    def stored(self, now: float) -> Iterator[StoreEntry]:
        """Every blob in the store, in address order."""
        blob_root = self.root / "sha256"
        if blob_root.is_dir():
            for path in sorted(blob_root.glob("*/*/*")):
                if path.is_file() and not path.is_symlink():
                    yield self._entry(path, now, sha256=path.name)

    def temporary(self, now: float) -> Iterator[StoreEntry]:
        """Unfinished writes (``tmp/*.part`` a killed process left)."""
        if self.tmp_dir.is_dir():
            for path in sorted(self.tmp_dir.iterdir()):
                yield self._entry(path, now)

    def quarantined(self, now: float) -> Iterator[StoreEntry]:
        """Damaged copies moved aside (kept: they are evidence of the damage)."""
        quarantine = self.root / "quarantine"
        if quarantine.is_dir():
            for path in sorted(quarantine.iterdir()):
                yield self._entry(path, now)

    def delete(self, entry: StoreEntry) -> None:
        """Delete a blob or temporary file :meth:`stored` or :meth:`temporary` listed."""
        relative = entry.path.removeprefix(f"{self.label}/")
        target = self.root / relative
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()

    #: Hashing is bound by the CPU on a local disk: one reader per CPU.
    readers_per_cpu = 1

    def local_path(self, sha256: str) -> Path | None:
        """The stored file (see :meth:`path_for`)."""
        return self.path_for(sha256)

    def path_for(self, sha256: str) -> Path:
        """Where the blob with this SHA-256 lives (whether or not it exists)."""
        return Path(f"{self._blobs}/{sha256[:2]}/{sha256[2:4]}/{sha256}")

    def exists(self, sha256: str) -> bool:
        """Tell whether the blob is stored."""
        return os.path.isfile(f"{self._blobs}/{sha256[:2]}/{sha256[2:4]}/{sha256}")

    def open(self, sha256: str) -> BinaryIO:
        """Open a stored blob for reading."""
        return open(self.path_for(sha256), "rb")

    def sync(self) -> None:
        """Make everything written with ``defer_sync`` durable: one ``syncfs`` of the store's
        file system for a whole batch, instead of an ``fsync`` of each file and folder.

        ``syncfs`` is called on a descriptor opened before the first of those files was
        written, so that it reports a write-back that failed since then (Linux 5.8 and later):
        that is a :class:`StorageError`, and nothing may then refer to them.  Where there is no
        ``syncfs``, each file and each folder it was linked or made in is synced on its own."""
        with self._lock:
            done, self._deferred = self._deferred, _Deferred()
            try:
                if (done.stored or self._others) and _syncfs is not None:
                    # Files of the next batch may be being written now (here, or by another
                    # process told to): its watch starts before this one's sync, so that a
                    # failure is reported by this sync or the next.
                    self._deferred.watch(self.root)
                if done.fd is None and _syncfs is not None:
                    done.watch(self.root)  # nothing deferred: still a barrier for the caller
            except OSError as exc:
                done.close()
                raise StorageError(_describe_os_error(exc), where=str(self.root)) from exc
        try:
            if done.fd is not None and _syncfs is not None:
                if _syncfs(done.fd) != 0:
                    error = ctypes.get_errno()
                    self._forget_folders()  # those made since the last sync may not be on disk
                    raise StorageError(
                        f"the stored files could not be written to disk ({os.strerror(error)}); nothing refers to them",
                        where=str(self.root),
                    )
            else:
                for path in done.files:
                    _fsync_file(path)
                for folder in sorted(done.folders, key=lambda p: len(p.parts), reverse=True):
                    fsync_dir(folder)
        except OSError as exc:
            self._forget_folders()
            raise StorageError(_describe_os_error(exc), where=str(self.root)) from exc
        finally:
            done.close()

    def expect_deferred(self) -> bool:
        """Say that files are about to be stored with ``defer_sync`` into this store by another
        process (an add's worker): the next :meth:`sync` makes them durable with the rest, and
        reports a write-back of theirs that fails from now on.  ``False`` where that cannot be
        done from here (no ``syncfs``: each file would have to be synced by its path, which
        only the process that stored it knows); the caller then stores them itself."""
        if not self.fsync:
            return True
        if _syncfs is None:
            return False
        try:
            with self._lock:
                self._deferred.watch(self.root)  # before the first byte the next sync covers
                self._deferred.stored = True
                self._others = True  # each sync watches for the next until told otherwise
        except OSError as exc:
            raise StorageError(_describe_os_error(exc), where=str(self.root)) from exc
        return True

    def expect_no_more(self) -> None:
        """The other process told of with :meth:`expect_deferred` stores nothing more."""
        with self._lock:
            self._others = False

    def put_stream(
        self, stream: Readable, *, progress: ProgressCallback | None = None, defer_sync: bool = False
    ) -> StoredBlob:
        """Copy *stream* into the store, hashing it on the way; deduplicate by SHA-256.

        With *defer_sync* the file is not flushed to disk here: the caller calls :meth:`sync`
        before anything refers to it (a batch of many small files)."""
        tmp_path = f"{self._tmp}/{os.urandom(16).hex()}.part"
        durable = self.fsync and not defer_sync
        try:
            self._make_dirs(self.tmp_dir, durable=durable)
            if self.fsync and defer_sync:
                with self._lock:
                    self._deferred.stored = True
                    if _syncfs is not None:
                        self._deferred.watch(self.root)  # before the first byte the next sync covers
            try:
                fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileNotFoundError:  # removed since this object saw it: made again
                self._forget_folders()
                self._make_dirs(self.tmp_dir, durable=durable)
                fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            # Deferred or not, a large file is written back while it is hashed: the sync that
            # makes it durable then finds little left to do.
            writer = _BlobWriter(fd, durable=durable, write_back=self.fsync)
            try:
                digests, size = hash_stream(stream, self.algorithms, on_block=writer.write, progress=progress)
                writer.finish()
                if os.fstat(fd).st_size != size:  # defence in depth: never link a short file
                    raise OSError(errno.EIO, f"wrote {os.fstat(fd).st_size} bytes of {size}")
                os.fchmod(fd, _READ_ONLY)
            finally:
                writer.join()
                os.close(fd)
            stored = self._place(tmp_path, digests, size, durable=durable, read_only=True)
        except OSError as exc:
            raise StorageError(_describe_os_error(exc), where=str(self.root)) from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_path)
        if self.fsync and defer_sync and _syncfs is None:
            final = self.path_for(digests.sha256)
            with self._lock:  # (stored before, perhaps by a batch whose sync failed: synced again)
                self._deferred.files.append(final)
                self._deferred.folders.add(final.parent)
        return stored

    def adopt_file(self, path: Path, *, progress: ProgressCallback | None = None) -> StoredBlob:
        """Store a finished file by hashing it and moving it into place, without copying it.

        For files this process made in a private directory on the store's file system (a
        capture's downloads) that nothing writes any more: the bytes hashed are the bytes
        placed.  The file is consumed (linked into the store, or left to be removed with its
        directory).  Across file systems it is copied like :meth:`put_stream`.
        """
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                # Write-back of the (just downloaded, still dirty) file runs on a second thread
                # while it is hashed: the final fsync then finds little left to do.
                writer = _BlobWriter(fd, durable=self.fsync)
                if self.fsync:
                    writer.start_flush()
                try:
                    with open(fd, "rb", buffering=0, closefd=False) as stream:
                        digests, size = hash_stream(stream, self.algorithms, progress=progress)
                    writer.finish()
                finally:
                    writer.join()
                if os.fstat(fd).st_size != size:  # defence in depth: never link a changing file
                    raise OSError(errno.EIO, "the file changed while it was hashed")
            finally:
                os.close(fd)
            if os.stat(path).st_dev != os.stat(self.root).st_dev:
                with open(path, "rb", buffering=0) as stream:
                    return self.put_stream(stream)
            return self._place(path, digests, size)
        except OSError as exc:
            raise StorageError(_describe_os_error(exc), where=str(self.root)) from exc

    def adopt_hashed_file(self, path: Path, digests: Digests, size: int) -> StoredBlob:
        """Store a finished file by moving it into place, with the digests its writer computed
        from the bytes as it wrote them: neither copied nor read again.

        For files this process wrote in a private directory on the store's file system and
        hashed on the way, that nothing writes any more and that the caller has checked are
        still as they were when finished (a capture's downloads:
        :class:`evidence_catalog.capture.written.WrittenFile`).  The store checks the size,
        makes the file durable and links it.  Digests of other algorithms than the store's are
        not used (the file is hashed by :meth:`adopt_file`); across file systems the file is
        copied like :meth:`put_stream`, hashed again, and refused if it no longer matches.
        """
        if set(digests.as_dict()) != set(normalise_algorithms(self.algorithms)):
            return self.adopt_file(path)
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                found = os.fstat(fd).st_size
                if found != size:  # never link a file that is not what was hashed
                    raise OSError(errno.EIO, f"the file holds {found} bytes, {size} were hashed")
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            if os.stat(path).st_dev != os.stat(self.root).st_dev:
                with open(path, "rb", buffering=0) as stream:
                    stored = self.put_stream(stream)
                if stored.digests != digests or stored.size != size:
                    raise OSError(errno.EIO, "the file changed after it was hashed")
                return stored
            return self._place(path, digests, size)
        except OSError as exc:
            raise StorageError(_describe_os_error(exc), where=str(self.root)) from exc

    def _place(
        self, path: str | Path, digests: Digests, size: int, *, durable: bool | None = None, read_only: bool = False
    ) -> StoredBlob:
        """Put the finished file *path* in place under its SHA-256.  Checking a stored copy,
        moving a damaged one aside and linking the new one is one step for every process that
        writes to this store."""
        with self._placing():
            quarantined, kept = self._quarantine_if_damaged(digests.sha256, size)
            created = self._link_into_place(path, digests.sha256, durable=durable, read_only=read_only, absent=not kept)
        return StoredBlob(digests=digests, size=size, created=created, quarantined=quarantined)

    def _quarantine_if_damaged(self, sha256: str, size: int) -> tuple[str | None, bool]:
        """Check a stored copy before trusting it as a duplicate.  A copy that no longer has its
        address's bytes is moved aside (never deleted: it is itself evidence of what happened)
        so that the good bytes in hand can take its place.  Returns where it was moved (relative
        to the store), and whether a good copy is stored (while the caller holds
        :meth:`_placing`, no other writer places one)."""
        try:
            found, found_size = hash_file(f"{self._blobs}/{sha256[:2]}/{sha256[2:4]}/{sha256}")
            if found.sha256 == sha256 and found_size == size:
                return None, True
        except FileNotFoundError:
            return None, False
        except OSError:
            pass  # unreadable (bad sectors, a directory in its place): damaged as well
        if not self.quarantines:  # (an add's worker: the adding process moves it, and says so)
            raise StorageError(f"the stored copy of {sha256} is damaged; nothing was stored", where=str(self.root))
        final = self.path_for(sha256)
        quarantine = self.root / "quarantine"
        self._make_dirs(quarantine)
        moved = quarantine / f"{sha256}.{uuid.uuid4().hex}"
        os.rename(final, moved)
        kept_as = os.fspath(moved.relative_to(self.root))
        self.moved.append((sha256, kept_as))  # to be logged, whatever happens next
        if self.fsync:
            fsync_dir(quarantine)
            fsync_dir(final.parent)
        return kept_as, False

    @contextmanager
    def _placing(self) -> Iterator[None]:
        """An exclusive lock across processes (``flock`` on ``<root>/.lock``)."""
        fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _link_into_place(
        self,
        tmp_path: str | Path,
        sha256: str,
        *,
        durable: bool | None = None,
        read_only: bool = False,
        absent: bool = False,
    ) -> bool:
        """Give *tmp_path* (already *read_only*, or made so here) its content address; False
        when the address was taken.  *absent*: the caller, placing, just found no file there."""
        durable = self.fsync if durable is None else durable
        fan_out = f"{sha256[:2]}/{sha256[2:4]}"
        folder = f"{self._blobs}/{fan_out}"
        final = f"{folder}/{sha256}"
        if not absent and os.path.exists(final):
            # Touched, so that fsck (which removes only old orphans) leaves it alone while the
            # record that claims it is being committed.
            with contextlib.suppress(OSError):
                os.utime(final)
            if durable:
                # Placed, perhaps, by a batch that has not yet synced it: the record about to
                # claim it must not outlive it in a power cut (a clean file syncs at once).
                _fsync_file(Path(final))
                self._fsync_folders(Path(folder))
            return False
        if fan_out not in self._fan_out:
            self._make_fan_out(folder, durable=durable)
            self._fan_out.add(fan_out)
        if not read_only:
            os.chmod(tmp_path, _READ_ONLY)
        try:
            place_new_file(tmp_path, final)
        except FileExistsError:
            return False  # a concurrent writer stored the same bytes first
        except FileNotFoundError:
            # A folder this object saw was removed since (by hand): made again.
            self._forget_folders()
            self._make_dirs(Path(folder), durable=durable)
            try:
                place_new_file(tmp_path, final)
            except FileExistsError:
                return False
        if durable:
            self._fsync_folders(Path(folder))
        return True

    def _make_fan_out(self, folder: str, *, durable: bool) -> None:
        """Make a blob's folder (``sha256/ab/cd``) as :meth:`_make_dirs` does, trying to make it
        first rather than looking for it and its parents (most of a large add's blobs each need
        a new one, whose parents are there)."""
        try:
            os.mkdir(folder)
        except FileExistsError:
            return
        except FileNotFoundError:  # its parent is missing as well
            self._make_dirs(Path(folder), durable=durable)
            return
        parent = os.path.dirname(folder)
        if durable:
            fsync_dir(Path(parent))
        elif self.fsync and _syncfs is None:
            with self._lock:
                self._deferred.folders.add(Path(parent))

    def _forget_folders(self) -> None:
        """Look for the folders again (some may have been removed, or not be on disk)."""
        self._folders.clear()
        self._fan_out.clear()

    def _fsync_folders(self, folder: Path) -> None:
        """Make the blob's folder durable -- and, when a batch stored without syncing may have
        made its folders and has not synced yet, everything that batch wrote as well."""
        with self._lock:
            pending = self._deferred.stored
        if pending:
            self.sync()
        fsync_dir(folder)  # (after a syncfs, nothing left to write)

    def _make_dirs(self, directory: Path, *, durable: bool | None = None) -> None:
        """Create *directory* and missing parents, each made durable in its parent."""
        durable = self.fsync if durable is None else durable
        if directory in self._folders:
            return
        wanted = directory
        missing = []
        while not directory.is_dir():
            missing.append(directory)
            directory = directory.parent
        for path in reversed(missing):
            try:
                path.mkdir()
            except FileExistsError:
                continue
            if durable:
                fsync_dir(path.parent)
            elif self.fsync and _syncfs is None:
                with self._lock:
                    self._deferred.folders.add(path.parent)
        self._folders.add(wanted)

    def verify(
        self, sha256: str, expected: Digests, size: int, *, progress: ProgressCallback | None = None
    ) -> list[Finding]:
        """Re-hash a stored blob; return what does not match the recorded digests and size."""
        path = self.path_for(sha256)
        wanted = expected.as_dict()
        try:
            with open(path, "rb", buffering=0) as stream:
                if size < BLOCK_SIZE:  # most files of a catalog: read in one go, no digests object
                    data = _read_small(stream, size)
                    if data is not None:
                        if progress is not None and data:
                            progress(len(data))
                        if len(data) == size and all(
                            hashlib.new(name, data).hexdigest() == value for name, value in wanted.items()
                        ):
                            return []
                        found = Digests(**{name: hashlib.new(name, data).hexdigest() for name in wanted})
                        return compare_blob(sha256, expected, size, found, len(data))
                    stream.seek(0)  # larger than recorded: hashed whole below, to say how
                else:  # a whole-file pass: the kernel reads further ahead
                    with contextlib.suppress(AttributeError, OSError):
                        os.posix_fadvise(stream.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
                found, found_size = hash_stream(stream, tuple(wanted), progress=progress)
        except FileNotFoundError:
            from evidence_catalog.findings import BlobMissing

            return [BlobMissing(sha256=sha256)]
        except OSError as exc:
            from evidence_catalog.findings import BlobUnreadable

            return [BlobUnreadable(sha256=sha256, reason=exc.strerror or str(exc))]
        return compare_blob(sha256, expected, size, found, found_size)


def _read_small(stream: BinaryIO, size: int) -> bytes | None:
    """The bytes of a file recorded as *size* bytes (less than a block), or ``None`` when it
    holds more than that (then it is hashed block by block, whatever its size)."""
    parts: list[bytes] = []
    remaining = size + 1  # one more than recorded: a file that grew is seen
    while remaining > 0:
        part = stream.read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    data = b"".join(parts)
    return None if len(data) > size else data


def compare_blob(sha256: str, expected: Digests, size: int, found: Digests, found_size: int) -> list[Finding]:
    """What a re-hashed blob's size and digests say against the recorded ones (both stores)."""
    from evidence_catalog.findings import DigestMismatch, SizeMismatch  # verification only

    findings: list[Finding] = []
    if found_size != size:
        findings.append(SizeMismatch(sha256=sha256, expected=size, found=found_size))
    actual = found.as_dict()
    for algorithm, value in expected.as_dict().items():
        if actual[algorithm] != value:
            findings.append(DigestMismatch(sha256=sha256, algorithm=algorithm, expected=value, found=actual[algorithm]))
    return findings


class _BlobWriter:
    """Writes every byte of each block (short writes happen on full disks and some file
    systems), and starts writing back to disk while hashing goes on, so that the final
    ``fsync`` does not wait for the whole file at once."""

    FLUSH_EVERY = 64 * 1024 * 1024

    def __init__(self, fd: int, *, durable: bool, write_back: bool | None = None) -> None:
        self.fd = fd
        self.durable = durable
        #: Start writing back to disk every FLUSH_EVERY bytes (by default when *durable*).
        self.write_back = durable if write_back is None else write_back
        self.unflushed = 0
        self.flusher: threading.Thread | None = None
        self.flush_error: OSError | None = None

    def write(self, block: memoryview) -> None:
        view = block
        while view:
            written = os.write(self.fd, view)
            if written <= 0:
                raise OSError(errno.ENOSPC, "no bytes written")
            view = view[written:]
        if self.write_back:
            self.unflushed += len(block)
            if self.unflushed >= self.FLUSH_EVERY and (self.flusher is None or not self.flusher.is_alive()):
                self.unflushed = 0
                self.start_flush()

    def start_flush(self) -> None:
        """Start writing the file's dirty pages back to disk now, on a second thread."""
        if self.flusher is None or not self.flusher.is_alive():
            self.flusher = threading.Thread(target=self._flush, daemon=True)
            self.flusher.start()

    def _flush(self) -> None:
        try:
            os.fdatasync(self.fd)
        except OSError as exc:
            self.flush_error = exc

    def join(self) -> None:
        """Wait for a background write-back (before the file is closed, whatever happened)."""
        if self.flusher is not None:
            self.flusher.join()

    def finish(self) -> None:
        """Wait for write-back; make the file durable (``fsync``) when asked to."""
        if self.flusher is not None:
            self.flusher.join()
        if self.flush_error is not None:
            raise self.flush_error
        if self.durable:
            os.fsync(self.fd)


class _Deferred:
    """What was stored without syncing since the last :meth:`BlobStore.sync`: whether
    anything was, a descriptor of the store opened before the first of it was written
    (``syncfs`` on it reports a write-back that failed since), or, where there is no
    ``syncfs``, the files and folders to sync one by one."""

    def __init__(self) -> None:
        self.stored = False
        self.fd: int | None = None
        self.files: list[Path] = []
        self.folders: set[Path] = set()

    def __del__(self) -> None:
        self.close()

    def watch(self, root: Path) -> None:
        """Open the store's descriptor, unless it is open."""
        if self.fd is None:
            self.fd = os.open(root, os.O_RDONLY)

    def close(self) -> None:
        """Close the descriptor (idempotent)."""
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)


def _describe_os_error(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device; nothing was stored"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write to the blob store ({exc.strerror}); nothing was stored"
    return f"storing failed ({exc.strerror or exc}); nothing was stored"
