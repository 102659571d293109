"""Import: records another catalog exported -- a bag, a JSON export or JSON Lines -- checked
before anything is accepted.

Reading and checking the export is :mod:`evidence_catalog.interchange.importing`'s; this module
compares the records with what the catalog holds, stores the artifacts' bytes, and writes the
records with their ``record.imported`` events in one transaction (all or nothing).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import attrs

from evidence_catalog import model
from evidence_catalog.custody import Action, imported_details
from evidence_catalog.errors import InputError, IntegrityError
from evidence_catalog.hashing import ProgressCallback, hash_file
from evidence_catalog.interchange.importing import (
    UNSIGNED_PROVENANCE_TAG,
    Incoming,
    IncomingRecord,
    check_artifact_bytes,
    read_source,
)
from evidence_catalog.operations import common, log_key
from evidence_catalog.operations.context import Context
from evidence_catalog.paths import display_path
from evidence_catalog.results import ImportResult
from evidence_catalog.store.database import index_rows


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
    such signed provenance is refused (:class:`~evidence_catalog.interchange.importing.
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
    incoming = read_source(path, blobs=blob_dir, progress=progress, accept_unsigned=accept_unsigned)
    where = display_path(path)
    provenance = incoming.provenance
    described = incoming.source | {"path": where}
    if not provenance.signed:  # accepted: the event says so, and why
        described["unsigned_provenance"] = {"accepted": True, "reason": provenance.unsigned}
    with ctx.db.read() as session:
        new = records_to_import(ctx, session, incoming, where)
    stored, present, size, created = store_incoming_files(ctx, incoming, new, where)
    at = ctx.clock()
    try:
        with ctx.write() as session:
            new = records_to_import(ctx, session, incoming, where)  # again: another writer may have added
            for item in new:
                insert_imported(ctx, session, item, described, at, unsigned=not provenance.signed)
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
    )


def records_to_import(ctx: Context, session: Any, incoming: Incoming, where: str) -> list[IncomingRecord]:
    """The incoming records this catalog does not have; refuse one it has with other content,
    an artifact described differently (here, or by two incoming records), or a part or
    acquisition id that is taken (ids are unique across a catalog)."""
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
    new = []
    for item in incoming.records:
        record = item.record
        if ctx.db.record_exists(session, record.id):
            if _unmarked(ctx.db.record(session, record.id)) != _unmarked(record):
                raise InputError(
                    f"record {record.id} is in this catalog already with different content; nothing was imported",
                    where=item.where,
                )
            continue
        for entry in record.artifacts:
            known = ctx.db.artifact(session, entry.artifact.sha256)
            if known is not None and known != entry.artifact:
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


def store_incoming_files(
    ctx: Context, incoming: Incoming, new: list[IncomingRecord], where: str
) -> tuple[int, int, int, list[str]]:
    """Store the bytes of every new record's artifacts, checking each against its SHA-256
    before any is stored; return (stored, already held, bytes stored, SHA-256s of the blobs
    this call created)."""
    needed: dict[str, model.Artifact] = {}
    for item in new:
        for entry in item.record.artifacts:
            needed.setdefault(entry.artifact.sha256, entry.artifact)
    missing = [sha for sha in needed if not ctx.blobs.exists(sha)]
    for sha in missing:
        if sha not in incoming.files:
            raise InputError(
                f"artifact {sha} is neither in this catalog nor in the files given"
                + ("" if incoming.format == "bagit" else " (give the exporting catalog as blobs)")
                + "; nothing was imported",
                where=where,
            )
    if not incoming.files_checked:
        for sha in missing:
            digests, size = hash_file(str(incoming.files[sha]))
            if digests.sha256 != sha or size != needed[sha].size:
                raise IntegrityError(
                    f"holds {size} bytes with SHA-256 {digests.sha256}, not artifact {sha}; nothing was imported",
                    where=display_path(incoming.files[sha]),
                )
    holders = {e.artifact.sha256: item.record.id for item in reversed(new) for e in item.record.artifacts}
    for sha in missing:  # what each record says of the bytes, read again from them
        check_artifact_bytes(
            incoming.files[sha],
            needed[sha],
            hashed=True,
            where=f"record {holders[sha]}: {display_path(incoming.files[sha])}",
        )
    stored = size_total = 0
    created: list[str] = []
    try:
        store_files(ctx, incoming, missing, created)
    except BaseException:
        common.remove_unclaimed(ctx, created)
        raise
    for sha in created:
        stored += 1
        size_total += needed[sha].size
    return stored, len(needed) - len(missing), size_total, created


def store_files(ctx: Context, incoming: Incoming, missing: list[str], created: list[str]) -> None:
    """Store the files of the artifacts *missing* here, adding the SHA-256 of each blob this
    call created to *created* as it goes (the caller removes them if the import fails)."""
    for sha in missing:
        try:
            with open(incoming.files[sha], "rb") as stream:
                blob = ctx.blobs.put_stream(common.SourceFile(stream, display_path(incoming.files[sha])))
        except OSError as exc:
            raise InputError(f"cannot be read ({exc.strerror})", where=display_path(incoming.files[sha])) from exc
        if blob.created:
            created.append(blob.sha256)
        if blob.sha256 != sha:  # changed since it was checked
            raise IntegrityError(
                f"changed while it was imported (now SHA-256 {blob.sha256}); nothing was imported",
                where=display_path(incoming.files[sha]),
            )


def insert_imported(
    ctx: Context, session: Any, item: IncomingRecord, source: dict[str, Any], at: dt.datetime, *, unsigned: bool = False
) -> None:
    """Write one imported record, its artifacts and parts in the write transaction *session*,
    with the ``record.imported`` event that holds its custody history (and, when its provenance
    is *unsigned*, the tag that says so)."""
    record = item.record
    for entry in record.artifacts:
        if ctx.db.artifact(session, entry.artifact.sha256) is None:
            common.add_artifact(ctx, session, entry.artifact, at=at)
    ctx.db.add_record(session, record)
    for entry in record.artifacts:
        ctx.db.attach_artifact(session, record.id, entry)
    event = ctx.db.append_event(
        session,
        at=at,
        actor=ctx.operator,
        action=Action.RECORD_IMPORTED,
        subject=record.id,
        details=imported_details(record, source, item.history),
    )
    for position, acquisition in enumerate(record.acquisitions):
        ctx.db.add_acquisition(session, record.id, acquisition, event.seq, position)
    for kind, parts in (
        ("report", record.reports),
        ("note", record.notes),
        ("flag", record.flags),
        ("relation", record.relations),
        ("claim", record.claims),
        ("assessment", record.assessments),
    ):
        for part in parts:
            ctx.db.add_part(session, record.id, kind, part, event.seq)
    found = {a.artifact_sha256: a.ended_at for a in record.acquisitions if a.artifact_sha256 is not None}
    index_rows(
        session,
        [(r.id, r, found.get(r.document_sha256 or "", record.created_at)) for r in record.reports],
    )
    if unsigned and ctx.db.add_tags(session, record.id, [UNSIGNED_PROVENANCE_TAG]):
        ctx.db.append_event(
            session,
            at=at,
            actor=ctx.operator,
            action=Action.TAGS_ADDED,
            subject=record.id,
            details={"tags": [UNSIGNED_PROVENANCE_TAG]},
        )


def _unmarked(record: model.EvidenceRecord) -> model.EvidenceRecord:
    """*record* without the tag an import with unsigned provenance adds: the same record
    imported again, signed or not, is the record already here."""
    if UNSIGNED_PROVENANCE_TAG not in record.tags:
        return record
    return attrs.evolve(record, tags=[t for t in record.tags if t != UNSIGNED_PROVENANCE_TAG])
