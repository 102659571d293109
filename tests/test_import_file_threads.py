"""How an import runs its file checks (``importing_files._run_all``): a small file into a store
on this machine on the calling thread (its work is the interpreter's, which threads would only
take turns at), a large one on a thread, the first failure in order raised, and what no thread
has begun after it dropped."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evidence_catalog import Catalog
from evidence_catalog.operations import importing_files


@attrs.frozen
class _Check:
    index: int
    light: bool
    fails: bool
    slow: bool


class _FailedError(Exception):
    pass


def _run(checks: list[_Check], workers: int) -> tuple[list[tuple[int, bool]], BaseException | None]:
    """Run *checks* through ``_run_all``: which ran (index, on the calling thread?) and what it raised."""
    ran: list[tuple[int, bool]] = []
    lock = threading.Lock()
    caller = threading.get_ident()

    def run(check: _Check) -> None:
        if check.slow:
            time.sleep(0.002)
        with lock:
            ran.append((check.index, threading.get_ident() == caller))
        if check.fails:
            raise _FailedError(check.index)

    try:
        importing_files._run_all(checks, run, workers, on_this_thread=lambda check: check.light)
    except _FailedError as exc:
        return ran, exc
    return ran, None


_checks = st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans()), max_size=40).map(
    lambda flags: [_Check(i, light, fails, slow) for i, (light, fails, slow) in enumerate(flags)]
)


@settings(max_examples=150, deadline=None)
@given(checks=_checks, workers=st.sampled_from([1, 2, 3]))
def test_the_first_failure_in_order_is_raised_and_every_check_before_it_ran(checks: list[_Check], workers: int) -> None:
    ran, raised = _run(checks, workers)
    indices = [index for index, _ in ran]
    assert len(indices) == len(set(indices))  # none twice
    first = next((c.index for c in checks if c.fails), None)
    if first is None:
        assert raised is None and sorted(indices) == [c.index for c in checks]
    else:
        assert raised is not None and raised.args == (first,)
        assert set(range(first + 1)) <= set(indices)  # every check up to the failure ran
        # No check on this thread is started after one there failed (a thread's failure is seen
        # when it is settled: this thread may go on meanwhile).
        first_here = next((c.index for c in checks if c.fails and c.light), None)
        if first_here is not None:
            assert not [i for i in indices if i > first_here and checks[i].light]
    if workers > 1 and len(checks) > 1:
        assert all(on_caller == checks[index].light for index, on_caller in ran)
    else:
        assert all(on_caller for _, on_caller in ran)


def test_an_interruption_on_the_calling_thread_is_raised_at_once() -> None:
    """Ctrl-C during a check on the calling thread is not held until the queued checks ran: those
    not started are dropped."""
    started: list[int] = []

    def run(check: _Check) -> None:
        started.append(check.index)
        if check.light:
            raise KeyboardInterrupt
        time.sleep(0.05)

    checks = [_Check(i, light=False, fails=False, slow=True) for i in range(30)] + [_Check(30, True, False, False)]
    with pytest.raises(KeyboardInterrupt):
        importing_files._run_all(checks, run, 2, on_this_thread=lambda check: check.light)
    assert len(started) < len(checks)  # the queued heavy checks were cancelled, not all run


def test_checks_a_thread_has_not_begun_are_dropped_after_a_failure() -> None:
    """A thread's check that fails at once: the slow ones queued after it are not all read (a
    hostile bag could otherwise have gigabytes read after its first bad file)."""
    started: list[int] = []
    lock = threading.Lock()

    def run(check: _Check) -> None:
        with lock:
            started.append(check.index)
        if check.fails:
            time.sleep(0.05)  # long enough for a window of checks to be queued behind it
            raise _FailedError(check.index)
        time.sleep(0.3)

    checks = [_Check(0, light=False, fails=True, slow=False)]
    checks += [_Check(i, light=False, fails=False, slow=True) for i in range(1, 30)]
    with pytest.raises(_FailedError) as raised:
        importing_files._run_all(checks, run, 2, on_this_thread=lambda check: check.light)
    assert raised.value.args == (0,)
    assert len(started) <= 4  # the failing one and what the two threads had begun meanwhile (8 were queued)


@pytest.mark.parametrize(
    ("size", "threaded"),
    [(4096, False), (importing_files.THREADED_BYTES - 1, False), (importing_files.THREADED_BYTES, True)],
)
def test_which_files_are_checked_on_a_thread(tmp_path: Path, size: int, threaded: bool) -> None:
    """A file below THREADED_BYTES is the calling thread's on a store on this machine; a larger
    one, or any file into object storage (whose round trips threads overlap), a thread's."""
    Catalog.init(tmp_path / "c", operator="Test <t@example.org>")
    catalog = Catalog.open(tmp_path / "c")
    ctx: Any = catalog._ctx  # the operations' context
    payload = tmp_path / "f.bin"
    payload.write_bytes(b"\0" * size)
    check = importing_files._FileCheck(payload, "data/f.bin", {}, None)
    assert importing_files._interpreter_bound(ctx, check, {}) is not threaded
    ctx.blobs.readers_per_cpu = 4  # as object storage says of itself
    assert importing_files._interpreter_bound(ctx, check, {}) is False


def test_a_blob_linked_just_before_an_interruption_is_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C on the importing thread right after a small file was linked into the store, before
    the import noted it: nothing is imported, and no blob is left behind."""
    from evidence_catalog.store.blobstore import BlobStore

    with Catalog.init(tmp_path / "source", operator="Test <t@example.org>") as source:
        files = []
        for i in range(3):
            files.append(tmp_path / f"f{i}.txt")
            files[-1].write_text(f"file {i}\n")
        source.add(files)
        source.export(tmp_path / "bag", format="bagit")
    real = BlobStore.put_stream
    calls = []

    def interrupted(self: BlobStore, *args: Any, **kwargs: Any) -> Any:
        blob = real(self, *args, **kwargs)
        calls.append(blob.sha256)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a signal handler may, between the link and what follows
        return blob

    monkeypatch.setattr(BlobStore, "put_stream", interrupted)
    monkeypatch.setattr(importing_files.os, "cpu_count", lambda: 2)  # the threaded way, with the small files here
    with Catalog.init(tmp_path / "dest", operator="Test <t@example.org>") as dest:
        with pytest.raises(KeyboardInterrupt):
            dest.import_records(tmp_path / "bag")
        monkeypatch.setattr(BlobStore, "put_stream", real)
        assert len(calls) == 2 and dest.record_ids() == []
        left = [p for p in (tmp_path / "dest" / "blobs" / "sha256").rglob("*") if p.is_file()]
        assert left == []
        assert dest.fsck().clean
