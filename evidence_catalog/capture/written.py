"""Files hashed while they are written, so that a capture's downloads need not be read again.

yt-dlp's downloaders open their output through ``FileDownloader.sanitize_open``; :class:`Writes`
wraps that method of each downloader a capture uses.  A file opened for writing from its start
(``"wb"``) is hashed block by block, in the order the blocks are written, on a second thread
(``hashlib`` releases the GIL, so the digests are computed on another CPU while the download
goes on), and the written data is pushed towards the disk as it goes (``fdatasync`` on a third
thread every :data:`WRITE_BACK_EVERY` bytes), so that making the stored file durable later
waits for little.

What this vouches for, and when it gives up (the file is then hashed by reading it, as before):

* Only a file written from empty, through the one handle, from start to end, then closed
  normally.  Any other opening of it for writing (a resumed ``"ab"``, a second ``"wb"``), any
  call that could move or cut the handle's position (``seek``, ``truncate``), a failed write
  or close: no digests.
* What the file looked like when it was closed (and renamed by the downloader) is kept: its
  device and inode, size, link count and modification and change times
  (:class:`WrittenFile`).  The digests are used only while the file still looks exactly so
  (:meth:`WrittenFile.unchanged`), which a later write, truncation, ``utime``, ``chmod``,
  rename or replacement would change.  As for a file hashed by reading it, nothing may write
  to the file once it is finished (the capture's work area is private and locked).
* A write-back that failed (``fdatasync`` reporting an I/O error) fails the capture: the
  error would not be reported again by a later ``fsync``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import stat
import threading
from collections.abc import Callable
from typing import Any

from attrs import frozen

from evidence_catalog.hashing import MultiHasher
from evidence_catalog.model import Digests

#: Start writing a file being downloaded back to disk after this many new bytes.
WRITE_BACK_EVERY = 64 * 1024 * 1024

#: Blocks written but not hashed yet, at most (each at most yt-dlp's 4 MiB read size; the
#: download waits when the hashing thread falls this far behind).
QUEUED_BLOCKS = 8

_END = object()


@frozen
class WrittenFile:
    """A finished file, the digests of the bytes written to it, and what it looked like then."""

    digests: Digests
    size: int
    device: int
    inode: int
    mtime_ns: int
    ctime_ns: int

    def unchanged(self, path: str | os.PathLike[str]) -> bool:
        """Tell whether *path* is still this file, as it was when it was finished: the same
        regular file (device, inode, one link), the same size and the same modification and
        change times (any write, truncation, ``utime``, ``chmod`` or rename since changes them)."""
        try:
            found = os.lstat(path)
        except OSError:
            return False
        return (
            stat.S_ISREG(found.st_mode)
            and found.st_nlink == 1
            and (found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns)
            == (self.device, self.inode, self.size, self.mtime_ns, self.ctime_ns)
        )


class _Hashing:
    """The digests of one file being written, computed on a thread of their own."""

    def __init__(self, fd: int, algorithms: tuple[str, ...], *, write_back: bool) -> None:
        # A descriptor of our own: yt-dlp closes its handle while write-back may still run.
        self.fd = os.dup(fd)
        self.hasher = MultiHasher(algorithms)
        self.write_back = write_back
        self.blocks: queue.Queue[object] = queue.Queue(maxsize=QUEUED_BLOCKS)
        self.error: OSError | None = None
        self.flusher: threading.Thread | None = None
        self.unflushed = 0
        self.thread = threading.Thread(target=self._run, name="capture-hash", daemon=True)
        self.thread.start()

    def put(self, block: bytes) -> None:
        self.blocks.put(block)

    def _run(self) -> None:
        while (block := self.blocks.get()) is not _END:
            assert isinstance(block, bytes)
            self.hasher.update(block)
            self.unflushed += len(block)
            if self.write_back and self.unflushed >= WRITE_BACK_EVERY:
                self.unflushed = 0
                self._start_flush()

    def _start_flush(self) -> None:
        if self.flusher is not None and self.flusher.is_alive():
            return
        self.flusher = threading.Thread(target=self._flush, name="capture-write-back", daemon=True)
        self.flusher.start()

    def _flush(self) -> None:
        try:
            os.fdatasync(self.fd)
        except OSError as exc:
            self.error = exc

    def finish(self) -> Digests:
        """Wait for the hashing and any write-back; release the descriptor; the digests."""
        self.blocks.put(_END)
        self.thread.join()
        if self.flusher is not None:
            self.flusher.join()
        with contextlib.suppress(OSError):
            os.close(self.fd)
        return self.hasher.digests()


class _HashingStream:
    """yt-dlp's output stream for one file, with every block written also hashed."""

    def __init__(self, stream: Any, writes: Writes, identity: tuple[int, int], path: str) -> None:
        self._stream = stream
        self._writes = writes
        self._identity = identity
        self.path = path
        self._hashing: _Hashing | None = _Hashing(stream.fileno(), writes.algorithms, write_back=writes.write_back)
        self._size = 0
        writes.streams.append(self)

    def write(self, data: Any) -> Any:
        if self._hashing is None:
            return self._stream.write(data)
        block = data if isinstance(data, bytes) else bytes(data)  # a mutable buffer may change later
        try:
            written = self._stream.write(block)
        except BaseException:
            self.abandon()
            raise
        if written is not None and written != len(block):
            self.abandon()  # never happens with a buffered file; nothing to vouch for if it does
        else:
            self._hashing.put(block)
            self._size += len(block)
        return written

    def flush(self) -> None:
        self._stream.flush()

    def tell(self) -> int:
        return int(self._stream.tell())

    def fileno(self) -> int:
        return int(self._stream.fileno())

    @property
    def closed(self) -> bool:
        return bool(self._stream.closed)

    @property
    def hashing(self) -> bool:
        """Whether the bytes written are still being hashed."""
        return self._hashing is not None

    def close(self) -> None:
        hashing, self._hashing = self._hashing, None
        if hashing is None:
            self._stream.close()
            return
        try:
            self._stream.flush()
            found = os.fstat(self._stream.fileno())
        except BaseException:
            hashing.finish()
            with contextlib.suppress(OSError):
                self._stream.close()
            raise
        try:
            self._stream.close()  # a failure here leaves the file without digests (never finished)
        finally:
            digests = hashing.finish()
        if hashing.error is not None:
            self._writes.errors.append(hashing.error)
        elif found.st_size == self._size and (found.st_dev, found.st_ino) == self._identity:
            self._writes.finished(self.path, WrittenFile(digests, self._size, *self._identity, *_times(found)))

    def abandon(self) -> None:
        """Stop hashing a file still being written: it will be hashed by reading it, if it is
        kept at all."""
        hashing, self._hashing = self._hashing, None
        if hashing is None:
            return
        hashing.finish()
        if hashing.error is not None:
            self._writes.errors.append(hashing.error)
        self._writes.taint(self._identity)

    def __enter__(self) -> _HashingStream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        # Anything else (seek, truncate, writelines, ...) may change what the file holds in a
        # way the digests do not follow.
        self.abandon()
        return getattr(self._stream, name)


