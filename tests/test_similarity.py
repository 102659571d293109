"""The near-duplicate matcher on its own (no database): the in-memory index of perceptual hashes
finds exactly what a plain comparison of every pair finds, ranks in one stated order, and never
matches a hash too featureless to trust."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, NamedTuple

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from evidence_catalog.analysis import MIN_QUALITY, PDQ_BITS
from evidence_catalog.results import MatchedFrame, SimilarMatch
from evidence_catalog.similarity import BLOCK, HashIndex, Probe, check_distance, hash_words, rank

FULL = (1 << PDQ_BITS) - 1


class Row(NamedTuple):
    """A stored hash row as the store hands it back (the fields the index reads)."""

    id: int
    record_id: str
    artifact_sha256: str
    offset_ms: int | None
    quality: int
    algorithm: str
    hash: bytes


def record(n: int) -> str:
    return f"0190a000-0000-7000-8000-{n:012x}"


def sha(n: int) -> str:
    return f"{n:064x}"


def as_bytes(value: int) -> bytes:
    return value.to_bytes(PDQ_BITS // 8, "big")


def rows_of(items: Sequence[tuple[int, int, int | None, int, int]], first_id: int = 1) -> list[Row]:
    """Rows from ``(source, hash, offset, quality, _)``: source n is record n // 2, artifact n."""
    return [
        Row(first_id + i, record(source // 2), sha(source), offset, quality, "pdq", as_bytes(value))
        for i, (source, value, offset, quality, _) in enumerate(items)
    ]


#: Which records hold each artifact: artifact n is on record n // 2, and every third one also on
#: record 9 (the same bytes on two records).
HELD = {sha(n): sorted({record(n // 2)} | ({record(9)} if n % 3 == 0 else set())) for n in range(600)}


def holders(artifacts: Sequence[str]) -> dict[str, list[str]]:
    """The records holding each of *artifacts*, as the catalog's database answers."""
    return {artifact: HELD[artifact] for artifact in artifacts if artifact in HELD}


def find(
    index: HashIndex,
    probes: Sequence[Probe],
    radius: int,
    *,
    exclude_record: str | None = None,
    exclude_artifact: str | None = None,
    limit: int | None = None,
    frames: int | None = None,
) -> tuple[SimilarMatch, ...]:
    """What ``similar`` answers: the index's pairs, ranked with the records of :data:`HELD`."""
    pairs = index.matches(probes, radius, exclude_artifact=exclude_artifact)
    return rank(pairs, holders, exclude_record=exclude_record, limit=limit, frames=frames)


def brute_force(rows: Sequence[Row], probes: Sequence[Probe], radius: int) -> set[tuple[int, int, int]]:
    """(probe index, row id, distance) of every usable pair within *radius*, by plain Python."""
    found = set()
    for q, probe in enumerate(probes):
        for row in rows:
            if row.quality < MIN_QUALITY:
                continue
            distance = (int.from_bytes(row.hash, "big") ^ int.from_bytes(probe.hash, "big")).bit_count()
            if distance <= radius:
                found.add((q, row.id, distance))
    return found


def triples(query: Any, found: Any, distance: Any, rows: Sequence[Row]) -> set[tuple[int, int, int]]:
    """(probe index, row id, distance) of what a search found (*rows*: the rows it indexed)."""
    return {(q, rows[r].id, d) for q, r, d in zip(query.tolist(), found.tolist(), distance.tolist(), strict=True)}


# Hashes near each other often enough to match: a few bases, each flipped in a few bits (and
# the complement of a base, 256 bits away, to catch a count that wraps).
bases = st.lists(st.integers(0, FULL), min_size=1, max_size=4)


@st.composite
def stored_and_probes(draw: st.DrawFn) -> tuple[list[Row], list[Probe], int]:
    pool = draw(bases)

    def near() -> int:
        base = draw(st.sampled_from(pool))
        how = draw(st.sampled_from(["flip", "flip", "complement", "random"]))
        if how == "complement":
            return base ^ FULL
        if how == "random":
            return draw(st.integers(0, FULL))
        bits = draw(st.lists(st.integers(0, PDQ_BITS - 1), max_size=40))
        return base ^ sum(1 << b for b in set(bits))

    count = draw(st.integers(0, 40))
    items = [
        (draw(st.integers(0, 6)), near(), draw(st.none() | st.integers(0, 10**7)), draw(st.integers(0, 100)), 0)
        for _ in range(count)
    ]
    probes = [
        Probe(hash=as_bytes(near()), sha256=sha(100 + n), offset_ms=draw(st.none() | st.integers(0, 10**6)))
        for n in range(draw(st.integers(1, 4)))
    ]
    return rows_of(items), probes, draw(st.integers(0, PDQ_BITS))


@settings(max_examples=300, deadline=None)
@given(stored_and_probes(), st.integers(1, 5))
@example(
    (
        [Row(1, record(0), sha(0), None, 100, "pdq", as_bytes(FULL))],
        [Probe(hash=as_bytes(0), sha256=sha(9), offset_ms=None)],
        31,
    ),
    1,
).via("a distance of 256 is not 0 (a count kept in 8 bits would wrap)")
def test_a_radius_query_finds_exactly_what_comparing_every_pair_finds(
    case: tuple[list[Row], list[Probe], int], batches: int
) -> None:
    rows, probes, radius = case
    index = HashIndex()
    size = max(1, len(rows) // batches)
    for start in range(0, len(rows), size):  # in several catch-ups, as a long-running process does
        index.add(rows[start : start + size])
    usable = [row for row in rows if row.quality >= MIN_QUALITY]
    assert len(index) == len(usable)
    query, found, distance = index.search(hash_words([p.hash for p in probes]), radius)
    assert {
        (q, usable[r].id, d) for q, r, d in zip(query.tolist(), found.tolist(), distance.tolist(), strict=True)
    } == (brute_force(rows, probes, radius))


def brute_force_matches(
    rows: Sequence[Row], probes: Sequence[Probe], radius: int, exclude_record: str | None, exclude_artifact: str | None
) -> list[tuple[object, ...]]:
    """What ``similar`` must answer, worked out by plain Python from every pair: one entry per
    record holding a matched artifact, ordered by least distance, record, artifact; its pairs
    kept once each (least distance), ordered by distance, target SHA-256, target offset, stored
    offset."""
    best: dict[tuple[str, str], dict[tuple[str, int, int], int]] = {}
    for probe in dict.fromkeys(probes):
        for row in rows:
            if row.quality < MIN_QUALITY or row.artifact_sha256 == exclude_artifact:
                continue
            distance = (int.from_bytes(row.hash, "big") ^ int.from_bytes(probe.hash, "big")).bit_count()
            if distance > radius:
                continue
            key = (
                probe.sha256,
                -1 if probe.offset_ms is None else probe.offset_ms,
                -1 if row.offset_ms is None else row.offset_ms,
            )
            for holder in HELD[row.artifact_sha256]:
                if holder != exclude_record:
                    met = best.setdefault((holder, row.artifact_sha256), {})
                    met[key] = min(distance, met.get(key, 999))
    answer = []
    for (record, artifact), met in best.items():
        pairs = sorted((d, *key) for key, d in met.items())
        answer.append((pairs[0][0], record, artifact, pairs))
    return sorted(answer)


@settings(max_examples=200, deadline=None)
@given(stored_and_probes(), st.data())
def test_matches_are_every_pair_within_the_distance_grouped_and_ranked(
    case: tuple[list[Row], list[Probe], int], data: st.DataObject
) -> None:
    rows, probes, radius = case
    # Probes that share a hash (a still shot's frames), and the same probe twice.
    probes = probes + [Probe(hash=p.hash, sha256=p.sha256, offset_ms=(p.offset_ms or 0) + 40) for p in probes[:2]]
    probes += probes[:1]
    exclude_record = data.draw(st.none() | st.sampled_from([record(n) for n in (0, 1, 2, 3, 9)]))
    exclude_artifact = data.draw(st.none() | st.sampled_from([sha(n) for n in range(7)]))
    limit = data.draw(st.none() | st.integers(1, 6))
    index = HashIndex()
    index.add(rows)
    found = find(index, probes, radius, exclude_record=exclude_record, exclude_artifact=exclude_artifact, limit=limit)
    expected = brute_force_matches(rows, probes, radius, exclude_record, exclude_artifact)[:limit]
    assert [
        (
            m.distance,
            m.record_id,
            m.artifact_sha256,
            [
                (
                    f.distance,
                    f.target_sha256,
                    -1 if f.target_offset_s is None else round(f.target_offset_s * 1000),
                    -1 if f.offset_s is None else round(f.offset_s * 1000),
                )
                for f in m.frames
            ],
        )
        for m in found
    ] == expected
    assert all(m.frames_matched == len(m.frames) for m in found)


def test_a_scan_over_several_blocks_finds_pairs_in_each() -> None:
    """More rows than one block: matches at the edges of blocks are found, none twice."""
    target = 0x0123456789ABCDEF << 100
    near = set(range(0, 2 * BLOCK + 5, 997)) | {BLOCK - 1, BLOCK, 2 * BLOCK + 4}
    items = [
        (n % 7, target ^ (1 << (n % 256)) if n in near else (n * 2654435761) ** 5 & FULL, None, 90, 0)
        for n in range(2 * BLOCK + 5)
    ]
    rows = rows_of(items)
    index = HashIndex()
    index.add(rows)
    probes = [Probe(hash=as_bytes(target), sha256=sha(500), offset_ms=None)]
    query, found, distance = index.search(hash_words([p.hash for p in probes]), 8)
    expected = brute_force(rows, probes, 8)
    assert {
        (q, rows[r].id, d) for q, r, d in zip(query.tolist(), found.tolist(), distance.tolist(), strict=True)
    } == expected
    assert len(found) == len(expected) >= len(near)


def test_matches_rank_by_distance_then_record_then_artifact_and_frames_by_distance_then_offsets() -> None:
    pairs = [
        # (artifact, distance, target sha, target offset, stored offset)
        (sha(6), 7, sha(90), 3000, 1000),
        (sha(6), 3, sha(90), 4000, 2000),
        (sha(6), 3, sha(90), 1000, 9000),
        (sha(6), 3, sha(90), 1000, 8000),
        (sha(6), 5, sha(90), 1000, 8000),  # the same two frames again, farther: the nearer kept
        (sha(2), 3, sha(90), None, None),
        (sha(4), 3, sha(90), None, None),
        (sha(8), 12, sha(90), None, 500),
        (sha(7), 1, sha(91), None, None),
    ]
    ranked = rank(pairs, holders)
    # sha(6) is on record 3 and record 9 (HELD); the others on one record each.
    assert [(m.distance, m.record_id, m.artifact_sha256) for m in ranked] == [
        (1, record(3), sha(7)),
        (3, record(1), sha(2)),
        (3, record(2), sha(4)),
        (3, record(3), sha(6)),
        (3, record(9), sha(6)),
        (12, record(4), sha(8)),
    ]
    video = ranked[3]
    assert video.frames == (
        MatchedFrame(3, sha(90), 1.0, 8.0),
        MatchedFrame(3, sha(90), 1.0, 9.0),
        MatchedFrame(3, sha(90), 4.0, 2.0),
        MatchedFrame(7, sha(90), 3.0, 1.0),
    )
    assert video.frames_matched == 4 and ranked[4].frames == video.frames
    # Bounded: the first matches and, of each, its best pairs; the count says how many there were.
    short = rank(pairs, holders, limit=4, frames=2)
    assert [(m.record_id, m.artifact_sha256) for m in short] == [(m.record_id, m.artifact_sha256) for m in ranked[:4]]
    assert short[3] == SimilarMatch(record(3), sha(6), 3, video.frames[:2], 4)
    # The record looked for is left out.
    assert [(m.record_id, m.artifact_sha256) for m in rank(pairs, holders, exclude_record=record(3))] == [
        (record(1), sha(2)),
        (record(2), sha(4)),
        (record(9), sha(6)),
        (record(4), sha(8)),
    ]
    # The order does not depend on the order the pairs came in.
    for shuffled in itertools.islice(itertools.permutations(pairs), 0, 2000, 97):
        assert rank(list(shuffled), holders) == ranked


def test_the_records_of_only_as_many_artifacts_as_the_limit_needs_are_asked_for() -> None:
    pairs = [(sha(n), n // 10, sha(999), None, None) for n in range(100)]  # ten at each distance 0-9
    asked: list[str] = []

    def counting(artifacts: Sequence[str]) -> dict[str, list[str]]:
        asked.extend(artifacts)
        return holders(artifacts)

    found = rank(pairs, counting, limit=15)
    assert [m.distance for m in found] == [0] * 14 + [1]  # sha(0), sha(3), sha(6), sha(9) are on two records
    assert sorted(asked) == sorted(sha(n) for n in range(20))  # distances 0 and 1 only
    # An artifact no record holds (a derived file whose record is gone) is not shown.
    assert rank([(sha(5000), 0, sha(1), None, None)], holders) == ()


def test_a_hash_too_featureless_to_trust_is_never_matched() -> None:
    value = 0xABCDEF << 128
    rows = rows_of([(0, value, None, MIN_QUALITY - 1, 0), (1, value, None, MIN_QUALITY, 0), (2, value, 5000, 0, 0)])
    index = HashIndex()
    assert index.add(rows) == 1
    assert index.last_id == 3  # the rows left out are read past, not read again
    found = find(index, [Probe(hash=as_bytes(value), sha256=sha(77), offset_ms=None)], PDQ_BITS)
    assert [(m.record_id, m.artifact_sha256, m.distance) for m in found] == [(record(0), sha(1), 0)]
    assert index.add(rows_of([(3, value, None, 10, 0)], first_id=4)) == 0
    assert len(find(index, [Probe(hash=as_bytes(value), sha256=sha(77), offset_ms=None)], PDQ_BITS)) == 1


def test_the_record_or_artifact_looked_for_is_left_out() -> None:
    value = 0x5555 << 200
    rows = rows_of([(1, value, None, 90, 0), (2, value, None, 90, 0), (3, value, None, 90, 0), (4, value, None, 90, 0)])
    index = HashIndex()
    index.add(rows)
    probe = [Probe(hash=as_bytes(value), sha256=sha(0), offset_ms=None)]
    everything = {(m.record_id, m.artifact_sha256) for m in find(index, probe, 0)}
    assert everything == {
        (record(0), sha(1)),
        (record(1), sha(2)),
        (record(1), sha(3)),
        (record(9), sha(3)),  # the same bytes on another record
        (record(2), sha(4)),
    }
    assert {(m.record_id, m.artifact_sha256) for m in find(index, probe, 0, exclude_record=record(1))} == (
        everything - {(record(1), sha(2)), (record(1), sha(3))}
    )
    assert {(m.record_id, m.artifact_sha256) for m in find(index, probe, 0, exclude_artifact=sha(3))} == (
        everything - {(record(1), sha(3)), (record(9), sha(3))}
    )


def test_rows_of_one_artifact_written_again_later_are_one_match() -> None:
    """The same artifact analysed again (a new analysis, its rows written later, after others'):
    one match, its pairs once each."""
    value = 0x77 << 50
    index = HashIndex()
    index.add(rows_of([(0, value, 1000, 90, 0), (1, value ^ 1, None, 90, 0)]))
    index.add(rows_of([(0, value ^ 3, 1000, 90, 0), (0, value, 2000, 90, 0)], first_id=3))
    found = find(index, [Probe(hash=as_bytes(value), sha256=sha(50), offset_ms=0)], 4)
    assert [(m.artifact_sha256, m.distance, m.frames_matched) for m in found] == [
        (sha(0), 0, 2),
        (sha(0), 0, 2),  # on record 0 and record 9
        (sha(1), 1, 1),
    ]
    assert found[0].frames == (MatchedFrame(0, sha(50), 0.0, 1.0), MatchedFrame(0, sha(50), 0.0, 2.0))


def test_rows_are_taken_once_and_in_the_order_stored() -> None:
    index = HashIndex()
    index.add(rows_of([(0, 1, None, 90, 0), (0, 2, None, 90, 0)]))
    for wrong in (rows_of([(0, 3, None, 90, 0)], first_id=2), [*rows_of([(0, 3, None, 90, 0)], first_id=5)] * 2):
        with pytest.raises(ValueError, match="order they were stored"):
            index.add(wrong)
    assert (len(index), index.last_id) == (2, 2)


@pytest.mark.parametrize("bad", [-1, 257, 3.5, True, "31", None])
def test_a_distance_outside_0_to_256_is_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="from 0 to 256"):
        check_distance(bad)
    with pytest.raises(ValueError, match="from 0 to 256"):
        HashIndex().matches([Probe(hash=bytes(32), sha256=sha(1), offset_ms=None)], bad)


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("artifact_sha256", "ab" * 31 + " c", "artifact SHA-256"),  # bytes.fromhex would skip the space
        ("artifact_sha256", "AB" * 32, "artifact SHA-256"),
        ("artifact_sha256", "zz" * 32, "artifact SHA-256"),
        ("artifact_sha256", "ab" * 31, "artifact SHA-256"),
        ("offset_ms", -5, "offset"),
        ("offset_ms", 2**63, "offset"),
        ("offset_ms", "12", "offset"),
        ("quality", "90", "quality"),
        ("quality", None, "quality"),
    ],
)
def test_a_row_no_writer_makes_is_refused_naming_it_and_nothing_of_its_batch_is_taken(
    field: str, value: object, says: str
) -> None:
    index = HashIndex()
    index.add(rows_of([(0, 5, None, 90, 0)]))
    batch = rows_of([(1, 6, 1000, 90, 0), (2, 7, None, 90, 0), (3, 8, None, 90, 0)], first_id=2)
    batch[1] = batch[1]._replace(**{field: value})
    with pytest.raises(ValueError, match=f"hash row 3 is damaged: its {says}"):
        index.add(batch)
    assert (len(index), index.last_id) == (1, 1)
    found = find(index, [Probe(hash=as_bytes(5), sha256=sha(9), offset_ms=None)], 256)
    assert {m.artifact_sha256 for m in found} == {sha(0)}
