"""The one converter between model values and JSON documents.

Every JSON document this library emits is made here and carries its schema id in a ``schema``
member (see ``schemas/``).  Timestamps are ISO 8601 in UTC with a ``Z`` suffix; enums are their
values; absent optional fields are ``null``.  Hashes over JSON use RFC 8785 canonical form
(:func:`canonical_json`) so that any other tool can recompute them from an export.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

import cattrs
import rfc8785
from cattrs.gen import make_dict_unstructure_fn, override
from cattrs.preconf.json import make_converter

from evidence_catalog import model
from evidence_catalog.analysis import MediaAnalysis
from evidence_catalog.errors import ModelTypeError, ValidationError
from evidence_catalog.values import is_text

T = TypeVar("T")

SCHEMA_BASE = "urn:evidence-catalog:schema:"

#: Schema id of each top-level document type.  The version is part of the id; a reader accepts
#: only the versions it knows.
SCHEMA_IDS: dict[type[Any], str] = {
    model.EvidenceRecord: SCHEMA_BASE + "evidence-record:2.0.0",
    model.Artifact: SCHEMA_BASE + "artifact:1.0.0",
    model.CustodyEvent: SCHEMA_BASE + "custody-event:1.1.0",
    model.ExportBundle: SCHEMA_BASE + "export:2.0.0",
    MediaAnalysis: SCHEMA_BASE + "media-analysis:1.0.0",
}
#: Older schema ids still read, and the type each is (custody-event 1.1.0 only adds salted
#: commitments: an event of 1.0.0 is one without a salt, and hashes as it always did).
OLDER_SCHEMA_IDS: dict[str, type[Any]] = {SCHEMA_BASE + "custody-event:1.0.0": model.CustodyEvent}
_TYPES_BY_SCHEMA = {**{v: k for k, v in SCHEMA_IDS.items()}, **OLDER_SCHEMA_IDS}
#: Schema id of the result of ``verify`` (``VerificationReport.as_dict()``, ``verify --json``).
VERIFICATION_REPORT_SCHEMA = SCHEMA_BASE + "verification-report:1.1.0"
#: Schema id of ``data/contents.json`` in an export bag.
BAG_CONTENTS_SCHEMA = SCHEMA_BASE + "bag-contents:1.0.0"
#: Schema id of the checkpoint line that ends a JSON Lines export.
CHECKPOINT_SCHEMA = SCHEMA_BASE + "checkpoint:1.0.0"
#: The JSON behind each page of the read-only viewer (``evidence-catalog serve``), by page.
VIEWER_SCHEMAS = {
    page: SCHEMA_BASE + f"viewer-{page}:1.0.0"
    for page in ("records", "record", "events", "map", "timeline", "artifact")
}


def format_timestamp(value: dt.datetime) -> str:
    """Format an aware datetime as ISO 8601 UTC with ``Z``; microseconds only when non-zero."""
    value = model.to_utc(value)
    if type(value) is dt.datetime and value.tzinfo is dt.UTC:
        # datetime's own isoformat pads years before 1000 too, writes the microseconds only when
        # there are some, and ends a time in UTC with "+00:00" (a subclass may write it otherwise).
        return value.isoformat()[:-6] + "Z"
    # Not strftime: its %Y does not pad years before 1000 on every platform ("999-03-01").
    text = f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def parse_timestamp(value: str) -> dt.datetime:
    """Parse an ISO 8601 timestamp that carries a zone; return it in UTC."""
    if not isinstance(value, str):
        raise ModelTypeError(f"timestamp must be text, got {type(value).__name__}")
    parsed = dt.datetime.fromisoformat(value)
    return model.to_utc(parsed)


def _make_converter() -> cattrs.Converter:
    conv = make_converter(forbid_extra_keys=True)
    conv.register_unstructure_hook(dt.datetime, format_timestamp)
    conv.register_structure_hook(dt.datetime, lambda v, _: parse_timestamp(v))
    # Free-form JSON objects (raw platform metadata, event details) pass through unchanged.
    conv.register_structure_hook_func(lambda t: t == dict[str, Any], lambda v, _: _json_object(v))
    conv.register_structure_hook(model.Agent, _remembered_agents(conv.get_structure_hook(model.Agent)))
    # Image and media descriptions are newer than the documents that lack them: absent, they
    # are left out, so that those documents (and the hashes over them) stay byte for byte.
    conv.register_unstructure_hook(
        model.EmbeddedMetadata,
        make_dict_unstructure_fn(
            model.EmbeddedMetadata,
            conv,
            image=override(omit_if_default=True),
            media=override(omit_if_default=True),
        ),
    )
    return conv


#: How many agents :func:`_remembered_agents` keeps (the operator, the tools: a few at a time).
_AGENTS_KEPT = 256


def _remembered_agents(make: Any) -> Any:
    """The converter's own structuring of an :class:`~evidence_catalog.model.Agent` (*make*),
    with the last agents made kept by their document: the same few agents (the operator, this
    library and Python as tools) appear in every record and event, which a verification or an
    import rebuilds by the thousand.  Only a plain object of text and null members is looked up
    (its members exactly, in order: equal members make an equal agent, and agents are frozen);
    anything else, and any error, is the converter's as before."""
    kept: dict[tuple[tuple[str, str | None], ...], model.Agent] = {}

    def structure_agent(value: Any, cls: Any) -> model.Agent:
        if type(value) is not dict or cls is not model.Agent:
            return make(value, cls)  # type: ignore[no-any-return]
        key = tuple(value.items())
        for name, member in key:
            if type(name) is not str or (member is not None and type(member) is not str):
                return make(value, cls)  # type: ignore[no-any-return]
        found = kept.get(key)
        if found is None:
            found = make(value, cls)
            if len(kept) >= _AGENTS_KEPT:
                kept.clear()
            kept[key] = found
        return found

    return structure_agent


