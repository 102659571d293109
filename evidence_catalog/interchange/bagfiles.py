"""A bag's payload files, written and hashed: in a process of their own, or in this one.

Making a bag is two jobs.  Making its documents (reading the catalog, building JSON) holds the
interpreter's lock; writing its files (folders, documents, copies of artifacts, every byte
hashed) is mostly system calls, each of which lets the lock go and then waits to take it back
while the documents are being made -- up to the interpreter's switch interval, 5 ms, every time.
A bag of thousands of small records would spend most of its time in those waits, or make its
files one after the other on a single core.  So :class:`~evidence_catalog.interchange.bag.
BagWriter` hands the files to this module run as a helper process (``python -I -S
bagfiles.py``: the standard library only, nothing of the package is imported), which writes
them in the order given, with the manifests, while the documents are made; where no helper can
be started, :class:`PayloadWriter` does the same work in the calling process.

:class:`PayloadWriter` copies an artifact file by the kernel where it can (``copy_file_range``:
a reflink on file systems that share extents, a copy inside the kernel elsewhere) and reads the
copy back to hash it; where it cannot, the file is read, hashed and written.  Either way every
byte in the bag is hashed once, as it is in the bag.  Large files are copied on worker threads
and sent to the disk (``fdatasync``) as soon as they are written, while the next ones are made.

The helper's protocol, over its standard input and output: frames of a 4-byte big-endian
length and a :mod:`marshal` payload.  In: a list of operations -- ``("w", path, data)`` write
bytes, ``("c", path, source, sha256, where)`` copy a file that must have that SHA-256, ``("l",
path, digests, size)`` list a file the caller wrote itself, ``("e",)`` end.  Out: ``("r",)``
ready, ``("p", n)`` bytes done, ``("a", path)`` and ``("z", path)`` a large copy's read-back
through memory maps begun and ended (a copy cut short under its map ends the helper with
SIGBUS: the caller then names it), ``("d", octets, files)`` done (manifests closed), or an error
-- ``("m", where, sha256, found)`` a copy with another SHA-256, ``("o", errno, text, path)`` a
system error, ``("x", text)`` anything else -- after which it stops.  At the end of its input
without ``("e",)`` (the caller is gone) it stops too.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import hashlib
import marshal
import mmap
import os
import queue
import stat
import struct
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

#: Files at least this large are copied on worker threads; the others at once (a thread
#: costs more than it saves on a small file).
LARGE_FILE = 8 * 1024 * 1024
#: Block in which a large file is read back or copied: few, long stretches in which hashing and
#: the kernel run without the interpreter's lock.
LARGE_BLOCK = 16 * 1024 * 1024
SMALL_BLOCK = 1024 * 1024
#: A large file's kernel copy is read back through a memory map of this many bytes at a time,
#: its pages mapped at once (``MAP_POPULATE``), where the system has such maps (Linux): hashed
#: where the page cache holds them, not copied into a buffer first -- about a quarter of the
#: CPU time of reading the copy back and hashing it.  Only the helper process maps files (a
#: mapped file cut short under it ends the process with SIGBUS: the caller then says the
#: writer stopped, where this process would be gone).
MAP_WINDOW = 64 * 1024 * 1024
_MAP_FLAGS = getattr(mmap, "MAP_SHARED", 0) | getattr(mmap, "MAP_POPULATE", 0)
CAN_MAP = hasattr(mmap, "MAP_POPULATE") and hasattr(mmap, "PROT_READ")
#: The helper says how many bytes it has copied whenever this many more are done (and at the
#: end of each batch).
PROGRESS_STEP = 1024 * 1024
#: ``copy_file_range`` errors that mean "not here" (another file system, not supported): the
#: file is then read and written instead.
NO_KERNEL_COPY = frozenset(
    {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EBADF, errno.EPERM}
)
_LENGTH = struct.Struct(">I")
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


class CopyMismatch(Exception):  # noqa: N818 - a finding, named as the protocol names it
    """A copied file whose SHA-256 is not the one it was given: the stored bytes changed."""

    def __init__(self, where: str, sha256: str, found: str) -> None:
        super().__init__(f"{where}: SHA-256 {found}, not {sha256}")
        self.where = where
        self.sha256 = sha256
        self.found = found


class Copied:
    """A payload file written: its digests by algorithm and its size."""

    __slots__ = ("digests", "size")

    def __init__(self, digests: dict[str, str], size: int) -> None:
        self.digests = digests
        self.size = size


class PayloadWriter:
    """Writes payload files under *root* and lists each in ``manifest-<algorithm>.txt``, in the
    order given; large copies run on *workers* threads.  *progress* is called with the bytes
    of each block copied (from those threads too)."""

    def __init__(
        self,
        root: str,
        algorithms: Sequence[str],
        workers: int,
        progress: Callable[[int], None] | None = None,
        *,
        mapping: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.root = root
        #: Whether a large file's kernel copy is read back through memory maps (:data:`MAP_WINDOW`):
        #: with a *mapping*, called with the file's payload path and ``True`` before its copy is
        #: made and read back so, with ``False`` after (the helper says it to its caller, which
        #: names the file should the process die of a map cut short).
        self.mapping = mapping if CAN_MAP else None
        self.algorithms = tuple(algorithms)
        self.progress = progress
        self.octets = 0
        self.files = 0
        self._manifests = [
            open(os.path.join(root, f"manifest-{alg}.txt"), "x", encoding="utf-8", newline="\n")  # noqa: SIM115
            for alg in self.algorithms
        ]
        self._folders: set[str] = set()
        self._workers = max(1, workers)
        self._pool: ThreadPoolExecutor | None = None
        self._flusher: Flusher | None = None
        #: Every file in the order given, and its digests and size or the copy that gives them.
        self._listing: collections.deque[tuple[str, Copied | Future[Copied]]] = collections.deque()
        self._copying = 0
        self._kernel_copy = [hasattr(os, "copy_file_range")]

    def _target(self, relative: str) -> str:
        target = f"{self.root}/{relative}"
        folder = target.rpartition("/")[0]
        if folder not in self._folders:
            try:
                os.mkdir(folder)  # a record's folder: its parent is there already
            except FileNotFoundError:
                os.makedirs(folder, exist_ok=True)
            except FileExistsError:
                pass
            self._folders.add(folder)
        return target

    def write(self, relative: str, data: bytes) -> None:
        """Write *data* as the new payload file *relative*."""
        fd = os.open(self._target(relative), os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            write_all(fd, memoryview(data))
        finally:
            os.close(fd)
        self.listed(relative, {alg: hashlib.new(alg, data).hexdigest() for alg in self.algorithms}, len(data))

    def copy(self, relative: str, source: str, sha256: str, where: str) -> None:
        """Copy the file *source* as the payload file *relative*, hashing the copy; a copy whose
        SHA-256 is not *sha256* is a :class:`CopyMismatch` naming *where*, raised by this call
        or a later one (a large file is copied while the caller goes on)."""
        target = self._target(relative)
        try:
            size = os.stat(source).st_size
        except OSError:
            size = 0  # the copy says what is wrong
        if size < LARGE_FILE:
            copied = copy_file(source, target, self.algorithms, self._kernel_copy, SMALL_BLOCK, self.progress)
            self._listing.append((relative, _checked(copied, sha256, where)))
            self._drain()
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="bag-copy")
            self._flusher = Flusher()
        flusher = self._flusher
        assert flusher is not None
        while self._copying >= 2 * self._workers:
            self._wait_oldest()  # a few copies under way at most

        mapping = self.mapping

        def copy() -> Copied:
            if mapping is not None:
                mapping(relative, True)
            try:
                copied = copy_file(
                    source,
                    target,
                    self.algorithms,
                    self._kernel_copy,
                    LARGE_BLOCK,
                    self.progress,
                    mapped=mapping is not None,
                )
            finally:
                if mapping is not None:
                    mapping(relative, False)
            flusher.flush(target)  # to the disk now, while the rest is made
            return _checked(copied, sha256, where)

        self._listing.append((relative, self._pool.submit(copy)))
        self._copying += 1
        self._drain()

    def listed(self, relative: str, digests: dict[str, str], size: int) -> None:
        """List a payload file the caller wrote."""
        self._listing.append((relative, Copied(digests, size)))
        self._drain()

    def _drain(self) -> None:
        """Write the manifest lines of the files done, in the order given (a copy that failed
        raises its error here)."""
        while self._listing:
            relative, item = self._listing[0]
            if isinstance(item, Future):
                if not item.done():
                    return
                self._listing.popleft()
                self._copying -= 1
                item = item.result()
            else:
                self._listing.popleft()
            for alg, manifest in zip(self.algorithms, self._manifests, strict=True):
                manifest.write(f"{item.digests[alg]}  {relative}\n")
            self.octets += item.size
            self.files += 1

    def _wait_oldest(self) -> None:
        for _, item in self._listing:
            if isinstance(item, Future):
                item.exception()  # waits; _drain raises its error in turn
                break
        self._drain()

    def finish(self) -> tuple[int, int]:
        """Wait for every copy and flush, close the manifests; return (bytes, files)."""
        while self._listing:
            self._wait_oldest()
        self._stop()
        for manifest in self._manifests:
            manifest.close()
        return self.octets, self.files

    def _stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._flusher is not None:
            self._flusher.close()

    def abort(self) -> None:
        """Stop: copies under way end first (nothing writes after this); close the manifests.
        Raises nothing: on a full disk their last lines cannot be written out either, and that
        must not hide why the writer stopped (the bag is removed)."""
        with contextlib.suppress(OSError):
            self._stop()
        for manifest in self._manifests:
            with contextlib.suppress(OSError):
                manifest.close()


def _checked(copied: Copied, sha256: str, where: str) -> Copied:
    if copied.digests["sha256"] != sha256:
        raise CopyMismatch(where, sha256, copied.digests["sha256"])
    return copied


def copy_file(
    source: str,
    target: str,
    algorithms: Sequence[str],
    kernel_copy: list[bool],
    block: int,
    progress: Callable[[int], None] | None,
    *,
    mapped: bool = False,
) -> Copied:
    """Copy *source* to the new file *target* by the kernel, then read the copy back and hash
    it (:func:`read_back`: through memory maps with *mapped*, in one read when it fits in a
    *block*); or read, hash and write it when ``kernel_copy[0]`` is false or the
    kernel cannot copy it (which clears it, for the files after this one).  Plain file
    descriptors: a small file's copy is a dozen system calls, and each one more counts."""
    src = os.open(source, os.O_RDONLY | _CLOEXEC | _NONBLOCK)  # a named pipe would wait for a writer
    try:
        found = os.fstat(src)
        if not stat.S_ISREG(found.st_mode):  # a pipe or device put in a stored file's place
            raise OSError(errno.EINVAL, "not a regular file", source)
        if _NONBLOCK:
            os.set_blocking(src, True)
        size = found.st_size
        out = os.open(target, os.O_RDWR | os.O_CREAT | os.O_EXCL | _CLOEXEC, 0o666)
        try:
            if kernel_copy[0]:
                done = 0
                try:
                    while done < size:
                        copied = os.copy_file_range(src, out, size - done)
                        if copied == 0:  # a file that reads shorter than it says: copied by hand
                            raise OSError(errno.EINVAL, "copy_file_range copied nothing")
                        done += copied
                except OSError as exc:
                    if exc.errno not in NO_KERNEL_COPY:
                        raise
                    kernel_copy[0] = False
                    os.lseek(src, 0, os.SEEK_SET)
                    os.lseek(out, 0, os.SEEK_SET)
                    os.ftruncate(out, 0)
                else:
                    return read_back(out, size, algorithms, block, progress, mapped=mapped)
            with open(src, "rb", buffering=0, closefd=False) as stream:
                return digested(stream, algorithms, min(block, size + 1), out, progress)
        finally:
            os.close(out)
    finally:
        os.close(src)


