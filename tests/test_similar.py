"""``similar`` end to end: perceptual hashes stored in a real catalog (SQLite, or PostgreSQL with
``--backend postgresql``) through the store's ``add_hashes`` in a write transaction -- as the
analysis operation stores them -- and found again by the library call and the command.

The hashes are made here (random 256-bit values and near variants of them), not by a decoder:
what is tested is storing, catching up, matching and ranking.  Hashing a file on the fly is
tested with the media analysis's adapter, when it is there.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence_catalog import Catalog, MatchedFrame
from evidence_catalog.analysis import DEFAULT_MAX_DISTANCE, MIN_QUALITY, PerceptualHash
from evidence_catalog.errors import InputError, NotFoundError
from evidence_catalog.operations.similar import DEFAULT_FRAMES, DEFAULT_LIMIT
from tests.conftest import CliResult, FixedClock, make_jpeg

RNG_SEED = 20261205


def hex_of(value: int) -> str:
    return f"{value:064x}"


def flipped(value: str, *bits: int) -> str:
    """*value* with the given bits flipped (its distance from *value* is their number)."""
    return hex_of(int(value, 16) ^ sum(1 << b for b in set(bits)))


class Analysed:
    """Images and videos put in a catalog with their hashes, as an analysis would store them: the
    media file and an analysis document added to a record, then the hashes in one write."""

    def __init__(self, catalog: Catalog, folder: Path, *, same_bytes: bool = False) -> None:
        self.catalog, self.folder = catalog, folder
        self.count = 0
        #: Every catalog given the same media bytes in the same order (else random bytes).
        self.same_bytes = same_bytes

    def __call__(self, hashes: Sequence[PerceptualHash], *, record_id: str | None = None) -> tuple[str, str, str]:
        """(record id, artifact SHA-256, analysis SHA-256) of a new artifact with *hashes*."""
        self.count += 1
        media = self.folder / f"media-{self.count}.bin"
        media.write_bytes(f"media {self.count}".encode() if self.same_bytes else os.urandom(48))
        [added] = self.catalog.add([media], record_id=record_id)
        assert added.record_id is not None
        document = self.folder / f"analysis-{self.count}.json"
        document.write_text(json.dumps({"source": added.sha256, "n": self.count}), encoding="utf-8")
        [analysis] = self.catalog.add([document], record_id=added.record_id)
        self.store(added.record_id, added.sha256, analysis.sha256, hashes)
        return added.record_id, added.sha256, analysis.sha256

    def store(self, record_id: str, sha256: str, analysis_sha256: str, hashes: Sequence[PerceptualHash]) -> int:
        ctx = self.catalog._ctx
        with ctx.write() as session:
            return ctx.db.add_hashes(session, record_id, sha256, analysis_sha256, hashes)


@pytest.fixture
def analysed(catalog: Catalog, tmp_path: Path) -> Analysed:
    folder = tmp_path / "media"
    folder.mkdir()
    return Analysed(catalog, folder)


def image(value: str, quality: int = 90) -> PerceptualHash:
    return PerceptualHash(value=value, quality=quality)


def video(values: Sequence[str], *, every_s: float = 1.0, quality: int = 90) -> list[PerceptualHash]:
    return [PerceptualHash(value=v, quality=quality, offset_s=n * every_s) for n, v in enumerate(values)]


# -- the store ----------------------------------------------------------------------------------


def test_hashes_are_stored_one_row_each_in_the_order_written(catalog: Catalog, analysed: Analysed) -> None:
    rng = random.Random(RNG_SEED)
    frames = video([hex_of(rng.getrandbits(256)) for _ in range(5)], every_s=0.5)
    frames[2] = PerceptualHash(value=frames[2].value, quality=10, offset_s=1.0)  # kept, though never matched
    record_id, sha, analysis = analysed(frames)
    still = image(hex_of(rng.getrandbits(256)))
    other_record, other_sha, other_analysis = analysed([still])
    db = catalog.db
    with db.read() as session:
        rows = db.hash_rows_after(session)
        assert [r.id for r in rows] == sorted(r.id for r in rows) and len({r.id for r in rows}) == 6
        assert [r.perceptual_hash() for r in rows] == [*frames, still]
        assert [(r.record_id, r.artifact_sha256, r.analysis_sha256) for r in rows] == [
            *[(record_id, sha, analysis)] * 5,
            (other_record, other_sha, other_analysis),
        ]
        assert [r.offset_ms for r in rows] == [0, 500, 1000, 1500, 2000, None]
        assert all(r.algorithm == "pdq" and len(r.hash) == 32 and isinstance(r.hash, bytes) for r in rows)
        # Read on from any id, a page at a time.
        assert db.hash_rows_after(session, rows[1].id, limit=2) == rows[2:4]
        assert db.hash_rows_after(session, rows[-1].id) == []
        assert db.hashes_of_record(session, record_id) == rows[:5]
        assert db.hashes_of_artifact(session, other_sha) == rows[5:]
        assert db.hashes_of_artifact(session, "0" * 64) == []
        assert (db.hash_count(session), db.hash_count(session, min_quality=MIN_QUALITY)) == (6, 5)


def test_the_hashes_of_an_analysis_stored_again_are_not_stored_twice(catalog: Catalog, analysed: Analysed) -> None:
    hashes = video([hex_of(n * 0x1234567) for n in range(1, 4)])
    record_id, sha, analysis = analysed(hashes)
    assert analysed.store(record_id, sha, analysis, hashes) == 0
    assert analysed.store(record_id, sha, analysis, []) == 0
    with catalog.db.read() as session:
        assert catalog.db.hash_count(session) == 3


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.builds(
            PerceptualHash,
            value=st.integers(0, (1 << 256) - 1).map(hex_of),
            quality=st.integers(0, 100),
            offset_s=st.none(),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_stored_hashes_read_back_as_they_were_given(analysed: Analysed, hashes: list[PerceptualHash]) -> None:
    """Any hash, of any quality, reads back the same (its bytes, with leading and trailing zero
    bytes; its quality)."""
    hashes[0] = PerceptualHash(value="00" + hashes[0].value[2:-2] + "00", quality=hashes[0].quality)
    _, sha, _ = analysed(hashes)
    with analysed.catalog.db.read() as session:
        assert [r.perceptual_hash() for r in analysed.catalog.db.hashes_of_artifact(session, sha)] == hashes


def test_video_offsets_are_kept_to_the_millisecond(catalog: Catalog, analysed: Analysed) -> None:
    offsets = [0.0, 0.001, 1.2345, 59.9995, 3600.25, 86400.0 * 30]
    hashes = [PerceptualHash(value=hex_of(n + 1), quality=80, offset_s=s) for n, s in enumerate(offsets)]
    _, sha, _ = analysed(hashes)
    with catalog.db.read() as session:
        rows = catalog.db.hashes_of_artifact(session, sha)
    assert [r.offset_ms for r in rows] == [0, 1, 1234, 60000, 3600250, 2592000000]


def test_a_catalog_made_before_the_table_gets_it_when_opened(tmp_path: Path) -> None:
    """A catalog at revision 0010 (before perceptual hashes) is upgraded when opened: the table
    is made, empty, and the hashes of what is analysed then are stored, found and verified."""
    import sqlalchemy as sa
    from alembic import command

    from evidence_catalog.store.database import HEAD_REVISION, _alembic_config
    from tests.conftest import catalog_database_url

    with Catalog.init(tmp_path / "old", operator="Analyst <a@example.org>", clock=FixedClock()) as made:
        path = made.path
    engine = sa.create_engine(catalog_database_url(path))
    try:
        with engine.begin() as connection:
            command.downgrade(_alembic_config(connection), "0010")
        assert not sa.inspect(engine).has_table("perceptual_hash")
    finally:
        engine.dispose()
    with Catalog.open(path, operator="Analyst <a@example.org>", clock=FixedClock()) as upgraded:
        assert (upgraded.db.upgraded_from, HEAD_REVISION) == ("0010", "0011")
        with upgraded.db.read() as session:
            assert upgraded.db.hash_count(session) == 0
        # Real analyses (verify holds the index against their documents, row for row): a photo,
        # and the same photo encoded again.
        from PIL import Image

        from tests.test_analyze import picture

        folder = tmp_path / "media"
        folder.mkdir()
        original = picture(folder / "original.jpg")
        with Image.open(original) as decoded:
            decoded.save(folder / "again.jpg", "JPEG", quality=60)
        [first] = upgraded.add([original])
        [second] = upgraded.add([folder / "again.jpg"])
        assert first.record_id is not None and second.record_id is not None
        with upgraded.db.read() as session:
            assert upgraded.db.hash_count(session) == 2
        matches = upgraded.similar(first.record_id)
        assert [(m.record_id, m.artifact_sha256) for m in matches] == [(second.record_id, second.sha256)]
        assert matches[0].distance <= DEFAULT_MAX_DISTANCE
        report = upgraded.verify(record_event=False)
        assert report.ok, report.findings


# -- the operation ------------------------------------------------------------------------------


@pytest.fixture
def scene() -> dict[str, str]:
    """Hashes of a few distinct pictures (random: any two are about 128 bits apart)."""
    rng = random.Random(RNG_SEED + 1)
    return {name: hex_of(rng.getrandbits(256)) for name in ("street", "bridge", "school", "flag", "sky")}


def test_a_record_finds_the_near_copies_of_its_media_on_other_records_best_first(
    catalog: Catalog, analysed: Analysed, scene: dict[str, str]
) -> None:
    street, bridge = scene["street"], scene["bridge"]
    original, original_sha, _ = analysed([image(street)])
    cropped, cropped_sha, _ = analysed([image(flipped(street, *range(12)))])  # 12 bits off
    reposted, reposted_sha, _ = analysed([image(flipped(street, 3))])  # 1 bit off
    far, _, _ = analysed([image(flipped(street, *range(40)))])  # 40 bits: over 31
    _, other_sha, _ = analysed([image(bridge)])
    # A video on another record with the street in its second and fourth seconds.
    clip, clip_sha, _ = analysed(video([bridge, flipped(street, 1, 2), scene["school"], flipped(street, 9)]))
    # A second artifact on the original's record: it is the record looked for, so never a match.
    analysed([image(flipped(street, 0))], record_id=original)

    second_sha = next(iter(catalog_artifacts(catalog, original) - {original_sha, *catalog_documents(catalog)}))
    found = catalog.similar(original)
    assert [(m.distance, m.record_id, m.artifact_sha256) for m in found] == sorted(
        [(1, reposted, reposted_sha), (1, clip, clip_sha), (11, cropped, cropped_sha)]
    )
    assert far not in {m.record_id for m in found} and other_sha not in {m.artifact_sha256 for m in found}
    # The video: which of the record's hashes (of either artifact) met which of its frames, and
    # how far apart, best first.
    [in_clip] = [m for m in found if m.record_id == clip]
    assert in_clip.frames == tuple(
        MatchedFrame(distance, sha, None, offset)
        for distance, sha, offset in sorted(
            [(1, original_sha, 3.0), (2, original_sha, 1.0), (2, second_sha, 3.0), (3, second_sha, 1.0)]
        )
    )
    assert in_clip.frames_matched == 4


def catalog_artifacts(catalog: Catalog, record_id: str) -> set[str]:
    return {a.artifact.sha256 for a in catalog.record(record_id).artifacts}


def catalog_documents(catalog: Catalog) -> set[str]:
    """The SHA-256s of the stored analysis documents (the artifacts hashes are not of)."""
    with catalog.db.read() as session:
        return {row.analysis_sha256 for row in catalog.db.hash_rows_after(session)}


def test_matches_are_ordered_by_distance_then_record_then_artifact(
    catalog: Catalog, analysed: Analysed, scene: dict[str, str]
) -> None:
    flag = scene["flag"]
    target, _, _ = analysed([image(flag)])
    made = [analysed([image(flipped(flag, *range(n % 3)))]) for n in range(7)]
    # One record holding two copies: two matches, by artifact.
    holder, _, _ = made[0]
    made.append(analysed([image(flipped(flag, 100))], record_id=holder))
    found = catalog.similar(target)
    expected = sorted((len(range(n % 3)), r, s) for n, (r, s, _) in enumerate(made[:7]))
    expected = sorted([*expected, (1, holder, made[7][1])])
    assert [(m.distance, m.record_id, m.artifact_sha256) for m in found] == expected
    assert catalog.similar(target, limit=3) == found[:3]


def test_an_artifact_finds_its_near_copies_anywhere_but_itself(
    catalog: Catalog, analysed: Analysed, scene: dict[str, str]
) -> None:
    sky = scene["sky"]
    first, sha, analysis = analysed([image(sky)])
    second, second_sha, _ = analysed([image(flipped(sky, 7, 8))])
    # The same bytes on a second record: left out too (it is the artifact looked for).
    catalog.add([catalog.artifact_path(sha)], record_id=second)
    analysed.store(second, sha, analysis, [image(sky)])
    found = catalog.similar(sha)
    assert [(m.distance, m.record_id, m.artifact_sha256) for m in found] == [(2, second, second_sha)]
    assert found[0].frames == (MatchedFrame(distance=2, target_sha256=sha, target_offset_s=None, offset_s=None),)
    assert found[0].frames_matched == 1
    # Looked for by its record instead, the other record's copy of the same bytes is found.
    assert [(m.distance, m.record_id, m.artifact_sha256) for m in catalog.similar(first)] == [
        (0, second, sha),
        (2, second, second_sha),
    ]


def test_every_record_holding_a_matched_artifact_is_named_whichever_the_analysis_was_stored_on(
    catalog: Catalog, analysed: Analysed, scene: dict[str, str]
) -> None:
    bridge = scene["bridge"]
    first, sha, _ = analysed([image(bridge)])  # analysed on the first record only
    note = analysed.folder / "note.txt"
    note.write_text("a second record\n", encoding="utf-8")
    [other] = catalog.add([note])
    second = other.record_id
    assert second is not None and second != first
    catalog.add([catalog.artifact_path(sha)], record_id=second)  # the same bytes on the second record too
    target, _, _ = analysed([image(flipped(bridge, 9))])
    assert [(m.distance, m.record_id, m.artifact_sha256) for m in catalog.similar(target)] == sorted(
        [(1, first, sha), (1, second, sha)]
    )
    # The second record is looked for by the hashes of what it holds, stored with the first.
    assert [(m.record_id, m.artifact_sha256) for m in catalog.similar(second)] == [
        (first, sha),
        (target, target_sha(catalog, target)),
    ]


def target_sha(catalog: Catalog, record_id: str) -> str:
    """The SHA-256 of the one analysed medium on *record_id*."""
    with catalog.db.read() as session:
        [row] = catalog.db.hashes_of_record(session, record_id)
    return row.artifact_sha256


def test_a_video_found_by_a_video_lists_the_frames_that_met(
    catalog: Catalog, analysed: Analysed, scene: dict[str, str]
) -> None:
    street, bridge, school = scene["street"], scene["bridge"], scene["school"]
    filmed, filmed_sha, _ = analysed(video([street, bridge, school, school]))
    # Re-uploaded: trimmed by two seconds, slightly re-encoded.
    copy, copy_sha, _ = analysed(video([flipped(school, 4), flipped(school, 5, 6), flipped(street, 0)]))
    [match] = catalog.similar(filmed)
    assert (match.record_id, match.artifact_sha256, match.distance) == (copy, copy_sha, 1)
    assert match.frames_matched == 5
    assert [(f.distance, f.target_offset_s, f.offset_s) for f in match.frames] == [
        (1, 0.0, 2.0),
        (1, 2.0, 0.0),
        (1, 3.0, 0.0),
        (2, 2.0, 1.0),
        (2, 3.0, 1.0),
    ]
    assert {f.target_sha256 for f in match.frames} == {filmed_sha}
    # Bounded: the best pairs, and how many there were.
    [short] = catalog.similar(filmed, frames=2)
    assert (short.frames, short.frames_matched) == (match.frames[:2], 5)
    assert catalog.similar(filmed, max_distance=0) == ()


def test_hashes_too_featureless_to_trust_match_nothing_on_either_side(
    catalog: Catalog, analysed: Analysed, scene: dict[str, str]
) -> None:
    black = "0" * 64
    dark, _, _ = analysed([image(black, quality=0)])
    analysed([image(black, quality=MIN_QUALITY - 1)])
    lit, _, _ = analysed([image(black, quality=MIN_QUALITY)])
    with pytest.raises(InputError, match="quality under 50") as raised:
        catalog.similar(dark)
    assert raised.value.where == "target"
    assert catalog.similar(lit, max_distance=256) == ()  # the other two are there, and never found
    analysed(video([black, scene["sky"]], quality=MIN_QUALITY - 1))  # a video of unusable frames
    near, _, _ = analysed([image(flipped(scene["sky"], 1))])
    assert [m.record_id for m in catalog.similar(near, max_distance=256)] == [lit]


def test_an_index_kept_open_catches_up_with_hashes_stored_since(
    catalog: Catalog, analysed: Analysed, scene: dict[str, str]
) -> None:
    street = scene["street"]
    target, _, _ = analysed([image(street)])
    assert catalog.similar(target) == ()
    later, later_sha, _ = analysed([image(flipped(street, 5))])
    assert [(m.record_id, m.artifact_sha256) for m in catalog.similar(target)] == [(later, later_sha)]
    # Another process (another open catalog) stores more: this one sees them at its next call.
    with Catalog.open(catalog.path, operator="Second Analyst <second@example.org>", clock=FixedClock()) as other:
        (analysed.folder.parent / "other").mkdir()
        elsewhere = Analysed(other, analysed.folder.parent / "other")
        third, _, _ = elsewhere([image(flipped(street, 6, 7))])
    assert [m.record_id for m in catalog.similar(target)] == [later, third]
    # A catalog opened afresh loads it all and answers the same.
    with Catalog.open(catalog.path) as reopened:
        assert reopened.similar(target) == catalog.similar(target)


@pytest.mark.parametrize("target", ["not-a-thing", "0190a000-0000-7000-8000-00000000000X", "A" * 64, ""])
def test_a_target_that_is_nothing_known_is_refused(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, target: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="not a record id, an artifact SHA-256") as raised:
        catalog.similar(target)
    assert raised.value.where == (target or ".")


def test_what_has_no_hashes_is_refused_saying_why(catalog: Catalog, analysed: Analysed, tmp_path: Path) -> None:
    text = tmp_path / "statement.txt"
    text.write_text("a witness statement\n", encoding="utf-8")
    [plain] = catalog.add([text])
    assert plain.record_id is not None
    with pytest.raises(InputError, match="holds no analysed image or video") as raised:
        catalog.similar(plain.record_id)
    assert raised.value.where == "target"
    with pytest.raises(InputError, match="has not been analysed") as raised:
        catalog.similar(plain.sha256)
    assert raised.value.where == "target"
    with pytest.raises(InputError, match="no artifact") as raised:
        catalog.similar("ab" * 32)
    assert raised.value.where == "target"
    with pytest.raises(NotFoundError, match="no record"):
        catalog.similar("0190a000-0000-7000-8000-000000000000")


@pytest.mark.parametrize("bad", [-1, 257, 31.0, True])
def test_a_distance_outside_0_to_256_is_refused(catalog: Catalog, analysed: Analysed, bad: object) -> None:
    record_id, _, _ = analysed([image(hex_of(99))])
    with pytest.raises(InputError, match="from 0 to 256") as raised:
        catalog.similar(record_id, max_distance=bad)  # type: ignore[arg-type]
    assert raised.value.where == "max_distance"
    assert catalog.similar(record_id, max_distance=0) == catalog.similar(record_id, max_distance=256) == ()


def test_the_defaults_are_pdq_customary_threshold_and_bounded_output() -> None:
    import inspect

    parameters = inspect.signature(Catalog.similar).parameters
    assert parameters["max_distance"].default == DEFAULT_MAX_DISTANCE == 31
    assert (parameters["limit"].default, parameters["frames"].default) == (DEFAULT_LIMIT, DEFAULT_FRAMES)


def test_a_file_in_the_catalog_is_looked_for_by_its_stored_hashes(
    catalog: Catalog, analysed: Analysed, scene: dict[str, str]
) -> None:
    """A path whose bytes the catalog holds, analysed: their stored hashes are looked for (no
    decoding), and nothing is left out -- the file's own record is found at distance 0."""
    record_id, sha, _ = analysed([image(scene["school"])])
    near, near_sha, _ = analysed([image(flipped(scene["school"], 30))])
    found = catalog.similar(os.fspath(catalog.artifact_path(sha)))
    assert [(m.distance, m.record_id, m.artifact_sha256) for m in found] == [(0, record_id, sha), (1, near, near_sha)]


