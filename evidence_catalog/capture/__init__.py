"""Capture of online media (yt-dlp as a library): see :mod:`evidence_catalog.capture.ytdlp`.

The names below are loaded when first used: an ingest or an add that captures nothing needs
only :mod:`evidence_catalog.capture.options`, not yt-dlp's side of the capture.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evidence_catalog.lazy import lazy_names

if TYPE_CHECKING:
    from evidence_catalog.capture.downloaded import CapturedFile, Download
    from evidence_catalog.capture.options import CaptureFailed, CaptureOptions, CaptureProgress, parse_size
    from evidence_catalog.capture.ytdlp import download

__all__ = ["CaptureFailed", "CaptureOptions", "CaptureProgress", "CapturedFile", "Download", "download", "parse_size"]

#: The module each name is loaded from.
_HOMES = {
    "CaptureFailed": "options",
    "CaptureOptions": "options",
    "CaptureProgress": "options",
    "parse_size": "options",
    "CapturedFile": "downloaded",
    "Download": "downloaded",
    "download": "ytdlp",
}


__getattr__, __dir__ = lazy_names(__name__, _HOMES, __all__)
