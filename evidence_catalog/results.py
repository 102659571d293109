"""What the catalog's operations return: one frozen type per operation, all in one place.

Every type here is exported from :mod:`evidence_catalog` (and, for old scripts, still importable
from :mod:`evidence_catalog.catalog`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from attrs import frozen

from evidence_catalog import model
from evidence_catalog.findings import Finding
from evidence_catalog.serialize import VERIFICATION_REPORT_SCHEMA
from evidence_catalog.store.blobstore import StoreEntry


@frozen
class AddResult:
    """What adding one file did."""

    #: The file added: its absolute path, exactly (a name with a line break or bytes that are
    #: not UTF-8 included; :func:`display_path` makes it one printable line).
    path: Path
    record_id: str
    sha256: str
    size: int
    acquisition_id: str
    #: False when the bytes were already on a record, which gained a new acquisition instead.
    new_record: bool
    #: False when the record already held these bytes (only a new acquisition was recorded).
    new_on_record: bool
    #: False when identical bytes were already stored.
    new_bytes: bool
    #: Where a damaged stored copy of these bytes was moved when this add replaced it.
    quarantined: str | None = None
    #: The media type the stored bytes were found to be.
    media_type: str | None = None


@frozen
class AnalysisResult:
    """What analysing one image or video of a record found (see ``Catalog.analyze``)."""

    record_id: str
    #: The analysed artifact.
    sha256: str
    #: The analysis document written now, ``None`` when an earlier analysis by the same tools
    #: was found and nothing was run.
    document_sha256: str | None
    #: False when nothing was written: the record already held this analysis.
    new: bool
    hashes: int = 0
    #: Hashes good enough to match on (PDQ quality 50 or more).
    usable_hashes: int = 0
    keyframes: int = 0
    #: The C2PA outcome (``none``, ``valid``, ``trusted``, ``invalid``, ``unreadable``), or
    #: ``None`` when the media type carries no Content Credentials.
    credentials: str | None = None
    #: What could not be derived, and why.
    errors: tuple[str, ...] = ()
    #: Other records that hold something that looks the same (perceptual hashes within PDQ's
    #: customary distance), best first: said by ``add`` and ``capture`` when they analyse what
    #: they stored; a finding for a person to judge (``relate`` records the judgement).
    looks_like: tuple[str, ...] = ()
    #: (SHA-256, where under ``blobs/`` it was moved) of each stored copy this analysis found
    #: damaged and replaced with what it wrote (the damaged copy is kept); normally none.
    quarantined: tuple[tuple[str, str], ...] = ()


@frozen
class CaptureResult:
    """What capturing one URL did."""

    url: str
    #: False when the capture failed; ``error`` says why, and the attempt is in the custody log.
    ok: bool
    acquisition_id: str
    record_id: str | None = None
    #: SHA-256 and size of the main media file (the merged file when streams were merged).
    sha256: str | None = None
    size: int | None = None
    #: How many artifacts the capture holds (media, info.json, thumbnails, subtitles, page ...).
    artifacts: int = 0
    new_record: bool = False
    #: False when identical main media bytes were already stored.
    new_bytes: bool = False
    #: False when the record already held these main media bytes (only an acquisition was added).
    new_on_record: bool = False
    #: The earlier main file this capture is a new version of (the platform served new bytes).
    version_of: str | None = None
    error: str | None = None
    warnings: tuple[str, ...] = ()
    #: True when the URL was not fetched because it had been captured before (``skip_captured``).
    skipped: bool = False
    #: What a successful capture could not keep (a subtitle or thumbnail that failed), if anything.
    not_kept: str | None = None
    #: (SHA-256, where under ``blobs/`` it was moved) of each stored copy this capture found
    #: damaged and replaced with the bytes it fetched (the damaged copy is kept); normally none.
    quarantined: tuple[tuple[str, str], ...] = ()


@frozen
class IngestResult:
    """What ingesting one input did."""

    #: The input: the file read, as an absolute path (``result.json`` for a Telegram export
    #: folder), or the URL (text) the feed was downloaded from.
    path: Path | str
    format: str
    sha256: str
    #: Items read from the input, and how many of them became new reports (the rest were there).
    items: int
    reports_added: int
    reports_present: int
    records_added: int
    #: False when the input's bytes were already stored (ingested before, or added).
    new_bytes: bool
    #: Files stored by this ingest (the input, media of new reports) that were new to the blob
    #: store, and those whose bytes it held already.
    artifacts_added: int = 0
    artifacts_present: int = 0
    #: (line, message) for each part that did not fit the format (kept, not dropped).
    warnings: tuple[tuple[int, str], ...] = ()
    #: (line or message number, why) for each item left out with ``keep_going``.
    skipped: tuple[tuple[int, str], ...] = ()
    #: (record id, URL) of the media the reports point at (feed enclosures), and, with
    #: ``capture_media``, the result of capturing each (``skipped`` when an earlier run did).
    media: tuple[tuple[str, str], ...] = ()
    captures: tuple[CaptureResult, ...] = ()
    #: (record id, SHA-256, media type) of each media file the ingest stored on a new record (a
    #: Telegram export's photos and files).
    media_stored: tuple[tuple[str, str, str], ...] = ()
    #: (SHA-256, where under ``blobs/`` it was moved) of each stored copy this ingest found
    #: damaged and replaced with the bytes it read (the damaged copy is kept); normally none.
    quarantined: tuple[tuple[str, str], ...] = ()


@frozen
class SearchHit:
    """A report found by :meth:`Catalog.search`, and the record it is on."""

    record_id: str
    report: model.Report


@frozen
class MatchedFrame:
    """One hash of what was looked for that is within the distance of one stored hash: of an
    image (offsets ``None``) or of a frame of a video (its offset, in seconds)."""

    #: Bits that differ (of 256 for PDQ).
    distance: int
    #: The SHA-256 of what the matching hash was taken from: an artifact of the record looked
    #: for, the artifact looked for, or the file looked for.
    target_sha256: str
    #: Where in that video the frame is (``None`` for an image).
    target_offset_s: float | None
    #: Where in the matched video the stored frame is (``None`` for an image).
    offset_s: float | None


@frozen
class SimilarMatch:
    """An image or video near what :meth:`Catalog.similar` looked for: a record holding it (one
    match for each), the artifact, the least distance between their hashes, and which matched."""

    record_id: str
    artifact_sha256: str
    #: The least distance of any matching pair of hashes (bits that differ, of 256).
    distance: int
    #: The matching pairs, best first (by distance, then the target's artifact, then its
    #: offset, then the stored offset); at most ``similar``'s ``frames`` of them.
    frames: tuple[MatchedFrame, ...]
    #: How many pairs matched in all (more than ``len(frames)`` when some were left out).
    frames_matched: int


@frozen
class LinkResult:
    """What :meth:`Catalog.link` did: the report, the record it was on, the record it is on now."""

    report_id: str
    from_record: str
    record_id: str
    #: False when the report was on that record already (nothing was changed or logged).
    moved: bool


@frozen
class VerificationReport:
    """The outcome of :meth:`Catalog.verify`: every finding, and how much was checked."""

    findings: tuple[Finding, ...]
    records_checked: int
    artifacts_checked: int
    bytes_checked: int
    events_checked: int
    #: Whether the verification itself was written to the custody log (not on a read-only copy).
    logged: bool = False
    #: Why the verification was not logged, when it was not (and was to be).
    unlogged_reason: str | None = None
    #: Events at the end of the log that no checkpoint signed by the log's key covers (a finding
    #: unless the verification allowed them: an encrypted key between signings).
    unsigned_events: int = 0
    #: What was found about the evidence rather than the catalog (Content Credentials that
    #: fail validation, an analysis that other tools here cannot make again): reported, and
    #: no reason for ``ok`` to be false.
    notices: tuple[Finding, ...] = ()
    #: Analyses made again from their sources and compared (all of them with ``deep``).
    analyses_rechecked: int = 0
    #: Analysis documents read and held against their records and the similarity index.
    analyses_checked: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, with its schema id (``schema verification-report``)."""
        return {
            "schema": VERIFICATION_REPORT_SCHEMA,
            "ok": self.ok,
            "records_checked": self.records_checked,
            "artifacts_checked": self.artifacts_checked,
            "bytes_checked": self.bytes_checked,
            "events_checked": self.events_checked,
            "unsigned_events": self.unsigned_events,
            "logged": self.logged,
            "findings": [f.as_dict() for f in self.findings],
            "notices": [f.as_dict() for f in self.notices],
            "analyses_checked": self.analyses_checked,
            "analyses_rechecked": self.analyses_rechecked,
        }


