"""With two CPUs or more, an ingest of many reports has a worker process preseal its custody
events (``ingesting_offload.Presealing``): each event's committed form but for ``prev_hash`` and
``seq``, made while the ingest goes on, from which the ingest links it into the log.  The log it
makes must be the one an ingest alone makes -- the same reports, and events whose hashes and
leaves are their documents' (``verify`` recomputes every one) -- and a worker that fails, dies
or hangs changes nothing: the ingest seals what it did not bring back.  The thresholds are
lowered so that a few reports use the worker, and each ingest runs in a new interpreter (a
worker is forked only from a process running no other thread)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence_catalog import Agent, Catalog, sealing
from evidence_catalog.operations import ingesting, ingesting_offload
from evidence_catalog.store import log

from .conftest import FixedClock
from .spawned import in_new_interpreter, script_result

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the worker is forked: Linux only")

OPERATOR = Agent(name="Test Analyst", email="analyst@example.org", host="test-host")

_presealed_chunk = ingesting_offload.presealed_chunk
_sealed_salted = sealing.sealed_salted
#: The worker's tasks so far (counted in the worker).
_tasks = 0


def _dying(drafts: Any) -> Any:
    """The worker's task, but the worker kills itself at its second."""
    global _tasks
    _tasks += 1
    if _tasks == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return _presealed_chunk(drafts)


def _hanging(drafts: Any) -> Any:
    """The worker's task, but the worker stops answering at its second."""
    global _tasks
    _tasks += 1
    if _tasks == 2:
        time.sleep(3600)
    return _presealed_chunk(drafts)


def _failing(drafts: Any) -> Any:
    """The worker's task, but every second one fails."""
    global _tasks
    _tasks += 1
    if _tasks % 2 == 0:
        raise OSError("refused in the worker")
    return _presealed_chunk(drafts)


def _short(drafts: Any) -> Any:
    """The worker's task, but it brings back one form too few."""
    return _presealed_chunk(drafts)[1:]


def write_digest(path: Path, items: int, seed: int = 0) -> Path:
    """A feed-reader digest of *items* items (each printed twice, as the format has it), some
    in other scripts."""
    lines: list[str] = []
    for i in range(items):
        if i % 7 == 0:
            lines.append(f"Feed {seed}-{i // 7} (Telegram)")
        text = f"Item {seed}-{i}: обстрел школы #{i % 5} — “report” café @source_{i % 3}"
        lines += [text, text]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _ingest(catalog: str, digest: str, case: str, chunk: int, lag: int) -> dict[str, Any]:
    """One ingest of *digest* in this (new) interpreter, with the worker unless *case* is
    ``alone``: what it recorded, and how its events were sealed."""
    global _tasks
    _tasks = 0
    # "alone": no worker; "stopped": forked for the input's size, stopped for its few items.
    ingesting_offload.OFFLOAD_BYTES = 10**12 if case == "alone" else 0
    ingesting_offload.OFFLOAD_ITEMS = 10**9 if case in ("alone", "stopped") else 1
    ingesting_offload.CHUNK = chunk
    ingesting.PRESEALED_LAG = lag
    ingesting_offload.TASK_TIMEOUT = 2.0
    # Waiting for each chunk: which events the worker presealed is then known; as shipped,
    # the ingest seals a chunk the worker has not finished itself ("eager").
    ingesting_offload.PATIENT = case != "eager"
    ingesting_offload.usable_cpus = lambda: 2  # type: ignore[attr-defined]
    tasks = {"died": _dying, "hung": _hanging, "failing": _failing, "short": _short}
    ingesting_offload.presealed_chunk = tasks.get(case, _presealed_chunk)  # type: ignore[assignment]
    sealed: list[bool] = []  # for each event sealed after a worker was had: from its presealed form

    def spy(previous: Any, draft: Any, presealed: Any = None) -> Any:
        sealed.append(presealed is not None)
        return _sealed_salted(previous, draft, presealed)

    started = time.monotonic()
    with Catalog.open(Path(catalog), operator=OPERATOR, clock=FixedClock()) as cat:
        with mock.patch.object(log, "sealed_salted", spy):
            result = cat.ingest(Path(digest))
        seconds = time.monotonic() - started
        threads = threading.active_count()
        report = cat.verify(record_event=False, remember=False, workers=1)
        reports = sorted((report.text, report.identity) for r in cat.records() for report in r.reports)
        events: list[tuple[int, str, str]] = []
        while page := cat.custody_events(after=len(events), limit=100):
            events += [(e.seq, e.action, e.subject) for e in page]
    return {
        "added": result.reports_added,
        "present": result.reports_present,
        "sealed": sealed,
        "seconds": seconds,
        "threads": threads,
        "ok": report.ok,
        "findings": [str(f) for f in report.findings],
        "events": len(events),
        "actions": sorted({action for _, action, _ in events}),
        "reports": reports,
    }


