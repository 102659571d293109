"""Reading an export back -- a bag, a JSON document or JSON Lines -- checking everything first.

:func:`read_source` returns the records, the custody history that came with each, and where the
bytes of each artifact are, only after: the bag passed :func:`~evidence_catalog.interchange.bag.check_bag`
(paths, completeness, Payload-Oxum, every digest); every JSON document parsed strictly (no
duplicate members, no NaN), carries a schema id this version reads, and turns into a record that
writes back to exactly the same JSON (nothing unknown dropped, nothing changed); every custody
event still has its hash (and a complete log its links); every artifact a record lists is there
with its size.  Nothing here writes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from evidence_catalog import merkle, model
from evidence_catalog.checkpoint import CheckpointError, parse_vkey
from evidence_catalog.checkpoint import verify as verify_checkpoint
from evidence_catalog.custody import document_hash, event_leaf, verify_chain
from evidence_catalog.errors import EvidenceError, InputError, IntegrityError, ValidationError
from evidence_catalog.interchange.bag import CONTENTS, CUSTODY, RECORDS_DIR, BagError, ByteProgress, check_bag
from evidence_catalog.serialize import (
    BAG_CONTENTS_SCHEMA,
    CHECKPOINT_SCHEMA,
    OLDER_SCHEMA_IDS,
    SCHEMA_BASE,
    SCHEMA_IDS,
    canonical_json,
    from_document,
    to_document,
)

#: The largest JSON document (a record, contents.json, one line) read into memory.
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
_SCHEMA_ID = re.compile(r"^" + re.escape(SCHEMA_BASE) + r"(?P<name>[a-z-]+):(?P<version>\d+\.\d+\.\d+)$")


@attrs.frozen
class IncomingRecord:
    """A record ready to import, with the custody events that came with it."""

    record: model.EvidenceRecord
    history: tuple[dict[str, Any], ...]
    where: str


@attrs.frozen
class Incoming:
    """An export, checked: what it holds and where the bytes of each artifact are."""

    format: str
    #: What the import event says about the source (path, identifier, Payload-Oxum, digests).
    source: dict[str, Any]
    records: tuple[IncomingRecord, ...]
    #: SHA-256 -> file holding those bytes (in the bag, or in the blob folder given).
    files: dict[str, Path]
    #: Whether every file in *files* was hashed already (a bag); otherwise the importer checks.
    files_checked: bool


def parse_json(data: bytes | str, where: str) -> Any:
    """Parse JSON strictly: UTF-8, no duplicate members, no NaN or Infinity."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                raise ValueError(f"member {key!r} appears twice")
            result[key] = value
        return result

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except UnicodeDecodeError as exc:
        raise ValidationError(f"is not UTF-8 (byte {exc.start})", where=where) from None
    except (ValueError, RecursionError) as exc:
        raise ValidationError(f"malformed JSON: {exc}", where=where) from None


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


def _read_limited(path: Path, where: str) -> bytes:
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
        same = canonical_json(to_document(record)) == canonical_json(document)
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
    check_schema(document, SCHEMA_IDS[model.CustodyEvent], where)
    try:
        from_document(document, model.CustodyEvent)
        expected = document_hash(document)
    except (EvidenceError, TypeError, ValueError) as exc:
        raise ValidationError(str(exc), where=where) from None
    if expected != document["hash"]:
        raise IntegrityError(
            f"custody event {document.get('seq')} was altered: its content hashes to {expected}, "
            f"it says {document['hash']}",
            where=where,
        )
    assert isinstance(document, dict)
    return document


def _histories(events: list[dict[str, Any]], complete: bool, where: str) -> dict[str, list[dict[str, Any]]]:
    if complete:
        findings = verify_chain(events)
        if findings:
            raise IntegrityError(f"the custody log is broken: {findings[0]}", where=where)
    grouped: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        grouped.setdefault(event["subject"], []).append(event)
    return grouped