def read_back(
    fd: int,
    size: int,
    algorithms: Sequence[str],
    block: int,
    progress: Callable[[int], None] | None,
    *,
    mapped: bool = False,
) -> Copied:
    """The digests and size of the copy *fd* the kernel made of *size* bytes, read from its
    start: through memory maps with *mapped*, in one read when it fits in a *block* (a small
    file), else in blocks."""
    if mapped and size:
        found = mapped_digests(fd, size, algorithms, block, progress)
        if found is not None:
            return found  # else the file system maps no files (FUSE's direct_io ...): read it
    if size < block:
        data = os.pread(fd, size + 1, 0)
        if len(data) <= size:  # else it grew: read to its end below
            if progress is not None and data:
                progress(len(data))
            return Copied({alg: hashlib.new(alg, data).hexdigest() for alg in algorithms}, len(data))
    os.lseek(fd, 0, os.SEEK_SET)
    with open(fd, "rb", buffering=0, closefd=False) as stream:
        return digested(stream, algorithms, min(block, size + 1), None, progress)


def digested(
    stream: Any, algorithms: Sequence[str], block: int, copy_to: int | None, progress: Callable[[int], None] | None
) -> Copied:
    """Read *stream* to its end in blocks of *block* bytes, hashing each (and writing it to the
    file descriptor *copy_to*); its digests by algorithm and its size."""
    hashers = [hashlib.new(alg) for alg in algorithms]
    view = memoryview(bytearray(max(block, 4096)))
    size = 0
    while n := stream.readinto(view):
        chunk = view[:n]
        for hasher in hashers:
            hasher.update(chunk)
        if copy_to is not None:
            write_all(copy_to, chunk)
        if progress is not None:
            progress(n)
        size += n
    return Copied({alg: hasher.hexdigest() for alg, hasher in zip(algorithms, hashers, strict=True)}, size)


