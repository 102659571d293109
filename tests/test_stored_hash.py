"""Verifying re-hashes each event from the document stored in the database, through a fast path
(:func:`~evidence_catalog.stored_events.stored_hash_and_leaf`): it must give the reference's very bytes
for every document, however damaged or hostile, or fall back to it (and fail as it fails).  A
verification that hashed an edited row into the hash it had before would report "verified"."""

from __future__ import annotations

import copy
import datetime as dt
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from evidence_catalog import Catalog, custody, stored_events
from evidence_catalog.findings import EventEdited
from evidence_catalog.operations import verify_media
from evidence_catalog.serialize import to_document

#: Text of every kind: ASCII, keys JSON Pointer escapes (``~``, ``/``), characters that sort
#: otherwise in UTF-16 than by code point, beyond the BMP, lone surrogates, the salt's name.
any_text = st.text(max_size=6) | st.sampled_from(
    ["", "salt", "metadata", "hash", "a~b", "a/b", "~1", "\ue000", "\U0001d400", "\ud800", "x\udfff", "é"]
)
#: Every JSON value and what JSON does not hold: floats, integers beyond 2**53, tuples, bytes,
#: keys that are not text.
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53 - 1), 2**53 - 1),
    st.integers(),
    st.sampled_from([2**53, -(2**53), 2**64, -(2**70), 0.5, -0.0, 1e300, 3.0]),
    st.floats(allow_nan=False, allow_infinity=False),
    any_text,
)
odd = st.sampled_from([(1, 2), b"x", {1: "one"}, {None: 1}, {(1,): 2}, dt.date(2026, 1, 1)])
values = st.recursive(
    leaves | odd,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=16,
)
#: *values*, each a copy of its own: ``odd`` hands out the same dict objects every time, and a
#: document built from them and then changed in place could come to hold itself (a stored
#: document is parsed JSON: it never shares or contains itself).
fresh_values = values.map(copy.deepcopy)
secrets = st.one_of(
    st.binary(min_size=32, max_size=32).map(bytes.hex),
    st.sampled_from(["", "0" * 63, "0" * 65, "g" * 64, "AB" * 32, "é" * 64, " " + "0" * 63]),
    st.integers(),
    st.none(),
)


def reference(document: Any) -> tuple[str, bytes] | tuple[type[BaseException], str]:
    """:func:`custody.hash_and_leaf` of *document*, or the error it raises."""
    return outcome(lambda: custody.hash_and_leaf(document))


def fast(document: Any) -> tuple[str, bytes] | tuple[type[BaseException], str]:
    return outcome(lambda: stored_events.stored_hash_and_leaf(document))


def outcome(make: Callable[[], tuple[str, bytes]]) -> tuple[str, bytes] | tuple[type[BaseException], str]:
    try:
        return make()
    except Exception as exc:  # noqa: BLE001 -- any error: compared with the other path's
        return type(exc), str(exc)


def an_event(secret: str = "ab" * 32) -> dict[str, Any]:
    """A stored salted event as the catalog writes it."""
    return {
        "schema": "https://example.org/custody-event/1.1.0",
        "seq": 7,
        "at": "2026-01-01T00:00:00Z",
        "actor": {"name": "analyst", "kind": "person", "email": None},
        "action": "artifact.added",
        "subject": "0190a0b0-0000-7000-8000-000000000000",
        "prev_hash": "cd" * 32,
        "hash": "ef" * 32,
        "details": {
            "salt": secret,
            "record": {"title": "Harbour / ~pier", "tags": ["a", "b"], "metadata": {"gps": [1, 2]}},
            "n": 3,
            "ok": True,
        },
    }


