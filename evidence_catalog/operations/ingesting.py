"""Ingesting reports: a feed-reader digest, an RSS/Atom feed, twarc2 tweets or a Telegram Desktop
export, from a file, a folder or a URL, stored as the source document of one record per new
report, all in one transaction; and then, if asked, the media those reports point at."""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from evidence_catalog import model
from evidence_catalog.capture.options import CaptureOptions, CaptureProgress
from evidence_catalog.custody import Action
from evidence_catalog.errors import InputError
from evidence_catalog.ingest.fetch import WITHHELD_SET_COOKIE, FetchedDocument, fetch_document
from evidence_catalog.ingest.formats import INGEST_FORMATS, IngestFormat, PreparedReport, detect_format, read_reports
from evidence_catalog.operations import adding, common, ingesting_offload, log_key
from evidence_catalog.operations.common import check_note, check_url, checked_tags
from evidence_catalog.operations.context import Context
from evidence_catalog.operations.ingesting_offload import Presealing
from evidence_catalog.operations.ingesting_stream import FeedStream, StreamLostError
from evidence_catalog.paths import display_path, recorded_path
from evidence_catalog.replay import captured_details
from evidence_catalog.results import AnalysisResult, IngestResult
from evidence_catalog.serialize import unstructure
from evidence_catalog.store.blobstore import StoredBlob
from evidence_catalog.store.database import (
    EventDraft,
    acquisition_row,
    index_rows,
    part_row,
    record_artifact_row,
    record_row,
)
from evidence_catalog.store.jsontext import JSONText

#: Reports written per batch of inserts during one ingest (all batches are one transaction).
INGEST_CHUNK = 2000
#: With a worker presealing the events, the newest this many drafts are left to it while the
#: ones before are linked and written.
PRESEALED_LAG = 2 * ingesting_offload.CHUNK
#: A source given as a URL, of any scheme (``check_url`` then refuses what is not http(s)).
URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def ingest(
    ctx: Context,
    source: str | os.PathLike[str],
    *,
    format: IngestFormat | None = None,
    tags: Sequence[str] = (),
    note: str | None = None,
    keep_going: bool = False,
    capture_media: bool = False,
    capture_options: CaptureOptions | None = None,
    capture_progress: CaptureProgress | None = None,
    timeout: float = 30.0,
    analyze: bool = True,
    on_analyzed: Callable[[AnalysisResult], None] | None = None,
) -> IngestResult:
    """Ingest a feed-reader digest, an RSS/Atom feed, twarc2 tweets or a Telegram Desktop
    export: every item becomes a report on a record of its own, with the input stored as
    the record's source document (and, for a digest, the item's line span in it).
    *source* is a file, a Telegram export folder, or an ``http(s)://`` URL of a feed (the
    document is downloaded as served; the responses are in each acquisition).  *format* is
    found from the content when ``None``.

    All or nothing: the input, its reports, records and custody events are written in one
    transaction.  A report already in the catalog (same identity, see
    :func:`~evidence_catalog.ingest.digest.report_identity`) is not added again; the repeat
    is in the custody log (``digest.ingested`` counts what was new and what was present).
    With *keep_going*, an item that cannot be read (a broken JSON line, a Telegram message
    whose media file is missing) is left out and named in :attr:`IngestResult.skipped`
    instead of stopping the ingest.

    With *capture_media*, the media each new report points at (feed enclosures and Media
    RSS content) is then captured onto the report's record, as :meth:`capture` would; a
    capture that fails is logged and in :attr:`IngestResult.captures`, and the reports stay.

    With *analyze* (the default), the images and videos the ingest stored (a Telegram export's
    photos and files, captured media) are then analysed as :meth:`analyze` does, each in a
    transaction of its own, and *on_analyzed* is called with each result.
    """
    log_key.check_signing_key(ctx)  # before anything is stored
    if format is not None and format not in INGEST_FORMATS:
        raise InputError(f"unknown format {format!r}; use one of {', '.join(INGEST_FORMATS)}", where="format")
    tags = checked_tags(tags)
    check_note(note)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 3600:
        raise InputError(f"timeout must be a number of seconds from 0 to 3600, not {timeout!r}", where="timeout")
    common.check_writable(ctx, "; nothing can be ingested into it")
    started_at = ctx.clock()
    if isinstance(source, str) and URL_SCHEME.match(source.strip()):  # check_url refuses ftp:// …
        url = check_url(source)
        with common.work_area(ctx, f"ingest-{uuid.uuid4().hex}") as work:
            fetched = fetch_document(url, work / "document", timeout=float(timeout))
            result = ingest_file(
                ctx, work / "document", url, format, tags, note, keep_going, started_at, fetched=fetched
            )
    else:
        path = Path(os.path.abspath(source))
        if path.is_dir() and format in (None, "telegram"):  # a Telegram Desktop export folder
            path = path / "result.json"
        [file] = adding.collect_files(ctx, [path])
        result = ingest_file(ctx, file, display_path(file), format, tags, note, keep_going, started_at)
        result = attrs.evolve(result, path=file)  # the file itself; messages name it printably
    if capture_media:
        result = capture_report_media(ctx, result, capture_options, capture_progress)
    if analyze:
        from evidence_catalog.operations.analyzing import analyze_added, analyze_records_added

        analyze_added(ctx, result.media_stored, on_analyzed)
        captured = [c.record_id for c in result.captures if c.ok and c.new_on_record]
        analyze_records_added(ctx, captured, on_analyzed)
    return result


