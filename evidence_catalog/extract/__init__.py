"""Metadata extractors.  They read the *stored* copy of an artifact, never a network stream, and
never raise on a malformed or hostile file: problems are recorded on the artifact instead."""

from __future__ import annotations

from pathlib import Path

from evidence_catalog.extract.exif import read_exif
from evidence_catalog.extract.mediatype import sniff_media_type
from evidence_catalog.model import Agent, AgentKind, EmbeddedMetadata

__all__ = ["extract_metadata", "read_exif", "sniff_media_type"]


def extract_metadata(path: Path, media_type: str) -> EmbeddedMetadata | None:
    """Run the extractors that apply to this media type; ``None`` when none applies."""
    if not media_type.startswith("image/"):
        return None
    exif, errors, extractor = read_exif(path)
    return EmbeddedMetadata(
        extractor=Agent(name="exifread", kind=AgentKind.SOFTWARE, version=extractor),
        exif=exif,
        errors=errors,
    )