def _ingests(runs: list[tuple[str, str, str, int, int]]) -> dict[str, Any]:
    return {"runs": [_ingest(*run) for run in runs]}


def ingests_in_child(runs: list[tuple[Path, Path, str]], chunk: int = 4, lag: int = 8) -> list[dict[str, Any]]:
    """:func:`_ingest` of each ``(catalog, digest, case)``, one after the other in one new
    interpreter (each sets every threshold it uses)."""
    sent = [(str(catalog), str(digest), case, chunk, lag) for catalog, digest, case in runs]
    result = in_new_interpreter(_ingests, sent, timeout=300)
    assert "runs" in result, result
    return result["runs"]  # type: ignore[no-any-return]


def new_catalog(path: Path) -> Path:
    Catalog.init(path, operator=OPERATOR, clock=FixedClock()).close()
    return path


def same(alone: dict[str, Any], shared: dict[str, Any]) -> None:
    for key in ("added", "present", "ok", "findings", "events", "actions", "reports"):
        assert shared[key] == alone[key], key
    assert shared["ok"], shared["findings"]


def test_an_ingest_with_its_worker_makes_the_log_it_makes_alone(tmp_path: Path) -> None:
    digest = write_digest(tmp_path / "digest.txt", 45)
    shared_catalog = new_catalog(tmp_path / "shared")
    runs = [(new_catalog(tmp_path / "alone"), digest, "alone"), (shared_catalog, digest, "worker")]
    # The same again: every report is there already, nothing new to seal; and as shipped.
    runs += [(shared_catalog, digest, "worker"), (new_catalog(tmp_path / "eager"), digest, "eager")]
    runs += [(new_catalog(tmp_path / "stopped"), digest, "stopped")]
    alone, shared, again, eager, stopped = ingests_in_child(runs)
    same(alone, shared)
    assert alone["sealed"] == []  # (no worker: sealed as always)
    assert len(shared["sealed"]) == 45 and all(shared["sealed"])  # every event from the worker's form
    assert shared["threads"] == 1  # the pool's thread is gone with it
    assert (again["added"], again["present"], again["ok"]) == (0, 45, True)
    same(alone, eager)
    assert len(eager["sealed"]) == 45  # (the last chunk at least sealed here: not waited for)
    same(alone, stopped)
    assert stopped["sealed"] == [] and stopped["threads"] == 1  # sealed as always, the worker gone


@pytest.mark.no_postgresql_pass  # a worker's failure met: the same whatever the database (the SQLite run has it)
def test_what_the_worker_does_not_bring_back_is_sealed_by_the_ingest(tmp_path: Path) -> None:
    digest = write_digest(tmp_path / "digest.txt", 30)
    cases = ["alone", "died", "hung", "failing", "short"]
    alone, *others = ingests_in_child([(new_catalog(tmp_path / case), digest, case) for case in cases])
    for case, shared in zip(cases[1:], others, strict=True):
        same(alone, shared)
        assert len(shared["sealed"]) == 30, case
        assert not all(shared["sealed"]), case  # some were sealed here
        assert shared["threads"] == 1, case
    failing, hung = others[2], others[1]
    # The first task's forms are used, the second's are not, and none after a task failed.
    assert failing["sealed"][:4] == [True] * 4 and not any(failing["sealed"][4:])
    assert hung["seconds"] < 60  # two seconds given to a task, then sealed here


def test_a_small_ingest_forks_no_worker(tmp_path: Path) -> None:
    digest = write_digest(tmp_path / "digest.txt", 12)
    result = in_new_interpreter(_small_ingest, str(new_catalog(tmp_path / "c")), str(digest))
    assert result == {"worker": False, "added": 12, "ok": True}


