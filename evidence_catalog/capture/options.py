"""What a user can ask of a capture (:class:`CaptureOptions`), the checks that refuse what yt-dlp
could not use before a capture starts, and how a capture that did not work is reported
(:class:`CaptureFailed`).

Separate from the capture itself: the command line, ingest and the catalog build and check
options without driving yt-dlp.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from attrs import frozen

from evidence_catalog.errors import InputError, NetworkError

CaptureProgress = Callable[[str, int, int | None], None]
"""Called with (file name, bytes so far, total bytes if known) while media downloads."""


class CaptureFailed(NetworkError):  # noqa: N818 -- an outcome, caught by the catalog
    """A capture attempt did not produce what was asked; ``message`` says why in one line, and
    ``http_status`` and ``final_url`` what the server answered, when yt-dlp says so.  The
    catalog records it as a failed capture."""

    def __init__(self, message: str, *, http_status: int | None = None, final_url: str | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.final_url = final_url


@frozen
class CaptureOptions:
    """What a user can ask of a capture; every field is passed to yt-dlp as documented there.

    >>> CaptureOptions(rate_limit=parse_size("2M", "rate limit")).rate_limit
    2097152
    """

    #: yt-dlp format selector (``-f``), e.g. ``"best"`` or ``"bv*+ba/b"``; its default otherwise.
    format: str | None = None
    #: A Netscape/Mozilla cookies.txt for sites that need a logged-in session.  Only a copy is
    #: used; values never reach stored documents.
    cookies_file: Path | None = None
    #: ``http://``, ``https://`` or ``socks5://`` proxy URL.
    proxy: str | None = None
    #: Maximum download rate in bytes per second.
    rate_limit: int | None = None
    #: Refuse media larger than this many bytes (the capture fails, nothing is stored).
    max_filesize: int | None = None
    #: Seconds to wait for a network read before giving up.
    socket_timeout: float = 30.0
    #: How many times yt-dlp retries a failed or cut-short download.
    retries: int = 3
    #: ``None``: merge separate streams with ffmpeg when it is installed; ``False``: never use it.
    ffmpeg: bool | None = None
    #: Where ffmpeg is, when not on ``PATH``.
    ffmpeg_location: str | None = None
    #: Also keep thumbnails, subtitles (those the uploader provided) and the description.
    thumbnails: bool = True
    subtitles: bool = True
    description: bool = True
    #: Record every HTTP exchange of the capture (the page, API calls, media, redirects, failed
    #: attempts) into a WARC, stored as a WACZ web archive with the record (role ``web_archive``).
    archive: bool = True

    def __attrs_post_init__(self) -> None:
        if self.cookies_file is not None:
            check_cookies_file(self.cookies_file)
        for name in ("rate_limit", "max_filesize"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InputError(f"must be a positive number of bytes, got {value!r}", where=name.replace("_", " "))
        if not (isinstance(self.socket_timeout, int | float) and 0 < self.socket_timeout <= 3600):
            raise InputError("must be between 0 and 3600 seconds", where="timeout")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or not 0 <= self.retries <= 100:
            raise InputError("must be a whole number from 0 to 100", where="retries")
        if self.proxy is not None:
            check_proxy(self.proxy)
        if self.format is not None and not self.format.strip():
            raise InputError("must not be blank", where="format")
        if self.format is not None:
            check_format(self.format)

    def describe(self) -> tuple[str, ...]:
        """The options that shape what a capture receives, as recorded on its acquisition
        (never a credential: a proxy is named by scheme, host and port only)."""
        import urllib.parse

        settings = []
        if self.format is not None:
            settings.append(f"format={self.format}")
        if self.cookies_file is not None:
            settings.append("cookies=a cookies file was used (the view of a logged-in account)")
        if self.proxy is not None:
            parts = urllib.parse.urlsplit(self.proxy)
            host = parts.hostname or "?"
            settings.append(f"proxy={parts.scheme}://{host}" + (f":{parts.port}" if parts.port else ""))
        if self.rate_limit is not None:
            settings.append(f"rate_limit={self.rate_limit}")
        if self.max_filesize is not None:
            settings.append(f"max_filesize={self.max_filesize}")
        if self.ffmpeg is False:
            settings.append("ffmpeg=off")
        if not self.archive:
            settings.append("archive=off")
        settings.append(f"retries={self.retries}")
        return tuple(settings)


def parse_size(text: str, where: str) -> int:
    """A size as users write it (``500K``, ``2M``, ``1.5G``, ``800``), in bytes."""
    from yt_dlp.utils import parse_bytes

    value = parse_bytes(text.strip()) if isinstance(text, str) else None
    if value is None or value < 1:
        raise InputError(f"{text!r} is not a size (write e.g. 800K, 2M or 1G)", where=where)
    return int(value)


#: Proxy schemes yt-dlp can use.
PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")


def check_proxy(proxy: str) -> None:
    """Refuse a proxy URL yt-dlp cannot use, or that :meth:`CaptureOptions.describe` cannot read."""
    import urllib.parse

    problem = f"{proxy!r} is not a proxy URL (e.g. socks5://127.0.0.1:9050)"
    try:
        parts = urllib.parse.urlsplit(proxy)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number from 0 to 65535
    except ValueError as exc:
        raise InputError(f"{problem}: {exc}", where="proxy") from exc
    if "://" not in proxy or not parts.hostname:
        raise InputError(problem, where="proxy")
    if parts.scheme.lower() not in PROXY_SCHEMES:
        raise InputError(f"{problem}: use one of {', '.join(PROXY_SCHEMES)}", where="proxy")


def check_format(spec: str) -> None:
    """Refuse a format selector yt-dlp cannot parse (it would fail only once a capture starts)."""
    import yt_dlp

    from evidence_catalog.capture.youtubedl import Log

    try:
        with yt_dlp.YoutubeDL({"logger": Log(), "cachedir": False}) as probe:
            probe.build_format_selector(spec)
    except SyntaxError as exc:
        reason = (exc.msg or "").splitlines()[0].removeprefix("Invalid format specification: ")
        raise InputError(f"{spec!r} is not a yt-dlp format selector ({reason})", where="format") from exc


def check_cookies_file(path: Path) -> None:
    """Refuse a cookies file that is missing, unreadable or not in the Netscape format."""
    where = os.fsdecode(path)
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            head = stream.read(4096)
    except FileNotFoundError as exc:
        raise InputError("no such cookies file", where=where) from exc
    except IsADirectoryError as exc:
        raise InputError("is a directory, not a cookies file", where=where) from exc
    except OSError as exc:
        raise InputError(f"cannot read cookies file ({exc.strerror})", where=where) from exc
    lines = [line for line in head.splitlines() if line.strip() and not line.startswith("#")]
    if not head.startswith("# ") and not any(line.count("\t") == 6 for line in lines):
        raise InputError("is not a cookies.txt file (Netscape format: 7 tab-separated fields per line)", where=where)
    # What yt-dlp will load when the capture starts must load now: it is stricter (a header line,
    # UTF-8), and a file it refuses would only fail once the capture had begun.
    import contextlib
    import http.cookiejar
    import io

    from yt_dlp.cookies import YoutubeDLCookieJar

    skipped = io.StringIO()  # yt-dlp prints skipped lines straight to standard error
    try:
        with contextlib.redirect_stderr(skipped):
            YoutubeDLCookieJar(path).load()
    except UnicodeDecodeError as exc:
        raise InputError(f"is not a UTF-8 cookies.txt file (byte {exc.start})", where=where) from exc
    except http.cookiejar.LoadError as exc:
        reason = str(exc)
        if "does not look like" in reason:
            reason = "its first line must be '# Netscape HTTP Cookie File' or '# HTTP Cookie File'"
        raise InputError(f"is not a cookies.txt file yt-dlp can read ({reason})", where=where) from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read cookies file ({exc})", where=where) from exc
