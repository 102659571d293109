"""The evidence domain as small, frozen, validated values.

Nothing here touches a disk, a network or a database, and nothing here knows about JSON: the one
converter in :mod:`evidence_catalog.serialize` turns these values into documents and back.  An
invalid object cannot be built: every class validates its fields when it is made.

The objects follow the Berkeley Protocol's view of online evidence:

* :class:`Artifact` -- bytes we hold, identified by SHA-256.
* :class:`Acquisition` -- how an artifact (or report) came to us: method, who, when, with what.
* :class:`Report` -- a statement published somewhere (a post, a feed item) about something.
* :class:`EvidenceRecord` -- the unit investigators work with; ties the above together with tags,
  notes, sensitivity flags, relations, claims and assessments.
* :class:`CustodyEvent` -- an append-only, hash-linked entry in the catalog's custody log.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Iterable
from typing import Any

import attrs
from attrs import field, frozen

from evidence_catalog.errors import ModelError
from evidence_catalog.values import ACTION as _ACTION
from evidence_catalog.values import DIGEST_LENGTHS as DIGEST_LENGTHS  # part of the model's API
from evidence_catalog.values import GENESIS_HASH as GENESIS_HASH  # part of the model's API
from evidence_catalog.values import MEDIA_TYPE as _MEDIA_TYPE
from evidence_catalog.values import finite_in as _finite_in
from evidence_catalog.values import has_control_characters as has_control_characters  # part of the model's API
from evidence_catalog.values import header_pairs as _header_pairs
from evidence_catalog.values import http_status as _http_status
from evidence_catalog.values import is_hex_digest as is_hex_digest  # part of the model's API
from evidence_catalog.values import is_record_id as is_record_id  # part of the model's API
from evidence_catalog.values import matches as _matches
from evidence_catalog.values import new_id as new_id  # part of the model's API
from evidence_catalog.values import non_negative as _non_negative
from evidence_catalog.values import not_blank as _not_blank
from evidence_catalog.values import one_of as _one_of
from evidence_catalog.values import optional_date as _optional_date
from evidence_catalog.values import optional_int_in as _optional_int_in
from evidence_catalog.values import optional_non_negative_number as _optional_non_negative_number
from evidence_catalog.values import optional_not_blank as _optional_not_blank
from evidence_catalog.values import optional_not_negative as _optional_not_negative
from evidence_catalog.values import optional_positive as _optional_positive
from evidence_catalog.values import optional_record_id as _optional_record_id
from evidence_catalog.values import optional_sha256 as _optional_sha256
from evidence_catalog.values import optional_utc as _optional_utc
from evidence_catalog.values import positive as _positive
from evidence_catalog.values import record_id as _record_id
from evidence_catalog.values import record_id_time as record_id_time  # part of the model's API
from evidence_catalog.values import sha256 as _sha256
from evidence_catalog.values import sha256_list as _sha256_list
from evidence_catalog.values import tags as _tags
from evidence_catalog.values import text_map as _text_map
from evidence_catalog.values import to_tag_set as _to_tag_set
from evidence_catalog.values import to_tuple as _to_tuple
from evidence_catalog.values import to_utc as to_utc  # part of the model's API
from evidence_catalog.values import utc_now as utc_now  # part of the model's API


class Choice(enum.StrEnum):
    """The base of the model's enumerations: a value that is none of them raises
    :class:`~evidence_catalog.errors.ModelError` naming the values allowed."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        what = re.sub(r"(?<!^)(?=[A-Z])", " ", cls.__name__).lower()
        allowed = ", ".join(member.value for member in cls)
        article = "an" if what[0] in "aeiou" else "a"
        raise ModelError(f"{value!r} is not {article} {what} (one of {allowed})")


# ---------------------------------------------------------------------------------------------
# Agents: who or what acted.


class AgentKind(Choice):
    """What kind of agent acted."""

    PERSON = "person"
    SOFTWARE = "software"
    ORGANIZATION = "organization"