def _small_ingest(catalog: str, digest: str) -> dict[str, Any]:
    """An ingest of fewer reports than ``OFFLOAD_ITEMS`` (as shipped)."""
    began: list[bool] = []
    begin = ingesting_offload.Presealing.begin

    def spy(self: ingesting_offload.Presealing, size: int) -> None:
        begin(self, size)
        began.append(self.pool is not None)

    ingesting_offload.Presealing.begin = spy  # type: ignore[method-assign]
    with Catalog.open(Path(catalog), operator=OPERATOR) as cat:
        result = cat.ingest(Path(digest))
        report = cat.verify(record_event=False, remember=False, workers=1)
    return {"worker": any(began), "added": result.reports_added, "ok": report.ok}


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 40), st.integers(1, 6), st.integers(1, 12), st.integers(0, 3))
def test_any_ingest_in_any_chunks_makes_a_log_that_verifies(
    tmp_path_factory: pytest.TempPathFactory, items: int, chunk: int, lag: int, seed: int
) -> None:
    folder = tmp_path_factory.mktemp("any")
    digest = write_digest(folder / "digest.txt", items, seed)
    runs = [(new_catalog(folder / "c"), digest, "worker"), (new_catalog(folder / "e"), digest, "eager")]
    patient, eager = ingests_in_child(runs, chunk=chunk, lag=lag)
    for shared in (patient, eager):
        assert shared["ok"], shared["findings"]
        assert (shared["added"], len(shared["reports"]), len(shared["sealed"])) == (items, items, items)
    assert all(patient["sealed"])


# -- a worker killed while a message is in the pipe (the command line's SIGPIPE) ----------------


def _dying_with_chunks_in_the_pipe(drafts: Any) -> Any:
    """The worker's task, but the worker is killed at its second, while the ingest is still
    writing the next chunks into the pipe to it."""
    global _tasks
    _tasks += 1
    if _tasks == 2:
        time.sleep(0.5)  # (the next chunks fill the pipe)
        os.kill(os.getpid(), signal.SIGKILL)
    return _presealed_chunk(drafts)


def _dying_answering(drafts: Any) -> Any:
    """The worker's task, but the worker is killed at its second while it writes its answer:
    half a message is in the pipe back."""
    global _tasks
    _tasks += 1
    if _tasks == 2:
        import gc
        import struct
        from multiprocessing.queues import SimpleQueue

        [answers] = [o for o in gc.get_objects() if isinstance(o, SimpleQueue)]
        os.write(answers._writer.fileno(), struct.pack("!i", 1 << 20) + b"\x80\x04")  # type: ignore[attr-defined]
        os.kill(os.getpid(), signal.SIGKILL)
    return _presealed_chunk(drafts)


_KILLED_RUN = """
import json, signal, sys
signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # as the command line has it (cli.app.run)
from tests import test_ingest_offload as t
t._{task}.__module__  # (the task is named in the worker by this module)
import evidence_catalog.operations.ingesting_offload as o
chunk, lag = 64, 256

o.presealed_chunk = t._{task}
o.OFFLOAD_ITEMS, o.OFFLOAD_BYTES, o.CHUNK, o.TASK_TIMEOUT, o.PATIENT = 1, 0, chunk, 2.0, True
from evidence_catalog.operations import ingesting
ingesting.PRESEALED_LAG = lag
o.usable_cpus = lambda: 2
from pathlib import Path
from evidence_catalog import Catalog
with Catalog.open(Path(sys.argv[1]), operator=t.OPERATOR, clock=t.FixedClock()) as cat:
    result = cat.ingest(Path(sys.argv[2]))
    report = cat.verify(record_event=False, remember=False, workers=1)
print(json.dumps({{"added": result.reports_added, "ok": report.ok}}), flush=True)
"""


@pytest.mark.no_postgresql_pass  # a worker's failure met: the same whatever the database (the SQLite run has it)
@pytest.mark.parametrize("task", ["dying_with_chunks_in_the_pipe", "dying_answering"])
def test_an_ingest_whose_worker_is_killed_ends_as_the_command_runs_it(tmp_path: Path, task: str) -> None:
    """A worker killed (the OOM killer, an operator) while the ingest writes a chunk into the
    pipe to it, or while it writes its answer back, changes nothing but the time: under the
    command line, whose SIGPIPE ends the process, the ingest still seals what the worker did
    not bring back, and the process ends."""

    digest = write_digest(tmp_path / "digest.txt", 1000)
    catalog = new_catalog(tmp_path / "c")
    script = _KILLED_RUN.format(task=task)
    started = time.monotonic()
    last = script_result(script, str(catalog), str(digest), "worker", timeout=90, what="the ingest's process")
    assert last == '{"added": 1000, "ok": true}'
    assert time.monotonic() - started < 60
