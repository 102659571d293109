"""With two CPUs or more, an import of many records has a worker process preseal most of its
``record.imported`` events (``importing_offload.ImportSeals`` over ``ingesting_offload.Presealing``)
while it writes the records.  What it imports must be what an import alone imports -- the same
records, events whose hashes and leaves are their documents' (``verify`` recomputes every one)
-- and a worker that fails, dies or hangs changes nothing: the import seals what it did not
bring back.  The thresholds are lowered so that a few records use the worker, and each import
runs in a new interpreter (a worker is forked only from a process running no other thread)."""

from __future__ import annotations

import functools
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

from evidence_catalog import Catalog, custody, sealing
from evidence_catalog.interchange import import_documents
from evidence_catalog.interchange import importing as reading
from evidence_catalog.operations import importing, importing_files, importing_offload, ingesting_offload
from evidence_catalog.store import log

from . import test_ingest_offload as ingest_tests
from .conftest import FixedClock
from .spawned import in_new_interpreter

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the worker is forked: Linux only")

OPERATOR = ingest_tests.OPERATOR
_sealed_salted = sealing.sealed_salted
_hash_checked = reading.hash_checked
_hashed_lines = import_documents.hashed_lines


def _misbehaving(chunk: Any, how: str) -> Any:
    """The worker's hashing of a bag's events, but at its second task the worker kills itself
    (``dies``), stops answering (``hangs``) or fails (``fails``, every second task)."""
    global _hashing_tasks
    _hashing_tasks += 1
    if _hashing_tasks == 2 and how == "dies":
        os.kill(os.getpid(), signal.SIGKILL)
    if _hashing_tasks == 2 and how == "hangs":
        time.sleep(3600)
    if _hashing_tasks % 2 == 0 and how == "fails":
        raise OSError("refused in the worker")
    return _hashed_lines(chunk)


_hashing_tasks = 0


_stored_elsewhere = importing_files._stored_elsewhere
_settle = importing_files.EarlyFiles._settle


