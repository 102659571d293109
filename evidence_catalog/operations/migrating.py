"""Migrating from other tools: the catalog side of importing what bellingcat's auto-archiver
archived (reading it is :mod:`evidence_catalog.interchange.auto_archiver`'s).

Each archived URL (a row of auto-archiver's CSV whose status is a success) becomes a record: its
files stored write-once (each hashed while it is read, and checked against the hash auto-archiver
asserted of it), one acquisition (method ``imported``) naming auto-archiver and its version, its
times and the URL, and the row's three cells kept verbatim as a document of their own (role
``platform_metadata``): what auto-archiver asserted, its hashes among it.  The records are written
with their ``record.imported`` events -- each naming the tool, its version, the path given and the
row -- in one transaction, after the files are synced: a kill leaves at most stored bytes no
record claims (``fsck`` lists them).  Record and acquisition ids are made from the row's cells,
so the same rows imported again (from this folder or a copy) are found and add nothing.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import io
import json
import os
import stat
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from evidence_catalog import model
from evidence_catalog.errors import EvidenceError, InputError
from evidence_catalog.hashing import ProgressCallback
from evidence_catalog.interchange import auto_archiver as aa
from evidence_catalog.interchange.importing import IncomingRecord
from evidence_catalog.operations import common, importing, log_key
from evidence_catalog.operations.context import Context
from evidence_catalog.paths import display_path
from evidence_catalog.results import AnalysisResult
from evidence_catalog.store.blobstore import StoredBlob

#: The version recorded when auto-archiver's output names none and none is given.
UNKNOWN_VERSION = "unknown"


class MigrationError(InputError):
    """An auto-archiver import refused: *findings* names every row, field and reason; nothing
    was imported."""

    def __init__(self, message: str, findings: Sequence[aa.Finding], *, where: str | None = None) -> None:
        super().__init__(message, where=where)
        self.findings = tuple(findings)


@attrs.frozen
class MigrationResult:
    """What an import from auto-archiver added, and what it refused (with ``keep_going``)."""

    #: The CSV read, as an absolute path.
    database: Path
    tool: str
    #: auto-archiver's version, as its output says (or as given), else ``unknown``.
    tool_version: str
    records_added: tuple[str, ...]
    #: Records of rows imported before (from this folder or another holding the same rows).
    records_present: tuple[str, ...]
    #: The row numbers refused, and every finding (empty when all was imported).
    rows_refused: tuple[int, ...]
    findings: tuple[aa.Finding, ...]
    artifacts_stored: int
    artifacts_present: int
    bytes_stored: int
    #: (SHA-256, where under ``blobs/`` it was moved) of each stored copy this import found
    #: damaged and replaced with the bytes it read (the damaged copy is kept); normally none.
    quarantined: tuple[tuple[str, str], ...] = ()


def _stable_id(when: dt.datetime, seed: bytes) -> str:
    """A UUID version 7 whose time is *when* and whose other bits come from SHA-256 of *seed*:
    the same row always gets the same id."""
    ms = max(0, min(int(when.timestamp() * 1000), 2**48 - 1))
    digest = hashlib.sha256(seed).digest()
    raw = bytearray(ms.to_bytes(6, "big") + digest[:10])
    raw[6] = 0x70 | (raw[6] & 0x0F)
    raw[8] = 0x80 | (raw[8] & 0x3F)
    return str(uuid.UUID(bytes=bytes(raw)))


def assertion_document(row: aa.Row) -> bytes:
    """The row as auto-archiver wrote it -- its three cells verbatim -- as a JSON document (the
    same row, the same bytes)."""
    status, metadata, media = row.cells
    body = {"tool": aa.TOOL, "database": "csv_db", "status": status, "metadata": metadata, "media": media}
    return (json.dumps(body, ensure_ascii=False, sort_keys=True, indent=1) + "\n").encode("utf-8", "surrogatepass")


class _Hashing:
    """A stream that hashes with *algorithm* what is read from it (besides the store's SHA-256)."""

    def __init__(self, stream: Any, algorithm: str | None) -> None:
        self.stream = stream
        self.hasher = None if algorithm in (None, "sha256") else hashlib.new(algorithm)

    def readinto(self, buffer: memoryview) -> int | None:
        n: int | None = self.stream.readinto(buffer)
        if n and self.hasher is not None:
            self.hasher.update(buffer[:n])
        return n


def _open_regular(path: Path) -> io.FileIO:
    """*path* opened to read, if it is still the regular file :func:`aa.resolve` found: a file
    swapped for a symbolic link or a FIFO since (which would hang a read) is refused."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "no longer a regular file (replaced since it was checked)")
        os.set_blocking(fd, True)
        return io.FileIO(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise


@attrs.define
class _Import:
    ctx: Context
    folder: Path
    where: str
    progress: ProgressCallback | None
    source_version: str | None = None
    created: list[str] = attrs.Factory(list)
    described: dict[str, model.Artifact] = attrs.Factory(dict)
    stored: set[str] = attrs.Factory(set)
    present: set[str] = attrs.Factory(set)
    size: int = 0
    moved: list[StoredBlob] = attrs.Factory(list)

    def put(self, stream: Any, shown: str) -> StoredBlob:
        blob = self.ctx.blobs.put_stream(common.SourceFile(stream, shown), progress=self.progress, defer_sync=True)
        if blob.created:
            self.created.append(blob.sha256)
            self.size += blob.size
        if blob.quarantined is not None:  # it replaced a damaged stored copy: logged with the records
            self.moved.append(blob)
        return blob

    def head(self, sha256: str, size: int) -> bytes:
        """The first *size* bytes of the stored file *sha256* (whatever the blob store: the
        bytes read are the bytes kept)."""
        with self.ctx.blobs.open(sha256) as stream:
            return bytes(stream.read(size))

    def describe(self, blob: StoredBlob) -> model.Artifact:
        if blob.sha256 not in self.described:
            self.described[blob.sha256] = common.describe(self.ctx, blob)
        return self.described[blob.sha256]

    def file(self, row: aa.Row, media: aa.Media, findings: list[aa.Finding]) -> StoredBlob | None:
        """Store the file of *media* and check it against auto-archiver's hash of it."""
        field = f"{media.pointer}._key"
        assert media.key is not None
        try:
            path = aa.resolve(self.folder, media.key)
        except ValueError as exc:
            findings.append(aa.Finding(row.number, field, str(exc)))
            return None
        algorithm, expected = aa.parse_hash(media.asserted) if media.asserted else (None, None)
        shown = display_path(path)
        try:
            with _open_regular(path) as stream:
                reader = _Hashing(stream, algorithm)
                blob = self.put(reader, shown)
        except (OSError, InputError) as exc:
            why = exc.message if isinstance(exc, EvidenceError) else exc.strerror or str(exc)
            findings.append(aa.Finding(row.number, field, f"{media.key[:80]!r} cannot be read ({why})"))
            return None
        found = blob.sha256 if reader.hasher is None else reader.hasher.hexdigest()
        if expected is not None and found != expected:
            findings.append(
                aa.Finding(
                    row.number,
                    f"{media.pointer}.properties.hash",
                    f"{media.key[:80]!r} holds bytes whose {media.asserted.partition(':')[0] if media.asserted else ''}"
                    f" is {found}, not the {expected} auto-archiver asserted: changed since it was archived",
                )
            )
            return None
        return blob


def import_auto_archiver(
    ctx: Context,
    source: str | os.PathLike[str],
    *,
    keep_going: bool = False,
    source_version: str | None = None,
    progress: ProgressCallback | None = None,
    analyze: bool = True,
    on_analyzed: Callable[[AnalysisResult], None] | None = None,
) -> MigrationResult:
    """Import what auto-archiver archived: *source* is its CSV database (``csv_db``) or the
    folder holding it (``db.csv``) and its local storage.

    Each row whose status is a success (auto-archiver's own rule: ``success`` in it, or
    ``antibot``, its browser extractor's mark) becomes a record (see the module's docstring).
    Every file a row names must be inside the CSV's folder (no ``..``, no absolute path, no
    symbolic link out of it) and, where auto-archiver hashed it, hold those bytes.  Anything
    wrong with a row is an :class:`~evidence_catalog.interchange.auto_archiver.Finding`: by
    default one finding refuses the whole input (:class:`MigrationError` listing them all,
    nothing imported); with *keep_going* the other rows are imported and the result lists the
    findings.  *source_version* is recorded as auto-archiver's version when its output names
    none (its HTML report does).  Rows imported before add nothing.

    With *analyze* (the default), the images and videos imported (originals and thumbnails) are
    then analysed as :meth:`analyze` does -- perceptual hashes, keyframes, near-duplicates among
    the records already here -- each in a transaction of its own, and *on_analyzed* is called
    with each result; the import is complete before.
    """
    given = Path(os.path.abspath(os.fspath(source)))
    common.check_writable(ctx, "; nothing can be imported into it")
    database = aa.database_of(given)
    folder = database.parent
    where = display_path(database)
    log_key.check_signing_key(ctx)  # before anything is stored
    findings: list[aa.Finding] = []
    rows: list[aa.Row] = []
    for number, cells, why in aa.read_rows(database):
        if cells is None:
            findings.append(aa.Finding(number, "row", why or "cannot be read"))
            continue
        row, found = aa.parse_row(number, cells)
        findings += found
        if row is not None:
            rows.append(row)
    documents = {row.number: assertion_document(row) for row in rows}
    ids = {row.number: _stable_id(row.processed_at, documents[row.number]) for row in rows}
    first: dict[str, int] = {}
    copies = {row.number: n for row in rows if (n := first.setdefault(ids[row.number], row.number)) != row.number}
    rows = [row for row in rows if row.number not in copies]  # the same row twice: one record
    with ctx.db.read() as session:
        existing = ctx.db.records_existing(session, list(ids.values()))
    work = _Import(ctx, folder, where, progress, source_version)
    try:
        incoming: list[tuple[aa.Row, IncomingRecord, dict[str, Any]]] = []
        present: list[str] = []
        refused: set[int] = {f.row for f in findings if f.row is not None}
        version: str | None = None  # the first a report names, else the one given
        for row in rows:
            if ids[row.number] in existing:
                present.append(ids[row.number])
                continue
            made = _record(work, row, documents[row.number], ids[row.number], findings)
            if made is None:
                refused.add(row.number)
                continue
            incoming.append(made)
            if version is None and made[2]["version_from"] == "report":
                version = made[2]["version"]
        version = version or source_version or UNKNOWN_VERSION
        refused |= {copy for copy, original in copies.items() if original in refused}
        if findings and not keep_going:
            raise MigrationError(
                f"{len(findings)} finding(s) in {len(refused) or 'the'} row(s); nothing was imported",
                findings,
                where=where,
            )
        ready = incoming
        ctx.blobs.sync()
        at = ctx.clock()
        with ctx.write() as session:
            here = ctx.db.records_existing(session, [item.record.id for _, item, _ in ready])  # another writer?
            present += [item.record.id for _, item, _ in ready if item.record.id in here]
            ready = [entry for entry in ready if entry[1].record.id not in here]
            common_source = {"format": aa.TOOL, "tool": aa.TOOL, "path": display_path(given), "database": where}
            sources = {
                item.record.id: {**common_source, "row": row.number, "status": row.status, **source}
                for row, item, source in ready
            }
            importing.insert_imported(ctx, session, [item for _, item, _ in ready], {}, at, sources=sources)
    except BaseException:
        common.remove_unclaimed(ctx, work.created)  # all or nothing: what only this import stored goes
        raise
    claimed = {e.artifact.sha256 for _, item, _ in ready for e in item.record.artifacts}
    unclaimed = [sha for sha in work.created if sha not in claimed]
    common.remove_unclaimed(ctx, unclaimed)  # the files of refused rows (keep_going)
    stored = [sha for sha in dict.fromkeys(work.created) if sha in claimed]
    added = tuple(item.record.id for _, item, _ in ready)
    if analyze:
        from evidence_catalog.operations.analyzing import analyze_records_added

        analyze_records_added(ctx, added, on_analyzed)
    return MigrationResult(
        database=database,
        tool=aa.TOOL,
        tool_version=version,
        records_added=added,
        records_present=tuple(present),
        rows_refused=tuple(sorted(refused)),
        findings=tuple(findings),
        artifacts_stored=len(stored),
        artifacts_present=len(claimed) - len(stored),
        bytes_stored=sum(work.described[sha].size for sha in stored),
        quarantined=common.quarantined_by(work.moved),
    )


def _check_stamps(work: _Import, row: aa.Row, held: dict[str, StoredBlob], findings: list[aa.Finding]) -> None:
    """Each time-stamp token of *row* against the hashes file it stamps, and that file against
    the hashes the row asserts (read from the store: the bytes checked are the bytes kept)."""

    def stored(sha256: str) -> bytes:
        return work.head(sha256, aa.MAX_STAMPED + 1)

    media = {m.pointer: m for m in row.media}
    for token in row.media:
        parent = aa.stamped_parent(token)
        if parent is None or parent not in media or token.pointer not in held or parent not in held:
            continue
        text = stored(held[parent].sha256)
        problem = aa.token_problem(row, stored(held[token.pointer].sha256), text)
        if problem is not None:
            findings.append(aa.Finding(row.number, f"{token.pointer}._key", f"{token.key!s:.80}: {problem}"))
        if media[parent].aa_id == "timestamped_hashes" and (problem := aa.hashes_problem(row, media[parent], text)):
            findings.append(aa.Finding(row.number, f"{parent}._key", f"{media[parent].key!s:.80}: {problem}"))


def _record(
    work: _Import, row: aa.Row, document: bytes, record_id: str, findings: list[aa.Finding]
) -> tuple[aa.Row, IncomingRecord, dict[str, Any]] | None:
    """The record of *row*, its files stored and checked; ``None`` (and findings) when one is not
    what the row says."""
    ctx = work.ctx
    before = len(findings)
    entries: dict[str, model.RecordArtifact] = {}
    files: list[dict[str, Any]] = []
    version = None
    platform_at = row.platform_at
    held: dict[str, StoredBlob] = {}
    for media in row.media:
        blob = work.file(row, media, findings)
        if blob is None:
            continue
        held[media.pointer] = blob
        artifact = work.describe(blob)
        entries.setdefault(blob.sha256, model.RecordArtifact(artifact=artifact, role=media.role))
        files.append({"key": media.key, "id": media.aa_id, "sha256": blob.sha256, "asserted_hash": media.asserted})
        if media.aa_id == "_final_media" and version is None:
            version = aa.read_version(work.head(blob.sha256, aa.REPORT_HEAD))
        if media.aa_id == "metadata_json" and row.platform_local is not None and platform_at is None:
            platform_at = aa.zoned_timestamp(work.head(blob.sha256, aa.MAX_METADATA_JSON + 1), row.platform_local)
    if len(findings) > before:
        return None
    _check_stamps(work, row, held, findings)
    if len(findings) > before:
        return None
    blob = work.put(io.BytesIO(document), f"{work.where}: row {row.number}")
    doc_artifact = work.describe(blob)
    entries.setdefault(
        blob.sha256, model.RecordArtifact(artifact=doc_artifact, role=model.ArtifactRole.PLATFORM_METADATA)
    )
    main = next(
        (sha for sha, e in entries.items() if e.role is model.ArtifactRole.ORIGINAL),
        next((sha for sha, e in entries.items() if e.role is model.ArtifactRole.SCREENSHOT), blob.sha256),
    )
    ended = row.processed_at + dt.timedelta(seconds=row.duration_s or 0)
    tool = model.Agent(
        name=aa.TOOL, kind=model.AgentKind.SOFTWARE, version=version or work.source_version or UNKNOWN_VERSION
    )
    acquisition = common.new_acquisition(
        ctx,
        model.AcquisitionMethod.IMPORTED,
        row.processed_at,
        ended,
        acquisition_id=_stable_id(row.processed_at, document + b"\x00acquisition"),
        tools=(tool,),
        artifact_sha256=main,
        other_artifacts=tuple(sha for sha in entries if sha != main),
        requested_url=row.url,
        extractor=row.status,
        platform_info=model.PlatformInfo(title=row.title, uploaded_at=platform_at),
        note=f"archived by auto-archiver (status {row.status!r}); row {row.number} of its CSV",
    )
    record = model.EvidenceRecord(
        id=record_id,
        created_at=ctx.clock(),
        created_by=ctx.operator,
        title=row.title or row.url,
        artifacts=tuple(entries.values()),
        acquisitions=(acquisition,),
    )
    item = IncomingRecord(record=record, history=(), where=f"{work.where}: row {row.number}")
    # What the record's event says of its source besides the path and the row.
    source: dict[str, Any] = {
        "version": tool.version,  # as its acquisition says
        "version_from": "report" if version else ("given" if work.source_version else None),
        "files": files,
    }
    if platform_at is not None and row.platform_at is None:
        source["timestamp_zone_from"] = "metadata_json"  # the CSV gave the time without its zone
    return row, item, source
