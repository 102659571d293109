"""A bag's custody events hashed elsewhere (an import's worker process) while its records are
read: the import must accept and refuse exactly what it does when it hashes each event itself,
and name the same problem first -- an event whose hash is wrong before an event that cannot be
read after it, and both before anything wrong with a record -- whatever the hasher gives back
(every hash, none, too few) and however the events fall into chunks.

``read_source`` is called directly with hashers in this process (the worker itself, dying,
hanging, failing or answering short, is in ``tests/test_import_offload.py``)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence_catalog import Catalog
from evidence_catalog.custody import document_hash
from evidence_catalog.errors import EvidenceError, ValidationError
from evidence_catalog.interchange import importing
from evidence_catalog.interchange.import_documents import MAX_NESTING, hashed_lines, parse_json
from evidence_catalog.interchange.importing import read_source

from .conftest import FixedClock
from .test_hostile_import import SOURCE, reseal, write

#: What a hasher's answer to each chunk is, in turn: every hash, none (the import hashes the
#: chunk), all but the last, or every other one left out.
ANSWERS = ("all", "none", "short", "gaps")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hashed-events")
    files = []
    for n in range(6):
        path = folder / "in" / f"{n}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"witness statement {n}: обстріл школи\n", encoding="utf-8")
        files.append(path)
    with Catalog.init(folder / "catalog", operator=SOURCE, clock=FixedClock()) as cat:
        ids = [r.record_id for r in cat.add(files, tags=["school"])]
        for record_id in ids[::2]:
            cat.add_note(record_id, "seen again from the north")
        cat.export(folder / "bag", format="bagit")
    return folder / "bag"


def hasher(answers: list[str], sent: list[int]) -> importing.EventHasher:
    def send(chunk: list[bytes]) -> Callable[[], list[tuple[str, bytes] | None] | None]:
        hashed = hashed_lines(chunk)
        answer = answers[len(sent) % len(answers)]
        sent.append(len(chunk))

        def wait() -> list[tuple[str, bytes] | None] | None:
            if answer == "none":
                return None
            if answer == "short":
                return hashed[:-1]
            if answer == "gaps":
                return [h if n % 2 else None for n, h in enumerate(hashed)]
            return hashed

        return wait

    return send


def outcome(read: Callable[[], importing.Incoming]) -> Any:
    """What reading gives: the error it raises (its kind and words), or what it found."""
    try:
        incoming = read()
    except EvidenceError as exc:
        return type(exc).__name__, str(exc)
    return (
        [(r.record.id, len(r.history)) for r in incoming.records],
        incoming.source,
        incoming.provenance,
        [f.name for f in incoming.unchecked],
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_events_hashed_elsewhere_are_refused_and_accepted_as_when_hashed_here(
    exported: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, data: st.DataObject
) -> None:
    bag = tmp_path_factory.mktemp("bag") / "bag"
    shutil.copytree(exported, bag)
    path = bag / "data" / "custody.jsonl"
    events = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    count = len(events)
    # The damage: an event's content changed (its hash now wrong), an event that cannot be read
    # (a sequence number that is not one), a record that cannot be read, blank lines.
    altered = data.draw(st.none() | st.integers(0, count - 1), label="event altered")
    unreadable = data.draw(st.none() | st.integers(0, count - 1), label="event unreadable")
    # ... and, its hash made again to fit, an event whose subject is not text (the converter
    # would read a list as the text it prints) or whose details nest deeper than a document may
    mistyped = data.draw(st.none() | st.integers(0, count - 1), label="event's subject not text")
    deep = data.draw(st.none() | st.integers(0, count - 1), label="event nested too deep")
    record = data.draw(st.none() | st.integers(0, 5), label="record unreadable")
    blanks = data.draw(st.sets(st.integers(0, count)), label="blank lines before")
    if altered is not None:
        events[altered]["action"] += "d"
    if unreadable is not None:
        events[unreadable]["seq"] = "one"
    if mistyped is not None:
        events[mistyped]["subject"] = [events[mistyped]["subject"]]
        events[mistyped]["hash"] = document_hash(events[mistyped])
    if deep is not None:
        events[deep]["details"]["deep"] = json.loads("[" * 300 + "]" * 300)
        events[deep]["hash"] = document_hash(events[deep])
    lines = []
    for n, event in enumerate(events):
        lines += ["\n"] * (n in blanks) + [json.dumps(event, ensure_ascii=False) + "\n"]
    write(path, "".join(lines) + "\n" * (count in blanks))
    if record is not None:
        documents = sorted((bag / "data" / "records").glob("*/record.json"))
        write(documents[record], '{"schema": ')
    reseal(bag)

    chunk = data.draw(st.integers(1, 5), label="chunk")
    answers = data.draw(st.lists(st.sampled_from(ANSWERS), min_size=1, max_size=4), label="answers")
    monkeypatch.setattr(importing, "HASHED_CHUNK", chunk)
    sent: list[int] = []
    here = outcome(lambda: read_source(bag, accept_unsigned=True))
    elsewhere = outcome(lambda: read_source(bag, accept_unsigned=True, hasher=hasher(answers, sent)))
    assert elsewhere == here
    if altered is None and unreadable is None and mistyped is None and deep is None and record is None:
        assert isinstance(here, tuple) and len(here) == 4, here  # read, not refused
        assert sum(sent) == count  # every event was sent
    for stop in (unreadable, mistyped, deep):
        if stop is not None:  # nothing is sent after an event that cannot be read
            assert sum(sent) <= stop


def test_a_wrong_hash_is_named_before_a_record_that_cannot_be_read(exported: Path, tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    shutil.copytree(exported, bag)
    path = bag / "data" / "custody.jsonl"
    events = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    events[-1]["subject"] = events[-2]["subject"]  # the last event said of another record
    write(path, "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events))
    write(sorted((bag / "data" / "records").glob("*/record.json"))[0], "not json")
    reseal(bag)
    for each in (None, hasher(["all"], [])):
        with pytest.raises(EvidenceError, match=f"line {len(events)}: custody event {len(events)} was altered"):
            read_source(bag, accept_unsigned=True, hasher=each)


def test_an_event_whose_subject_is_not_text_is_refused_after_a_wrong_hash_before_it(
    exported: Path, tmp_path: Path
) -> None:
    bag = tmp_path / "bag"
    shutil.copytree(exported, bag)
    path = bag / "data" / "custody.jsonl"
    events = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    events[-1]["subject"] = ["not", "text"]  # its hash made again: only its shape is wrong
    events[-1]["hash"] = document_hash(events[-1])
    write(path, "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events))
    reseal(bag)
    for each in (None, hasher(["all"], [])):
        with pytest.raises(EvidenceError, match=f"line {len(events)}: subject must be text, not an array"):
            read_source(bag, accept_unsigned=True, hasher=each)
    events[1]["action"] += "d"  # and an event before it altered: named first
    write(path, "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events))
    reseal(bag)
    for each in (None, hasher(["all"], [])):
        with pytest.raises(EvidenceError, match="line 2: custody event 2 was altered"):
            read_source(bag, accept_unsigned=True, hasher=each)


def _at_depth(frames: int, read: Callable[[], Any]) -> Any:
    """*read*, called *frames* calls deeper than here."""
    return read() if frames == 0 else _at_depth(frames - 1, read)


@pytest.mark.parametrize("depth", [199, 200, 201, 250, 950, 5000])
def test_how_deep_a_document_may_nest_does_not_depend_on_the_readers_stack(depth: int) -> None:
    # The worker reads a line on a shallower stack than the import does: a document nested
    # deeper than Python's parser follows from one of them, but not from the other, would be
    # read by one and refused by the other.  The limit is a number instead.
    text = "[" * depth + "]" * depth
    outcomes = set()
    for frames in (0, 300):
        try:
            _at_depth(frames, lambda: parse_json(text, "line 1"))
            outcomes.add("read")
        except ValidationError as exc:
            outcomes.add(str(exc))
    expected = "read" if depth <= MAX_NESTING else f"line 1: is nested more than {MAX_NESTING} arrays and objects deep"
    assert outcomes == {expected}
    # A text with brackets in its strings is not taken for a deep one.
    assert parse_json(json.dumps({"t": "[" * 1000}), "x") == {"t": "[" * 1000}