def capture_report_media(
    ctx: Context, result: IngestResult, options: CaptureOptions | None, progress: CaptureProgress | None
) -> IngestResult:
    """Capture the media the new reports of an ingest point at, each onto its report's
    record; a media URL that is not an http(s) URL is not fetched, and is warned about."""
    from evidence_catalog.operations import capturing  # yt-dlp's side: only for an ingest that captures

    captures, warnings = [], list(result.warnings)
    for record_id, url in result.media:
        try:
            checked = check_url(url)
        except InputError as exc:
            warnings.append((0, f"media of record {record_id} not captured: {exc.message}"))
            continue
        # Captured onto that record by an earlier run: resumed, not fetched again.
        done = capturing.captured_before(ctx, checked, record_id)
        captures.append(
            done
            # analysed with the ingest's media, after the captures
            or capturing.capture_url(
                ctx, checked, record_id=record_id, options=options, progress=progress, analyze=False
            )
        )
    return attrs.evolve(result, captures=tuple(captures), warnings=tuple(warnings))


def ingest_file(
    ctx: Context,
    file: Path,
    where: str,
    format: IngestFormat | None,
    tags: tuple[str, ...],
    note: str | None,
    keep_going: bool,
    started_at: dt.datetime,
    *,
    fetched: FetchedDocument | None = None,
) -> IngestResult:
    """Ingest one input (see :func:`ingest`); bytes it stored are removed again when its
    records are not written, whatever stopped it: a refused ingest leaves no orphan."""
    created: list[str] = []
    presealing = Presealing()
    try:
        with common.collections_paused():  # see there: an ingest keeps its objects to the end
            return ingest_stored(
                ctx, file, where, format, tags, note, keep_going, started_at, fetched, created, presealing
            )
    except BaseException:
        common.remove_unclaimed(ctx, created)
        raise
    finally:
        presealing.close()


def ingest_stored(
    ctx: Context,
    file: Path,
    where: str,
    format: IngestFormat | None,
    tags: tuple[str, ...],
    note: str | None,
    keep_going: bool,
    started_at: dt.datetime,
    fetched: FetchedDocument | None,
    created: list[str],
    presealing: Presealing | None = None,
) -> IngestResult:
    """:func:`ingest_file`, naming in *created* each blob it stored that was not there; with
    *presealing*, its events presealed by a worker where that pays (begun here, before the
    input is parsed, and stopped again when it holds too few items; closed by the caller), and
    a large feed read by another worker while the ingest writes its entries
    (:mod:`~evidence_catalog.operations.ingesting_stream`)."""
    presealing = presealing or Presealing()
    with open(file, "rb") as stream:
        raw = stream.read()
    if format is None:
        format = detect_format(raw)
    if format == "telegram" and fetched is not None:
        # Its media are files next to it: from a URL they would be looked for in the
        # catalog's own work area.
        raise InputError(
            "a Telegram Desktop export is a folder with its media; download it and ingest the folder",
            where=where,
        )
    skipped: list[tuple[int, str]] | None = [] if keep_going else None
    # Forked before the input is parsed, while the process holds little besides its bytes: the
    # ingest then writes to the pages of the parsed items, which a worker forked after parsing
    # would hold copies of.  Too few items once parsed: stopped again.
    feed = FeedStream.start(presealing, raw, where) if format == "rss" else None
    try:
        return _ingest_read(
            ctx, file, raw, where, format, tags, note, started_at, fetched, created, presealing, feed, skipped
        )
    except Exception:
        if feed is None or feed.settled:
            raise
        # Stopped before the feed was read to its end (a catalog locked, read-only or full): what
        # is wrong with the feed, if anything, is said first, as an ingest reading it at once says it.
        presealing.close()
        read_reports(raw, format, where, file.parent, skipped)
        raise


