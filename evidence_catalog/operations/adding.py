"""Adding files from disk: checking and expanding the paths given, storing each file's bytes, and
cataloguing them (record, artifact, acquisition and custody event) in one transaction per batch."""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from evidence_catalog import model
from evidence_catalog.custody import Action, added_details
from evidence_catalog.errors import InputError
from evidence_catalog.hashing import ProgressCallback
from evidence_catalog.operations import common, log_key
from evidence_catalog.operations.common import check_note, check_record_id, checked_tags, utf8
from evidence_catalog.operations.context import Context
from evidence_catalog.paths import display_path, recorded_path
from evidence_catalog.results import AddResult
from evidence_catalog.store.blobstore import StoredBlob
from evidence_catalog.store.database import (
    EventDraft,
    acquisition_row,
    artifact_row,
    part_row,
    record_artifact_row,
    record_row,
)


def collect_files(ctx: Context, paths: Iterable[str | os.PathLike[str]], *, recursive: bool = False) -> list[Path]:
    """Expand and check *paths* before anything is added.

    Raises :class:`InputError` naming the path for a missing or unreadable file, a directory
    without *recursive*, a special file, a broken symbolic link or a symbolic-link loop.
    The catalog's own directory is never collected.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    own = identity(ctx.path)
    for given in paths:
        path = Path(os.path.abspath(given))
        for file in expand(path, recursive=recursive, skip=own):
            if file not in seen:
                seen.add(file)
                found.append(file)
    return found


def add(
    ctx: Context,
    paths: Iterable[str | os.PathLike[str]],
    *,
    recursive: bool = False,
    record_id: str | None = None,
    note: str | None = None,
    source_url: str | None = None,
    tags: Sequence[str] = (),
    progress: ProgressCallback | None = None,
    on_added: Callable[[AddResult], None] | None = None,
    batch: int = 1,
) -> list[AddResult]:
    """Add files (and, with *recursive*, directories) to the catalog.

    Every path is checked first; a bad one raises before anything is added.  Each file is
    then added as :meth:`add_file` adds it, in transactions of *batch* files: 1 (the
    default) commits each file on its own; a larger batch loads many small files much
    faster (one commit and one signed checkpoint per batch).  An interruption leaves every
    committed batch catalogued and nothing of the batch in progress (its stored bytes are
    orphans ``fsck`` lists); adding the same files again completes the work.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise InputError(f"batch must be a whole number of at least 1, not {batch!r}", where="batch")
    if isinstance(paths, str | bytes | os.PathLike):
        paths = [paths]  # one path, not the characters of one
    if isinstance(tags, str):
        tags = [tags]
    files = collect_files(ctx, paths, recursive=recursive)
    results: list[AddResult] = []
    noted: set[str] = set()  # files that end up on one record share the note: kept once
    for start in range(0, len(files), batch):
        added = add_batch(ctx, files[start : start + batch], record_id, note, source_url, tags, progress, noted)
        for result in added:
            results.append(result)
            if on_added is not None:
                on_added(result)
    return results


def add_file(
    ctx: Context,
    path: str | os.PathLike[str],
    *,
    record_id: str | None = None,
    note: str | None = None,
    source_url: str | None = None,
    tags: Sequence[str] = (),
    progress: ProgressCallback | None = None,
    noted: set[str] | None = None,
) -> AddResult:
    """Add one file: store its bytes, describe them, and log who added them when.

    Identical bytes already in the catalog are not stored again; the record that holds them
    (or *record_id*) gains a new acquisition and custody event.  *noted*, when given, holds
    the records that already received *note* in the same batch (it is not added twice) and
    gains this file's record.
    """
    [result] = add_batch(ctx, [path], record_id, note, source_url, tags, progress, noted)
    return result


