"""Near-duplicate search over perceptual hashes: the index kept in memory, the radius query, the
ranking -- done here, in one place, whatever database the hashes were stored in.

:class:`HashIndex` holds the usable hashes (quality at least
:data:`~evidence_catalog.analysis.MIN_QUALITY`, PDQ only) of the rows it is given, which come in
the order they were stored (their ids only grow): it is filled once from the whole table and
then given only the rows written since (:attr:`HashIndex.last_id`), so a process that asks many
questions reads the table once.

A query is a brute-force scan, exact: for each stored hash the Hamming distance (bits that
differ) to each hash looked for.  The 256-bit hashes are kept as four columns of 64-bit words
and scanned a block of rows at a time, so the XOR, the popcount and the sum of one block stay in
the processor's cache: over a million stored hashes one hash is looked for in about 4 ms on one
core (``benchmarks/similar.py``), as fast as faiss's exact binary index and without it.  A video
looked for with *Q* frame hashes costs *Q* scans.

:func:`rank` turns the pairs within the distance into :class:`~evidence_catalog.results.SimilarMatch`
values: one per stored (record, artifact), with the best distance of any of its pairs and the
pairs themselves, best first, at most ``frames`` of them (``frames_matched`` says how many there
were); matches ordered by distance, then record id, then artifact.  No I/O here: the rows come
from :mod:`evidence_catalog.store.hashes`, through the operation
:mod:`evidence_catalog.operations.similar`.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np
from attrs import frozen

from evidence_catalog.analysis import MIN_QUALITY, PDQ, PDQ_BITS
from evidence_catalog.results import MatchedFrame, SimilarMatch

#: A PDQ hash in bytes, and in 64-bit words.
HASH_BYTES = PDQ_BITS // 8
WORDS = HASH_BYTES // 8
#: Rows scanned at a time: four columns of 16,384 words (512 KiB) and their counts stay in cache.
BLOCK = 16_384
#: An offset kept for an image (which has none); offsets of video frames are never negative.
NO_OFFSET = -1
_RECORD_ID = np.dtype("S36")  # a record id: a UUID, 36 ASCII characters
_SHA256 = np.dtype("V32")  # an artifact's SHA-256, its 32 bytes


class HashRowLike(Protocol):
    """What the index reads of a stored hash row (:class:`evidence_catalog.store.hashes.StoredHash`)."""

    @property
    def id(self) -> int: ...
    @property
    def record_id(self) -> str: ...
    @property
    def artifact_sha256(self) -> str: ...
    @property
    def offset_ms(self) -> int | None: ...
    @property
    def quality(self) -> int: ...
    @property
    def algorithm(self) -> str: ...
    @property
    def hash(self) -> bytes: ...


@frozen
class Probe:
    """A hash looked for: its bytes, and where it was taken from (an artifact or a file's
    SHA-256, and the frame's offset in milliseconds, ``None`` for an image)."""

    hash: bytes
    sha256: str
    offset_ms: int | None


def check_distance(max_distance: int) -> None:
    """Refuse (``ValueError``) a distance that is not a whole number of bits from 0 to 256."""
    if isinstance(max_distance, bool) or not isinstance(max_distance, int) or not 0 <= max_distance <= PDQ_BITS:
        raise ValueError(f"a maximum distance is a whole number of bits from 0 to {PDQ_BITS}, got {max_distance!r}")


def hash_words(hashes: Sequence[bytes]) -> np.ndarray[Any, np.dtype[np.uint64]]:
    """Hashes of :data:`HASH_BYTES` bytes each as a ``(len(hashes), 4)`` array of 64-bit words
    (in the machine's byte order: only the bits that differ count, not their places)."""
    if any(len(h) != HASH_BYTES for h in hashes):
        raise ValueError(f"a PDQ hash is {HASH_BYTES} bytes")
    return np.frombuffer(b"".join(hashes), dtype=np.uint64).reshape(len(hashes), WORDS)


class _Grown:
    """A column of fixed-size items that grows at its end, in place (its room doubled when full),
    so that adding a few rows to a million does not copy the million."""

    def __init__(self, dtype: Any, shape: tuple[int, ...] = ()) -> None:
        self.data = np.empty((0, *shape), dtype=dtype)
        self.size = 0

    def extend(self, values: np.ndarray[Any, Any]) -> None:
        end = self.size + len(values)
        if end > len(self.data):
            bigger = np.empty((max(end, 2 * len(self.data), 1024), *self.data.shape[1:]), dtype=self.data.dtype)
            bigger[: self.size] = self.data[: self.size]
            self.data = bigger
        self.data[self.size : end] = values
        self.size = end

    def view(self) -> np.ndarray[Any, Any]:
        return self.data[: self.size]


_HEX = frozenset("0123456789abcdef")
#: Offsets kept are under 2**53 ms (285,000 years): whole numbers a float holds exactly.
_MAX_OFFSET_MS = 2**53


def matchable(row: HashRowLike) -> bool:
    """Whether a stored hash is one to match on (PDQ, 32 bytes, of quality at least
    :data:`~evidence_catalog.analysis.MIN_QUALITY`); a ``ValueError`` when its quality is not a
    whole number."""
    if type(row.quality) is not int:
        raise ValueError(f"hash row {row.id} is damaged: its quality is {row.quality!r}")
    return row.quality >= MIN_QUALITY and row.algorithm == PDQ and len(row.hash) == HASH_BYTES


def _sha_bytes(rows: Sequence[HashRowLike], shas: list[str]) -> bytes:
    """The SHA-256s *shas* (each 64 characters long, of *rows*) as bytes, 32 each; a
    ``ValueError`` naming the row whose SHA-256 is not 64 hex digits."""
    joined = "".join(shas)
    if not joined:  # the rows go on with the last artifact already known
        return b""
    if joined.isascii() and joined.isalnum() and joined == joined.lower():  # bytes.fromhex skips spaces
        with contextlib.suppress(ValueError):
            return bytes.fromhex(joined)
    damaged = next(row for row in rows if not set(row.artifact_sha256) <= _HEX)
    raise ValueError(f"hash row {damaged.id} is damaged: its artifact SHA-256 is {damaged.artifact_sha256!r}")


def _check(row: HashRowLike) -> None:
    """Refuse (``ValueError``) a row that no writer of this library makes."""
    record, sha, offset = row.record_id, row.artifact_sha256, row.offset_ms
    if not isinstance(record, str) or len(record) != 36 or not record.isascii():
        raise ValueError(f"hash row {row.id} is damaged: its record id is {record!r}")
    if not isinstance(sha, str) or len(sha) != 64:
        raise ValueError(f"hash row {row.id} is damaged: its artifact SHA-256 is {sha!r}")
    if offset is not None and (type(offset) is not int or not 0 <= offset < _MAX_OFFSET_MS):
        raise ValueError(f"hash row {row.id} is damaged: its offset is {offset!r}")


class HashIndex:
    """The usable PDQ hashes of a catalog in memory, searched exactly (see the module's text).

    Not safe for threads to change and read at once: the operation that keeps one holds a lock."""

    def __init__(self) -> None:
        #: The id of the last row given (a row at or under it is refused).
        self.last_id = 0
        #: The four 64-bit words of each hash, one column each.
        self._words = [_Grown(np.uint64) for _ in range(WORDS)]
        self._offsets = _Grown(np.int64)  # milliseconds, NO_OFFSET for an image
        self._sources = _Grown(np.int64)  # the row's (record, artifact): an index into the two below
        # Rows of one artifact are written together (one analysis): a source per run of rows
        # with the same record and artifact, not per row.
        self._source_records = _Grown(_RECORD_ID)
        self._source_artifacts = _Grown(_SHA256)

    def __len__(self) -> int:
        return self._offsets.size

    @property
    def nbytes(self) -> int:
        """The memory the index's arrays take (their room, used or not)."""
        columns = [*self._words, self._offsets, self._sources, self._source_records, self._source_artifacts]
        return sum(column.data.nbytes for column in columns)

    def add(self, rows: Sequence[HashRowLike]) -> int:
        """Take the usable PDQ hashes of *rows*, which follow :attr:`last_id` in id order; how
        many were taken.  Rows out of order, or a row no writer of this library makes (a record
        id that is not 36 ASCII characters, a SHA-256 that is not 64 hex digits, an offset out
        of range, a quality that is not a number), are a ``ValueError`` naming the row, and
        nothing of *rows* is taken."""
        if not rows:
            return 0
        ids = [row.id for row in rows]
        if not all(type(i) is int for i in ids):
            raise ValueError("a hash row's id is not a whole number")
        if ids[0] <= self.last_id or any(b <= a for a, b in itertools.pairwise(ids)):
            raise ValueError("hash rows are added in the order they were stored, each once")
        usable = [row for row in rows if matchable(row)]
        for row in usable:
            _check(row)
        if usable:
            # Everything made first, then appended: a row that fails leaves the index as it was.
            words = hash_words([row.hash for row in usable])
            offsets = np.array([NO_OFFSET if r.offset_ms is None else r.offset_ms for r in usable], np.int64)
            sources: list[int] = []
            known = self._source_records.size
            previous = self._last_source()
            records: list[str] = []
            artifacts: list[str] = []
            for row in usable:
                key = (row.record_id, row.artifact_sha256)
                if key != previous:
                    records.append(row.record_id)
                    artifacts.append(row.artifact_sha256)
                    previous = key
                sources.append(known + len(records) - 1)
            record_ids = np.array([r.encode("ascii") for r in records], _RECORD_ID)
            shas = np.frombuffer(_sha_bytes(usable, artifacts), _SHA256)
            for column, values in zip(self._words, words.T, strict=True):
                column.extend(values)
            self._offsets.extend(offsets)
            self._sources.extend(np.array(sources, np.int64))
            self._source_records.extend(record_ids)
            self._source_artifacts.extend(shas)
        self.last_id = ids[-1]
        return len(usable)

    def _last_source(self) -> tuple[str, str] | None:
        size = self._source_records.size
        if size == 0:
            return None
        return self._source(size - 1)

    def _source(self, code: int) -> tuple[str, str]:
        record = bytes(self._source_records.data[code]).decode("ascii")
        return record, bytes(self._source_artifacts.data[code]).hex()

    def search(
        self, queries: np.ndarray[Any, np.dtype[np.uint64]], max_distance: int
    ) -> tuple[np.ndarray[Any, np.dtype[np.intp]], np.ndarray[Any, np.dtype[np.intp]], np.ndarray[Any, Any]]:
        """Every (query, stored row) pair within *max_distance* bits: three arrays, the index of
        the query in *queries* (a ``(Q, 4)`` array of words, :func:`hash_words`), of the stored
        row, and the distance; in row order, then query order."""
        check_distance(max_distance)
        queries = np.asarray(queries, dtype=np.uint64).reshape(-1, WORDS)
        columns = [column.view() for column in self._words]
        size = len(self)
        word = np.empty(BLOCK, np.uint64)
        bits = np.empty(BLOCK, np.uint8)
        total = np.empty(BLOCK, np.uint16)  # up to 256: uint8 would wrap a distance of 256 to 0
        found_query: list[np.ndarray[Any, Any]] = []
        found_row: list[np.ndarray[Any, Any]] = []
        found_distance: list[np.ndarray[Any, Any]] = []
        for start in range(0, size, BLOCK):
            end = min(size, start + BLOCK)
            n = end - start
            for q, query in enumerate(queries):
                np.bitwise_xor(columns[0][start:end], query[0], out=word[:n])
                np.bitwise_count(word[:n], out=bits[:n])
                np.copyto(total[:n], bits[:n])
                for w in range(1, WORDS):
                    np.bitwise_xor(columns[w][start:end], query[w], out=word[:n])
                    np.bitwise_count(word[:n], out=bits[:n])
                    np.add(total[:n], bits[:n], out=total[:n])
                near = np.flatnonzero(total[:n] <= max_distance)
                if len(near):
                    found_query.append(np.full(len(near), q, np.intp))
                    found_row.append(near + start)
                    found_distance.append(total[near].astype(np.int16))
        if not found_row:
            empty = np.empty(0, np.intp)
            return empty, empty, np.empty(0, np.int16)
        return np.concatenate(found_query), np.concatenate(found_row), np.concatenate(found_distance)

    def matches(
        self,
        probes: Sequence[Probe],
        max_distance: int,
        *,
        exclude_record: str | None = None,
        exclude_artifact: str | None = None,
        limit: int | None = None,
        frames: int | None = None,
    ) -> tuple[SimilarMatch, ...]:
        """The stored images and videos within *max_distance* of any of *probes*, ranked by
        :func:`rank` (at most *limit*, each with at most *frames* pairs); the record
        *exclude_record* and the artifact *exclude_artifact* left out."""
        probes = list(dict.fromkeys(probes))  # the same analysis on two records: looked for once
        if not probes or not len(self):
            check_distance(max_distance)
            return ()
        # Each distinct hash is scanned for once (the frames of a still shot are often the same).
        values = list(dict.fromkeys(p.hash for p in probes))
        having: dict[bytes, list[Probe]] = {value: [] for value in values}
        for probe in probes:
            having[probe.hash].append(probe)
        query, row, distance = self.search(hash_words(values), max_distance)
        sources = self._sources.view()[row]
        offsets = self._offsets.view()[row]
        pairs: list[tuple[str, str, int, str, int | None, int | None]] = []
        keys = {int(code): self._source(int(code)) for code in np.unique(sources)}
        hits = zip(query.tolist(), sources.tolist(), distance.tolist(), offsets.tolist(), strict=True)
        for q, code, d, offset in hits:
            record, artifact = keys[code]
            if record == exclude_record or artifact == exclude_artifact:
                continue
            stored_offset = None if offset == NO_OFFSET else offset
            for probe in having[values[q]]:
                pairs.append((record, artifact, d, probe.sha256, probe.offset_ms, stored_offset))
        return rank(pairs, limit=limit, frames=frames)


def _offset_key(offset: int | None) -> int:
    return NO_OFFSET if offset is None else offset


def _seconds(offset_ms: int | None) -> float | None:
    return None if offset_ms is None else offset_ms / 1000


def rank(
    pairs: Iterable[tuple[str, str, int, str, int | None, int | None]],
    *,
    limit: int | None = None,
    frames: int | None = None,
) -> tuple[SimilarMatch, ...]:
    """Matches from pairs of hashes within the distance, each ``(record id, artifact SHA-256,
    distance, target SHA-256, target offset ms, stored offset ms)``.

    One match per (record, artifact), its distance the least of its pairs; matches ordered by
    distance, then record id, then artifact SHA-256, at most *limit* of them.  A match's pairs:
    one per (target SHA-256, target offset, stored offset) -- the least distance when the same
    frames met twice, through a hash stored twice -- ordered by distance, then target SHA-256,
    then target offset, then stored offset (an image's ``None`` first), at most *frames* of them
    (``frames_matched`` counts them all)."""
    best: dict[tuple[str, str], dict[tuple[str, int, int], int]] = {}
    for record, artifact, distance, target, target_offset, offset in pairs:
        met = best.setdefault((record, artifact), {})
        key = (target, _offset_key(target_offset), _offset_key(offset))
        if distance < met.get(key, PDQ_BITS + 1):
            met[key] = distance
    order = sorted(best, key=lambda source: (min(best[source].values()), source))
    if limit is not None:
        order = order[:limit]
    found = []
    for record, artifact in order:
        met = best[(record, artifact)]
        ranked = sorted((distance, *key) for key, distance in met.items())
        kept = ranked if frames is None else ranked[:frames]
        found.append(
            SimilarMatch(
                record_id=record,
                artifact_sha256=artifact,
                distance=ranked[0][0],
                frames=tuple(
                    MatchedFrame(
                        distance=distance,
                        target_sha256=target,
                        target_offset_s=_seconds(None if target_offset == NO_OFFSET else target_offset),
                        offset_s=_seconds(None if offset == NO_OFFSET else offset),
                    )
                    for distance, target, target_offset, offset in kept
                ),
                frames_matched=len(ranked),
            )
        )
    return tuple(found)