def _storing(task: Any, how: str) -> Any:
    """The worker's storing of a chunk of a bag's small files, but at its second chunk the
    worker kills itself halfway through it (``dies``), stops answering (``hangs``) or fails
    (``fails``), or it answers every chunk one file short (``short``)."""
    global _storing_tasks
    _storing_tasks += 1
    root, algorithms, fsync, journal, files = task
    if _storing_tasks == 2 and how in ("dies", "hangs"):
        _stored_elsewhere((root, algorithms, fsync, journal, files[: len(files) // 2]))  # stored, never said
        if how == "dies":
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(3600)
    if _storing_tasks == 2 and how == "fails":
        raise OSError("refused in the worker")
    found = _stored_elsewhere(task)
    return found[:-1] if how == "short" else found


_storing_tasks = 0


#: How a case has the worker misbehave, by case (partials of module-level functions: the pool
#: sends them to the worker by name).
_HOW = {"died": "dies", "hung": "hangs", "failed": "fails"}
_STORING: dict[str, Any] = {f"storing {case}": functools.partial(_storing, how=how) for case, how in _HOW.items()}
_STORING["storing short"] = functools.partial(_storing, how="short")


def _hashing_short(chunk: Any) -> Any:
    """The first hash left out (``None``: the import makes it), and the last not brought back."""
    found = _hashed_lines(chunk)
    return [None, *found[1:-1]]


_HASHING: dict[str, Any] = {f"hashing {case}": functools.partial(_misbehaving, how=how) for case, how in _HOW.items()}
_HASHING["hashing short"] = _hashing_short


def _import(
    catalog: str, source: str, blobs: str | None, case: str, chunk: int, lead: int, share: float
) -> dict[str, Any]:
    """One import of *source* in this (new) interpreter, with the worker unless *case* is
    ``alone``: what it recorded, and how its events were sealed."""
    ingest_tests._tasks = 0
    ingesting_offload.OFFLOAD_BYTES = 10**12 if case == "alone" else 0
    importing.OFFLOAD_ITEMS = 10**9 if case in ("alone", "stopped") else 1
    ingesting_offload.CHUNK = chunk
    importing_offload.LEAD = lead
    importing_offload.SHARE = share
    ingesting_offload.TASK_TIMEOUT = 2.0
    ingesting_offload.PATIENT = True
    ingesting_offload.usable_cpus = lambda: 2  # type: ignore[attr-defined]
    tasks = {
        "died": ingest_tests._dying,
        "hung": ingest_tests._hanging,
        "failing": ingest_tests._failing,
        "short": ingest_tests._short,
    }
    ingesting_offload.presealed_chunk = tasks.get(case, ingest_tests._presealed_chunk)  # type: ignore[assignment]
    reading.HASHED_CHUNK = chunk
    importing_files.STORE_CHUNK = chunk
    importing_offload.hashed_lines = _HASHING.get(case, _hashed_lines)  # type: ignore[assignment]
    importing_files._stored_elsewhere = _STORING.get(case, _stored_elsewhere)  # type: ignore[assignment]
    stored_early: list[int] = []  # files the worker stored, as the import found them

    def settle_spy(early: Any, done: dict[Any, Any]) -> None:
        _settle(early, done)
        stored_early.append(len(done))

    importing_files.EarlyFiles._settle = settle_spy  # type: ignore[method-assign]
    sealed: list[tuple[str, bool]] = []  # each event sealed after a worker was had: from a presealed form?
    hashed: list[bool] = []  # each bag event checked: was its hash made by the worker?

    def hash_spy(event: Any, where: str, given: Any = None) -> bytes:
        hashed.append(given is not None)
        return _hash_checked(event, where, given)

    reading.hash_checked = hash_spy  # type: ignore[assignment]

    def spy(previous: Any, draft: Any, presealed: Any = None) -> Any:
        sealed.append((draft["action"], presealed is not None))
        return _sealed_salted(previous, draft, presealed)

    started = time.monotonic()
    with Catalog.open(Path(catalog), operator=OPERATOR, clock=FixedClock()) as cat:
        with mock.patch.object(log, "sealed_salted", spy):
            kwargs: dict[str, Any] = {} if blobs is None else {"blobs": Path(blobs), "accept_unsigned": True}
            result = cat.import_records(Path(source), **kwargs)
        seconds = time.monotonic() - started
        threads = threading.active_count()
        report = cat.verify(record_event=False, remember=False, workers=1)
        records = sorted((r.id, r.title, tuple(r.tags)) for r in cat.records())
        events: list[tuple[str, str]] = []
        while page := cat.custody_events(after=len(events), limit=100):
            events += [(e.action, e.subject) for e in page]
    return {
        "added": len(result.records_added),
        "stored": (result.artifacts_stored, result.artifacts_present, result.bytes_stored),
        "sealed": sealed,
        "hashed": hashed,
        "stored_early": sum(stored_early),
        "blobs": sorted(p.name for p in (Path(catalog) / "blobs").rglob("*") if p.is_file()),
        "seconds": seconds,
        "threads": threads,
        "ok": report.ok,
        "findings": [str(f) for f in report.findings],
        "events": events,
        "records": records,
    }


def _imports(runs: list[tuple[Any, ...]]) -> dict[str, Any]:
    return {"runs": [_import(*run) for run in runs]}


def imports_in_child(
    runs: list[tuple[Path, Path, Path | None, str]], chunk: int = 4, lead: int = 6, share: float = 0.75
) -> list[dict[str, Any]]:
    sent = [
        (str(catalog), str(source), None if blobs is None else str(blobs), case, chunk, lead, share)
        for catalog, source, blobs, case in runs
    ]
    result = in_new_interpreter(_imports, sent, timeout=300)
    assert "runs" in result, result
    return result["runs"]  # type: ignore[no-any-return]


def exported(folder: Path, records: int, *, selection: bool = False) -> tuple[Path, Path | None]:
    """A catalog of *records* small files, exported as a bag (signed), or a selection of them
    as JSON Lines (unsigned: each imported record also gets its tag's event); the export, and
    the folder its bytes are in (JSON Lines)."""
    folder.mkdir()
    files = []
    for n in range(records):
        path = folder / "in" / f"{n:03d}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"statement {n}: обстрел школы — “report”\n" * (n % 4 + 1), encoding="utf-8")
        files.append(path)
    source = folder / "source"
    with Catalog.init(source, operator=OPERATOR, clock=FixedClock()) as cat:
        ids = [r.record_id for r in cat.add(files)]
        if selection:
            cat.export(folder / "export.jsonl", format="jsonl", record_ids=ids)
            return folder / "export.jsonl", source
        cat.export(folder / "bag", format="bagit")
    return folder / "bag", None


def new_catalog(path: Path) -> Path:
    return ingest_tests.new_catalog(path)


def same(alone: dict[str, Any], shared: dict[str, Any]) -> None:
    for key in ("added", "stored", "ok", "findings", "events", "records"):
        assert shared[key] == alone[key], key
    assert shared["ok"], shared["findings"]


@pytest.mark.parametrize("selection", [False, True], ids=["signed bag", "unsigned selection"])
def test_an_import_with_its_worker_makes_the_log_it_makes_alone(tmp_path: Path, selection: bool) -> None:
    source, blobs = exported(tmp_path / "export", 30, selection=selection)
    runs = [(new_catalog(tmp_path / case), source, blobs, case) for case in ("alone", "worker", "stopped")]
    alone, shared, stopped = imports_in_child(runs)
    same(alone, shared)
    same(alone, stopped)
    assert alone["sealed"] == [] and stopped["sealed"] == []  # (no worker: sealed as always)
    imported = [presealed for action, presealed in shared["sealed"] if action == "record.imported"]
    assert len(imported) == 30
    # Of every hundred records, the first three quarters are presealed by the worker.
    assert imported == [n % 100 < 75 for n in range(30)]
    tagged = [presealed for action, presealed in shared["sealed"] if action == "tags.added"]
    assert tagged == ([False] * 30 if selection else [])  # (sealed here, beside the worker's)
    assert shared["threads"] == 1 and stopped["threads"] == 1  # the pool's thread is gone with it
    # A bag's custody events are hashed by the worker while the records are read (the import
    # compares each hash); without a worker, or from JSON Lines, by the import as it reads each.
    assert alone["hashed"] == []
    events = 0 if selection else len((source / "data" / "custody.jsonl").read_text().splitlines())
    assert events in (0, 31)  # the log key's event and one a record
    assert shared["hashed"] == stopped["hashed"] == [True] * events


def test_a_bags_small_files_are_stored_by_the_worker_while_its_records_are_read(tmp_path: Path) -> None:
    source, blobs = exported(tmp_path / "export", 24)
    cases = ["alone", "worker", "storing died", "storing hung", "storing failed", "storing short"]
    alone, shared, *others = imports_in_child(
        [(new_catalog(tmp_path / case), source, blobs, case) for case in cases], chunk=4
    )
    assert alone["stored_early"] == 0 and shared["stored_early"] == 24
    for case, run in zip(cases[1:], [shared, *others], strict=True):
        same(alone, run)
        # the same blobs: none the worker stored and did not say is left unclaimed
        assert run["blobs"] == alone["blobs"], case
        assert run["threads"] == 1, case
    died, hung, failed, short = others
    # What the worker stored and said is used (the first chunk, ended before it died or hung;
    # every chunk but the one that failed); the import stores the rest, and half of the chunk
    # the worker died or hung in, which it stored and never said, is no blob left unclaimed.
    assert died["stored_early"] == hung["stored_early"] == 4
    assert failed["stored_early"] == 20
    assert short["stored_early"] == 0  # an answer short of its chunk is not used at all
    assert hung["seconds"] < 60


@pytest.mark.no_postgresql_pass  # a worker's failure met: the same whatever the database (the SQLite run has it)
def test_a_bag_whose_events_the_worker_does_not_hash_imports_as_alone(tmp_path: Path) -> None:
    source, blobs = exported(tmp_path / "export", 24)
    cases = ["alone", "hashing died", "hashing hung", "hashing failed", "hashing short"]
    alone, died, hung, failed, short = imports_in_child(
        [(new_catalog(tmp_path / case), source, blobs, case) for case in cases], chunk=4
    )
    for case, shared in zip(cases[1:], (died, hung, failed, short), strict=True):
        same(alone, shared)
        assert len(shared["hashed"]) == 25 and not all(shared["hashed"]), case
        assert shared["threads"] == 1, case
    # The first chunk's hashes are used; at the second task the worker is given up on (dead,
    # hung or failed), and the import hashes the rest; a short answer leaves what it lacks to
    # the import.
    for given_up in (died, hung):
        assert given_up["hashed"] == [True] * 4 + [False] * 21
    # A task that failed is hashed here; a task the worker ended after it may be used or not,
    # as the import finds it ended or not when it asks (it does not wait for a worker given up on).
    assert failed["hashed"][:8] == [True] * 4 + [False] * 4
    assert short["hashed"] == [False, True, True, False] * 6 + [False]
    assert hung["seconds"] < 60


@pytest.mark.no_postgresql_pass  # a worker's failure met: the same whatever the database (the SQLite run has it)
def test_what_the_worker_does_not_bring_back_is_sealed_by_the_import(tmp_path: Path) -> None:
    source, blobs = exported(tmp_path / "export", 24)
    cases = ["alone", "died", "hung", "failing", "short"]
    alone, *others = imports_in_child(
        [(new_catalog(tmp_path / case), source, blobs, case) for case in cases], share=1.0
    )
    for case, shared in zip(cases[1:], others, strict=True):
        same(alone, shared)
        presealed = [p for _, p in shared["sealed"]]
        assert len(presealed) == 24, case
        assert not all(presealed), case  # some were sealed here
        assert shared["threads"] == 1, case
    failing, hung = others[2], others[1]
    # The first task's forms are used, the second's are not, and none after a task failed.
    assert [p for _, p in failing["sealed"]][:4] == [True] * 4 and not any(p for _, p in failing["sealed"][4:])
    assert hung["seconds"] < 60  # two seconds given to a task, then sealed here


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 30), st.integers(1, 6), st.integers(0, 12), st.sampled_from([0.0, 0.5, 0.85, 1.0]))
def test_any_import_in_any_chunks_makes_a_log_that_verifies(
    tmp_path_factory: pytest.TempPathFactory, records: int, chunk: int, lead: int, share: float
) -> None:
    folder = tmp_path_factory.mktemp("any")
    source, blobs = exported(folder / "export", records, selection=records % 2 == 1)
    [shared] = imports_in_child([(new_catalog(folder / "c"), source, blobs, "worker")], chunk, lead, share)
    assert shared["ok"], shared["findings"]
    assert shared["added"] == records == len(shared["records"])
    imported = [p for action, p in shared["sealed"] if action == "record.imported"]
    assert imported == [n % 100 < share * 100 for n in range(records)]


# -- the bookkeeping: records left out, events of several kinds ----------------------------------


class _Worker:
    """A presealing at work, as far as ImportSeals sees it: each draft sent is answered with a
    form naming its subject, in order."""

    active = True

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.taken = 0

    def draft(self, draft: Any) -> Any:
        self.sent.append(draft["subject"])
        return ingesting_offload.salted(draft)

    def flush(self) -> None:
        pass

    def take(self, count: int, *, wait: bool = True) -> list[Any]:
        assert self.taken + count <= len(self.sent), "forms taken for drafts not sent"
        forms = [f"form of {subject}" for subject in self.sent[self.taken : self.taken + count]]
        self.taken += count
        return forms


@given(
    st.integers(1, 250),
    st.data(),
    st.integers(0, 20),
    st.sampled_from([0.0, 0.3, 0.85, 1.0]),
)
def test_each_event_gets_its_own_form_whatever_records_are_left_out(
    count: int, data: st.DataObject, lead: int, share: float
) -> None:
    """The import writes a subset of the records it prepared (another writer added some
    meanwhile), in batches, and perhaps one it was not made for: every event it links gets the
    form made of its own draft, or none."""
    order = [f"r{n}" for n in range(count)]
    left_out = data.draw(st.sets(st.integers(0, count - 1), max_size=30), label="left out")
    kept = [r for n, r in enumerate(order) if n not in left_out]
    for n in range(data.draw(st.integers(0, 3), label="records it was not made for")):
        kept.insert(data.draw(st.integers(0, len(kept)), label="where"), f"new{n}")
    sizes = data.draw(st.lists(st.integers(1, 120), min_size=1), label="batches")
    twice = {order[n] for n in data.draw(st.sets(st.integers(0, count - 1), max_size=30), label="tagged")}

    def make(record_id: str) -> list[Any]:
        at, actor = FixedClock()(), OPERATOR
        drafts = [
            {"at": at, "actor": actor, "action": "record.imported", "subject": record_id, "details": {"n": record_id}}
        ]
        if record_id in twice:
            drafts.append(
                {"at": at, "actor": actor, "action": "tags.added", "subject": record_id, "details": {"tags": ["x"]}}
            )
        return drafts

    worker = _Worker()
    with mock.patch.multiple(importing_offload, LEAD=lead, SHARE=share):
        seals = importing_offload.ImportSeals(worker, order, make)  # type: ignore[arg-type]
        start, batch = 0, 0
        while start < len(kept):
            ids = kept[start : start + sizes[batch % len(sizes)]]
            drafts, forms = seals.events(ids)
            assert forms is not None and len(forms) == len(drafts)
            assert [d["subject"] for d in drafts] == [r for r in ids for _ in range(1 + (r in twice))]
            for draft, form in zip(drafts, forms, strict=True):
                assert custody.SALT in draft["details"]  # every draft holds its secret
                if form is not None:
                    assert draft["action"] == "record.imported" and form == f"form of {draft['subject']}"
                    assert draft["subject"].startswith("r") and int(draft["subject"][1:]) % 100 < share * 100
            start += len(ids)
            batch += 1
        # Nothing is kept of the records up to the last one written (left out ones included).
        last = max((order.index(r) for r in kept if r in order), default=-1)
        assert not (set(seals.drafts) | set(seals.forms)) & set(order[: last + 1])


def test_a_form_taken_for_a_record_left_out_is_not_kept() -> None:
    """A record left out (another writer added it) whose form the worker made is passed over
    when the forms after it are taken: nothing is kept of it."""
    order = [f"r{n}" for n in range(150)]
    kept = [r for r in order if r != "r29"]  # r29: the worker's (29 < 30), left out

    def make(record_id: str) -> list[Any]:
        return [
            {"at": FixedClock()(), "actor": OPERATOR, "action": "record.imported", "subject": record_id, "details": {}}
        ]

    worker = _Worker()
    with mock.patch.multiple(importing_offload, LEAD=0, SHARE=0.3):
        seals = importing_offload.ImportSeals(worker, order, make)  # type: ignore[arg-type]
        for record_id in kept:
            _, forms = seals.events([record_id])
            assert forms is not None
            assert forms[0] in (None, f"form of {record_id}")
    assert worker.taken > 30  # r100 and after: r29's form was taken on the way
    assert not set(seals.drafts) | set(seals.forms)


def _refusals(runs: list[tuple[str, str, str]]) -> dict[str, Any]:
    """Each bag imported into a new catalog alone or with the worker: what it raised, and the
    blobs left in the catalog."""
    found = []
    ingesting_offload.usable_cpus = lambda: 2  # type: ignore[attr-defined]
    importing.OFFLOAD_ITEMS = 1
    importing_files.STORE_CHUNK = 4
    made: list[int] = []  # blobs the worker stored and said, in each import

    def settle_spy(early: Any, done: dict[Any, Any]) -> None:
        _settle(early, done)
        made.append(len(early.created))

    importing_files.EarlyFiles._settle = settle_spy  # type: ignore[method-assign]
    ingesting_offload.TASK_TIMEOUT = 2.0  # (also how long the worker is waited for to start)
    for catalog, bag, case in runs:
        made.clear()
        ingesting_offload.OFFLOAD_BYTES = 10**12 if case == "alone" else 0
        importing_files._stored_elsewhere = _STORING.get(case, _stored_elsewhere)  # type: ignore[assignment]
        with Catalog.open(Path(catalog), operator=OPERATOR, clock=FixedClock()) as cat:
            try:
                cat.import_records(Path(bag))
                outcome = "imported"
            except Exception as exc:  # noqa: BLE001 -- what the test compares
                outcome = f"{type(exc).__name__}: {exc}"
            blobs = sorted(p.name for p in (Path(catalog) / "blobs").rglob("*") if p.is_file() and p.name != ".lock")
            found.append(
                {"outcome": outcome, "blobs": blobs, "threads": threading.active_count(), "made": max(made, default=0)}
            )
    return {"runs": found}


def test_a_damaged_bag_is_refused_with_the_worker_storing_as_alone(tmp_path: Path) -> None:
    import shutil

    from .test_hostile_import import reseal, write

    source, _ = exported(tmp_path / "export", 24)
    files = sorted((source / "data" / "records").glob("*/artifacts/*"))
    damages = {
        "file changed, resealed": lambda bag: (write(bag / files[9].relative_to(source), b"other bytes"), reseal(bag)),
        # the same size (the bag's Payload-Oxum holds), not the bytes its manifest gives
        "file changed": lambda bag: write(
            bag / files[13].relative_to(source), bytes(b ^ 1 for b in files[13].read_bytes())
        ),
        "record changed, resealed": lambda bag: (
            write(sorted((bag / "data" / "records").glob("*/record.json"))[20], '{"schema": 1}'),
            reseal(bag),
        ),
        "event changed, resealed": lambda bag: (
            write(
                bag / "data" / "custody.jsonl",
                (bag / "data" / "custody.jsonl").read_text("utf-8").replace('"record.created"', '"record.made"', 1)
                if '"record.created"' in (bag / "data" / "custody.jsonl").read_text("utf-8")
                else (bag / "data" / "custody.jsonl")
                .read_text("utf-8")
                .replace('"artifact.added"', '"artifact.adde"', 1),
            ),
            reseal(bag),
        ),
    }
    # A record the catalog holds already, with other content: refused once the files are read.
    held = new_catalog(tmp_path / "held")
    first = tmp_path / "first"
    with Catalog.open(source.parent / "source", operator=OPERATOR, clock=FixedClock()) as cat:
        record_id = cat.record_ids()[0]
        cat.export(first, format="bagit", record_ids=[record_id])
    with Catalog.open(held, operator=OPERATOR, clock=FixedClock()) as cat:
        cat.import_records(first)
        cat.tag(record_id, ["changed here"])
    damages["a record held with other content"] = lambda bag: None
    cases = ("alone", "worker", "storing short", "storing died", "storing hung")
    runs = []
    for name, damage in damages.items():
        bag = tmp_path / name.replace(" ", "-").replace(",", "")
        shutil.copytree(source, bag)
        damage(bag)
        for case in cases:
            catalog = tmp_path / f"{bag.name}-{case}".replace(" ", "-")
            if name.startswith("a record held"):
                shutil.copytree(held, catalog)
            else:
                new_catalog(catalog)
            runs.append((str(catalog), str(bag), case))
    result = in_new_interpreter(_refusals, runs, timeout=600)
    outcomes = result["runs"]
    for n, name in enumerate(damages):
        alone, *others = outcomes[len(cases) * n : len(cases) * (n + 1)]
        assert alone["outcome"] != "imported", name
        assert alone["made"] == 0
        for case, shared in zip(cases[1:], others, strict=True):
            assert shared["outcome"] == alone["outcome"], (name, case)
            # nothing stored is left behind: also what a worker stored and never said
            assert shared["blobs"] == alone["blobs"], (name, case)
            assert shared["threads"] == 1, (name, case)
        assert others[0]["made"] >= 20, name  # (stored by the worker, then removed)