def mapped_digests(
    fd: int, size: int, algorithms: Sequence[str], block: int, progress: Callable[[int], None] | None
) -> Copied | None:
    """The digests of the file *fd*, which must hold *size* bytes, read through memory maps of
    :data:`MAP_WINDOW` bytes at a time (so that memory does not grow with the file), hashed in
    blocks of *block* bytes; a file that does not hold *size* bytes when it has been read is an
    :class:`OSError`.  ``None``, with nothing read, when its first window cannot be mapped (a
    file system that maps no files): the caller reads it instead."""
    hashers = [hashlib.new(alg) for alg in algorithms]
    offset = 0
    while offset < size:
        length = min(MAP_WINDOW, size - offset)
        try:
            window = mmap.mmap(fd, length, flags=_MAP_FLAGS, prot=mmap.PROT_READ, offset=offset)
        except (OSError, ValueError):
            if offset == 0:
                return None
            raise
        with window, memoryview(window) as view:
            for start in range(0, length, block):
                with view[start : start + block] as chunk:
                    for hasher in hashers:
                        hasher.update(chunk)
                    if progress is not None:
                        progress(len(chunk))
        offset += length
    found = os.fstat(fd).st_size
    if found != size:
        raise OSError(errno.EIO, f"the copy holds {found} bytes, not {size}")
    return Copied({alg: hasher.hexdigest() for alg, hasher in zip(algorithms, hashers, strict=True)}, size)