@frozen
class ExhibitResult:
    """What :meth:`~evidence_catalog.Catalog.exhibit` wrote: the files (absolute paths, ``None``
    when not asked for) and their SHA-256s, as the export event logged them."""

    record_id: str
    html: Path | None
    pdf: Path | None
    html_sha256: str | None
    pdf_sha256: str | None
    #: The custody events the exhibit lists.
    custody_events: int
    redacted: bool
    #: The sequence number of the ``records.exported`` event that logged the exhibit.
    export_seq: int


@frozen
class ExportResult:
    """What an export wrote.  For a bag, ``sha256`` is that of its ``tagmanifest-sha256.txt``
    (which pins every byte of the bag) and ``size`` its payload's bytes."""

    #: The file (or, for a bag, the folder) written, as an absolute path.
    path: Path
    format: str
    records: int
    custody_events: int
    sha256: str
    size: int
    #: Artifact files written (BagIt) or rows (CSV).
    artifacts: int = 0
    #: The bag's External-Identifier and Payload-Oxum (BagIt only).
    external_identifier: str | None = None
    payload_oxum: str | None = None
    #: What a redacted export withheld (BagIt only).
    redacted: bool = False
    withheld_artifacts: int = 0
    withheld_fields: int = 0


@frozen
class ImportResult:
    """What an import added."""

    #: The export read (a bag's folder, a JSON or JSON Lines file), as an absolute path.
    source: Path
    format: str
    records_added: tuple[str, ...]
    #: Records that were in the catalog already, exactly as they came.
    records_present: tuple[str, ...]
    artifacts_stored: int
    artifacts_present: int
    bytes_stored: int
    #: The bag's External-Identifier and Payload-Oxum (BagIt only).
    external_identifier: str | None = None
    payload_oxum: str | None = None
    #: The C2SP key id (hex) and name of the log key whose signed checkpoint covers the
    #: export's custody events, as the exported log names it; ``None`` when unsigned.
    log_key_id: str | None = None
    log_origin: str | None = None
    #: Why the export's provenance is unsigned, when that was accepted (``accept_unsigned``):
    #: the records added are tagged ``provenance:unsigned``.
    unsigned: str | None = None
    #: (SHA-256, where under ``blobs/`` it was moved) of each stored copy this import found
    #: damaged and replaced with the bytes it read (the damaged copy is kept); normally none.
    quarantined: tuple[tuple[str, str], ...] = ()


