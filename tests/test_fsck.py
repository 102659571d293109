"""fsck: what interrupted work leaves behind is listed and, when old enough, removed and logged;
nothing a record claims is ever touched."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

from evidence_catalog import Catalog
from evidence_catalog.custody import Action


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
