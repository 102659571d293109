"""Typed results of verification, each readable as a sentence and usable by a script.

Modelled on bagit-python's validation errors: every finding says what, where, expected and found.
"""

from __future__ import annotations

from typing import Any

import attrs
from attrs import frozen


@frozen
class Finding:
    """Something verification found wrong.  ``str()`` reads as a sentence."""

    @classmethod
    def kind_name(cls) -> str:
        """A stable name for this kind of finding, e.g. ``digest_mismatch``."""
        return "".join("_" + c.lower() if c.isupper() else c for c in cls.__name__).lstrip("_")

    @property
    def kind(self) -> str:
        """The finding's :meth:`kind_name`."""
        return self.kind_name()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: the kind, the message and every field."""
        return {"kind": self.kind, "message": str(self), **attrs.asdict(self)}


@frozen
class BlobMissing(Finding):
    """An artifact the catalog records has no stored bytes."""

    sha256: str

    def __str__(self) -> str:
        return f"artifact {self.sha256}: stored bytes are missing"


@frozen
class DigestMismatch(Finding):
    """Stored bytes no longer have the digest recorded at acquisition."""

    sha256: str
    algorithm: str
    expected: str
    found: str

    def __str__(self) -> str:
        return (
            f"artifact {self.sha256}: {self.algorithm} digest mismatch (expected {self.expected}, found {self.found})"
        )


@frozen
class SizeMismatch(Finding):
    """Stored bytes have a different length from the one recorded."""

    sha256: str
    expected: int
    found: int

    def __str__(self) -> str:
        return f"artifact {self.sha256}: size is {self.found} bytes, recorded {self.expected}"


@frozen
class BlobUnreadable(Finding):
    """Stored bytes exist but cannot be read."""

    sha256: str
    reason: str

    def __str__(self) -> str:
        return f"artifact {self.sha256}: stored bytes cannot be read ({self.reason})"


@frozen
class EventEdited(Finding):
    """A custody event's content no longer matches its own hash."""

    seq: int
    expected: str
    found: str

    def __str__(self) -> str:
        return (
            f"custody event {self.seq}: content was changed "
            f"(stored hash {self.expected}, content hashes to {self.found})"
        )


@frozen
class BrokenLink(Finding):
    """A custody event does not point at the hash of the event before it."""

    seq: int
    expected: str
    found: str

    def __str__(self) -> str:
        return (
            f"custody event {self.seq}: link to the previous event is broken "
            f"(expected {self.expected}, found {self.found})"
        )


@frozen
class EventMissing(Finding):
    """Sequence numbers jump: events were deleted (or the log starts late)."""

    seq: int
    found: int

    def __str__(self) -> str:
        return f"custody event {self.seq} is missing (the next event found is {self.found})"


@frozen
class UnloggedChange(Finding):
    """Catalog content has no custody event that accounts for it."""

    subject: str
    what: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.what} has no matching custody event"


@frozen
class EventOutOfOrder(Finding):
    """An event's sequence number repeats or goes backwards."""

    seq: int
    expected: int

    def __str__(self) -> str:
        return f"custody event {self.seq} is out of order (expected sequence {self.expected})"


@frozen
class EventUnreplayable(Finding):
    """A custody event's details cannot be applied when the log is replayed."""

    seq: int
    reason: str

    def __str__(self) -> str:
        return f"custody event {self.seq} cannot be replayed ({self.reason})"


@frozen
class RecordMismatch(Finding):
    """What the catalog database says of a record differs from what its custody log says."""

    record_id: str
    fields: tuple[str, ...]

    def __str__(self) -> str:
        return f"record {self.record_id} differs from what the custody log records in: {', '.join(self.fields)}"


@frozen
class RecordMissing(Finding):
    """The custody log created a record that the catalog database no longer has."""

    record_id: str

    def __str__(self) -> str:
        return f"record {self.record_id} is in the custody log but missing from the catalog"


@frozen
class EntryUnreadable(Finding):
    """A row of the catalog database no longer holds a valid value (edited or damaged)."""

    subject: str
    reason: str

    def __str__(self) -> str:
        return f"{self.subject} cannot be read from the catalog database ({self.reason})"


@frozen
class MerkleLeafMismatch(Finding):
    """The stored Merkle tree does not match a custody event: the event or the tree was changed
    after the event was appended."""

    seq: int

    def __str__(self) -> str:
        return f"custody event {self.seq}: its leaf in the stored Merkle tree does not match the event"


@frozen
class LogRolledBack(Finding):
    """A checkpoint covers more events than the log has: events were removed from its end."""

    source: str
    checkpoint_size: int
    log_size: int

    def __str__(self) -> str:
        return (
            f"{self.source}: signed for {self.checkpoint_size} events, but the log has {self.log_size}; "
            f"events after event {self.log_size} are gone (the log was rolled back)"
        )


