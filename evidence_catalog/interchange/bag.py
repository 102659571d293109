"""BagIt packages (RFC 8493, BagIt 1.0): written as a stream, read back accepting nothing
unchecked.

Layout of an export bag (see ``docs/interchange.md``)::

    bagit.txt, bag-info.txt, manifest-sha256.txt [manifest-sha512.txt],
    tagmanifest-sha256.txt [tagmanifest-sha512.txt]
    data/contents.json                      what the bag holds (schema bag-contents)
    data/custody.jsonl                      custody events, one JSON document per line
    data/records/<record id>/record.json    each record (schema evidence-record)
    data/records/<record id>/artifacts/...  its artifacts, under portable readable names

:class:`BagWriter` writes payload files one at a time, hashing them as they are written and
appending each manifest line at once, so memory does not grow with the bag.  :func:`check_bag`
checks a bag on disk: its declaration, every path in every manifest (no traversal, no absolute
or drive-letter paths, no symlinks), that the payload is exactly what the manifests list, the
Payload-Oxum, and every digest of every payload and tag file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import marshal
import os
import re
import select
import signal
import stat
import subprocess
import sys
import threading
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, Protocol, cast

import attrs

from evidence_catalog.errors import InputError, IntegrityError
from evidence_catalog.hashing import MultiHasher, Readable, hash_stream
from evidence_catalog.interchange import bagfiles
from evidence_catalog.interchange.text import HashingTextSink

BAGIT_VERSION = "1.0"
#: BagIt versions whose bags are read (0.97 is what many tools still write).
READABLE_VERSIONS = ("0.97", "1.0")
#: Manifest algorithms that are checked when present (RFC 8493 section 2.4 names).
CHECKED_ALGORITHMS = ("md5", "sha1", "sha256", "sha512")
CONTENTS = "data/contents.json"
CUSTODY = "data/custody.jsonl"
RECORDS_DIR = "data/records"
_DRIVE = re.compile(r"^[A-Za-z]:")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_DIGEST_LENGTH = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
#: Unicode's control characters (category Cc): C0, DEL and C1.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

#: Called with the number of bytes just written or checked.
ByteProgress = Callable[[int], None]


class BagError(InputError):
    """A bag that is not well-formed or safe: a path, a declaration, a file too many or missing."""


# -- writing -------------------------------------------------------------------------------------


class BagWriter:
    """Writes a bag into an empty directory, payload file by payload file.

    The files are written by :mod:`evidence_catalog.interchange.bagfiles` -- in a helper process
    when one can be started (*helper* ``None``; ``False``: in this process), so that writing
    them and making the documents run side by side -- in the order given, each hashed as it is
    in the bag: documents as they are written, artifact files (:meth:`add_file`) as their copy
    is read back (large ones copied on *workers* threads, default one per CPU).  Errors of a
    file are raised by the call that gives it or by a later call of this writer."""

    def __init__(
        self,
        root: Path,
        algorithms: Sequence[str] = ("sha256",),
        *,
        workers: int | None = None,
        helper: bool | None = None,
    ) -> None:
        if "sha256" not in algorithms:
            raise ValueError("sha256 is always among a bag's manifests")
        self.root = root
        self.algorithms = tuple(algorithms)
        #: Bytes and files in the payload so far (as given; :meth:`finish` checks them against
        #: what was written).
        self.octets = 0
        self.files = 0
        self._progress: list[ByteProgress | None] = [None]
        (root / "data").mkdir()
        workers = max(1, workers or os.cpu_count() or 1)
        self._files: _Files | None = None
        if helper is not False:
            with contextlib.suppress(OSError, _NoHelperError):
                self._files = _Helper(os.fspath(root), self.algorithms, workers, self._progress)
        if self._files is None:
            self._files = _InProcess(os.fspath(root), self.algorithms, workers, self._progress)

    @property
    def helper(self) -> bool:
        """Whether the files are written by a helper process."""
        return isinstance(self._files, _Helper)

    def _given(self, relative: str, size: int) -> _Files:
        check_payload_path(relative, where="bag writer")
        self.octets += size
        self.files += 1
        assert self._files is not None
        return self._files

    def _own_target(self, relative: str) -> Path:
        """Where this process writes a payload file itself (its folder made)."""
        check_payload_path(relative, where="bag writer")
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def add_stream(
        self,
        relative: str,
        stream: BinaryIO,
        *,
        size: int,
        where: str,
        progress: ByteProgress | None = None,
    ) -> dict[str, str]:
        """Copy *stream* to the payload path *relative* (``data/...``), hashing it on the way;
        return its digests by algorithm.  A stream that holds more than the catalogued *size*
        is an :class:`IntegrityError` naming *where* as soon as one byte more is read (an object
        put in a blob's place may be huge); one that holds less, the caller's hash check finds."""
        target = self._own_target(relative)
        with open(target, "xb") as out:
            source = AtMost(cast(Readable, stream), size, where)
            digests, size = hash_stream(source, self.algorithms, on_block=out.write, progress=progress)
        found = {alg: getattr(digests, alg) for alg in self.algorithms}
        self._given(relative, size).listed(relative, found, size)
        return found

    def add_file(
        self,
        relative: str,
        source: Path,
        *,
        sha256: str,
        where: str,
        progress: ByteProgress | None = None,
        size: int | None = None,
    ) -> None:
        """Copy the stored file *source* to the payload path *relative* and hash the copy: a
        copy whose SHA-256 is not *sha256* -- the stored bytes changed since they were
        catalogued -- is an :class:`IntegrityError` naming *where*.  *progress* is called with
        the bytes copied (in this thread, or in the writer's threads).  With the catalogued
        *size*, a stored file of another size is that error at once, before anything of it is
        copied (a file put in its place may be huge, or sparse and larger than the disk)."""
        try:
            found = os.stat(source).st_size
        except OSError:
            found = 0  # the copy says what is wrong
        else:
            if size is not None and found != size:
                raise IntegrityError(
                    f"the stored copy holds {found} bytes, not the {size} catalogued; run verify. Nothing was exported",
                    where=where,
                )
        self._progress[0] = progress
        self._given(relative, found).copy(relative, os.fspath(source), sha256, where, found)

    def add_bytes(self, relative: str, data: bytes) -> None:
        """Write *data* to the payload path *relative*."""
        self._given(relative, len(data)).write(relative, data)

    def open_text(self, relative: str) -> _HashingText:
        """A text file in the payload, written piece by piece; :meth:`_HashingText.close` lists it."""
        return _HashingText(self, relative, self._own_target(relative))

    def _listed(self, relative: str, digests: dict[str, str], size: int) -> None:
        self._given(relative, size).listed(relative, digests, size)

    def finish(self, info: Sequence[tuple[str, str]]) -> str:
        """Wait for every file, write the manifests out, ``bagit.txt``, ``bag-info.txt`` (*info*
        plus Payload-Oxum) and the tag manifests, and flush everything to the disk; return the
        SHA-256 of ``tagmanifest-sha256.txt`` (it pins every byte of the bag)."""
        assert self._files is not None
        written = self._files.finish()
        if written != (self.octets, self.files):
            raise IntegrityError(
                f"{written[1]} files of {written[0]} bytes were written, not {self.files} of {self.octets}: stored"
                " files changed while they were copied. Nothing was exported",
                where=str(self.root),
            )
        tag_files = ["bagit.txt", "bag-info.txt", *(f"manifest-{alg}.txt" for alg in self.algorithms)]
        _write_text(self.root / "bagit.txt", f"BagIt-Version: {BAGIT_VERSION}\nTag-File-Character-Encoding: UTF-8\n")
        lines = [*info, ("Payload-Oxum", f"{self.octets}.{self.files}")]
        _write_text(self.root / "bag-info.txt", "".join(f"{label}: {_one_line(value)}\n" for label, value in lines))
        pinned = ""
        for alg in self.algorithms:
            text = ""
            for name in tag_files:
                hasher = MultiHasher([alg])
                with open(self.root / name, "rb", buffering=0) as stream:
                    hash_stream(stream, [alg], on_block=hasher.update)
                text += f"{getattr(hasher.digests(), alg)}  {name}\n"
            _write_text(self.root / f"tagmanifest-{alg}.txt", text)
            if alg == "sha256":
                hasher = MultiHasher(["sha256"])
                hasher.update(text.encode("utf-8"))
                pinned = hasher.digests().sha256
        # One flush of everything written, instead of one fsync per file (thousands of small
        # files would each wait for the disk); the bag is renamed into place only after this.
        os.sync()
        return pinned

    def abort(self) -> None:
        """Stop writing (copies under way end first: nothing writes into the bag after this);
        the caller removes the directory."""
        if self._files is not None:
            self._files.abort()


class _Files(Protocol):
    """Where a :class:`BagWriter` has its payload files written."""

    def write(self, relative: str, data: bytes) -> None: ...
    def copy(self, relative: str, source: str, sha256: str, where: str, size: int) -> None: ...
    def listed(self, relative: str, digests: dict[str, str], size: int) -> None: ...
    def finish(self) -> tuple[int, int]: ...
    def abort(self) -> None: ...


class AtMost:
    """A stream read up to its catalogued size: a byte more is an :class:`IntegrityError`
    (never more than one byte beyond the size is read)."""

    def __init__(self, stream: Readable, size: int, where: str) -> None:
        self.stream = stream
        self.left = size
        self.size = size
        self.where = where

    def readinto(self, buffer: memoryview, /) -> int | None:
        view = memoryview(buffer)
        n = self.stream.readinto(view[: self.left + 1] if len(view) > self.left else view)
        if n is not None:
            if n > self.left:
                raise larger_than_catalogued(self.size, self.where)
            self.left -= n
        return n


def larger_than_catalogued(size: int, where: str) -> IntegrityError:
    """The error of a stored copy that holds more than its catalogued *size*."""
    return IntegrityError(
        f"the stored copy holds more than the {size} bytes catalogued; run verify. Nothing was exported", where=where
    )


def _mismatch(where: str, found: str) -> IntegrityError:
    return IntegrityError(f"the stored copy's SHA-256 is now {found}; run verify. Nothing was exported", where=where)


class _InProcess:
    """The payload written in this process (large copies on threads)."""

    def __init__(self, root: str, algorithms: Sequence[str], workers: int, progress: list[ByteProgress | None]):
        lock = threading.Lock()

        def report(n: int) -> None:  # from the copying threads too
            callback = progress[0]
            if callback is not None:
                with lock:
                    callback(n)

        self._writer = bagfiles.PayloadWriter(root, algorithms, workers, report)

    def _run(self, call: Callable[[], object]) -> None:
        try:
            call()
        except bagfiles.CopyMismatch as exc:
            raise _mismatch(exc.where, exc.found) from None

    def write(self, relative: str, data: bytes) -> None:
        self._run(lambda: self._writer.write(relative, data))

    def copy(self, relative: str, source: str, sha256: str, where: str, size: int) -> None:
        self._run(lambda: self._writer.copy(relative, source, sha256, where))

    def listed(self, relative: str, digests: dict[str, str], size: int) -> None:
        self._run(lambda: self._writer.listed(relative, digests, size))

    def finish(self) -> tuple[int, int]:
        found: list[tuple[int, int]] = []
        self._run(lambda: found.append(self._writer.finish()))
        return found[0]

    def abort(self) -> None:
        self._writer.abort()


class _NoHelperError(Exception):
    """The helper process could not be started (the payload is then written in this process)."""


class _Helper:
    """The payload written by a helper process (:mod:`evidence_catalog.interchange.bagfiles` run
    as a script), fed operations in batches; what it says back (bytes done, an error) is read
    whenever a batch is sent, so that an error stops the export early."""

    #: Operations and bytes of data a batch holds at most.
    BATCH = 256
    BATCH_BYTES = 4 * 1024 * 1024
    #: Seconds a new helper has to say it is ready.
    START_TIMEOUT = 30.0

    def __init__(self, root: str, algorithms: Sequence[str], workers: int, progress: list[ByteProgress | None]):
        self._progress = progress
        self._operations: list[tuple[Any, ...]] = []
        self._bytes = 0
        self._received = b""
        self._done: tuple[int, int] | None = None
        #: Large copies the helper is reading back through memory maps.
        self._mapping: set[str] = set()
        executable = sys.executable
        if not executable or not bagfiles.__file__:
            raise _NoHelperError
        self._process = subprocess.Popen(
            [executable, "-I", "-S", bagfiles.__file__, root, str(workers), ",".join(algorithms)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._in, self._out = self._process.stdin.fileno(), self._process.stdout.fileno()
        try:
            ready, _, _ = select.select([self._out], [], [], self.START_TIMEOUT)
            message = bagfiles.read_frame(self._out) if ready else None
            if message is None or marshal.loads(message) != ("r",):
                raise _NoHelperError
        except (OSError, EOFError, ValueError, _NoHelperError):
            self._kill()
            raise _NoHelperError from None
        os.set_blocking(self._in, False)
        os.set_blocking(self._out, False)

    def _add(self, operation: tuple[Any, ...], size: int) -> None:
        self._operations.append(operation)
        self._bytes += size
        if len(self._operations) >= self.BATCH or self._bytes >= self.BATCH_BYTES:
            self._send()

    def write(self, relative: str, data: bytes) -> None:
        self._add(("w", relative, data), len(data))

    def copy(self, relative: str, source: str, sha256: str, where: str, size: int) -> None:
        self._add(("c", relative, source, sha256, where), 0)

    def listed(self, relative: str, digests: dict[str, str], size: int) -> None:
        self._add(("l", relative, digests, size), 0)

    def _send(self) -> None:
        """Send the batch, reading what the helper says meanwhile (neither side can then block
        the other)."""
        view = memoryview(bagfiles.frame(self._operations))
        self._operations, self._bytes = [], 0
        while view:
            readable, writable, _ = select.select([self._out], [self._in], [])
            if readable:
                self._read()
            if writable:
                try:
                    view = view[os.write(self._in, view) :]
                except BlockingIOError:
                    continue
                except BrokenPipeError:
                    self._read(until_end=True)  # says why it stopped
                    raise self._stopped() from None
        self._read()

    def _read(self, *, until_end: bool = False) -> None:
        """Take in what the helper said (waiting for the end of its output with *until_end*)."""
        while True:
            if until_end:
                select.select([self._out], [], [])
            try:
                chunk = os.read(self._out, 1 << 16)
            except BlockingIOError:
                chunk = None
            if chunk is not None:
                if not chunk:
                    if self._done is None:
                        raise self._stopped()
                    return
                self._received += chunk
            while len(self._received) >= 4:
                length = int.from_bytes(self._received[:4], "big")
                if len(self._received) < 4 + length:
                    break
                message = marshal.loads(self._received[4 : 4 + length])
                self._received = self._received[4 + length :]
                self._said(message)
            if chunk is None and not until_end:
                return
            if until_end and self._done is not None:
                return

    def _said(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "p":
            callback = self._progress[0]
            if callback is not None:
                callback(message[1])
        elif kind == "a":
            self._mapping.add(message[1])
        elif kind == "z":
            self._mapping.discard(message[1])
        elif kind == "d":
            self._done = (message[1], message[2])
        elif kind == "m":
            raise _mismatch(message[1], message[3])
        elif kind == "o":
            raise OSError(message[1], message[2], message[3])
        else:
            raise OSError(errno.EIO, f"the bag's file writer failed: {message[-1]}")

    def _stopped(self) -> OSError:
        """The error of a helper that ended without a word: how it ended, and why if known."""
        try:
            code = self._process.wait(timeout=10)  # its output is closed: it is ending
        except subprocess.TimeoutExpired:
            code = None
        said = "the bag's file writer stopped"
        if code is not None and code < 0:
            said += f" (killed by {_signal_name(-code)})"
            if -code == getattr(signal, "SIGBUS", None) and self._mapping:
                said += (
                    f": {', '.join(sorted(self._mapping))} was cut short or could not be read while it was"
                    " read back from the bag (changed by another program, or a disk error)"
                )
        elif code:
            said += f" (exit status {code})"
        return OSError(errno.EIO, said)

    def finish(self) -> tuple[int, int]:
        self._operations.append(("e",))
        self._send()
        self._read(until_end=True)
        assert self._done is not None
        self._process.wait()
        self._close()
        return self._done

    def _kill(self) -> None:
        with contextlib.suppress(OSError):
            self._process.kill()
        self._process.wait()
        self._close()

    def _close(self) -> None:
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def abort(self) -> None:
        self._kill()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class _HashingText(HashingTextSink):
    def __init__(self, writer: BagWriter, relative: str, target: Path) -> None:
        super().__init__(open(target, "xb"), writer.algorithms)  # noqa: SIM115 - closed in close()
        self.writer = writer
        self.relative = relative

    def close(self) -> None:
        self.raw.close()
        digests = self.hasher.digests()
        self.writer._listed(
            self.relative, {alg: getattr(digests, alg) for alg in self.writer.algorithms}, self.hasher.size
        )


def _write_text(path: Path, text: str) -> None:
    with open(path, "x", encoding="utf-8", newline="\n") as out:
        out.write(text)


def _one_line(value: str) -> str:
    return " ".join(value.split())


def bagging_date(at: dt.datetime) -> str:
    """The Bagging-Date of a bag made at *at* (RFC 8493: YYYY-MM-DD)."""
    return at.astimezone(dt.UTC).date().isoformat()


# -- checking ------------------------------------------------------------------------------------


def check_payload_path(path: str, *, where: str) -> None:
    """Refuse a manifest path that could name anything outside the bag's ``data/`` folder:
    absolute, a drive letter, a backslash, ``.``/``..``/empty steps, control characters."""
    problem = _path_problem(path)
    if problem is None and not path.startswith("data/"):
        problem = "is not in the payload folder data/"
    if problem is not None:
        raise BagError(f"unsafe path {path!r}: {problem}", where=where)


def _path_problem(path: str) -> str | None:
    if not path:
        return "is empty"
    if path.startswith(("/", "\\")) or _DRIVE.match(path) or path.startswith("~"):
        return "is absolute"
    if "\\" in path:
        return "contains a backslash (a Windows path separator)"
    if _CONTROL.search(path):
        return "contains control characters"
    if any(step in ("", ".", "..") for step in path.split("/")):
        return "contains an empty, '.' or '..' step"
    return None


def _decode_path(text: str) -> str:
    """RFC 8493 section 2.1.3: CR, LF and ``%`` in manifest paths are percent-encoded."""
    return re.sub(r"%(0[Dd]|0[Aa]|25)", lambda m: chr(int(m.group(1), 16)), text)


def _read_tag_text(path: Path, where: str, limit: int = 64 * 1024 * 1024) -> str:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise BagError("is missing", where=where) from None
    if not stat.S_ISREG(info.st_mode):
        raise BagError("is not a regular file (a symlink or a device is never followed)", where=where)
    if info.st_size > limit:
        raise BagError(f"is {info.st_size} bytes, more than a tag file may be ({limit})", where=where)
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        raise BagError("starts with a byte order mark, which BagIt forbids", where=where)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BagError(f"is not UTF-8 (byte {exc.start})", where=where) from None


def parse_bag_info(text: str, where: str) -> list[tuple[str, str]]:
    """The labels and values of ``bag-info.txt`` in order (continuation lines joined)."""
    items: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line[0] in " \t":
            if not items:
                raise BagError(f"line {number} continues nothing", where=where)
            label, value = items[-1]
            items[-1] = (label, f"{value} {line.strip()}")
            continue
        label, colon, value = line.partition(":")
        if not colon or not label.strip() or label != label.strip():
            raise BagError(f"line {number} is not 'Label: value'", where=where)
        items.append((label, value.strip()))
    return items


def _parse_manifest(text: str, algorithm: str, where: str) -> dict[str, str]:
    entries: dict[str, str] = {}
    for number, line in enumerate(text.split("\n"), 1):
        line = line.removesuffix("\r")
        if not line:
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or not _HEX.match(parts[0]) or len(parts[0]) != _DIGEST_LENGTH[algorithm]:
            raise BagError(f"line {number} is not '<{algorithm} digest> <path>'", where=where)
        digest, raw_path = parts
        path = _decode_path(raw_path)
        problem = _path_problem(path)
        if problem is not None:
            raise BagError(f"line {number}: unsafe path {path!r}: {problem}", where=where)
        key = unicodedata.normalize("NFC", path)
        if key in entries:
            raise BagError(f"line {number}: {path!r} is listed twice", where=where)
        entries[key] = digest.lower()
    return entries


@attrs.frozen
class CheckedBag:
    """A bag whose every file was checked against every manifest."""

    root: Path
    version: str
    info: tuple[tuple[str, str], ...]
    #: Payload path (NFC, ``data/...``) -> path on disk.
    files: Mapping[str, Path]
    #: Payload path -> SHA-256.
    sha256: Mapping[str, str]
    octets: int
    #: SHA-256 of ``tagmanifest-sha256.txt``.
    tagmanifest_sha256: str

    def get(self, label: str) -> str | None:
        """The first value of a ``bag-info.txt`` label (labels compare without case)."""
        return next((v for k, v in self.info if k.casefold() == label.casefold()), None)


def _walk(root: Path) -> Iterator[tuple[str, Path, int]]:
    """Every regular file under *root* as (bag-relative path, path, size); anything else refused."""
    pending = [(root, "")]
    while pending:
        folder, prefix = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                relative = f"{prefix}{entry.name}"
                if entry.is_symlink():
                    raise BagError("is a symbolic link; a bag must not point outside itself", where=relative)
                if entry.is_dir(follow_symlinks=False):
                    pending.append((Path(entry.path), relative + "/"))
                elif entry.is_file(follow_symlinks=False):
                    yield relative, Path(entry.path), entry.stat(follow_symlinks=False).st_size
                else:
                    raise BagError("is not a regular file or folder", where=relative)


@attrs.frozen
class BagLayout:
    """A bag whose declaration, tag files, manifests, paths, completeness and Payload-Oxum were
    checked -- everything :func:`check_bag` checks but the digests of its payload files, which
    are given here to be checked as the files are read (:func:`check_payload_file`)."""

    root: Path
    version: str
    info: tuple[tuple[str, str], ...]
    #: Payload path (NFC, ``data/...``) -> path on disk.
    files: Mapping[str, Path]
    #: Algorithm -> payload path -> digest, as the payload manifests list them.
    manifests: Mapping[str, Mapping[str, str]]
    octets: int
    #: SHA-256 of ``tagmanifest-sha256.txt``.
    tagmanifest_sha256: str

    def expected(self, name: str) -> dict[str, str]:
        """The digests every manifest gives for the payload file *name*, by algorithm."""
        return {algorithm: entries[name] for algorithm, entries in self.manifests.items()}

    def get(self, label: str) -> str | None:
        """The first value of a ``bag-info.txt`` label (labels compare without case)."""
        return next((v for k, v in self.info if k.casefold() == label.casefold()), None)


def check_bag_layout(root: Path) -> BagLayout:
    """Check everything of a bag but its payload files' digests: the declaration, every path in
    every manifest (no traversal, no absolute or drive-letter paths, no symlinks), that the
    payload is exactly what the manifests list, the Payload-Oxum, and every digest of every tag
    file; :class:`BagError` (or :class:`IntegrityError`) naming the file and what is wrong."""
    if root.is_symlink() or not root.is_dir():
        raise BagError("is not a bag folder", where=str(root))
    declaration = _read_tag_text(root / "bagit.txt", "bagit.txt")
    fields = dict(parse_bag_info(declaration, "bagit.txt"))
    version = fields.get("BagIt-Version")
    if version not in READABLE_VERSIONS:
        raise BagError(
            f"BagIt-Version {version!r} is not one this library reads ({', '.join(READABLE_VERSIONS)})",
            where="bagit.txt",
        )
    if fields.get("Tag-File-Character-Encoding", "").upper().replace("_", "-") not in ("UTF-8", "UTF8"):
        raise BagError("tag files must be UTF-8 (Tag-File-Character-Encoding)", where="bagit.txt")
    info = parse_bag_info(_read_tag_text(root / "bag-info.txt", "bag-info.txt"), "bag-info.txt")
    on_disk: dict[str, tuple[Path, int]] = {}
    for relative, path, size in _walk(root):
        on_disk[unicodedata.normalize("NFC", relative)] = (path, size)
    manifests: dict[str, dict[str, str]] = {}
    tagmanifests: dict[str, dict[str, str]] = {}
    for name in sorted(on_disk):
        match = re.fullmatch(r"(tag)?manifest-([a-z0-9]+)\.txt", name)
        if match is None:
            continue
        algorithm = match.group(2)
        if algorithm not in CHECKED_ALGORITHMS:
            raise BagError(f"uses the digest algorithm {algorithm!r}, which this library cannot check", where=name)
        entries = _parse_manifest(_read_tag_text(on_disk[name][0], name), algorithm, name)
        (tagmanifests if match.group(1) else manifests)[algorithm] = entries
    if "sha256" not in manifests:
        raise BagError("has no manifest-sha256.txt", where=str(root))
    if "sha256" not in tagmanifests:
        raise BagError("has no tagmanifest-sha256.txt, so its bag-info.txt is not protected", where=str(root))
    payload = {name for name in on_disk if name.startswith("data/")}
    for algorithm, entries in manifests.items():
        where = f"manifest-{algorithm}.txt"
        for listed in entries:
            if not listed.startswith("data/"):
                raise BagError(f"lists {listed!r}, which is not in the payload folder data/", where=where)
        missing = sorted(set(entries) - payload)
        if missing:
            raise BagError(f"lists {len(missing)} file(s) the bag does not have, e.g. {missing[0]!r}", where=where)
        extra = sorted(payload - set(entries))
        if extra:
            raise BagError(f"does not list {len(extra)} file(s) the bag has, e.g. {extra[0]!r}", where=where)
    for algorithm, entries in tagmanifests.items():
        where = f"tagmanifest-{algorithm}.txt"
        for listed in entries:
            if listed.startswith("data/") or re.fullmatch(r"tagmanifest-[a-z0-9]+\.txt", listed):
                raise BagError(f"lists {listed!r}, which is not a tag file it may list", where=where)
            if listed not in on_disk:
                raise BagError(f"lists {listed!r}, which the bag does not have", where=where)
        for required in ("bagit.txt", "bag-info.txt", *(f"manifest-{a}.txt" for a in manifests)):
            if required not in entries:
                raise BagError(f"does not list {required}", where=where)
    octets = sum(on_disk[p][1] for p in payload)
    _check_oxum(dict(info).get("Payload-Oxum"), octets, len(payload))
    for name in sorted({n for entries in tagmanifests.values() for n in entries}):
        expected = {alg: entries[name] for alg, entries in tagmanifests.items() if name in entries}
        check_payload_file(name, on_disk[name][0], expected)
    pinned = MultiHasher(["sha256"])
    pinned.update(on_disk["tagmanifest-sha256.txt"][0].read_bytes())
    return BagLayout(
        root=root,
        version=version,
        info=tuple(info),
        files={name: on_disk[name][0] for name in sorted(payload)},
        manifests=manifests,
        octets=octets,
        tagmanifest_sha256=pinned.digests().sha256,
    )


def check_bag(root: Path, *, progress: ByteProgress | None = None, workers: int | None = None) -> CheckedBag:
    """Check a bag completely (:func:`check_bag_layout`, then every digest of every payload
    file, on *workers* threads); :class:`BagError` (or :class:`IntegrityError` for a digest that
    does not match) naming the file and what is wrong."""
    layout = check_bag_layout(root)
    checks = [(name, path, layout.expected(name)) for name, path in layout.files.items()]
    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        for _ in pool.map(lambda c: check_payload_file(*c, progress=progress), checks):
            pass
    return CheckedBag(
        root=root,
        version=layout.version,
        info=layout.info,
        files=layout.files,
        sha256=dict(layout.manifests["sha256"]),
        octets=layout.octets,
        tagmanifest_sha256=layout.tagmanifest_sha256,
    )


def _check_oxum(declared: str | None, octets: int, count: int) -> None:
    if declared is None:
        raise BagError("has no Payload-Oxum", where="bag-info.txt")
    match = re.fullmatch(r"(\d+)\.(\d+)", declared.strip())
    if match is None:
        raise BagError(f"Payload-Oxum {declared!r} is not '<bytes>.<files>'", where="bag-info.txt")
    want_octets, want_count = int(match.group(1)), int(match.group(2))
    if want_octets > octets or want_count > count:
        raise BagError(
            f"declares {want_octets} bytes in {want_count} file(s) (Payload-Oxum) but holds {octets} bytes "
            f"in {count} file(s)",
            where="bag-info.txt",
        )
    if (want_octets, want_count) != (octets, count):
        raise BagError(f"Payload-Oxum {declared} does not match the payload ({octets}.{count})", where="bag-info.txt")


def check_payload_file(
    name: str, path: Path, expected: Mapping[str, str], *, progress: ByteProgress | None = None
) -> None:
    """Hash the bag's file *name* (at *path*) and compare it with the digests its manifests give
    (*expected*, by algorithm): :class:`IntegrityError` for one that differs."""
    try:
        with open(path, "rb", buffering=0) as stream:
            digests, _ = hash_stream(stream, tuple(expected), progress=progress)
    except OSError as exc:
        raise BagError(f"cannot be read ({exc.strerror})", where=name) from exc
    compare_digests(name, digests.as_dict(), expected)


def compare_digests(name: str, found: Mapping[str, str | None], expected: Mapping[str, str]) -> None:
    """:class:`IntegrityError` naming the bag's file *name* when a digest *found* is not the one
    its manifest gives (*expected*, by algorithm)."""
    for algorithm, want in expected.items():
        got = found.get(algorithm)
        if got != want:
            raise IntegrityError(f"{algorithm} is {got}, the manifest says {want}", where=name)
