"""Every document round-trips model -> JSON -> model unchanged and validates against its schema."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from evidence_catalog import model
from evidence_catalog.custody import make_event
from evidence_catalog.errors import ValidationError
from evidence_catalog.schema_files import SCHEMA_FILES, load_schema
from evidence_catalog.serialize import (
    BAG_CONTENTS_SCHEMA,
    CERTAIN_DEPTH,
    CHECKPOINT_SCHEMA,
    SCHEMA_IDS,
    VERIFICATION_REPORT_SCHEMA,
    VIEWER_SCHEMAS,
    _agent_document,
    canonical_json,
    certainly_same_json,
    dumps,
    format_timestamp,
    from_document,
    loads,
    parse_timestamp,
    plain_json,
    to_document,
    unstructure,
)

from . import strategies as s

ROOT = Path(__file__).resolve().parent.parent


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = load_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


RECORD = validator("evidence-record")
ARTIFACT = validator("artifact")
EVENT = validator("custody-event")
EXPORT = validator("export")


@pytest.mark.slow
@settings(max_examples=100)
@given(s.evidence_records())
def test_any_record_round_trips_through_json_unchanged_and_validates(record: model.EvidenceRecord) -> None:
    text = dumps(record)
    assert loads(text, model.EvidenceRecord) == record
    # and through UTF-8 bytes, as a file holds it
    assert loads(text.encode("utf-8"), model.EvidenceRecord) == record
    RECORD.validate(json.loads(text))


@pytest.mark.slow
@given(s.artifacts)
def test_any_artifact_round_trips_and_validates(artifact: model.Artifact) -> None:
    document = json.loads(dumps(artifact))
    ARTIFACT.validate(document)
    assert from_document(document, model.Artifact) == artifact


@pytest.mark.slow
@given(s.agents, s.timestamps, s.nonblank, s.details)
def test_any_custody_event_round_trips_and_validates(
    actor: model.Agent, at: dt.datetime, subject: str, details: dict[str, Any]
) -> None:
    event = make_event(None, at=at, actor=actor, action="artifact.added", subject=subject, details=details)
    document = json.loads(dumps(event))
    EVENT.validate(document)
    assert from_document(document, model.CustodyEvent) == event


@given(s.timestamps)
def test_timestamps_are_utc_with_z_and_round_trip(value: dt.datetime) -> None:
    text = format_timestamp(value)
    assert text.endswith("Z")
    parsed = parse_timestamp(text)
    # compare in UTC: PEP 495 makes comparisons of wall times in a DST gap unequal across zones
    assert parsed == model.to_utc(value) and parsed.tzinfo == dt.UTC
    assert parsed.timestamp() == value.timestamp()


def test_every_document_names_its_schema_and_version() -> None:
    record = model.EvidenceRecord(id=model.new_id(), created_at=model.utc_now(), created_by=model.Agent(name="a"))
    document = to_document(record)
    assert next(iter(document)) == "schema"
    assert document["schema"] == "urn:evidence-catalog:schema:evidence-record:2.0.0"
    published = {load_schema(n)["$id"] for n in SCHEMA_FILES}
    emitted = {*SCHEMA_IDS.values(), VERIFICATION_REPORT_SCHEMA, BAG_CONTENTS_SCHEMA, CHECKPOINT_SCHEMA}
    assert emitted | set(VIEWER_SCHEMAS.values()) == published


def test_the_report_schema_knows_every_kind_of_finding() -> None:
    from evidence_catalog import findings

    kinds = {
        cls.kind_name()
        for cls in vars(findings).values()
        if isinstance(cls, type) and issubclass(cls, findings.Finding) and cls is not findings.Finding
    }
    schema = load_schema("verification-report")
    assert set(schema["$defs"]["finding"]["properties"]["kind"]["enum"]) == kinds


def test_unknown_or_newer_schema_is_refused() -> None:
    record = model.EvidenceRecord(id=model.new_id(), created_at=model.utc_now(), created_by=model.Agent(name="a"))
    document = to_document(record)
    document["schema"] = "urn:evidence-catalog:schema:evidence-record:3.0.0"
    with pytest.raises(ValidationError, match=r"unknown or unsupported schema"):
        from_document(document)


def test_a_bad_field_is_named_in_the_error() -> None:
    record = model.EvidenceRecord(id=model.new_id(), created_at=model.utc_now(), created_by=model.Agent(name="a"))
    document = to_document(record)
    document["created_at"] = "2026-01-01T00:00:00"  # no zone
    with pytest.raises(ValidationError, match=r"created_at"):
        from_document(document)
    document = to_document(record)
    document["surprise"] = 1
    with pytest.raises(ValidationError, match=r"surprise"):
        from_document(document)


def test_malformed_json_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="malformed JSON"):
        loads("{not json")


@given(s.json_values)
def test_canonical_json_is_stable_under_key_order(value: Any) -> None:
    if isinstance(value, dict):
        reordered = dict(reversed(list(value.items())))
        assert canonical_json(reordered) == canonical_json(value)
    assert same_json(json.loads(canonical_json(value)), value)


def same_json(a: Any, b: Any) -> bool:
    """JSON equality where numbers compare as IEEE doubles, as RFC 8785 treats them."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    return bool(a == b)