@frozen
class CheckpointMismatch(Finding):
    """The log's first events no longer have the root a checkpoint signed."""

    source: str
    checkpoint_size: int
    first_seq: int | None

    def __str__(self) -> str:
        where = (
            f"from custody event {self.first_seq} on"
            if self.first_seq is not None
            else f"among events 1 to {self.checkpoint_size}"
        )
        return (
            f"{self.source}: the log's first {self.checkpoint_size} events no longer have the root it signed; "
            f"the log was changed {where} (edited, removed or reordered events)"
        )


@frozen
class CheckpointInvalid(Finding):
    """A checkpoint that is malformed, not signed by the catalog's log key, or forged."""

    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


@frozen
class TimestampMismatch(Finding):
    """A kept RFC 3161 token that does not stamp what it is kept for (or cannot be read)."""

    subject: str
    reason: str

    def __str__(self) -> str:
        return f"time-stamp of {self.subject}: {self.reason}"


@frozen
class MerkleNodeMismatch(Finding):
    """A stored interior node of the Merkle tree does not match the events under it (the events
    are right): the derived tree was changed, and proofs made from it would not verify."""

    level: int
    index: int

    def __str__(self) -> str:
        return f"the stored Merkle tree's node at level {self.level}, index {self.index} does not match the events"


@frozen
class EventsUnsigned(Finding):
    """Events at the end of the log that no checkpoint signed by the log's key covers: anyone who
    can write the database could have written or rewritten them."""

    first_seq: int
    count: int

    def __str__(self) -> str:
        return (
            f"custody events from {self.first_seq} on ({self.count}) are not covered by any checkpoint signed by "
            "the log key: anyone who can write the catalog could have written them"
        )


@frozen
class CheckpointUnsigned(Finding):
    """Unsigned checkpoints kept while the log key was not encrypted: the catalog signs every
    checkpoint it writes with such a key, so these were written without it."""

    count: int
    first_size: int

    def __str__(self) -> str:
        return (
            f"{self.count} checkpoint(s) kept in the catalog are unsigned (the first over {self.first_size} "
            "events), though the log key in force was not encrypted: they were not written by the catalog"
        )


@frozen
class KeyChangeInvalid(Finding):
    """An event that declares a new log key without the signature of the key in force."""

    seq: int
    reason: str

    def __str__(self) -> str:
        return f"custody event {self.seq} declares a log key that is not accepted: {self.reason}"


@frozen
class KeyFileMismatch(Finding):
    """A file in the catalog's ``keys/`` folder that is damaged or is not the key the custody
    log names (pinned by its first event, or handed over by a signed key change)."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@frozen
class AnalysisUnreadable(Finding):
    """An analysis document a record holds that cannot be read as one, or that does not agree
    with the record (another source, derived artifacts the record lacks)."""

    record_id: str
    document: str
    reason: str

    def __str__(self) -> str:
        return f"record {self.record_id}: analysis {self.document} {self.reason}"


@frozen
class AnalysisMismatch(Finding):
    """An analysis made again, by the same tools with the same parameters, from the same bytes,
    derives something else than the stored document says."""

    record_id: str
    document: str
    source: str
    what: str

    def __str__(self) -> str:
        return (
            f"record {self.record_id}: the analysis of {self.source} made again differs from the stored one"
            f" ({self.document}) in its {self.what}"
        )


@frozen
class HashIndexMismatch(Finding):
    """The similarity index does not hold exactly the hashes the analysis documents hold (rows
    added, removed or changed outside the library: matches hidden or made up)."""

    record_id: str
    document: str
    reason: str

    def __str__(self) -> str:
        return f"record {self.record_id}: the similarity index disagrees with analysis {self.document}: {self.reason}"


# Notices: what verification reports about the evidence, not damage to the catalog.  They do not
# make a verification fail.


@frozen
class CredentialsFailed(Finding):
    """Content Credentials of an artifact that failed validation or could not be read: a fact
    about the evidence (a platform's re-save breaks them too), for a person to judge."""

    record_id: str
    sha256: str
    state: str
    failure_codes: tuple[str, ...]

    def __str__(self) -> str:
        codes = f" ({', '.join(self.failure_codes)})" if self.failure_codes else ""
        return (
            f"record {self.record_id}: artifact {self.sha256} carries Content Credentials that are {self.state}{codes}"
        )


@frozen
class AnalysisNotRechecked(Finding):
    """An analysis that could not be made again here as it was made (other tool versions), or
    whose Content Credentials read differently now (a certificate checked against today's date)."""

    record_id: str
    document: str
    reason: str

    def __str__(self) -> str:
        return f"record {self.record_id}: analysis {self.document} not checked again: {self.reason}"
