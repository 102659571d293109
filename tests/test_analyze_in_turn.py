"""Analyses run two at a time (``analysed_in_turn``): the same results, events and errors, in
the same order, as one at a time; an interrupt stops the analyses under way and records
nothing more."""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from evidence_catalog import Catalog
from evidence_catalog.custody import Action
from evidence_catalog.extract import credentials, perceptual, sandbox
from evidence_catalog.model import Agent
from evidence_catalog.operations import analyzing
from tests.conftest import FixedClock
from tests.test_perceptual import picture
from tests.test_verify_damaged_analysis import blob


def _files(folder: Path) -> list[Path]:
    """Five pictures, one of them a JPEG cut short (its analysis says what failed)."""
    folder.mkdir()
    paths = []
    for seed in range(5):
        path = folder / f"{seed}.jpg"
        picture(seed + 40, (160 + 16 * seed, 120)).save(path, "JPEG")
        paths.append(path)
    paths[3].write_bytes(paths[3].read_bytes()[:700])
    return paths


def _catalog(path: Path, files: list[Path], operator: Agent) -> tuple[Catalog, list[str]]:
    catalog = Catalog.init(path, operator=operator, clock=FixedClock())
    added = catalog.add(files, analyze=False)
    damaged = blob(catalog, added[1].sha256)  # the stored bytes of the second: damaged
    damaged.write_bytes(bytes(damaged.stat().st_size))
    return catalog, [a.record_id for a in added]


def _said(result: object, ids: list[str]) -> tuple[object, ...]:
    """A result without the record id (each catalog has its own), errors naming it made alike."""
    errors = tuple(e.replace(result.record_id, "ID") for e in result.errors)  # type: ignore[attr-defined]
    return (ids.index(result.record_id), result.sha256, result.document_sha256, result.new, result.hashes, errors)  # type: ignore[attr-defined]


def test_analysing_in_threads_gives_what_one_at_a_time_gives(tmp_path: Path, operator: Agent) -> None:
    files = _files(tmp_path / "in")
    together, ids = _catalog(tmp_path / "together", files, operator)
    alone, alone_ids = _catalog(tmp_path / "alone", files, operator)
    with together, alone:
        both = together.analyze(all_records=True)
        one_by_one = [result for record_id in alone_ids for result in alone.analyze([record_id])]
        assert [_said(r, ids) for r in both] == [_said(r, alone_ids) for r in one_by_one]
        assert [r.document_sha256 is None for r in both] == [False, True, False, False, False]
        assert "not the ones recorded" in both[1].errors[0]
        assert both[3].errors and both[3].hashes == 0  # the short JPEG: said, not raised
        logged = [e.subject for e in together.history() if e.action == Action.MEDIA_ANALYZED]
        assert logged == [ids[0], ids[2], ids[3], ids[4]]  # in the order asked, each once
        again = together.analyze(all_records=True)
        assert [r.new for r in again] == [False] * 5


