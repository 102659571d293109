"""A stored copy found damaged when an operation stores the same bytes again is moved aside, never
deleted, and the good bytes take its place.  ``add`` has always said so in its event
(``damaged_copy_quarantined``); ingests, captures and analyses say it in a ``copies.quarantined``
event of their own transaction (each copy's SHA-256 and where it is kept), in their results and on
the command line -- the blob store's bytes under an address are never replaced without the log
saying so.  Real catalogs, real files, real HTTP on 127.0.0.1."""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path
from typing import Any

import pytest

from evidence_catalog import Catalog
from evidence_catalog.errors import EvidenceError, StorageError
from tests import test_capture_cli
from tests.conftest import make_jpeg
from tests.media_server import MediaServer
from tests.test_analyze import picture
from tests.test_capture_cli import CLIP, FAST
from tests.test_digest import DIGEST
from tests.test_ingest import _telegram_export

#: The capture tests' server (127.0.0.1), one for this module too: a clip and a page showing it.
server = test_capture_cli.server


def damage(catalog: Catalog, sha256: str, text: str = "tampered") -> Path:
    """Overwrite the stored copy of *sha256* (as an attacker or a failing disk would)."""
    stored = catalog.artifact_path(sha256)
    stored.chmod(0o644)
    stored.write_text(text, encoding="utf-8")
    return stored


def quarantined_events(catalog: Catalog) -> list[list[dict[str, str]]]:
    """The copies each ``copies.quarantined`` event names, in log order."""
    return [e.details["copies"] for e in catalog.history() if e.action == "copies.quarantined"]


def kept(catalog: Catalog, moved: list[dict[str, str]] | tuple[tuple[str, str], ...]) -> dict[str, bytes]:
    """What each quarantined copy named holds, by SHA-256."""
    pairs = [(m["sha256"], m["kept_as"]) if isinstance(m, dict) else m for m in moved]
    return {sha256: (catalog.path / "blobs" / kept_as).read_bytes() for sha256, kept_as in pairs}


def test_an_ingest_that_stores_bytes_over_a_damaged_copy_says_so_in_the_log(
    catalog: Catalog, tmp_path: Path, run_cli: Any
) -> None:
    digest = tmp_path / "digest.txt"
    digest.write_text(DIGEST, encoding="utf-8")
    photo = make_jpeg()
    folder = _telegram_export(tmp_path / "ChatExport", photo=photo)
    # The digest file and the export's photo were added as files first; then their stored
    # copies were damaged.
    [added_digest, added_photo] = catalog.add([digest, *sorted((folder / "photos").iterdir())], analyze=False)
    damage(catalog, added_digest.sha256, "not the digest")
    damage(catalog, added_photo.sha256, "not the photo")
    assert not catalog.verify(record_event=False).ok

    result = catalog.ingest(digest)
    [(sha256, kept_as)] = result.quarantined
    assert sha256 == added_digest.sha256 and kept_as.startswith(f"quarantine/{sha256}.")
    assert quarantined_events(catalog) == [[{"sha256": sha256, "kept_as": kept_as}]]
    assert catalog.history()[-1].action == "copies.quarantined"  # in the ingest's transaction
    assert kept(catalog, result.quarantined) == {sha256: b"not the digest"}
    assert catalog.artifact_path(sha256).read_bytes() == digest.read_bytes()

    # Through the command, the media of a Telegram export: said on stderr, and in the log.
    said = run_cli("ingest", "--catalog", catalog.path, folder, "--no-analyze")
    assert said.code == 0, said.err
    moved = quarantined_events(catalog)[-1]
    assert [m["sha256"] for m in moved] == [added_photo.sha256]
    assert kept(catalog, moved) == {added_photo.sha256: b"not the photo"}
    assert (
        f"warning: the stored copy of {added_photo.sha256} was damaged; it was replaced by these bytes "
        f"and kept as blobs/{moved[0]['kept_as']}"
    ) in said.err
    assert catalog.artifact_path(added_photo.sha256).read_bytes() == photo
    assert catalog.verify().ok


def test_operations_over_sound_copies_log_no_quarantine(catalog: Catalog, server: MediaServer, tmp_path: Path) -> None:
    digest = tmp_path / "digest.txt"
    digest.write_text(DIGEST, encoding="utf-8")
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(CLIP)
    catalog.add([digest, clip], analyze=False)
    assert catalog.ingest(digest).quarantined == ()
    captured = catalog.capture_url(server.url("/clip.mp4"), analyze=False)
    assert captured.ok and captured.quarantined == ()
    assert quarantined_events(catalog) == []


