"""Shortcuts taken on hot paths give what the general code gives.

``to_utc`` returns a time already in UTC as it is (what ``astimezone`` returns for it),
``format_timestamp`` writes a ``datetime`` with its own ``isoformat``, and
``strict_json`` decodes text with one decoder made once (what ``json.loads`` with the same hook
makes afresh for every value).  They run for every time and every JSON column read or written.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evidence_catalog import model
from evidence_catalog.errors import ModelError
from evidence_catalog.serialize import format_timestamp, parse_timestamp
from evidence_catalog.store.jsontext import _MARK, JSONText, _members_once, strict_json

OFFSETS = st.one_of(
    st.just(dt.UTC),
    st.builds(dt.timezone, st.timedeltas(min_value=dt.timedelta(hours=-23), max_value=dt.timedelta(hours=23))),
)
TIMES = st.datetimes(min_value=dt.datetime(2, 1, 1), max_value=dt.datetime(9998, 12, 31), timezones=OFFSETS)


@given(TIMES)
def test_a_time_in_utc_is_what_astimezone_makes_of_it(value: dt.datetime) -> None:
    found = model.to_utc(value)
    assert found == value
    assert found.tzinfo is dt.UTC
    assert found == value.astimezone(dt.UTC) and found.isoformat() == value.astimezone(dt.UTC).isoformat()
    if value.tzinfo is dt.UTC:
        assert found is value


def test_a_zero_offset_that_is_not_the_utc_object_is_still_converted() -> None:
    value = dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone(dt.timedelta(0), "GMT"))
    found = model.to_utc(value)
    assert found.tzinfo is dt.UTC and found == value and found is not value


def test_a_naive_time_is_still_refused() -> None:
    with pytest.raises(ModelError, match="no time zone"):
        model.to_utc(dt.datetime(2026, 3, 1, 12))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


def _reference(text: str | bytes) -> Any:
    return json.loads(text, object_pairs_hook=_members_once)


def _outcome(call: Any, text: str | bytes) -> tuple[str, Any]:
    try:
        return "value", call(text)
    except ValueError as exc:
        return type(exc).__name__, str(exc)


@given(JSON_VALUES, st.sampled_from(["str", "utf-8", "utf-16", "bom", "cut", "twice"]))
def test_strict_json_reads_what_json_loads_reads(value: Any, form: str) -> None:
    text = json.dumps(value, ensure_ascii=False)
    given_text: str | bytes
    if form == "str":
        given_text = text
    elif form == "bom":
        given_text = "\ufeff" + text
    elif form == "cut":
        given_text = text[:-1]
    elif form == "twice":  # a member written twice, inside whatever the value is
        given_text = '{"k": ' + text + ', "k": 1}'
    else:
        given_text = text.encode(form)
    found = _outcome(strict_json, given_text)
    assert found == _outcome(_reference, given_text)
    if form == "twice":
        assert found == ("ValueError", "a member is written twice")
    if form in ("str", "utf-8", "utf-16"):
        assert found == ("value", json.loads(text))


def test_a_member_written_twice_deep_inside_is_refused() -> None:
    with pytest.raises(ValueError, match="a member is written twice"):
        strict_json('{"a": [1, {"b": {"c": 1, "c": 2}}]}')


def test_text_of_a_subclass_of_str_is_read_too() -> None:
    class Text(str):
        pass

    assert strict_json(Text('{"a": [1, 2]}')) == {"a": [1, 2]}


def _written_out(value: dt.datetime) -> str:
    """The timestamp text, field by field (what ``format_timestamp`` wrote before it used
    ``isoformat``, and still writes for a subclass of ``datetime``)."""
    value = value.astimezone(dt.UTC)
    text = f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    return text + (f".{value.microsecond:06d}" if value.microsecond else "") + "Z"


@given(TIMES)
def test_a_timestamp_is_written_as_it_was_field_by_field(value: dt.datetime) -> None:
    text = format_timestamp(value)
    assert text == _written_out(value)
    assert parse_timestamp(text) == value


def test_a_subclass_of_datetime_is_written_field_by_field() -> None:
    class Stamp(dt.datetime):
        def isoformat(self, *args: Any, **kwargs: Any) -> str:
            return "not used"

    value = Stamp(999, 3, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert format_timestamp(value) == "0999-03-01T02:03:04.000005Z"


def test_a_subclass_of_datetime_is_converted_as_before() -> None:
    """A subclass may answer for its zone otherwise (the review's example): it takes the
    general path, which asks it."""

    class Unzoned(dt.datetime):
        def utcoffset(self) -> dt.timedelta | None:
            return None

    with pytest.raises(ModelError, match="no time zone"):
        model.to_utc(Unzoned(2020, 1, 1, tzinfo=dt.UTC))


LONE = st.integers(0xD800, 0xDFFF).map(chr)


@given(JSON_VALUES, LONE, st.sampled_from(["key", "value"]), st.sampled_from(["str", "raw", "utf-8", "utf-16"]))
def test_half_a_surrogate_pair_anywhere_is_refused(value: Any, lone: str, where: str, form: str) -> None:
    # Escaped: the only way JSON text stored as UTF-8 can hold one ("raw": a caller's own str).
    # json.loads takes it; no writer of UTF-8, nor of canonical JSON, can write it out again.
    hidden = {"x": [value, {lone: 1} if where == "key" else {"k": "a" + lone}]}
    text = json.dumps(hidden, ensure_ascii=form != "raw")
    with pytest.raises(ValueError, match="surrogate"):
        strict_json(text if form in ("str", "raw") else text.encode(form))


@given(st.text(alphabet=st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF), min_size=1, max_size=5))
def test_whole_surrogate_pairs_escaped_are_text(value: str) -> None:
    text = json.dumps({"k": value})  # ensure_ascii: each character beyond the BMP as an escaped pair
    assert strict_json(text) == {"k": value} == json.loads(text)


@given(
    st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=6),
    st.data(),
)
def test_a_documents_text_with_its_members_written_already_is_what_json_dumps_writes(
    document: dict[str, Any], data: st.DataObject
) -> None:
    """JSONText puts the texts of members written already in place: the very text json.dumps
    writes of the whole, whichever members are given (the very values; equal copies and other
    values under the same names, which are not put in), and whatever the values hold (the mark that stands for a member
    included, as far as it can be known)."""
    names = data.draw(st.lists(st.sampled_from(sorted(document)), unique=True) if document else st.just([]))
    members = {}
    for name in names:
        how = data.draw(st.sampled_from(["same", "copy", "other"]))
        given = {"same": document[name], "copy": json.loads(json.dumps(document[name])), "other": [name]}[how]
        members[name] = JSONText(given)
    if data.draw(st.booleans()):
        members["absent"] = JSONText({"not": "there"})
    if document and data.draw(st.booleans()):  # a value that looks like the mark (which is random)
        document[sorted(document)[0]] = _MARK + "0"
    assert JSONText(document, members).text == json.dumps(document)
    assert JSONText(document).text == json.dumps(document)


def test_a_mark_found_twice_leaves_the_document_written_whole() -> None:
    """Were a value to hold the very mark (it cannot be guessed: it is random), the document is
    written whole rather than with a member's text put in the wrong place."""
    report = {"text": "x"}
    document = {"a": f"{_MARK}0", "report": report}
    assert JSONText(document, {"report": JSONText(report)}).text == json.dumps(document)
