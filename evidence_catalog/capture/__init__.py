"""Capture of online media (yt-dlp as a library): see :mod:`evidence_catalog.capture.ytdlp`."""

from evidence_catalog.capture.downloaded import CapturedFile, Download
from evidence_catalog.capture.options import CaptureFailed, CaptureOptions, CaptureProgress, parse_size
from evidence_catalog.capture.ytdlp import download

__all__ = ["CaptureFailed", "CaptureOptions", "CaptureProgress", "CapturedFile", "Download", "download", "parse_size"]
