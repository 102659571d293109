"""What several operations share: storing and describing bytes, the records and notes an
addition makes, temporary work areas, and the checks every input goes through."""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import fcntl
import gc
import os
import shutil
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from evidence_catalog import model
from evidence_catalog.errors import EvidenceError, InputError, StorageError
from evidence_catalog.operations.context import Context
from evidence_catalog.paths import display_path
from evidence_catalog.store.blobstore import StoredBlob
from evidence_catalog.store.records import no_record
from evidence_catalog.versions import tool_agents

_E = TypeVar("_E", bound=enum.Enum)


def add_artifact(ctx: Context, session: Any, artifact: model.Artifact, *, at: dt.datetime) -> None:
    """Catalogue stored bytes (inside the write transaction *session*), after checking that
    they are still in the blob store.

    Bytes no artifact names are what ``fsck --remove`` deletes, and it deletes them only
    while holding the write lock: checked here, under the same lock, they stay until this
    transaction commits.  Bytes gone meanwhile (a concurrent ``fsck --remove`` took them as
    an orphan) fail the whole transaction -- never a record claiming bytes the store lacks.
    """
    if not ctx.blobs.exists(artifact.sha256):
        raise bytes_gone(ctx, artifact.sha256)
    ctx.db.add_artifact(session, artifact, at=at)


def bytes_gone(ctx: Context, sha256: str) -> StorageError:
    """The error for stored bytes that vanished before the record claiming them committed."""
    return StorageError(
        f"the stored bytes {sha256} were removed before they could be catalogued (a concurrent"
        " `fsck(remove=True)` took them for an orphan?); nothing was changed: run the command again",
        where=ctx.blobs.label,
    )


def check_writable(ctx: Context, refused: str) -> None:
    """Refuse (:class:`StorageError`) what would write to a catalog opened read-only, before
    anything is done: "the catalog is read-only" and *refused*, which says what cannot be
    done (``"; nothing can be linked in it"``)."""
    if ctx.db.read_only:
        raise StorageError(f"the catalog is read-only{refused}")


def remove_unclaimed(ctx: Context, created: Sequence[str]) -> None:
    """Remove blobs an import or ingest stored when its records were not written, unless a record
    (of another writer, meanwhile) holds them."""
    if not created:
        return
    # Under the write lock, as fsck removes: a writer that catalogues the same bytes either
    # committed before this looks (they are kept) or finds them gone and fails cleanly.
    # When the database cannot be written now, they stay: orphans fsck lists.
    with contextlib.suppress(EvidenceError), ctx.write() as session:
        for sha in created:
            if ctx.db.artifact(session, sha) is None:
                with contextlib.suppress(OSError, StorageError):
                    ctx.blobs.remove(sha)


def quarantined_by(blobs: Iterable[StoredBlob]) -> tuple[tuple[str, str], ...]:
    """(SHA-256, where under ``blobs/`` the damaged copy was moved) of each of *blobs* that
    replaced a damaged stored copy, in the order of their SHA-256: what an operation's result
    says (its write transaction logs them: :meth:`~evidence_catalog.operations.context.Context.write`).
    Normally none."""
    return tuple(sorted({(blob.sha256, blob.quarantined) for blob in blobs if blob.quarantined is not None}))


def describe(ctx: Context, blob: StoredBlob, media_type: str | None = None) -> model.Artifact:
    """The artifact description of stored bytes: the catalogued one when the bytes were
    already there, else sniffed and extracted from the stored copy (never from the source);
    *media_type*: the stored copy's, when it was sniffed already (by an add's worker)."""
    from evidence_catalog.extract import extract_metadata, sniff_media_type  # puremagic, exifread: not for reading

    if not blob.created:
        with ctx.db.read() as session:
            catalogued = ctx.db.artifact(session, blob.sha256)
        if catalogued is not None:
            return catalogued
    try:
        with ctx.blobs.local_copy(blob.sha256) as stored:
            if media_type is None:
                media_type = sniff_media_type(stored)
            return model.Artifact(
                digests=blob.digests,
                size=blob.size,
                media_type=media_type,
                metadata=extract_metadata(stored, media_type),
            )
    except FileNotFoundError as exc:  # removed since it was stored: by fsck --remove, as an orphan
        raise bytes_gone(ctx, blob.sha256) from exc


class SourceFile:
    """A file being added: a read error is the source's fault (an input error naming the file),
    not the blob store's."""

    def __init__(self, stream: Any, where: str) -> None:
        self.stream = stream
        self.where = where

    def readinto(self, buffer: memoryview) -> int | None:
        try:
            result: int | None = self.stream.readinto(buffer)
        except OSError as exc:
            raise InputError(f"cannot be read ({exc.strerror or exc}); nothing was stored", where=self.where) from exc
        return result


