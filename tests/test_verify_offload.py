"""With more than one CPU, ``verify`` leaves the events' hashes and the small files to worker
processes (``verifying._Offload``): the findings must be exactly those it makes alone, whatever
is damaged, and a worker that dies or fails changes nothing (its work is done again in the
verifying process).  The threshold is lowered here so that a small catalog uses the workers."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import signal
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evidence_catalog import Agent, Catalog
from evidence_catalog.findings import BlobMissing, DigestMismatch, EventEdited, RecordMismatch
from evidence_catalog.operations import verifying

from .conftest import FixedClock, run_sql
from .spawned import script_result

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


def _offloading(started: list[Any], kill: bool = False) -> None:
    """Worker processes for every verification (three CPUs, no threshold, small tasks); the
    offloads started are kept in *started* to check they were; with *kill*, the workers are
    killed as soon as they are started."""
    verifying.usable_cpus = lambda: 3  # type: ignore[assignment]
    verifying.OFFLOAD_WORK = 0
    verifying.EVENT_CHUNK = 3
    verifying.GROUP_FILES = 2
    start = verifying._Offload.start

    def spy(*args: Any, **kwargs: Any) -> Any:
        offload = start(*args, **kwargs)
        started.append(offload)
        if kill and offload is not None:
            _kill_workers(offload)
        return offload

    verifying._Offload.start = spy  # type: ignore[method-assign]


def _case(path: str, case: str) -> dict[str, Any]:
    """One case, run in a process of its own (see :func:`in_child`): the verification alone
    (``workers=1``) and with worker processes, and what the workers did."""
    started: list[Any] = []
    _offloading(started, kill=case == "killed")
    alone = verified(Path(path), workers=1)  # workers given: no worker processes
    before = list(started)
    if case == "unpicklable":  # a task the pool cannot even send is done here
        task = verifying.hashed_events
        verifying.hashed_events = lambda chunk: task(chunk)  # type: ignore[assignment]
    progress: list[int] = []
    with Catalog.open(Path(path), operator=OPERATOR) as catalog:
        shared = catalog.verify(record_event=False, remember=False, progress=progress.append)
    return {
        "alone": alone,
        "shared": shared,
        "before": before,
        "started": [None if offload is None else offload.broken for offload in started],
        "progress": sum(progress),
    }


def in_child(path: Path, case: str) -> dict[str, Any]:
    """:func:`_case` in a new interpreter: a verification forks its workers only from a
    process running no other thread, and a test process may run some (another module's test
    server)."""
    [found] = in_one_child([path], case)
    return found


def in_one_child(paths: list[Path], case: str) -> list[dict[str, Any]]:
    """:func:`_case` of each catalog, one after the other in one new interpreter."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_cases, [str(path) for path in paths], case).result(timeout=600)


def _cases(paths: list[str], case: str) -> list[dict[str, Any]]:
    original = verifying._Offload.start
    found = []
    for path in paths:
        try:
            found.append(_case(path, case))
        finally:
            verifying._Offload.start = original  # type: ignore[method-assign]
    return found


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
def test_worker_processes_find_exactly_what_one_process_finds(base: Path, damaged: bool) -> None:
    if damaged:
        damage(base)
    case = in_child(base, "plain")
    assert case["before"] == []  # workers=1: none started
    assert case["started"] == [False]  # the workers did it, and the pool never broke
    alone, shared = case["alone"], case["shared"]
    assert shared == alone
    assert alone.ok is not damaged
    if damaged:
        kinds = {type(f) for f in shared.findings}
        assert {EventEdited, RecordMismatch, DigestMismatch, BlobMissing} <= kinds
        assert [f.seq for f in shared.findings if isinstance(f, EventEdited)] == [3, 17, 41]
    else:
        assert case["progress"] == shared.bytes_checked > 3 * 1024 * 1024


def _kill_workers(offload: Any) -> None:
    for process in list(offload.pool._processes.values()):
        with contextlib.suppress(ProcessLookupError):  # the pool ends the others when one dies
            os.kill(process.pid, signal.SIGKILL)
        process.join()


