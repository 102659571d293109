"""What an analysis derives from an image or video: perceptual hashes, keyframes, Content Credentials.

An analysis of one artifact is written as a JSON document, :class:`MediaAnalysis`, that is
stored as an artifact of its own: derived from the analysed artifact (its ``derived_from``), with
an acquisition of method ``derived`` naming the tools, their versions and the parameters, and a
``media.analyzed`` custody event in the same transaction.  Keyframes, the contact sheet and a
C2PA manifest store are stored the same way, as derived artifacts the document names by SHA-256.
Because everything derived is bytes under their hash, an export carries it, an import checks it,
and ``verify --deep`` can make it again from the analysed bytes and compare.

The document holds no time and nothing of the machine beyond the tools' versions: the same bytes
analysed by the same tools with the same parameters give the same document, byte for byte, so
running an analysis twice stores nothing new (``analyze`` is idempotent by construction).

Nothing here touches a disk or runs a decoder: the adapters in :mod:`evidence_catalog.extract`
do the work and build these values, which refuse what is impossible.
"""

from __future__ import annotations

import datetime as dt

from attrs import field, frozen

from evidence_catalog.errors import ModelError
from evidence_catalog.model import Agent, Choice
from evidence_catalog.values import finite_in as _finite_in
from evidence_catalog.values import one_of as _one_of
from evidence_catalog.values import optional_sha256 as _optional_sha256
from evidence_catalog.values import optional_utc as _optional_utc
from evidence_catalog.values import sha256 as _sha256
from evidence_catalog.values import text_map as _text_map
from evidence_catalog.values import to_tuple as _to_tuple

#: The one perceptual hash algorithm so far: Meta's PDQ (256 bits, written as 64 hex digits).
PDQ = "pdq"
PDQ_BITS = 256
#: PDQ's quality (0-100) below which a hash is kept but never matched: Meta's reference
#: implementation calls hashes under 50 too featureless to be trusted for matching.
MIN_QUALITY = 50
#: PDQ's customary match threshold: at most 31 of the 256 bits differ.
DEFAULT_MAX_DISTANCE = 31
_HEX = frozenset("0123456789abcdef")


def _pdq_hex(_: object, attribute: object, value: str) -> None:
    if not isinstance(value, str) or len(value) != PDQ_BITS // 4 or not set(value) <= _HEX:
        raise ModelError(f"a PDQ hash is {PDQ_BITS // 4} lowercase hex digits, got {value!r}")


