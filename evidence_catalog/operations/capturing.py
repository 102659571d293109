"""Capturing online media with yt-dlp: each URL is downloaded into a private work area, its files
hashed and stored, then record, artifacts, acquisition and custody event are written in one
transaction; a failed attempt is logged as such."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterable, Sequence

import attrs

from evidence_catalog import model
from evidence_catalog.capture.downloaded import CapturedFile, Download
from evidence_catalog.capture.options import CaptureFailed, CaptureOptions, CaptureProgress
from evidence_catalog.capture.ytdlp import Capturer
from evidence_catalog.custody import Action
from evidence_catalog.errors import EvidenceError, InputError, StorageError
from evidence_catalog.model import item_key
from evidence_catalog.operations import common, log_key
from evidence_catalog.operations.common import check_note, check_record_id, check_url, checked_tags
from evidence_catalog.operations.context import Context
from evidence_catalog.replay import captured_details, failed_details
from evidence_catalog.results import AnalysisResult, CaptureResult
from evidence_catalog.store.blobstore import BlobStore, StoredBlob


def capture(
    ctx: Context,
    urls: str | Iterable[str],
    *,
    record_id: str | None = None,
    options: CaptureOptions | None = None,
    tags: Sequence[str] = (),
    note: str | None = None,
    progress: CaptureProgress | None = None,
    on_result: Callable[[CaptureResult], None] | None = None,
    skip_captured: bool = False,
    analyze: bool = True,
    on_analyzed: Callable[[AnalysisResult], None] | None = None,
) -> list[CaptureResult]:
    """Capture online media at each URL with yt-dlp, one URL after another.

    Every URL and option is checked first; a bad one raises :class:`InputError` before
    anything is fetched.  A URL that cannot be captured (a 404, a dead server, a body cut
    short, an extractor error, a full disk) does not stop the others: its result says why,
    and the failed attempt is in the custody log.  See :meth:`capture_url`.

    With *skip_captured*, a URL captured successfully before (the same requested URL) is
    not fetched again: its result has ``skipped=True``.  Re-running an interrupted batch
    this way resumes where it stopped.

    With *analyze* (the default), the images and videos of each record a capture stored bytes
    on are then analysed as :meth:`analyze` does, each analysis in a transaction of its own,
    and *on_analyzed* is called with each result.
    """
    if isinstance(urls, str):
        urls = [urls]
    checked = [check_url(url) for url in urls]
    if not checked:
        raise InputError("no URL to capture", where="url")
    check_capture_request(ctx, record_id, tags, note)
    options = options or CaptureOptions()
    results: list[CaptureResult] = []
    noted: set[str] = set()
    # One yt-dlp for the whole batch: its set-up costs more than a small download.
    with capturer_for(ctx, options) as capturer:
        for url in checked:
            result = captured_before(ctx, url) if skip_captured else None
            if result is None:
                result = capture_one(
                    ctx,
                    url,
                    capturer,
                    record_id=record_id,
                    options=options,
                    tags=tags,
                    note=note,
                    progress=progress,
                    noted=noted,
                )
            results.append(result)
            if on_result is not None:
                on_result(result)
    if analyze:
        from evidence_catalog.operations.analyzing import analyze_records_added

        analyze_records_added(ctx, [r.record_id for r in results if r.ok and r.new_on_record], on_analyzed)
    return results


def capturer_for(ctx: Context, options: CaptureOptions) -> Capturer:
    """A :class:`Capturer` for captures into this catalog: downloads hashed as they are written
    with the blob store's algorithms, so that it need not read them again."""
    blobs = ctx.blobs
    if isinstance(blobs, BlobStore):
        return Capturer(options, algorithms=blobs.algorithms)
    return Capturer(options)


def captured_before(ctx: Context, url: str, record_id: str | None = None) -> CaptureResult | None:
    """The result of not fetching *url* again: its newest successful capture (onto
    *record_id* when given) as a ``skipped`` result, or ``None`` when there is none."""
    with ctx.db.read() as session:
        earlier = ctx.db.earlier_capture(session, platform_key=None, requested_url=url, record_id=record_id)
    if earlier is None:
        return None
    found_on, sha256, acquisition_id = earlier
    return CaptureResult(
        url=url, ok=True, acquisition_id=acquisition_id, record_id=found_on, sha256=sha256, skipped=True
    )


