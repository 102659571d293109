"""Housekeeping: what an interrupted operation leaves in the catalog folder that no record claims,
found and, when asked, removed (and the removal logged).

Every function takes the operation's :class:`~evidence_catalog.operations.context.Context`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evidence_catalog.custody import Action
from evidence_catalog.errors import CatalogError, IntegrityError, StorageError
from evidence_catalog.operations import common, log_key
from evidence_catalog.operations.common import WORK_DIR, remove_if_abandoned
from evidence_catalog.operations.context import Context
from evidence_catalog.paths import display_path
from evidence_catalog.results import FSCK_GRACE_SECONDS, FsckEntry, FsckReport


def fsck_entry(path: Path, root: Path, now: float, *, sha256: str | None = None) -> FsckEntry:
    """What fsck lists of *path* (relative to *root*): its size (a folder's: of every file in it)
    and its age at *now*; zero for both when it cannot be read (gone meanwhile)."""
    try:
        info = path.lstat()
        size = info.st_size if not path.is_dir() else sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir())
        age = max(0.0, now - info.st_mtime)
    except OSError:
        size, age = 0, 0.0
    return FsckEntry(path=path.relative_to(root).as_posix(), size=size, age_seconds=age, sha256=sha256)


def fsck(ctx: Context, *, remove: bool = False, grace_seconds: float = FSCK_GRACE_SECONDS) -> FsckReport:
    """Find what an interrupted operation can leave in the catalog folder without any record
    claiming it: *orphaned blobs* (stored bytes no artifact row names -- an import or add
    killed between storing the bytes and committing its records) and *unfinished temporary
    files* (``blobs/tmp/*.part``, the work areas of captures and analyses in ``tmp``).
    Nothing a record claims is ever touched, and nothing younger than *grace_seconds*
    (another process may be about to commit it) is removed.  With *remove*, what is older is
    deleted, and the removal is logged (``catalog.fsck``: each file's path, size and, for a
    blob, SHA-256).  Quarantined blobs (damaged copies moved aside, kept as evidence of the
    damage) are listed, never removed.
    """
    now = time.time()
    with ctx.db.read() as session:
        known = {sha for sha, _, _ in ctx.db.artifact_digests(session)}
    orphans = [e for e in ctx.blobs.stored(now) if e.sha256 not in known]
    temporary = list(ctx.blobs.temporary(now))
    work = ctx.path / WORK_DIR
    if work.is_dir():
        temporary += [fsck_entry(path, ctx.path, now) for path in sorted(work.iterdir())]
    quarantined = tuple(ctx.blobs.quarantined(now))
    unlogged = _unlogged(ctx, quarantined) if quarantined else ()
    removed: list[FsckEntry] = []
    if remove:
        common.check_writable(ctx, "; nothing can be removed from it")
        log_key.check_signing_key(ctx)  # the removal must be logged: refused before anything is deleted
        # Removal holds the write lock throughout, and writers check under that lock that the
        # bytes they catalogue are still stored (``common.add_artifact``): a blob is either claimed
        # before this looks (kept) or found missing by its claimer (which fails cleanly).
        # The removal is logged in the same transaction.
        try:
            with ctx.write() as session:
                remove_unfinished(ctx, session, (*orphans, *temporary), grace_seconds, removed)
                if removed:
                    listed = [{"path": e.path, "size": e.size, "sha256": e.sha256} for e in removed]
                    ctx.log_event(Action.CATALOG_FSCK, {"removed": listed}, session)
        except (StorageError, IntegrityError, CatalogError) as exc:
            if not removed:
                raise
            # Deleting cannot be rolled back: say what is gone, since the log cannot.
            gone = ", ".join(e.path for e in removed[:5]) + (", ..." if len(removed) > 5 else "")
            raise StorageError(
                f"{len(removed)} unclaimed file(s) were removed ({gone}), but the removal could not be"
                f" logged ({exc}); keep this message with the catalog's records",
                where=display_path(ctx.path),
            ) from exc
    return FsckReport(
        orphaned_blobs=tuple(orphans),
        temporary=tuple(temporary),
        quarantined=quarantined,
        removed=tuple(removed),
        unlogged=unlogged,
    )


def _unlogged(ctx: Context, quarantined: Sequence[FsckEntry]) -> tuple[FsckEntry, ...]:
    """The quarantined copies no custody event names (neither a ``copies.quarantined`` event
    nor an ``artifact.added`` one's ``damaged_copy_quarantined``), nor this process is about to:
    moved aside by a process killed before its transaction said so, by a version before
    operations other than ``add`` said so, or put there by hand.  The events that name copies
    are read once (those whose details hold ``quarantine/``)."""
    actions = (Action.COPIES_QUARANTINED, Action.ARTIFACT_ADDED)
    named = {kept_as.rsplit("/", 1)[-1] for _, kept_as in ctx.blobs.moved}
    with ctx.db.read() as session:
        for details in ctx.db.event_details_holding(session, actions, "quarantine/"):
            if not isinstance(details, dict):
                continue
            copies = details.get("copies")
            kept = [c.get("kept_as") for c in copies if isinstance(c, dict)] if isinstance(copies, list) else []
            kept.append(details.get("damaged_copy_quarantined"))
            named.update(k.rsplit("/", 1)[-1] for k in kept if isinstance(k, str))
    return tuple(entry for entry in quarantined if entry.path.rsplit("/", 1)[-1] not in named)


def remove_unfinished(
    ctx: Context, session: Any, entries: Sequence[FsckEntry], grace_seconds: float, removed: list[FsckEntry]
) -> None:
    """Delete the listed orphans and temporary files older than *grace_seconds* that no
    artifact claims (checked again in *session*, the write transaction); each one deleted
    is appended to *removed* at once (so that a failure midway still knows them)."""
    for entry in entries:
        if entry.age_seconds < grace_seconds:
            continue
        if entry.sha256 is not None and ctx.db.artifact(session, entry.sha256) is not None:
            continue  # claimed meanwhile by another process: keep it
        try:
            if entry.path.startswith(f"{WORK_DIR}/"):
                target = ctx.path / entry.path
                if target.is_dir() and not target.is_symlink():
                    remove_if_abandoned(target, making_older_than=grace_seconds)  # only when its owner is gone
                    if target.exists():
                        continue
                else:
                    target.unlink()
            else:
                ctx.blobs.delete(entry)
        except (OSError, StorageError):
            continue
        removed.append(entry)