def _json_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ModelTypeError(f"expected a JSON object, got {type(value).__name__}")
    return value


#: The converter.  Use :func:`to_document`/:func:`from_document` for top-level documents.
converter: cattrs.Converter = _make_converter()


def to_document(value: Any) -> dict[str, Any]:
    """Return the JSON-ready document for a top-level model value, with its ``schema`` id first."""
    schema = SCHEMA_IDS.get(type(value))
    if schema is None:
        raise ModelTypeError(f"{type(value).__name__} is not a top-level document type")
    body = converter.unstructure(value)
    return {"schema": schema, **body}


def from_document(data: Any, expected: type[T] | None = None) -> T:
    """Build a model value from a JSON document, checking its ``schema`` id.

    Raises :class:`~evidence_catalog.errors.ValidationError` naming the field and the reason.
    """
    if not isinstance(data, dict):
        raise ValidationError(f"expected a JSON object, got {type(data).__name__}")
    schema = data.get("schema")
    cls = _TYPES_BY_SCHEMA.get(schema) if isinstance(schema, str) else None
    if cls is None:
        known = ", ".join(sorted(_TYPES_BY_SCHEMA))
        raise ValidationError(
            f"unknown or unsupported schema {schema!r} (this version reads: {known})",
            where="schema",
        )
    if expected is not None and cls is not expected:
        raise ValidationError(f"expected a {expected.__name__} document, got {schema}", where="schema")
    body = {k: v for k, v in data.items() if k != "schema"}
    result: T = structure(body, cls)
    return result


def structure(data: Any, cls: type[T]) -> T:
    """Build a model value of type *cls* from JSON-ready data; errors name the field path."""
    try:
        return converter.structure(data, cls)
    except Exception as exc:  # cattrs raises ExceptionGroups; flatten them to one clear message
        if isinstance(exc, cattrs.BaseValidationError):
            messages = cattrs.transform_error(exc, path="$")
            raise ValidationError("; ".join(messages), where=cls.__name__) from exc
        raise ValidationError(str(exc), where=cls.__name__) from exc


def unstructure(value: Any) -> Any:
    """Return JSON-ready data for any model value (no ``schema`` member)."""
    return converter.unstructure(value)


def _agent_document(agent: model.Agent) -> dict[str, Any]:
    """``unstructure(agent)``, kept for the last agent asked about: the operator every row
    and event of an add or an ingest names is made into a document once, and the rows that
    hold it are written with one JSON text.  Private to the library: the document is shared by
    every row and walk that names the agent (a change to it would change what later events say
    of their actor), and nothing the library hands a caller holds it."""
    last = _LAST_AGENT[0]
    if last is not None and last[0] is agent:
        return last[1]
    document: dict[str, Any] = converter.unstructure(agent)
    _LAST_AGENT[0] = (agent, document)
    return document


#: The last agent :func:`_agent_document` made a document of, and the document.
_LAST_AGENT: list[tuple[model.Agent, dict[str, Any]] | None] = [None]


def canonical_json(data: Any) -> bytes:
    """RFC 8785 (JCS) canonical JSON bytes of JSON-ready *data*.

    ``rfc8785`` makes them; for a document of only strings, safe integers, booleans, nulls,
    arrays and objects whose keys sort alike in UTF-16 and in code points -- every custody
    event this library writes, unless it carries a number with a fraction -- the standard
    library's JSON encoder (in C) writes the very same bytes some ten times faster: RFC 8785
    escapes strings as ECMAScript does, which is what ``json`` does with ``ensure_ascii`` off.
    Anything else (a float, a huge integer, a lone surrogate, an unusual key) goes to
    ``rfc8785``, which also raises its errors.  ``tests/test_serialize.py`` holds the two equal.
    """
    if _plain(data):
        try:
            return plain_json(data).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: rfc8785 says so in its own words
            pass
    return rfc8785.dumps(data)


