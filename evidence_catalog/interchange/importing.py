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

The checks it puts together live beside it: the documents, read strictly
(:mod:`~evidence_catalog.interchange.import_documents`); the custody events against the
exporting catalog's signed log (:mod:`~evidence_catalog.interchange.import_provenance`); the
records against what their events rebuild and the artifacts against their bytes
(:mod:`~evidence_catalog.interchange.import_checks`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from evidence_catalog import model
from evidence_catalog.errors import EvidenceError, InputError, IntegrityError, ValidationError
from evidence_catalog.hashing import MultiHasher
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
from evidence_catalog.interchange.import_checks import check_histories
from evidence_catalog.interchange.import_documents import (
    check_schema,
    checked_event,
    event_shape,
    hash_checked,
    lines,
    link_findings,
    parse_json,
    raw_lines,
    read_limited,
    record_from,
)
from evidence_catalog.interchange.import_provenance import (
    LOG_PREFIX,
    Provenance,
    UnsignedProvenanceError,
    bag_provenance,
    log_provenance,
)
from evidence_catalog.serialize import (
    BAG_CONTENTS_SCHEMA,
    CHECKPOINT_SCHEMA,
    SCHEMA_BASE,
    SCHEMA_IDS,
    from_document,
)

#: The tag every record imported with unsigned provenance (``accept_unsigned``) carries: shown by
#: ``list`` and ``show`` and exported with the record (JSON, bags, PROV).
UNSIGNED_PROVENANCE_TAG = "provenance:unsigned"


@attrs.frozen
class IncomingRecord:
    """A record ready to import, with the custody events that came with it."""

    record: model.EvidenceRecord
    history: tuple[dict[str, Any], ...]
    where: str


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
    provenance: Provenance = Provenance(unsigned="not checked")  # noqa: RUF009 -- frozen: one shared default is safe
    #: The bag's files whose digests are still to be checked against its manifests: every
    #: artifact file, checked by the importer as it is read (stored, or only hashed when the
    #: catalog holds its bytes already) -- an import checks every one, whatever it stores.
    unchecked: tuple[PayloadFile, ...] = ()


#: Has custody events hashed elsewhere (an import's worker process) while a bag's records are
#: read: given a chunk of ``custody.jsonl``'s lines, it sends them off and gives back a function
#: that waits for their :func:`~evidence_catalog.interchange.import_documents.hashed_lines`
#: (``None`` when none came back: the importer then hashes them itself).
EventHasher = Callable[[list[bytes]], Callable[[], "list[tuple[str, bytes] | None] | None"]]
#: Lines of ``custody.jsonl`` sent to an :data:`EventHasher` at a time.
HASHED_CHUNK = 256


class _EventsHashedElsewhere:
    """A bag's custody events, each read and its shape checked here, in order, and hashed by an
    :data:`EventHasher` meanwhile; :meth:`leaves` checks each hash, in order."""

    def __init__(self, path: Path, hasher: EventHasher) -> None:
        self.events: list[dict[str, Any]] = []
        self._numbers: list[int] = []
        #: Each chunk sent: the function giving back its hashes, and the index of its first event.
        self._sent: list[tuple[Callable[[], list[tuple[str, bytes] | None] | None], int]] = []
        chunk: list[bytes] = []
        try:
            for number, line in raw_lines(path, CUSTODY):
                where = f"{CUSTODY} line {number}"
                self.events.append(event_shape(parse_json(line, where), where))
                self._numbers.append(number)
                chunk.append(line)
                if len(chunk) == HASHED_CHUNK:
                    self._sent.append((hasher(chunk), len(self.events) - len(chunk)))
                    chunk = []
        except EvidenceError:
            # An event that cannot be read: the first hash that is wrong before it is named
            # first, as reading and hashing each event in turn would have named it.
            self.leaves(upto=len(self.events))
            raise
        if chunk:
            self._sent.append((hasher(chunk), len(self.events) - len(chunk)))

    def leaves(self, upto: int | None = None) -> list[bytes]:
        """Each event's leaf, in order, once its hash is checked (the first wrong one raised);
        events past *upto* and not sent are hashed here."""
        events = self.events if upto is None else self.events[:upto]
        leaves: list[bytes] = []
        for wait, first in self._sent:
            if first >= len(events):
                break
            hashed = wait()
            for index in range(first, min(first + HASHED_CHUNK, len(events))):
                given = hashed[index - first] if hashed is not None and index - first < len(hashed) else None
                leaves.append(hash_checked(events[index], f"{CUSTODY} line {self._numbers[index]}", given))
        for index in range(len(leaves), len(events)):
            leaves.append(hash_checked(events[index], f"{CUSTODY} line {self._numbers[index]}"))
        return leaves


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
    early: Callable[[Sequence[PayloadFile]], None] | None = None,
    hasher: EventHasher | None = None,
) -> Incoming:
    """Read and check an export: a bag folder, a JSON export or a JSON Lines export.

    Every record must be what the export's custody events rebuild, and the events must be
    covered by a checkpoint signed by the key the exported log names; otherwise
    :class:`UnsignedProvenanceError`, unless *accept_unsigned* (then
    :attr:`Incoming.provenance` says why it is unsigned).  For a bag, *early* is given its
    artifact files as soon as its layout, tag files and ``contents.json`` are checked, before
    its records and events are read, and *hasher* its custody events to hash while its records
    are read (see :func:`read_bag`)."""
    if path.is_symlink():
        raise InputError("is a symbolic link; give the bag folder or export file itself", where=str(path))
    if path.is_dir():
        if blobs is not None:
            raise InputError("a bag carries its own files; blobs is for JSON and JSON Lines", where="blobs")
        incoming = read_bag(path, progress=progress, early=early, hasher=hasher)
    elif not path.is_file():
        raise InputError("no such file or bag folder", where=str(path))
    else:
        data = read_limited(path, str(path))
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


