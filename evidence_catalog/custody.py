"""The custody log's pure part: how events are hashed and linked, and how a log is checked.

Each event's ``hash`` is SHA-256 over the RFC 8785 canonical JSON of its document (as exported,
``schema`` member included) without the ``hash`` member.  Each event's ``prev_hash`` is the
``hash`` of the event before it, and :data:`~evidence_catalog.model.GENESIS_HASH` for the first.
Anyone holding an export can recompute both with a JSON canonicaliser and ``sha256sum``.

Storage of the log (one place that appends) lives in the catalog's database adapter.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from evidence_catalog.findings import (
    BrokenLink,
    EventEdited,
    EventMissing,
    EventOutOfOrder,
    Finding,
)
from evidence_catalog.model import GENESIS_HASH, Agent, CustodyEvent
from evidence_catalog.serialize import canonical_json, to_document


class Action:
    """Names of custody actions (``noun.verb`` style; later features add their own)."""

    CATALOG_CREATED = "catalog.created"
    ARTIFACT_ADDED = "artifact.added"
    RECORD_CREATED = "record.created"
    RECORDS_EXPORTED = "records.exported"
    CATALOG_VERIFIED = "catalog.verified"


def content_hash(event: CustodyEvent) -> str:
    """Recompute the hash an event should carry, from its content alone."""
    document = to_document(event)
    del document["hash"]
    return hashlib.sha256(canonical_json(document)).hexdigest()


def make_event(
    previous: CustodyEvent | None,
    *,
    at: dt.datetime,
    actor: Agent,
    action: str,
    subject: str,
    details: Mapping[str, Any] | None = None,
) -> CustodyEvent:
    """Build the event that follows *previous* (``None`` for the first), with its hash set."""
    draft = CustodyEvent(
        seq=1 if previous is None else previous.seq + 1,
        at=at,
        actor=actor,
        action=action,
        subject=subject,
        prev_hash=GENESIS_HASH if previous is None else previous.hash,
        hash=GENESIS_HASH,
        details=dict(details or {}),
    )
    return attrs.evolve(draft, hash=content_hash(draft))


def verify_chain(events: Iterable[CustodyEvent]) -> list[Finding]:
    """Check a log given in sequence order; return every finding (empty when intact).

    Detects an edited event (content does not match its hash), a missing event (sequence gap)
    and a broken link (``prev_hash`` is not the previous event's hash).  A log cut short at the
    end is only detectable against a copy of its latest hash held elsewhere.
    """
    findings: list[Finding] = []
    expected_seq = 1
    previous_hash = GENESIS_HASH
    for event in events:
        recomputed = content_hash(event)
        if recomputed != event.hash:
            findings.append(EventEdited(seq=event.seq, expected=event.hash, found=recomputed))
        if event.seq > expected_seq:
            findings.append(EventMissing(seq=expected_seq, found=event.seq))
        elif event.seq < expected_seq:
            findings.append(EventOutOfOrder(seq=event.seq, expected=expected_seq))
        elif event.prev_hash != previous_hash:
            findings.append(BrokenLink(seq=event.seq, expected=previous_hash, found=event.prev_hash))
        expected_seq = event.seq + 1
        previous_hash = event.hash
    return findings
