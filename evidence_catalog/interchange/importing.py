"""Reading an export back -- a bag, a JSON document or JSON Lines -- checking everything first.

:func:`read_source` returns the records, the custody history that came with each, and where the
bytes of each artifact are, only after: the bag passed :func:`~evidence_catalog.interchange.bag.check_bag_layout`
(paths, completeness, Payload-Oxum, the tag files' digests) and each document its digests, before
it was read (the artifact files' digests are left to the importer, which checks each as it
stores it: :attr:`Incoming.unchecked`); every JSON document parsed strictly (no
duplicate members, no NaN), carries a schema id this version reads, and turns into a record that
writes back to exactly the same JSON (nothing unknown dropped, nothing changed); every custody
event still has its hash (and a complete log its links); every artifact a record lists is there
with its size.  Nothing here writes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from evidence_catalog import merkle, model
from evidence_catalog.checkpoint import (
    KEY_CHANGED,
    KEY_DECLARED,
    CheckpointError,
    epoch_at,
    key_chain,
    key_id,
    parse_checkpoint,
    split_note,
)
from evidence_catalog.checkpoint import verify as verify_checkpoint
from evidence_catalog.custody import Action, event_leaf, hash_and_leaf
from evidence_catalog.errors import EvidenceError, InputError, IntegrityError, ValidationError
from evidence_catalog.findings import BrokenLink, EventEdited, EventMissing, EventOutOfOrder, Finding
from evidence_catalog.hashing import MultiHasher, hash_file
from evidence_catalog.interchange.bag import (
    CONTENTS,
    CUSTODY,
    RECORDS_DIR,
    BagError,
    BagLayout,
    ByteProgress,
    check_bag_layout,
    check_payload_file,
    compare_digests,
)
from evidence_catalog.model import GENESIS_HASH
from evidence_catalog.replay import replay
from evidence_catalog.serialize import (
    BAG_CONTENTS_SCHEMA,
    CHECKPOINT_SCHEMA,
    OLDER_SCHEMA_IDS,
    SCHEMA_BASE,
    SCHEMA_IDS,
    canonical_json,
    from_document,
    to_document,
    unstructure,
)

#: The largest JSON document (a record, contents.json, a JSON or JSON Lines export) read into memory.
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
#: The longest line of a bag's ``custody.jsonl`` or ``data/log/proofs.jsonl`` (newline included):
#: a line is read at most this far, and a longer one refused, so it is never read whole.
MAX_LINE_BYTES = 64 * 1024 * 1024
#: The tag every record imported with unsigned provenance (``accept_unsigned``) carries: shown by
#: ``list`` and ``show`` and exported with the record (JSON, bags, PROV).
UNSIGNED_PROVENANCE_TAG = "provenance:unsigned"
#: A partial bag's copy of the custody event that names the exporting catalog's log key.
KEY_EVENT = "data/log/key-event.json"
#: In a bag of some records: the log's ``key.changed`` events, one per line, each proven.
KEY_CHANGES = "data/log/key-changes.jsonl"
_SCHEMA_ID = re.compile(r"^" + re.escape(SCHEMA_BASE) + r"(?P<name>[a-z-]+):(?P<version>\d+\.\d+\.\d+)$")


@attrs.frozen
class IncomingRecord:
    """A record ready to import, with the custody events that came with it."""

    record: model.EvidenceRecord
    history: tuple[dict[str, Any], ...]
    where: str


class UnsignedProvenanceError(IntegrityError):
    """An export whose custody events are not tied to a checkpoint signed by the key its own log
    names (no signed log evidence, another key, a checkpoint that is no signed note, events the
    checkpoint does not cover); imported only when unsigned provenance is accepted explicitly."""


@attrs.frozen
class Provenance:
    """How an export's custody events are tied to the exporting catalog's signed log."""

    #: The log's name (origin), and its key as the exported log names it (C2SP key id, and the
    #: Ed25519 public key in base64).
    origin: str | None = None
    key_id: str | None = None
    public_key: str | None = None
    #: The signed checkpoint the events were checked against.
    tree_size: int | None = None
    root_hash: str | None = None
    #: Why the events are not tied to a signed log; ``None`` when they are.
    unsigned: str | None = None

    @property
    def signed(self) -> bool:
        """Whether every custody event is covered by a checkpoint signed by the key the log names."""
        return self.unsigned is None

    def log(self) -> dict[str, Any] | None:
        """What the import event says of the signed log checked (``None`` when unsigned)."""
        if not self.signed:
            return None
        return {
            "origin": self.origin,
            "key_id": self.key_id,
            "public_key": self.public_key,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
        }


@attrs.frozen
class PayloadFile:
    """A payload file of a bag, and the digests its manifests give it (by algorithm)."""

    #: Its path in the bag (``data/...``).
    name: str
    path: Path
    expected: Mapping[str, str]


@attrs.frozen
class Incoming:
    """An export, checked: what it holds and where the bytes of each artifact are."""

    format: str
    #: What the import event says about the source (path, identifier, Payload-Oxum, digests).
    source: dict[str, Any]
    records: tuple[IncomingRecord, ...]
    #: SHA-256 -> file holding those bytes (in the bag, or in the blob folder given).
    files: dict[str, Path]
    #: Whether every file in *files* was hashed already; otherwise the importer checks each it
    #: stores against the artifact's SHA-256 and size.
    files_checked: bool
    #: How the custody events are tied to the exporting catalog's signed log.
    provenance: Provenance = Provenance(unsigned="not checked")
    #: The bag's files whose digests are still to be checked against its manifests: every
    #: artifact file, checked by the importer as it is read (stored, or only hashed when the
    #: catalog holds its bytes already) -- an import checks every one, whatever it stores.
    unchecked: tuple[PayloadFile, ...] = ()


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
    return checked_event(document, where)[0]


def checked_event(document: Any, where: str) -> tuple[dict[str, Any], bytes]:
    """:func:`event_document`, with the event's leaf in the log's Merkle tree (both from one
    committed form: for a salted event, every value's salted digest is made once)."""
    check_schema(document, SCHEMA_IDS[model.CustodyEvent], where)
    try:
        from_document(document, model.CustodyEvent)
        expected, leaf = hash_and_leaf(document)
    except (EvidenceError, TypeError, ValueError) as exc:
        raise ValidationError(str(exc), where=where) from None
    if expected != document["hash"]:
        raise IntegrityError(
            f"custody event {document.get('seq')} was altered: its content hashes to {expected}, "
            f"it says {document['hash']}",
            where=where,
        )
    assert isinstance(document, dict)
    return document, leaf


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


def _checked_events(documents: Iterable[tuple[Any, str]]) -> tuple[list[dict[str, Any]], list[bytes]]:
    """Custody event documents (each with where it is), each checked (:func:`checked_event`),
    and their leaves."""
    events, leaves = [], []
    for document, where in documents:
        event, leaf = checked_event(document, where)
        events.append(event)
        leaves.append(leaf)
    return events, leaves


def _histories(events: list[dict[str, Any]], complete: bool, where: str) -> dict[str, list[dict[str, Any]]]:
    """Each record's events; for a *complete* log, refused unless its sequence and links hold
    (every event's own hash was checked by :func:`checked_event`)."""
    if complete:
        findings = link_findings(events)
        if findings:
            raise IntegrityError(f"the custody log is broken: {findings[0]}", where=where)
    grouped: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        grouped.setdefault(event["subject"], []).append(event)
    return grouped


def read_source(
    path: Path,
    *,
    blobs: Path | None = None,
    progress: ByteProgress | None = None,
    accept_unsigned: bool = False,
) -> Incoming:
    """Read and check an export: a bag folder, a JSON export or a JSON Lines export.

    Every record must be what the export's custody events rebuild, and the events must be
    covered by a checkpoint signed by the key the exported log names; otherwise
    :class:`UnsignedProvenanceError`, unless *accept_unsigned* (then
    :attr:`Incoming.provenance` says why it is unsigned)."""
    if path.is_symlink():
        raise InputError("is a symbolic link; give the bag folder or export file itself", where=str(path))
    if path.is_dir():
        if blobs is not None:
            raise InputError("a bag carries its own files; blobs is for JSON and JSON Lines", where="blobs")
        incoming = read_bag(path, progress=progress)
    elif not path.is_file():
        raise InputError("no such file or bag folder", where=str(path))
    else:
        data = _read_limited(path, str(path))
        if not data.strip():
            raise InputError("is empty", where=str(path))
        document = _one_json_export(data, str(path))
        # JSON Lines (None) holds one document a line; a JSON export is one document.
        incoming = _read_jsonl(path, data, blobs) if document is None else _read_json(path, data, document, blobs)
    unsigned = incoming.provenance.unsigned
    if unsigned is not None and not accept_unsigned:
        raise UnsignedProvenanceError(
            f"its custody events are not tied to a signed log: {unsigned}; nothing was imported"
            " (to import it anyway, marked as of unsigned provenance, accept unsigned provenance"
            " explicitly: accept_unsigned=True)",
            where=str(path),
        )
    return incoming


def _one_json_export(data: bytes, where: str) -> Any:
    """The document of a JSON export, or ``None`` for JSON Lines -- told apart by content: a
    JSON export is one JSON object with an export ``schema``, on any number of lines (a
    compacted one is a single line); JSON Lines is one document per line."""
    try:
        document = parse_json(data, where)
    except ValidationError:
        if _first_line_is_a_document(data):
            return None  # more than one document: JSON Lines
        raise
    schema = document.get("schema") if isinstance(document, dict) else None
    if isinstance(schema, str) and schema.startswith(SCHEMA_BASE + "export:"):
        return document
    if len([line for line in data.split(b"\n") if line.strip()]) == 1:
        return None  # one line holding one document that is no export: JSON Lines of one line
    return document  # check_schema names what it is not


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
    """Check a bag and read the records in it: everything :func:`check_bag` checks, each
    document checked against the manifests before it is read, but the artifact files, whose
    digests are left to be checked as they are stored (:attr:`Incoming.unchecked`): each is
    read once."""
    checked = check_bag_layout(root)
    if CONTENTS not in checked.files:
        raise BagError(f"has no {CONTENTS}: it is not an evidence export", where=str(root))
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
    # Every document is checked against the manifests before it is read (a record's document is
    # read once: the bytes hashed are the bytes parsed); the artifact files are left for later.
    for name in (CONTENTS, CUSTODY, *(n for n in checked.files if n.startswith(LOG_PREFIX))):
        check_payload_file(name, checked.files[name], checked.expected(name), progress=progress)
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
    events, leaves = _checked_events((doc, f"{CUSTODY} line {n}") for n, doc in _lines(checked.files[CUSTODY], CUSTODY))
    complete = contents.get("complete_log") is True
    histories = _histories(events, complete, CUSTODY)
    provenance = _bag_provenance(checked.files, contents, events, leaves)
    records = []
    files: dict[str, Path] = {}
    unchecked: list[PayloadFile] = []
    for record_id, name in sorted(record_files.items()):
        record = record_from(parse_json(_read_checked(checked, name, progress), name), name)
        if record.id != record_id:
            raise ValidationError(f"holds record {record.id}, not {record_id}", where=name)
        have = {checked.manifests["sha256"][f]: f for f in artifact_files.pop(record_id, [])}
        for entry in record.artifacts:
            sha = entry.artifact.sha256
            file = have.pop(sha, None)
            if file is None:
                raise BagError(f"lists artifact {sha}, which is not among its files", where=name)
            size = checked.files[file].stat().st_size
            if size != entry.artifact.size:
                raise BagError(f"is {size} bytes; the record says {entry.artifact.size}", where=file)
            files[sha] = checked.files[file]
            unchecked.append(PayloadFile(name=file, path=checked.files[file], expected=checked.expected(file)))
        if have:
            raise BagError("is not an artifact of its record", where=sorted(have.values())[0])
        records.append(IncomingRecord(record=record, history=tuple(histories.get(record.id, ())), where=name))
    if artifact_files:
        orphan = sorted(artifact_files)[0]
        raise BagError(f"has artifact files but no record.json for record {orphan}", where=RECORDS_DIR)
    for label, count in (("records", len(records)), ("custody_events", len(events))):
        if contents.get(label) != count:
            raise BagError(f"says {label} {contents.get(label)!r}, the bag holds {count}", where=CONTENTS)
    check_histories(records, events, complete=complete, where=CUSTODY)
    source = {
        "format": "bagit",
        "path": str(root),
        "external_identifier": checked.get("External-Identifier"),
        "payload_oxum": f"{checked.octets}.{len(checked.files)}",
        "bagging_date": checked.get("Bagging-Date"),
        "source_organization": checked.get("Source-Organization"),
        "tagmanifest_sha256": checked.tagmanifest_sha256,
        "log": provenance.log(),
    }
    return Incoming(
        format="bagit",
        source=source,
        records=tuple(records),
        files=files,
        files_checked=False,
        provenance=provenance,
        unchecked=tuple(unchecked),
    )


def _read_checked(bag: BagLayout, name: str, progress: ByteProgress | None) -> bytes:
    """The bytes of the bag's document *name*, once they have the digests the manifests give
    (read once: what is parsed is what was checked)."""
    data = _read_limited(bag.files[name], name)
    expected = bag.expected(name)
    hasher = MultiHasher(expected)
    hasher.update(data)
    compare_digests(name, hasher.digests().as_dict(), expected)
    if progress is not None:
        progress(len(data))
    return data


def _lines(path: Path, where: str) -> Iterator[tuple[int, Any]]:
    """The documents of a JSON Lines file, one line at a time: a line is read at most
    :data:`MAX_LINE_BYTES` far, and a longer one refused before the rest of it is read."""
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


def _read_json(path: Path, data: bytes, document: Any, blobs: Path | None) -> Incoming:
    where = str(path)
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
    events, leaves = _checked_events(
        (
            {"schema": SCHEMA_IDS[model.CustodyEvent], **e} if isinstance(e, dict) else e,
            f"{where} custody_events[{i}]",
        )
        for i, e in enumerate(raw_events)
    )
    complete = document.get("complete_log") is True
    histories = _histories(events, complete, where)
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
    check_histories(records, events, complete=complete, where=where)
    note = document.get("checkpoint")
    if complete:
        provenance = log_provenance(events, note, complete=True, leaves=leaves)
    else:
        provenance = Provenance(
            unsigned="a JSON export of some records carries no inclusion proofs of their events (export a bag)"
        )
    return _file_incoming("json", path, data, records, blobs, provenance)


def _read_jsonl(path: Path, data: bytes, blobs: Path | None) -> Incoming:
    where = str(path)
    docs: list[tuple[str, Any]] = []
    for number, line in enumerate(data.split(b"\n"), 1):
        if line.strip():
            docs.append((f"{where} line {number}", parse_json(line, f"{where} line {number}")))
    if not docs:
        raise InputError("is empty", where=where)
    events: list[dict[str, Any]] = []
    leaves: list[bytes] = []
    raw_records = []
    notes: list[Any] = []
    for place, doc in docs:
        schema = doc.get("schema") if isinstance(doc, dict) else None
        if isinstance(schema, str) and schema.startswith(SCHEMA_BASE + "custody-event:"):
            event, leaf = checked_event(doc, place)
            events.append(event)
            leaves.append(leaf)
        elif isinstance(schema, str) and schema.startswith(SCHEMA_BASE + "checkpoint:"):
            check_schema(doc, CHECKPOINT_SCHEMA, place)  # the log's checkpoint, written last
            notes.append(doc.get("note"))
        else:
            raw_records.append((place, doc))  # record_from names a document that is neither
    if len(notes) > 1:
        raise ValidationError(f"holds {len(notes)} checkpoints; an export holds one", where=where)
    # The whole log starts with event 1 (the catalog's creation); an export of some records
    # holds only the events about them.
    complete = bool(events) and events[0].get("seq") == 1
    histories = _histories(events, complete, where)
    records = [
        IncomingRecord(
            record=(record := record_from(doc, place)), history=tuple(histories.get(record.id, ())), where=place
        )
        for place, doc in raw_records
    ]
    check_histories(records, events, complete=complete, where=where)
    if complete:
        provenance = log_provenance(events, notes[0] if notes else None, complete=True, leaves=leaves)
    else:
        provenance = Provenance(
            unsigned="a JSON Lines export of some records carries no inclusion proofs of their events (export a bag)"
        )
    return _file_incoming("jsonl", path, data, records, blobs, provenance)


def _file_incoming(
    format: str,
    path: Path,
    data: bytes,
    records: list[IncomingRecord],
    blobs: Path | None,
    provenance: Provenance,
) -> Incoming:
    ids = [item.record.id for item in records]
    if len(set(ids)) != len(ids):
        raise ValidationError("holds the same record twice", where=str(path))
    digest = hashlib.sha256(data).hexdigest()
    source = {"format": format, "path": str(path), "sha256": digest, "size": len(data), "log": provenance.log()}
    return Incoming(
        format=format,
        source=source,
        records=tuple(records),
        files=_blob_files(records, blobs),
        files_checked=False,
        provenance=provenance,
    )


LOG_PREFIX = "data/log/"


def _bag_provenance(
    files: Mapping[str, Path], contents: Mapping[str, Any], events: list[dict[str, Any]], leaves: Sequence[bytes]
) -> Provenance:
    """How a bag's custody events are tied to the exporting catalog's signed log: its checkpoint
    (``data/log/checkpoint.note``) checked with the key the exported log names -- in the whole
    log, its key-naming event; in a bag of some records, the copy of that event in
    ``data/log/key-event.json``, proven by its inclusion proof -- and each event covered by the
    root of the whole log or by its inclusion proof.  The bag's own ``log.vkey`` is not trusted."""
    log = contents.get("log")
    if log is None:
        if any(name.startswith(LOG_PREFIX) for name in files):
            raise BagError("has files in data/log/ that contents.json does not describe", where=CONTENTS)
        return Provenance(unsigned="the bag carries no signed log evidence (contents.json says log null)")
    if not isinstance(log, dict):
        raise ValidationError("log must be an object or null", where=CONTENTS)
    if log.get("signed") is False:
        return Provenance(
            unsigned="the bag's checkpoint is unsigned (the exporting catalog's log key is encrypted and its"
            " passphrase was not given: sign a checkpoint there with `checkpoint`, then export again)"
        )
    checkpoint_name = f"{LOG_PREFIX}checkpoint.note"
    if checkpoint_name not in files:
        return Provenance(unsigned=f"the bag has no {checkpoint_name}")
    try:
        note = _text(files, checkpoint_name)
    except ValidationError as exc:
        return Provenance(unsigned=f"its checkpoint {exc.message}")
    if contents.get("complete_log") is True:
        return log_provenance(events, note, complete=True, leaves=leaves)
    proofs_name = f"{LOG_PREFIX}proofs.jsonl"
    proofs: dict[int, Any] | None = None
    if proofs_name in files:
        proofs = {}
        for _, line in _lines(files[proofs_name], proofs_name):
            if isinstance(line, dict) and isinstance(line.get("seq"), int):
                proofs.setdefault(line["seq"], line.get("proof"))
    key_events = []
    if KEY_EVENT in files:
        key_events.append(event_document(parse_json(_read_limited(files[KEY_EVENT], KEY_EVENT), KEY_EVENT), KEY_EVENT))
    if KEY_CHANGES in files:
        key_events += [event_document(line, KEY_CHANGES) for _, line in _lines(files[KEY_CHANGES], KEY_CHANGES)]
    return log_provenance(events, note, complete=False, proofs=proofs, key_events=key_events, leaves=leaves)


def named_key(document: Mapping[str, Any]) -> dict[str, Any] | None:
    """What a custody event says of the log's key when it names one (``catalog.created`` or
    ``key.created`` with a ``vkey``), else ``None``."""
    if document.get("action") not in (Action.CATALOG_CREATED, Action.LOG_KEY_CREATED):
        return None
    details = document.get("details")
    if not isinstance(details, dict):
        return None
    log = details.get("log", details)
    return log if isinstance(log, dict) and isinstance(log.get("vkey"), str) else None


def log_provenance(
    events: list[dict[str, Any]],
    note: Any,
    *,
    complete: bool,
    proofs: Mapping[int, Any] | None = None,
    key_events: list[dict[str, Any]] | None = None,
    leaves: Sequence[bytes] | None = None,
) -> Provenance:
    """Check that *events* (hash-checked already) are covered by the checkpoint *note*, signed
    by the key the exported log names for its size: the key its first key-naming event pins, or
    a successor handed the log by a ``key.changed`` event the key before signed (see
    :func:`~evidence_catalog.checkpoint.key_chain`).  In a *complete* log those events are among
    *events*; in a bag of some records they come as *key_events*, each proven like every event by
    its inclusion proof in *proofs* (``seq`` -> list of hex hashes).  *leaves*, when given, are the
    leaves of *events* (from :func:`checked_event`), else they are made here.

    Returns the :class:`Provenance`: signed, or unsigned with the reason (no checkpoint, no
    key-naming event, a checkpoint that is not a note signed by that key, events it does not
    cover).  A checkpoint that *is* signed by that key but contradicts the events (another root,
    a failing proof, a complete log shorter than it) is forgery: :class:`IntegrityError`."""
    held = {e.get("seq") for e in events}
    extra = [] if complete else [e for e in key_events or [] if e.get("seq") not in held]
    key_documents = sorted(
        (e for e in [*extra, *events] if e.get("action") in (*KEY_DECLARED, KEY_CHANGED)),
        key=lambda e: e["seq"] if isinstance(e.get("seq"), int) else 0,
    )
    epochs, problems = key_chain(key_documents)
    if problems:
        seq, reason = problems[0]
        return Provenance(unsigned=f"custody event {seq} declares a log key that is not accepted: {reason}")
    if not epochs:
        where = "its custody log" if complete else f"the bag ({KEY_EVENT})"
        return Provenance(unsigned=f"{where} holds no event naming the log key (catalog.created or key.created)")
    if not isinstance(note, str) or not note:
        return Provenance(unsigned="it carries no signed checkpoint")
    try:
        epoch = epoch_at(epochs, parse_checkpoint(split_note(note)[0]).size)
    except (CheckpointError, ValueError) as exc:  # ValueError: text UTF-8 cannot encode
        return Provenance(unsigned=f"its checkpoint is not one signed by the log key its own log names: {exc}")
    assert epoch is not None
    name, public = epoch.name, epoch.public
    kid = key_id(name, public).hex()
    if not isinstance(note, str) or not note:
        return Provenance(unsigned="it carries no signed checkpoint")
    try:
        found = verify_checkpoint(note, name, public)
    except (CheckpointError, ValueError) as exc:  # ValueError: text UTF-8 cannot encode
        return Provenance(
            unsigned=f"its checkpoint is not one signed by the log key its own log names ({name}, key id {kid}): {exc}"
        )
    signed = Provenance(
        origin=name,
        key_id=kid,
        public_key=base64.b64encode(public).decode("ascii"),
        tree_size=found.size,
        root_hash=found.root.hex(),
    )
    made = []
    for event in [*extra, *(events if leaves is None else ())]:
        try:
            made.append(event_leaf(event))
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"custody event {event.get('seq')} cannot be hashed: {exc}", where=CUSTODY) from None
    leaves = made if leaves is None else [*made, *leaves]
    if complete:
        if found.size > len(leaves):
            raise IntegrityError(
                f"the signed checkpoint covers {found.size} custody events; the complete log exported holds only"
                f" {len(leaves)}: events were cut off",
                where=CUSTODY,
            )
        if found.size == 0 or merkle.root(merkle.perfect_from_leaves(leaves), found.size) != found.root:
            raise IntegrityError("the custody log is not the one the checkpoint signed", where=CUSTODY)
        if found.size < len(leaves):
            return attrs.evolve(
                signed,
                unsigned=f"custody events {found.size + 1} to {len(leaves)} come after its signed checkpoint",
            )
        return signed
    where = f"{LOG_PREFIX}proofs.jsonl"
    if proofs is None:
        return attrs.evolve(signed, unsigned="the bag has a checkpoint but no inclusion proofs of its custody events")
    for event, leaf in zip([*extra, *events], leaves, strict=True):
        seq = event["seq"]
        proof = proofs.get(seq)
        if proof is None:
            return attrs.evolve(signed, unsigned=f"custody event {seq} has no inclusion proof")
        if seq > found.size:
            return attrs.evolve(signed, unsigned=f"custody event {seq} comes after its signed checkpoint")
        try:
            path = [bytes.fromhex(h) for h in proof]
        except (TypeError, ValueError):
            path = None
        if path is None or not merkle.verify_inclusion(seq - 1, found.size, leaf, path, found.root):
            raise IntegrityError(f"custody event {seq} is not proven to be in the signed log", where=where)
    return signed