def _ingest_read(
    ctx: Context,
    file: Path,
    raw: bytes,
    where: str,
    format: IngestFormat,
    tags: tuple[str, ...],
    note: str | None,
    started_at: dt.datetime,
    fetched: FetchedDocument | None,
    created: list[str],
    presealing: Presealing,
    feed: FeedStream | None,
    skipped: list[tuple[int, str]] | None,
) -> IngestResult:
    """The rest of :func:`ingest_stored`, the input read here or by *feed*'s worker."""
    prepared: list[PreparedReport] = []
    warnings: tuple[tuple[int, str], ...] = ()
    if feed is None:
        prepared, warnings = read_input(presealing, raw, format, where, file.parent, skipped)
    with ctx.db.read() as session:  # media of reports already here is not stored again
        held_before = ctx.db.records_with_reports(
            session, [report.identity for report, _, _, media, _ in prepared if media and report.identity]
        )
    new_media = {
        path
        for report, _, _, media, _ in prepared
        if report.identity and report.identity not in held_before
        for path in media
    }
    stored_blobs: dict[Path, StoredBlob] = {}
    for path in sorted(new_media):
        stored_blobs[path] = store_file_copy(ctx, path)
        if stored_blobs[path].created:
            created.append(stored_blobs[path].sha256)
    stored_media = {path: common.describe(ctx, stored) for path, stored in stored_blobs.items()}
    with open(file, "rb", buffering=0) as document:
        blob = ctx.blobs.put_stream(common.SourceFile(document, where))
    if blob.created:
        created.append(blob.sha256)
    if blob.size != len(raw):
        raise InputError("changed while it was being read; nothing was ingested", where=where)
    artifact = common.describe(ctx, blob)
    ended_at = max(ctx.clock(), started_at)
    path_text, path_b64 = (None, None) if fetched is not None else recorded_path(file)
    fetched_fields: dict[str, Any] = (
        {}
        if fetched is None
        else {
            "requested_url": fetched.requested_url,
            "final_url": fetched.final_url,
            "http_status": fetched.status,
            "responses": fetched.responses,
            "withheld": (WITHHELD_SET_COOKIE,) if fetched.cookies_withheld else (),
        }
    )
    stored = _Stored(
        where=where,
        format=format,
        fetched=fetched,
        blob=blob,
        artifact=artifact,
        stored_blobs=stored_blobs,
        stored_media=stored_media,
        tags=tags,
        note=note,
        started_at=started_at,
        ended_at=ended_at,
        path_text=path_text,
        acquisition_fields={"original_path": path_text, "original_path_b64": path_b64, **fetched_fields},
        skipped=skipped,
    )
    if feed is not None:
        try:
            return _write_reports(ctx, stored, feed.chunks(), lambda: feed.warnings, presealing)
        except StreamLostError:  # rolled back: read here, as without a worker (which says what is wrong)
            presealing.close()
            prepared, warnings = read_input(presealing, raw, format, where, file.parent, skipped)
    chunks = (prepared[n : n + INGEST_CHUNK] for n in range(0, len(prepared), INGEST_CHUNK))
    return _write_reports(ctx, stored, chunks, lambda: warnings, presealing)


