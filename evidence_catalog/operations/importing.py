"""Import: records another catalog exported -- a bag, a JSON export or JSON Lines -- checked
before anything is accepted.

Reading and checking the export is :mod:`evidence_catalog.interchange.importing`'s; this module
compares the records with what the catalog holds, has the artifacts' bytes checked and stored
(:mod:`evidence_catalog.operations.importing_files`), and writes the records with their
``record.imported`` events in one transaction (all or nothing).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from evidence_catalog import model
from evidence_catalog.analysis import MediaAnalysis
from evidence_catalog.custody import Action
from evidence_catalog.errors import EvidenceError, InputError
from evidence_catalog.hashing import ProgressCallback
from evidence_catalog.interchange.importing import (
    UNSIGNED_PROVENANCE_TAG,
    Incoming,
    IncomingRecord,
    read_source,
)
from evidence_catalog.operations import analyzing, common, log_key
from evidence_catalog.operations.context import Context
from evidence_catalog.operations.importing_files import EarlyFiles, store_incoming_files
from evidence_catalog.operations.importing_offload import ImportSeals, event_hasher, import_drafts, source_size
from evidence_catalog.operations.ingesting_offload import OFFLOAD_ITEMS, Presealing
from evidence_catalog.paths import display_path
from evidence_catalog.results import ImportResult
from evidence_catalog.store.blobstore import StoredBlob
from evidence_catalog.store.database import (
    acquisition_row,
    artifact_row,
    index_rows,
    part_row,
    record_artifact_row,
    record_row,
)


def import_records(
    ctx: Context,
    source: str | os.PathLike[str],
    *,
    blobs: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    accept_unsigned: bool = False,
) -> ImportResult:
    """Import an export of this library: a BagIt bag, a JSON export or a JSON Lines export.

    Everything is checked before anything is accepted (see
    :mod:`evidence_catalog.interchange.importing`): a bag's paths, completeness,
    Payload-Oxum and every digest; every document's schema and that each record reads back
    unchanged; the custody events' hashes; that every record is what its custody events
    rebuild (the replay ``verify`` uses) and that every artifact's description (digests,
    size, media type, embedded metadata such as EXIF time and GPS) is what its bytes say;
    and that the custody events are covered by a checkpoint signed by the key the exported
    log itself names (its ``catalog.created`` or ``key.created`` event).  An export without
    such signed provenance is refused (:class:`~evidence_catalog.interchange.import_provenance.
    UnsignedProvenanceError`) unless *accept_unsigned*: then its records are imported tagged
    ``provenance:unsigned`` (shown and exported with them) and the import event says why.

    Records keep their ids; each added record is one ``record.imported`` event naming the
    source (a bag's External-Identifier and Payload-Oxum, the log key checked) and holding
    the custody events that came with it.  A record that is here already, unchanged, is not
    added again (importing the same bag twice adds nothing); one that is here with different
    content is refused.  A JSON or JSON Lines export carries no files: each artifact must be
    in this catalog already or in *blobs* (another catalog's folder or its ``blobs`` folder),
    where it is checked.  All or nothing.
    """
    path = Path(os.path.abspath(os.fspath(source)))
    blob_dir = None if blobs is None else Path(os.path.abspath(os.fspath(blobs)))
    common.check_writable(ctx, "; nothing can be imported into it")
    log_key.check_signing_key(ctx)  # before anything is stored
    progress = _locked(progress)  # files are read on threads while the documents are
    presealing = Presealing()
    try:
        # An import keeps every record and event it reads to the end (all or nothing): each
        # collection of the oldest generation would walk them all again (a quarter of an
        # import of 10,000 small records).
        with common.collections_paused():
            return _import_read(ctx, path, blob_dir, progress, accept_unsigned, presealing)
    finally:
        presealing.close()


def _import_read(
    ctx: Context,
    path: Path,
    blob_dir: Path | None,
    progress: ProgressCallback | None,
    accept_unsigned: bool,
    presealing: Presealing,
) -> ImportResult:
    """:func:`import_records`, its events presealed by a worker where that pays (*presealing*,
    begun here before the source is read, while this process holds little; closed by the
    caller)."""
    presealing.begin(source_size(path))
    early = EarlyFiles(ctx, progress, presealing)
    moved: list[StoredBlob] = []  # blobs stored over a damaged copy (logged with the records)
    try:
        incoming = read_source(
            path,
            blobs=blob_dir,
            progress=progress,
            accept_unsigned=accept_unsigned,
            early=early.start,
            hasher=event_hasher(presealing),
        )
        where = display_path(path)
        provenance = incoming.provenance
        described = incoming.source | {"path": where}
        if not provenance.signed:  # accepted: the event says so, and why
            described["unsigned_provenance"] = {"accepted": True, "reason": provenance.unsigned}
        refusal: EvidenceError | None = None
        with ctx.db.read() as session:
            try:
                new = records_to_import(ctx, session, incoming, where)
            except EvidenceError as exc:  # refused after the bag's files are checked: a damaged bag is named as such
                refusal, new = exc, []
        stored, present, size, created = store_incoming_files(
            ctx, incoming, new, where, progress, early=early, moved=moved
        )
    except BaseException:
        early.abandon()  # what it stored for an import that stops here goes
        raise
    if refusal is not None:
        raise refusal
    if len(new) < OFFLOAD_ITEMS:
        presealing.close()
    at = ctx.clock()
    unsigned = not provenance.signed
    # Made for the records found new now; any incoming record the write finds new is found here.
    records = {item.record.id: item for item in incoming.records}
    seals = ImportSeals(
        presealing,
        [item.record.id for item in new],
        lambda record_id: import_drafts(ctx, records[record_id], described, at, unsigned),
    )
    try:
        analyses = imported_analyses(ctx, new)  # the stored documents, read outside the write lock
        with ctx.write() as session:
            new = records_to_import(ctx, session, incoming, where)  # again: another writer may have added
            insert_imported(ctx, session, new, described, at, unsigned=unsigned, analyses=analyses, seals=seals)
    except BaseException:
        common.remove_unclaimed(ctx, created)  # all or nothing: blobs only this import stored go too
        raise
    added = {item.record.id for item in new}
    return ImportResult(
        source=path,
        format=incoming.format,
        records_added=tuple(item.record.id for item in new),
        records_present=tuple(i.record.id for i in incoming.records if i.record.id not in added),
        artifacts_stored=stored,
        artifacts_present=present,
        bytes_stored=size,
        external_identifier=incoming.source.get("external_identifier"),
        payload_oxum=incoming.source.get("payload_oxum"),
        log_key_id=provenance.key_id if provenance.signed else None,
        log_origin=provenance.origin if provenance.signed else None,
        unsigned=provenance.unsigned,
        quarantined=common.quarantined_by(moved),
    )


def records_to_import(ctx: Context, session: Any, incoming: Incoming, where: str) -> list[IncomingRecord]:
    """The incoming records this catalog does not have; refuse one it has with other content,
    an artifact described differently (here, or by two incoming records), or a part or
    acquisition id that is taken (ids are unique across a catalog).  A few queries for all the
    records, not a few per record."""
    described: dict[str, model.Artifact] = {}
    for item in incoming.records:
        for entry in item.record.artifacts:
            earlier = described.setdefault(entry.artifact.sha256, entry.artifact)
            if earlier != entry.artifact:
                raise InputError(
                    f"describes artifact {entry.artifact.sha256} differently from another record of the "
                    "same export; nothing was imported",
                    where=item.where,
                )
    existing = ctx.db.records_existing(session, [item.record.id for item in incoming.records])
    held = [item.record.id for item in incoming.records if item.record.id in existing]
    here = dict(zip(held, ctx.db.records(session, held), strict=True))
    known = ctx.db.artifacts(
        session,
        [
            e.artifact.sha256
            for item in incoming.records
            if item.record.id not in existing
            for e in item.record.artifacts
        ],
    )
    new = []
    for item in incoming.records:
        record = item.record
        if record.id in existing:
            if _unmarked(here[record.id]) != _unmarked(record):
                raise InputError(
                    f"record {record.id} is in this catalog already with different content; nothing was imported",
                    where=item.where,
                )
            continue
        for entry in record.artifacts:
            catalogued = known.get(entry.artifact.sha256)
            if catalogued is not None and catalogued != entry.artifact:
                raise InputError(
                    f"artifact {entry.artifact.sha256} is in this catalog already with other metadata "
                    "(media type or embedded metadata read differently); nothing was imported",
                    where=item.where,
                )
        new.append(item)
    owners: dict[str, str] = {}
    for item in new:
        record = item.record
        part_ids = [
            *(a.id for a in record.acquisitions),
            *(r.id for r in record.reports),
            *(n.id for n in record.notes),
            *(c.id for c in record.claims),
            *(a.id for a in record.assessments),
        ]
        if len(set(part_ids)) != len(part_ids) or record.id in part_ids:
            raise InputError("uses one id for two parts; nothing was imported", where=item.where)
        for part_id in part_ids:
            if owners.setdefault(part_id, record.id) != record.id:
                raise InputError(
                    f"id {part_id} is used by two records of the export; nothing was imported", where=item.where
                )
    taken = ctx.db.ids_in_use(session, list(owners))
    if taken:
        first = sorted(taken)[0]
        raise InputError(
            f"id {first} (of record {owners[first]}) is used in this catalog already; nothing was imported",
            where=where,
        )
    return new


def imported_analyses(ctx: Context, items: Sequence[IncomingRecord]) -> dict[str, MediaAnalysis]:
    """The analyses of the incoming records, by document SHA-256, read from their stored
    documents: their hashes go into the similarity index with the records.  Refuse a record
    whose analysis document does not read as the analysis of the artifact the record says it
    was derived from, or names derived artifacts the record does not hold (``verify`` would
    report it at once: nothing is accepted that it would)."""
    found: dict[str, MediaAnalysis] = {}
    for item in items:
        record = item.record
        held = {entry.artifact.sha256 for entry in record.artifacts}
        for document in analyzing.document_shas(record):
            entry = record.artifact(document)
            sources = () if entry is None else tuple(entry.derived_from)
            analysis = found.get(document) or analyzing.read_analysis(ctx, document)
            if analysis is None or sources != (analysis.source_sha256,):
                raise InputError(
                    f"artifact {document} is not readable as the analysis of {', '.join(sources) or 'nothing'} "
                    "the record says it is; nothing was imported",
                    where=item.where,
                )
            missing = [sha for sha in analysis.derived_sha256s() if sha not in held]
            if missing:
                raise InputError(
                    f"analysis {document} names derived artifacts the record does not hold: "
                    f"{', '.join(missing)}; nothing was imported",
                    where=item.where,
                )
            from evidence_catalog.operations.verify_media import acquisition_disagreement

            problem = acquisition_disagreement(record, document, analysis)
            if problem is not None:
                raise InputError(f"analysis {document} {problem}; nothing was imported", where=item.where)
            found[document] = analysis
    return found


def _locked(progress: ProgressCallback | None) -> ProgressCallback | None:
    """*progress*, called by one thread at a time."""
    if progress is None:
        return None
    lock = threading.Lock()

    def report(n: int) -> None:
        with lock:
            progress(n)

    return report


#: How many records :func:`insert_imported` turns into events and rows at a time, all in the one
#: write transaction of the import: what it holds in memory at once, whatever the export's size.
INSERT_BATCH = 500


def insert_imported(
    ctx: Context,
    session: Any,
    items: Sequence[IncomingRecord],
    source: dict[str, Any],
    at: dt.datetime,
    *,
    unsigned: bool = False,
    analyses: Mapping[str, MediaAnalysis] | None = None,
    sources: Mapping[str, Mapping[str, Any]] | None = None,
    seals: ImportSeals | None = None,
) -> None:
    """Write imported records, their artifacts and parts in the write transaction *session*,
    each with the ``record.imported`` event that holds its custody history (and, when its
    provenance is *unsigned*, the tag that says so and its ``tags.added`` event), and the
    hashes of their analyses in the similarity index (*analyses*, by document, from
    :func:`imported_analyses`; a document not there is read here): the events appended in
    order and the rows inserted table by table, :data:`INSERT_BATCH` records at a time (one
    transaction still: all or nothing).  *sources*, by record id, adds to what a record's event
    says of its source (the row of a migration's database).  *seals*: the records' events, made
    by :func:`import_drafts` and presealed by a worker where one is at work (every record of
    *items* among those it was made for)."""
    if not items:
        return
    described = {e.artifact.sha256: e.artifact for item in items for e in item.record.artifacts}
    known = ctx.db.artifacts(session, list(described))
    artifact_rows = []
    for sha, artifact in described.items():
        if sha in known:
            continue
        # Under the write lock: bytes a concurrent fsck removed fail the whole transaction.
        if not ctx.blobs.exists(sha):
            raise common.bytes_gone(ctx, sha)
        artifact_rows.append(artifact_row(artifact, at))
    ctx.db.insert_rows(session, {"artifact": artifact_rows})  # before the records that refer to them
    for start in range(0, len(items), INSERT_BATCH):
        batch = items[start : start + INSERT_BATCH]
        _insert_batch(ctx, session, batch, source, at, unsigned=unsigned, sources=sources, seals=seals)
    given = analyses or {}
    unread = [item for item in items if set(analyzing.document_shas(item.record)) - set(given)]
    read = {**given, **imported_analyses(ctx, unread)}
    for item in items:
        for document in analyzing.document_shas(item.record):
            analysis = read[document]
            ctx.db.add_hashes(session, item.record.id, analysis.source_sha256, document, analysis.hashes)


def _insert_batch(
    ctx: Context,
    session: Any,
    items: Sequence[IncomingRecord],
    source: dict[str, Any],
    at: dt.datetime,
    *,
    unsigned: bool,
    sources: Mapping[str, Mapping[str, Any]] | None = None,
    seals: ImportSeals | None = None,
) -> None:
    """:func:`insert_imported` of some of the records (their artifacts' rows written already)."""
    rows: dict[str, list[dict[str, Any]]] = {
        name: [] for name in ("record", "record_tag", "record_artifact", "acquisition", "record_part")
    }
    if seals is None:
        drafts = [
            draft
            for item in items
            for draft in import_drafts(ctx, item, {**source, **(sources or {}).get(item.record.id, {})}, at, unsigned)
        ]
        presealed = None
    else:
        drafts, presealed = seals.events([item.record.id for item in items])
    events = ctx.db.append_events(session, drafts, presealed)
    seqs = {e.subject: e.seq for e in events if e.action == Action.RECORD_IMPORTED}
    tagged = {e.subject for e in events if e.action == Action.TAGS_ADDED}  # (import_drafts decides)
    reports = []
    for item in items:
        record = item.record
        seq = seqs[record.id]
        rows["record"].append(record_row(record))
        tags = list(dict.fromkeys(record.tags))
        if record.id in tagged:
            tags.append(UNSIGNED_PROVENANCE_TAG)
        rows["record_tag"] += [{"record_id": record.id, "tag": tag} for tag in tags]
        attached: list[str] = []
        for entry in record.artifacts:
            if entry.artifact.sha256 not in attached:
                rows["record_artifact"].append(record_artifact_row(record.id, entry, len(attached)))
                attached.append(entry.artifact.sha256)
        for position, acquisition in enumerate(record.acquisitions):
            rows["acquisition"].append(acquisition_row(record.id, acquisition, seq, position))
        for kind, parts in (
            ("report", record.reports),
            ("note", record.notes),
            ("flag", record.flags),
            ("relation", record.relations),
            ("claim", record.claims),
            ("assessment", record.assessments),
        ):
            for position, part in enumerate(parts):
                rows["record_part"].append(part_row(record.id, kind, part, seq, position))
        found = {a.artifact_sha256: a.ended_at for a in record.acquisitions if a.artifact_sha256 is not None}
        reports += [(r.id, r, found.get(r.document_sha256 or "", record.created_at)) for r in record.reports]
    ctx.db.insert_rows(session, rows)
    index_rows(session, reports)


def _unmarked(record: model.EvidenceRecord) -> model.EvidenceRecord:
    """*record* without the tag an import with unsigned provenance adds: the same record
    imported again, signed or not, is the record already here."""
    if UNSIGNED_PROVENANCE_TAG not in record.tags:
        return record
    return attrs.evolve(record, tags=[t for t in record.tags if t != UNSIGNED_PROVENANCE_TAG])