def write_all(fd: int, view: memoryview) -> None:
    """Write every byte of *view* (short writes happen on full disks and some file systems)."""
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, "no bytes written")
        view = view[written:]


class Flusher:
    """Sends finished files to the disk on a thread of its own (``fdatasync``), so that the
    disk writes while the rest of the bag is made and the final flush finds little left to do;
    the first error is raised by :meth:`close`."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="bag-flush", daemon=True)
        self._thread.start()

    def flush(self, path: str) -> None:
        self._queue.put(path)

    def _run(self) -> None:
        while (path := self._queue.get()) is not None:
            if self._error is not None:
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fdatasync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                self._error = exc

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


# -- the helper process ----------------------------------------------------------------------------


def read_frame(fd: int) -> bytes | None:
    """One frame from *fd* (blocking); ``None`` at the end of the input."""
    head = _read_exactly(fd, _LENGTH.size)
    if head is None:
        return None
    body = _read_exactly(fd, _LENGTH.unpack(head)[0])
    if body is None:
        raise EOFError("a frame was cut short")
    return body


def _read_exactly(fd: int, count: int) -> bytes | None:
    parts = []
    while count:
        part = os.read(fd, count)
        if not part:
            return None
        parts.append(part)
        count -= len(part)
    return b"".join(parts)


def frame(message: Any) -> bytes:
    """*message* as a frame."""
    body = marshal.dumps(message)
    return _LENGTH.pack(len(body)) + body


def serve(root: str, algorithms: Sequence[str], workers: int) -> int:
    """Be the helper: write what standard input asks into the bag at *root*."""
    inp, out = sys.stdin.fileno(), sys.stdout.fileno()
    lock = threading.Lock()  # the copying threads report too: one frame at a time
    done = [0]

    def report() -> None:
        with lock:
            if done[0]:
                write_all(out, memoryview(frame(("p", done[0]))))
                done[0] = 0

    def progress(n: int) -> None:
        with lock:
            done[0] += n
            if done[0] < PROGRESS_STEP:
                return
        report()

    def mapping(relative: str, begun: bool) -> None:
        with lock:
            write_all(out, memoryview(frame(("a" if begun else "z", relative))))

    writer = PayloadWriter(root, algorithms, workers, progress, mapping=mapping)
    write_all(out, memoryview(frame(("r",))))
    try:
        while (received := read_frame(inp)) is not None:
            for operation in marshal.loads(received):
                kind = operation[0]
                if kind == "w":
                    writer.write(operation[1], operation[2])
                elif kind == "c":
                    writer.copy(operation[1], operation[2], operation[3], operation[4])
                elif kind == "l":
                    writer.listed(operation[1], dict(operation[2]), operation[3])
                elif kind == "e":
                    octets, files = writer.finish()
                    report()
                    write_all(out, memoryview(frame(("d", octets, files))))
                    return 0
                else:
                    raise ValueError(f"unknown operation {kind!r}")
            report()
    except CopyMismatch as exc:
        message: tuple[Any, ...] = ("m", exc.where, exc.sha256, exc.found)
    except OSError as exc:
        message = ("o", exc.errno or 0, exc.strerror or str(exc), None if exc.filename is None else str(exc.filename))
    except BaseException as exc:  # noqa: BLE001 - said to the caller, which raises it
        message = ("x", f"{type(exc).__name__}: {exc}")
    else:
        writer.abort()  # the caller went away without ending: stop
        return 1
    writer.abort()
    with contextlib.suppress(OSError):
        write_all(out, memoryview(frame(message)))
    return 1


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1], sys.argv[3].split(","), int(sys.argv[2])))