@pytest.mark.no_postgresql_pass  # a worker's failure met: the same whatever the database (the SQLite run has it)
@pytest.mark.parametrize("damaged", [False, True])
def test_workers_killed_change_no_finding(base: Path, damaged: bool) -> None:
    if damaged:
        damage(base)
    case = in_child(base, "killed")
    assert case["shared"] == case["alone"]
    assert case["started"] == [True]  # the pool was found broken, and its work done here
    assert case["alone"].ok is not damaged


@pytest.mark.no_postgresql_pass  # a worker's failure met: the same whatever the database (the SQLite run has it)
def test_a_task_that_fails_in_a_worker_is_done_again_here(base: Path) -> None:
    """A task the pool cannot even send (here: a function it cannot pickle) is done here."""
    damage(base)
    case = in_child(base, "unpicklable")
    assert case["started"] == [False]  # the workers were started
    assert case["shared"] == case["alone"]
    assert not case["alone"].ok


def test_other_threads_keep_the_verification_in_this_process(base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process running another thread does not fork (a lock that thread holds would stay
    held in the worker): the verification runs here, and finds the same."""
    started: list[Any] = []
    for name, value in (("usable_cpus", lambda: 3), ("OFFLOAD_WORK", 0)):
        monkeypatch.setattr(verifying, name, value)
    start = verifying._Offload.start

    def spy(*args: Any, **kwargs: Any) -> Any:
        offload = start(*args, **kwargs)
        started.append(offload)
        return offload

    monkeypatch.setattr(verifying._Offload, "start", spy)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        shared = verified(base)
    finally:
        stop.set()
        other.join()
    assert started == [None]
    assert shared == verified(base, workers=1)


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(st.integers(0, 5000), max_size=30), skip=st.integers(-3, 60000))
def test_a_group_done_again_hands_on_only_the_bytes_not_counted_yet(chunks: list[int], skip: int) -> None:
    """A group of files its worker left (died, or never answered) is hashed again here: what the
    worker had counted of it is not handed to the progress callback again."""
    got: list[int] = []
    progress = verifying._after(skip, got.append)
    assert progress is not None
    for chunk in chunks:
        progress(chunk)
    assert sum(got) == max(0, sum(chunks) - max(skip, 0))
    assert verifying._after(skip, None) is None


@pytest.mark.no_postgresql_pass  # a worker's failure met: the same whatever the database (the SQLite run has it)
def test_workers_killed_leave_each_byte_counted_once(base: Path) -> None:
    case = in_child(base, "killed")
    assert case["started"] == [True]
    assert case["progress"] == case["shared"].bytes_checked


_ON_A_TERMINAL = r"""
import os, sys, threading
from evidence_catalog.operations import verifying
cpus = int(sys.argv[2])
verifying.usable_cpus = lambda: cpus
verifying.OFFLOAD_WORK = 0
start = verifying._Offload.start

def spy(*args, **kwargs):
    threads = threading.active_count()  # as it forks
    offload = start(*args, **kwargs)
    said = "workers" if offload is not None else "no workers"
    os.write(1, f"{said} {threads}\n".encode())  # not print: a bar drawn already takes sys.stdout over
    return offload

verifying._Offload.start = spy
sys.argv = ["evidence-catalog", "verify", "--catalog", sys.argv[1], "--no-log", "--no-remember"]
from evidence_catalog.cli import run
run()
"""


@pytest.mark.parametrize("cpus", [2, 1])
def test_the_command_on_a_terminal_gets_its_workers_and_draws_its_bar(base: Path, cpus: int) -> None:
    """On a terminal, ``verify`` draws a progress bar, whose thread would keep it from forking:
    the bar is drawn from the first bytes counted, after the workers are forked (on one CPU,
    without workers, the first bytes are counted on the hashing threads)."""
    import pty
    import subprocess

    main, terminal = pty.openpty()
    root = Path(__file__).resolve().parent.parent
    child = subprocess.Popen(
        [sys.executable, "-c", _ON_A_TERMINAL, str(base), str(cpus)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root), "COLUMNS": "100", "TERM": "xterm"},
        stdout=subprocess.PIPE,
        stderr=terminal,
        text=True,
    )
    os.close(terminal)
    drawn = b""
    with contextlib.suppress(OSError):  # EIO: the child closed the terminal
        while chunk := os.read(main, 65536):
            drawn += chunk
    os.close(main)
    out, _ = child.communicate(timeout=300)
    assert child.returncode == 0, (out, drawn)
    # Forked while this was the only thread (one CPU: no workers, and no fork).
    assert out.splitlines()[0] == ("workers 1" if cpus > 1 else "no workers 1"), out
    assert b"verifying" in drawn  # and the bar was drawn


#: Hostile edits of stored values, each a statement on the SQLite file: the events' every column
#: (the workers make their documents from the stored text), the records' rows, the tree, a
#: checkpoint, an artifact's size.
HOSTILE_EDITS = {
    "event time": "update custody_event set at = '2001-02-03 04:05:06' where seq = 5",
    "event actor": "update custody_event set actor = json_set(actor, '$.name', 'Mallory') where seq = 6",
    "event action": "update custody_event set action = 'tags.added' where seq = 7",
    "event subject": "update custody_event set subject = subject || 'x' where seq = 9",
    "event link": "update custody_event set prev_hash = hash where seq = 12",
    "event hash": "update custody_event set hash = '" + "cd" * 32 + "' where seq = 20",
    "event detail": "update custody_event set details = json_set(details, '$.tags', json('[\"x\"]')) where seq = 30",
    "event secret": "update custody_event set details = json_set(details, '$.salt', upper(details ->> '$.salt'))"
    " where seq = 31",
    "event details not JSON": "update custody_event set details = 'not json' where seq = 32",
    "event details with a member twice": 'update custody_event set details = \'{"salt": "forged", \''
    " || substr(details, 2) where seq = 34",
    "event gone": "delete from custody_event where seq = 33",
    "record title": "update record set title = 'forged' where id = (select min(id) from record)",
    "record acquisition": "update acquisition set body = json_set(body, '$.original_path', '/elsewhere')"
    " where id = (select max(id) from acquisition)",
    "record tag": "delete from record_tag where record_id = (select max(record_id) from record_tag)",
    "artifact size": "update artifact set size = size + 1 where sha256 = (select min(sha256) from artifact)",
    "merkle node": "update merkle_node set hash = '" + "ab" * 32 + "' where level = 1 and idx = 3",
    "checkpoint": "update checkpoint set note = replace(note, '\n', ' \n') where id = (select max(id) from checkpoint)",
}


@pytest.mark.no_postgresql_pass  # edits the SQLite file itself
def test_a_hostile_edit_of_any_stored_value_is_found_alike_with_workers(base: Path, tmp_path: Path) -> None:
    # Each edit on a copy of its own, all verified in one new interpreter (an interpreter for
    # each took most of this test's time).
    edits = sorted(HOSTILE_EDITS)
    copies = [tmp_path / f"edited-{n}" for n in range(len(edits))]
    for edit, copy in zip(edits, copies, strict=True):
        shutil.copytree(base, copy)
        run_sql(copy, HOSTILE_EDITS[edit], foreign_keys=False)
    for edit, case in zip(edits, in_one_child(copies, "plain"), strict=True):
        assert case["started"] == [False], edit  # the workers did their part
        assert not case["alone"].ok, edit
        assert case["shared"] == case["alone"], edit


_HELD = """
import sys, time
from pathlib import Path
from evidence_catalog import Catalog
from evidence_catalog.operations import verifying
verifying.usable_cpus = lambda: 2
verifying.OFFLOAD_WORK = 0
start = verifying._Offload.start

def held(*args, **kwargs):
    offload = start(*args, **kwargs)
    print(" ".join(str(pid) for pid in offload.pool._processes), flush=True)
    time.sleep(120)  # killed here, its workers started and idle
    return offload

verifying._Offload.start = held
with Catalog.open(Path(sys.argv[1])) as catalog:
    catalog.verify(record_event=False, remember=False)
"""


def _alive(pid: int) -> bool:
    """Whether *pid* still runs (a zombie waiting for whoever inherited it does not)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_workers_of_a_killed_verification_die_with_it(base: Path) -> None:
    """A verification killed (SIGKILL) while its workers are idle leaves none of them behind:
    each would keep a copy of its database connection open, and nothing else ends it."""
    import subprocess
    import time

    child = subprocess.Popen([sys.executable, "-c", _HELD, str(base)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        workers = [int(pid) for pid in child.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(pid) for pid in workers)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in workers if _alive(pid)]
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"workers {left} outlived the verification"


# -- a worker killed while events are in the pipe to it (the command line's SIGPIPE) ------------

_hashed_events = verifying.hashed_events
_hashing_tasks = 0
#: The verifying process (its own calls are not a worker's).
_verifying_process = os.getpid()


def _dying_with_events_in_the_pipe(rows: Any) -> Any:
    """A worker's task, but the worker is killed at its second, while this verification is
    still writing the next chunks of events into the pipe to it."""
    global _hashing_tasks
    if os.getpid() == _verifying_process:  # the work done again here
        return _hashed_events(rows)
    _hashing_tasks += 1
    if _hashing_tasks == 2:
        import time

        time.sleep(0.5)  # (the next chunks fill the pipe)
        os.kill(os.getpid(), signal.SIGKILL)
    return _hashed_events(rows)


_KILLED_VERIFY = """
import json, signal, sys
signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # as the command line has it (cli.app.run)
from tests import test_verify_offload as t
t._verifying_process = __import__("os").getpid()
from evidence_catalog.operations import verifying
verifying.hashed_events = t._dying_with_events_in_the_pipe
verifying.usable_cpus = lambda: 1 + 1
verifying.OFFLOAD_WORK, verifying.EVENT_CHUNK, verifying.TASK_TIMEOUT = 0, 400, 20.0
from pathlib import Path
from evidence_catalog import Catalog
with Catalog.open(Path(sys.argv[1]), operator=t.OPERATOR) as cat:
    report = cat.verify(record_event=False, remember=False)
print(json.dumps({"ok": report.ok, "events": report.events_checked}), flush=True)
"""


@pytest.mark.no_postgresql_pass  # a worker's failure met: the same whatever the database (the SQLite run has it)
def test_a_worker_killed_with_events_in_the_pipe_leaves_the_verification_running(tmp_path: Path) -> None:
    """Under the command line, whose SIGPIPE ends the process, a worker killed while chunks of
    events are written to it is a worker gone, whose work is done again here: the verification
    ends as it ends alone (before, the process ended with the signal)."""
    import time

    lines = [
        line for i in range(1500) for line in ([f"Feed {i} (Telegram)"] if i % 50 == 0 else []) + [f"x {i} " * 40] * 2
    ]
    digest = tmp_path / "digest.txt"
    digest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with Catalog.init(tmp_path / "c", operator=OPERATOR, clock=FixedClock()) as catalog:
        catalog.ingest(digest)
    started = time.monotonic()
    last = script_result(_KILLED_VERIFY, str(tmp_path / "c"), timeout=120, what="the verification's process")
    assert last == '{"ok": true, "events": 1502}'
    assert time.monotonic() - started < 60


def _worker_collector_state() -> tuple[bool, bool]:
    """In a new interpreter: whether a verification's worker, forked while ``verify`` has the
    collector paused, collects (and whether the forking process had it paused)."""
    import gc

    from evidence_catalog.operations.workers import forked_pool, stop_pool

    gc.disable()  # as verify() has it while its workers are forked
    pool = forked_pool(1, 60.0, verifying._worker_started, os.getpid())
    assert pool is not None
    try:
        return pool.submit(gc.isenabled).result(timeout=60), gc.isenabled()
    finally:
        stop_pool(pool, kill=True, seconds=5.0)


def test_a_verification_worker_collects_the_cycles_its_tasks_leave() -> None:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        in_worker, in_verifier = pool.submit(_worker_collector_state).result(timeout=120)
    assert in_worker is True and in_verifier is False
