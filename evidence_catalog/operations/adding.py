"""Adding files from disk: checking and expanding the paths given, storing each file's bytes, and
cataloguing them (record, artifact, acquisition and custody event) in one transaction per batch.

Group commit (the default): a batch's files are stored without syncing each, then made durable
with one sync of the blob store -- on a thread of its own, while the next files are stored --
and catalogued in one transaction that ends with one signed checkpoint.  A batch ends after
:data:`BATCH_FILES` files, or sooner once its files hold :data:`BATCH_BYTES` bytes or its first
file was stored :data:`BATCH_SECONDS` ago, or, near the end of the add, once it holds as many
files as are left (:data:`TAPER_FILES`); a file of :data:`LARGE_FILE` bytes or more is stored
only once the batch before it is committed (a slow or large file is committed promptly, and
holds back no other).  Nothing refers to stored bytes before they are durable; a killed add
leaves every committed batch catalogued and, of the files after them, at most stored bytes no
record claims (``fsck`` lists them; adding the files again uses them).

Storing and cataloguing stay on the calling thread: both are mostly Python, which one thread
at a time runs, and a storing thread waited for the interpreter after each of its many small
system calls while the other catalogued (slower than one thread doing both).  The sync is one
long system call that needs no interpreter: that one runs beside.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from evidence_catalog import model
from evidence_catalog.custody import Action
from evidence_catalog.errors import InputError
from evidence_catalog.hashing import ProgressCallback
from evidence_catalog.operations import common, log_key
from evidence_catalog.operations.adding_offload import AddPolicy, Storing
from evidence_catalog.operations.common import check_note, check_record_id, checked_tags, utf8
from evidence_catalog.operations.context import Context
from evidence_catalog.paths import display_path, recorded_path
from evidence_catalog.replay import added_details
from evidence_catalog.results import AddResult, AnalysisResult
from evidence_catalog.store.blobstore import StoredBlob
from evidence_catalog.store.database import (
    EventDraft,
    acquisition_row,
    artifact_row,
    part_row,
    record_artifact_row,
    record_row,
)
from evidence_catalog.store.jsontext import JSONText

#: Most files a transaction catalogues when adding (the default of ``batch``).
BATCH_FILES = 1000
#: A batch ends once its files hold this many bytes...
BATCH_BYTES = 256 * 1024 * 1024
#: ... or its first file was stored this many seconds ago.
BATCH_SECONDS = 2.0
#: A file at least this large is stored once the batch before it is committed.
LARGE_FILE = 16 * 1024 * 1024
#: Near the end of an add, a batch of at least this many files ends once it holds as many as
#: are left after it: the last files are committed in halving batches (500, 250, ... of the last
#: 1,000), so that the add ends soon after its last file is stored instead of syncing and
#: cataloguing a whole batch after it.
TAPER_FILES = 100

#: What ``add`` catalogues about one stored file: where it was, its bytes, their description,
#: the acquisition, and when storing it ended.
Prepared = tuple[Path, StoredBlob, model.Artifact, model.Acquisition, dt.datetime]


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
    batch: int = BATCH_FILES,
    analyze: bool = True,
    on_analyzed: Callable[[AnalysisResult], None] | None = None,
) -> list[AddResult]:
    """Add files (and, with *recursive*, directories) to the catalog.

    Every path is checked first; a bad one raises before anything is added.  Each file is
    then added as :meth:`add_file` adds it, in order, in transactions of up to *batch* files
    (group commit): a batch's files are made durable with one sync (while the next files are
    stored) before the transaction that records them, and each transaction ends with one
    signed checkpoint.  A batch also ends once its files hold 256 MiB or its first file was
    stored 2 seconds ago, and a file of 16 MiB or more is stored only once the batch before it
    is committed, so that a large or slow file is committed promptly and holds back no other.
    The last files of a large add are committed in halving batches (of at least 100 files, each
    ending once it holds as many files as are left after it), so that the add ends soon after
    its last file is stored.
    ``batch=1`` commits each file on its own (an ``fsync`` of each file and folder; much slower
    for many small files).  While batches are added, the interpreter's automatic garbage
    collection is paused (it is one for the whole process) and the young generations are
    collected after each batch; it is on again when the add ends, if it was on before.

    *on_added* is called once a file's batch has committed.  A file that cannot be read stops
    the add once the files before it are catalogued.  An interruption leaves every committed
    batch catalogued and nothing of the files after them but stored bytes no record claims
    (orphans ``fsck`` lists); adding the same files again completes the work and reuses those
    bytes.

    With *analyze* (the default), the images and videos added are then analysed as
    :meth:`analyze` does (perceptual hashes, keyframes, Content Credentials), each analysis in
    a transaction of its own after the add's, and *on_analyzed* is called with each result;
    an add interrupted before its analyses is finished by ``analyze``.
    """
    results = _add(ctx, paths, recursive, record_id, note, source_url, tags, progress, on_added, batch)
    if analyze:
        from evidence_catalog.operations.analyzing import analyze_added

        analyze_added(ctx, [(r.record_id, r.sha256, r.media_type) for r in results if r.new_on_record], on_analyzed)
    return results


def _add(
    ctx: Context,
    paths: Iterable[str | os.PathLike[str]],
    recursive: bool,
    record_id: str | None,
    note: str | None,
    source_url: str | None,
    tags: Sequence[str],
    progress: ProgressCallback | None,
    on_added: Callable[[AddResult], None] | None,
    batch: int,
) -> list[AddResult]:
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise InputError(f"batch must be a whole number of at least 1, not {batch!r}", where="batch")
    if isinstance(paths, str | bytes | os.PathLike):
        paths = [paths]  # one path, not the characters of one
    if isinstance(tags, str):
        tags = [tags]
    files = collect_files(ctx, paths, recursive=recursive)
    results: list[AddResult] = []
    noted: set[str] = set()  # files that end up on one record share the note: kept once

    def done(added: Sequence[AddResult]) -> None:
        for result in added:
            results.append(result)
            if on_added is not None:
                on_added(result)

    if batch == 1 or len(files) <= 1:
        for path in files:
            done(add_batch(ctx, [path], record_id, note, source_url, tags, progress, noted))
        return results
    checked = check_additions(ctx, record_id, tags, note, source_url)
    batches = GroupCommit(
        lambda prepared: done(commit_batch(ctx, prepared, record_id, checked, note, noted, sync=False))
    )
    policy = AddPolicy(store_added_file, prepare_stored, LARGE_FILE, BATCH_BYTES)
    storing = Storing.begin(ctx, files, source_url, progress, batch, policy)  # its worker forked before any thread
    # With a worker, the first batches are smaller (100, 200, 400... files): cataloguing starts
    # while the worker stores the rest, instead of after it has stored a whole batch.
    limit = batch if storing.pool is None else min(batch, TAPER_FILES)
    try:
        with common.collections_paused() as paused, batches:
            batches.collect = paused
            for index in range(len(files)):
                batches.commit_synced()  # a batch synced meanwhile is committed at once
                info = storing.stat(index)  # None: storing the file says why
                if info is not None and info.st_size >= LARGE_FILE:
                    batches.seal(ctx, wait=True)  # the files before it are not held back
                elif batches.due():
                    batches.seal(ctx)
                try:
                    prepared = storing.prepared(index, info)
                except Exception:
                    batches.seal(ctx, wait=True)  # the files before it are catalogued, then it is said
                    raise
                batches.add(prepared)
                held, left = len(batches.pending), len(files) - index - 1
                if held >= limit or batches.size >= BATCH_BYTES or batches.due() or TAPER_FILES <= held >= left:
                    batches.seal(ctx)
                    limit = min(batch, 2 * limit)
            batches.seal(ctx, wait=True)
    finally:
        storing.close()
    return results


class GroupCommit:
    """The batches of an add: the one being filled (:attr:`pending`), and the one before it
    while its bytes are made durable by one sync of the blob store on a thread of its own
    (nothing but that call runs there); *commit* catalogues a batch once it is synced.  At most
    one batch is syncing: sealing the next waits for it and commits it first."""

    def __init__(self, commit: Callable[[list[Prepared]], None]) -> None:
        self.commit = commit
        self.pending: list[Prepared] = []
        self.size = 0
        self.deadline = 0.0
        self.syncing: list[Prepared] | None = None
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        #: Collect the young generations of garbage after each batch (see common.collections_paused).
        self.collect = False

    def __enter__(self) -> GroupCommit:
        return self

    def __exit__(self, *_: object) -> None:
        if self.thread is not None:  # an add that failed: the sync ends, nothing is committed
            self.thread.join()

    def add(self, prepared: Prepared) -> None:
        """Put a stored file into the batch being filled."""
        if not self.pending:
            self.deadline = time.monotonic() + BATCH_SECONDS
        self.pending.append(prepared)
        self.size += prepared[1].size

    def due(self) -> bool:
        """Whether the batch being filled has waited long enough."""
        return bool(self.pending) and time.monotonic() >= self.deadline

    def seal(self, ctx: Context, *, wait: bool = False) -> None:
        """End the batch being filled: start syncing it (after committing the one before);
        with *wait*, commit it before returning."""
        if self.pending:
            self.commit_synced(wait=True)
            self.syncing, self.pending, self.size = self.pending, [], 0
            self.error = None
            self.thread = threading.Thread(target=self._sync, args=(ctx,), name="evidence-catalog-sync", daemon=True)
            self.thread.start()
        if wait:
            self.commit_synced(wait=True)

    def commit_synced(self, *, wait: bool = False) -> None:
        """Commit the batch that was syncing, once its sync is over (with *wait*, wait for
        it); raise what the sync raised (nothing of the batch is committed then)."""
        if self.thread is None or (not wait and self.thread.is_alive()):
            return
        self.thread.join()
        synced, self.syncing, self.thread = self.syncing, None, None
        if self.error is not None:
            raise self.error
        assert synced is not None
        self.commit(synced)
        if self.collect:
            gc.collect(1)  # what the batch left in reference cycles (its objects are gone)

    def _sync(self, ctx: Context) -> None:
        try:
            ctx.blobs.sync()
        except BaseException as exc:  # noqa: BLE001 -- raised on the calling thread
            self.error = exc


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
    analyze: bool = True,
    on_analyzed: Callable[[AnalysisResult], None] | None = None,
) -> AddResult:
    """Add one file: store its bytes, describe them, and log who added them when.

    Identical bytes already in the catalog are not stored again; the record that holds them
    (or *record_id*) gains a new acquisition and custody event.  *noted*, when given, holds
    the records that already received *note* in the same batch (it is not added twice) and
    gains this file's record.  With *analyze*, an image or video new on its record is then
    analysed, as :meth:`add` does.
    """
    [result] = add_batch(ctx, [path], record_id, note, source_url, tags, progress, noted)
    if analyze and result.new_on_record:
        from evidence_catalog.operations.analyzing import analyze_added

        analyze_added(ctx, [(result.record_id, result.sha256, result.media_type)], on_analyzed)
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
    checked = check_additions(ctx, record_id, tags, note, source_url)
    # A batch of several files is flushed to disk with one sync before the transaction that
    # claims them (instead of an fsync per file and folder); a single file on its own.
    defer = len(paths) > 1
    prepared = [store_added_file(ctx, Path(os.path.abspath(p)), source_url, progress, defer) for p in paths]
    return commit_batch(ctx, prepared, record_id, checked, note, noted, sync=defer)


def check_additions(
    ctx: Context, record_id: str | None, tags: Sequence[str], note: str | None, source_url: str | None
) -> tuple[str, ...]:
    """Refuse, before anything is stored, an addition the log key cannot sign or whose record,
    note, source URL or tags are not valid; return the tags as they are kept."""
    log_key.check_signing_key(ctx)  # before anything is stored
    if record_id is not None:
        check_record_id(record_id)
    checked = checked_tags(tags)
    check_note(note)
    if source_url is not None:
        utf8(source_url, "source URL")
    if record_id is not None:
        with ctx.db.read() as session:
            common.check_record_exists(ctx, session, record_id, where="record")
    return checked


def commit_batch(
    ctx: Context,
    prepared: Sequence[Prepared],
    record_id: str | None,
    tags: tuple[str, ...],
    note: str | None,
    noted: set[str] | None,
    *,
    sync: bool,
) -> list[AddResult]:
    """Catalogue stored files in one transaction -- after one sync of the blob store (*sync*:
    some were stored without syncing each), so that no record names bytes not yet on disk."""
    if sync:
        ctx.blobs.sync()
    with ctx.write() as session:
        results = catalogue_files(ctx, session, prepared, record_id, tags, note, noted)
    if noted is not None and note is not None:
        noted.update(r.record_id for r in results)
    return results


def store_added_file(
    ctx: Context,
    path: Path,
    source_url: str | None,
    progress: ProgressCallback | None,
    defer_sync: bool = False,
    info: os.stat_result | None = None,
) -> Prepared:
    """Put one file's bytes in the blob store and describe them (before any transaction:
    the slow part, done without holding the catalog's write lock); *info*: the file's
    ``stat``, when just made."""
    text = str(path)
    where = text if text.isprintable() else display_path(path)  # as display_path shows it
    started_at = ctx.clock()
    try:
        if info is None:
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
    return prepare_stored(ctx, path, blob, common.describe(ctx, blob), info, source_url, started_at)


def prepare_stored(
    ctx: Context,
    path: Path,
    blob: StoredBlob,
    artifact: model.Artifact,
    info: os.stat_result,
    source_url: str | None,
    started_at: dt.datetime,
) -> Prepared:
    """What ``add`` catalogues about a file stored since *started_at* (whose ``stat`` before
    it was read is *info*): its acquisition, ended now."""
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
    prepared: Sequence[Prepared],
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
    done: list[tuple[AddResult, model.Acquisition, model.Note | None, Any]] = []
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
        details = {
            **added_details(record=record, artifact=artifact, acquisition=acquisition, tags=tags, note=note_part),
            # a stored copy that no longer matched its address was replaced by these bytes
            "damaged_copy_quarantined": blob.quarantined,
        }
        drafts.append(
            EventDraft(at=ended_at, actor=ctx.operator, action=Action.ARTIFACT_ADDED, subject=target, details=details)
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
            media_type=artifact.media_type,
        )
        done.append((result, acquisition, note_part, details["acquisition"]))
    # The acquisition's document, made and written once for its event and its row.
    written = [{"acquisition": JSONText(body)} for *_, body in done]
    events = ctx.db.append_events(session, drafts, written=written)
    for (result, acquisition, note_part, _), event, texts in zip(done, events, written, strict=True):
        rows["acquisition"].append(acquisition_row(result.record_id, acquisition, event.seq, body=texts["acquisition"]))
        if note_part is not None:
            rows["record_part"].append(part_row(result.record_id, "note", note_part, event.seq, 0))
    rows["artifact"] = list(new_artifacts.values())
    ctx.db.insert_rows(session, rows)
    return [result for result, _, _, _ in done]


def identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def expand(path: Path, *, recursive: bool, skip: tuple[int, int] | None) -> Iterator[Path]:
    try:
        info = os.stat(path)
    except FileNotFoundError as exc:
        if os.path.islink(path):
            raise InputError("broken symbolic link", where=display_path(path)) from exc
        raise InputError("no such file or directory", where=display_path(path)) from exc
    except PermissionError as exc:
        raise InputError("permission denied", where=display_path(path)) from exc
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: a symbolic link that points at itself
            raise InputError("symbolic link loop", where=display_path(path)) from exc
        raise InputError(exc.strerror or str(exc), where=display_path(path)) from exc
    except ValueError as exc:  # given to the library: no file name holds a NUL
        raise InputError("is not a file name (it holds a NUL character)", where=display_path(path)) from exc
    if stat.S_ISDIR(info.st_mode):
        if not recursive:
            raise InputError("is a directory (use recursive=True to add its files)", where=display_path(path))
        yield from walk(path, ancestors=[(info.st_dev, info.st_ino)], skip=skip)
        return
    yield check_file(path, info)


def check_file(path: Path, info: os.stat_result) -> Path:
    """*path* (whose ``stat`` is *info*) when it is a regular file this process can read."""
    if not stat.S_ISREG(info.st_mode):
        raise InputError("not a regular file", where=display_path(path))
    if not os.access(path, os.R_OK):
        raise InputError("permission denied", where=display_path(path))
    try:
        # Opened and closed only (without blocking, should it have become a FIFO meanwhile).
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror})", where=display_path(path)) from exc
    return path


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
            yield from expand(path, recursive=False, skip=skip)  # says why
            continue
        if stat.S_ISDIR(info.st_mode):
            identity = (info.st_dev, info.st_ino)
            if identity == skip:
                continue
            if identity in ancestors:
                raise InputError("symbolic link loop (points back at a directory above it)", where=display_path(path))
            yield from walk(path, ancestors=[*ancestors, identity], skip=skip)
        else:
            yield check_file(path, info)