def test_a_capture_that_stores_bytes_over_a_damaged_copy_says_so_in_the_log(
    catalog: Catalog, server: MediaServer, tmp_path: Path, run_cli: Any
) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(CLIP)
    [added] = catalog.add([clip], analyze=False)
    damage(catalog, added.sha256)
    said = run_cli("capture", server.url("/watch"), "--catalog", catalog.path, "--no-analyze", *FAST)
    assert said.code == 0, said.err
    [moved] = quarantined_events(catalog)
    assert [m["sha256"] for m in moved] == [hashlib.sha256(CLIP).hexdigest()]
    assert kept(catalog, moved) == {added.sha256: b"tampered"}
    actions = [e.action for e in catalog.history()]
    assert actions[-2:] == ["media.captured", "copies.quarantined"]
    assert catalog.artifact_path(added.sha256).read_bytes() == CLIP
    assert f"warning: the stored copy of {added.sha256} was damaged" in said.err
    assert f"kept as blobs/{moved[0]['kept_as']}" in said.err
    assert catalog.verify().ok


def test_an_analysis_run_again_over_a_damaged_copy_says_so_though_it_adds_nothing(
    catalog: Catalog, tmp_path: Path
) -> None:
    """Analysed again (``force``), a picture gives the very document stored the first time: the
    record gains nothing and no ``media.analyzed`` event is written.  The document's stored copy,
    damaged meanwhile, was replaced all the same: the log says so."""
    [added] = catalog.add([picture(tmp_path / "a.jpg")])
    [(document, _)] = catalog.analyses(added.record_id)
    damage(catalog, document, "not the analysis")
    assert not catalog.verify(record_event=False).ok
    before = [e.action for e in catalog.history()]
    [again] = catalog.analyze([added.record_id], force=True)
    assert not again.new and [sha for sha, _ in again.quarantined] == [document]
    assert [e.action for e in catalog.history()] == [*before, "copies.quarantined"]
    [moved] = quarantined_events(catalog)
    assert kept(catalog, moved) == {document: b"not the analysis"}
    assert catalog.verify().ok


def test_an_import_that_stores_bytes_over_a_damaged_copy_says_so_in_the_log(
    tmp_path: Path, operator: Any, run_cli: Any
) -> None:
    """A copy no record describes (left by an import that was killed, say), damaged since: an
    import that brings those bytes stores them, and logs the damaged copy it moved aside."""
    evidence = tmp_path / "evidence.txt"
    evidence.write_bytes(b"the evidence as exported")
    with Catalog.init(tmp_path / "source", operator=operator) as source:
        [added] = source.add([evidence], analyze=False)
        source.export(tmp_path / "bag", format="bagit")
    with Catalog.init(tmp_path / "target", operator=operator) as target:
        left = target.artifact_path(added.sha256)
        left.parent.mkdir(parents=True, exist_ok=True)
        left.write_bytes(b"a damaged copy left behind")
    said = run_cli("import", "--catalog", tmp_path / "target", tmp_path / "bag")
    assert said.code == 0, said.err
    with Catalog.open(tmp_path / "target") as target:
        [moved] = quarantined_events(target)
        assert kept(target, moved) == {added.sha256: b"a damaged copy left behind"}
        assert target.artifact_path(added.sha256).read_bytes() == b"the evidence as exported"
        assert f"warning: the stored copy of {added.sha256} was damaged" in said.err
        assert target.verify().ok


def test_an_auto_archiver_import_over_a_damaged_copy_says_so_in_the_log(catalog: Catalog, tmp_path: Path) -> None:
    import shutil

    from tests.aa_rows import FIXTURE, P

    first = tmp_path / "first"
    shutil.copytree(FIXTURE, first)
    catalog.import_auto_archiver(first, analyze=False)
    records = {r.acquisitions[0].requested_url: r for r in catalog.records()}
    clip = records[P + "clip.mp4"].artifacts[0].artifact.sha256
    damage(catalog, clip)
    second = tmp_path / "second"  # the same archive under other URLs: its files are stored again
    shutil.copytree(FIXTURE, second)
    csv = second / "db.csv"
    csv.write_text(csv.read_text(encoding="utf-8").replace(P, P + "mirror/"), encoding="utf-8")
    result = catalog.import_auto_archiver(second, analyze=False)
    assert result.records_added
    [moved] = quarantined_events(catalog)
    assert kept(catalog, moved) == {clip: b"tampered"}
    assert catalog.verify().ok


