"""The add's worker process (``adding_offload``) against files that change while it has them
in hand and damaged stored copies: cases in which the worker must not change what is recorded,
and a check that the worker is used at all.

Each add runs in a new interpreter (a worker is only forked from a process running no other
thread), with the thresholds lowered so that a few files use the worker.  Where the worker must
misbehave, or a file must change while the worker has it in hand, the worker's task is wrapped
before the fork: it does what a worker killed by the kernel, or another program writing the
file, would do at that moment."""

from __future__ import annotations

import os
import signal
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

_store_files = adding_offload.store_files
_store_added_file = adding.store_added_file
_collect_files = adding.collect_files
#: The worker's tasks so far (counted in the worker).
_tasks = 0
#: The file the scenarios change (by name).
TARGET = "file-005.bin"


def _die_after_storing(*args: Any) -> Any:
    """The worker's first task, done, and the worker killed before it answers (as the kernel's
    OOM killer or an operator may kill it)."""
    global _tasks
    _tasks += 1
    answer = _store_files(*args)
    if _tasks == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return answer


def _modified_before_read(root: str, algorithms: Any, fsync: bool, files: list[Any]) -> Any:
    """Another program rewrites TARGET after the adding process looked at it (its stat) and
    before the worker reads it."""
    for path, _ in files:
        if path.endswith(TARGET):
            with open(path, "wb") as out:
                out.write(b"rewritten after it was looked at" * 10)
            info = os.stat(path)
            os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1000 * 10**9))
    return _store_files(root, algorithms, fsync, files)


def _fifo_before_read(root: str, algorithms: Any, fsync: bool, files: list[Any]) -> Any:
    """TARGET is replaced by a named pipe after the adding process looked at it (its stat)
    and before the worker reads it."""
    for path, _ in files:
        if path.endswith(TARGET):
            os.unlink(path)
            os.mkfifo(path)
    return _store_files(root, algorithms, fsync, files)


def _run(catalog: str, files: list[str], scenario: str, batch: int, offload: bool, readd: list[str]) -> dict[str, Any]:
    lowered(offload, task_timeout=20.0)
    adding_offload.store_files = {  # type: ignore[assignment]
        "died": _die_after_storing,
        "modified": _modified_before_read,
        "fifo": _fifo_before_read,
    }.get(scenario, _store_files)
    if scenario == "vanished":  # the fourth file goes after the paths were checked

        def collect_then_remove(*args: Any, **kwargs: Any) -> list[Path]:
            found = _collect_files(*args, **kwargs)
            found[3].unlink()
            return found

        adding.collect_files = collect_then_remove  # type: ignore[assignment]
    here: list[str] = []

    def counting(ctx: Any, path: Path, *args: Any, **kwargs: Any) -> Any:
        here.append(path.name)
        return _store_added_file(ctx, path, *args, **kwargs)

    adding.store_added_file = counting  # type: ignore[assignment]
    added: list[Any] = []
    error = None
    with Catalog.open(Path(catalog), operator=OPERATOR) as cat:
        try:
            cat.add(files, batch=batch, on_added=added.append, analyze=False)
        except InputError as exc:
            error = str(exc)
        adding.collect_files = _collect_files  # type: ignore[assignment]
        for path in readd:  # added again on its own (no worker)
            added.append(cat.add([path], analyze=False)[0])
        events = [e.details.get("damaged_copy_quarantined") for e in cat.history() if e.action == "artifact.added"]
        fsck = cat.fsck()
        modified = modification_times(cat)
    return {
        "error": error,
        "here": here,
        "quarantined": [(r.path.name, r.quarantined) for r in added],
        "events": [q for q in events if q],
        "quarantine": [e.path.removeprefix("blobs/") for e in fsck.quarantined],
        "modified": modified,
    }


def in_child(*args: Any, timeout: float = 120.0) -> dict[str, Any]:
    """:func:`_run` in a new interpreter; ``{"hung": True}`` when it does not end in time."""
    return in_new_interpreter(_run, *args, timeout=timeout)


def damage(catalog: Path, file: Path) -> None:
    """Catalogue *file* on its own, then damage its stored copy."""
    with Catalog.open(catalog, operator=OPERATOR) as cat:
        [first] = cat.add([file], analyze=False)
        stored = cat.artifact_path(first.sha256)
    stored.chmod(0o644)
    stored.write_bytes(b"X" * file.stat().st_size)


