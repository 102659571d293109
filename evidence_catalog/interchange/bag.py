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

import datetime as dt
import os
import re
import stat
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, cast

import attrs

from evidence_catalog.errors import InputError, IntegrityError
from evidence_catalog.hashing import MultiHasher, Readable, hash_stream
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

#: Called with the number of bytes just written or checked.
ByteProgress = Callable[[int], None]


class BagError(InputError):
    """A bag that is not well-formed or safe: a path, a declaration, a file too many or missing."""


# -- writing -------------------------------------------------------------------------------------


class BagWriter:
    """Writes a bag into an empty directory, payload file by payload file."""

    def __init__(self, root: Path, algorithms: Sequence[str] = ("sha256",)) -> None:
        if "sha256" not in algorithms:
            raise ValueError("sha256 is always among a bag's manifests")
        self.root = root
        self.algorithms = tuple(algorithms)
        self.octets = 0
        self.files = 0
        self._manifests = {
            alg: open(root / f"manifest-{alg}.txt", "w", encoding="utf-8", newline="\n")  # noqa: SIM115
            for alg in self.algorithms
        }
        (root / "data").mkdir()

    def _target(self, relative: str) -> Path:
        check_payload_path(relative, where="bag writer")
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def add_stream(self, relative: str, stream: BinaryIO, *, progress: ByteProgress | None = None) -> dict[str, str]:
        """Copy *stream* to the payload path *relative* (``data/...``), hashing it on the way;
        return its digests by algorithm."""
        target = self._target(relative)
        with open(target, "xb") as out:
            digests, size = hash_stream(cast(Readable, stream), self.algorithms, on_block=out.write, progress=progress)
        return self._listed(relative, {alg: getattr(digests, alg) for alg in self.algorithms}, size)

    def add_bytes(self, relative: str, data: bytes) -> dict[str, str]:
        """Write *data* to the payload path *relative*."""
        target = self._target(relative)
        hasher = MultiHasher(self.algorithms)
        hasher.update(data)
        with open(target, "xb") as out:
            out.write(data)
        digests = hasher.digests()
        return self._listed(relative, {alg: getattr(digests, alg) for alg in self.algorithms}, len(data))

    def open_text(self, relative: str) -> _HashingText:
        """A text file in the payload, written piece by piece; :meth:`_HashingText.close` lists it."""
        return _HashingText(self, relative, self._target(relative))

    def _listed(self, relative: str, digests: dict[str, str], size: int) -> dict[str, str]:
        for alg, manifest in self._manifests.items():
            manifest.write(f"{digests[alg]}  {relative}\n")
        self.octets += size
        self.files += 1
        return digests

    def finish(self, info: Sequence[tuple[str, str]]) -> str:
        """Write the manifests out, ``bagit.txt``, ``bag-info.txt`` (*info* plus Payload-Oxum)
        and the tag manifests; return the SHA-256 of ``tagmanifest-sha256.txt`` (it pins every
        byte of the bag)."""
        for manifest in self._manifests.values():
            manifest.close()
        tag_files = ["bagit.txt", "bag-info.txt", *(f"manifest-{alg}.txt" for alg in self.algorithms)]
        _write_text(self.root / "bagit.txt", f"BagIt-Version: {BAGIT_VERSION}\nTag-File-Character-Encoding: UTF-8\n")
        lines = [*info, ("Payload-Oxum", f"{self.octets}.{self.files}")]
        _write_text(self.root / "bag-info.txt", "".join(f"{label}: {_one_line(value)}\n" for label, value in lines))
        pinned = ""
        for alg in self.algorithms:
            text = ""
            for name in tag_files:
                hasher = MultiHasher([alg])
                hasher.update((self.root / name).read_bytes())
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
        """Close what is open (the caller removes the directory)."""
        for manifest in self._manifests.values():
            manifest.close()


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
    if any(unicodedata.category(c) == "Cc" for c in path):
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


def check_bag(root: Path, *, progress: ByteProgress | None = None, workers: int | None = None) -> CheckedBag:
    """Check a bag completely; :class:`BagError` (or :class:`IntegrityError` for a digest that
    does not match) naming the file and what is wrong."""
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
    checks: list[tuple[str, Path, dict[str, str]]] = []
    for name in sorted(payload):
        checks.append((name, on_disk[name][0], {alg: entries[name] for alg, entries in manifests.items()}))
    tag_names = sorted({n for entries in tagmanifests.values() for n in entries})
    for name in tag_names:
        checks.append(
            (name, on_disk[name][0], {alg: entries[name] for alg, entries in tagmanifests.items() if name in entries})
        )
    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        for _ in pool.map(lambda c: _check_file(*c, progress=progress), checks):
            pass
    pinned = MultiHasher(["sha256"])
    pinned.update(on_disk["tagmanifest-sha256.txt"][0].read_bytes())
    return CheckedBag(
        root=root,
        version=version,
        info=tuple(info),
        files={name: on_disk[name][0] for name in sorted(payload)},
        sha256=dict(manifests["sha256"]),
        octets=octets,
        tagmanifest_sha256=pinned.digests().sha256,
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


def _check_file(name: str, path: Path, expected: dict[str, str], *, progress: ByteProgress | None) -> None:
    try:
        with open(path, "rb") as stream:
            digests, _ = hash_stream(stream, tuple(expected), progress=progress)
    except OSError as exc:
        raise BagError(f"cannot be read ({exc.strerror})", where=name) from exc
    for algorithm, want in expected.items():
        got = getattr(digests, algorithm)
        if got != want:
            raise IntegrityError(f"{algorithm} is {got}, the manifest says {want}", where=name)
