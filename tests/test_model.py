"""The domain model refuses invalid values when they are made."""

from __future__ import annotations

import ast
import datetime as dt
import enum
import inspect
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evidence_catalog import filters, model, vocabulary
from evidence_catalog.errors import EvidenceError, ModelError, ValidationError
from evidence_catalog.filters import RecordFilter
from evidence_catalog.vocabulary import Category

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
AGENT = model.Agent(name="a")
SHA = "a" * 64


def test_ids_are_time_ordered_uuid7() -> None:
    first, second = model.new_id(), model.new_id()
    assert model.is_record_id(first) and model.is_record_id(second)
    assert first < second
    assert abs((model.record_id_time(first) - model.utc_now()).total_seconds()) < 5


def _id_ms(identifier: str) -> int:
    """The millisecond a UUIDv7 holds."""
    return int(identifier.replace("-", "")[:12], 16)


def test_an_id_holds_the_millisecond_it_was_made_however_many_are_made() -> None:
    """An ingest makes thousands of ids a second: each holds the time it was made (uuid6's
    ids ran one millisecond ahead for each id after the first of a millisecond: minutes ahead
    after a large ingest), and they still increase."""
    import time
    import uuid

    before = time.time_ns() // 1_000_000
    made = [model.new_id() for _ in range(200_000)]
    after = time.time_ns() // 1_000_000
    assert made == sorted(made) and len(set(made)) == len(made)
    assert before <= _id_ms(made[0]) and _id_ms(made[-1]) <= after
    for identifier in made[::997]:
        parsed = uuid.UUID(identifier)
        assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122) and str(parsed) == identifier


@given(st.lists(st.integers(0, 5), min_size=1, max_size=60), st.integers(0, 2**40))
def test_ids_increase_whatever_the_clock_does(steps: list[int], start: int) -> None:
    """A clock that stands still, moves on or is set back: every id is greater than the one
    before, and holds the clock's millisecond whenever the clock has moved past the last."""
    from unittest import mock

    from evidence_catalog import values

    readings, now = [], start
    for step in steps:  # 0: the same millisecond; 5: set back a millisecond; else forward
        now = max(0, now - 1) if step == 5 else now + (step > 1)
        readings.append(now * 1_000_000 + 123)
    with mock.patch.object(values, "_last_ms", None), mock.patch.object(values, "time_ns", side_effect=readings):
        made: list[str] = []
        latest = -1
        for reading in readings:
            identifier = values.new_id()
            assert not made or identifier > made[-1]
            if reading // 1_000_000 > latest:
                assert _id_ms(identifier) == reading // 1_000_000
            latest = max(latest, _id_ms(identifier))
            made.append(identifier)


def test_a_counter_that_overflows_moves_the_time_on_by_a_millisecond() -> None:
    from unittest import mock

    from evidence_catalog import values

    at = 1_700_000_000_000
    with (
        mock.patch.object(values, "_last_ms", at),
        mock.patch.object(values, "_last_counter", values._COUNTER_MAX - 1),
        mock.patch.object(values, "time_ns", return_value=at * 1_000_000),
    ):
        last_of_the_millisecond, next_one = values.new_id(), values.new_id()
    assert _id_ms(last_of_the_millisecond) == at and _id_ms(next_one) == at + 1
    assert next_one > last_of_the_millisecond


def test_naive_timestamps_are_refused_and_others_become_utc() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        model.EvidenceRecord(id=model.new_id(), created_at=dt.datetime(2026, 1, 1), created_by=AGENT)
    kyiv = dt.timezone(dt.timedelta(hours=2))
    record = model.EvidenceRecord(
        id=model.new_id(), created_at=dt.datetime(2026, 1, 1, 2, tzinfo=kyiv), created_by=AGENT
    )
    assert record.created_at == NOW and record.created_at.tzinfo == dt.UTC


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: model.Agent(name="  "), "name must be non-empty"),
        (lambda: model.Digests(sha256="ABC"), "64 lowercase hex"),
        (lambda: model.Digests(sha256=SHA, md5="xyz"), "md5 digest"),
        (lambda: model.Artifact(digests=model.Digests(sha256=SHA), size=-1, media_type="a/b"), "non-negative"),
        (lambda: model.Artifact(digests=model.Digests(sha256=SHA), size=1, media_type="jpeg"), "media_type"),
        (lambda: model.GeoPosition(latitude=91, longitude=0), "latitude must be between"),
        (lambda: model.GeoPosition(latitude=0, longitude=float("nan")), "longitude"),
        (lambda: model.EventTime(start=NOW, end=NOW - dt.timedelta(seconds=1)), "ends before it starts"),
        (
            lambda: model.Relation(kind="cousin_of", target_id=model.new_id(), linked_by=AGENT, linked_at=NOW),
            "cousin_of",
        ),
        (lambda: model.SensitivityFlag(kind="graphic", reason="", set_by=AGENT, set_at=NOW), "reason"),
        (
            lambda: model.CustodyEvent(seq=0, at=NOW, actor=AGENT, action="x", subject="s", prev_hash=SHA, hash=SHA),
            "start at 1",
        ),
        (
            lambda: model.CustodyEvent(
                seq=1, at=NOW, actor=AGENT, action="Bad Action", subject="s", prev_hash=SHA, hash=SHA
            ),
            "action",
        ),
        (lambda: model.EvidenceRecord(id="not-a-uuid", created_at=NOW, created_by=AGENT), "UUID version 7"),
        (
            lambda: model.EvidenceRecord(id=model.new_id(), created_at=NOW, created_by=AGENT, tags=[" padded "]),
            "outer spaces",
        ),
        (lambda: model.RecordArtifact(artifact=_artifact(), derived_from=[SHA]), "derivation"),
    ],
)
def test_invalid_values_cannot_be_built(factory: Any, message: str) -> None:
    with pytest.raises(ModelError, match=message) as refused:
        factory()
    # A script catches the library's errors as the docs say; older code catching ValueError too.
    assert isinstance(refused.value, EvidenceError) and isinstance(refused.value, ValidationError)
    assert isinstance(refused.value, ValueError)