def new_parts(
    ctx: Context,
    record_id: str,
    new_record: bool,
    title: str,
    tags: tuple[str, ...],
    note: str | None,
    noted: set[str] | None,
    at: dt.datetime,
) -> tuple[model.EvidenceRecord | None, model.Note | None]:
    """The record an add or capture creates (``None`` when the record exists), and its note
    (``None`` when there is none, or the record received it earlier in the same batch)."""
    record = (
        model.EvidenceRecord(id=record_id, created_at=at, created_by=ctx.operator, title=title, tags=tags)
        if new_record
        else None
    )
    note_part = (
        None
        if note is None or (noted is not None and record_id in noted)
        else model.Note(id=model.new_id(), text=note, author=ctx.operator, written_at=at)
    )
    return record, note_part


def new_acquisition(
    ctx: Context,
    method: model.AcquisitionMethod,
    started_at: dt.datetime,
    ended_at: dt.datetime,
    *,
    acquisition_id: str | None = None,
    tools: Sequence[model.Agent] = (),
    **fields: Any,
) -> model.Acquisition:
    """An acquisition by this session's operator, made with this library (and *tools*, such
    as yt-dlp, that did the work with it); *fields* are the rest of what it records."""
    return model.Acquisition(
        id=acquisition_id or model.new_id(),
        method=method,
        started_at=started_at,
        ended_at=ended_at,
        operator=ctx.operator,
        tools=(*tool_agents(), *tools),
        **fields,
    )


@contextlib.contextmanager
def work_area(ctx: Context, name: str) -> Iterator[Path]:
    """A private, locked temporary directory inside the catalog (same file system as the
    blobs).  Areas left by a killed process are removed here, the next time anyone captures
    or analyses (or by ``fsck --remove``): nothing in them was ever recorded."""
    area = ctx.path / WORK_DIR
    lock = None
    work = area / f"capture-{name}"
    try:
        area.mkdir(exist_ok=True)
        for stale in area.iterdir():
            remove_if_abandoned(stale)
        # Made and locked under a name no cleaner looks at, then given its real name: a
        # cleaner never sees an area whose owner has not locked it yet.
        making = area / f".making-{name}"
        making.mkdir()
        lock = os.open(making / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
        fcntl.flock(lock, fcntl.LOCK_EX)
        os.rename(making, work)
    except OSError as exc:
        if lock is not None:
            os.close(lock)
        raise StorageError(f"cannot make a temporary area ({exc.strerror})", where=display_path(area)) from exc
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
        os.close(lock)


def check_url(url: str) -> str:
    """Accept an absolute http(s) URL as given (trimmed); refuse anything else, saying why."""
    if not isinstance(url, str):
        raise InputError(f"{url!r} is not a URL", where="url")
    text = utf8(url, "url").strip()
    if not text:
        raise InputError("URL is blank", where="url")
    if any(c.isspace() for c in text) or model.has_control_characters(text):
        raise InputError(f"{display_path(text)!r} contains spaces or control characters", where="url")
    shown = display_path(text)
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number from 0 to 65535
    except ValueError as exc:
        raise InputError(f"{shown!r} is not a valid URL ({exc})", where="url") from exc
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise InputError(f"{shown!r} is not an http:// or https:// URL", where="url")
    if "@" in parts.netloc:
        # The URL is recorded (custody log, info.json) for good: a password there could never be
        # taken out again, and would be in every export.
        hidden = display_path(parts._replace(netloc="…@" + parts.netloc.rpartition("@")[2]).geturl())
        raise InputError(
            f"{hidden!r} contains a user name or password, which would be recorded for good; "
            "use cookies_file for a site that needs a login",
            where="url",
        )
    try:
        (parts.hostname or "").encode("idna")  # as yt-dlp will: at most 63 characters a label
    except UnicodeError as exc:
        raise InputError(f"{shown!r} does not have a valid host name", where="url") from exc
    return text


def parse_time(value: dt.datetime | dt.date | str, *, where: str, end_of_day: bool = False) -> dt.datetime:
    """A time given by a user, in UTC: a date (``2024-03-01``, or a ``date``) is the start of
    that day in UTC -- its last microsecond with *end_of_day* -- and a time must carry its zone
    (``Z`` or ``+02:00``): a time without one would be read wrongly somewhere.  Anything else
    is an :class:`InputError` naming *where*."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = dt.date.fromisoformat(text) if len(text) == 10 else dt.datetime.fromisoformat(text)
        except ValueError:
            raise InputError(
                f"{display_path(text)!r} is not a date (2024-03-01) or a time with its zone (2024-03-01T10:00Z)",
                where=where,
            ) from None
    if not isinstance(value, dt.datetime):
        day = dt.time.max if end_of_day else dt.time()
        return dt.datetime.combine(value, day, tzinfo=dt.UTC)
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(f"{value.isoformat()} has no time zone; add Z or an offset such as +02:00", where=where)
    try:
        return model.to_utc(value)
    except ValueError as exc:
        raise InputError(str(exc), where=where) from exc


def parse_since(value: dt.datetime | dt.date | str | None, where: str = "since") -> dt.datetime | None:
    """An optional ``since`` bound (see :func:`parse_time`)."""
    return None if value is None else parse_time(value, where=where)


def utf8(text: str, where: str) -> str:
    """Refuse text that cannot be stored as UTF-8 (e.g. undecodable bytes from a command line)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"is not valid UTF-8 text: {display_path(text)}", where=where) from exc
    return text


