"""What one record's custody events and rows are checked against, when one record is shown:
each event as its stored hash and Merkle leaf commit to it, and the record as replaying its
events makes it -- the checks ``verify`` makes of the whole catalog, made of one record.

An exhibit refuses to print a record that fails them; the viewer shows what they found
(:func:`check_record`, read-only: nothing is logged).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from evidence_catalog import model
from evidence_catalog.custody import Action, hash_and_leaf
from evidence_catalog.findings import (
    CheckpointMismatch,
    EventEdited,
    EventUnreplayable,
    Finding,
    MerkleLeafMismatch,
    RecordMismatch,
)
from evidence_catalog.operations.common import check_record_id
from evidence_catalog.operations.context import Context
from evidence_catalog.results import VerificationReport
from evidence_catalog.serialize import to_document


def events_of(ctx: Context, session: Any, record: model.EvidenceRecord) -> list[model.CustodyEvent]:
    """The custody events that concern *record*: those about it, the time-stamps of its files,
    and the exports that named it, in log order."""
    return events_about(ctx, session, record.id, [entry.artifact.sha256 for entry in record.artifacts])


def events_about(ctx: Context, session: Any, record_id: str, sha256s: Sequence[str]) -> list[model.CustodyEvent]:
    """:func:`events_of` the record *record_id* whose files' SHA-256s are *sha256s* (without
    reading the whole record: a record with a thousand notes takes a while to assemble)."""
    found = {event.seq: event for event in ctx.db.events(session, record_id)}
    for sha256 in sha256s:
        for event in ctx.db.events(session, sha256):
            found.setdefault(event.seq, event)
    for event in ctx.db.events_by_action(session, Action.RECORDS_EXPORTED):
        named = event.details.get("record_ids")
        if isinstance(named, list) and record_id in named:
            found.setdefault(event.seq, event)
    return [found[seq] for seq in sorted(found)]


def event_findings(ctx: Context, session: Any, events: list[model.CustodyEvent]) -> list[Finding]:
    """What is wrong with *events*: an event that is not the one its stored hash commits to
    (edited in the database), whose stored Merkle leaf does not match it, or that the latest
    checkpoint signed by the log key does not include as it is (an event rewritten with its
    hash and leaf: anyone who can write the database can do that, not sign)."""
    from evidence_catalog import merkle
    from evidence_catalog.errors import IntegrityError
    from evidence_catalog.operations.log_key import log_key_chain, signed_prefix

    subtrees = ctx.db.subtrees(session)
    source = "the latest signed checkpoint"
    found: list[Finding] = []
    try:
        covered, latest = signed_prefix(ctx, session, log_key_chain(ctx, session)[0])
        signed_root = merkle.root(subtrees, covered) if latest is not None else b""
    except IntegrityError:
        covered, signed_root = 0, b""
        found.append(CheckpointMismatch(source=source, checkpoint_size=ctx.db.tree_size(session), first_seq=None))
    for event in events:
        try:
            recomputed, leaf = hash_and_leaf(to_document(event))
            stored = subtrees(0, event.seq - 1)
            included = event.seq > covered or merkle.verify_inclusion(
                event.seq - 1, covered, leaf, merkle.inclusion_proof(subtrees, event.seq - 1, covered), signed_root
            )
        except (TypeError, ValueError) as exc:  # MerkleError is a ValueError
            found.append(EventUnreplayable(seq=event.seq, reason=str(exc)))
            continue
        if recomputed != event.hash:
            found.append(EventEdited(seq=event.seq, expected=event.hash, found=recomputed))
        elif leaf != stored:
            found.append(MerkleLeafMismatch(seq=event.seq))
        elif not included:
            found.append(CheckpointMismatch(source=source, checkpoint_size=covered, first_seq=event.seq))
    return found


def record_findings(ctx: Context, session: Any, record: model.EvidenceRecord) -> list[Finding]:
    """A :class:`RecordMismatch` when *record* is not what replaying its custody events makes of
    it (its rows changed in the database), as ``verify`` compares every record.  The records a
    report moved between to or from it are replayed with it (a report leaves one record for
    another in one event)."""
    from evidence_catalog.replay import replay

    linked: dict[str, set[str]] = {}
    for event in ctx.db.events_by_action(session, Action.REPORT_LINKED):
        source = event.details.get("from_record")
        if isinstance(source, str):
            linked.setdefault(source, set()).add(event.subject)
            linked.setdefault(event.subject, set()).add(source)
    subjects, pending = {record.id}, [record.id]
    while pending:
        for other in linked.get(pending.pop(), ()):
            if other not in subjects:
                subjects.add(other)
                pending.append(other)
    found = {event.seq: event for subject in subjects for event in ctx.db.events(session, subject)}
    replayed = replay(found[seq] for seq in sorted(found)).records.get(record.id)
    if replayed == record:
        return []
    fields = [f.name for f in attrs.fields(model.EvidenceRecord)]
    differing = tuple(name for name in fields if getattr(replayed, name, None) != getattr(record, name))
    return [RecordMismatch(record_id=record.id, fields=differing)]


def check_record(ctx: Context, record_id: str) -> VerificationReport:
    """Check one record now, changing nothing (not even the log: the check is not logged).

    Every stored artifact of the record is re-hashed with every algorithm it records and its
    size compared; every custody event about it is checked against its stored hash and Merkle
    leaf; the record is compared with what replaying its events makes of it.  What this does
    not check, ``verify`` of the whole catalog does: the log's links, checkpoints and key, and
    every other record.  The report's ``logged`` is false.
    """
    check_record_id(record_id)
    with ctx.db.read() as session:
        record = ctx.db.record(session, record_id)
        events = events_of(ctx, session, record)
        findings = event_findings(ctx, session, events)
        findings += record_findings(ctx, session, record)
    checked = 0
    for entry in record.artifacts:
        artifact = entry.artifact
        findings += ctx.blobs.verify(artifact.sha256, artifact.digests, artifact.size)
        checked += artifact.size
    return VerificationReport(
        findings=tuple(findings),
        records_checked=1,
        artifacts_checked=len(record.artifacts),
        bytes_checked=checked,
        events_checked=len(events),
        unlogged_reason="one record's check is never logged",
    )