def test_a_file_outside_the_catalog_is_hashed_and_its_near_copies_found(
    catalog: Catalog, analysed: Analysed, tmp_path: Path
) -> None:
    import io

    from PIL import Image, ImageDraw

    from evidence_catalog.extract.perceptual import perceptual_hashes

    picture = Image.new("RGB", (320, 240), (200, 200, 190))
    draw = ImageDraw.Draw(picture)
    for n in range(12):
        draw.rectangle((20 * n, 10 * n, 20 * n + 60, 10 * n + 40), fill=(20 * n, 255 - 20 * n, 90))
    original = tmp_path / "original.png"
    picture.save(original)
    copy = tmp_path / "copy.jpg"
    buffer = io.BytesIO()
    picture.resize((300, 225)).save(buffer, format="JPEG", quality=70)
    copy.write_bytes(buffer.getvalue())
    work = tmp_path / "work"
    work.mkdir()
    stored = perceptual_hashes(original, "image/png", work=work).hashes
    record_id, sha, _ = analysed(stored)
    found = catalog.similar(os.fspath(copy))
    assert [(m.record_id, m.artifact_sha256) for m in found] == [(record_id, sha)]
    assert found[0].distance <= DEFAULT_MAX_DISTANCE
    jpeg = tmp_path / "unrelated.jpg"
    jpeg.write_bytes(make_jpeg(colour=(10, 20, 30)))
    with pytest.raises(InputError):  # a uniform picture: nothing good enough to match on
        catalog.similar(os.fspath(jpeg))