def test_the_worker_stores_the_small_files(tmp_path: Path) -> None:
    # The comparisons in test_add_offload pass as well with a worker that stores nothing (all
    # its files are then stored here, the same way): this one fails then.
    files = files_of(tmp_path / "files", [10, 20, 30, LARGE + 1, 40, 50, 60, 70])
    shared = in_child(str(new_catalog(tmp_path / "c")), [str(f) for f in files], "plain", 4, True, [])
    assert shared["here"] == ["file-003.bin"]  # the large one only


def test_a_damaged_copy_the_worker_quarantined_is_recorded_when_the_worker_dies_after(tmp_path: Path) -> None:
    # The worker stores file 1 over a damaged stored copy (moved aside into quarantine) and is
    # killed before it answers: the adding process stores the file again, finds the good copy
    # the worker placed, and the custody event says no damaged copy was quarantined.
    files = files_of(tmp_path / "files", [10, 20, 30, 40, 50, 60, 70, 80])
    results = {}
    for offload in (False, True):
        catalog = new_catalog(tmp_path / f"c-{offload}")
        damage(catalog, files[1])
        results[offload] = in_child(str(catalog), [str(f) for f in files], "died", 4, offload, [])
    alone, shared = results[False], results[True]
    assert alone["error"] is None and shared["error"] is None
    assert len(alone["quarantine"]) == len(shared["quarantine"]) == 1
    assert alone["events"] == alone["quarantine"]
    assert dict(alone["quarantined"])["file-001.bin"] is not None
    # every damaged copy quarantined is named by a custody event
    assert shared["events"] == shared["quarantine"]
    assert dict(shared["quarantined"])["file-001.bin"] is not None


def test_a_damaged_copy_the_worker_quarantined_ahead_of_a_failed_add_is_recorded(tmp_path: Path) -> None:
    # The add stops at the fourth file (gone since the paths were checked); the worker had
    # stored files after it, one over a damaged copy that it moved aside.  Adding that file
    # again finds the good copy: no custody event ever names the quarantined one.  Alone, the
    # file is stored over the damaged copy by the second add, whose event says so.
    files = files_of(tmp_path / "files", [10, 20, 30, 40, 50, 60, 70, 80])
    results = {}
    for offload in (False, True):
        files = files_of(tmp_path / "files", [10, 20, 30, 40, 50, 60, 70, 80])
        catalog = new_catalog(tmp_path / f"c-{offload}")
        damage(catalog, files[6])
        results[offload] = in_child(str(catalog), [str(f) for f in files], "vanished", 8, offload, [str(files[6])])
    alone, shared = results[False], results[True]
    assert alone["error"] is not None and shared["error"] == alone["error"]
    assert len(alone["quarantine"]) == 1 and alone["events"] == alone["quarantine"]
    assert len(shared["quarantine"]) == 1
    assert shared["events"] == shared["quarantine"]


def test_a_file_rewritten_after_its_stat_is_not_recorded_with_the_old_modification_time(tmp_path: Path) -> None:
    # The adding process takes a file's stat when it sends the file, up to a batch before the
    # worker reads it.  A file rewritten in between is recorded with the new bytes and the
    # modification time of the bytes it no longer holds.
    files = files_of(tmp_path / "files", [10, 20, 30, 40, 50, 60, 70, 80])
    shared = in_child(str(new_catalog(tmp_path / "c")), [str(f) for f in files], "modified", 8, True, [])
    assert shared["error"] is None
    target = files[5]
    assert target.read_bytes().startswith(b"rewritten")
    assert shared["modified"][TARGET] == pytest.approx(target.stat().st_mtime, rel=0, abs=1e-3)


def test_a_file_replaced_by_a_named_pipe_after_its_stat_does_not_hang_the_add(tmp_path: Path) -> None:
    # The worker opens it without blocking and gives it back; the adding process then opens it
    # trusting the stat it took before (a regular file), and waits for a writer for ever.
    files = files_of(tmp_path / "files", [10, 20, 30, 40, 50, 60, 70, 80])
    shared = in_child(str(new_catalog(tmp_path / "c")), [str(f) for f in files], "fifo", 8, True, [], timeout=60)
    assert not shared.get("hung"), "the add hung on the named pipe"
    assert shared["error"] is not None and "not a regular file" in shared["error"]