def _plain_writer() -> Callable[[Any], str]:
    """What ``json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)``
    writes, made by one encoder kept for every call: ``json.dumps`` with arguments makes a
    ``JSONEncoder`` each call, and its ``encode`` a C encoder each call, about a third of the
    time of writing a custody event's committed form.  Kept without the check for circular
    structures (a structure that holds itself fails with ``RecursionError`` instead of
    ``ValueError``): the values written are made by the walks that commit an event, or read
    from JSON text, and hold no cycle.  Where the C encoder is missing or takes other
    arguments, the encoder's own ``encode``."""
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return encoder.encode
    try:
        write = make(
            None,  # no markers: no check for cycles
            encoder.default,
            json.encoder.encode_basestring,  # type: ignore[attr-defined]
            None,
            encoder.key_separator,
            encoder.item_separator,
            True,
            False,
            True,
        )
        if "".join(write({"b": [1, None, True], "a": "\u00e9\n"}, 0)) != '{"a":"\u00e9\\n","b":[1,null,true]}':
            return encoder.encode
    except Exception:  # noqa: BLE001 -- another Python's encoder: its own encode instead
        return encoder.encode

    def plain(value: Any) -> str:
        return "".join(write(value, 0))

    return plain


#: ``json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)``, faster
#: (:func:`_plain_writer`): :func:`canonical_json` of a plain value, as text.
plain_json: Callable[[Any], str] = _plain_writer()


_SAFE_INTEGER = 2**53 - 1
#: Characters that sort differently by UTF-16 code units (RFC 8785's key order) and by code
#: points (``sort_keys``): those above the surrogates' range, and those beyond the BMP.
_UTF16_ORDER_DIFFERS = re.compile("[\ue000-\U0010ffff]")


def _plain(value: Any) -> bool:
    """Whether *value* is JSON that ``json.dumps`` writes exactly as RFC 8785 does: exact
    built-in types, except that a string may be of a subclass (an enum of strings, as the
    converter leaves them): both write its characters, whatever its methods say.

    Every value of the document is looked at once, without recursion (a custody event has some
    eighty, and each is hashed twice when the log is verified)."""
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is str or item is None or kind is bool:
            continue
        if kind is dict:
            for key, inner in item.items():
                if type(key) is not str or not (key.isascii() or not _UTF16_ORDER_DIFFERS.search(key)):
                    return False
                if type(inner) is not str:
                    pending.append(inner)
        elif kind is list or kind is tuple:
            pending.extend(item)
        elif kind is int:
            if not -_SAFE_INTEGER <= item <= _SAFE_INTEGER:
                return False
        elif not isinstance(item, str):
            return False
    return True


#: The deepest nesting of arrays and objects :func:`certainly_same_json` vouches for.
CERTAIN_DEPTH = 200


def certainly_same_json(first: Any, second: Any) -> bool:
    """Whether *first* and *second* certainly have the same :func:`canonical_json`, both of
    them without error: the same objects, arrays, texts, nulls, booleans and whole numbers JSON
    carries exactly, member for member, found in one walk without writing either.  ``False``
    means "not certain" (they differ, or hold a float, a number out of that range, a lone
    surrogate, a key that is not text, a type that is not JSON's own): the caller then compares
    their canonical JSON, which also raises its errors.  An array may be a ``list`` or a
    ``tuple`` and a text of a subclass (an enum's), as :func:`canonical_json` writes them alike;
    nothing nested more than :data:`CERTAIN_DEPTH` deep is certain (the writers recurse)."""
    pending = [(first, second, 0)]
    while pending:
        a, b, depth = pending.pop()
        kind = type(a)
        if kind is dict:
            if type(b) is not dict or len(a) != len(b) or depth >= CERTAIN_DEPTH:
                return False
            for key, value in a.items():
                if type(key) is not str or key not in b or (not key.isascii() and not is_text(key)):
                    return False
                pending.append((value, b[key], depth + 1))
        elif kind is list or kind is tuple:
            if (type(b) is not list and type(b) is not tuple) or len(a) != len(b) or depth >= CERTAIN_DEPTH:
                return False
            pending.extend((x, y, depth + 1) for x, y in zip(a, b, strict=True))
        elif isinstance(a, str):
            if not isinstance(b, str) or not str.__eq__(a, b) or (not a.isascii() and not is_text(a)):
                return False
        elif a is None or kind is bool:
            if a is not b:
                return False
        elif kind is int:
            if type(b) is not int or a != b or not -_SAFE_INTEGER <= a <= _SAFE_INTEGER:
                return False
        else:
            return False
    return True


def dumps(value: Any, *, indent: int | None = 2) -> str:
    """Human-readable JSON text of a top-level document (UTF-8, non-ASCII kept as is)."""
    return json.dumps(to_document(value), ensure_ascii=False, indent=indent)


def loads(text: str | bytes, expected: type[T] | None = None) -> T:
    """Parse JSON text into a model value; malformed JSON is a :class:`ValidationError`."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"malformed JSON: {exc}") from exc
    return from_document(data, expected)