def test_a_file_that_is_not_an_image_or_video_is_refused(catalog: Catalog, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a picture\n", encoding="utf-8")
    with pytest.raises(InputError, match="not an image or a video") as raised:
        catalog.similar(os.fspath(text))
    assert raised.value.where is not None and "notes.txt" in raised.value.where


# -- the same answers on SQLite and PostgreSQL ------------------------------------------------


def answer(catalog: Catalog, order: dict[str, int], target: str, distance: int) -> list[tuple[object, ...]] | str:
    """What ``similar`` answers, records named by the order they were made in (or its refusal)."""
    try:
        found = catalog.similar(target, max_distance=distance, limit=None, frames=None)
    except InputError as exc:
        return str(exc).replace(target, "TARGET")
    return [(m.distance, order[m.record_id], m.artifact_sha256, m.frames_matched, m.frames) for m in found]


@pytest.mark.no_postgresql_pass
def test_sqlite_and_postgresql_give_the_same_answers(
    tmp_path: Path, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(RNG_SEED + 2)
    bases = [hex_of(rng.getrandbits(256)) for _ in range(4)]
    plan: list[list[PerceptualHash]] = []
    for n in range(30):
        base = bases[n % 4]
        if n % 3 == 0:
            plan.append(video([flipped(base, *rng.sample(range(256), rng.randint(0, 40))) for _ in range(5)]))
        else:
            plan.append([image(flipped(base, *rng.sample(range(256), rng.randint(0, 40))), rng.randint(30, 100))])
    answers = []
    for name, database in (("sqlite", None), ("postgresql", pg_database)):
        monkeypatch.setattr(Catalog, "_default_database", None)
        with Catalog.init(tmp_path / name, operator="Analyst <a@example.org>", database=database) as made:
            folder = tmp_path / f"{name}-media"
            folder.mkdir()
            add = Analysed(made, folder, same_bytes=True)
            # Record ids differ between the catalogs (made in the same order, they sort the same):
            # answers are compared by the order of making.
            ids = [add(hashes) for hashes in plan]
            order = {record_id: n for n, (record_id, _, _) in enumerate(ids)}
            answers.append(
                [answer(made, order, record_id, d) for record_id, _, _ in ids[:12] for d in (0, 20, 31, 60)]
                + [answer(made, order, sha, d) for _, sha, _ in ids[12:24] for d in (10, 31)]
            )
    assert answers[0] == answers[1]
    assert sum(len(a) for a in answers[0] if isinstance(a, list)) > 50
    assert any(isinstance(a, str) for a in answers[0])  # a record whose hashes are all unusable


# -- the command --------------------------------------------------------------------------------


def test_the_command_prints_one_line_per_match_and_json(
    catalog: Catalog, analysed: Analysed, scene: dict[str, str], run_cli: Callable[..., CliResult]
) -> None:
    street = scene["street"]
    target, target_sha, _ = analysed([image(street)])
    near, near_sha, _ = analysed([image(flipped(street, 1, 2))])
    clip, clip_sha, _ = analysed(video([scene["bridge"], flipped(street, 4), flipped(street, 5, 6)], every_s=1.5))
    catalog.close()

    done = run_cli("similar", target, "--catalog", catalog.path)
    assert done.code == 0, done.err
    assert done.out.splitlines() == [
        f"  1  {clip}  {clip_sha}  ->1.5:1 ->3:2",
        f"  2  {near}  {near_sha}",
    ]
    done = run_cli("similar", target, "--catalog", catalog.path, "--json", "--max-distance", "1")
    assert done.code == 0, done.err
    assert json.loads(done.out) == [
        {
            "record_id": clip,
            "artifact_sha256": clip_sha,
            "distance": 1,
            "frames": [{"distance": 1, "target_sha256": target_sha, "target_offset_s": None, "offset_s": 1.5}],
            "frames_matched": 1,
        }
    ]
    done = run_cli("similar", target, "--catalog", catalog.path, "--limit", "1", "--frames", "1")
    assert done.out.splitlines() == [f"  1  {clip}  {clip_sha}  ->1.5:1 (2 matched)"]
    assert "--limit" in done.err

    done = run_cli("similar", target, "--catalog", catalog.path, "--max-distance", "0")
    assert (done.code, done.out, done.err.strip()) == (0, "", "no matches")
    done = run_cli("similar", target, "--catalog", catalog.path, "--max-distance", "0", "--json")
    assert (done.code, json.loads(done.out)) == (0, [])


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["nothing-here"], "not a record id, an artifact SHA-256"),
        (["--max-distance", "257"], "257"),
        (["--limit", "0"], "0"),
    ],
)
def test_the_command_refuses_what_cannot_be_looked_for(
    catalog: Catalog, analysed: Analysed, run_cli: Callable[..., CliResult], args: list[str], says: str
) -> None:
    record_id, _, _ = analysed([image(hex_of(12345))])
    catalog.close()
    target = [] if args[0].startswith("--") else [args.pop(0)]
    done = run_cli("similar", *(target or [record_id]), "--catalog", catalog.path, *args)
    assert done.code == 2
    assert says in done.err and done.out == ""


def test_a_damaged_hash_row_is_said_to_be_damaged_not_matched_or_crashed_on(
    catalog: Catalog, analysed: Analysed, scene: dict[str, str]
) -> None:
    from evidence_catalog.errors import CatalogDatabaseError
    from tests.conftest import run_sql

    target, _, _ = analysed([image(scene["flag"])])
    analysed([image(flipped(scene["flag"], 3))])
    assert len(catalog.similar(target)) == 1
    _, sha, _ = analysed([image(flipped(scene["flag"], 4))])
    # Someone with the database edits a row: an artifact that is not a SHA-256.
    run_sql(
        catalog,
        "UPDATE perceptual_hash SET artifact_sha256 = :bad WHERE artifact_sha256 = :sha",
        {"bad": "not a sha-256" + "0" * 51, "sha": sha},
        foreign_keys=False,
    )
    for _ in range(2):  # every search says so, until the row is mended
        with pytest.raises(CatalogDatabaseError, match=r"hash row \d+ is damaged: its artifact SHA-256"):
            catalog.similar(target)
    with Catalog.open(catalog.path) as again, pytest.raises(CatalogDatabaseError, match="damaged"):
        again.similar(target)