@frozen
class Agent:
    """A person, an organisation or a piece of software that acted on evidence.

    >>> Agent(name="A. Analyst", email="analyst@example.org")
    Agent(name='A. Analyst', kind=<AgentKind.PERSON: 'person'>, email='analyst@example.org', ...)
    """

    name: str = field(validator=_not_blank)
    kind: AgentKind = field(default=AgentKind.PERSON, converter=AgentKind)
    email: str | None = field(default=None, validator=_optional_not_blank)
    organization: str | None = field(default=None, validator=_optional_not_blank)
    #: Version of a software agent.
    version: str | None = field(default=None, validator=_optional_not_blank)
    #: Host name the agent acted from, where known.
    host: str | None = field(default=None, validator=_optional_not_blank)


# ---------------------------------------------------------------------------------------------
# Artifacts: bytes we hold.


@frozen
class Digests:
    """Digests of one sequence of bytes.  SHA-256 is always present and is the identity."""

    sha256: str = field(validator=_sha256)
    md5: str | None = None
    sha1: str | None = None
    sha512: str | None = None
    blake2b: str | None = None

    def __attrs_post_init__(self) -> None:
        for algorithm, value in self.as_dict().items():
            if not is_hex_digest(value, algorithm):
                raise ModelError(f"{algorithm} digest must be lowercase hex, got {value!r}")

    def as_dict(self) -> dict[str, str]:
        """Return the digests that are present, by algorithm name."""
        # The fields read directly, not through attrs.asdict: this runs for every digest made
        # or compared (twice per artifact when a catalog is verified).
        return {name: value for name in _DIGEST_FIELDS if (value := getattr(self, name)) is not None}


_DIGEST_FIELDS = tuple(f.name for f in attrs.fields(Digests))


@frozen
class GeoPosition:
    """A position in WGS 84, as signed decimal degrees; altitude in metres above sea level."""

    latitude: float = field(validator=_finite_in(-90.0, 90.0))
    longitude: float = field(validator=_finite_in(-180.0, 180.0))
    altitude_m: float | None = field(default=None, validator=_finite_in(-1e6, 1e9))


@frozen
class ExifData:
    """EXIF metadata read from an image: every raw tag kept, the common ones normalised.

    Camera clocks are local and unverified: ``datetime_original`` is the camera's claim as an
    ISO 8601 local time, with its UTC offset only when the file states one.
    """

    raw: dict[str, str] = field(factory=dict)
    datetime_original: str | None = None
    make: str | None = None
    model: str | None = None
    software: str | None = None
    gps: GeoPosition | None = None


@frozen
class ImageInfo:
    """An image's size and orientation, read from its header (no pixel is decoded).

    ``width`` and ``height`` are the stored picture's; ``orientation`` is EXIF's Orientation as
    stored (1-8: 1 upright, 3 turned 180°, 6 and 8 turned a quarter, 2, 4, 5 and 7 mirrored),
    ``None`` when the file has none.  Displayed, an image of orientation 5 to 8 is ``height``
    wide and ``width`` high.
    """

    width: int = field(validator=_positive)
    height: int = field(validator=_positive)
    orientation: int | None = field(default=None, validator=_optional_int_in(range(1, 9)))


@frozen
class MediaLocation:
    """A position a media file's tags claim (ISO 6709 text, as phones and cameras write it):
    the tag it came from, its text exactly, and the position when the text is well formed."""

    tag: str = field(validator=_not_blank)
    text: str
    position: GeoPosition | None = None


class StreamKind(Choice):
    """What a stream of a media container carries."""

    VIDEO = "video"
    AUDIO = "audio"
    SUBTITLE = "subtitle"
    DATA = "data"
    ATTACHMENT = "attachment"
    UNKNOWN = "unknown"


