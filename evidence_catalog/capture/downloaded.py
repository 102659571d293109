"""What a capture brought back (:class:`Download`, :class:`CapturedFile`): the files yt-dlp
reports as written, found in its info dict with the role of each, the info dict as stored
(``info.json``, cookie values withheld), and what the platform said, normalised into the model.

Separate from driving yt-dlp: it reads only the info dict and the work area a capture left.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
from attrs import frozen

from evidence_catalog import model
from evidence_catalog.capture.options import CaptureFailed
from evidence_catalog.capture.written import Writes, WrittenFile
from evidence_catalog.capture.youtubedl import Log

#: How a withheld cookie value reads in stored documents.
WITHHELD = model.WITHHELD
WITHHELD_COOKIES = "cookie values in the platform metadata ('cookies' fields of info.json)"
WITHHELD_SET_COOKIE = "Set-Cookie header values of the media responses"


@frozen
class CapturedFile:
    """One file a capture produced, and what it is."""

    path: Path
    role: model.ArtifactRole
    #: For a merged file: the files it was made from, and how.
    derived_from: tuple[Path, ...] = ()
    derivation: str | None = None
    #: Its digests, computed from the bytes as they were written, and what the file looked like
    #: then (``None``: it is hashed by reading it).  See :mod:`evidence_catalog.capture.written`.
    written: WrittenFile | None = None


@frozen
class Download:
    """What one capture brought back."""

    #: The main media file first, then everything else.
    files: tuple[CapturedFile, ...]
    #: yt-dlp's info dict, cleaned as ``--write-info-json`` does, cookie values withheld.
    info: dict[str, Any]
    #: The same, as the exact bytes stored as ``info.json``.
    info_json: Path
    platform_info: model.PlatformInfo
    extractor: str | None
    platform: str | None
    platform_id: str | None
    final_url: str | None
    http_status: int | None
    responses: tuple[model.HttpResponse, ...]
    tools: tuple[model.Agent, ...]
    withheld: tuple[str, ...]
    warnings: tuple[str, ...]
    #: The digests of ``info_json`` as it was written.
    info_json_written: WrittenFile | None = None


def entries(info: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The videos of a result: itself, or each entry of a playlist (a post with several videos)."""
    if info.get("_type") == "playlist" or "entries" in info:
        for entry in info.get("entries") or ():
            if isinstance(entry, dict):
                yield from entries(entry)
    else:
        yield info


def files(
    info: dict[str, Any], work: Path, log: Log, ffmpeg: model.Agent | None, writes: Writes | None = None
) -> tuple[list[CapturedFile], bool]:
    """Every file the capture wrote, main media first; raise if a requested medium is missing."""
    media: list[CapturedFile] = []
    extra: list[CapturedFile] = []
    merged = False
    claimed: set[Path] = set()

    def existing(name: object) -> Path | None:
        if not isinstance(name, str):
            return None
        path = Path(os.path.abspath(name))  # yt-dlp's paths are relative to the working directory
        return path if path.is_file() and path.parent == work else None

    for entry in entries(info):
        downloads = entry.get("requested_downloads") or []
        if not downloads:
            reason = log.warnings[-1] if log.warnings else "no format could be downloaded"
            raise CaptureFailed(f"no media was downloaded for {entry.get('id') or 'an item'}: {reason}")
        for requested in downloads:
            main = existing(requested.get("filepath"))
            too_big = [w for w in log.warnings if "larger than max-filesize" in w]
            sources = [existing(f.get("filepath")) for f in requested.get("requested_formats") or ()]
            if main is None:
                reason = too_big[-1] if too_big else log.warnings[-1] if log.warnings else "the file did not arrive"
                raise CaptureFailed(f"media was not downloaded: {reason}")
            claimed.add(main)
            present = [s for s in sources if s is not None and s != main]
            if present:
                merged = True
                version = "" if ffmpeg is None or ffmpeg.version is None else f" {ffmpeg.version}"
                media.append(
                    CapturedFile(
                        main,
                        model.ArtifactRole.DERIVED,
                        derived_from=tuple(present),
                        derivation=f"streams merged into one file by ffmpeg{version} (yt-dlp FFmpegMerger)",
                    )
                )
                for source in present:
                    claimed.add(source)
                    extra.append(CapturedFile(source, model.ArtifactRole.ORIGINAL))
            else:
                media.append(CapturedFile(main, model.ArtifactRole.ORIGINAL))
        for thumbnail in entry.get("thumbnails") or ():
            path = existing(thumbnail.get("filepath")) if isinstance(thumbnail, dict) else None
            if path is not None and path not in claimed:
                claimed.add(path)
                extra.append(CapturedFile(path, model.ArtifactRole.THUMBNAIL))
        for subtitle in (entry.get("requested_subtitles") or {}).values():
            path = existing(subtitle.get("filepath")) if isinstance(subtitle, dict) else None
            if path is not None and path not in claimed:
                claimed.add(path)
                extra.append(CapturedFile(path, model.ArtifactRole.SUBTITLE))
    if not media:  # a playlist or feed without items: yt-dlp "succeeds" having downloaded nothing
        kind = "playlist" if info.get("_type") == "playlist" or "entries" in info else "page"
        raise CaptureFailed(f"no media was found: the {kind} at this URL holds no items to download")
    # Only files yt-dlp reports as finished are kept, and the description it writes itself.
    # Anything else is a leftover of a step that failed (a thumbnail cut short stays on disk
    # when yt-dlp gives up on it): never stored, but named.
    for path in sorted(work.iterdir()):
        if path in claimed or path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix == ".description":
            extra.append(CapturedFile(path, model.ArtifactRole.DESCRIPTION))
        else:
            log.warnings.append(f"not kept: {path.name} (yt-dlp did not report it as complete)")
    found = media + extra
    if writes is not None:
        found = [attrs.evolve(item, written=writes.written(item.path)) for item in found]
    return found, merged