def test_an_interrupt_stops_the_analyses_and_records_nothing_more(
    tmp_path: Path, operator: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _files(tmp_path / "in")
    cancelled: list[sandbox.Cancellation] = []
    original = sandbox.Cancellation.cancel

    def cancel(self: sandbox.Cancellation) -> None:
        cancelled.append(self)
        original(self)

    monkeypatch.setattr(sandbox.Cancellation, "cancel", cancel)
    seen = []

    def interrupt(result: object) -> None:
        seen.append(result)
        raise KeyboardInterrupt

    with Catalog.init(tmp_path / "catalog", operator=operator, clock=FixedClock()) as catalog:
        with pytest.raises(KeyboardInterrupt):
            catalog.add(files, on_analyzed=interrupt)
        assert len(seen) == 1 and len(cancelled) == 1 and cancelled[0].cancelled  # the workers' requests stopped
        logged = [e for e in catalog.history() if e.action == Action.MEDIA_ANALYZED]
        assert [e.subject for e in logged] == [seen[0].record_id]  # type: ignore[attr-defined]
        assert catalog.verify().ok
        rest = catalog.analyze(all_records=True)  # analyze finishes the work
        assert sum(r.new for r in rest) == 4


def test_an_artifact_listed_twice_is_found_analysed_the_second_time(tmp_path: Path, operator: Agent) -> None:
    files = _files(tmp_path / "in")
    with Catalog.init(tmp_path / "catalog", operator=operator, clock=FixedClock()) as catalog:
        first, second = catalog.add(files[:2], analyze=False)
        todo = [(first.record_id, first.sha256), (first.record_id, first.sha256), (second.record_id, second.sha256)]
        results = list(analyzing.analysed_in_turn(catalog._ctx, todo))
        assert [(r.new, r.document_sha256 is None) for r in results] == [(True, False), (False, True), (True, False)]  # type: ignore[union-attr]


@pytest.mark.no_postgresql_pass  # threads and readers: the same on either database
def test_a_worker_not_waiting_on_a_reader_when_interrupted_starts_none(
    tmp_path: Path, operator: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker hashing its copy (or between two readers) as the caller is interrupted reads
    nothing more: the interrupt never waits for a whole file's analysis."""
    files = _files(tmp_path / "in")
    first = hashlib.sha256(files[0].read_bytes()).hexdigest()
    stopping = threading.Event()
    read_after: list[object] = []
    shutdown = ThreadPoolExecutor.shutdown

    def shutting_down(self: ThreadPoolExecutor, *args: Any, **kwargs: Any) -> None:
        if self._thread_name_prefix.startswith("evidence-catalog-analyze"):
            stopping.set()  # the caller is unwinding: every cancel is done
        shutdown(self, *args, **kwargs)

    check_copy = analyzing.check_copy

    def slow_check(path: Path, artifact: Any, **options: Any) -> None:
        if artifact.sha256 != first:  # still hashing when the caller is interrupted
            stopping.wait(10)
        check_copy(path, artifact, **options)

    def counted(run: Any) -> Any:
        def run_script(*args: Any, **kwargs: Any) -> Any:
            done = run(*args, **kwargs)
            if stopping.is_set():
                read_after.append(args[0])
            return done

        return run_script

    monkeypatch.setattr(ThreadPoolExecutor, "shutdown", shutting_down)
    monkeypatch.setattr(analyzing, "check_copy", slow_check)
    monkeypatch.setattr(perceptual, "run_script", counted(perceptual.run_script))
    monkeypatch.setattr(credentials, "run_script", counted(credentials.run_script))

    def interrupt(result: object) -> None:
        raise KeyboardInterrupt

    with Catalog.init(tmp_path / "catalog", operator=operator, clock=FixedClock()) as catalog:
        with pytest.raises(KeyboardInterrupt):
            catalog.add(files, on_analyzed=interrupt)
        assert stopping.is_set() and read_after == []
        assert len([e for e in catalog.history() if e.action == Action.MEDIA_ANALYZED]) == 1


@pytest.mark.no_postgresql_pass
def test_the_check_of_a_large_copy_stops_when_its_analysis_is_cancelled(catalog: Catalog, tmp_path: Path) -> None:
    """A worker checking a video's stored bytes when Ctrl-C comes stops at the next block,
    not at the end of the file."""
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(8 << 20))
    [added] = catalog.add([big], analyze=False)
    [entry] = catalog.record(added.record_id).artifacts
    cancellation = sandbox.Cancellation()
    blocks: list[int] = []

    def stop() -> None:
        blocks.append(1)
        if len(blocks) == 2:
            cancellation.cancel()
        cancellation.check()

    with pytest.raises(sandbox.RequestCancelledError):
        analyzing.check_copy(blob(catalog, added.sha256), entry.artifact, stop=stop)
    assert len(blocks) == 2
    analyzing.check_copy(blob(catalog, added.sha256), entry.artifact)  # not stopped: the bytes check