@frozen
class CheckpointInfo:
    """A checkpoint of the custody log: its size, root (hex), the signed note and when."""

    size: int
    root: str
    note: str
    signed: bool
    at: dt.datetime


@frozen
class KeyChange:
    """What :meth:`Catalog.change_log_key` did: the key handed over, the new one, and the event."""

    previous_key_id: str
    key_id: str
    vkey: str
    encrypted: bool
    seq: int


@frozen
class LogKeyInfo:
    """The public half of the custody log's key (:meth:`Catalog.log_key_info`): what anyone
    needs to check the log's signed checkpoints."""

    #: The log's name: the origin line of every checkpoint it signs.
    origin: str
    #: The raw 32-byte Ed25519 public key.
    public_key: bytes
    #: Its C2SP key id, in hex.
    key_id: str
    #: Its C2SP verifier key, one line (``<origin>+<key id>+<base64>``, as in ``keys/log.vkey``).
    vkey: str


@frozen
class TimestampResult:
    """What a round of time-stamping did: the checkpoint asked for, the stamps granted and
    refused now, how many requests are still queued, and why the TSA could not be reached."""

    checkpoint: str
    granted: tuple[str, ...]
    failed: tuple[str, ...]
    pending: int
    offline: str | None


@frozen
class InclusionProof:
    """That custody event *seq* is leaf ``seq - 1`` of the log's Merkle tree of *tree_size*
    leaves with this root (RFC 6962 section 2.1.1; hashes in hex)."""

    seq: int
    leaf_index: int
    tree_size: int
    leaf_hash: str
    proof: tuple[str, ...]
    root: str
    #: The signed checkpoint of that size, when there is one.
    checkpoint: str | None


#: What ``fsck`` leaves alone however it looks: anything younger (a writer may be about to
#: commit the records that claim it).
FSCK_GRACE_SECONDS = 3600.0


@frozen
class FsckReport:
    """What ``fsck`` found, and what it removed."""

    orphaned_blobs: tuple[FsckEntry, ...]
    temporary: tuple[FsckEntry, ...]
    quarantined: tuple[FsckEntry, ...]
    removed: tuple[FsckEntry, ...]
    #: The quarantined copies no custody event names: moved aside by a process killed before
    #: its transaction said so, by a version before operations other than ``add`` said so, or
    #: put there by hand (kept, as every quarantined copy).
    unlogged: tuple[FsckEntry, ...] = ()

    @property
    def clean(self) -> bool:
        """Whether nothing is left over (quarantined copies do not count: they are kept)."""
        left = {e.path for e in (*self.orphaned_blobs, *self.temporary)} - {e.path for e in self.removed}
        return not left


FsckEntry = StoreEntry