def check_capture_request(ctx: Context, record_id: str | None, tags: Sequence[str], note: str | None) -> None:
    common.check_writable(ctx, "; nothing can be captured into it")
    if record_id is not None:
        check_record_id(record_id)
        with ctx.db.read() as session:
            common.check_record_exists(ctx, session, record_id, where="record")
    checked_tags(tags)
    check_note(note)


def capture_url(
    ctx: Context,
    url: str,
    *,
    record_id: str | None = None,
    options: CaptureOptions | None = None,
    tags: Sequence[str] = (),
    note: str | None = None,
    progress: CaptureProgress | None = None,
    noted: set[str] | None = None,
    analyze: bool = True,
    on_analyzed: Callable[[AnalysisResult], None] | None = None,
) -> CaptureResult:
    """Capture one URL: download into a private temporary area, hash and store every file,
    then write record, artifacts, acquisition and custody event in one transaction.  With
    *analyze*, the record's images and videos are then analysed, as :meth:`capture` does.

    Only whole, hashed files enter the store, and the record is written last: a failure or a
    killed process at any point leaves no record that claims media the store lacks.  A
    failed attempt is logged (``capture.failed``: URL, times, error) and returned with
    ``ok=False``; a storage failure of the catalog itself raises :class:`StorageError`.

    The same item captured again (same extractor and platform id, else same URL) goes to
    the record of the earlier capture: identical bytes gain only a new acquisition,
    different bytes become a new version (``version_of`` the earlier main file).
    """
    options = options or CaptureOptions()
    with capturer_for(ctx, options) as capturer:
        result = capture_one(
            ctx,
            url,
            capturer,
            record_id=record_id,
            options=options,
            tags=tags,
            note=note,
            progress=progress,
            noted=noted,
        )
    if analyze and result.ok and result.new_on_record:
        from evidence_catalog.operations.analyzing import analyze_records_added

        analyze_records_added(ctx, [result.record_id], on_analyzed)
    return result


def capture_one(
    ctx: Context,
    url: str,
    capturer: Capturer,
    *,
    record_id: str | None,
    options: CaptureOptions,
    tags: Sequence[str],
    note: str | None,
    progress: CaptureProgress | None,
    noted: set[str] | None,
) -> CaptureResult:
    """:func:`capture_url` with a :class:`Capturer` that lives longer than one capture (from
    :func:`capturer_for`, with the same *options*): a caller capturing many URLs sets yt-dlp
    up once."""
    log_key.check_signing_key(ctx)  # before anything is stored
    url = check_url(url)
    tags = checked_tags(tags)
    check_capture_request(ctx, record_id, tags, note)
    acquisition_id = model.new_id()
    started_at = ctx.clock()
    failure: tuple[str, int | None, str | None] | None = None
    interrupted = False
    with common.work_area(ctx, acquisition_id) as work:
        try:
            fetched = capturer.download(url, work, progress=progress)
            stored = [(item, store_captured(ctx, item)) for item in capture_files(fetched)]
        except CaptureFailed as exc:
            failure = (exc.message, exc.http_status, exc.final_url)
        except (StorageError, InputError) as exc:
            failure = (str(exc), None, None)
        except OSError as exc:
            failure = (f"the capture could not be written ({exc.strerror or exc}); nothing was stored", None, None)
        except KeyboardInterrupt:
            failure, interrupted = ("interrupted by the operator", None, None), True
    # The work area is gone by now: a partial download that filled the disk no longer takes
    # the room that logging the failure (or recording the capture) needs.
    if interrupted:
        with contextlib.suppress(EvidenceError):
            log_failed_capture(ctx, url, acquisition_id, started_at, "interrupted by the operator", record_id)
        raise KeyboardInterrupt
    if failure is not None:
        error, http_status, final_url = failure
        return log_failed_capture(
            ctx,
            url,
            acquisition_id,
            started_at,
            error,
            record_id,
            http_status=http_status,
            final_url=final_url,
            settings=options.describe(),
        )
    return record_capture(
        ctx,
        options,
        url,
        fetched,
        stored,
        acquisition_id,
        started_at,
        record_id=record_id,
        tags=tags,
        note=note,
        noted=noted,
    )