def _quality(_: object, attribute: object, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ModelError(f"a PDQ quality is a whole number from 0 to 100, got {value!r}")


def hamming(a: str, b: str) -> int:
    """How many bits differ between two hashes written as hex of the same length."""
    if len(a) != len(b):
        raise ModelError("hashes of different lengths cannot be compared")
    return (int(a, 16) ^ int(b, 16)).bit_count()


@frozen
class PerceptualHash:
    """A perceptual hash of an image, or of one frame of a video at ``offset_s`` seconds.

    A hash whose ``quality`` is under :data:`MIN_QUALITY` (a nearly uniform picture: a black
    frame, a white page) is kept but never used to match."""

    value: str = field(validator=_pdq_hex)
    quality: int = field(validator=_quality)
    #: Seconds from the start of the video to the frame hashed (``None`` for an image).
    offset_s: float | None = field(default=None, validator=_finite_in(0.0, 1e12))
    algorithm: str = field(default=PDQ, validator=_one_of(PDQ))

    @property
    def usable(self) -> bool:
        """Whether the hash is good enough to match on."""
        return self.quality >= MIN_QUALITY

    def distance(self, other: PerceptualHash) -> int:
        """Bits that differ from *other* (same algorithm)."""
        if other.algorithm != self.algorithm:
            raise ModelError(f"a {self.algorithm} hash cannot be compared with a {other.algorithm} hash")
        return hamming(self.value, other.value)


@frozen
class Keyframe:
    """A frame of a video kept as an image (a derived artifact), for a person to look at."""

    offset_s: float = field(validator=_finite_in(0.0, 1e12))
    sha256: str = field(validator=_sha256)


class CredentialState(Choice):
    """What checking an artifact's C2PA Content Credentials found.

    ``none`` (no manifest) says nothing of whether the file was changed: most files carry none."""

    NONE = "none"
    VALID = "valid"
    TRUSTED = "trusted"
    INVALID = "invalid"
    #: The manifest store could not be read or checked (corrupt, or the reader failed).
    UNREADABLE = "unreadable"


@frozen
class ContentCredentials:
    """A C2PA manifest store as read and validated offline (no remote manifest, no OCSP)."""

    state: CredentialState = field(converter=CredentialState)
    #: The manifest store, verbatim, kept as a derived artifact.
    manifest_store_sha256: str | None = field(default=None, validator=_optional_sha256)
    active_manifest: str | None = None
    #: The validator's status codes for what failed (``assertion.dataHash.mismatch`` ...).
    failure_codes: tuple[str, ...] = field(default=(), converter=_to_tuple)
    #: The signing certificate's subject (its issuer's common name when it has none).
    signer: str | None = None
    claim_generator: str | None = None
    signed_at: dt.datetime | None = field(default=None, converter=_optional_utc)
    #: The manifest's actions, as C2PA names them (``c2pa.created``, ``c2pa.edited`` ...).
    actions: tuple[str, ...] = field(default=(), converter=_to_tuple)
    #: The ingredients' titles as the manifest gives them.
    ingredients: tuple[str, ...] = field(default=(), converter=_to_tuple)
    errors: tuple[str, ...] = field(default=(), converter=_to_tuple)

    def __attrs_post_init__(self) -> None:
        if self.state is CredentialState.NONE and (self.manifest_store_sha256 or self.failure_codes):
            raise ModelError("credentials found to be absent cannot name a manifest store or failures")
        if self.state is CredentialState.INVALID and not self.failure_codes and not self.errors:
            raise ModelError("invalid credentials must say what failed")


@frozen
class MediaAnalysis:
    """What the analysis of one image or video derived from its bytes, and with what.

    ``errors`` says what could not be derived and why (a decoder that stopped, a frame count
    over the limit, a corrupt manifest); what was derived before is kept."""

    source_sha256: str = field(validator=_sha256)
    source_media_type: str
    #: The software that made the values, with versions (pdqhash, Pillow, PyAV, FFmpeg, c2pa).
    tools: tuple[Agent, ...] = field(default=(), converter=_to_tuple)
    #: The parameters that shape the values, as text (``pdq.frame_interval_s`` = ``1``).
    parameters: dict[str, str] = field(factory=dict, validator=_text_map)
    hashes: tuple[PerceptualHash, ...] = field(default=(), converter=_to_tuple)
    keyframes: tuple[Keyframe, ...] = field(default=(), converter=_to_tuple)
    contact_sheet_sha256: str | None = field(default=None, validator=_optional_sha256)
    credentials: ContentCredentials | None = None
    errors: tuple[str, ...] = field(default=(), converter=_to_tuple)

    def __attrs_post_init__(self) -> None:
        offsets = [h.offset_s for h in self.hashes]
        if any(o is not None for o in offsets) and offsets != sorted(o for o in offsets if o is not None):
            raise ModelError("a video's frame hashes are listed in time order, each with its offset")
        if self.source_sha256 in self.derived_sha256s():
            raise ModelError("an analysis cannot derive its own source")

    def derived_sha256s(self) -> tuple[str, ...]:
        """The derived artifacts the analysis names: keyframes, contact sheet, manifest store."""
        found = [k.sha256 for k in self.keyframes]
        if self.contact_sheet_sha256 is not None:
            found.append(self.contact_sheet_sha256)
        if self.credentials is not None and self.credentials.manifest_store_sha256 is not None:
            found.append(self.credentials.manifest_store_sha256)
        return tuple(dict.fromkeys(found))

    def usable_hashes(self) -> tuple[PerceptualHash, ...]:
        """The hashes good enough to match on."""
        return tuple(h for h in self.hashes if h.usable)
