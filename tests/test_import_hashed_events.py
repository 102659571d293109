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
from evidence_catalog.errors import EvidenceError
from evidence_catalog.interchange import importing
from evidence_catalog.interchange.import_documents import hashed_lines
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
    record = data.draw(st.none() | st.integers(0, 5), label="record unreadable")
    blanks = data.draw(st.sets(st.integers(0, count)), label="blank lines before")
    if altered is not None:
        events[altered]["action"] += "d"
    if unreadable is not None:
        events[unreadable]["seq"] = "one"
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
    if altered is None and unreadable is None and record is None:
        assert isinstance(here, tuple) and len(here) == 4, here  # read, not refused
        assert sum(sent) == count  # every event was sent
    if unreadable is not None:
        # nothing is sent after an event that cannot be read (the chunk it was in stays here)
        assert sum(sent) <= unreadable


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
