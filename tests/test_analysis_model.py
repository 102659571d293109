"""The values an analysis derives: what they refuse, and that every one goes through its JSON
document and the published schema and back unchanged, byte-stable."""

from __future__ import annotations

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from evidence_catalog.analysis import (
    DEFAULT_MAX_DISTANCE,
    MIN_QUALITY,
    ContentCredentials,
    CredentialState,
    Keyframe,
    MediaAnalysis,
    PerceptualHash,
    hamming,
)
from evidence_catalog.errors import ModelError
from evidence_catalog.schema_files import load_schema
from evidence_catalog.serialize import canonical_json, from_document, to_document
from tests.strategies import agents, sha256, text, timestamps

SCHEMA = jsonschema.Draft202012Validator(load_schema("media-analysis"))
pdq = st.binary(min_size=32, max_size=32).map(bytes.hex)
offsets = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)

image_hashes = st.builds(PerceptualHash, value=pdq, quality=st.integers(0, 100))
video_hashes = st.lists(st.tuples(pdq, st.integers(0, 100), offsets), max_size=8).map(
    lambda items: tuple(PerceptualHash(v, q, o) for v, q, o in sorted(items, key=lambda i: i[2]))
)
credentials = st.one_of(
    st.none(),
    st.just(ContentCredentials(CredentialState.NONE)),
    st.builds(
        ContentCredentials,
        state=st.sampled_from([CredentialState.VALID, CredentialState.TRUSTED]),
        manifest_store_sha256=st.none() | sha256,
        active_manifest=st.none() | text,
        signer=st.none() | text,
        claim_generator=st.none() | text,
        signed_at=st.none() | timestamps,
        actions=st.lists(text, max_size=3).map(tuple),
        ingredients=st.lists(text, max_size=3).map(tuple),
    ),
    st.builds(
        ContentCredentials,
        state=st.just(CredentialState.INVALID),
        failure_codes=st.lists(text, min_size=1, max_size=3).map(tuple),
    ),
)


@st.composite
def analyses(draw: st.DrawFn) -> MediaAnalysis:
    source = draw(sha256)
    hashes = draw(st.lists(image_hashes, max_size=1).map(tuple) | video_hashes)
    keyframes = draw(st.lists(st.builds(Keyframe, offset_s=offsets, sha256=sha256), max_size=3))
    found = draw(credentials)
    if found is not None and found.manifest_store_sha256 == source:
        found = None
    keyframes = [k for k in keyframes if k.sha256 != source]
    sheet = draw(st.none() | sha256)
    return MediaAnalysis(
        source_sha256=source,
        source_media_type=draw(st.sampled_from(["image/jpeg", "video/mp4", "image/png"])),
        tools=tuple(draw(st.lists(agents, max_size=3))),
        parameters=draw(st.dictionaries(text, text, max_size=4)),
        hashes=hashes,
        keyframes=tuple(keyframes),
        contact_sheet_sha256=None if sheet == source else sheet,
        credentials=found,
        errors=tuple(draw(st.lists(text, max_size=2))),
    )


@given(analyses())
def test_an_analysis_round_trips_through_its_document_and_the_schema(analysis: MediaAnalysis) -> None:
    document = to_document(analysis)
    SCHEMA.validate(canonical_json_loads(canonical_json(document)))
    assert from_document(document, MediaAnalysis) == analysis
    # The bytes are what a deep verification compares: the same analysis, the same bytes.
    assert canonical_json(to_document(from_document(document, MediaAnalysis))) == canonical_json(document)


def canonical_json_loads(data: bytes) -> object:
    import json

    return json.loads(data)


@given(pdq, pdq)
def test_hamming_counts_the_bits_that_differ(a: str, b: str) -> None:
    expected = sum(bin(int(x, 16) ^ int(y, 16)).count("1") for x, y in zip(a, b, strict=True))
    assert hamming(a, b) == expected == hamming(b, a)
    assert hamming(a, a) == 0


@pytest.mark.parametrize(
    "value",
    ["0" * 63, "0" * 65, "G" * 64, "A" * 64, " " + "0" * 63, 5],
)
def test_a_pdq_hash_is_64_lowercase_hex_digits(value: object) -> None:
    with pytest.raises(ModelError):
        PerceptualHash(value, 80)  # type: ignore[arg-type]


@pytest.mark.parametrize("quality", [-1, 101, 50.0, True, "80"])
def test_a_quality_is_a_whole_number_from_0_to_100(quality: object) -> None:
    with pytest.raises(ModelError):
        PerceptualHash("0" * 64, quality)  # type: ignore[arg-type]


def test_low_quality_hashes_are_kept_but_not_usable() -> None:
    low, good = PerceptualHash("0" * 64, MIN_QUALITY - 1), PerceptualHash("f" * 64, MIN_QUALITY)
    analysis = MediaAnalysis(source_sha256="a" * 64, source_media_type="image/png", hashes=(low,))
    assert not low.usable and good.usable
    assert analysis.hashes == (low,) and analysis.usable_hashes() == ()
    assert DEFAULT_MAX_DISTANCE == 31


def test_frame_hashes_are_in_time_order() -> None:
    late, early = PerceptualHash("0" * 64, 80, 2.0), PerceptualHash("0" * 64, 80, 1.0)
    with pytest.raises(ModelError, match="time order"):
        MediaAnalysis(source_sha256="a" * 64, source_media_type="video/mp4", hashes=(late, early))


def test_an_analysis_cannot_derive_its_own_source() -> None:
    with pytest.raises(ModelError, match="own source"):
        MediaAnalysis(source_sha256="a" * 64, source_media_type="video/mp4", keyframes=(Keyframe(0.0, "a" * 64),))


def test_absent_credentials_name_no_store_and_failed_ones_say_why() -> None:
    with pytest.raises(ModelError):
        ContentCredentials(CredentialState.NONE, manifest_store_sha256="b" * 64)
    with pytest.raises(ModelError):
        ContentCredentials(CredentialState.INVALID)
    assert ContentCredentials(CredentialState.INVALID, failure_codes=("assertion.dataHash.mismatch",))


def test_the_schema_refuses_what_the_model_refuses() -> None:
    document = to_document(MediaAnalysis(source_sha256="a" * 64, source_media_type="image/png"))
    good = canonical_json_loads(canonical_json(document))
    SCHEMA.validate(good)
    for bad in (
        {**good, "hashes": [{"value": "0" * 63, "quality": 80, "offset_s": None, "algorithm": "pdq"}]},
        {**good, "hashes": [{"value": "0" * 64, "quality": 101, "offset_s": None, "algorithm": "pdq"}]},
        {**good, "hashes": [{"value": "0" * 64, "quality": 80, "offset_s": None, "algorithm": "phash"}]},
        {**good, "extra": 1},
    ):
        with pytest.raises(jsonschema.ValidationError):
            SCHEMA.validate(bad)
