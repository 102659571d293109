"""``similar``: the images and videos of the catalog near a record, an artifact or a file, by
their perceptual hashes.

The hashes are stored by the analysis of each image or video (``perceptual_hash``, see
:mod:`evidence_catalog.store.hashes`); the search is done in memory by
:class:`evidence_catalog.similarity.HashIndex`, which this module keeps for each open catalog:
filled from the table the first time, then given only the rows written since at each call, so a
notebook or a viewer that asks many times reads the table once.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evidence_catalog.analysis import DEFAULT_MAX_DISTANCE, MIN_QUALITY, PDQ, PDQ_BITS, PerceptualHash
from evidence_catalog.errors import CatalogDatabaseError, InputError
from evidence_catalog.model import is_record_id
from evidence_catalog.operations.common import check_limit, check_record_exists
from evidence_catalog.operations.context import Context
from evidence_catalog.paths import display_path
from evidence_catalog.store.hashes import StoredHash, offset_ms

if TYPE_CHECKING:
    from evidence_catalog.results import SimilarMatch
    from evidence_catalog.similarity import HashIndex, Probe

#: How many matches :func:`similar` gives when not told.
DEFAULT_LIMIT = 100
#: How many matching pairs of hashes each match lists when not told (``frames_matched`` counts all).
DEFAULT_FRAMES = 10

_SHA256 = re.compile(r"[0-9a-f]{64}")


class _Kept:
    """A catalog's index and the lock that lets one thread at a time catch it up and search it."""

    def __init__(self, index: HashIndex) -> None:
        self.index = index
        self.lock = threading.Lock()


#: The index of each open catalog's database (dropped with the database).
_INDEXES: weakref.WeakKeyDictionary[Any, _Kept] = weakref.WeakKeyDictionary()
_INDEXES_LOCK = threading.Lock()


def _kept(ctx: Context) -> _Kept:
    from evidence_catalog.similarity import HashIndex

    with _INDEXES_LOCK:
        kept = _INDEXES.get(ctx.db)
        if kept is None:
            kept = _INDEXES[ctx.db] = _Kept(HashIndex())
        return kept


def catch_up(ctx: Context, session: Any, index: HashIndex) -> int:
    """Give *index* the hash rows written after the last it has, in the read transaction
    *session*; how many rows were read.  A damaged row is a :class:`CatalogDatabaseError`
    naming it (the index keeps what it had before that batch)."""
    read = 0
    while True:
        rows = ctx.db.hash_rows_after(session, index.last_id)
        if not rows:
            return read
        try:
            index.add(rows)
        except ValueError as exc:
            raise _damaged(exc) from exc
        read += len(rows)


def similar(
    ctx: Context,
    target: str,
    *,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    limit: int | None = DEFAULT_LIMIT,
    frames: int | None = DEFAULT_FRAMES,
) -> tuple[SimilarMatch, ...]:
    """The images and videos whose perceptual hashes (PDQ) are within *max_distance* bits (of
    256) of *target*'s: the catalog's near duplicates of it, best first.

    *target* is a record id (the hashes of every analysed image and video the record holds;
    that record is left out of the results), an artifact's SHA-256 (its hashes; that artifact
    is left out), or the path of a file (an image or video; hashed now unless the catalog has
    its bytes analysed already; nothing is left out, so the file's own record is found at
    distance 0).  A name that is a record id or a SHA-256 is taken as one: write a file of that
    name ``./NAME``.

    Only hashes of quality 50 or more are matched, on both sides (a near-uniform picture, a
    black frame, matches everything).  The default distance, 31, is PDQ's customary threshold:
    lower it for fewer, closer matches.

    One :class:`SimilarMatch` per record holding an artifact that matched (its hashes are of
    its bytes: every record holding them is named, whichever the analysis was stored on),
    ordered by distance (the least of its pairs of hashes), then record id, then artifact
    SHA-256; at most *limit* of them (``None``: all).  Each lists the pairs that matched --
    which of the target's hashes (its artifact and, for a video, the frame's offset) met which
    stored hash (for a video, the offset of the frame) and at what distance -- best first, at
    most *frames* of them (``None``: all), with the number in all.  The same answer on SQLite
    and PostgreSQL: the database only stores the hashes; the search is exact and done in memory
    (kept for the catalog while it is open, and brought up to date at each call).

    An :class:`InputError` when *target* is none of these, or has no hash to look for (a record
    with no analysed image or video, an artifact not analysed, a file that is not an image or
    video); a :class:`NotFoundError` for a record id no record has; a
    :class:`CatalogDatabaseError` when a stored hash row is damaged.
    """
    from evidence_catalog.similarity import check_distance, rank

    try:
        check_distance(max_distance)
    except ValueError as exc:
        raise InputError(
            f"max distance must be a whole number of bits from 0 to {PDQ_BITS}, not {max_distance!r}",
            where="max_distance",
        ) from exc
    check_limit(limit)
    if frames is not None and (isinstance(frames, bool) or not isinstance(frames, int) or frames < 1):
        raise InputError(f"frames must be a whole number of at least 1, not {frames!r}", where="frames")
    exclude_record = exclude_artifact = None
    if is_record_id(target):
        with ctx.db.read() as session:
            probes = _record_probes(ctx, session, target)
        exclude_record = target
    elif _SHA256.fullmatch(target):
        with ctx.db.read() as session:
            probes = _artifact_probes(ctx, session, target)
        exclude_artifact = target
    else:
        probes = _file_probes(ctx, target)
    # One thread at a time brings the index up to date and searches it; a file is hashed, and
    # the hashes looked for are read, before (a video's decoding holds up no other search).
    kept = _kept(ctx)
    with kept.lock:
        with ctx.db.read() as session:
            catch_up(ctx, session, kept.index)
        pairs = kept.index.matches(probes, max_distance, exclude_artifact=exclude_artifact)
    with ctx.db.read() as session:
        return rank(
            pairs,
            lambda artifacts: ctx.db.holders(session, artifacts),
            exclude_record=exclude_record,
            limit=limit,
            frames=frames,
        )