def withhold_cookies(value: Any) -> bool:
    """Replace the value of every ``cookies`` member in place; tell whether any was found."""
    found = False
    if isinstance(value, dict):
        for key in list(value):
            if key == "cookies" and isinstance(value[key], str) and value[key]:
                value[key] = WITHHELD
                found = True
            else:
                found = withhold_cookies(value[key]) or found
    elif isinstance(value, list):
        for item in value:
            found = withhold_cookies(item) or found
    return found


def set_cookie_withheld(response: model.HttpResponse) -> bool:
    return any(name.lower() == "set-cookie" for name, _ in response.headers)


def info_text(info: dict[str, Any]) -> str:
    """An info dict as JSON text, as yt-dlp's own ``--write-info-json`` writes it (UTF-8, not
    ASCII-escaped), except that a lone surrogate a site sent (``"\\udcff"`` in its JSON-LD: half
    of a character, which UTF-8 cannot hold) is written as the escape it came as."""
    text = json.dumps(info, ensure_ascii=False)
    return _SURROGATE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


#: A surrogate code point: in JSON text from ``json.dumps`` only ever inside a string.
_SURROGATE = re.compile("[\ud800-\udfff]")


def text(value: Any) -> str | None:
    """A field of the info dict as text for the record: text or a number (the printed form of
    anything else is not what the site said), with a lone surrogate or a NUL the site sent
    escaped, as EXIF text is: the record, its log and its exports hold only text."""
    if value is None or isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00").strip()
    return text or None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value >= 0 and value == value and value != float("inf") else None


def platform_info(info: dict[str, Any]) -> model.PlatformInfo:
    """Normalise what the platform said (every field optional; odd values are left out)."""
    import datetime as dt

    uploaded_at = None
    timestamp = _number(info.get("timestamp"))
    if timestamp is not None:
        try:
            uploaded_at = dt.datetime.fromtimestamp(timestamp, dt.UTC)
        except (OverflowError, OSError, ValueError):
            uploaded_at = None
    upload_date = None
    raw_date = info.get("upload_date")
    if isinstance(raw_date, str) and len(raw_date) == 8 and raw_date.isdigit():
        try:
            upload_date = dt.date(int(raw_date[:4]), int(raw_date[4:6]), int(raw_date[6:])).isoformat()
        except ValueError:
            upload_date = None
    return model.PlatformInfo(
        title=text(info.get("title")),
        uploader=text(info.get("uploader")),
        uploader_id=text(info.get("uploader_id")),
        channel=text(info.get("channel")),
        channel_id=text(info.get("channel_id")),
        uploaded_at=uploaded_at,
        upload_date=upload_date,
        duration_s=_number(info.get("duration")),
        format_id=text(info.get("format_id")),
        webpage_url=text(info.get("webpage_url")),
    )