@frozen
class MediaStream:
    """One stream of an audio or video container, as its headers describe it."""

    index: int = field(validator=_non_negative)
    kind: StreamKind = field(converter=StreamKind)
    codec: str | None = field(default=None, validator=_optional_not_blank)
    profile: str | None = field(default=None, validator=_optional_not_blank)
    width: int | None = field(default=None, validator=_optional_positive)
    height: int | None = field(default=None, validator=_optional_positive)
    #: Average frames per second.
    frame_rate: float | None = field(default=None, validator=_finite_in(0.0, 1e9))
    #: Degrees clockwise a player turns the decoded picture to show it: 0, 90, 180 or 270.
    rotation: int | None = field(default=None, validator=_optional_int_in(range(0, 360, 90)))
    #: Bits per second.
    bit_rate: int | None = field(default=None, validator=_optional_positive)
    sample_rate: int | None = field(default=None, validator=_optional_positive)
    channels: int | None = field(default=None, validator=_optional_positive)
    duration_s: float | None = field(default=None, validator=_finite_in(0.0, 1e12))
    #: Number of frames, where the header states it.
    frames: int | None = field(default=None, validator=_optional_positive)
    tags: dict[str, str] = field(factory=dict, validator=_text_map)


@frozen
class MediaInfo:
    """What an audio or video container's headers say: the format, the streams, every tag as
    read, and the tags people ask about pulled out -- each the device's or editor's claim."""

    #: The demuxer's name(s) for the format, e.g. ``mov,mp4,m4a,3gp,3g2,mj2``.
    format: str = field(validator=_not_blank)
    format_name: str | None = None
    duration_s: float | None = field(default=None, validator=_finite_in(0.0, 1e12))
    bit_rate: int | None = field(default=None, validator=_optional_positive)
    streams: tuple[MediaStream, ...] = field(default=(), converter=_to_tuple)
    tags: dict[str, str] = field(factory=dict, validator=_text_map)
    #: The container's ``creation_time`` tag, in UTC.
    created_at: dt.datetime | None = field(default=None, converter=_optional_utc)
    location: MediaLocation | None = None


@frozen
class EmbeddedMetadata:
    """What extractors read from the stored copy of an artifact, and what went wrong doing so.

    ``image`` and ``media`` are left out of documents when ``None`` (descriptions written
    before they existed read, hash and compare as they always did)."""

    extractor: Agent
    exif: ExifData | None = None
    #: Problems met while extracting (a corrupt or hostile block); the artifact is kept anyway.
    errors: tuple[str, ...] = field(default=(), converter=_to_tuple)
    #: An image's size and orientation.
    image: ImageInfo | None = None
    #: An audio or video file's container and streams.
    media: MediaInfo | None = None


@frozen
class Artifact:
    """Bytes held in the blob store, identified by their SHA-256."""

    digests: Digests
    size: int = field(validator=_non_negative)
    #: Media type sniffed from the bytes themselves, never from a name or a server's header.
    media_type: str = field(validator=_matches(_MEDIA_TYPE, "a media type such as image/jpeg"))
    metadata: EmbeddedMetadata | None = None

    @property
    def sha256(self) -> str:
        """The artifact's identity."""
        return self.digests.sha256


class ArtifactRole(Choice):
    """What an artifact is to the record that holds it."""

    ORIGINAL = "original"
    DERIVED = "derived"
    PLATFORM_METADATA = "platform_metadata"
    THUMBNAIL = "thumbnail"
    SUBTITLE = "subtitle"
    DESCRIPTION = "description"
    PAGE_SNAPSHOT = "page_snapshot"
    SOURCE_DOCUMENT = "source_document"
    #: A WACZ web archive of the HTTP exchanges a capture made (WARC records in a zip).
    WEB_ARCHIVE = "web_archive"
    #: A page capture's full-page screenshot (PNG), as the browser rendered the page.
    SCREENSHOT = "screenshot"
    #: A page capture's rendered DOM (HTML), as it stood once the page had loaded and run.
    RENDERED_PAGE = "rendered_page"
    #: A page capture's PDF print, as the browser printed it.
    PAGE_PRINT = "page_print"
    #: A page capture's text, as the browser showed it (``innerText`` of the body).
    PAGE_TEXT = "page_text"


