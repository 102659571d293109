"""Import, verify and ingest keep what they read to the end, so the interpreter's automatic
garbage collection is paused while they run (``common.collections_paused``): it is on again
however they end, one the caller had turned off stays off, and ``verify`` collects the young
generations itself a page at a time (what is left in reference cycles does not pile up)."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from evidence_catalog import Catalog, IntegrityError
from evidence_catalog.operations import importing, ingesting, verifying
from evidence_catalog.operations.exporting import ExportFormat
from tests.test_digest import DIGEST


def _files(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for i in range(count):
        path = folder / f"f{i}.txt"
        path.write_text(f"file {i}\n")
        paths.append(path)
    return paths


@pytest.fixture
def bag(catalog: Catalog, tmp_path: Path) -> Path:
    catalog.add(_files(tmp_path / "in", 3))
    catalog.export(tmp_path / "bag", format="bagit")
    return tmp_path / "bag"


def _seen_while(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[bool]:
    """Whether collection was on each time ``module.name`` ran."""
    seen: list[bool] = []
    real = getattr(module, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return seen


@pytest.fixture
def collector_on() -> Iterator[None]:
    assert gc.isenabled()
    yield
    gc.enable()


def _paused_and_restored(run: Callable[[int], object], seen: list[bool]) -> None:
    run(0)
    assert seen and not any(seen) and gc.isenabled()
    gc.disable()
    try:
        run(1)
        assert not gc.isenabled()  # the caller's choice is kept
    finally:
        gc.enable()


def test_an_import_runs_with_collection_paused(
    bag: Path, tmp_path: Path, operator: Any, monkeypatch: pytest.MonkeyPatch, collector_on: None
) -> None:
    seen = _seen_while(monkeypatch, importing, "insert_imported")

    def run(n: int) -> object:
        with Catalog.init(tmp_path / f"dest{n}", operator=operator) as dest:
            return dest.import_records(bag)

    _paused_and_restored(run, seen)

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise IntegrityError("stopped", where="test")

    monkeypatch.setattr(importing, "insert_imported", failing)
    with Catalog.init(tmp_path / "failed", operator=operator) as dest, pytest.raises(IntegrityError, match="stopped"):
        dest.import_records(bag)
    assert gc.isenabled()


def test_an_ingest_runs_with_collection_paused(
    tmp_path: Path, operator: Any, monkeypatch: pytest.MonkeyPatch, collector_on: None
) -> None:
    digest = tmp_path / "digest-0505.txt"
    digest.write_text(DIGEST, encoding="utf-8")
    seen = _seen_while(monkeypatch, ingesting, "ingest_stored")

    def run(n: int) -> object:
        with Catalog.init(tmp_path / f"c{n}", operator=operator) as catalog:
            return catalog.ingest(digest)

    _paused_and_restored(run, seen)


def test_verify_runs_with_collection_paused_and_collects_young_generations(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collector_on: None
) -> None:
    catalog.add(_files(tmp_path / "in", 7))
    seen = _seen_while(monkeypatch, verifying, "verify_log_and_records")
    collected: list[int] = []
    real_collect = gc.collect

    def collect(generation: int = 2) -> int:
        collected.append(generation)
        return real_collect(generation)

    monkeypatch.setattr(gc, "collect", collect)
    monkeypatch.setattr(verifying, "RECORD_PAGE", 2)
    monkeypatch.setattr(verifying, "COLLECT_EVENTS", 3)
    events = len(catalog.custody_events())
    assert catalog.verify(record_event=False).ok
    assert seen == [False] and gc.isenabled()
    # A collection every 3 events and one for each page of 2 records (7 records: 4 pages).
    assert collected == [1] * (events // 3 + 4)
    collected.clear()
    gc.disable()
    try:
        assert catalog.verify(record_event=False).ok
        assert not gc.isenabled() and collected == []  # turned off by the caller: left alone
    finally:
        gc.enable()


@pytest.mark.parametrize("format", ["prov", "json"])
def test_an_export_to_a_file_runs_with_collection_paused(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collector_on: None, format: ExportFormat
) -> None:
    from evidence_catalog.interchange import prov
    from evidence_catalog.operations import exporting

    catalog.add(_files(tmp_path / "in", 2))
    seen = _seen_while(monkeypatch, prov if format == "prov" else exporting, f"write_{format}")
    _paused_and_restored(lambda n: catalog.export(tmp_path / f"out{n}.{format}", format=format), seen)