def add_batch(
    ctx: Context,
    paths: Sequence[str | os.PathLike[str]],
    record_id: str | None,
    note: str | None,
    source_url: str | None,
    tags: Sequence[str],
    progress: ProgressCallback | None,
    noted: set[str] | None,
) -> list[AddResult]:
    """Store and describe each file, then catalogue them all in one transaction."""
    log_key.check_signing_key(ctx)  # before anything is stored
    if record_id is not None:
        check_record_id(record_id)
    tags = checked_tags(tags)
    check_note(note)
    if source_url is not None:
        utf8(source_url, "source URL")
    if record_id is not None:
        with ctx.db.read() as session:
            common.check_record_exists(ctx, session, record_id, where="record")
    # A batch of several files is flushed to disk with one sync before the transaction that
    # claims them (instead of an fsync per file and folder); a single file on its own.
    defer = len(paths) > 1
    prepared = [store_added_file(ctx, Path(os.path.abspath(p)), source_url, progress, defer) for p in paths]
    if defer:
        ctx.blobs.sync()
    with ctx.write() as session:
        results = catalogue_files(ctx, session, prepared, record_id, tags, note, noted)
    if noted is not None and note is not None:
        noted.update(r.record_id for r in results)
    return results


def store_added_file(
    ctx: Context, path: Path, source_url: str | None, progress: ProgressCallback | None, defer_sync: bool = False
) -> tuple[Path, StoredBlob, model.Artifact, model.Acquisition, dt.datetime]:
    """Put one file's bytes in the blob store and describe them (before any transaction:
    the slow part, done without holding the catalog's write lock)."""
    where = display_path(path)
    started_at = ctx.clock()
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise InputError("not a regular file", where=where)
        with open(path, "rb", buffering=0) as stream:
            blob = ctx.blobs.put_stream(common.SourceFile(stream, where), progress=progress, defer_sync=defer_sync)
    except FileNotFoundError as exc:
        raise InputError("no such file", where=where) from exc
    except PermissionError as exc:
        raise InputError("permission denied", where=where) from exc
    except IsADirectoryError as exc:
        raise InputError("is a directory", where=where) from exc
    artifact = common.describe(ctx, blob)
    ended_at = ctx.clock()
    path_text, path_b64 = recorded_path(path)
    acquisition = common.new_acquisition(
        ctx,
        model.AcquisitionMethod.ADDED_FROM_DISK,
        started_at,
        max(ended_at, started_at),
        artifact_sha256=blob.sha256,
        original_path=path_text,
        original_path_b64=path_b64,
        file_modified_at=dt.datetime.fromtimestamp(info.st_mtime, dt.UTC),
        source_url=source_url,
    )
    return path, blob, artifact, acquisition, ended_at