def read_source(path: Path, *, blobs: Path | None = None, progress: ByteProgress | None = None) -> Incoming:
    """Read and check an export: a bag folder, a JSON export or a JSON Lines export."""
    if path.is_symlink():
        raise InputError("is a symbolic link; give the bag folder or export file itself", where=str(path))
    if path.is_dir():
        if blobs is not None:
            raise InputError("a bag carries its own files; --blobs is for JSON and JSON Lines", where="blobs")
        return read_bag(path, progress=progress)
    if not path.is_file():
        raise InputError("no such file or bag folder", where=str(path))
    data = _read_limited(path, str(path))
    if not data.strip():
        raise InputError("is empty", where=str(path))
    if _first_line_is_a_document(data):  # JSON Lines: every line a whole document
        return _read_jsonl(path, data, blobs)
    return _read_json(path, data, blobs)


def _first_line_is_a_document(data: bytes) -> bool:
    """Whether the first non-blank line is a JSON object on its own (JSON Lines), rather than the
    start of one document over many lines (a JSON export)."""
    for line in data.split(b"\n"):
        if line.strip():
            try:
                return isinstance(json.loads(line), dict)
            except (ValueError, RecursionError):
                return False
    return False


def read_bag(root: Path, *, progress: ByteProgress | None = None) -> Incoming:
    """Check a bag and read the records in it."""
    checked = check_bag(root, progress=progress)
    if CONTENTS not in checked.files:
        raise BagError(f"has no {CONTENTS}: it is not an evidence export", where=str(root))
    contents = parse_json(_read_limited(checked.files[CONTENTS], CONTENTS), CONTENTS)
    check_schema(contents, BAG_CONTENTS_SCHEMA, CONTENTS)
    redaction = contents.get("redaction")
    if redaction is not None:
        if not isinstance(redaction, dict):
            raise ValidationError("redaction must be an object or null", where=CONTENTS)
        artifacts = redaction.get("withheld_artifacts")
        fields = redaction.get("withheld_fields")
        if not isinstance(artifacts, list) or not isinstance(fields, list):
            raise ValidationError("redaction must list withheld_artifacts and withheld_fields", where=CONTENTS)
        if artifacts or fields:
            raise InputError(
                f"is a redacted bag ({len(artifacts)} artifact(s) and {len(fields)} field(s) withheld), "
                "so its records cannot be imported as they were; import the complete bag",
                where=str(root),
            )
    record_files: dict[str, str] = {}
    artifact_files: dict[str, list[str]] = {}
    for name in checked.files:
        if name in (CONTENTS, CUSTODY) or name.startswith(LOG_PREFIX):
            continue
        match = re.fullmatch(re.escape(RECORDS_DIR) + r"/([^/]+)/(record\.json|artifacts/[^/]+)", name)
        if match is None or not model.is_record_id(match.group(1)):
            raise BagError("is not a file an evidence export holds", where=name)
        if match.group(2) == "record.json":
            record_files[match.group(1)] = name
        else:
            artifact_files.setdefault(match.group(1), []).append(name)
    if CUSTODY not in checked.files:
        raise BagError(f"has no {CUSTODY}", where=str(root))
    events = [event_document(doc, f"{CUSTODY} line {n}") for n, doc in _lines(checked.files[CUSTODY], CUSTODY)]
    histories = _histories(events, contents.get("complete_log") is True, CUSTODY)
    signed_log = _check_log(checked.files, contents, events)
    records = []
    files: dict[str, Path] = {}
    for record_id, name in sorted(record_files.items()):
        record = record_from(parse_json(_read_limited(checked.files[name], name), name), name)
        if record.id != record_id:
            raise ValidationError(f"holds record {record.id}, not {record_id}", where=name)
        have = {checked.sha256[f]: f for f in artifact_files.pop(record_id, [])}
        for entry in record.artifacts:
            sha = entry.artifact.sha256
            file = have.pop(sha, None)
            if file is None:
                raise BagError(f"lists artifact {sha}, which is not among its files", where=name)
            size = checked.files[file].stat().st_size
            if size != entry.artifact.size:
                raise BagError(f"is {size} bytes; the record says {entry.artifact.size}", where=file)
            files[sha] = checked.files[file]
        if have:
            raise BagError("is not an artifact of its record", where=sorted(have.values())[0])
        records.append(IncomingRecord(record=record, history=tuple(histories.get(record.id, ())), where=name))
    if artifact_files:
        orphan = sorted(artifact_files)[0]
        raise BagError(f"has artifact files but no record.json for record {orphan}", where=RECORDS_DIR)
    for label, count in (("records", len(records)), ("custody_events", len(events))):
        if contents.get(label) != count:
            raise BagError(f"says {label} {contents.get(label)!r}, the bag holds {count}", where=CONTENTS)
    source = {
        "format": "bagit",
        "path": str(root),
        "external_identifier": checked.get("External-Identifier"),
        "payload_oxum": f"{checked.octets}.{len(checked.files)}",
        "bagging_date": checked.get("Bagging-Date"),
        "source_organization": checked.get("Source-Organization"),
        "tagmanifest_sha256": checked.tagmanifest_sha256,
        "log": signed_log,
    }
    return Incoming(format="bagit", source=source, records=tuple(records), files=files, files_checked=True)