# -- an operation that fails after a damaged copy was moved aside ---------------------------------
# (From a hostile review: the move was said in the failed operation's transaction, rolled back.)


def test_an_ingest_that_fails_after_moving_a_damaged_copy_still_logs_the_move(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = make_jpeg()
    folder = _telegram_export(tmp_path / "ChatExport", photo=photo)
    [added] = catalog.add(sorted((folder / "photos").iterdir()), analyze=False)
    damage(catalog, added.sha256)

    def full(*_: Any) -> None:
        raise StorageError("the disk is full")

    monkeypatch.setattr(catalog.db, "insert_rows", full)
    with pytest.raises(StorageError, match="the disk is full"):
        catalog.ingest(folder)
    monkeypatch.undo()
    [moved] = quarantined_events(catalog)
    assert kept(catalog, moved) == {added.sha256: b"tampered"}
    assert [e.action for e in catalog.history()][-1] == "copies.quarantined"  # and nothing of the ingest
    assert catalog.artifact_path(added.sha256).read_bytes() == photo  # the good bytes stay: a record holds them
    assert catalog.verify().ok
    # Ingested again: the copy is sound now, nothing more to say.
    catalog.ingest(folder)
    assert len(quarantined_events(catalog)) == 1


def test_a_capture_that_fails_after_moving_a_damaged_copy_still_logs_the_move(
    catalog: Catalog, server: MediaServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evidence_catalog.operations import capturing

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(CLIP)
    [added] = catalog.add([clip], analyze=False)
    damage(catalog, added.sha256)
    store = capturing.store_captured
    calls = []

    def second_fails(ctx: Any, item: Any) -> Any:
        calls.append(item)
        if len(calls) == 2:
            raise StorageError("the disk is full")
        return store(ctx, item)

    monkeypatch.setattr(capturing, "store_captured", second_fails)
    result = catalog.capture_url(server.url("/clip.mp4"), analyze=False)
    assert not result.ok
    actions = [e.action for e in catalog.history()]
    assert "capture.failed" in actions and "copies.quarantined" in actions
    [moved] = quarantined_events(catalog)
    assert kept(catalog, moved) == {added.sha256: b"tampered"}
    assert catalog.verify().ok


def test_a_damaged_copy_moved_aside_whose_good_bytes_could_not_be_linked_is_logged(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The blob store moved the damaged copy aside, then could not put the good bytes in its
    place (a full disk): the add fails, the address is empty -- ``verify`` says the bytes are
    missing -- and the log says where the damaged copy went."""
    from evidence_catalog.store.blobstore import BlobStore

    evidence = tmp_path / "ev.txt"
    evidence.write_text("the evidence", encoding="utf-8")
    [added] = catalog.add([evidence], analyze=False)
    damage(catalog, added.sha256)

    def no_space(*_: Any, **__: Any) -> bool:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(BlobStore, "_link_into_place", no_space)
    with pytest.raises(EvidenceError):
        catalog.add([evidence], analyze=False)
    monkeypatch.undo()
    [moved] = quarantined_events(catalog)
    assert kept(catalog, moved) == {added.sha256: b"tampered"}
    assert not catalog.verify(record_event=False).ok  # the bytes are missing, and that is said
    catalog.add([evidence], analyze=False)  # the same file again puts them back
    assert catalog.verify().ok


def test_an_add_names_the_damaged_copy_in_its_own_event_and_the_log_says_it_once(
    catalog: Catalog, tmp_path: Path
) -> None:
    evidence = tmp_path / "ev.txt"
    evidence.write_text("the evidence", encoding="utf-8")
    [added] = catalog.add([evidence], analyze=False)
    damage(catalog, added.sha256)
    [again] = catalog.add([evidence], analyze=False)
    assert again.quarantined is not None
    assert catalog.history()[-2].details["damaged_copy_quarantined"] == again.quarantined
    assert quarantined_events(catalog) == [[{"sha256": added.sha256, "kept_as": again.quarantined}]]
    assert catalog._ctx.blobs.moved == []  # said, and taken off the list


def test_an_add_in_batches_says_each_move_once_whichever_batch_commits_first(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(From a hostile review.)  While one batch's files are synced, the next batch's files are
    stored: a damaged copy moved aside then is said by the first transaction to commit, once."""
    import time

    files = []
    for n in range(4):
        files.append(tmp_path / f"f{n}.txt")
        files[-1].write_text(f"file {n}", encoding="utf-8")
    first = catalog.add(files, analyze=False, batch=1)
    damage(catalog, first[2].sha256)
    sync = catalog._ctx.blobs.sync

    def slow_sync(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)  # a slow disk: the next batch is stored meanwhile
        return sync(*args, **kwargs)

    monkeypatch.setattr(catalog._ctx.blobs, "sync", slow_sync)
    catalog.add(files, analyze=False, batch=2)
    said = [copy for copies in quarantined_events(catalog) for copy in copies]
    assert [c["sha256"] for c in said] == [first[2].sha256]
    assert kept(catalog, said) == {first[2].sha256: b"tampered"}
    assert catalog.verify().ok


def test_a_move_the_log_cannot_say_now_is_warned_of_never_hides_the_error_and_is_tried_once(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(From a hostile review.)  An add that fails after a damaged copy was moved aside, when
    the catalog cannot be written to at that moment either: the caller gets the add's own
    error, a warning names where the copy is kept, and later calls -- reads too -- do not try
    again and again (the next change to the catalog says it)."""
    from evidence_catalog.store.blobstore import BlobStore

    evidence = tmp_path / "ev.txt"
    evidence.write_text("the evidence", encoding="utf-8")
    [added] = catalog.add([evidence], analyze=False)
    damage(catalog, added.sha256)
    writes = []
    database_write = catalog.db.write

    def no_write(*args: Any, **kwargs: Any) -> Any:
        writes.append(args)
        raise RuntimeError("the database went away")

    def no_space(*_: Any, **__: Any) -> bool:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(BlobStore, "_link_into_place", no_space)
    monkeypatch.setattr(catalog.db, "write", no_write)
    with pytest.warns(UserWarning, match=r"moved aside and kept \(blobs/quarantine/"):
        with pytest.raises(EvidenceError, match="no space left"):
            catalog.add([evidence], analyze=False)
    tried = len(writes)
    assert tried == 1
    assert catalog.record_ids()  # a read: not another try
    assert len(writes) == tried
    monkeypatch.setattr(catalog.db, "write", database_write)
    monkeypatch.undo()
    catalog.add([tmp_path / "ev.txt"], analyze=False)  # the next change says it, and puts the bytes back
    [moved] = quarantined_events(catalog)
    assert kept(catalog, moved) == {added.sha256: b"tampered"}
    assert catalog.verify().ok


def test_fsck_says_which_quarantined_copies_no_event_names(catalog: Catalog, tmp_path: Path, run_cli: Any) -> None:
    """A copy moved aside by a process killed before its transaction said so (or by a version
    that did not say so, or put there by hand): ``fsck`` lists it as kept and not in the custody
    log; it writes nothing of it (it cannot tell who put it there), and it is no left-over."""
    evidence = tmp_path / "ev.txt"
    evidence.write_text("the evidence", encoding="utf-8")
    [added] = catalog.add([evidence], analyze=False)
    damage(catalog, added.sha256)
    [again] = catalog.add([evidence], analyze=False)  # said by the log
    assert again.quarantined is not None
    left = catalog.path / "blobs" / "quarantine" / f"{added.sha256}.{'0' * 32}"
    left.write_bytes(b"moved by a process that was killed")
    report = catalog.fsck()
    assert [e.path.rsplit("/", 1)[-1] for e in report.unlogged] == [left.name]
    assert len(report.quarantined) == 2 and report.clean
    before = len(catalog.history())
    listed = run_cli("fsck", "--catalog", catalog.path, "--remove")
    assert listed.code == 0, listed.out + listed.err
    assert f"{left.name}  {left.stat().st_size} B  kept, not in the custody log" in listed.out
    assert f"{again.quarantined.rsplit('/', 1)[-1]}  " in listed.out
    assert listed.out.count("not in the custody log") == 1
    assert len(catalog.history()) == before and left.exists()
