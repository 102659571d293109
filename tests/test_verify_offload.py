"""With more than one CPU, ``verify`` leaves the events' hashes and the small files to worker
processes (``verifying._Offload``): the findings must be exactly those it makes alone, whatever
is damaged, and a worker that dies or fails changes nothing (its work is done again in the
verifying process).  The threshold is lowered here so that a small catalog uses the workers."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evidence_catalog import Agent, Catalog
from evidence_catalog.findings import BlobMissing, DigestMismatch, EventEdited, RecordMismatch
from evidence_catalog.operations import verifying

from .conftest import FixedClock, run_sql

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="worker processes are forked: Linux only")

OPERATOR = Agent(name="Test Analyst", email="analyst@example.org", host="test-host")
RECORDS = 40


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A catalog of 40 small files and one of 3 MiB (a new one for each test: its database may
    be PostgreSQL's)."""
    folder = tmp_path
    files = []
    for index in range(RECORDS):
        path = folder / "files" / f"file-{index:02d}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(f"file {index}\n".encode() * (index + 1))
        files.append(path)
    large = folder / "files" / "large.bin"  # hashed block by block
    large.write_bytes(os.urandom(3 * 1024 * 1024 + 5))
    files.append(large)
    path = folder / "catalog"
    with Catalog.init(path, operator=OPERATOR, clock=FixedClock()) as catalog:
        catalog.add(files, batch=7, tags=["batch"])
    return path


@pytest.fixture
def offloaded(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Worker processes for every verification (two CPUs, no threshold, small tasks); the
    offloads started, to check they were."""
    monkeypatch.setattr(verifying, "usable_cpus", lambda: 3)
    monkeypatch.setattr(verifying, "OFFLOAD_WORK", 0)
    monkeypatch.setattr(verifying, "EVENT_CHUNK", 3)
    monkeypatch.setattr(verifying, "GROUP_FILES", 2)
    started: list[Any] = []
    start = verifying._Offload.start

    def spy(*args: Any, **kwargs: Any) -> Any:
        offload = start(*args, **kwargs)
        started.append(offload)
        return offload

    monkeypatch.setattr(verifying._Offload, "start", spy)
    return started


def verified(path: Path, workers: int | None = None) -> Any:
    with Catalog.open(path, operator=OPERATOR) as catalog:
        return catalog.verify(record_event=False, remember=False, workers=workers)


def blob_path(path: Path, sha256: str) -> Path:
    return path / "blobs" / "sha256" / sha256[:2] / sha256[2:4] / sha256


def damage(path: Path) -> None:
    """Events edited, a record changed, a blob changed and one gone."""
    run_sql(path, "update custody_event set subject = subject || ' ' where seq in (3, 17, 41)")
    [record_id] = [str(r[0]) for r in run_sql(path, "select id from record order by id limit 1 offset 5")]
    run_sql(path, "update record set title = 'forged' where id = :id", {"id": record_id})
    shas = [str(r[0]) for r in run_sql(path, "select sha256 from artifact order by sha256")]
    changed = blob_path(path, shas[4])
    os.chmod(changed, 0o644)
    changed.write_bytes(changed.read_bytes()[:-1] + b"!")
    blob_path(path, shas[30]).unlink()


@pytest.mark.parametrize("damaged", [False, True])
def test_worker_processes_find_exactly_what_one_process_finds(base: Path, offloaded: list[Any], damaged: bool) -> None:
    path = base
    if damaged:
        damage(path)
    alone = verified(path, workers=1)  # workers given: no worker processes
    assert offloaded == []
    progress: list[int] = []
    with Catalog.open(path, operator=OPERATOR) as catalog:
        shared = catalog.verify(record_event=False, remember=False, progress=progress.append)
    assert len(offloaded) == 1 and offloaded[0] is not None and not offloaded[0].broken  # the workers did it
    assert shared == alone
    assert alone.ok is not damaged
    if damaged:
        kinds = {type(f) for f in shared.findings}
        assert {EventEdited, RecordMismatch, DigestMismatch, BlobMissing} <= kinds
        assert [f.seq for f in shared.findings if isinstance(f, EventEdited)] == [3, 17, 41]
    else:
        assert sum(progress) == shared.bytes_checked > 3 * 1024 * 1024


def _killing(monkeypatch: pytest.MonkeyPatch, when: Callable[[Any], None]) -> None:
    start = verifying._Offload.start

    def start_then(*args: Any, **kwargs: Any) -> Any:
        offload = start(*args, **kwargs)
        if offload is not None:
            when(offload)
        return offload

    monkeypatch.setattr(verifying._Offload, "start", start_then)


def _kill_workers(offload: Any) -> None:
    for process in list(offload.pool._processes.values()):
        with contextlib.suppress(ProcessLookupError):  # the pool ends the others when one dies
            os.kill(process.pid, signal.SIGKILL)
        process.join()


@pytest.mark.parametrize("damaged", [False, True])
def test_workers_killed_change_no_finding(
    base: Path, offloaded: list[Any], monkeypatch: pytest.MonkeyPatch, damaged: bool
) -> None:
    path = base
    if damaged:
        damage(path)
    alone = verified(path, workers=1)
    _killing(monkeypatch, _kill_workers)
    assert verified(path) == alone
    assert offloaded[-1].broken  # the pool was found broken, and its work done here
    assert alone.ok is not damaged


def test_a_task_that_fails_in_a_worker_is_done_again_here(
    base: Path, offloaded: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task the pool cannot even send (here: a function it cannot pickle) is done here."""
    path = base
    damage(path)
    alone = verified(path, workers=1)
    from evidence_catalog import custody

    monkeypatch.setattr(verifying, "checked_hashes", lambda chunk: custody.checked_hashes(chunk))
    assert verified(path) == alone
