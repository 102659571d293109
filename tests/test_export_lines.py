"""A bag's custody events are written without copying their details first
(:func:`~evidence_catalog.interchange.export.event_line`): each line is still exactly what
``json.dumps(to_document(event))`` writes, whatever the details hold; and making a bag flushes
it to the disk once, not once per file.  Real catalogs and real files; no timings (those are in
``benchmarks/bag_speed.py``)."""

from __future__ import annotations

import datetime as dt
import enum
import json
import os
from pathlib import Path
from typing import Any

import bagit  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evidence_catalog import Catalog, model
from evidence_catalog.interchange.bag import CUSTODY
from evidence_catalog.interchange.export import event_line
from evidence_catalog.serialize import to_document

from .strategies import agents, hex_digest, timestamps


class Colour(enum.StrEnum):
    RED = "red"


class Size(enum.IntEnum):
    BIG = 7


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=2)
)
#: What ``json.dumps`` takes and what it refuses but the converter makes JSON of (times, enums,
#: model values), in lists, tuples and objects with keys of every kind.
values = st.recursive(
    scalars | timestamps | st.sampled_from([Colour.RED, Size.BIG]) | agents,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(st.text() | st.integers() | st.booleans() | st.none(), children, max_size=4)
    ),
    max_leaves=20,
)
events = st.builds(
    model.CustodyEvent,
    seq=st.integers(min_value=1, max_value=2**40),
    at=timestamps,
    actor=agents,
    action=st.sampled_from(["artifact.added", "records.exported", "note.added"]),
    subject=st.text(min_size=1, max_size=20).filter(lambda s: s.strip() != ""),
    prev_hash=hex_digest[64],
    hash=hex_digest[64],
    details=st.dictionaries(st.text(max_size=10), values, max_size=5),
)


def _as_to_document_writes(event: model.CustodyEvent) -> str:
    return json.dumps(to_document(event), ensure_ascii=False)


@settings(max_examples=400, deadline=None)
@given(events)
def test_an_events_line_is_json_dumps_of_its_document(event: model.CustodyEvent) -> None:
    try:
        expected = _as_to_document_writes(event)
    except (TypeError, ValueError) as exc:
        with pytest.raises(type(exc)):
            event_line(event)
        return
    assert event_line(event) == expected


def test_details_that_are_not_json_are_made_json_by_the_converter() -> None:
    at = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    event = model.CustodyEvent(
        seq=3,
        at=at,
        actor=model.Agent(name="A", kind=model.AgentKind.PERSON),
        action="note.added",
        subject="catalog",
        prev_hash="a" * 64,
        hash="b" * 64,
        details={"when": at, "who": model.Agent(name="B", kind=model.AgentKind.PERSON), "colour": Colour.RED},
    )
    line = event_line(event)
    assert line == _as_to_document_writes(event)
    assert json.loads(line)["details"]["when"] == "2024-05-01T12:00:00Z"


def test_a_bags_custody_lines_are_the_catalogs_events(tmp_path: Path, catalog: Catalog) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for index in range(5):
        (source / f"f{index}.txt").write_text(f"file {index}\n" * (index + 1))
    catalog.add([source], recursive=True)
    catalog.add_note(catalog.record_ids()[0], "a note, with ünïcode and \u2028 in it")
    bag = tmp_path / "bag"
    catalog.export(bag, format="bagit")
    exported = catalog.history()[:-1]  # the export's own event comes after the bag
    lines = (bag / CUSTODY).read_text(encoding="utf-8").split("\n")  # not splitlines(): U+2028 is text here
    assert lines.pop() == ""
    assert lines == [_as_to_document_writes(event) for event in exported]
    bagit.Bag(os.fspath(bag)).validate()


def test_a_bag_is_flushed_once_not_file_by_file(
    tmp_path: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for index in range(30):
        (source / f"f{index}.txt").write_text(f"small file {index}\n")
    catalog.add([source], recursive=True)
    calls = {"sync": 0, "fsync": 0, "fdatasync": 0}

    def counted(name: str) -> Any:
        original = getattr(os, name)

        def call(*args: Any) -> Any:
            calls[name] += 1
            return original(*args)

        return call

    for name in calls:
        monkeypatch.setattr(os, name, counted(name))
    bag = tmp_path / "bag"
    catalog.export(bag, format="bagit")  # small files: written in this process's writer or its helper
    # One flush of the whole bag, then the bag's folders and the database's commit of the
    # export's event: a handful of calls, not one per file of the bag's 30 records and more.
    assert calls["sync"] == 1
    assert calls["fsync"] + calls["fdatasync"] < 30
    bagit.Bag(os.fspath(bag)).validate()