#: Any JSON-ish value, also what the fast path of ``canonical_json`` must hand to ``rfc8785``:
#: floats (also NaN, infinities, -0.0), integers beyond 2**53, lone surrogates, control
#: characters, keys from every plane (UTF-16 and code-point order differ above U+E000),
#: tuples, and subclasses of str/int/dict.
_anything = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats()
    | st.text(st.characters(codec=None), max_size=8)
    | st.sampled_from(list(model.AcquisitionMethod)),
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(st.text(st.characters(codec=None), max_size=4), children, max_size=4)
    ),
    max_leaves=16,
)


def _outcome(encode: Any, value: Any) -> bytes | str:
    """The canonical bytes *encode* makes of *value*, or the name of the error it raises."""
    try:
        result: bytes = encode(value)
    except (ValueError, TypeError) as exc:
        return type(exc).__name__
    return result


@pytest.mark.slow
@given(_anything)
@settings(max_examples=500)
def test_canonical_json_is_byte_for_byte_rfc8785(value: Any) -> None:
    # Custody hashes are recomputed by other tools from RFC 8785 bytes: the fast path must
    # never differ from the reference implementation, not even in the error it raises.
    assert _outcome(canonical_json, value) == _outcome(rfc8785.dumps, value)


def _written(write: Any, value: Any) -> str:
    """The text *write* makes of *value*, or the name of the error it raises."""
    try:
        text: str = write(value)
    except (ValueError, TypeError) as exc:
        return type(exc).__name__
    return text


@given(_anything)
@settings(max_examples=300)
def test_the_kept_plain_json_writer_writes_what_json_dumps_writes(value: Any) -> None:
    """plain_json keeps one C encoder for every call: the same text as ``json.dumps`` with the
    same arguments, errors included, for anything (floats, tuples, enums, any keys, surrogates)."""

    def reference(item: Any) -> str:
        return json.dumps(item, ensure_ascii=False, separators=(",", ":"), sort_keys=True)

    assert _written(plain_json, value) == _written(reference, value)
    assert _written(plain_json, {"v": value, "w": [value]}) == _written(reference, {"v": value, "w": [value]})


@pytest.mark.parametrize(
    "value",
    [
        {"\ue000": 1, "\U0001f600": 2},  # UTF-16 puts the emoji (a surrogate pair) first
        {"a": "\ud800"},  # a lone surrogate: not UTF-8
        {"n": 2**53},  # beyond the doubles' safe integers
        {"x": 0.1, "y": -0.0, "z": 1e21},
        ['\x00\x1f\x7f\u2028"\\/', True, None],
        {"tuple": (1, 2)},
        {1: "not a string key"},
    ],
)
def test_canonical_json_edge_cases_match_rfc8785(value: Any) -> None:
    assert _outcome(canonical_json, value) == _outcome(rfc8785.dumps, value)


def test_canonical_json_matches_rfc8785_example() -> None:
    # RFC 8785 section 3.2.2: numbers and strings in canonical form, keys sorted by UTF-16 units
    data = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "literals": [None, True, False],
    }
    assert canonical_json(data) == b'{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27]}'


def test_generated_schema_files_are_up_to_date() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate", ROOT / "schemas" / "generate.py")
    assert spec and spec.loader
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    for file_name, text in generate.render().items():
        assert (ROOT / "schemas" / file_name).read_text(encoding="utf-8") == text, f"run make schemas ({file_name})"


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_schema_files_are_valid_draft_2020_12(name: str) -> None:
    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_schema_rejects_an_uppercase_id() -> None:
    record = model.EvidenceRecord(id=model.new_id(), created_at=model.utc_now(), created_by=model.Agent(name="a"))
    document = json.loads(dumps(record))
    assert RECORD.is_valid(document)
    document["id"] = document["id"].upper()
    assert not RECORD.is_valid(document)