def read_input(
    presealing: Presealing,
    raw: bytes,
    format: IngestFormat,
    where: str,
    folder: Path,
    skipped: list[tuple[int, str]] | None,
) -> tuple[list[PreparedReport], tuple[tuple[int, str], ...]]:
    """:func:`read_reports` of an input, the ingest's worker forked before it and stopped again
    when it holds too few items."""
    presealing.begin(len(raw))
    prepared, warnings = read_reports(raw, format, where, folder, skipped)
    if len(prepared) < ingesting_offload.OFFLOAD_ITEMS:
        presealing.close()
    return prepared, warnings


@attrs.frozen
class _Stored:
    """What an ingest stored and knows before its transaction."""

    where: str
    format: IngestFormat
    fetched: FetchedDocument | None
    blob: StoredBlob
    #: The input's artifact, described once (a fallback's second writing uses it again).
    artifact: model.Artifact
    #: The media files the reports name that were not in the catalog, as stored, and described.
    stored_blobs: dict[Path, StoredBlob]
    stored_media: dict[Path, model.Artifact]
    tags: tuple[str, ...]
    note: str | None
    started_at: dt.datetime
    ended_at: dt.datetime
    path_text: str | None
    acquisition_fields: dict[str, Any]
    skipped: list[tuple[int, str]] | None