def read_bag(
    root: Path,
    *,
    progress: ByteProgress | None = None,
    early: Callable[[Sequence[PayloadFile]], None] | None = None,
    hasher: EventHasher | None = None,
) -> Incoming:
    """Check a bag and read the records in it: everything :func:`check_bag` checks, each
    document checked against the manifests before it is read, but the artifact files, whose
    digests are left to be checked as they are stored (:attr:`Incoming.unchecked`): each is
    read once.

    *early*, when given, is called with every artifact file (in the bag's order) once the
    bag's layout, its tag files, ``contents.json`` and ``custody.jsonl``'s digests are checked
    and before its records and events are read: the importer starts reading the files while
    they are.  Nothing is accepted because of that call: everything here is checked all the
    same, and the importer discards what it did when this raises.

    *hasher*, when given, is sent the lines of ``custody.jsonl`` as they are read (each event's
    shape checked here), to hash while the records are read; each hash is then checked here, in
    order.  A wrong hash is raised before anything wrong with a record, as without it."""
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
    contents = parse_json(read_limited(checked.files[CONTENTS], CONTENTS), CONTENTS)
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
    if early is not None:
        early(
            [PayloadFile(name=n, path=checked.files[n], expected=checked.expected(n)) for n in _names(artifact_files)]
        )
    complete = contents.get("complete_log") is True
    if hasher is None:
        events, leaves = _checked_events(
            (doc, f"{CUSTODY} line {n}") for n, doc in lines(checked.files[CUSTODY], CUSTODY)
        )
        histories = _histories(events, complete, CUSTODY)
        provenance = bag_provenance(checked.files, contents, events, leaves)
        read, files, unchecked = _bag_records(checked, record_files, artifact_files, progress)
    else:
        # The events are hashed elsewhere while the records are read here; what is wrong with
        # a record is said only once the events' hashes, links and provenance are found right,
        # as when the records are read after them.
        elsewhere = _EventsHashedElsewhere(checked.files[CUSTODY], hasher)
        events = elsewhere.events
        refused: EvidenceError | OSError | None = None
        try:
            read, files, unchecked = _bag_records(checked, record_files, artifact_files, progress)
        except (EvidenceError, OSError) as exc:
            refused = exc
        leaves = elsewhere.leaves()
        histories = _histories(events, complete, CUSTODY)
        provenance = bag_provenance(checked.files, contents, events, leaves)
        if refused is not None:
            raise refused
    records = [
        IncomingRecord(record=record, history=tuple(histories.get(record.id, ())), where=name) for record, name in read
    ]
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


def _bag_records(
    checked: BagLayout,
    record_files: Mapping[str, str],
    artifact_files: dict[str, list[str]],
    progress: ByteProgress | None,
) -> tuple[list[tuple[model.EvidenceRecord, str]], dict[str, Path], list[PayloadFile]]:
    """A bag's records (each with the name of its document), the files of their artifacts, and
    those files still to be checked against the manifests (see :func:`read_bag`)."""
    records: list[tuple[model.EvidenceRecord, str]] = []
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
        records.append((record, name))
    if artifact_files:
        orphan = sorted(artifact_files)[0]
        raise BagError(f"has artifact files but no record.json for record {orphan}", where=RECORDS_DIR)
    return records, files, unchecked


def _names(artifact_files: Mapping[str, list[str]]) -> list[str]:
    """The artifact files' names in the order the importer checks them: record by record (by
    id), each record's in the bag's order."""
    return [name for record_id in sorted(artifact_files) for name in artifact_files[record_id]]


def _read_checked(bag: BagLayout, name: str, progress: ByteProgress | None) -> bytes:
    """The bytes of the bag's document *name*, once they have the digests the manifests give
    (read once: what is parsed is what was checked)."""
    data = read_limited(bag.files[name], name)
    expected = bag.expected(name)
    hasher = MultiHasher(expected)
    hasher.update(data)
    compare_digests(name, hasher.digests().as_dict(), expected)
    if progress is not None:
        progress(len(data))
    return data


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
