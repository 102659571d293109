"""What makes bag exports and imports fast keeps them exact: the indented JSON of a bag's
documents, the copying of artifact files (a kernel copy or a reflink where the file system has
one, then the copy read back and hashed; plain reads and writes otherwise), and an import's
batched checks and inserts.  Real files and real catalogs; no timings (those are in
``benchmarks/bag_speed.py``)."""

from __future__ import annotations

import errno
import gc
import hashlib
import json
import mmap
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import bagit  # type: ignore[import-untyped]
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event as sa_event

from evidence_catalog import Catalog
from evidence_catalog.errors import IntegrityError
from evidence_catalog.interchange import bagfiles
from evidence_catalog.interchange.bag import BagWriter, _Helper, check_bag
from evidence_catalog.interchange.text import indented_json
from evidence_catalog.operations import exporting
from evidence_catalog.serialize import to_document

from .strategies import evidence_records

#: Anything ``json.dumps`` accepts as JSON-ready: every scalar (NaN and the infinities, integers
#: of any size, every string, lone surrogates included), keys of every kind it converts.
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=2)
)
keys = st.text() | st.integers() | st.floats() | st.booleans() | st.none()
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(keys, children, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_indented_json_is_json_dumps_with_indent_2(value: Any) -> None:
    assert indented_json(value) == json.dumps(value, ensure_ascii=False, indent=2)


@settings(max_examples=100, deadline=None)
@given(evidence_records())
def test_a_records_document_is_written_as_json_dumps_writes_it(record: Any) -> None:
    document = to_document(record)
    assert indented_json(document) == json.dumps(document, ensure_ascii=False, indent=2)


def test_values_json_cannot_write_are_refused_as_json_dumps_refuses_them() -> None:
    for value in ({"a": object()}, [1, {2, 3}], {(1, 2): "tuple key"}):
        with pytest.raises(TypeError) as expected:
            json.dumps(value, ensure_ascii=False, indent=2)
        with pytest.raises(TypeError, match=re.escape(str(expected.value))):
            indented_json(value)


# -- export: the bag's files ------------------------------------------------------------------------


def _large(path: Path) -> Path:
    """A file over bagfiles.LARGE_FILE (copied on a worker thread), of distinct bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(bagfiles.LARGE_FILE + 123_457))
    return path


@pytest.fixture
def mixed(catalog: Catalog, tmp_path: Path) -> Catalog:
    """A catalog of one large file and a few small ones (one empty)."""
    sources = [_large(tmp_path / "in" / "video.mp4")]
    for index, size in enumerate((0, 1, 4096, 70_000)):
        sources.append(tmp_path / "in" / f"small-{index}.bin")
        sources[-1].write_bytes(os.urandom(size))
    catalog.add(sources)
    return catalog


def _blob(catalog: Catalog, sha256: str) -> Path:
    return catalog.path / "blobs" / "sha256" / sha256[:2] / sha256[2:4] / sha256


def _bag_files(bag: Path) -> dict[str, bytes]:
    return {p.relative_to(bag).as_posix(): p.read_bytes() for p in sorted(bag.rglob("*")) if p.is_file()}


def _valid(bag: Path) -> None:
    loaded = bagit.Bag(str(bag))
    loaded.validate()
    check_bag(bag)


def _no_kernel_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process writes the bag (no helper), and its kernel cannot copy between these files."""
    monkeypatch.setattr(sys, "executable", "")

    def refuse(*args: Any, **kwargs: Any) -> int:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refuse)