def _write_reports(
    ctx: Context,
    stored: _Stored,
    chunks: Iterable[Sequence[PreparedReport]],
    warnings_of: Callable[[], tuple[tuple[int, str], ...]],
    presealing: Presealing,
) -> IngestResult:
    """Write the reports of an input -- *chunks* of them, the input's warnings known once they
    are all read (*warnings_of*) -- as new records, in one transaction."""
    blob, artifact, stored_blobs, stored_media, ended_at, started_at, fetched = (
        stored.blob,
        stored.artifact,
        stored.stored_blobs,
        stored.stored_media,
        stored.ended_at,
        stored.started_at,
        stored.fetched,
    )
    media_created = sum(copy.created for copy in {b.sha256: b for b in stored_blobs.values()}.values())
    media_to_capture: list[tuple[str, str]] = []
    media_stored: list[tuple[str, str, str]] = []  # (record, SHA-256, media type) of media put on new records
    present = 0
    with ctx.write() as session:
        catalogued = ctx.db.artifact(session, blob.sha256)
        if catalogued is not None:
            artifact = catalogued
        else:
            common.add_artifact(ctx, session, artifact, at=ended_at)
        entry = model.RecordArtifact(artifact=artifact, role=model.ArtifactRole.SOURCE_DOCUMENT)
        new_item = ItemParts(
            ctx,
            entry,
            stored.tags,
            stored.note,
            started_at,
            ended_at,
            stored.acquisition_fields,
        )
        seen: dict[str, str] = {}  # identity -> record, for repeats within the input
        # Built a chunk at a time, then linked into the log and inserted with one statement
        # per table: memory stays bounded, and the input is still one transaction.
        drafts: list[EventDraft] = []
        added = 0

        def flush(count: int | None = None) -> None:
            """Link the first *count* drafts (all: the last ones, whose forms the worker may not
            have made yet, which are then made here) into the log and insert their rows."""
            nonlocal added
            last = count is None
            count = len(parts) if count is None else count
            # The acquisition's and the report's documents: written once, for the event's
            # details that hold them and for their own rows.
            written = [
                {"acquisition": JSONText(details["acquisition"]), "report": JSONText(details["report"])}
                for *_, details in parts[:count]
            ]
            events = ctx.db.append_events(session, drafts[:count], presealing.take(count, wait=not last), written)
            rows: dict[str, list[dict[str, Any]]] = {
                name: [] for name in ("record", "record_tag", "record_artifact", "acquisition", "record_part")
            }
            new_artifacts = {e.artifact.sha256: e.artifact for *_, entries, _ in parts[:count] for e in entries[1:]}
            catalogued_media = ctx.db.artifacts(session, new_artifacts)
            for sha256, media_artifact in new_artifacts.items():
                if sha256 not in catalogued_media:
                    common.add_artifact(ctx, session, media_artifact, at=ended_at)
            flushed = parts[:count]
            for (record, acquisition, report, note_part, entries, details), event, texts in zip(
                flushed, events, written, strict=True
            ):
                media_stored.extend((record.id, e.artifact.sha256, e.artifact.media_type) for e in entries[1:])
                # The rows' JSON bodies are the documents the event holds (made once).
                rows["record"].append(record_row(record))
                rows["record_tag"] += [{"record_id": record.id, "tag": tag} for tag in record.tags]
                rows["record_artifact"] += [record_artifact_row(record.id, e, n) for n, e in enumerate(entries)]
                rows["acquisition"].append(
                    acquisition_row(record.id, acquisition, event.seq, body=texts["acquisition"])
                )
                rows["record_part"].append(part_row(record.id, "report", report, event.seq, 0, body=texts["report"]))
                if note_part is not None:
                    rows["record_part"].append(
                        part_row(record.id, "note", note_part, event.seq, 0, body=details["note"])
                    )
            ctx.db.insert_rows(session, rows)
            index_rows(session, [(report.id, report, ended_at) for _, _, report, _, _, _ in flushed])
            added += count
            del drafts[:count], parts[:count]

        parts: list[Item] = []
        held_here: dict[str, str] = {}  # identity -> record, of reports catalogued before this ingest
        items = 0
        for chunk in chunks:
            items += len(chunk)
            upcoming = [item[0].identity for item in chunk]  # the chunk's reports looked up at once
            held_here = ctx.db.records_with_reports(session, [i for i in upcoming if i and i not in seen])
            for prepared_report, title, item_where, media, read_document in chunk:
                identity = prepared_report.identity
                assert identity is not None  # every reader sets it
                held = seen.get(identity) or held_here.get(identity)
                if held is not None or not all(path in stored_media for path in media):
                    present += 1
                    if held is not None:  # its media may not have been captured yet
                        media_to_capture += [(held, link.url) for link in prepared_report.media]
                    continue
                record_id = model.new_id()
                seen[identity] = record_id
                record, acquisition, report, note_part, entries, details = new_item(
                    record_id, prepared_report, title, item_where, [stored_media[path] for path in media], read_document
                )
                draft = EventDraft(
                    at=ended_at, actor=ctx.operator, action=Action.REPORT_INGESTED, subject=record_id, details=details
                )
                drafts.append(presealing.draft(draft))  # (with a worker: its secret given, sent to be presealed)
                parts.append((record, acquisition, report, note_part, entries, drafts[-1]["details"]))
                media_to_capture += [(record_id, link.url) for link in report.media]
                if len(parts) >= INGEST_CHUNK:
                    flush(len(parts))
                elif presealing.active and len(parts) >= 2 * PRESEALED_LAG:
                    flush(len(parts) - PRESEALED_LAG)  # the newest left to the worker a while longer
        flush()
        warnings = warnings_of()
        drafts.append(
            EventDraft(
                at=ended_at,
                actor=ctx.operator,
                action=Action.DIGEST_INGESTED,
                subject="catalog",
                details={
                    "format": stored.format,
                    "path": stored.path_text,
                    "url": None if fetched is None else fetched.requested_url,
                    "sha256": blob.sha256,
                    "items": items,
                    "reports_added": added,
                    "reports_present": present,
                    "warnings": len(warnings),
                    "skipped": [{"line": line, "reason": reason} for line, reason in stored.skipped or ()],
                },
            )
        )
        ctx.db.append_events(session, drafts)
    return IngestResult(
        path=stored.where,
        format=stored.format,
        sha256=blob.sha256,
        items=items,
        reports_added=added,
        reports_present=present,
        records_added=added,
        new_bytes=blob.created,
        artifacts_added=blob.created + media_created,
        artifacts_present=(not blob.created) + len({b.sha256 for b in stored_blobs.values()}) - media_created,
        warnings=warnings,
        skipped=tuple(stored.skipped or ()),
        media=tuple(dict.fromkeys(media_to_capture)),
        media_stored=tuple(media_stored),
        quarantined=common.quarantined_by([blob, *stored_blobs.values()]),
    )


#: What :class:`ItemParts` makes of one report: its record, acquisition, report (with its source
#: document), note, artifacts on the record and the ``details`` of its custody event.
Item = tuple[
    model.EvidenceRecord,
    model.Acquisition,
    model.Report,
    model.Note | None,
    list[model.RecordArtifact],
    dict[str, Any],
]


