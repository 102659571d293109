"""The documents of an export, read strictly: the first check of everything an import reads.

Every JSON document of a bag, a JSON export or a JSON Lines export is parsed here
(:func:`parse_json`: no duplicate members, no NaN), within a size (:data:`MAX_DOCUMENT_BYTES`,
and :data:`MAX_LINE_BYTES` a line), and checked to carry a schema id this version reads; a record
must write back to exactly the same JSON (:func:`record_from`), a custody event must still have
its hash (:func:`checked_event`) and a log its links (:func:`link_findings`).  Separate from
:mod:`evidence_catalog.interchange.importing`, which puts these together into what an export
holds, because the provenance checks (:mod:`evidence_catalog.interchange.import_provenance`)
read a bag's log evidence with them too.  Nothing here writes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from sys import intern
from typing import Any

from evidence_catalog import model
from evidence_catalog.errors import EvidenceError, InputError, IntegrityError, ValidationError
from evidence_catalog.findings import BrokenLink, EventEdited, EventMissing, EventOutOfOrder, Finding
from evidence_catalog.model import GENESIS_HASH
from evidence_catalog.serialize import (
    OLDER_SCHEMA_IDS,
    SCHEMA_BASE,
    SCHEMA_IDS,
    canonical_json,
    certainly_same_json,
    from_document,
    to_document,
)
from evidence_catalog.stored_events import stored_hash_and_leaf

#: The largest JSON document (a record, contents.json, a JSON or JSON Lines export) read into memory.
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
#: The longest line of a bag's ``custody.jsonl`` or ``data/log/proofs.jsonl`` (newline included):
#: a line is read at most this far, and a longer one refused, so it is never read whole.
MAX_LINE_BYTES = 64 * 1024 * 1024
_SCHEMA_ID = re.compile(r"^" + re.escape(SCHEMA_BASE) + r"(?P<name>[a-z-]+):(?P<version>\d+\.\d+\.\d+)$")


#: The deepest nesting of arrays and objects a document may have.  A catalog's own documents are
#: under twenty deep; each import of an imported record adds three levels to the event that
#: imports it again.  Fixed, so that whether a document is read does not depend on how deep the
#: reader's own stack is (Python's parser stops at a depth that does).
MAX_NESTING = 200


def parse_json(data: bytes | str, where: str) -> Any:
    """Parse JSON strictly: UTF-8, no duplicate members, no NaN or Infinity, nested at most
    :data:`MAX_NESTING` deep.

    Member names are interned: an export's thousands of custody events, held until they are
    imported, share one copy of each name instead of one each."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                raise ValueError(f"member {key!r} appears twice")
            result[intern(key)] = value
        return result

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except UnicodeDecodeError as exc:
        raise ValidationError(f"is not UTF-8 (byte {exc.start})", where=where) from None
    except ValueError as exc:
        raise ValidationError(f"malformed JSON: {exc}", where=where) from None
    except RecursionError:  # nested deeper than the reader's stack allows, which is far deeper
        raise ValidationError(_TOO_DEEP, where=where) from None
    # Each array and object opens with a bracket: a text with few of them is not nested deep.
    if text.count("[") + text.count("{") > MAX_NESTING and _nested_deeper(value, MAX_NESTING):
        raise ValidationError(_TOO_DEEP, where=where)
    return value


_TOO_DEEP = f"is nested more than {MAX_NESTING} arrays and objects deep"


def _nested_deeper(value: Any, limit: int) -> bool:
    """Whether *value* nests arrays and objects more than *limit* deep (found without recursion)."""
    pending = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                return True
            pending.extend((inner, depth + 1) for inner in (node.values() if isinstance(node, dict) else node))
    return False


def check_schema(document: Any, expected: str, where: str) -> None:
    """Refuse a document whose ``schema`` is not *expected* (a schema id), naming a newer
    version of the same schema as such."""
    if not isinstance(document, dict):
        raise ValidationError(f"is a JSON {type(document).__name__}, not an object", where=where)
    given = document.get("schema")
    if given == expected or (given in OLDER_SCHEMA_IDS and OLDER_SCHEMA_IDS[given] is _TYPES.get(expected)):
        return
    want = _SCHEMA_ID.match(expected)
    got = _SCHEMA_ID.match(given) if isinstance(given, str) else None
    if want and got and got.group("name") == want.group("name"):
        if _version(got.group("version")) > _version(want.group("version")):
            raise ValidationError(
                f"schema {given} is newer than this library reads ({want.group('version')}); upgrade evidence-catalog",
                where=where,
            )
        raise ValidationError(f"schema {given} is an older version this library does not import", where=where)
    raise ValidationError(f"unknown schema {given!r}; expected {expected}", where=where)


#: Schema id -> type, to tell which older ids read as which current one.
_TYPES = {schema: kind for kind, schema in SCHEMA_IDS.items()}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def read_limited(path: Path, where: str) -> bytes:
    size = path.stat().st_size
    if size > MAX_DOCUMENT_BYTES:
        raise InputError(f"is {size} bytes, more than a document may be ({MAX_DOCUMENT_BYTES})", where=where)
    return path.read_bytes()


def record_from(document: Any, where: str) -> model.EvidenceRecord:
    """The record a document holds, refused unless it writes back to the same JSON."""
    check_schema(document, SCHEMA_IDS[model.EvidenceRecord], where)
    try:
        record: model.EvidenceRecord = from_document(document, model.EvidenceRecord)
    except EvidenceError as exc:
        raise ValidationError(exc.message, where=where) from None
    try:
        written = to_document(record)
        same = certainly_same_json(written, document) or canonical_json(written) == canonical_json(document)
    except ValueError as exc:  # e.g. an integer outside what JSON numbers can carry exactly
        raise ValidationError(f"holds a value canonical JSON cannot represent: {exc}", where=where) from None
    if not same:
        differing = sorted(k for k, v in to_document(record).items() if document.get(k) != v)
        raise ValidationError(
            f"would not be kept exactly as given (differs in: {', '.join(differing) or 'member order or form'})",
            where=where,
        )
    return record