def _copies(value: Any) -> list[Any]:
    """*value* as it is, and deep-copied (the same content in other objects)."""
    return [value, copy.deepcopy(value)]


def _changed(value: Any) -> st.SearchStrategy[Any]:
    """*value* through JSON text (lists for tuples, texts for enums, keys as text), or with one
    leaf, member or item changed: what a document and the record written back from it may
    differ by."""
    try:
        through_json = [json.loads(json.dumps(value))]
    except (TypeError, ValueError):
        through_json = [value]
    return st.sampled_from(through_json) | _anything.map(lambda other: _replace_one(value, other))


def _replace_one(value: Any, other: Any) -> Any:
    """*value* with its first leaf (or, for an empty container, itself) replaced by *other*."""
    if isinstance(value, dict) and value:
        key = next(iter(value))
        return {**value, key: _replace_one(value[key], other)}
    if isinstance(value, list | tuple) and value:
        return type(value)([_replace_one(value[0], other), *value[1:]])
    return other


@settings(max_examples=400)
@given(st.data())
def test_certainly_same_json_is_never_wrong(data: st.DataObject) -> None:
    # An import accepts a record only when it writes back to the very JSON it was given; the
    # walk that spares writing both may say "the same" only when the canonical bytes are equal
    # and neither raises (a float, a huge integer, a lone surrogate: left to canonical_json).
    first = data.draw(_anything)
    copied = data.draw(st.booleans())
    second = data.draw(st.sampled_from(_copies(first)) if copied else _changed(first))
    if certainly_same_json(first, second):
        assert _outcome(canonical_json, first) == _outcome(canonical_json, second)
        assert isinstance(_outcome(canonical_json, first), bytes)
    if copied and _plain_json(first):
        # and it does say so of the same JSON (no floats, no huge numbers, no lone surrogates)
        assert certainly_same_json(first, second)


def _plain_json(value: Any) -> bool:
    if isinstance(value, float) or (type(value) is int and abs(value) > 2**53 - 1):
        return False
    if isinstance(value, str):
        return not any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return all(type(k) is str and _plain_json(k) for k in value) and all(_plain_json(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_plain_json(v) for v in value)
    return True


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"a": True}, {"a": 1}),  # equal in Python, not in JSON
        ({"a": 1}, {"a": 1.0}),  # canonical JSON writes both as 1: left to it
        ({"n": 2**60}, {"n": 2**60}),  # canonical JSON refuses it: left to it, which says so
        ({"s": "\ud800"}, {"s": "\ud800"}),  # a lone surrogate: likewise
        ({"a": [1]}, {"a": [1, 2]}),
        ({"a": None}, {"b": None}),
        ({1: "x"}, {1: "x"}),
    ],
)
def test_certainly_same_json_leaves_the_unclear_to_canonical_json(first: Any, second: Any) -> None:
    assert not certainly_same_json(first, second)


def test_certainly_same_json_is_not_certain_of_what_nests_deeper_than_the_writers_follow() -> None:
    for depth in (CERTAIN_DEPTH, CERTAIN_DEPTH + 1, 5000):
        value: Any = "x"
        for _ in range(depth):
            value = [value]
        assert certainly_same_json(value, copy.deepcopy(value) if depth < 900 else value) is (depth <= CERTAIN_DEPTH)


def test_certainly_same_json_takes_an_enum_for_its_text_and_a_tuple_for_a_list() -> None:
    method = model.AcquisitionMethod.ADDED_FROM_DISK
    assert certainly_same_json({"m": method, "t": (1, "x")}, {"m": method.value, "t": [1, "x"]})
    assert canonical_json({"m": method, "t": (1, "x")}) == canonical_json({"m": method.value, "t": [1, "x"]})


@given(st.lists(s.agents, min_size=1, max_size=6), st.data())
def test_an_agents_kept_document_is_its_own(agents: list[model.Agent], data: st.DataObject) -> None:
    """_agent_document keeps the last agent's document: asked about any agent in any order (the
    same object again, an equal one, another), it gives that agent's own document."""
    for _ in range(8):
        agent = data.draw(st.sampled_from(agents))
        assert _agent_document(agent) == unstructure(agent)
    first = agents[0]
    assert _agent_document(first) is _agent_document(first)