def check_histories(records: list[IncomingRecord], events: list[dict[str, Any]], *, complete: bool, where: str) -> None:
    """Refuse any record that is not what the export's custody events rebuild (the replay
    ``verify`` uses), naming the record and the fields that differ; and, for a *complete* log, a
    record the log creates that the export does not hold."""
    structured = []
    for event in events:
        try:
            structured.append(from_document(event, model.CustodyEvent))
        except EvidenceError as exc:
            raise ValidationError(exc.message, where=f"{where}: custody event {event.get('seq')}") from None
    replayed = replay(structured)
    # A report moved with `link` between a record of a selection and one left out of it: the
    # selection's events alone cannot account for it.
    hint = "" if complete else " (if a report was moved with link to or from a record left out, export them together)"
    if replayed.problems:
        seq, reason = replayed.problems[0]
        raise IntegrityError(
            f"custody event {seq} cannot be replayed ({reason}), so the records it concerns cannot be checked"
            f" against their history{hint}; nothing was imported",
            where=where,
        )
    for item in records:
        record = item.record
        expected = replayed.records.get(record.id)
        if expected is None:
            raise IntegrityError(
                f"record {record.id} is not created by any custody event of the export; nothing was imported",
                where=item.where,
            )
        if expected != record:
            differing = differences(to_document(expected), to_document(record))
            moved = hint if any(p.startswith("reports") for p in differing) else ""
            raise IntegrityError(
                f"record {record.id} is not what its custody events say (differs in: "
                f"{_listed(differing)}){moved}; nothing was imported",
                where=item.where,
            )
    if complete:
        held = {item.record.id for item in records}
        missing = sorted(set(replayed.records) - held)
        if missing:
            raise IntegrityError(
                f"the custody log creates record {missing[0]}, which the export does not hold; nothing was imported",
                where=where,
            )


