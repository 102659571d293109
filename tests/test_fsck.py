"""fsck: what interrupted work leaves behind is listed and, when old enough, removed and logged;
nothing a record claims is ever touched.  A writer racing ``fsck --remove`` for the same bytes
fails cleanly (never a record whose bytes are gone), and a removal that cannot be logged says
what it removed."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evidence_catalog import Catalog
from evidence_catalog.custody import Action
from evidence_catalog.errors import StorageError
from evidence_catalog.store.blobstore import BlobStore


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _orphan(catalog: Catalog, data: bytes) -> str:
    """Bytes in the blob store that no record claims (as an import killed before its commit leaves)."""
    sha = hashlib.sha256(data).hexdigest()
    path = catalog.blobs.path_for(sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return sha


def test_a_clean_catalog_is_clean(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    catalog.add([tmp_path / "a.txt"])
    report = catalog.fsck()
    assert report.clean and not report.orphaned_blobs and not report.temporary


def test_orphans_and_temporary_files_are_listed_and_old_ones_removed_and_logged(
    catalog: Catalog, tmp_path: Path
) -> None:
    (tmp_path / "kept.txt").write_text("kept")
    [kept] = catalog.add([tmp_path / "kept.txt"])
    old_sha = _orphan(catalog, b"left by a killed import")
    young_sha = _orphan(catalog, b"being committed right now")
    _age(catalog.blobs.path_for(old_sha), 7200)
    catalog.blobs.tmp_dir.mkdir(exist_ok=True)
    part = catalog.blobs.tmp_dir / "abc.part"
    part.write_bytes(b"half a file")
    _age(part, 7200)
    events_before = len(catalog.history())

    listed = catalog.fsck()
    assert not listed.clean
    assert {e.sha256 for e in listed.orphaned_blobs} == {old_sha, young_sha}
    assert [e.path for e in listed.temporary] == ["blobs/tmp/abc.part"]
    assert len(catalog.history()) == events_before  # listing changes nothing

    report = catalog.fsck(remove=True)
    assert {e.sha256 for e in report.removed if e.sha256} == {old_sha}
    assert "blobs/tmp/abc.part" in {e.path for e in report.removed}
    assert not catalog.blobs.path_for(old_sha).exists() and not part.exists()
    assert catalog.blobs.path_for(young_sha).exists()  # too young: a writer may be about to claim it
    assert catalog.blobs.path_for(kept.sha256).exists()  # claimed: never touched
    assert not report.clean
    last = catalog.history()[-1]
    assert last.action == Action.CATALOG_FSCK
    assert {item["sha256"] for item in last.details["removed"]} == {old_sha, None}
    assert catalog.verify(record_event=False).ok


def test_work_areas_a_killed_analysis_left_are_listed_and_removed_when_past_the_grace(catalog: Catalog) -> None:
    """An add or capture killed inside an analysis leaves its work area (named, with its lock
    file, no process holding the lock); killed between making the area and naming it, a
    ``.making-`` folder.  Both are listed, and removed once older than the grace asked for."""
    area = catalog.path / "tmp"
    named = area / "capture-analyze-01a245f4-0039-7600-9a76-595d418659b9"
    (named / "perceptual").mkdir(parents=True)
    (named / ".lock").touch()
    (named / "perceptual" / "keyframe-0.jpg").write_bytes(b"half a keyframe")
    making = area / ".making-analyze-01a245f4-0039-7600-9a76-595d418659ba"
    making.mkdir()
    (making / ".lock").touch()
    # Killed while removing its area at its end: the lock file gone, the rest not (seen once).
    half_removed = area / "capture-analyze-01a245f4-0039-7600-9a76-595d418659bc"
    (half_removed / "c2pa").mkdir(parents=True)
    in_use = area / "capture-analyze-01a245f4-0039-7600-9a76-595d418659bb"
    in_use.mkdir()
    with open(in_use / ".lock", "w") as lock:
        import fcntl

        fcntl.flock(lock, fcntl.LOCK_EX)  # a process at work in it right now
        listed = catalog.fsck()
        left = (named, making, half_removed, in_use)
        assert {e.path for e in listed.temporary} == {f"tmp/{p.name}" for p in left}
        assert catalog.fsck(remove=True).removed == ()  # younger than an hour: kept
        report = catalog.fsck(remove=True, grace_seconds=0)
        assert {e.path for e in report.removed} == {f"tmp/{p.name}" for p in (named, making, half_removed)}
        assert not named.exists() and not making.exists() and not half_removed.exists() and in_use.exists()
    assert catalog.history()[-1].action == Action.CATALOG_FSCK
    assert {e.path for e in catalog.fsck(remove=True, grace_seconds=0).removed} == {f"tmp/{in_use.name}"}
    assert catalog.fsck().clean and catalog.verify(record_event=False).ok


def test_a_blob_claimed_meanwhile_is_not_removed(catalog: Catalog, tmp_path: Path) -> None:
    data = b"stored first, committed later"
    sha = _orphan(catalog, data)
    _age(catalog.blobs.path_for(sha), 7200)
    (tmp_path / "same.bin").write_bytes(data)
    catalog.add([tmp_path / "same.bin"])  # now a record claims exactly those bytes
    report = catalog.fsck(remove=True)
    assert not report.orphaned_blobs and not report.removed
    assert catalog.blobs.path_for(sha).exists()


def test_quarantined_copies_are_listed_and_kept(catalog: Catalog) -> None:
    quarantine = catalog.blobs.root / "quarantine"
    quarantine.mkdir()
    damaged = quarantine / "deadbeef.damaged"
    damaged.write_bytes(b"x")
    _age(damaged, 7200)
    report = catalog.fsck(remove=True)
    assert [e.path for e in report.quarantined] == ["blobs/quarantine/deadbeef.damaged"]
    assert damaged.exists() and report.clean


def test_cli_fsck(catalog: Catalog, run_cli: Any) -> None:
    path = str(catalog.path)
    assert run_cli("fsck", "--catalog", path).code == 0
    sha = _orphan(catalog, b"orphan")
    _age(catalog.blobs.path_for(sha), 7200)
    result = run_cli("fsck", "--catalog", path)
    assert result.code == 1 and sha in result.out and "orphaned blob" in result.out
    result = run_cli("fsck", "--catalog", path, "--remove")
    assert result.code == 0 and "removed" in result.out and result.out.rstrip().endswith("clean")
    assert not catalog.blobs.path_for(sha).exists()


# -- fsck --remove and a concurrent writer -------------------------------------------------------


def _blob_file(catalog: Catalog, sha256: str) -> Path:
    """The file holding a blob of a catalog whose blobs are in its folder."""
    assert isinstance(catalog.blobs, BlobStore)
    return catalog.blobs.path_for(sha256)


def _old_orphan(catalog: Catalog, data: bytes) -> str:
    """Bytes stored and never catalogued (as an add killed before its commit leaves them), an
    hour old: what ``fsck --remove`` deletes."""
    blob = catalog.blobs.put_stream(io.BytesIO(data))
    _age(_blob_file(catalog, blob.sha256), 3600)
    return blob.sha256


@pytest.mark.no_postgresql_pass
@pytest.mark.parametrize(
    "removed",
    [
        "just before the commit",
        "right after they were stored",
    ],
)
def test_bytes_removed_before_they_are_catalogued_fail_the_add_and_change_nothing(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, removed: str
) -> None:
    """A concurrent ``fsck --remove`` deletes the orphan an ``add`` of the same bytes has just
    taken as stored (the deletion itself done here, at the moment named)."""
    data = b"bytes an interrupted import left behind"
    sha = _old_orphan(catalog, data)
    (tmp_path / "again.bin").write_bytes(data)
    records, events = catalog.record_ids(), len(catalog.history())
    store_bytes, write = catalog.blobs.put_stream, catalog.db.write

    def stored_then_removed(*args: Any, **kwargs: Any) -> Any:
        stored = store_bytes(*args, **kwargs)
        assert not stored.created  # the orphan was taken as it is ...
        _blob_file(catalog, stored.sha256).unlink()  # ... and is deleted now
        return stored

    @contextlib.contextmanager
    def removed_then_written(**options: Any) -> Iterator[Any]:
        _blob_file(catalog, sha).unlink(missing_ok=True)
        with write(**options) as session:
            yield session

    if removed == "just before the commit":
        monkeypatch.setattr(catalog.db, "write", removed_then_written)
    else:
        monkeypatch.setattr(catalog.blobs, "put_stream", stored_then_removed)
    with pytest.raises(StorageError, match="removed before they could be catalogued"):
        catalog.add([tmp_path / "again.bin"])
    monkeypatch.undo()
    assert catalog.record_ids() == records and len(catalog.history()) == events
    assert catalog.verify(record_event=False).ok
    [added] = catalog.add([tmp_path / "again.bin"])  # run again: stored anew and catalogued
    assert added.sha256 == sha and added.new_bytes
    assert catalog.blobs.exists(sha) and catalog.verify(record_event=False).ok


@pytest.mark.no_postgresql_pass
def test_a_writer_claiming_an_orphan_that_fsck_removes_meanwhile_fails_cleanly(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interleaving, step by step: a writer stores bytes that are there already (an old
    orphan) and reads them; ``fsck --remove`` deletes that orphan; then the writer commits its
    record -- which must fail, never claim bytes the store no longer holds."""
    data = b"an orphan about to be claimed"
    sha = _old_orphan(catalog, data)
    (tmp_path / "claim.bin").write_bytes(data)
    stored, go_on = threading.Event(), threading.Event()
    outcome: list[BaseException | list[Any]] = []
    with Catalog.open(catalog.path, operator="Writer <w@example.org>") as writer:
        write = writer.db.write

        @contextlib.contextmanager
        def wait_then_write(**options: Any) -> Iterator[Any]:
            stored.set()  # the bytes are stored and described: the record is about to be written
            assert go_on.wait(30)
            with write(**options) as session:
                yield session

        monkeypatch.setattr(writer.db, "write", wait_then_write)

        def add() -> None:
            try:
                outcome.append(writer.add([tmp_path / "claim.bin"]))
            except Exception as exc:  # noqa: BLE001  (what it raised is the result)
                outcome.append(exc)

        thread = threading.Thread(target=add)
        thread.start()
        assert stored.wait(30)
        delete = catalog.blobs.delete

        def delete_then_let_the_writer_commit(entry: Any) -> None:
            delete(entry)
            go_on.set()
            time.sleep(0.3)  # the writer tries to commit now

        monkeypatch.setattr(catalog.blobs, "delete", delete_then_let_the_writer_commit)
        report = catalog.fsck(remove=True, grace_seconds=0)
        go_on.set()
        thread.join(60)
    assert [e.sha256 for e in report.removed] == [sha]
    [result] = outcome
    assert isinstance(result, StorageError), result
    assert "removed before they could be catalogued" in str(result)
    assert catalog.record_ids() == []
    assert catalog.verify(record_event=False).ok


