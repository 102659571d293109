"""The add's look-ahead (``adding_offload.Storing._send_ahead``): the files it passes without
sending them keep no stale ``stat``, it sends at most a batch's bytes, and a worker that could
not be started leaves the blob store as it was.

Each add runs in a new interpreter (a worker is only forked from a process running no other
thread), with the thresholds lowered so that a few files use the worker.  Where another program
must change a file while the add runs, it does so from the adding process at a chosen file (as
such a program would, between two files), never from inside the code under test."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from evidence_catalog import Catalog
from evidence_catalog.errors import InputError
from evidence_catalog.operations import adding, adding_offload

from .spawned import in_new_interpreter
from .test_add_offload import LARGE, OPERATOR, files_of, lowered, modification_times, new_catalog

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the worker is forked: Linux only")

_prepared = adding_offload.Storing.prepared
_collect_files = adding.collect_files
#: The large file (stored by the adding process) that the scenarios change.
TARGET = 5
#: The file the adding process is at when the other program changes TARGET.
WHEN = 3


def _change(path: Path, scenario: str) -> None:
    if scenario == "rewritten":  # a larger file copied over it: new bytes, a new modification time
        path.write_bytes(b"rewritten after the add looked ahead at it" * (2 * LARGE // 40))
        info = path.stat()
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1000 * 10**9))
    elif scenario == "fifo":
        path.unlink()
        os.mkfifo(path)


def _run(catalog: str, files: list[str], scenario: str, batch: int, offload: bool) -> dict[str, Any]:
    lowered(offload, task_timeout=20.0)
    if scenario == "batch-bytes":  # the default chunks and look-ahead; a batch ends at 40,000 bytes
        adding_offload.CHUNK_FILES = 32
        adding_offload.AHEAD = 32
        adding.BATCH_BYTES = 40_000

        def collect_then_remove(*args: Any, **kwargs: Any) -> list[Path]:
            found = _collect_files(*args, **kwargs)
            found[20].unlink()
            return found

        adding.collect_files = collect_then_remove  # type: ignore[assignment]
    if scenario == "no-pool":  # a system without the semaphores a process pool needs
        import concurrent.futures

        def no_pool(*args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError("no sem_open here")

        concurrent.futures.ProcessPoolExecutor = no_pool  # type: ignore[misc]

    def prepared(self: Any, index: int, info: Any) -> Any:
        if index == WHEN:  # another program, while the add is at this file
            _change(Path(files[TARGET]), scenario)
        return _prepared(self, index, info)

    adding_offload.Storing.prepared = prepared  # type: ignore[method-assign]
    error = None
    with Catalog.open(Path(catalog), operator=OPERATOR) as cat:
        try:
            cat.add(files, batch=batch, analyze=False)
        except InputError as exc:
            error = str(exc)
        others = cat._ctx.blobs._others  # type: ignore[attr-defined]
        fsck = cat.fsck()
        modified = modification_times(cat)
    return {
        "error": error,
        "modified": modified,
        "orphan_bytes": sum(e.size for e in fsck.orphaned_blobs),
        "others": others,
    }


def in_child(*args: Any, timeout: float = 120.0) -> dict[str, Any]:
    """:func:`_run` in a new interpreter; ``{"hung": True}`` when it does not end in time."""
    return in_new_interpreter(_run, *args, timeout=timeout)


#: Small files sent to the worker, and at TARGET a large one the adding process stores itself.
SIZES = [10, 20, 30, 40, 50, LARGE + 1, 60, 70, 80, 90]


def test_a_large_file_rewritten_after_the_look_ahead_is_recorded_with_its_new_modification_time(
    tmp_path: Path,
) -> None:
    # The worker's look-ahead takes the stat of every file it passes, the large ones too, which
    # it does not send: that stat was kept and used when the large file's turn came, a few
    # files (up to a batch) later.  A file rewritten in between was recorded with the
    # modification time of bytes it no longer held.
    for offload in (False, True):
        files = files_of(tmp_path / "files", SIZES)
        run = in_child(str(new_catalog(tmp_path / f"c-{offload}")), [str(f) for f in files], "rewritten", 8, offload)
        assert run["error"] is None
        target = files[TARGET]
        assert target.read_bytes().startswith(b"rewritten")
        assert run["modified"][target.name] == pytest.approx(target.stat().st_mtime, rel=0, abs=1e-3), offload


def test_a_large_file_replaced_by_a_named_pipe_after_the_look_ahead_does_not_hang_the_add(tmp_path: Path) -> None:
    # The kept stat says a regular file: the named pipe is opened as one, and waited on for ever.
    for offload in (False, True):
        files = files_of(tmp_path / "files", SIZES)
        run = in_child(
            str(new_catalog(tmp_path / f"c-{offload}")), [str(f) for f in files], "fifo", 8, offload, timeout=60
        )
        assert not run.get("hung"), f"the add hung on the named pipe (worker: {offload})"
        assert run["error"] is not None and "not a regular file" in run["error"]


def test_an_add_that_stops_leaves_at_most_one_batch_of_bytes_more(tmp_path: Path) -> None:
    # The quickstart and the changelog: an add that stops at a file it cannot read may leave
    # "the bytes of up to one batch more" unclaimed; a batch ends at BATCH_BYTES (256 MiB; here
    # 40,000 bytes), but the worker is sent up to a batch of files ahead whatever their size
    # (1,000 files under 16 MiB each: up to 16 GiB).
    files = files_of(tmp_path / "files", [4000] * 60)
    run = in_child(str(new_catalog(tmp_path / "c")), [str(f) for f in files], "batch-bytes", 1000, True)
    assert run["error"] is not None and "no such file" in run["error"]
    assert run["orphan_bytes"] <= 40_000


def test_an_add_that_could_not_start_its_worker_leaves_the_store_watching_for_none(tmp_path: Path) -> None:
    # Storing.begin tells the store another process will write (expect_deferred) before it
    # makes the pool; a pool that cannot be made (no POSIX semaphores) left it told so for the
    # catalog's life: every later sync opened, and held, a descriptor for a worker that never was.
    files = files_of(tmp_path / "files", [10, 20, 30, 40, 50, 60])
    run = in_child(str(new_catalog(tmp_path / "c")), [str(f) for f in files], "no-pool", 8, True)
    assert run["error"] is None
    assert run["others"] is False
