"""With two CPUs or more, an add of many files stores its small files in a worker process while
it catalogues them (``adding_offload.Storing``): the catalog it makes must be the one it makes
alone, whatever the files are, and a worker that dies, hangs or cannot store a file changes
nothing (the adding process stores what it did not bring back, and says why a file cannot be
stored as it says it alone).  The thresholds are lowered here so that a few files use the
worker, and each add runs in a new interpreter: a worker is only forked from a process running
no other thread, and a test process may run some (another module's test server)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence_catalog import Agent, Catalog
from evidence_catalog.errors import InputError
from evidence_catalog.operations import adding, adding_offload

from .conftest import FixedClock, make_jpeg

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the worker is forked: Linux only")

OPERATOR = Agent(name="Test Analyst", email="analyst@example.org", host="test-host")
#: A file this large is stored by the adding process (LARGE_FILE, lowered in the child).
LARGE = 64 * 1024

_store_files = adding_offload.store_files
_begin = adding_offload.Storing.begin
_collect_files = adding.collect_files
#: The worker's tasks so far (counted in the worker).
_tasks = 0


def _dying_store_files(*args: Any) -> Any:
    """The worker's task, but the worker kills itself at its second."""
    global _tasks
    _tasks += 1
    if _tasks == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return _store_files(*args)


def _hanging_store_files(*args: Any) -> Any:
    """The worker's task, but the worker stops answering at its second."""
    global _tasks
    _tasks += 1
    if _tasks == 2:
        time.sleep(3600)
    return _store_files(*args)


def _failing_store_files(*args: Any) -> Any:
    """The worker's task, but every second one fails (a task that raises)."""
    global _tasks
    _tasks += 1
    if _tasks % 2 == 0:
        raise OSError("refused in the worker")
    return _store_files(*args)


def lowered(offload: bool, *, task_timeout: float) -> None:
    """The thresholds lowered (in a child) so that a few files use the worker, with *offload*,
    or none does; batches end by their count, never by a slow machine's clock."""
    adding_offload.OFFLOAD_FILES = 2 if offload else 10**9
    adding_offload.CHUNK_FILES = 3
    adding_offload.AHEAD = 2
    adding_offload.TASK_TIMEOUT = task_timeout
    adding_offload.usable_cpus = lambda: 2  # type: ignore[attr-defined]
    adding.LARGE_FILE = LARGE
    adding.BATCH_SECONDS = 3600.0


def workers_started() -> list[bool]:
    """Whether each add from now on (in this process) started a worker, in order."""
    workers: list[bool] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        storing = _begin(*args, **kwargs)
        workers.append(storing.pool is not None)
        return storing

    adding_offload.Storing.begin = spy  # type: ignore[method-assign]
    return workers