def _lines(path: Path, where: str) -> Iterator[tuple[int, Any]]:
    with open(path, "rb") as stream:
        for number, line in enumerate(stream, 1):
            if len(line) > MAX_DOCUMENT_BYTES:
                raise InputError(f"line {number} is longer than a document may be", where=where)
            if line.strip():
                yield number, parse_json(line, f"{where} line {number}")


def _blob_files(records: list[IncomingRecord], blobs: Path | None) -> dict[str, Path]:
    """Where each artifact's bytes are in a blob folder (a catalog, or its ``blobs`` folder)."""
    if blobs is None:
        return {}
    root = blobs / "blobs" if (blobs / "blobs" / "sha256").is_dir() else blobs
    if not (root / "sha256").is_dir():
        raise InputError("is not a catalog or a blob folder (no sha256/ inside)", where=str(blobs))
    found = {}
    for item in records:
        for entry in item.record.artifacts:
            sha = entry.artifact.sha256
            candidate = root / "sha256" / sha[:2] / sha[2:4] / sha
            if candidate.is_file() and not candidate.is_symlink():
                found[sha] = candidate
    return found


def _read_json(path: Path, data: bytes, blobs: Path | None) -> Incoming:
    where = str(path)
    document = parse_json(data, where)
    check_schema(document, SCHEMA_IDS[model.ExportBundle], where)
    raw_records = document.get("records")
    raw_events = document.get("custody_events")
    if not isinstance(raw_records, list) or not isinstance(raw_events, list):
        raise ValidationError("records and custody_events must be lists", where=where)
    head = {k: v for k, v in document.items() if k not in ("records", "custody_events")}
    try:
        from_document({**head, "records": [], "custody_events": []}, model.ExportBundle)
    except EvidenceError as exc:
        raise ValidationError(exc.message, where=where) from None
    events = [
        event_document(
            {"schema": SCHEMA_IDS[model.CustodyEvent], **e} if isinstance(e, dict) else e,
            f"{where} custody_events[{i}]",
        )
        for i, e in enumerate(raw_events)
    ]
    histories = _histories(events, document.get("complete_log") is True, where)
    records = [
        IncomingRecord(
            record=(
                record := record_from(
                    {"schema": SCHEMA_IDS[model.EvidenceRecord], **r} if isinstance(r, dict) else r,
                    f"{where} records[{i}]",
                )
            ),
            history=tuple(histories.get(record.id, ())),
            where=f"{where} records[{i}]",
        )
        for i, r in enumerate(raw_records)
    ]
    return _file_incoming("json", path, data, records, blobs)