_FSCK_LOOP = """
import sys
from pathlib import Path
from evidence_catalog import Catalog
with Catalog.open(sys.argv[1], operator="Cleaner <c@example.org>") as catalog:
    print("ready", flush=True)
    while not Path(sys.argv[2]).exists():
        catalog.fsck(remove=True, grace_seconds=0)
"""


@pytest.mark.no_postgresql_pass
@pytest.mark.slow
def test_fsck_remove_in_a_loop_beside_a_writer_never_leaves_a_record_without_its_bytes(
    catalog: Catalog, tmp_path: Path
) -> None:
    """Another process removes every unclaimed blob and upload, without a grace period, while
    this one adds file after file: an add may fail (and can be run again), but every record
    that is made has its bytes."""
    stop = tmp_path / "stop"
    cleaner = subprocess.Popen(
        [sys.executable, "-c", _FSCK_LOOP, str(catalog.path), str(stop)], stdout=subprocess.PIPE, text=True
    )
    added: dict[str, str] = {}
    try:
        assert cleaner.stdout is not None and cleaner.stdout.readline() == "ready\n"
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            path = tmp_path / f"file-{len(added)}.bin"
            path.write_bytes(f"bytes of file {len(added)} ".encode() * 100)
            for _ in range(20):
                try:
                    [result] = catalog.add([path])
                except StorageError:
                    continue  # its bytes (or its upload) taken by the cleaner: nothing recorded
                assert result.record_id is not None
                added[result.sha256] = result.record_id
                break
    finally:
        stop.touch()
        assert cleaner.wait(30) == 0
    assert added
    assert all(catalog.blobs.exists(sha) for sha in added)
    report = catalog.verify(record_event=False)
    assert report.ok, report.findings
    assert report.artifacts_checked == len(added)


# -- fsck that removed files but cannot log it ---------------------------------------------------


@pytest.mark.no_postgresql_pass
def test_fsck_that_cannot_log_its_removal_says_what_it_removed(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleting cannot be rolled back with the transaction: when the removal cannot be logged,
    the error names what is gone instead of claiming that nothing changed."""
    orphan = _old_orphan(catalog, b"bytes nobody claims")
    path = _blob_file(catalog, orphan)

    def log_refused(*args: Any, **kwargs: Any) -> Any:
        raise StorageError("catalog database could not be written (disk full); nothing was changed")

    monkeypatch.setattr(catalog.db, "append_event", log_refused)
    with pytest.raises(StorageError, match=r"1 unclaimed file\(s\) were removed \(.*" + orphan) as raised:
        catalog.fsck(remove=True, grace_seconds=0)
    monkeypatch.undo()
    assert "could not be logged" in raised.value.message and "nothing was changed;" not in raised.value.message
    assert not path.exists()
    assert [e for e in catalog.history() if e.action == Action.CATALOG_FSCK] == []