def _times(found: os.stat_result) -> tuple[int, int]:
    return found.st_mtime_ns, found.st_ctime_ns


class Writes:
    """The files one capture's downloaders wrote, with their digests where they can be vouched for."""

    def __init__(self, algorithms: tuple[str, ...], *, write_back: bool = True) -> None:
        self.algorithms = algorithms
        self.write_back = write_back
        self.streams: list[_HashingStream] = []
        self.errors: list[OSError] = []
        self._done: dict[tuple[int, int], tuple[str, WrittenFile]] = {}
        #: Files written here that nothing is vouched for, and where they were last seen.
        self._tainted: dict[tuple[int, int], str] = {}

    def attach(self, downloader: Any) -> None:
        """Route the files *downloader* opens and renames through this record."""
        downloader.sanitize_open = self._opener(downloader.sanitize_open)
        downloader.try_rename = self._renamer(downloader.try_rename)

    def _opener(self, original: Callable[[str, str], tuple[Any, str]]) -> Callable[[str, str], tuple[Any, str]]:
        def sanitize_open(filename: str, open_mode: str) -> tuple[Any, str]:
            stream, name = original(filename, open_mode)
            if name == "-" or not any(flag in open_mode for flag in "wax+"):
                return stream, name  # standard output, or read only
            try:
                found = os.fstat(stream.fileno())
            except (OSError, AttributeError, ValueError):
                return stream, name
            identity = (found.st_dev, found.st_ino)
            if self._known(identity) or any(s._identity == identity and s.hashing for s in self.streams):
                self.taint(identity, os.path.abspath(name))  # opened for writing a second time
                return stream, name
            if open_mode != "wb" or found.st_size != 0:
                self.taint(identity, os.path.abspath(name))  # appended to (a resumed download), or text
                return stream, name
            return _HashingStream(stream, self, identity, os.path.abspath(name)), name

        return sanitize_open

    def _renamer(self, original: Callable[[str, str], None]) -> Callable[[str, str], None]:
        def try_rename(old: str, new: str) -> None:
            original(old, new)
            moved = os.path.abspath(old)
            for identity, path in list(self._tainted.items()):
                if path == moved:
                    self._tainted[identity] = os.path.abspath(new)
            for identity, (path, written) in list(self._done.items()):
                if path != moved:
                    continue
                # A rename changes the file's change time: what it looks like now is kept.
                try:
                    found = os.lstat(new)
                except OSError:
                    self.taint(identity)
                    continue
                if (found.st_dev, found.st_ino, found.st_size) != (*identity, written.size):
                    self.taint(identity)
                    continue
                self._done[identity] = (os.path.abspath(new), _evolve_times(written, found))

        return try_rename

    def _known(self, identity: tuple[int, int]) -> bool:
        """Tell whether the file *identity* names was written here before and is still there
        (else its inode number was given to a new file, which is new to this record too)."""
        path = self._done[identity][0] if identity in self._done else self._tainted.get(identity)
        if path is None:
            return False
        try:
            found = os.lstat(path)
        except OSError:
            found = None
        if found is not None and (found.st_dev, found.st_ino) == identity:
            return True
        self._done.pop(identity, None)
        self._tainted.pop(identity, None)
        return False

    def finished(self, path: str, written: WrittenFile) -> None:
        identity = (written.device, written.inode)
        if identity not in self._tainted:
            self._done[identity] = (path, written)

    def taint(self, identity: tuple[int, int], path: str | None = None) -> None:
        """Vouch for nothing about the file *identity* (at *path*, or where it was recorded)."""
        known = self._done.pop(identity, None)
        for stream in self.streams:
            if stream._identity == identity:
                path = path or stream.path
        self._tainted[identity] = path or (known[0] if known else "")

    def close(self) -> None:
        """Stop the hashing of files never closed (a download that failed); raise the first
        write-back error (the bytes may not be on the disk, and ``fsync`` may not say so again)."""
        for stream in self.streams:
            stream.abandon()
        self.streams.clear()
        if self.errors:
            error = self.errors[0]
            raise OSError(error.errno or errno.EIO, f"writing the download to disk failed ({error.strerror or error})")

    def written(self, path: str | os.PathLike[str]) -> WrittenFile | None:
        """The digests and state of the file at *path*, when it was written through here, whole."""
        try:
            found = os.lstat(path)
        except OSError:
            return None
        entry = self._done.get((found.st_dev, found.st_ino))
        if entry is None or entry[0] != os.path.abspath(path) or not entry[1].unchanged(path):
            return None
        return entry[1]


def _evolve_times(written: WrittenFile, found: os.stat_result) -> WrittenFile:
    return WrittenFile(written.digests, written.size, written.device, written.inode, *_times(found))


def write_known(path: str | os.PathLike[str], data: bytes, algorithms: tuple[str, ...]) -> WrittenFile:
    """Write *data* as the new file *path* and return it with the digests of *data*."""
    hasher = MultiHasher(algorithms)
    hasher.update(data)
    with open(path, "wb") as stream:
        stream.write(data)
        stream.flush()
        found = os.fstat(stream.fileno())
    if found.st_size != len(data):
        raise OSError(errno.EIO, f"wrote {found.st_size} bytes of {len(data)}")
    return WrittenFile(hasher.digests(), len(data), found.st_dev, found.st_ino, *_times(found))
