"""Hypothesis strategies that build any valid model value, with arbitrary Unicode text."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Sequence

from hypothesis import strategies as st

from evidence_catalog import model

text = st.text(max_size=40)
nonblank = text.filter(lambda s: s.strip() != "")
optional_text = st.none() | text
optional_nonblank = st.none() | nonblank
hex_digest = {n: st.binary(min_size=n // 2, max_size=n // 2).map(bytes.hex) for n in (32, 40, 64, 128)}
sha256 = hex_digest[64]

timestamps = st.datetimes(
    min_value=dt.datetime(1970, 1, 2),
    max_value=dt.datetime(2200, 1, 1),
    timezones=st.just(dt.UTC) | st.timezones(),
)


@st.composite
def record_ids(draw: st.DrawFn) -> str:
    millis = draw(st.integers(min_value=0, max_value=2**48 - 1))
    rand_a = draw(st.integers(min_value=0, max_value=2**12 - 1))
    rand_b = draw(st.integers(min_value=0, max_value=2**62 - 1))
    value = (millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return str(uuid.UUID(int=value))


agents = st.builds(
    model.Agent,
    name=nonblank,
    kind=st.sampled_from(model.AgentKind),
    email=optional_nonblank,
    organization=optional_nonblank,
    version=optional_nonblank,
    host=optional_nonblank,
)
digests = st.builds(
    model.Digests,
    sha256=sha256,
    md5=st.none() | hex_digest[32],
    sha1=st.none() | hex_digest[40],
    sha512=st.none() | hex_digest[128],
    blake2b=st.none() | hex_digest[128],
)
finite = st.floats(allow_nan=False, allow_infinity=False)
positions = st.builds(
    model.GeoPosition,
    latitude=st.floats(min_value=-90, max_value=90),
    longitude=st.floats(min_value=-180, max_value=180),
    altitude_m=st.none() | st.floats(min_value=-1e6, max_value=1e9),
)
exif = st.builds(
    model.ExifData,
    raw=st.dictionaries(text, text, max_size=5),
    datetime_original=optional_text,
    make=optional_text,
    model=optional_text,
    software=optional_text,
    gps=st.none() | positions,
)
image_infos = st.builds(
    model.ImageInfo,
    width=st.integers(min_value=1, max_value=2**31),
    height=st.integers(min_value=1, max_value=2**31),
    orientation=st.none() | st.integers(min_value=1, max_value=8),
)
_counts = st.none() | st.integers(min_value=1, max_value=2**53)
_seconds = st.none() | st.floats(min_value=0, max_value=1e12)
tag_maps = st.dictionaries(text, text, max_size=4)
media_streams = st.builds(
    model.MediaStream,
    index=st.integers(min_value=0, max_value=1000),
    kind=st.sampled_from(model.StreamKind),
    codec=optional_nonblank,
    profile=optional_nonblank,
    width=_counts,
    height=_counts,
    frame_rate=st.none() | st.floats(min_value=0, max_value=1e9),
    rotation=st.none() | st.sampled_from([0, 90, 180, 270]),
    bit_rate=_counts,
    sample_rate=_counts,
    channels=_counts,
    duration_s=_seconds,
    frames=_counts,
    tags=tag_maps,
)
media_infos = st.builds(
    model.MediaInfo,
    format=nonblank,
    format_name=optional_text,
    duration_s=_seconds,
    bit_rate=_counts,
    streams=st.lists(media_streams, max_size=3),
    tags=tag_maps,
    created_at=st.none() | timestamps,
    location=st.none() | st.builds(model.MediaLocation, tag=nonblank, text=text, position=st.none() | positions),
)
metadata = st.builds(
    model.EmbeddedMetadata,
    extractor=agents,
    exif=st.none() | exif,
    errors=st.lists(text, max_size=3),
    image=st.none() | image_infos,
    media=st.none() | media_infos,
)
media_types = st.from_regex(r"\A[a-z0-9][a-z0-9.+-]{0,10}/[a-z0-9][a-z0-9.+-]{0,10}\Z")
artifacts = st.builds(
    model.Artifact,
    digests=digests,
    size=st.integers(min_value=0, max_value=2**53),
    media_type=media_types,
    metadata=st.none() | metadata,
)


@st.composite
def record_artifacts(draw: st.DrawFn) -> model.RecordArtifact:
    artifact = draw(artifacts)
    others = sha256.filter(lambda s: s != artifact.sha256)
    derived = draw(st.lists(others, max_size=3))
    return model.RecordArtifact(
        artifact=artifact,
        role=draw(st.sampled_from(model.ArtifactRole)),
        derived_from=derived,
        derivation=draw(nonblank) if derived else draw(optional_text),
        version_of=draw(st.none() | others),
    )


http_headers = st.lists(st.tuples(text, text), max_size=4)
http_responses = st.builds(
    model.HttpResponse,
    url=nonblank,
    status=st.integers(min_value=100, max_value=999),
    headers=http_headers,
)
platform_infos = st.builds(
    model.PlatformInfo,
    title=optional_text,
    uploader=optional_text,
    uploader_id=optional_text,
    channel=optional_text,
    channel_id=optional_text,
    uploaded_at=st.none() | timestamps,
    upload_date=st.none() | st.dates(min_value=dt.date(1900, 1, 1)).map(dt.date.isoformat),
    duration_s=st.none() | st.floats(min_value=0, max_value=1e7, allow_nan=False) | st.integers(0, 10**7),
    format_id=optional_text,
    webpage_url=optional_text,
)


@st.composite
def acquisitions(draw: st.DrawFn, shas: Sequence[str] = ()) -> model.Acquisition:
    start = draw(timestamps)
    # In UTC: wall-clock arithmetic across a daylight-saving change could end before it started.
    end = start.astimezone(dt.UTC) + draw(st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=3)))
    outcome = draw(st.sampled_from(model.Outcome))
    main = draw(st.none() | st.sampled_from(shas)) if shas else None
    return model.Acquisition(
        id=draw(record_ids()),
        method=draw(st.sampled_from(model.AcquisitionMethod)),
        started_at=start,
        ended_at=end,
        operator=draw(agents),
        tools=draw(st.lists(agents, max_size=2)),
        artifact_sha256=main,
        outcome=outcome,
        original_path=draw(optional_text),
        original_path_b64=draw(st.none() | st.binary(max_size=20).map(lambda b: base64.b64encode(b).decode())),
        file_modified_at=draw(st.none() | timestamps),
        source_url=draw(optional_text),
        requested_url=draw(optional_text),
        final_url=draw(optional_text),
        http_status=draw(st.none() | st.integers(min_value=100, max_value=599)),
        platform=draw(optional_text),
        extractor=draw(optional_text),
        platform_id=draw(optional_text),
        error=draw(nonblank) if outcome is model.Outcome.FAILED else None,
        note=draw(optional_text),
        other_artifacts=draw(st.lists(st.sampled_from(shas), max_size=2)) if main is not None else (),
        platform_info=draw(st.none() | platform_infos),
        responses=draw(st.lists(http_responses, max_size=2)),
        withheld=draw(st.lists(text, max_size=2)),
    )


@st.composite
def line_spans(draw: st.DrawFn) -> model.LineSpan:
    first = draw(st.integers(min_value=1, max_value=10_000))
    return model.LineSpan(first=first, last=first + draw(st.integers(min_value=0, max_value=100)))


reports = st.builds(
    model.Report,
    id=record_ids(),
    source=st.builds(
        model.Source,
        platform=optional_text,
        feed_name=optional_text,
        account_handle=optional_text,
        account_id=optional_text,
        url=optional_text,
    ),
    text=text,
    author=optional_text,
    language=optional_text,
    published_at=st.none() | timestamps,
    updated_at=st.none() | timestamps,
    post_id=optional_text,
    url=optional_text,
    url_known=st.booleans(),
    mentions=st.lists(text, max_size=3),
    hashtags=st.lists(text, max_size=3),
    links=st.lists(text, max_size=2),
    link_cards=st.lists(
        st.builds(
            model.LinkCard,
            site_name=optional_text,
            title=optional_text,
            description=optional_text,
            url=optional_text,
            truncated=st.booleans(),
        ),
        max_size=2,
    ),
    media=st.lists(
        st.builds(
            model.MediaLink,
            url=nonblank,
            kind=st.sampled_from(["enclosure", "media_content"]),
            media_type=optional_text,
            length=st.none() | st.integers(min_value=0, max_value=2**53),
        ),
        max_size=2,
    ),
    repost=st.none()
    | st.builds(model.Repost, reposted_by=nonblank, original_author=nonblank, original_post_id=optional_text),
    document_sha256=st.none() | sha256,
    line_span=st.none() | line_spans(),
)
notes = st.builds(model.Note, id=record_ids(), text=nonblank, author=agents, written_at=timestamps)
flags = st.builds(
    model.SensitivityFlag,
    kind=st.sampled_from(model.SensitivityKind),
    reason=nonblank,
    set_by=agents,
    set_at=timestamps,
)


@st.composite
def event_times(draw: st.DrawFn) -> model.EventTime:
    start = draw(timestamps)
    end = draw(st.none() | st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=400)))
    return model.EventTime(
        start=start,
        end=None if end is None else start.astimezone(dt.UTC) + end,
        precision=draw(st.sampled_from(model.TimePrecision)),
    )


claims = st.builds(
    model.Claim,
    id=record_ids(),
    stated_by=agents,
    stated_at=timestamps,
    summary=optional_text,
    category=optional_text,
    event_time=st.none() | event_times(),
    place=st.none()
    | st.builds(
        model.Place,
        name=optional_text,
        position=st.none() | positions,
        uncertainty_m=st.none() | st.floats(min_value=0, max_value=2e7),
        admin_area=optional_text,
    ),
    alleged_perpetrator=optional_text,
    source_report_id=st.none() | record_ids(),
    source_description=optional_text,
)
assessments = st.builds(
    model.Assessment,
    id=record_ids(),
    status=st.sampled_from(model.VerificationStatus),
    assessor=agents,
    assessed_at=timestamps,
    methods=st.lists(st.sampled_from(model.VerificationMethod), max_size=4),
    confidence=st.none() | st.sampled_from(model.Confidence),
    note=optional_text,
    supersedes=st.none() | record_ids(),
)
tags = st.lists(
    st.text(min_size=1, max_size=15).filter(lambda t: t == t.strip() and t and not model.has_control_characters(t)),
    max_size=4,
)


@st.composite
def evidence_records(draw: st.DrawFn) -> model.EvidenceRecord:
    record_id = draw(record_ids())
    entries = draw(st.lists(record_artifacts(), max_size=3, unique_by=lambda ra: ra.artifact.sha256))
    shas = [e.artifact.sha256 for e in entries]
    acquired = draw(st.lists(acquisitions(shas), max_size=3))
    relations = draw(
        st.lists(
            st.builds(
                model.Relation,
                kind=st.sampled_from(model.RelationKind),
                target_id=record_ids().filter(lambda t: t != record_id),
                linked_by=agents,
                linked_at=timestamps,
                note=optional_text,
            ),
            max_size=2,
        )
    )
    return model.EvidenceRecord(
        id=record_id,
        created_at=draw(timestamps),
        created_by=draw(agents),
        title=draw(optional_text),
        artifacts=entries,
        acquisitions=acquired,
        reports=draw(st.lists(reports, max_size=2)),
        tags=draw(tags),
        notes=draw(st.lists(notes, max_size=2)),
        flags=draw(st.lists(flags, max_size=2)),
        relations=relations,
        claims=draw(st.lists(claims, max_size=2)),
        assessments=draw(st.lists(assessments, max_size=2)),
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1) | finite | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=10,
)
details = st.dictionaries(text, json_values, max_size=4)