@pytest.mark.parametrize("way", ["helper", "this process", "this process, no kernel copy"])
def test_every_way_of_writing_makes_the_same_valid_bag(
    mixed: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    first = tmp_path / "first"
    mixed.export(first, format="bagit", sha512=True)  # helper process (the default)
    if way == "this process":
        monkeypatch.setattr(sys, "executable", "")  # no interpreter to start: written here
    elif way == "this process, no kernel copy":
        _no_kernel_copy(monkeypatch)
    second = tmp_path / "second"
    mixed.export(second, format="bagit", sha512=True)
    _valid(first)
    _valid(second)
    ours, theirs = _bag_files(first), _bag_files(second)
    assert sorted(ours) == sorted(theirs)
    payload = [name for name in ours if name.startswith("data/records/")]
    assert payload and all(ours[name] == theirs[name] for name in payload)
    # The manifests list the same files, in the same order (the order they were given).
    for manifest in ("manifest-sha256.txt", "manifest-sha512.txt"):
        names = [line.split("  ", 1)[1] for line in ours[manifest].decode().splitlines()]
        assert names == [line.split("  ", 1)[1] for line in theirs[manifest].decode().splitlines()]


def test_the_helper_writes_the_bag_when_it_can_and_this_process_when_it_cannot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    writer = BagWriter(tmp_path / "a")
    assert writer.helper
    writer.abort()
    monkeypatch.setattr(sys, "executable", os.fspath(tmp_path / "no-such-python"))
    (tmp_path / "b").mkdir()
    writer = BagWriter(tmp_path / "b")
    assert not writer.helper
    writer.abort()


@pytest.mark.parametrize("size", ["small", "large"])
@pytest.mark.parametrize("helper", [True, False])
def test_a_stored_blob_that_changed_stops_the_export_and_leaves_nothing(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: str, helper: bool
) -> None:
    source = _large(tmp_path / "in" / "video.mp4") if size == "large" else _photo(tmp_path / "in")
    added, blob = _catalogued(catalog, source, others=3)
    with open(blob, "r+b") as damaged:  # one bit, same size
        first = damaged.read(1)
        damaged.seek(0)
        damaged.write(bytes([first[0] ^ 1]))
    if not helper:
        monkeypatch.setattr(sys, "executable", "")
    events = len(catalog.history())
    (tmp_path / "out").mkdir()
    with pytest.raises(IntegrityError, match=r"stored copy's SHA-256 is now [0-9a-f]{64}; run verify") as raised:
        catalog.export(tmp_path / "out" / "bag", format="bagit")
    assert raised.value.where == f"artifact {added.sha256}"
    assert list((tmp_path / "out").iterdir()) == []  # neither the bag nor its temporary folder
    assert len(catalog.history()) == events  # no export was logged


@pytest.mark.no_postgresql_pass  # the same on every database
@pytest.mark.parametrize("helper", [True, False])
def test_a_stored_blob_of_another_size_is_refused_before_it_is_copied(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helper: bool
) -> None:
    """A file put in a stored blob's place that is larger than the disk (sparse: 1 TiB that
    takes no room) is refused by its size, before a byte of it is copied."""
    added, blob = _catalogued(catalog, _photo(tmp_path / "in"), others=2)
    os.truncate(blob, 1 << 40)
    copied: list[str] = []
    real = bagfiles.copy_file

    def copy_file(source: str, *args: Any, **kwargs: Any) -> Any:
        copied.append(source)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(bagfiles, "copy_file", copy_file)
    if not helper:
        monkeypatch.setattr(sys, "executable", "")
    (tmp_path / "out").mkdir()
    with pytest.raises(IntegrityError, match=rf"holds {1 << 40} bytes, not the 5000 catalogued; run verify") as raised:
        catalog.export(tmp_path / "out" / "bag", format="bagit")
    assert raised.value.where == f"artifact {added.sha256}"
    assert os.fspath(blob) not in copied  # refused before the copy (in this process)
    assert list((tmp_path / "out").iterdir()) == []


def _photo(folder: Path) -> Path:
    source = folder / "photo.jpg"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(os.urandom(5000))
    return source


def _catalogued(catalog: Catalog, source: Path, *, others: int) -> tuple[Any, Path]:
    """*source* added with *others* small files beside it: its result, and its stored blob
    (made writable, for a test to change it)."""
    [added] = catalog.add([source, *_smalls(source.parent, others)])[:1]
    blob = _blob(catalog, added.sha256)
    blob.chmod(0o644)
    return added, blob


def _smalls(folder: Path, count: int) -> list[Path]:
    paths = []
    for index in range(count):
        paths.append(folder / f"note-{index}.txt")
        paths[-1].write_bytes(os.urandom(100 + index))
    return paths


def test_each_copy_is_hashed_as_it_is_in_the_bag_not_as_it_was_read(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernel copy is read back and hashed: a copy that came out wrong (here: a kernel that
    writes one bit wrong) is found, although the stored file is intact."""
    source = tmp_path / "in" / "photo.jpg"
    source.parent.mkdir(parents=True)
    source.write_bytes(os.urandom(20_000))
    [added] = catalog.add([source])
    monkeypatch.setattr(sys, "executable", "")  # this process: its kernel copy can be replaced
    real = os.copy_file_range

    def faulty(src: int, dst: int, count: int, *args: Any) -> int:
        done = real(src, dst, count, *args)
        position = os.lseek(dst, 0, os.SEEK_CUR)
        first = os.pread(dst, 1, 0)
        os.pwrite(dst, bytes([first[0] ^ 1]), 0)
        os.lseek(dst, position, os.SEEK_SET)
        return done

    monkeypatch.setattr(os, "copy_file_range", faulty)
    (tmp_path / "out").mkdir()
    with pytest.raises(IntegrityError, match="stored copy's SHA-256 is now"):
        catalog.export(tmp_path / "out" / "bag", format="bagit")
    assert catalog.verify(record_event=False).ok  # the stored copy is intact
    assert hashlib.sha256(_blob(catalog, added.sha256).read_bytes()).hexdigest() == added.sha256


@pytest.mark.no_postgresql_pass  # the same on every database
@pytest.mark.skipif(not bagfiles.CAN_MAP, reason="no MAP_POPULATE here")
def test_a_copy_on_a_file_system_that_maps_no_files_is_read_back_instead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some file systems map no files (FUSE with direct_io refuses mmap): a bag written there
    is read back by reads, as before memory maps were used, not refused."""
    source = _large(tmp_path / "in" / "video.mp4")
    data = source.read_bytes()

    def refused(*_: Any, **__: Any) -> Any:
        raise OSError(errno.ENODEV, "No such device")

    monkeypatch.setattr(mmap, "mmap", refused)
    (tmp_path / "bag" / "data").mkdir(parents=True)
    done: list[int] = []
    announced: list[tuple[str, bool]] = []
    writer = bagfiles.PayloadWriter(
        os.fspath(tmp_path / "bag"), ("sha256",), 2, done.append, mapping=lambda *said: announced.append(said)
    )
    writer.copy("data/video.mp4", os.fspath(source), hashlib.sha256(data).hexdigest(), "artifact")
    assert writer.finish() == (len(data), 1)
    assert (tmp_path / "bag" / "data" / "video.mp4").read_bytes() == data and sum(done) == len(data)
    manifest = (tmp_path / "bag" / "manifest-sha256.txt").read_text()
    assert manifest == f"{hashlib.sha256(data).hexdigest()}  data/video.mp4\n"
    assert announced == [("data/video.mp4", True), ("data/video.mp4", False)]  # the mapped path was taken


@pytest.mark.no_postgresql_pass  # the same on every database
@pytest.mark.skipif(not bagfiles.CAN_MAP, reason="no MAP_POPULATE here")
def test_a_large_copy_read_back_through_memory_maps_is_hashed_as_it_is_in_the_bag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The helper reads a large file's kernel copy back through windows of a memory map: every
    window counts (here windows of 1 MiB over a file of 8 MiB and a bit), and a copy that came
    out wrong is found as the read-back copy finds it."""
    monkeypatch.setattr(bagfiles, "MAP_WINDOW", 1024 * 1024)
    source = _large(tmp_path / "in" / "video.mp4")
    data = source.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    done: list[int] = []
    (tmp_path / "bag" / "data").mkdir(parents=True)
    announced: list[tuple[str, bool]] = []
    writer = bagfiles.PayloadWriter(
        os.fspath(tmp_path / "bag"), ("sha256", "sha512"), 2, done.append, mapping=lambda *said: announced.append(said)
    )
    writer.copy("data/video.mp4", os.fspath(source), sha256, "artifact")
    assert writer.finish() == (len(data), 1)
    assert announced == [("data/video.mp4", True), ("data/video.mp4", False)]  # read back through maps
    assert (tmp_path / "bag" / "data" / "video.mp4").read_bytes() == data and sum(done) == len(data)
    manifest = (tmp_path / "bag" / "manifest-sha512.txt").read_text()
    assert manifest == f"{hashlib.sha512(data).hexdigest()}  data/video.mp4\n"
    with open(source, "rb") as stream, pytest.raises(OSError, match="holds 8"):
        bagfiles.mapped_digests(stream.fileno(), len(data) - 7, ("sha256",), 1 << 20, None)

    real = os.copy_file_range

    def faulty(src: int, dst: int, count: int, *args: Any) -> int:  # one bit wrong in the copy
        copied = real(src, dst, count, *args)
        os.pwrite(dst, bytes([os.pread(dst, 1, 5_000_000)[0] ^ 1]), 5_000_000)
        return copied

    monkeypatch.setattr(os, "copy_file_range", faulty)
    (tmp_path / "bag2" / "data").mkdir(parents=True)
    writer = bagfiles.PayloadWriter(os.fspath(tmp_path / "bag2"), ("sha256",), 2, mapping=lambda *_: None)
    writer.copy("data/video.mp4", os.fspath(source), sha256, "artifact")
    with pytest.raises(bagfiles.CopyMismatch):
        writer.finish()
    writer.abort()


@pytest.mark.no_postgresql_pass  # the same on every database
@pytest.mark.parametrize("size", [0, 1, 5000, bagfiles.SMALL_BLOCK + 1])
def test_a_copy_is_read_back_to_its_end_whatever_size_it_was_given(tmp_path: Path, size: int) -> None:
    """A small copy is read back in one read; one that holds more than it was said to (it grew)
    or more than a block is read to its end: its digests are of every byte it holds."""
    data = os.urandom(size)
    path = tmp_path / "copy"
    path.write_bytes(data + b"grew")
    done: list[int] = []
    fd = os.open(path, os.O_RDONLY)
    try:
        for said in (size, size + 4):
            copied = bagfiles.read_back(fd, said, ("sha256", "md5"), bagfiles.SMALL_BLOCK, done.append)
            assert copied.size == size + 4 and sum(done) == size + 4
            assert copied.digests == {
                "sha256": hashlib.sha256(data + b"grew").hexdigest(),
                "md5": hashlib.md5(data + b"grew").hexdigest(),
            }
            done.clear()
    finally:
        os.close(fd)


def _helped(root: Path) -> tuple[BagWriter, _Helper]:
    """A bag writer at the new folder *root*, with its writer process, and that process."""
    root.mkdir()
    writer = BagWriter(root)
    assert writer.helper
    files = writer._files
    assert isinstance(files, _Helper)
    return writer, files


def test_a_helper_that_dies_is_an_error_not_a_bag(tmp_path: Path) -> None:
    writer, files = _helped(tmp_path / "bag")
    files._process.kill()
    files._process.wait()

    def write_on() -> None:
        for index in range(2 * _Helper.BATCH):  # enough to send a batch to it
            writer.add_bytes(f"data/file-{index}.txt", b"x")
        writer.finish([])

    with pytest.raises(OSError, match="file writer stopped"):
        write_on()
    writer.abort()


@pytest.mark.no_postgresql_pass  # the same on every database
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_stored_file_replaced_by_a_pipe_or_a_device_is_refused_not_waited_for(tmp_path: Path) -> None:
    """A stored file replaced by a named pipe would hold the writer (and its helper, past the
    export's end) until some program wrote into it; a device such as /dev/zero would be read
    until the disk was full.  Neither is a stored file: the copy is refused at once."""
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    unblock = threading.Timer(5, lambda: os.close(os.open(pipe, os.O_WRONLY)))  # a hung open ends
    unblock.start()
    (tmp_path / "bag" / "data").mkdir(parents=True)
    writer = bagfiles.PayloadWriter(os.fspath(tmp_path / "bag"), ("sha256",), 1)
    writer._kernel_copy[0] = False  # read and written by hand: a device is read to its end
    try:
        for source in (pipe, Path("/dev/zero")):
            with pytest.raises(OSError, match="not a regular file") as raised:
                writer.copy(f"data/{source.name}", os.fspath(source), hashlib.sha256().hexdigest(), "artifact")
            assert raised.value.filename == os.fspath(source)
    finally:
        unblock.cancel()
        writer.abort()


_FULL_DISK = """
import os, resource, sys
from pathlib import Path
from evidence_catalog.interchange.bag import BagWriter
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # no file over 4 KiB: like a full disk
root = Path(sys.argv[1])
root.mkdir()
writer = BagWriter(root, helper=sys.argv[2] == "helper")
try:
    for index in range(60):  # manifest lines (over 4 KiB of them) wait in the manifest's buffer
        writer.add_bytes(f"data/file-{index}.txt", b"x")
    writer.add_bytes("data/large.bin", bytes(5000))
    writer.finish([])
except OSError as exc:
    writer.abort()  # must not raise in turn
    print(exc.errno, exc.strerror)
"""


_CUT_SHORT = """
import mmap, os, sys
sys.path.insert(0, sys.argv.pop(1))
import bagfiles
real = mmap.mmap

def mapped_then_cut(fd, length, **kwargs):  # another program cuts the bag's copy short under the map
    window = real(fd, length, **kwargs)
    os.ftruncate(fd, 4096)
    return window

mmap.mmap = mapped_then_cut
sys.exit(bagfiles.serve(sys.argv[1], sys.argv[3].split(","), int(sys.argv[2])))
"""


@pytest.mark.no_postgresql_pass  # the same on every database
@pytest.mark.skipif(not bagfiles.CAN_MAP or not hasattr(signal, "SIGBUS"), reason="no MAP_POPULATE here")
def test_a_copy_cut_short_under_its_memory_map_is_said_with_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The helper's read-back of a large copy through a memory map ends it with SIGBUS when the
    copy is cut short meanwhile: the caller says so, naming the file, and leaves no process."""
    script = tmp_path / "helper.py"
    script.write_text(_CUT_SHORT)
    real_popen = subprocess.Popen

    def popen(argv: list[str], **kwargs: Any) -> Any:  # the real helper, its maps cut short
        assert argv[3] == bagfiles.__file__
        return real_popen([*argv[:3], os.fspath(script), os.path.dirname(bagfiles.__file__), *argv[4:]], **kwargs)

    monkeypatch.setattr(subprocess, "Popen", popen)
    source = _large(tmp_path / "in" / "video.mp4")
    writer, files = _helped(tmp_path / "bag")
    writer.add_file("data/video.mp4", source, sha256=hashlib.sha256(source.read_bytes()).hexdigest(), where="video")
    with pytest.raises(OSError, match=r"SIGBUS.*data/video\.mp4"):
        writer.finish([])
    writer.abort()
    assert files._process.returncode == -signal.SIGBUS


@pytest.mark.no_postgresql_pass  # the same on every database
@pytest.mark.skipif(sys.platform == "win32", reason="no file size limits (resource)")
@pytest.mark.parametrize("where", ["helper", "in-process"])
def test_a_full_disk_is_said_as_such_not_as_a_writer_that_stopped(tmp_path: Path, where: str) -> None:
    """The disk fills up (here: a limit on a file's size, which the helper inherits): the export
    says so.  Stopping after it, the writer cannot write its manifests' last lines out either;
    that must not hide why it stopped (the helper died of it, and the caller only knew that the
    writer had stopped)."""
    run = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, os.fspath(tmp_path / "bag"), where],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split(" ", 1)[0] == str(errno.EFBIG), run.stdout


@pytest.mark.no_postgresql_pass  # the same on every database
def test_the_cycle_collector_is_paused_while_a_bag_is_written_and_turned_on_again(
    mixed: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Paused while the records and events are written; one the caller had turned off stays
    # off, and one that was on is on again however the export ends.
    enabled: list[bool] = []
    real = exporting.write_payload

    def write_payload(*args: Any, **kwargs: Any) -> Any:
        enabled.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(exporting, "write_payload", write_payload)
    assert gc.isenabled()
    mixed.export(tmp_path / "on", format="bagit")
    assert enabled == [False] and gc.isenabled()
    _valid(tmp_path / "on")
    gc.disable()
    try:
        mixed.export(tmp_path / "off", format="bagit")
        assert not gc.isenabled()
    finally:
        gc.enable()

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise IntegrityError("stopped", where="test")

    monkeypatch.setattr(exporting, "write_payload", failing)
    with pytest.raises(IntegrityError, match="stopped"):
        mixed.export(tmp_path / "failed", format="bagit")
    assert gc.isenabled() and not (tmp_path / "failed").exists()


# -- import: each file read once, the records written in a few statements --------------------------


@pytest.fixture
def source_bags(tmp_path: Path, operator: Any) -> dict[int, Path]:
    """Bags of 4 and of 24 records (one small file each, one of them large), of one catalog."""
    with Catalog.init(tmp_path / "source", operator=operator) as source:
        files = [_large(tmp_path / "in" / "video.mp4"), *_smalls(tmp_path / "in", 23)]
        results = source.add(files, batch=100)
        bags = {}
        for count in (4, 24):
            bags[count] = tmp_path / f"bag-{count}"
            source.export(bags[count], format="bagit", record_ids=[r.record_id for r in results[:count]])
    return bags


class _Counting:
    """A file opened for reading whose bytes read are counted."""

    def __init__(self, stream: Any, counts: dict[str, int], name: str) -> None:
        self._stream, self._counts, self._name = stream, counts, name

    def readinto(self, buffer: Any) -> Any:
        n = self._stream.readinto(buffer)
        self._counts[self._name] = self._counts.get(self._name, 0) + (n or 0)
        return n

    def read(self, *args: Any) -> Any:
        data = self._stream.read(*args)
        self._counts[self._name] = self._counts.get(self._name, 0) + len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __enter__(self) -> _Counting:
        return self

    def __exit__(self, *args: Any) -> None:
        self._stream.close()


def test_an_import_reads_each_artifact_file_of_the_bag_once(
    source_bags: dict[int, Path], tmp_path: Path, operator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bag = source_bags[24]
    artifacts = {p.relative_to(bag).as_posix(): p.stat().st_size for p in bag.glob("data/records/*/artifacts/*")}
    counts: dict[str, int] = {}
    real_open = open

    def counting_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        stream = real_open(file, mode, *args, **kwargs)
        try:
            name = Path(os.fsdecode(file)).resolve().relative_to(bag.resolve()).as_posix()
        except (TypeError, ValueError):
            return stream
        return _Counting(stream, counts, name) if name in artifacts and "b" in mode else stream

    with Catalog.init(tmp_path / "dest", operator=operator) as dest:
        with monkeypatch.context() as patched:
            patched.setattr("builtins.open", counting_open)
            result = dest.import_records(bag)
        assert len(result.records_added) == 24 and result.artifacts_stored == 24
        assert dest.verify(record_event=False).ok
    assert {name: counts.get(name, 0) for name in artifacts} == artifacts  # every byte read, once


def _statements_and_fsyncs(bag: Path, folder: Path, operator: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    statements, fsyncs = [0], [0]
    real_fsync = os.fsync

    def count_statement(*args: Any) -> None:
        statements[0] += 1

    def count_fsync(fd: int) -> None:
        fsyncs[0] += 1
        real_fsync(fd)

    # (monkeypatch.context, not undo(): undoing every patch would also undo the one that gives
    # a catalog its database on the PostgreSQL run, and the second catalog would be SQLite's)
    with Catalog.init(folder, operator=operator) as dest, monkeypatch.context() as patched:
        sa_event.listen(sa.engine.Engine, "before_cursor_execute", count_statement)
        patched.setattr(os, "fsync", count_fsync)
        try:
            dest.import_records(bag)
        finally:
            sa_event.remove(sa.engine.Engine, "before_cursor_execute", count_statement)
    return statements[0], fsyncs[0]


def test_an_import_writes_its_records_in_a_few_statements_and_flushes_its_files_once(
    source_bags: dict[int, Path], tmp_path: Path, operator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    few = _statements_and_fsyncs(source_bags[4], tmp_path / "few", operator, monkeypatch)
    many = _statements_and_fsyncs(source_bags[24], tmp_path / "many", operator, monkeypatch)
    # 20 records more: no statement and no fsync per record or per file (it was some ten
    # statements and three fsyncs each)
    assert many[0] - few[0] <= 4, (few, many)
    assert many[1] == few[1], (few, many)