@frozen
class RecordArtifact:
    """An artifact as part of a record: the bytes' description plus their role there."""

    artifact: Artifact
    role: ArtifactRole = field(default=ArtifactRole.ORIGINAL, converter=ArtifactRole)
    #: For a derived artifact: the SHA-256s of its sources (e.g. the video and audio streams a
    #: merged file was made from) and what was done to them.
    derived_from: tuple[str, ...] = field(default=(), converter=_to_tuple, validator=_sha256_list)
    derivation: str | None = None
    #: The SHA-256 of the earlier version of this item: the same source captured again served
    #: different bytes (platforms re-encode).
    version_of: str | None = field(default=None, validator=_optional_sha256)

    def __attrs_post_init__(self) -> None:
        if self.derived_from and self.derivation is None:
            raise ModelError("a derived artifact must say what was done (derivation)")
        if self.artifact.sha256 in self.derived_from or self.version_of == self.artifact.sha256:
            raise ModelError("an artifact cannot be derived from, or a version of, itself")


# ---------------------------------------------------------------------------------------------
# Acquisition: provenance of what we hold.


class AcquisitionMethod(Choice):
    """How something came into the catalog."""

    ADDED_FROM_DISK = "added_from_disk"
    CAPTURED_FROM_URL = "captured_from_url"
    INGESTED_FROM_FEED = "ingested_from_feed"
    IMPORTED = "imported"
    #: Made by this catalog from bytes it holds: an analysis (perceptual hashes, keyframes,
    #: Content Credentials) of an image or video, with the tools' versions and parameters.
    DERIVED = "derived"