def catalogue_files(
    ctx: Context,
    session: Any,
    prepared: Sequence[tuple[Path, StoredBlob, model.Artifact, model.Acquisition, dt.datetime]],
    record_id: str | None,
    tags: tuple[str, ...],
    note: str | None,
    noted: set[str] | None,
) -> list[AddResult]:
    """Catalogue stored files, in order, inside the write transaction *session*: each as if
    on its own, with a few queries and one insert per table for them all (per file, they
    were most of the time a large add took)."""
    shas = [blob.sha256 for _, blob, _, _, _ in prepared]
    # Another writer may have catalogued these bytes meanwhile: its description wins, so
    # that every event about one artifact carries the same document.
    catalogued = ctx.db.artifacts(session, shas)
    holders = ctx.db.holders(session, shas) if record_id is None else {}
    if record_id is not None:
        common.check_record_exists(ctx, session, record_id, where="record")
    existing = {record_id} if record_id is not None else {ids[0] for ids in holders.values()}
    held = ctx.db.held_by(session, existing)  # what each record holds, in order
    have_tags = ctx.db.tags_of(session, existing) if tags else {}
    new_artifacts: dict[str, dict[str, Any]] = {}
    rows: dict[str, list[dict[str, Any]]] = {
        name: [] for name in ("record", "record_tag", "record_artifact", "acquisition", "record_part")
    }
    drafts: list[EventDraft] = []
    done: list[tuple[AddResult, model.Acquisition, model.Note | None]] = []
    for path, blob, artifact, acquisition, ended_at in prepared:
        sha256 = blob.sha256
        if sha256 in catalogued:
            artifact = catalogued[sha256]
        else:
            if not ctx.blobs.exists(sha256):  # see common.add_artifact
                raise common.bytes_gone(ctx, sha256)
            catalogued[sha256] = artifact
            new_artifacts[sha256] = artifact_row(artifact, ended_at)
        target, new_record = record_id, False
        if target is None:
            if sha256 in holders:
                target = holders[sha256][0]
            else:
                target, new_record = model.new_id(), True
                holders[sha256] = [target]
                held[target] = []
                have_tags[target] = set(tags)
        title = path.name if acquisition.original_path_b64 is None else display_path(path.name)
        record, note_part = common.new_parts(ctx, target, new_record, title, tags, note, noted, ended_at)
        drafts.append(
            EventDraft(
                at=ended_at,
                actor=ctx.operator,
                action=Action.ARTIFACT_ADDED,
                subject=target,
                details={
                    **added_details(
                        record=record, artifact=artifact, acquisition=acquisition, tags=tags, note=note_part
                    ),
                    # a stored copy that no longer matched its address was replaced by these bytes
                    "damaged_copy_quarantined": blob.quarantined,
                },
            )
        )
        if record is not None:
            rows["record"].append(record_row(record))
            rows["record_tag"] += [{"record_id": target, "tag": tag} for tag in record.tags]
        elif tags:
            for tag in sorted(set(tags) - have_tags[target]):
                rows["record_tag"].append({"record_id": target, "tag": tag})
                have_tags[target].add(tag)
        attached = sha256 not in held[target]
        if attached:
            entry = model.RecordArtifact(artifact=artifact)
            rows["record_artifact"].append(record_artifact_row(target, entry, len(held[target])))
            held[target].append(sha256)
        if note_part is not None and noted is not None:
            noted.add(target)  # a later file of the same batch on this record: noted once
        result = AddResult(
            path=path,
            record_id=target,
            sha256=sha256,
            size=blob.size,
            acquisition_id=acquisition.id,
            new_record=new_record,
            new_on_record=attached,
            new_bytes=blob.created,
            quarantined=blob.quarantined,
        )
        done.append((result, acquisition, note_part))
    events = ctx.db.append_events(session, drafts)
    for (result, acquisition, note_part), event in zip(done, events, strict=True):
        rows["acquisition"].append(acquisition_row(result.record_id, acquisition, event.seq))
        if note_part is not None:
            rows["record_part"].append(part_row(result.record_id, "note", note_part, event.seq, 0))
    rows["artifact"] = list(new_artifacts.values())
    ctx.db.insert_rows(session, rows)
    return [result for result, _, _ in done]


def identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def expand(path: Path, *, recursive: bool, skip: tuple[int, int] | None) -> Iterator[Path]:
    where = display_path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError as exc:
        if os.path.islink(path):
            raise InputError("broken symbolic link", where=where) from exc
        raise InputError("no such file or directory", where=where) from exc
    except PermissionError as exc:
        raise InputError("permission denied", where=where) from exc
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: a symbolic link that points at itself
            raise InputError("symbolic link loop", where=where) from exc
        raise InputError(exc.strerror or str(exc), where=where) from exc
    except ValueError as exc:  # given to the library: no file name holds a NUL
        raise InputError("is not a file name (it holds a NUL character)", where=where) from exc
    if stat.S_ISDIR(info.st_mode):
        if not recursive:
            raise InputError("is a directory (use recursive=True to add its files)", where=where)
        yield from walk(path, ancestors=[(info.st_dev, info.st_ino)], skip=skip)
        return
    if not stat.S_ISREG(info.st_mode):
        raise InputError("not a regular file", where=where)
    if not os.access(path, os.R_OK):
        raise InputError("permission denied", where=where)
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror})", where=where) from exc
    yield path


def walk(directory: Path, *, ancestors: list[tuple[int, int]], skip: tuple[int, int] | None) -> Iterator[Path]:
    try:
        entries = sorted(os.scandir(directory), key=lambda e: os.fsencode(e.name))
    except PermissionError as exc:
        raise InputError("permission denied", where=display_path(directory)) from exc
    for entry in entries:
        path = Path(entry.path)
        try:
            info = os.stat(path)
        except OSError:
            info = None
        if info is not None and stat.S_ISDIR(info.st_mode):
            identity = (info.st_dev, info.st_ino)
            if identity == skip:
                continue
            if identity in ancestors:
                raise InputError("symbolic link loop (points back at a directory above it)", where=display_path(path))
            yield from walk(path, ancestors=[*ancestors, identity], skip=skip)
        else:
            yield from expand(path, recursive=False, skip=skip)