def choice(kind: type[_E], value: Any, where: str) -> _E:
    """*value* as a member of the enumeration *kind*, or an :class:`InputError` listing them."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)  # type: ignore[attr-defined]
        raise InputError(f"unknown {where} {value!r}; use one of {allowed}", where=where) from None


def checked_tags(tags: Sequence[str]) -> tuple[str, ...]:
    cleaned = []
    for tag in tags:
        text = utf8(tag, "tag").strip()
        if not text:
            raise InputError("tag must not be blank", where="tag")
        if model.has_control_characters(text):
            raise InputError(f"tag {display_path(text)!r} contains a control character", where="tag")
        cleaned.append(text)
    return tuple(sorted(set(cleaned)))


def check_note(note: str | None) -> None:
    """Refuse a note that says nothing (blank) or cannot be stored (not UTF-8)."""
    if note is not None and not utf8(note, "note").strip():
        raise InputError("note must not be blank", where="note")


def check_record_id(record_id: str, where: str = "record") -> None:
    """Refuse (:class:`InputError` naming *where*) text that is not a record id."""
    if not model.is_record_id(record_id):
        raise InputError(f"{record_id!r} is not a record id (a UUIDv7)", where=where)


def check_record_exists(ctx: Context, session: Any, record_id: str, *, where: str | None = None) -> None:
    """Refuse (:class:`NotFoundError`) a record id no record has, as the transaction *session*
    sees the catalog."""
    if not ctx.db.record_exists(session, record_id):
        raise no_record(record_id, where=where)


def check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InputError(f"limit must be a whole number of at least 1, not {limit!r}", where="limit")


def remove_if_abandoned(work: Path, *, making_older_than: float = 3600.0) -> None:
    """Remove a work area (of a capture, an analysis ...) whose owner is gone (its lock can be
    taken).  An area still being made (``.making-``, not locked yet) is removed only when older
    than *making_older_than* seconds: ``fsck`` passes its grace period."""
    if work.name.startswith(".making-"):
        # Its owner was killed between making and naming it (or is making it right now: only
        # old ones are removed).
        with contextlib.suppress(OSError):
            if time.time() - work.stat().st_mtime >= making_older_than:
                shutil.rmtree(work, ignore_errors=True)
        return
    if not work.name.startswith("capture-") or not work.is_dir():
        return
    try:
        lock = os.open(work / ".lock", os.O_WRONLY)
    except FileNotFoundError:
        # A named area always has its lock file (made before the name): without one, its
        # owner was killed while removing it at its end (the lock file gone, the rest not).
        with contextlib.suppress(OSError):
            if time.time() - work.stat().st_mtime >= making_older_than:
                shutil.rmtree(work, ignore_errors=True)
        return
    except OSError:
        return
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(lock)
        return  # someone is capturing into it right now
    try:
        shutil.rmtree(work, ignore_errors=True)
    finally:
        os.close(lock)


#: Temporary areas of captures and analyses in progress (nothing in it is ever recorded).
WORK_DIR = "tmp"


_pause_lock = threading.Lock()
#: How many bulk operations are running with automatic garbage collection paused, and whether it was on
#: when the first of them began (it is turned on again when the last ends).
_pausing = 0
_resume = False


@contextlib.contextmanager
def collections_paused() -> Iterator[bool]:
    """Hold off the interpreter's automatic garbage collection while a bulk operation runs (a
    group-commit add, a BagIt export's payload, an ingest, an import); yield whether it was on
    (then an add collects the young generations after each batch).

    An ingest and an import keep what they read (reports, records, events, rows) to the end,
    little of it in cycles (an import: some 18 objects a record, freed when it ends), and each
    collection of the oldest generation walked it all again: an eighth of an ingest, a quarter
    of an import of 10,000 small records.

    A batch's objects live for the second or two it takes to store and catalogue it, long
    enough for the collector to move them to its oldest generation, so that a large add set
    off a full collection (of every object of the process, the libraries' own included) every
    batch or two: some 4 % of adding 10,000 small files.  Reference counting frees nearly all
    of an add's objects; the few in cycles are collected after each batch.  The collector is
    one for the whole process: concurrent operations keep it paused until the last ends, and one
    that a caller had turned off stays off.
    """
    global _pausing, _resume
    with _pause_lock:
        if _pausing == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pausing += 1
        paused = _resume
    try:
        yield paused
    finally:
        with _pause_lock:
            _pausing -= 1
            if _pausing == 0 and _resume:
                gc.enable()