def recording(module: Any, name: str, what: Callable[..., Any]) -> list[Any]:
    """``module.name`` from now on (in this process) with ``what(*args, **kwargs)`` of each call
    kept, in order, in the list returned."""
    seen: list[Any] = []
    original = getattr(module, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(what(*args, **kwargs))
        return original(*args, **kwargs)

    setattr(module, name, spy)
    return seen


def _case(catalog: str, files: list[str], case: str, batch: int, offload: bool) -> dict[str, Any]:
    """One add, in a process of its own (see :func:`in_child`): with the worker (*offload*) or
    alone; what it returned, raised and reported, and whether a worker ran."""
    global _tasks
    _tasks = 0
    adding_offload.store_files = _store_files  # type: ignore[assignment]
    adding_offload.Storing.begin = _begin  # type: ignore[method-assign]
    adding.collect_files = _collect_files  # type: ignore[assignment]
    lowered(offload, task_timeout=2.0)
    if case in ("vanished", "replaced"):  # the fourth file goes after the paths were checked

        def collect_then_change(*args: Any, **kwargs: Any) -> list[Path]:
            found = _collect_files(*args, **kwargs)
            found[3].unlink()
            if case == "replaced":
                os.mkfifo(found[3])
            return found

        adding.collect_files = collect_then_change  # type: ignore[assignment]
    if case == "died":
        adding_offload.store_files = _dying_store_files  # type: ignore[assignment]
    if case == "hung":
        adding_offload.store_files = _hanging_store_files  # type: ignore[assignment]
    if case == "failing":
        adding_offload.store_files = _failing_store_files  # type: ignore[assignment]
    workers = workers_started()
    progress: list[int] = []
    error = None
    added: list[Any] = []
    with Catalog.open(Path(catalog), operator=OPERATOR, clock=FixedClock()) as cat:
        try:
            cat.add(files, batch=batch, progress=progress.append, on_added=added.append, analyze=False)
        except InputError as exc:
            error = str(exc)
        report = cat.verify(record_event=False, remember=False, workers=1)
        fsck = cat.fsck()
        records = {r.id: r for r in cat.records()}
    return {
        "workers": workers,
        "error": error,
        "added": [
            (str(r.path), r.sha256, r.size, r.media_type, r.new_record, r.new_on_record, r.quarantined) for r in added
        ],
        "new_bytes": [r.new_bytes for r in added],
        "progress": sum(progress),
        "ok": report.ok,
        "checked": report.records_checked,
        "orphans": sorted(e.sha256 or "" for e in fsck.orphaned_blobs),
        "temporary": [e.path for e in fsck.temporary],
        "titles": sorted((r.title or "", tuple(ra.artifact.sha256 for ra in r.artifacts)) for r in records.values()),
        "metadata": sorted(
            (ra.artifact.sha256, ra.artifact.media_type, ra.artifact.metadata is not None)
            for r in records.values()
            for ra in r.artifacts
        ),
        "acquisitions": sorted(
            (a.original_path, a.artifact_sha256, a.started_at <= a.ended_at)
            for r in records.values()
            for a in r.acquisitions
        ),
    }


def _cases(runs: list[tuple[str, list[str], str, int, bool]]) -> list[dict[str, Any]]:
    return [_case(*run) for run in runs]


def in_child(catalog: Path, files: list[Path], case: str, batch: int, offload: bool) -> dict[str, Any]:
    """:func:`_case` in a new interpreter (see the module's documentation)."""
    [result] = in_children([(catalog, files, case, batch, offload)])
    return result


def in_children(runs: list[tuple[Path, list[Path], str, int, bool]]) -> list[dict[str, Any]]:
    """:func:`_case` of each run, one after the other in one new interpreter."""
    sent = [(str(catalog), [str(f) for f in files], *rest) for catalog, files, *rest in runs]
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_cases, sent).result(timeout=600)  # type: ignore[arg-type]