@st.composite
def hostile_events(draw: st.DrawFn) -> dict[str, Any]:
    """An event document with anything changed, added or taken out at any level."""
    document = an_event(draw(secrets))
    # Extra members at the top, in actor, in details and deep in it ("salt" too).
    for target in (document, document["actor"], document["details"], document["details"]["record"]):
        for name, value in draw(st.dictionaries(any_text, fresh_values, max_size=2)).items():
            if not (target is document["details"] and name == "salt"):
                target[name] = value
    # Any member replaced by any value (the salt, the hash, details itself...).
    paths = [
        ("seq",),
        ("at",),
        ("actor",),
        ("actor", "name"),
        ("action",),
        ("subject",),
        ("prev_hash",),
        ("hash",),
        ("details",),
        ("details", "n"),
        ("details", "ok"),
        ("details", "record"),
        ("details", "record", "title"),
        ("details", "record", "metadata"),
        ("details", "record", "tags"),
    ]
    for path in draw(st.lists(st.sampled_from(paths), max_size=2)):
        target = document
        for step in path[:-1]:
            target = target.get(step) if isinstance(target, dict) else None
        if isinstance(target, dict):
            target[path[-1]] = draw(fresh_values)
    # A member taken out (the salt, the hash...).
    for path in draw(st.lists(st.sampled_from([("hash",), ("schema",), ("details", "salt"), ("prev_hash",)]))):
        target = document
        for step in path[:-1]:
            target = target.get(step) if isinstance(target, dict) else None
        if isinstance(target, dict):
            target.pop(path[-1], None)
    return document


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(hostile_events())
@example(an_event())
@example({**an_event(), "hat": 1, "hash0": "x", "ha": "y"})  # members sorting around "hash"
@example({**an_event(), "details": {**an_event()["details"], "\ue000": "x", "\U0001d400": "y"}})
@example({**an_event(), "details": {**an_event()["details"], "salt2": {"salt": "0" * 64}}})
@example({**an_event(), "actor": {"salt": "x", "metadata": "text"}})
@example({**an_event(), "seq": True})
@example({**an_event(), "seq": 2**53})
@example({**an_event(), "seq": 1.0})
@example({**an_event(), "subject": "\ud800"})
@example({**an_event(), "details": {**an_event()["details"], "k\ud800": 1}})
@example({**an_event(), "details": {**an_event()["details"], 1: "one"}})
@example({**an_event(), 1: "one"})
@example({**an_event(), "hash": 0.5})
@example({**an_event(), "hash": {"\U0001d400": 1, "\ue000": 2}})
@example({**an_event(), "details": {**an_event()["details"], "metadata": 0.1}})
@example({**an_event(), "prev_hash": ["x", {"metadata": [1.5]}]})
@example({**an_event(), "details": {**an_event()["details"], "salt": "AB" * 32}})
def test_the_fast_path_gives_the_references_bytes_for_any_stored_document(
    commitments_walk: str, document: dict[str, Any]
) -> None:
    before = copy.deepcopy(document)
    expected = reference(document)
    assert fast(document) == expected
    assert document == before  # nothing it was given is changed
    if isinstance(expected[1], bytes):  # the two functions it stands for agree too
        assert expected[0] == custody.document_hash(document)
        assert expected[1] == custody.event_leaf(document)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["schema", "hash", "seq", "at", "action", "subject", "prev_hash"]), values)
def test_a_salted_event_whose_member_is_anything_hashes_as_the_reference(
    commitments_walk: str, name: str, value: Any
) -> None:
    document = an_event()
    document[name] = value
    assert fast(document) == reference(document)


def test_an_unsalted_event_is_left_to_the_reference() -> None:
    document = an_event()
    del document["details"]["salt"]
    assert fast(document) == reference(document)
    assert isinstance(fast(document)[1], bytes)