def differences(expected: Any, found: Any, path: str = "") -> list[str]:
    """The paths (``acquisitions[0].source_url``) at which two JSON values differ."""
    if isinstance(expected, dict) and isinstance(found, dict):
        out: list[str] = []
        for key in [*expected, *(k for k in found if k not in expected)]:
            if expected.get(key, _ABSENT) != found.get(key, _ABSENT):
                out += differences(
                    expected.get(key, _ABSENT), found.get(key, _ABSENT), f"{path}.{key}" if path else key
                )
        return out
    if (
        isinstance(expected, list)
        and isinstance(found, list)
        and len(expected) == len(found)
        and any(isinstance(v, (dict, list)) for v in expected)
    ):
        out = []
        for number, (a, b) in enumerate(zip(expected, found, strict=True)):
            if a != b:
                out += differences(a, b, f"{path}[{number}]")
        return out
    return [path or "(the whole value)"]


_ABSENT = object()


def _listed(paths: list[str], most: int = 8) -> str:
    shown = ", ".join(paths[:most])
    return shown + (f" and {len(paths) - most} more" if len(paths) > most else "")


def check_artifact_bytes(
    path: Path,
    artifact: model.Artifact,
    *,
    hashed: bool,
    where: str,
    measured: tuple[model.Digests, int] | None = None,
) -> None:
    """Re-read what *artifact* says of its bytes from the bytes in *path* -- digests (all but
    SHA-256 unless not *hashed* already), size, media type, embedded metadata (EXIF: time, GPS,
    camera, every raw tag) -- and refuse any difference, naming it.  The extractor's version is
    not compared (the same bytes read by another version of it).  *measured*, when given, is
    the digests (every algorithm *artifact* names) and size of the bytes in *path*, made as
    they were read once: they are not read again for them."""
    from evidence_catalog.extract import extract_metadata, sniff_media_type  # puremagic, exifread: loaded here

    algorithms = [a for a in artifact.digests.as_dict() if a != "sha256" or not hashed]
    if measured is not None:
        digests, size = measured
    elif algorithms:
        digests, size = hash_file(str(path), algorithms)
        if hashed:
            digests = attrs.evolve(digests, sha256=artifact.digests.sha256)
    else:
        digests, size = artifact.digests, path.stat().st_size
    media_type = sniff_media_type(path)
    metadata = extract_metadata(path, media_type)
    if metadata is not None and artifact.metadata is not None:
        metadata = attrs.evolve(metadata, extractor=artifact.metadata.extractor)
    found = model.Artifact(digests=digests, size=size, media_type=media_type, metadata=metadata)
    if found != artifact:
        differing = differences(unstructure(artifact), unstructure(found))
        raise IntegrityError(
            f"artifact {artifact.sha256} is not what its bytes say (differs in: {_listed(differing)}); "
            "nothing was imported",
            where=where,
        )


def _text(files: Mapping[str, Path], name: str) -> str:
    if name not in files:
        raise BagError("is missing (contents.json says the bag has a signed checkpoint)", where=name)
    try:
        return _read_limited(files[name], name).decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("is not UTF-8", where=name) from None
