"""Capture of online media (yt-dlp as a library): see :mod:`evidence_catalog.capture.ytdlp`.

The names below are loaded when first used: an ingest or an add that captures nothing needs
only :mod:`evidence_catalog.capture.options`, not yt-dlp's side of the capture.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