def files_of(folder: Path, sizes: list[int], seed: int = 0) -> list[Path]:
    """Files of the given sizes (a negative size: a copy of the file before it; a size of 1: a
    photo), each in order, with content of its own."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for number, size in enumerate(sizes):
        if size < 0 and paths:
            data = paths[-1].read_bytes()
        elif size == 1:
            data = make_jpeg(colour=((seed + number) % 256, 20, 30))
        else:
            data = (f"{seed}-{number}-".encode() * (size // 4 + 1))[: max(size, 0)]
        path = folder / f"file-{number:03d}.{'jpg' if size == 1 else 'bin'}"
        path.unlink(missing_ok=True)  # (a named pipe a case left)
        path.write_bytes(data)
        paths.append(path)
    return paths


def modification_times(cat: Catalog) -> dict[str, float | None]:
    """The modification time each acquisition records, by the name of the file it acquired."""
    return {
        Path(a.original_path or "").name: a.file_modified_at.timestamp() if a.file_modified_at else None
        for r in cat.records()
        for a in r.acquisitions
    }


def new_catalog(path: Path) -> Path:
    Catalog.init(path, operator=OPERATOR, clock=FixedClock()).close()
    return path


#: Small files, a duplicate, an empty file, photos, and files the adding process stores itself
#: (at least LARGE bytes) between them.
SIZES = [10, 2000, 1, -1, 0, 300, LARGE + 1, 5000, 7, 1, 40_000, 3 * LARGE, 12, 13, 14, 15, 16, -1, 1000]


def same(alone: dict[str, Any], shared: dict[str, Any]) -> None:
    for key in ("error", "added", "progress", "ok", "checked", "orphans", "temporary", "titles", "metadata"):
        assert shared[key] == alone[key], key
    assert [path for path, _, _ in shared["acquisitions"]] == [path for path, _, _ in alone["acquisitions"]]
    assert all(ordered for _, _, ordered in shared["acquisitions"])


@pytest.mark.parametrize("batch", [4, 1000])
def test_an_add_with_its_worker_makes_the_catalog_it_makes_alone(tmp_path: Path, batch: int) -> None:
    files = files_of(tmp_path / "files", SIZES)
    alone = in_child(new_catalog(tmp_path / "alone"), files, "plain", batch, offload=False)
    shared = in_child(new_catalog(tmp_path / "shared"), files, "plain", batch, offload=True)
    assert alone["workers"] == [False] and shared["workers"] == [True]
    same(alone, shared)
    assert shared["ok"] and shared["error"] is None
    assert shared["new_bytes"] == alone["new_bytes"]
    assert shared["progress"] == sum(f.stat().st_size for f in files)
    # the photos were described here, EXIF and all, from the worker's stored copy
    assert sum(1 for _, media_type, exif in shared["metadata"] if media_type == "image/jpeg" and exif) == 2


@pytest.mark.no_postgresql_pass  # a worker's failure met: the same whatever the database (the SQLite run has it)
@pytest.mark.parametrize("case", ["died", "hung", "failing"])
def test_what_the_worker_does_not_bring_back_is_stored_by_the_adding_process(tmp_path: Path, case: str) -> None:
    files = files_of(tmp_path / "files", SIZES)
    alone = in_child(new_catalog(tmp_path / "alone"), files, "plain", 4, offload=False)
    shared = in_child(new_catalog(tmp_path / "shared"), files, case, 4, offload=True)
    assert shared["workers"] == [True]
    same(alone, shared)
    assert shared["ok"] and shared["error"] is None
    if case == "failing":
        # The worker's bytes are new, what it failed is stored here; of two copies of the same
        # bytes, the one stored first (by either process) brought new bytes.
        assert sum(shared["new_bytes"]) == sum(alone["new_bytes"])


@pytest.mark.parametrize("case", ["vanished", "replaced"])
def test_a_file_that_cannot_be_stored_stops_the_add_as_it_does_alone(tmp_path: Path, case: str) -> None:
    files = files_of(tmp_path / "files", [10, 20, 30, 40, 50, 60, 70, 80, 90])
    alone = in_child(new_catalog(tmp_path / "alone"), files, case, 2, offload=False)
    files = files_of(tmp_path / "files", [10, 20, 30, 40, 50, 60, 70, 80, 90])  # again: the case changed one
    shared = in_child(new_catalog(tmp_path / "shared"), files, case, 2, offload=True)
    assert shared["workers"] == [True]
    reason = "no such file" if case == "vanished" else "not a regular file"
    assert alone["error"] is not None and reason in alone["error"] and "file-003.bin" in alone["error"]
    assert shared["error"] == alone["error"]
    # the files before it, committed: the first batch, then the third file before the error is said
    assert shared["added"] == alone["added"] and len(shared["added"]) == 3
    assert shared["ok"] and alone["ok"]
    # The worker may have stored files after it, a batch's worth at most: unclaimed bytes fsck
    # lists (adding the files again claims them), never a record.
    later = {sha256_of(f) for f in files[4:]}
    assert set(shared["orphans"]) <= later and len(shared["orphans"]) <= 2
    assert shared["temporary"] == []


def sha256_of(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.sampled_from([0, 1, 5, 100, 4096, LARGE - 1, LARGE, -1]), min_size=2, max_size=24),
    batch=st.integers(min_value=2, max_value=9),
)
def test_any_files_in_any_batches_make_the_same_catalog_with_the_worker(
    tmp_path_factory: pytest.TempPathFactory, sizes: list[int], batch: int
) -> None:
    folder = tmp_path_factory.mktemp("offload")
    files = files_of(folder / "files", sizes, seed=len(sizes) * 31 + batch)
    alone, shared = in_children(
        [
            (new_catalog(folder / "alone"), files, "plain", batch, False),
            (new_catalog(folder / "shared"), files, "plain", batch, True),
        ]
    )
    assert alone["workers"] == [False] and shared["workers"] == [True]
    same(alone, shared)
    assert shared["new_bytes"] == alone["new_bytes"]


def test_a_small_add_forks_no_worker(tmp_path: Path) -> None:
    files = files_of(tmp_path / "files", [10, 20, 30])
    adding_offload_threshold = adding_offload.OFFLOAD_FILES
    assert len(files) < adding_offload_threshold  # the default threshold, as it is
    with Catalog.open(new_catalog(tmp_path / "catalog"), operator=OPERATOR) as cat:
        policy = adding_offload.AddPolicy(adding.store_added_file, adding.prepare_stored, 1 << 24, 1 << 28)
        storing = adding_offload.Storing.begin(cat._ctx, files, None, None, 1000, policy)  # type: ignore[attr-defined]
        assert storing.pool is None


def _add_then_threads(catalog: str, files: list[str]) -> tuple[bool, list[str]]:
    adding_offload.OFFLOAD_FILES = 2
    adding_offload.usable_cpus = lambda: 2  # type: ignore[attr-defined]
    workers = workers_started()
    import threading

    with Catalog.open(Path(catalog), operator=OPERATOR) as cat:
        cat.add(files, analyze=False)
    return workers == [True], [thread.name for thread in threading.enumerate()]


def test_after_an_add_its_process_runs_no_thread_of_the_worker(tmp_path: Path) -> None:
    # (a verification after it in the same process forks workers only from a process running
    # no other thread)
    files = files_of(tmp_path / "files", [10, 20, 30, 40, 50, 60, 70])
    catalog = new_catalog(tmp_path / "catalog")
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        used, threads = pool.submit(_add_then_threads, str(catalog), [str(f) for f in files]).result(timeout=600)
    assert used
    assert len(threads) == 1, threads


def test_while_another_process_stores_every_sync_watches_for_the_next(tmp_path: Path) -> None:
    # A write-back of the worker's that fails must be reported by a sync: each sync opens the
    # descriptor the next one is called on before it syncs, even when no file was sent since
    # the last (the worker may still be writing files sent before it).
    from evidence_catalog.store import blobstore

    if blobstore._syncfs is None:
        pytest.skip("no syncfs here: no worker either")
    (tmp_path / "blobs").mkdir()
    store = blobstore.BlobStore(tmp_path / "blobs")
    assert store.expect_deferred()
    store.sync()
    assert store._deferred.fd is not None  # watching, before the worker writes more
    store.sync()
    assert store._deferred.fd is not None  # and again, though nothing was sent since
    store.expect_no_more()
    store.sync()
    store.sync()
    assert store._deferred.fd is None  # done: nothing is watched for


def _batch_sizes(catalog: str, files: list[str], offload: bool) -> list[int]:
    adding_offload.OFFLOAD_FILES = 2 if offload else 10**9
    adding_offload.usable_cpus = lambda: 2  # type: ignore[attr-defined]
    adding.TAPER_FILES = 4
    adding.BATCH_SECONDS = 3600.0
    sizes = recording(adding, "commit_batch", lambda _ctx, prepared, *_, **__: len(prepared))
    with Catalog.open(Path(catalog), operator=OPERATOR) as cat:
        cat.add(files, analyze=False)
    return sizes


def test_with_a_worker_the_first_batches_grow_so_that_cataloguing_starts_early(tmp_path: Path) -> None:
    files = [str(f) for f in files_of(tmp_path / "files", [10 + n for n in range(40)])]
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        shared = pool.submit(_batch_sizes, str(new_catalog(tmp_path / "shared")), files, True).result(timeout=600)
        alone = pool.submit(_batch_sizes, str(new_catalog(tmp_path / "alone")), files, False).result(timeout=600)
    assert shared[:2] == [4, 8] and shared[2] > 8 and sum(shared) == 40  # (then the last ones halve)
    assert alone[0] == 20 and sum(alone) == 40  # alone: one batch until the last ones halve


def _stored_here(catalog: str, files: list[str]) -> list[str]:
    lowered(True, task_timeout=20.0)
    adding.BATCH_BYTES = 40_000  # the look-ahead is held by bytes too, again and again
    here = recording(adding, "store_added_file", lambda _ctx, path, *_, **__: path.name)
    with Catalog.open(Path(catalog), operator=OPERATOR) as cat:
        cat.add(files, analyze=False)
    return here


def test_a_look_ahead_held_by_bytes_still_sends_every_small_file(tmp_path: Path) -> None:
    # Each file is counted in the bytes ahead until it is taken, also one sent only when its
    # turn came (the look-ahead had stopped at a batch's bytes): counted for ever, such sizes
    # held the look-ahead back more and more, until the adding process stored every file.
    files = [str(f) for f in files_of(tmp_path / "files", [25_000] * 30)]  # one ahead at a time
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        here = pool.submit(_stored_here, str(new_catalog(tmp_path / "catalog")), files).result(timeout=600)
    assert here == []