def _read_jsonl(path: Path, data: bytes, blobs: Path | None) -> Incoming:
    where = str(path)
    docs: list[tuple[str, Any]] = []
    for number, line in enumerate(data.split(b"\n"), 1):
        if line.strip():
            docs.append((f"{where} line {number}", parse_json(line, f"{where} line {number}")))
    if not docs:
        raise InputError("is empty", where=where)
    events = []
    raw_records = []
    for place, doc in docs:
        schema = doc.get("schema") if isinstance(doc, dict) else None
        if isinstance(schema, str) and schema.startswith(SCHEMA_BASE + "custody-event:"):
            events.append(event_document(doc, place))
        elif isinstance(schema, str) and schema.startswith(SCHEMA_BASE + "checkpoint:"):
            check_schema(doc, CHECKPOINT_SCHEMA, place)  # the log's checkpoint: kept by the exporter
        else:
            raw_records.append((place, doc))  # record_from names a document that is neither
    histories = _histories(events, False, where)
    records = [
        IncomingRecord(
            record=(record := record_from(doc, place)), history=tuple(histories.get(record.id, ())), where=place
        )
        for place, doc in raw_records
    ]
    return _file_incoming("jsonl", path, data, records, blobs)


def _file_incoming(format: str, path: Path, data: bytes, records: list[IncomingRecord], blobs: Path | None) -> Incoming:
    ids = [item.record.id for item in records]
    if len(set(ids)) != len(ids):
        raise ValidationError("holds the same record twice", where=str(path))
    digest = hashlib.sha256(data).hexdigest()
    source = {"format": format, "path": str(path), "sha256": digest, "size": len(data)}
    return Incoming(
        format=format, source=source, records=tuple(records), files=_blob_files(records, blobs), files_checked=False
    )


LOG_PREFIX = "data/log/"


def _check_log(
    files: Mapping[str, Path], contents: Mapping[str, Any], events: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """Check the bag's custody events against its signed checkpoint: the checkpoint's
    signature with the bag's log key, and each event's leaf -- by the root of the whole log,
    or by its inclusion proof.  Returns what the import event says of it (origin, size, root)."""
    log = contents.get("log")
    if log is None:
        if any(name.startswith(LOG_PREFIX) for name in files):
            raise BagError("has files in data/log/ that contents.json does not describe", where=CONTENTS)
        return None
    if not isinstance(log, dict):
        raise ValidationError("log must be an object or null", where=CONTENTS)
    where = f"{LOG_PREFIX}checkpoint.note"
    try:
        name, public = parse_vkey(_text(files, f"{LOG_PREFIX}log.vkey"))
        found = verify_checkpoint(_text(files, where), name, public)
    except CheckpointError as exc:
        raise IntegrityError(f"the bag's checkpoint does not check: {exc}", where=where) from None
    leaves = []
    for event in events:
        try:
            leaves.append(event_leaf(event))
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"custody event {event.get('seq')} cannot be hashed: {exc}", where=CUSTODY) from None
    if contents.get("complete_log") is True:
        if found.size != len(leaves) or merkle.root(merkle.perfect_from_leaves(leaves), len(leaves)) != found.root:
            raise IntegrityError("the custody log is not the one the checkpoint signed", where=CUSTODY)
    elif leaves:
        proofs_name = f"{LOG_PREFIX}proofs.jsonl"
        if proofs_name not in files:
            raise BagError("has a checkpoint but no inclusion proofs for its custody events", where=proofs_name)
        proofs = {
            line.get("seq"): line for _, line in _lines(files[proofs_name], proofs_name) if isinstance(line, dict)
        }
        for event, leaf in zip(events, leaves, strict=True):
            proof = proofs.get(event["seq"])
            try:
                path = [bytes.fromhex(h) for h in proof["proof"]] if proof else None
            except (TypeError, ValueError, KeyError):
                path = None
            if path is None or not merkle.verify_inclusion(event["seq"] - 1, found.size, leaf, path, found.root):
                raise IntegrityError(
                    f"custody event {event['seq']} is not proven to be in the signed log", where=proofs_name
                )
    return {"origin": found.origin, "tree_size": found.size, "root_hash": found.root.hex()}


def _text(files: Mapping[str, Path], name: str) -> str:
    if name not in files:
        raise BagError("is missing (contents.json says the bag has a signed checkpoint)", where=name)
    try:
        return _read_limited(files[name], name).decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("is not UTF-8", where=name) from None