def store_captured(ctx: Context, item: CapturedFile) -> StoredBlob:
    """Store one file of a capture: moved into the blob store with the digests computed as it
    was written, while it is still exactly the file that was finished then; otherwise (or on
    object storage) hashed by reading it, as any file is."""
    written = item.written
    if written is not None and isinstance(ctx.blobs, BlobStore) and written.unchanged(item.path):
        return ctx.blobs.adopt_hashed_file(item.path, written.digests, written.size)
    return ctx.blobs.adopt_file(item.path)


def capture_files(fetched: Download) -> list[CapturedFile]:
    return [
        *fetched.files,
        CapturedFile(fetched.info_json, model.ArtifactRole.PLATFORM_METADATA, written=fetched.info_json_written),
    ]


def record_capture(
    ctx: Context,
    options: CaptureOptions,
    url: str,
    fetched: Download,
    stored: list[tuple[CapturedFile, StoredBlob]],
    acquisition_id: str,
    started_at: dt.datetime,
    *,
    record_id: str | None,
    tags: tuple[str, ...],
    note: str | None,
    noted: set[str] | None,
    settings: tuple[str, ...] | None = None,
) -> CaptureResult:
    """Record what a capture of *url* stored: its record, acquisition and custody event in one
    transaction.  A storage error names the capture."""
    try:
        sha_of = {item.path: blob.sha256 for item, blob in stored}
        described = {blob.sha256: common.describe(ctx, blob) for _, blob in stored}
        entries: list[model.RecordArtifact] = []
        for item, blob in stored:
            if any(e.artifact.sha256 == blob.sha256 for e in entries):
                continue  # the same bytes twice in one capture (e.g. two identical thumbnails)
            sources = tuple(dict.fromkeys(sha_of[p] for p in item.derived_from if sha_of[p] != blob.sha256))
            entries.append(
                model.RecordArtifact(
                    artifact=described[blob.sha256],
                    role=item.role
                    if (sources or item.role is not model.ArtifactRole.DERIVED)
                    else model.ArtifactRole.ORIGINAL,
                    derived_from=sources,
                    derivation=item.derivation if sources else None,
                )
            )
        main = entries[0].artifact.sha256
        ended_at = max(ctx.clock(), started_at)
        key = item_key(fetched.extractor, fetched.platform_id)
        acquisition = common.new_acquisition(
            ctx,
            model.AcquisitionMethod.CAPTURED_FROM_URL,
            started_at,
            ended_at,
            acquisition_id=acquisition_id,
            tools=fetched.tools,
            artifact_sha256=main,
            other_artifacts=tuple(e.artifact.sha256 for e in entries[1:]),
            requested_url=url,
            final_url=fetched.final_url,
            http_status=fetched.http_status,
            platform=fetched.platform,
            extractor=fetched.extractor,
            platform_id=fetched.platform_id,
            platform_info=fetched.platform_info,
            responses=fetched.responses,
            withheld=fetched.withheld,
            note=parts_not_kept(fetched.warnings),
            settings=options.describe() if settings is None else settings,
        )
        with ctx.write() as session:
            # Another writer may have catalogued some of these bytes meanwhile: its description
            # wins, so that every event about one artifact carries the same document.
            for index, entry in enumerate(entries):
                catalogued = ctx.db.artifact(session, entry.artifact.sha256)
                if catalogued is not None and catalogued != entry.artifact:
                    entries[index] = attrs.evolve(entry, artifact=catalogued)
            new_record = False
            earlier = None
            if record_id is None:
                holders = ctx.db.records_holding(session, main)
                earlier = ctx.db.earlier_capture(session, platform_key=key, requested_url=url)
                if holders:
                    record_id = holders[0]
                elif earlier is not None:
                    record_id = earlier[0]
                else:
                    record_id, new_record = model.new_id(), True
            else:
                common.check_record_exists(ctx, session, record_id, where="record")
                earlier = ctx.db.earlier_capture(session, platform_key=key, requested_url=url, record_id=record_id)
            held = set() if new_record else set(ctx.db.artifacts_of(session, record_id))
            version_of = None
            if earlier is not None and earlier[0] == record_id and earlier[1] != main and main not in held:
                version_of = earlier[1]
                entries[0] = attrs.evolve(entries[0], version_of=version_of)
            title = fetched.platform_info.title or url
            record, note_part = common.new_parts(ctx, record_id, new_record, title, tags, note, noted, ended_at)
            event = ctx.db.append_event(
                session,
                at=ended_at,
                actor=ctx.operator,
                action=Action.MEDIA_CAPTURED,
                subject=record_id,
                details=captured_details(
                    record=record, entries=entries, acquisition=acquisition, tags=tags, note=note_part
                ),
            )
            if record is not None:
                ctx.db.add_record(session, record)
            else:
                ctx.db.add_tags(session, record_id, tags)
            for entry in entries:
                if ctx.db.artifact(session, entry.artifact.sha256) is None:
                    common.add_artifact(ctx, session, entry.artifact, at=ended_at)
                ctx.db.attach_artifact(session, record_id, entry)
            ctx.db.add_acquisition(session, record_id, acquisition, event.seq)
            if note_part is not None:
                ctx.db.add_part(session, record_id, "note", note_part, event.seq)
        if noted is not None and note is not None:
            noted.add(record_id)
        main_blob = stored[0][1]
        return CaptureResult(
            url=url,
            ok=True,
            acquisition_id=acquisition_id,
            record_id=record_id,
            sha256=main,
            size=main_blob.size,
            artifacts=len(entries),
            new_record=new_record,
            new_bytes=main_blob.created,
            new_on_record=main not in held,
            version_of=version_of,
            warnings=fetched.warnings,
            not_kept=acquisition.note,
            quarantined=common.quarantined_by(blob for _, blob in stored),
        )

    except StorageError as exc:
        raise StorageError(f"capture of {url} could not be recorded ({exc.message})", where=exc.where) from exc