def event_document(document: Any, where: str) -> dict[str, Any]:
    """A custody event document, refused unless its hash is right."""
    return checked_event(document, where)[0]


def checked_event(document: Any, where: str) -> tuple[dict[str, Any], bytes]:
    """:func:`event_document`, with the event's leaf in the log's Merkle tree (both from one
    committed form: for a salted event, every value's salted digest is made once)."""
    event = event_shape(document, where)
    return event, hash_checked(event, where)


def event_shape(document: Any, where: str) -> dict[str, Any]:
    """The first half of :func:`checked_event`: *document* is a custody event of a schema this
    version reads, every member of the type it must be (its hash is not looked at)."""
    check_schema(document, SCHEMA_IDS[model.CustodyEvent], where)
    try:
        from_document(document, model.CustodyEvent)
    except (EvidenceError, TypeError, ValueError) as exc:
        raise ValidationError(str(exc), where=where) from None
    assert isinstance(document, dict)
    # The converter reads a list or a number as the text it prints (str()): the members the
    # import looks events up by, or compares, must be text in the document itself.
    for name in _TEXT_MEMBERS:
        if type(document.get(name)) is not str:
            raise ValidationError(f"{name} must be text, not {_json_kind(document.get(name))}", where=where)
    return document


#: Members of a custody event that are text (the converter would take a list or a number for
#: the text it prints).
_TEXT_MEMBERS = ("at", "action", "subject", "prev_hash", "hash")


def _json_kind(value: Any) -> str:
    """What JSON calls the kind of *value*."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    return "an array" if isinstance(value, list) else type(value).__name__


def hash_checked(event: dict[str, Any], where: str, hashed: tuple[str, bytes] | None = None) -> bytes:
    """The second half of :func:`checked_event`: the leaf of *event* (an :func:`event_shape`),
    refused unless its content hashes to the hash it carries.  *hashed* is its
    :func:`~evidence_catalog.stored_events.stored_hash_and_leaf` where that was made already
    (by :func:`hashed_lines`, in another process), else it is made here."""
    try:
        expected, leaf = stored_hash_and_leaf(event) if hashed is None else hashed
    except (TypeError, ValueError) as exc:
        raise ValidationError(str(exc), where=where) from None
    if expected != event["hash"]:
        raise IntegrityError(
            f"custody event {event.get('seq')} was altered: its content hashes to {expected}, it says {event['hash']}",
            where=where,
        )
    return leaf


def hashed_lines(chunk: list[bytes]) -> list[tuple[str, bytes] | None]:
    """:func:`~evidence_catalog.stored_events.stored_hash_and_leaf` of the document each line of
    *chunk* holds, read as :func:`lines` reads it (``None`` for a line that cannot be read or
    hashed: the importer, which reads every line itself, says why).  What an import's worker
    process does while the import reads the bag's records; the importer only compares."""
    hashed: list[tuple[str, bytes] | None] = []
    for line in chunk:
        try:
            hashed.append(stored_hash_and_leaf(parse_json(line, "")))
        except Exception:  # noqa: BLE001 -- the importer reads the line again and names the problem
            hashed.append(None)
    return hashed


def link_findings(events: list[dict[str, Any]]) -> list[Finding]:
    """What :func:`~evidence_catalog.custody.verify_chain` finds in a log of events whose own
    hashes were checked already (:func:`checked_event`): sequence numbers that are not whole
    numbers, missing or out of order, and links that are broken -- without hashing each event
    again."""
    findings: list[Finding] = []
    expected_seq = 1
    previous_hash = GENESIS_HASH
    for document in events:
        seq, stored_hash, prev_hash = document.get("seq"), document.get("hash"), document.get("prev_hash")
        if not isinstance(seq, int) or isinstance(seq, bool):
            findings.append(EventEdited(seq=expected_seq, expected=str(stored_hash), found=f"bad sequence {seq!r}"))
            seq = expected_seq
        if seq > expected_seq:
            findings.append(EventMissing(seq=expected_seq, found=seq))
        elif seq < expected_seq:
            findings.append(EventOutOfOrder(seq=seq, expected=expected_seq))
        elif prev_hash != previous_hash:
            findings.append(BrokenLink(seq=seq, expected=previous_hash, found=str(prev_hash)))
        expected_seq = seq + 1
        previous_hash = str(stored_hash)
    return findings


def lines(path: Path, where: str) -> Iterator[tuple[int, Any]]:
    """The documents of a JSON Lines file, one line at a time: a line is read at most
    :data:`MAX_LINE_BYTES` far, and a longer one refused before the rest of it is read."""
    for number, line in raw_lines(path, where):
        yield number, parse_json(line, f"{where} line {number}")


def raw_lines(path: Path, where: str) -> Iterator[tuple[int, bytes]]:
    """The lines of a JSON Lines file that are not blank, each with its number, as
    :func:`lines` reads them (and refuses a long one) before it parses them."""
    limit = MAX_LINE_BYTES
    with open(path, "rb") as stream:
        number = 0
        while line := stream.readline(limit + 1):
            number += 1
            if len(line) > limit:
                raise InputError(
                    f"line {number} is longer than a line may be ({limit} bytes); nothing was imported", where=where
                )
            if line.strip():
                yield number, line