class Outcome(Choice):
    """Whether an acquisition attempt succeeded."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"


#: How a withheld value (a cookie) reads in stored documents.
WITHHELD = "[withheld by evidence-catalog]"


def headers_without_cookies(headers: Iterable[tuple[object, object]]) -> list[tuple[str, str]]:
    """Response headers as recorded: names and values as text, in the order sent, each
    ``Set-Cookie`` value replaced by :data:`WITHHELD` (a session cookie is a credential)."""
    return [(str(name), WITHHELD if str(name).lower() == "set-cookie" else str(value)) for name, value in headers]


@frozen
class HttpResponse:
    """An HTTP response as received: the URL that answered, its status and its headers, in the
    order and spelling the server sent them (values of ``Set-Cookie`` withheld, see
    :attr:`Acquisition.withheld`)."""

    url: str = field(validator=_not_blank)
    status: int = field(validator=_http_status)
    headers: tuple[tuple[str, str], ...] = field(default=(), converter=_header_pairs)

    def __attrs_post_init__(self) -> None:
        for pair in self.headers:
            if len(pair) != 2 or not all(isinstance(part, str) for part in pair):
                raise ModelError("each header must be a [name, value] pair of text")


@frozen
class PlatformInfo:
    """What the platform said about captured media, normalised from the extractor's metadata.

    These are the platform's claims, not findings.  The verbatim metadata (yt-dlp's info dict)
    is kept as its own artifact and remains the source of truth; this is a convenient view.
    """

    title: str | None = None
    uploader: str | None = None
    uploader_id: str | None = None
    channel: str | None = None
    channel_id: str | None = None
    #: The upload time the platform gave, when it gave one to the second.
    uploaded_at: dt.datetime | None = field(default=None, converter=_optional_utc)
    #: The upload date the platform gave (YYYY-MM-DD), often all that is known.
    upload_date: str | None = field(default=None, validator=_optional_date)
    duration_s: float | None = field(default=None, validator=_optional_non_negative_number)
    #: The format(s) downloaded, as the extractor names them (``137+140`` for a merge).
    format_id: str | None = None
    #: The page of the item on the platform, as the extractor states it.
    webpage_url: str | None = None


#: Extractors that name an item after the last part of its URL (``video.mp4``,
#: ``manifest.mpd``): their ids say nothing about which item it is, so a re-capture of "the
#: same item" is recognised by its URL instead.
GENERIC_EXTRACTORS = frozenset({"Generic", "HTML5MediaEmbed"})


def item_key(extractor: str | None, platform_id: str | None) -> str | None:
    """``extractor:platform id`` -- one item on one platform -- or ``None`` when the pair does
    not identify an item (unknown, or a generic extractor's name taken from the URL)."""
    if extractor is None or platform_id is None or extractor in GENERIC_EXTRACTORS:
        return None
    return f"{extractor}:{platform_id}"


@frozen
class Acquisition:
    """How, when, by whom and with what an artifact was acquired.

    One artifact may have many acquisitions: the same bytes added twice, or captured again.
    """

    id: str = field(validator=_record_id)
    method: AcquisitionMethod = field(converter=AcquisitionMethod)
    started_at: dt.datetime = field(converter=to_utc)
    ended_at: dt.datetime = field(converter=to_utc)
    operator: Agent
    #: Software that did the work, with versions (this library, Python, yt-dlp ...).
    tools: tuple[Agent, ...] = field(default=(), converter=_to_tuple)
    artifact_sha256: str | None = field(default=None, validator=_optional_sha256)
    outcome: Outcome = field(default=Outcome.SUCCEEDED, converter=Outcome)
    #: Path of the file as given by the operator, made printable (see ``original_path_b64``).
    original_path: str | None = None
    #: The path's exact bytes (base64) when they are not valid UTF-8.
    original_path_b64: str | None = None
    #: Modification time the file system reported for the source file.
    file_modified_at: dt.datetime | None = field(default=None, converter=_optional_utc)
    #: Where the operator says the file came from (not checked by this library).
    source_url: str | None = None
    requested_url: str | None = None
    final_url: str | None = None
    http_status: int | None = None
    platform: str | None = None
    extractor: str | None = None
    platform_id: str | None = None
    error: str | None = None
    note: str | None = None
    #: Further artifacts the same acquisition stored: platform metadata, thumbnails, subtitles,
    #: the page, separately served streams.  ``artifact_sha256`` is the main one.
    other_artifacts: tuple[str, ...] = field(default=(), converter=_to_tuple, validator=_sha256_list)
    #: Normalised platform metadata of a capture.
    platform_info: PlatformInfo | None = None
    #: Responses to the requests for the media itself (several for a merge or a retry).
    responses: tuple[HttpResponse, ...] = field(default=(), converter=_to_tuple)
    #: What was deliberately left out of stored documents, and why (e.g. cookie values).
    withheld: tuple[str, ...] = field(default=(), converter=_to_tuple)
    #: Options of a capture that shape what was received, as ``name=value`` text: the format
    #: selector, whether a cookies file (a logged-in view) or a proxy was used, limits, retries.
    settings: tuple[str, ...] = field(default=(), converter=_to_tuple)

    def __attrs_post_init__(self) -> None:
        if self.other_artifacts and self.artifact_sha256 is None:
            raise ModelError("an acquisition with other artifacts must name its main artifact")
        if self.ended_at < self.started_at:
            raise ModelError("acquisition ended_at is before started_at")
        if self.outcome is Outcome.SUCCEEDED and self.error is not None:
            raise ModelError("a successful acquisition carries no error")
        if self.outcome is Outcome.FAILED and not self.error:
            raise ModelError("a failed acquisition must say why (error)")


# ---------------------------------------------------------------------------------------------
# Reports: statements published somewhere.


@frozen
class Source:
    """Where a report was published: platform, feed, account."""

    platform: str | None = None
    feed_name: str | None = None
    account_handle: str | None = None
    account_id: str | None = None
    url: str | None = None


@frozen
class LinkCard:
    """The preview a platform shows for a link; descriptions are often cut short."""

    site_name: str | None = None
    title: str | None = None
    description: str | None = None
    url: str | None = None
    truncated: bool = False


@frozen
class MediaLink:
    """Media a feed entry points at, as the feed states it: an RSS or Atom enclosure, or a
    Media RSS ``media:content``.  The media itself is only in the catalog once captured."""

    url: str = field(validator=_not_blank)
    #: ``enclosure`` or ``media_content``.
    kind: str = field(default="enclosure", validator=_one_of("enclosure", "media_content"))
    #: The media type and the length in bytes the feed states (not checked).
    media_type: str | None = None
    length: int | None = field(default=None, validator=_optional_not_negative)


@frozen
class Repost:
    """Who reposted whose post."""

    reposted_by: str = field(validator=_not_blank)
    original_author: str = field(validator=_not_blank)
    original_post_id: str | None = None


@frozen
class LineSpan:
    """Lines (1-based, inclusive) of a source document a report was read from."""

    first: int = field(validator=_positive)
    last: int = field(validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.last < self.first:
            raise ModelError("line span ends before it starts")


@frozen
class Report:
    """A statement published somewhere: a post, a repost, a feed item, an article."""

    id: str = field(validator=_record_id)
    source: Source
    text: str
    author: str | None = None
    language: str | None = None
    published_at: dt.datetime | None = field(default=None, converter=_optional_utc)
    #: When the source says the post was last changed (e.g. an Atom entry's ``updated``).
    updated_at: dt.datetime | None = field(default=None, converter=_optional_utc)
    post_id: str | None = None
    #: The report's own URL; ``None`` with ``url_known=False`` when the source did not give one.
    url: str | None = None
    url_known: bool = True
    mentions: tuple[str, ...] = field(default=(), converter=_to_tuple)
    hashtags: tuple[str, ...] = field(default=(), converter=_to_tuple)
    links: tuple[str, ...] = field(default=(), converter=_to_tuple)
    link_cards: tuple[LinkCard, ...] = field(default=(), converter=_to_tuple)
    #: Media the report points at (enclosures); ``ingest --capture-media`` captures them.
    media: tuple[MediaLink, ...] = field(default=(), converter=_to_tuple)
    repost: Repost | None = None
    #: The document (an artifact) the report was read from, and where in it.
    document_sha256: str | None = field(default=None, validator=_optional_sha256)
    line_span: LineSpan | None = None
    #: What makes two reports the same post: ``platform:post id`` where known, else ``sha256:``
    #: of its normalised feed, author and text (see ``evidence_catalog.ingest.digest``).
    identity: str | None = None


# ---------------------------------------------------------------------------------------------
# The investigators' judgements, kept apart from the evidence itself.


class TimePrecision(Choice):
    """How precisely an alleged time is known."""

    SECOND = "second"
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"
    YEAR = "year"


@frozen
class EventTime:
    """An alleged time: an instant (no ``end``) or an interval, with its precision."""

    start: dt.datetime = field(converter=to_utc)
    end: dt.datetime | None = field(default=None, converter=_optional_utc)
    precision: TimePrecision = field(default=TimePrecision.SECOND, converter=TimePrecision)

    def __attrs_post_init__(self) -> None:
        if self.end is not None and self.end < self.start:
            raise ModelError("event time ends before it starts")


@frozen
class Place:
    """An alleged place: a name and/or coordinates with an uncertainty radius."""

    name: str | None = None
    position: GeoPosition | None = None
    uncertainty_m: float | None = field(default=None, validator=_finite_in(0.0, 2.1e7))
    admin_area: str | None = None


@frozen
class Claim:
    """What an item allegedly shows, and who says so.  Never a finding of fact."""

    id: str = field(validator=_record_id)
    stated_by: Agent
    stated_at: dt.datetime = field(converter=to_utc)
    summary: str | None = None
    #: Code from the violation vocabulary, e.g. ``rome-8-2-a-i`` (wilful killing of POWs).
    category: str | None = None
    event_time: EventTime | None = None
    place: Place | None = None
    alleged_perpetrator: str | None = None
    #: The claim's source: a report on the record, or a person/organisation.
    source_report_id: str | None = field(default=None, validator=_optional_record_id)
    source_description: str | None = None


class VerificationStatus(Choice):
    """How far an item has been verified."""

    UNVERIFIED = "unverified"
    IN_PROGRESS = "in_progress"
    VERIFIED = "verified"
    DISPUTED = "disputed"
    FALSE = "false"


class VerificationMethod(Choice):
    """Kinds of verification work (Berkeley Protocol)."""

    SOURCE_ANALYSIS = "source_analysis"
    GEOLOCATION = "geolocation"
    CHRONOLOCATION = "chronolocation"
    TECHNICAL_ANALYSIS = "technical_analysis"


class Confidence(Choice):
    """How sure an assessor is."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


def _to_methods(values: Iterable[str]) -> tuple[VerificationMethod, ...]:
    return tuple(VerificationMethod(v) for v in values)


@frozen
class Assessment:
    """A verification judgement.  A newer one supersedes, never overwrites, an older one."""

    id: str = field(validator=_record_id)
    status: VerificationStatus = field(converter=VerificationStatus)
    assessor: Agent
    assessed_at: dt.datetime = field(converter=to_utc)
    methods: tuple[VerificationMethod, ...] = field(default=(), converter=_to_methods)
    confidence: Confidence | None = field(default=None, converter=attrs.converters.optional(Confidence))
    note: str | None = None
    supersedes: str | None = field(default=None, validator=_optional_record_id)


class RelationKind(Choice):
    """How two records relate."""

    DUPLICATE_OF = "duplicate_of"
    DERIVED_FROM = "derived_from"
    SAME_INCIDENT_AS = "same_incident_as"
    RESPONDS_TO = "responds_to"
    CONTRADICTS = "contradicts"


@frozen
class Relation:
    """A directed link from the record that holds it to another record."""

    kind: RelationKind = field(converter=RelationKind)
    target_id: str = field(validator=_record_id)
    linked_by: Agent
    linked_at: dt.datetime = field(converter=to_utc)
    note: str | None = None


class SensitivityKind(Choice):
    """What must not travel, or must travel with care."""

    GRAPHIC = "graphic"
    PERSONAL_DATA = "personal_data"
    PROTECTED_SOURCE = "protected_source"
    MINORS = "minors"


def _field_paths(_: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for item in value:
        if not isinstance(item, str) or not item or item.startswith("/") or item.endswith("/") or "//" in item:
            raise ModelError(f"{attribute.name} must hold field paths such as reports/<id>/author, got {item!r}")
        if has_control_characters(item):
            raise ModelError(f"{attribute.name}: field path {item!r} contains control characters")


@frozen
class SensitivityFlag:
    """A reason to withhold or redact a record's content in exports."""

    kind: SensitivityKind = field(converter=SensitivityKind)
    reason: str = field(validator=_not_blank)
    set_by: Agent
    set_at: dt.datetime = field(converter=to_utc)
    #: The artifacts (SHA-256) the flag is about; with no artifacts and no fields, every
    #: artifact of the record.
    artifacts: tuple[str, ...] = field(default=(), converter=_to_tuple, validator=_sha256_list)
    #: Field paths in the record the flag is about (see :func:`evidence_catalog.interchange.redact.resolve`),
    #: e.g. ``reports/<report id>/author`` or ``acquisitions/<acquisition id>/note``.
    fields: tuple[str, ...] = field(default=(), converter=_to_tuple, validator=_field_paths)


@frozen
class Note:
    """A free-text note on a record, attributed and timed."""

    id: str = field(validator=_record_id)
    text: str = field(validator=_not_blank)
    author: Agent
    written_at: dt.datetime = field(converter=to_utc)


# ---------------------------------------------------------------------------------------------
# The record.


@frozen
class EvidenceRecord:
    """The unit investigators work with: reports and artifacts with their provenance, plus the
    investigators' tags, notes, flags, relations, claims and assessments."""

    id: str = field(validator=_record_id)
    created_at: dt.datetime = field(converter=to_utc)
    created_by: Agent
    title: str | None = None
    artifacts: tuple[RecordArtifact, ...] = field(default=(), converter=_to_tuple)
    acquisitions: tuple[Acquisition, ...] = field(default=(), converter=_to_tuple)
    reports: tuple[Report, ...] = field(default=(), converter=_to_tuple)
    tags: tuple[str, ...] = field(default=(), converter=_to_tag_set, validator=_tags)
    notes: tuple[Note, ...] = field(default=(), converter=_to_tuple)
    flags: tuple[SensitivityFlag, ...] = field(default=(), converter=_to_tuple)
    relations: tuple[Relation, ...] = field(default=(), converter=_to_tuple)
    claims: tuple[Claim, ...] = field(default=(), converter=_to_tuple)
    assessments: tuple[Assessment, ...] = field(default=(), converter=_to_tuple)

    def __attrs_post_init__(self) -> None:
        held = {ra.artifact.sha256 for ra in self.artifacts}
        if len(held) != len(self.artifacts):
            raise ModelError(f"record {self.id} lists an artifact twice")
        for acquisition in self.acquisitions:
            for sha in (acquisition.artifact_sha256, *acquisition.other_artifacts):
                if sha is not None and sha not in held:
                    raise ModelError(f"acquisition {acquisition.id} names artifact {sha} not on the record")
        for relation in self.relations:
            if relation.target_id == self.id:
                raise ModelError(f"record {self.id} cannot relate to itself")

    def artifact(self, sha256: str) -> RecordArtifact | None:
        """Return the record's entry for the artifact with this SHA-256, if it holds it."""
        return next((ra for ra in self.artifacts if ra.artifact.sha256 == sha256), None)


# ---------------------------------------------------------------------------------------------
# Custody.


@frozen
class CustodyEvent:
    """One entry of the append-only custody log.

    ``hash`` is SHA-256 over the RFC 8785 canonical JSON of the event without its ``hash``
    member; ``prev_hash`` is the previous event's ``hash`` (:data:`GENESIS_HASH` for the first).
    See :mod:`evidence_catalog.custody`.
    """

    seq: int = field(validator=_non_negative)
    at: dt.datetime = field(converter=to_utc)
    actor: Agent
    action: str = field(validator=_matches(_ACTION, "lowercase words joined by dots, such as record.created"))
    #: What the event is about: a record id, an artifact SHA-256, or ``catalog``.
    subject: str = field(validator=_not_blank)
    prev_hash: str = field(validator=_sha256)
    hash: str = field(validator=_sha256)
    details: dict[str, Any] = field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if self.seq < 1:
            raise ModelError("custody event sequence numbers start at 1")


@frozen
class ExportBundle:
    """A JSON export: records with their custody events, and who made it when with what."""

    exported_at: dt.datetime = field(converter=to_utc)
    exported_by: Agent
    generator: Agent
    records: tuple[EvidenceRecord, ...] = field(default=(), converter=_to_tuple)
    #: The whole log when the whole catalog is exported; otherwise the events about the
    #: exported records (a subset whose links cannot be walked on their own).
    custody_events: tuple[CustodyEvent, ...] = field(default=(), converter=_to_tuple)
    complete_log: bool = False
    #: The latest signed checkpoint of the log (a C2SP signed note) when the export was made: it
    #: covers every event exported; ``None`` for a catalog without a log key.
    checkpoint: str | None = None
