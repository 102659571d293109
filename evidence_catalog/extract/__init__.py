"""Metadata extractors.  They read the *stored* copy of an artifact, never a network stream, and
never raise on a malformed or hostile file: problems are recorded on the artifact instead.

Images: EXIF (exifread) and the size and orientation from the header
(:mod:`evidence_catalog.extract.image`).  Audio and video: container and stream metadata with
PyAV, in a child process under time and memory limits (:mod:`evidence_catalog.extract.media`),
started for audio and video only: nothing else loads PyAV or starts a process.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from evidence_catalog.extract.mediatype import sniff_media_type
from evidence_catalog.lazy import lazy_names
from evidence_catalog.model import Agent, AgentKind, EmbeddedMetadata

if TYPE_CHECKING:
    from evidence_catalog.extract.exif import read_exif
    from evidence_catalog.extract.image import read_image_header

__all__ = ["extract_metadata", "legacy_metadata", "read_exif", "read_image_header", "sniff_media_type"]


def extract_metadata(path: Path, media_type: str) -> EmbeddedMetadata | None:
    """Run the extractors that apply to this media type; ``None`` when none applies."""
    if media_type.startswith("image/"):
        from evidence_catalog.extract.exif import read_exif  # exifread: only for images
        from evidence_catalog.extract.image import read_image_header

        exif, errors, extractor = read_exif(path)
        image, image_errors = read_image_header(path)
        return EmbeddedMetadata(
            extractor=Agent(name="exifread", kind=AgentKind.SOFTWARE, version=extractor),
            exif=exif,
            errors=(*errors, *image_errors),
            image=image,
        )
    if media_type.startswith(("audio/", "video/")):
        from evidence_catalog.extract.media import read_media  # a child process: only for media

        media, media_errors, reader = read_media(path)
        return EmbeddedMetadata(extractor=reader, errors=media_errors, media=media)
    return None


def legacy_metadata(path: Path, media_type: str) -> EmbeddedMetadata | None:
    """What :func:`extract_metadata` read before it read an image's size and orientation and
    an audio or video file's container: EXIF alone, for images.  An export made then describes
    its artifacts so, and an import compares their bytes with this when they differ from what
    is read now."""
    if not media_type.startswith("image/"):
        return None
    from evidence_catalog.extract.exif import read_exif

    exif, errors, extractor = read_exif(path)
    return EmbeddedMetadata(
        extractor=Agent(name="exifread", kind=AgentKind.SOFTWARE, version=extractor), exif=exif, errors=errors
    )


#: :func:`read_exif` and :func:`read_image_header`, loaded when first asked for (exifread is for
#: images: describing any other file does not load it).
__getattr__, __dir__ = lazy_names(__name__, {"read_exif": "exif", "read_image_header": "image"}, __all__)