def _usable(rows: Sequence[StoredHash]) -> list[Probe]:
    from evidence_catalog.similarity import Probe, matchable

    try:
        return [
            Probe(hash=row.hash, sha256=row.artifact_sha256, offset_ms=row.offset_ms) for row in rows if matchable(row)
        ]
    except ValueError as exc:
        raise _damaged(exc) from exc


def _damaged(exc: ValueError) -> CatalogDatabaseError:
    """The error for a perceptual hash row no writer of this library makes."""
    return CatalogDatabaseError(f"catalog database: {exc}; the near-duplicate search cannot trust the table")


def _record_probes(ctx: Context, session: Any, record_id: str) -> list[Probe]:
    check_record_exists(ctx, session, record_id, where="target")
    rows = ctx.db.hashes_held_by(session, record_id)
    if not rows:
        raise InputError(
            f"record {record_id} holds no analysed image or video (analyse its media first)", where="target"
        )
    probes = _usable(rows)
    if not probes:
        raise InputError(
            f"the images and videos of record {record_id} have no hash good enough to match on"
            f" (all of quality under {MIN_QUALITY}: near-uniform pictures)",
            where="target",
        )
    return probes


def _artifact_probes(ctx: Context, session: Any, sha256: str) -> list[Probe]:
    rows = ctx.db.hashes_of_artifact(session, sha256)
    if not rows:
        known = ctx.db.artifact(session, sha256) is not None
        raise InputError(
            f"artifact {sha256} has not been analysed (no perceptual hash): analyse it first"
            if known
            else f"no artifact {sha256} in the catalog (give the path of a file to look for one outside it)",
            where="target",
        )
    probes = _usable(rows)
    if not probes:
        raise InputError(
            f"artifact {sha256} has no hash good enough to match on (all of quality under {MIN_QUALITY})",
            where="target",
        )
    return probes


def _file_probes(ctx: Context, target: str) -> list[Probe]:
    from evidence_catalog.hashing import hash_file
    from evidence_catalog.similarity import Probe

    path = Path(target)
    where = display_path(path)
    if not path.is_file():
        raise InputError("not a record id, an artifact SHA-256 (64 lower-case hex digits) or a file", where=where)
    try:
        digests, _ = hash_file(os.fsencode(path))
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror or exc})", where=where) from exc
    sha256 = digests.sha256
    with ctx.db.read() as session:
        stored = ctx.db.hashes_of_artifact(session, sha256)
    if stored:  # the catalog has these very bytes analysed: their hashes, not new ones
        probes = _usable(stored)
        if not probes:
            raise InputError(f"the file has no hash good enough to match on (quality under {MIN_QUALITY})", where=where)
        return probes
    return [
        Probe(hash=bytes.fromhex(h.value), sha256=sha256, offset_ms=offset_ms(h.offset_s))
        for h in _hash_file(path, where)
    ]


def _hash_file(path: Path, where: str) -> tuple[PerceptualHash, ...]:
    """The usable perceptual hashes of the image or video at *path*, made now."""
    from evidence_catalog.extract.mediatype import sniff_media_type

    try:
        media_type = sniff_media_type(path)
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror or exc})", where=where) from exc
    if not media_type.startswith(("image/", "video/")):
        raise InputError(f"not an image or a video (its bytes say {media_type})", where=where)
    # The media analysis's adapter (PDQ through pdqhash; video frames in a child process),
    # imported here, where a file is hashed.  By name until it is merged: then a plain import.
    from evidence_catalog.extract import perceptual

    with tempfile.TemporaryDirectory(prefix="evidence-catalog-similar-") as work:
        made = perceptual.perceptual_hashes(path, media_type, work=Path(work))
    usable = tuple(h for h in made.hashes if h.usable and h.algorithm == PDQ)
    if not usable:
        why = "; ".join(made.errors) if made.errors else f"every hash is of quality under {MIN_QUALITY}"
        raise InputError(f"no perceptual hash good enough to match on could be made of the file ({why})", where=where)
    return usable
