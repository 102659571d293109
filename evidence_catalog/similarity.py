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
core, about as fast as faiss's exact binary index at that size, without it (``benchmarks/similar.py``
compares them; ``benchmarks/RESULTS.md``).  A video looked for with *Q* distinct frame hashes costs
*Q* scans.

:meth:`HashIndex.matches` gathers the pairs within the distance by stored artifact and
:func:`rank` makes them :class:`~evidence_catalog.results.SimilarMatch` values: one per record
holding a matched artifact (an artifact's hashes belong to its bytes, whichever record its
analysis was stored on: every record holding it is named), with the least distance of any of
its pairs and the pairs themselves, best first, at most ``frames`` of them (``frames_matched``
says how many there were); matches ordered by distance, then record id, then artifact.  No I/O
here: the rows come from :mod:`evidence_catalog.store.hashes`, and the records holding an
artifact from a function the operation (:mod:`evidence_catalog.operations.similar`) gives.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
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
_SHA256 = np.dtype("V32")  # an artifact's SHA-256, its 32 bytes


class HashRowLike(Protocol):
    """What the index reads of a stored hash row (:class:`evidence_catalog.store.hashes.StoredHash`)."""

    @property
    def id(self) -> int: ...
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
    sha, offset = row.artifact_sha256, row.offset_ms
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
        self._sources = _Grown(np.int64)  # the row's artifact: an index into the one below
        # Rows of one artifact are written together (one analysis): a source per run of rows
        # of the same artifact, not per row.
        self._source_artifacts = _Grown(_SHA256)

    def __len__(self) -> int:
        return self._offsets.size

    @property
    def nbytes(self) -> int:
        """The memory the index's arrays take (their room, used or not)."""
        columns = [*self._words, self._offsets, self._sources, self._source_artifacts]
        return sum(column.data.nbytes for column in columns)

    def add(self, rows: Sequence[HashRowLike]) -> int:
        """Take the usable PDQ hashes of *rows*, which follow :attr:`last_id` in id order; how
        many were taken.  Rows out of order, or a row no writer of this library makes (a SHA-256
        that is not 64 hex digits, an offset out of range, a quality that is not a number), are
        a ``ValueError`` naming the row, and nothing of *rows* is taken."""
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
            known = self._source_artifacts.size
            previous = self._source(known - 1) if known else None
            artifacts: list[str] = []
            for row in usable:
                if row.artifact_sha256 != previous:
                    artifacts.append(row.artifact_sha256)
                    previous = row.artifact_sha256
                sources.append(known + len(artifacts) - 1)
            shas = np.frombuffer(_sha_bytes(usable, artifacts), _SHA256)
            for column, values in zip(self._words, words.T, strict=True):
                column.extend(values)
            self._offsets.extend(offsets)
            self._sources.extend(np.array(sources, np.int64))
            self._source_artifacts.extend(shas)
        self.last_id = ids[-1]
        return len(usable)

    def _source(self, code: int) -> str:
        return bytes(self._source_artifacts.data[code]).hex()

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

    def matches(self, probes: Sequence[Probe], max_distance: int, *, exclude_artifact: str | None = None) -> list[Pair]:
        """Every pair of a hash of *probes* and a stored hash within *max_distance* bits (the
        artifact *exclude_artifact* left out), as ``(artifact SHA-256, distance, target SHA-256,
        target offset ms, stored offset ms)``, for :func:`rank`."""
        check_distance(max_distance)
        probes = list(dict.fromkeys(probes))  # the same analysis on two records: looked for once
        if not probes or not len(self):
            return []
        # Each distinct hash is scanned for once (the frames of a still shot are often the same).
        values = list(dict.fromkeys(p.hash for p in probes))
        having: dict[bytes, list[Probe]] = {value: [] for value in values}
        for probe in probes:
            having[probe.hash].append(probe)
        query, row, distance = self.search(hash_words(values), max_distance)
        sources = self._sources.view()[row]
        offsets = self._offsets.view()[row]
        names = {int(code): self._source(int(code)) for code in np.unique(sources)}
        pairs: list[Pair] = []
        hits = zip(query.tolist(), sources.tolist(), distance.tolist(), offsets.tolist(), strict=True)
        for q, code, d, offset in hits:
            artifact = names[code]
            if artifact == exclude_artifact:
                continue
            stored_offset = None if offset == NO_OFFSET else offset
            for probe in having[values[q]]:
                pairs.append((artifact, d, probe.sha256, probe.offset_ms, stored_offset))
        return pairs


#: A pair of hashes within the distance: (stored artifact's SHA-256, distance, the target's
#: SHA-256, its offset in ms, the stored offset in ms; offsets ``None`` for an image).
Pair = tuple[str, int, str, int | None, int | None]


def _offset_key(offset: int | None) -> int:
    return NO_OFFSET if offset is None else offset


def _seconds(offset_ms: int | None) -> float | None:
    return None if offset_ms is None else offset_ms / 1000


def rank(
    pairs: Iterable[Pair],
    holders: Callable[[Sequence[str]], Mapping[str, Sequence[str]]],
    *,
    exclude_record: str | None = None,
    limit: int | None = None,
    frames: int | None = None,
) -> tuple[SimilarMatch, ...]:
    """Matches from *pairs* (:meth:`HashIndex.matches`); *holders* gives the ids of the records
    holding each of some artifacts (an artifact it leaves out is on no record, and not shown).

    One match per record holding a matched artifact (but the record *exclude_record*), its
    distance the least of the artifact's pairs; matches ordered by distance, then record id,
    then artifact SHA-256, at most *limit* of them (the records of only as many artifacts are
    asked for as that takes).  A match's pairs: one per (target SHA-256, target offset, stored
    offset) -- the least distance when the same frames met twice, through a hash stored twice
    -- ordered by distance, then target SHA-256, then target offset, then stored offset (an
    image's ``None`` first), at most *frames* of them (``frames_matched`` counts them all)."""
    met: dict[str, dict[tuple[str, int, int], int]] = {}
    for artifact, distance, target, target_offset, offset in pairs:
        kept = met.setdefault(artifact, {})
        key = (target, _offset_key(target_offset), _offset_key(offset))
        if distance < kept.get(key, PDQ_BITS + 1):
            kept[key] = distance
    best = {artifact: min(kept.values()) for artifact, kept in met.items()}
    entries: list[tuple[int, str, str]] = []
    for distance, group in itertools.groupby(sorted(best, key=lambda a: (best[a], a)), key=best.__getitem__):
        if limit is not None and len(entries) >= limit:
            break  # every artifact still to come is farther than the last match kept
        artifacts = list(group)
        found = holders(artifacts)
        entries += [
            (distance, record, artifact)
            for artifact in artifacts
            for record in found.get(artifact, ())
            if record != exclude_record
        ]
    entries.sort()
    if limit is not None:
        entries = entries[:limit]
    matches = []
    for distance, record, artifact in entries:
        ranked = sorted((d, *key) for key, d in met[artifact].items())
        matches.append(
            SimilarMatch(
                record_id=record,
                artifact_sha256=artifact,
                distance=distance,
                frames=tuple(
                    MatchedFrame(
                        distance=d,
                        target_sha256=target,
                        target_offset_s=_seconds(None if target_offset == NO_OFFSET else target_offset),
                        offset_s=_seconds(None if offset == NO_OFFSET else offset),
                    )
                    for d, target, target_offset, offset in (ranked if frames is None else ranked[:frames])
                ),
                frames_matched=len(ranked),
            )
        )
    return tuple(matches)