@pytest.mark.parametrize(
    "kind",
    [c for c in vars(model).values() if isinstance(c, type) and issubclass(c, enum.Enum) and c is not model.Choice],
)
def test_every_enumeration_names_the_values_it_allows(kind: type[enum.Enum]) -> None:
    assert issubclass(kind, model.Choice)
    with pytest.raises(ModelError) as refused:
        kind("no-such-value")
    for member in kind:
        assert member.value in str(refused.value)
    assert kind(next(iter(kind)).value) is next(iter(kind))


def test_an_unknown_enumeration_value_in_a_model_object_is_a_library_error() -> None:
    with pytest.raises(EvidenceError, match="'cousin_of' is not a relation kind \\(one of duplicate_of"):
        model.Relation(kind="cousin_of", target_id=model.new_id(), linked_by=AGENT, linked_at=NOW)
    with pytest.raises(EvidenceError, match="'maybe' is not a confidence"):
        model.Assessment(id=model.new_id(), status="verified", assessor=AGENT, assessed_at=NOW, confidence="maybe")
    with pytest.raises(EvidenceError, match="'guessing' is not a verification method"):
        model.Assessment(id=model.new_id(), status="verified", assessor=AGENT, assessed_at=NOW, methods=["guessing"])
    with pytest.raises(EvidenceError, match="'ok' is not an outcome"):
        _acquisition(outcome="ok")


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: RecordFilter(bbox=(0, 0, 0)), "four numbers"),  # type: ignore[arg-type]
        (lambda: RecordFilter(bbox=(0, 10, 1, 5)), "south not above north"),
        (lambda: RecordFilter(since=NOW, until=NOW - dt.timedelta(days=1)), "until is before since"),
        (lambda: RecordFilter(flags=["rude"]), "'rude' is not a sensitivity kind"),
        (lambda: RecordFilter(status="done"), "'done' is not a verification status"),
        (lambda: Category(code="Bad Code", label="x"), "category code"),
        (lambda: Category(code="ok", label=" "), "needs a label"),
    ],
)
def test_filters_and_categories_refuse_with_library_errors(factory: Any, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        factory()


@pytest.mark.parametrize("module", [model, filters, vocabulary])
def test_the_model_raises_no_plain_value_error(module: ModuleType) -> None:
    """Every refusal of the data model is a library error: no `raise ValueError(...)` is left."""
    tree = ast.parse(Path(inspect.getfile(module)).read_text(encoding="utf-8"))
    plain = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Raise)
        and isinstance(node.exc, ast.Call)
        and isinstance(node.exc.func, ast.Name)
        and node.exc.func.id == "ValueError"
    ]
    assert plain == [], f"{module.__name__} raises a plain ValueError at line(s) {plain}"


def _artifact(sha: str = SHA) -> model.Artifact:
    return model.Artifact(digests=model.Digests(sha256=sha), size=1, media_type="image/jpeg")


def _acquisition(**kwargs: Any) -> model.Acquisition:
    values: dict[str, Any] = {
        "id": model.new_id(),
        "method": "added_from_disk",
        "started_at": NOW,
        "ended_at": NOW,
        "operator": AGENT,
        **kwargs,
    }
    return model.Acquisition(**values)


def test_acquisition_consistency() -> None:
    with pytest.raises(ValueError, match="ended_at is before started_at"):
        _acquisition(ended_at=NOW - dt.timedelta(seconds=1))
    with pytest.raises(ValueError, match="must say why"):
        _acquisition(outcome="failed")
    with pytest.raises(ValueError, match="carries no error"):
        _acquisition(error="boom")
    assert _acquisition(outcome="failed", error="HTTP 404").outcome is model.Outcome.FAILED


def test_a_record_cannot_claim_an_artifact_it_does_not_hold_or_relate_to_itself() -> None:
    record_id = model.new_id()
    with pytest.raises(ValueError, match="not on the record"):
        model.EvidenceRecord(
            id=record_id, created_at=NOW, created_by=AGENT, acquisitions=[_acquisition(artifact_sha256=SHA)]
        )
    entry = model.RecordArtifact(artifact=_artifact())
    with pytest.raises(ValueError, match="lists an artifact twice"):
        model.EvidenceRecord(id=record_id, created_at=NOW, created_by=AGENT, artifacts=[entry, entry])
    relation = model.Relation(kind="duplicate_of", target_id=record_id, linked_by=AGENT, linked_at=NOW)
    with pytest.raises(ValueError, match="cannot relate to itself"):
        model.EvidenceRecord(id=record_id, created_at=NOW, created_by=AGENT, relations=[relation])


def test_tags_are_a_sorted_set() -> None:
    record = model.EvidenceRecord(id=model.new_id(), created_at=NOW, created_by=AGENT, tags=["b", "a", "b"])
    assert record.tags == ("a", "b")


def test_values_are_frozen() -> None:
    import attrs

    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        AGENT.name = "b"  # type: ignore[misc]