# -- the database edited under a verification ------------------------------------------------


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Every value of a JSON document, with its path; containers too."""
    found: list[tuple[tuple[Any, ...], Any]] = [(path, node)] if path else []
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_leaves(value, (*path, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_leaves(value, (*path, index)))
    return found


def _changed(value: Any) -> list[Any]:
    """Values that differ from *value* but look alike to a lax reader."""
    if isinstance(value, bool):
        return [not value, int(value)]
    if isinstance(value, int):  # (1027.0 is 1027 to JSON and RFC 8785: the same number, not a change)
        return [value + 1, value + 0.5, str(value)]
    if isinstance(value, str):
        return [value + " ", "X" + value[1:] if value[:1] != "X" else "Y" + value[1:], None]
    if value is None:
        return ["", 0, False]
    if isinstance(value, list):
        return [[*value, "x"], value[:-1]] if value else [["x"]]
    return [{**value, "extra": 1}, dict(list(value.items())[1:])] if value else [{"x": 1}]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("stored") / "catalog"
    source = folder.parent / "photo.jpg"
    source.write_bytes(b"\xff\xd8\xff" + bytes(range(256)) * 4)
    with Catalog.init(folder, operator="Analyst <a@example.org>") as catalog:
        catalog.add([source], note="Harbour", tags=["pier"], source_url="https://example.org/p")
    return folder


def _edit(folder: Path, seq: int, column: str, document: Any) -> None:
    import json

    with sqlite3.connect(folder / "catalog.db") as db:
        db.execute(
            f"UPDATE custody_event SET {column} = ? WHERE seq = ?",
            (json.dumps(document, ensure_ascii=False), seq),
        )


@pytest.mark.sqlite_only  # the rows are edited in the SQLite file
def test_editing_any_value_or_member_of_a_stored_event_is_reported(
    pristine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each value of the record's ``artifact.added`` event (its actor and details, at every
    depth), changed, taken out or given a sibling, in the database: verify names the event."""
    # The analyses a verification makes again (a sample) check the analyses, not the log: made
    # again at each of these hundreds of verifications, they took most of this test's time.
    monkeypatch.setattr(verify_media, "SAMPLE", 0)
    with Catalog.open(pristine) as catalog:
        assert catalog.verify(record_event=False, remember=False).ok
        [event] = [e for e in catalog.history() if e.action == "artifact.added"]
    document = to_document(event)
    seq = document["seq"]
    cases: list[tuple[str, Any]] = []
    for column in ("actor", "details"):
        for path, value in _leaves(document[column]):
            for changed in _changed(value):
                edited = copy.deepcopy(document[column])
                target = edited
                for step in path[:-1]:
                    target = target[step]
                target[path[-1]] = changed
                cases.append((column, edited))
            if isinstance(path[-1], str):  # taken out
                edited = copy.deepcopy(document[column])
                target = edited
                for step in path[:-1]:
                    target = target[step]
                del target[path[-1]]
                cases.append((column, edited))
        cases.append((column, {**document[column], "extra": "member"}))
    assert len(cases) > 100
    with sqlite3.connect(pristine / "catalog.db") as db:
        kept = db.execute("SELECT actor, details FROM custody_event WHERE seq = ?", (seq,)).fetchone()
    try:
        with Catalog.open(pristine) as catalog:
            for column, edited in cases:
                _edit(pristine, seq, column, edited)
                report = catalog.verify(record_event=False, remember=False)
                _restore(pristine, seq, kept)
                assert not report.ok, (column, edited)
                assert any(isinstance(f, EventEdited) and f.seq == seq for f in report.findings), (
                    column,
                    edited,
                    report.findings,
                )
            assert catalog.verify(record_event=False, remember=False).ok
    finally:
        _restore(pristine, seq, kept)


def _restore(folder: Path, seq: int, kept: tuple[str, str]) -> None:
    with sqlite3.connect(folder / "catalog.db") as db:
        db.execute("UPDATE custody_event SET actor = ?, details = ? WHERE seq = ?", (*kept, seq))


def test_the_event_documents_of_a_real_catalog_hash_alike_both_ways(commitments_walk: str, pristine: Path) -> None:
    with Catalog.open(pristine) as catalog:
        documents = [to_document(e) for e in catalog.history()]
    assert documents and all(custody.is_salted(d) for d in documents)
    for document in documents:
        assert stored_events.stored_hash_and_leaf(document) == custody.hash_and_leaf(document)
        assert stored_events.stored_hash_and_leaf(document)[0] == document["hash"]