class ItemParts:
    """The parts of the record each new report of one ingest gets (:meth:`__call__`), with
    what every item of the ingest shares made once: the acquisition's tools and fields, the
    documents of the source document's entry, the record's creation and the tags.

    A call gives what making each part on its own gives (``common.new_parts``,
    ``common.new_acquisition``, ``captured_details`` and ``unstructure`` of the report with its
    source document set): the same values and the same JSON documents, members in the same
    order (``tests/test_ingest.py`` ingests with both and compares every row and event).  The
    documents of what is the same for every item are made once and shared, read-only, by the
    items' documents."""

    #: The id of the templates below: never stored (each item's acquisition gets its own).
    _TEMPLATE_ID = "00000000-0000-7000-8000-000000000000"

    def __init__(
        self,
        ctx: Context,
        entry: model.RecordArtifact,
        tags: tuple[str, ...],
        note: str | None,
        started_at: dt.datetime,
        ended_at: dt.datetime,
        acquisition_fields: dict[str, Any],
    ) -> None:
        self.ctx, self.entry, self.tags, self.note, self.ended_at = ctx, entry, tags, note, ended_at
        # Every acquisition of the ingest is this one with its own id, note and media; the
        # tools (this library, Python) are looked up once.
        self.acquisition = common.new_acquisition(
            ctx,
            model.AcquisitionMethod.INGESTED_FROM_FEED,
            started_at,
            ended_at,
            acquisition_id=self._TEMPLATE_ID,
            artifact_sha256=entry.artifact.sha256,
            **acquisition_fields,
        )
        record = model.EvidenceRecord(
            id=self._TEMPLATE_ID, created_at=ended_at, created_by=ctx.operator, title="-", tags=tags
        )
        self.details = captured_details(
            record=record, entries=[entry], acquisition=self.acquisition, tags=tags, note=None
        )

    def __call__(
        self,
        record_id: str,
        prepared: model.Report,
        title: str,
        where: str,
        media: Sequence[model.Artifact],
        document: dict[str, Any] | None = None,
    ) -> Item:
        """The parts of new record *record_id* for the report read from *where* in the input
        (*prepared*: its source document is not set yet; *document*: ``unstructure(prepared)``
        if the reader made it, which is then the one stored) and the media stored for it."""
        record, note_part = common.new_parts(
            self.ctx, record_id, True, report_title(title), self.tags, self.note, None, self.ended_at
        )
        assert record is not None  # a new record was asked for
        other_artifacts = tuple(dict.fromkeys(artifact.sha256 for artifact in media))
        acquisition = attrs.evolve(self.acquisition, id=model.new_id(), note=where, other_artifacts=other_artifacts)
        entries = [self.entry]
        for media_artifact in media:
            if all(e.artifact.sha256 != media_artifact.sha256 for e in entries):
                entries.append(model.RecordArtifact(artifact=media_artifact))
        details = dict(self.details)  # members in captured_details' order, "report" last
        details["record"] = {**details["record"], "title": record.title}
        acquisition_document = details["acquisition"] = dict(details["acquisition"])
        acquisition_document.update(id=acquisition.id, note=where, other_artifacts=list(other_artifacts))
        details["note"] = None if note_part is None else unstructure(note_part)
        if len(entries) > 1:
            details["artifacts"] = [*details["artifacts"], *(unstructure(e) for e in entries[1:])]
        # The report as stored, its source document set; the model value is not made again
        # with it (nothing that reads the value here looks at that field).
        report_document = details["report"] = unstructure(prepared) if document is None else document
        report_document["document_sha256"] = self.entry.artifact.sha256
        return record, acquisition, prepared, note_part, entries, details


def store_file_copy(ctx: Context, path: Path) -> StoredBlob:
    """Store a file the operator holds (it is copied, never moved)."""
    where = display_path(path)
    try:
        with open(path, "rb", buffering=0) as stream:
            return ctx.blobs.put_stream(common.SourceFile(stream, where))
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror}); nothing was ingested", where=where) from exc


def report_title(text: str) -> str:
    """A record title from a report's text: its first line, at most 100 characters."""
    first = text.split("\n", 1)[0].strip() or text.strip()
    return first if len(first) <= 100 else first[:99] + "…"
