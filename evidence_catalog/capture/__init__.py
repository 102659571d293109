"""Capture of online media (yt-dlp as a library): see :mod:`evidence_catalog.capture.ytdlp`."""

from evidence_catalog.capture.ytdlp import (
    CapturedFile,
    CaptureFailed,
    CaptureOptions,
    CaptureProgress,
    Download,
    download,
    parse_size,
)

__all__ = ["CaptureFailed", "CaptureOptions", "CaptureProgress", "CapturedFile", "Download", "download", "parse_size"]
