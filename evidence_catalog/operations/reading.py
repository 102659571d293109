"""Reading a catalog: records, found, filtered and read a page at a time; reports found by what
they say; the custody log; the stored bytes of artifacts.  And moving a report onto the record
it is about (:func:`link`), with the suggestions of which reports those are.

Every function takes the operation's :class:`~evidence_catalog.operations.context.Context`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from evidence_catalog import model
from evidence_catalog.custody import Action
from evidence_catalog.errors import EvidenceError, InputError, NotFoundError, ValidationError
from evidence_catalog.filters import RecordFilter
from evidence_catalog.operations import common
from evidence_catalog.operations.common import (
    check_limit,
    check_note,
    check_record_id,
    checked_tags,
    choice,
    parse_since,
    parse_time,
    utf8,
)
from evidence_catalog.operations.context import Context

if TYPE_CHECKING:
    from evidence_catalog.ingest.links import LinkSuggestion
    from evidence_catalog.results import LinkResult, SearchHit
    from evidence_catalog.vocabulary import Category

# Searching and linking reports import what they use when they run (the search's query
# parser, redaction's field paths, the replay of a link): listing and showing records use
# none of it, and every command pays for what it imports.


def search(
    ctx: Context,
    text: str = "",
    *,
    mention: str | None = None,
    hashtag: str | None = None,
    feed: str | None = None,
    author: str | None = None,
    since: dt.datetime | dt.date | str | None = None,
    limit: int | None = 100,
    record_filter: RecordFilter | None = None,
    offset: int = 0,
) -> list[SearchHit]:
    """Reports holding every word of *text* (case and diacritics ignored; any report when
    *text* has no words), with the given mention, hashtag, feed name and author (exact, case
    ignored, ``@``/``#`` optional), published -- or, when the source gave no time, found --
    at or after *since* (a date is that day's start in UTC), on a record that meets
    *record_filter* (status, category, tags, flags, place, alleged time: see
    :meth:`record_filter`).  Best match first, then newest; at most *limit* hits (``None``
    for all) after the first *offset* (the next page: ``offset`` + ``limit``).  *text* may
    hold at most 2,000 words (an :class:`InputError` beyond)."""
    from evidence_catalog.results import SearchHit
    from evidence_catalog.store.search import MAX_QUERY_WORDS, query_phrases, term_key

    check_limit(limit)
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InputError(f"offset must be a whole number of at least 0, not {offset!r}", where="offset")
    terms = []
    for kind, value in (("mention", mention), ("hashtag", hashtag), ("feed", feed), ("author", author)):
        if value is None:
            continue
        key = term_key(kind, utf8(value, kind))
        if not key:
            raise InputError(f"{kind} is blank", where=kind)
        terms.append((kind, key))
    words, after = utf8(text, "text"), parse_since(since)
    count = sum(len(phrase) for phrase in query_phrases(words))
    if count > MAX_QUERY_WORDS:
        raise InputError(
            f"the search text holds {count:,} words; at most {MAX_QUERY_WORDS:,} are searched at once "
            "(search for a shorter part of it)",
            where="text",
        )
    with ctx.db.read() as session:
        if record_filter is None:
            found = ctx.db.search_reports(session, text=words, terms=terms, since=after, limit=limit, offset=offset)
        else:  # judged on the record's current state, hits in order until the page is full
            wanted = None if limit is None else offset + limit
            # The hits a full page would need if every record met the filter; only when too
            # few do, the rest of them (a second search, not one per batch).
            hits = ctx.db.search_part_ids(session, text=words, terms=terms, since=after, limit=wanted)
            kept: list[str] = []
            verdicts: dict[str, bool] = {}
            start, batch = 0, wanted or 100
            while start < len(hits) and (wanted is None or len(kept) < wanted):
                chunk = hits[start : start + batch]
                owners = ctx.db.records_of_parts(session, chunk)
                unjudged = [r for r in dict.fromkeys(owners[p] for p in chunk) if r not in verdicts]
                for record in ctx.db.records(session, unjudged):
                    verdicts[record.id] = record_filter.matches(record)
                kept += [part_id for part_id in chunk if verdicts[owners[part_id]]]
                start, batch = start + batch, 2 * batch
                if start == len(hits) == wanted and len(kept) < wanted:
                    hits += ctx.db.search_part_ids(
                        session, text=words, terms=terms, since=after, limit=None, offset=len(hits)
                    )
            found = ctx.db.reports_of_parts(session, kept[offset:wanted])
    return [SearchHit(record_id=record_id, report=report) for record_id, report in found]


def link(ctx: Context, report_id: str, record_id: str, *, note: str | None = None) -> LinkResult:
    """Move a report onto another record -- e.g. a post announcing a film onto the record of
    the captured film -- with its source document, so that one record holds both.  The
    report is not changed; the move is a ``report.linked`` custody event, with *note* (why)
    kept on the record.  A report already on that record is left as it is (no event)."""
    from evidence_catalog.interchange.redact import part_ids_named
    from evidence_catalog.replay import linked_details
    from evidence_catalog.results import LinkResult

    check_note(note)
    common.check_writable(ctx, "; nothing can be linked in it")
    at = ctx.clock()
    with ctx.write() as session:
        found = ctx.db.report(session, report_id)
        if found is None:
            raise NotFoundError(f"no report with id {report_id}")
        from_record, report = found
        common.check_record_exists(ctx, session, record_id)
        if from_record == record_id:
            return LinkResult(report_id=report_id, from_record=from_record, record_id=record_id, moved=False)
        holder = ctx.db.record(session, from_record)
        if report_id in part_ids_named(holder.flags):  # moved, it would travel unredacted
            raise InputError(
                f"a flag on record {from_record} names fields of report {report_id}; "
                "a report with withheld fields stays with its flag",
                where="report",
            )
        citing = [c.id for c in holder.claims if c.source_report_id == report_id]
        if citing:  # the claim would name a source its record no longer holds
            raise InputError(
                f"claim {citing[0]} on record {from_record} names report {report_id} as its source; "
                "a report a claim rests on stays with that claim",
                where="report",
            )
        document = None
        sha256 = report.document_sha256
        if sha256 is not None and sha256 not in ctx.db.artifacts_of(session, record_id):
            artifact = ctx.db.artifact(session, sha256)
            if artifact is None:
                raise ValidationError(f"report {report_id} names document {sha256}, which is not catalogued")
            document = model.RecordArtifact(artifact=artifact, role=model.ArtifactRole.SOURCE_DOCUMENT)
        note_part = (
            None if note is None else model.Note(id=model.new_id(), text=note, author=ctx.operator, written_at=at)
        )
        event = ctx.db.append_event(
            session,
            at=at,
            actor=ctx.operator,
            action=Action.REPORT_LINKED,
            subject=record_id,
            details=linked_details(report_id=report_id, from_record=from_record, document=document, note=note_part),
        )
        if document is not None:
            ctx.db.attach_artifact(session, record_id, document)
        ctx.db.move_report(session, report_id, record_id, event.seq)
        if note_part is not None:
            ctx.db.add_part(session, record_id, "note", note_part, event.seq)
    return LinkResult(report_id=report_id, from_record=from_record, record_id=record_id, moved=True)


def link_suggestions(ctx: Context, record_id: str | None = None) -> list[LinkSuggestion]:
    """Reports that look like they are about media captured on another record (same URL, or
    a link card with the captured item's title); with *record_id*, those that involve that
    record.  See :mod:`evidence_catalog.ingest.links`; nothing is changed."""
    from evidence_catalog.ingest.links import suggest

    with ctx.db.read() as session:
        if record_id is not None:
            common.check_record_exists(ctx, session, record_id)
        found = suggest(ctx.db.reports(session), list(ctx.db.captures(session)))
    if record_id is not None:
        found = [s for s in found if record_id in (s.record_id, s.report_record)]
    return found


def _categories(ctx: Context) -> list[Category]:
    """The catalog's categories (read only when a filter names one)."""
    from evidence_catalog.operations.judging import categories

    return categories(ctx)


def record_filter(
    ctx: Context,
    *,
    status: str | None = None,
    category: str | None = None,
    tags: Sequence[str] = (),
    flags: Sequence[str] = (),
    bbox: tuple[float, float, float, float] | None = None,
    since: dt.datetime | dt.date | str | None = None,
    until: dt.datetime | dt.date | str | None = None,
) -> RecordFilter:
    """Criteria on a record's current state, checked: its status, a claim's category, tags,
    flags, a claim's place inside *bbox* (west, south, east, north), a claim's alleged time
    overlapping *since*..*until* (a date is that whole day, UTC).  See
    :mod:`evidence_catalog.filters`; bad values are an :class:`InputError`."""
    checked_status = None if status is None else choice(model.VerificationStatus, status, "status")
    tags = [tags] if isinstance(tags, str) else tags  # one tag as text, as tag() takes it
    flags = [flags] if isinstance(flags, str) else flags
    checked_flags = [choice(model.SensitivityKind, f, "flag") for f in flags]
    if category is not None and category not in {c.code for c in _categories(ctx)}:
        raise InputError(f"unknown category {category!r}; see `evidence-catalog categories`", where="category")
    start = parse_since(since)
    end = None if until is None else parse_time(until, where="until", end_of_day=True)
    try:
        return RecordFilter(
            status=checked_status,
            category=category,
            tags=checked_tags(tags),
            flags=checked_flags,
            bbox=bbox,
            since=start,
            until=end,
        )
    except ValueError as exc:
        raise InputError(str(exc), where="filter") from exc


def find_records(
    ctx: Context,
    criteria: RecordFilter | None = None,
    *,
    status: str | None = None,
    category: str | None = None,
    tags: Sequence[str] = (),
    flags: Sequence[str] = (),
    bbox: tuple[float, float, float, float] | None = None,
    since: dt.datetime | dt.date | str | None = None,
    until: dt.datetime | dt.date | str | None = None,
    after: str | None = None,
    limit: int | None = None,
    page_size: int,
) -> list[model.EvidenceRecord]:
    """The records that meet every criterion, oldest first, read *page_size* at a time; see
    :meth:`evidence_catalog.Catalog.find_records`."""
    given = any(v for v in (status, category, tags, flags, bbox, since, until))
    if criteria is not None and given:
        raise InputError("give a RecordFilter or criteria, not both", where="filter")
    wanted = criteria or record_filter(
        ctx, status=status, category=category, tags=tags, flags=flags, bbox=bbox, since=since, until=until
    )
    check_limit(limit)
    found: list[model.EvidenceRecord] = []
    for record in records(ctx, after=after, page_size=page_size):
        if wanted.matches(record):
            found.append(record)
            if limit is not None and len(found) >= limit:
                break
    return found


def record(ctx: Context, record_id: str) -> model.EvidenceRecord:
    """The whole record with this id; :class:`NotFoundError` if there is none."""
    check_record_id(record_id)
    with ctx.db.read() as session:
        return ctx.db.record(session, record_id)


def has_record(ctx: Context, record_id: str) -> bool:
    """Tell whether a record with this id exists (a malformed id is an :class:`InputError`)."""
    check_record_id(record_id)
    return ctx.db.record_exists_now(record_id)


def record_ids(ctx: Context, *, after: str | None = None, limit: int | None = None) -> list[str]:
    """Record ids, oldest first: all, or a page of at most *limit* after the id *after*."""
    check_limit(limit)
    if after is not None:
        check_record_id(after, where="after")
    with ctx.db.read() as session:
        return ctx.db.record_ids(session, after=after, limit=limit)


def records_with_artifact(ctx: Context, sha256: str) -> list[str]:
    """The ids of the records that hold the artifact with this SHA-256 (an indexed lookup)."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256 or ""):
        raise InputError(f"{sha256!r} is not a SHA-256 (64 lower-case hex digits)", where="sha256")
    return ctx.db.records_holding_now(sha256)


def records(
    ctx: Context, named: Sequence[str] | None = None, *, after: str | None = None, page_size: int
) -> Iterator[model.EvidenceRecord]:
    """Records oldest first: those *named* (each must exist), or all of them (after the id
    *after*, if given), read *page_size* at a time -- a million records are never in memory
    at once."""
    if named is not None:
        for record_id in named:
            yield record(ctx, record_id)
        return
    while True:
        page = record_ids(ctx, after=after, limit=page_size)
        if not page:
            return
        yield from read_page(ctx, page)
        after = page[-1]


def read_page(ctx: Context, record_ids: Sequence[str]) -> list[model.EvidenceRecord]:
    """The records named, read together (a few queries for the lot); a
    :class:`ValidationError` names the first that cannot be read."""
    with ctx.db.read() as session:
        return list(ctx.db.records(session, record_ids))


def readable_records(
    ctx: Context,
    *,
    after: str | None = None,
    only: Sequence[str] | None = None,
    on_unreadable: Callable[[str, EvidenceError], object] | None = None,
    page_size: int,
) -> Iterator[model.EvidenceRecord]:
    """Every record that can be read, oldest first (after the id *after*, if given), or those
    of *only* (in its order), read *page_size* at a time; *on_unreadable* is called with the
    id and the error of each record that cannot be read, and the rest are still read -- one
    damaged row must not hide the rest of a catalog."""
    remaining = None if only is None else [i for i in only if after is None or i > after]
    while True:
        if remaining is None:
            page = record_ids(ctx, after=after, limit=page_size)
        else:
            page, remaining = remaining[:page_size], remaining[page_size:]
        if not page:
            return
        try:
            yield from read_page(ctx, page)  # read whole before the first is given: no record twice
        except ValidationError:
            for record_id in page:  # find the damaged one(s); read the others one by one
                try:
                    yield record(ctx, record_id)
                except ValidationError as exc:
                    if on_unreadable is not None:
                        on_unreadable(record_id, exc)
        after = page[-1]


def history(ctx: Context, subject: str | None = None) -> list[model.CustodyEvent]:
    """The custody log in order, or only the events about *subject* (a record id)."""
    with ctx.db.read() as session:
        return list(ctx.db.events(session, subject))


def artifact_path(ctx: Context, sha256: str) -> Path:
    """Where the stored bytes of an artifact are (read-only); only for blobs on this
    machine's file system -- :meth:`open_artifact` reads them wherever they are."""
    path = ctx.blobs.local_path(sha256)
    if path is None:
        raise InputError("blobs are in object storage; read them with open_artifact()", where=ctx.blobs.location)
    return path


def open_artifact(ctx: Context, sha256: str) -> BinaryIO:
    """Open the stored bytes of an artifact for reading, wherever the blob store is."""
    return ctx.blobs.open(sha256)