def log_failed_capture(
    ctx: Context,
    url: str,
    acquisition_id: str,
    started_at: dt.datetime,
    error: str,
    record_id: str | None,
    *,
    http_status: int | None = None,
    final_url: str | None = None,
    settings: tuple[str, ...] = (),
    tools: Sequence[model.Agent] | None = None,
) -> CaptureResult:
    """Log a failed attempt (due diligence: what was tried, when, and why it failed); *tools*
    are yt-dlp's unless given."""
    from evidence_catalog.capture.youtubedl import yt_dlp_agent

    acquisition = common.new_acquisition(
        ctx,
        model.AcquisitionMethod.CAPTURED_FROM_URL,
        started_at,
        max(ctx.clock(), started_at),
        acquisition_id=acquisition_id,
        tools=(yt_dlp_agent(),) if tools is None else tuple(tools),
        outcome=model.Outcome.FAILED,
        requested_url=url,
        final_url=final_url,
        http_status=http_status,
        error=error,
        settings=settings,
    )
    try:
        with ctx.write() as session:
            if record_id is not None and not ctx.db.record_exists(session, record_id):
                record_id = None
            event = ctx.db.append_event(
                session,
                at=acquisition.ended_at,
                actor=ctx.operator,
                action=Action.CAPTURE_FAILED,
                subject=record_id or "catalog",
                details=failed_details(acquisition),
            )
            if record_id is not None:
                ctx.db.add_acquisition(session, record_id, acquisition, event.seq)
    except StorageError as exc:
        raise StorageError(
            f"capture of {url} failed ({error}) and the failure could not be logged ({exc.message})"
        ) from exc
    return CaptureResult(url=url, ok=False, acquisition_id=acquisition_id, record_id=record_id, error=error)


#: How the notes of a page capture start (:mod:`evidence_catalog.capture.browser`): each says
#: what the record does not hold as the page had it.
PAGE_NOTES = (
    "partial capture",
    "the server answered",
    "screenshot cut",
    "pop-ups closed",
    "downloads refused",
    "responses over",
)


def parts_not_kept(warnings: Sequence[str]) -> str | None:
    """What a successful capture could not keep (a subtitle or thumbnail that failed), as the
    acquisition's note: the record must not look more complete than it is."""
    missing = [
        w
        for w in warnings
        if w.startswith(
            (
                "not kept",
                "thumbnail not kept",
                "Unable to download video subtitles",
                "Unable to download",
                *PAGE_NOTES,
            )
        )
        and "webpage" not in w
    ]
    return "; ".join(missing) or None
