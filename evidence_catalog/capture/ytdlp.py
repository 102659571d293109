"""Capture online media with yt-dlp, used as a library (``yt_dlp.YoutubeDL``), never as a command.

:func:`download` runs one capture into a private work directory and returns what arrived: every
file yt-dlp wrote (media as served, separately served streams and their ffmpeg merge,
thumbnails, subtitles, the description), the page the extractor read, yt-dlp's info dict, and the
HTTP responses to the media requests.  It knows nothing of catalogs: the caller hashes and stores
the files, and decides what a failure means.

Choices made for evidence, and where they differ from yt-dlp's defaults:

* ``fixup="never"``: yt-dlp would otherwise rewrite some downloads in place with ffmpeg (a
  "fixed" container is not the file as served).  A merge of separate video and audio streams is
  kept, but as a *derived* file next to the streams it came from (``keepvideo``).
* Without ffmpeg (or with ``ffmpeg=False``) yt-dlp picks a format served as one file where
  the site offers one; a site that serves only separate streams then fails, saying so.
* A cookies file is copied first: yt-dlp writes its cookie jar back on exit, and the operator's
  file must not change.  Cookie values never reach stored documents (see :data:`WITHHELD_COOKIES`).
* Nothing is written outside the work directory (no cache directory, no screen output).
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
from attrs import frozen

from evidence_catalog import model
from evidence_catalog.capture.matching import first_suitable
from evidence_catalog.capture.written import Writes, WrittenFile, write_known
from evidence_catalog.errors import InputError, NetworkError
from evidence_catalog.hashing import normalise_algorithms

# The key of "the same item captured again" is the model's (the store keys acquisitions by it); a
# capture names its item by it too.
from evidence_catalog.model import GENERIC_EXTRACTORS as GENERIC_EXTRACTORS
from evidence_catalog.model import item_key as item_key

#: How a withheld cookie value reads in stored documents.
WITHHELD = model.WITHHELD
WITHHELD_COOKIES = "cookie values in the platform metadata ('cookies' fields of info.json)"
WITHHELD_SET_COOKIE = "Set-Cookie header values of the media responses"

#: The page an extractor reads is kept up to this size (larger ones are noted, not stored).
PAGE_LIMIT = 64 * 1024 * 1024

#: Media types of a page worth keeping as a snapshot (the HTML, or what stands in for it).
_PAGE_TYPES = (
    "text/",
    "application/xhtml",
    "application/xml",
    "application/json",
    "application/ld+json",
    "application/dash+xml",
    "application/vnd.apple.mpegurl",
    "application/x-mpegurl",
)

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

    try:
        with yt_dlp.YoutubeDL({"logger": _Log(), "cachedir": False}) as probe:
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


class _Log:
    """yt-dlp's logger: keeps warnings and errors, prints nothing."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.errors: list[str] = []

    def debug(self, message: str) -> None:
        message = _clean(message)
        if "File is larger than max-filesize" in message:
            self.warnings.append(message.removeprefix("[download] "))
        elif message.startswith("[info]") and "thumbnail" in message.lower() and "does not exist" in message:
            self.warnings.append(f"thumbnail not kept: {message.removeprefix('[info] ')}")

    def info(self, message: str) -> None:
        self.debug(message)

    def warning(self, message: str) -> None:
        self.warnings.append(_clean(message.removeprefix("WARNING: ")))

    def error(self, message: str) -> None:
        self.errors.append(_clean(message.removeprefix("ERROR: ")))


def _clean(message: str) -> str:
    """A message of yt-dlp as one line of text that can be logged: a lone surrogate or a NUL
    from what a site sent (a title, a URL) escaped."""
    text = message.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return " ".join(text.replace("\r", " ").split())


class _Tee:
    """Wraps a response body: keeps a copy of what the extractor reads (the page)."""

    def __init__(self, fp: Any, limit: int) -> None:
        self._fp = fp
        self.limit = limit
        self.data = bytearray()
        self.complete = False
        self.overflow = False

    def read(self, amt: int | None = None, **kwargs: Any) -> bytes:
        # yt-dlp's requests handler passes decode_content=; urllib's passes nothing.
        chunk: bytes = self._fp.read(amt, **kwargs)
        if not self.overflow:
            if len(self.data) + len(chunk) > self.limit:
                self.overflow = True
                self.data.clear()
            else:
                self.data += chunk
        if amt is None or amt < 0 or not chunk:
            self.complete = True
        return chunk

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fp, name)


class _Whole:
    """Wraps a response body of known length: a body that ends early raises yt-dlp's own
    ``IncompleteRead`` instead of passing as complete.  (yt-dlp checks the length of media
    and subtitle downloads itself, but a thumbnail is copied with ``read(n)`` until it ends,
    and a connection closed early would leave a cut file that looks whole.)"""

    def __init__(self, fp: Any, expected: int) -> None:
        self._fp = fp
        self.expected = expected
        self.received = 0

    def read(self, amt: int | None = None, **kwargs: Any) -> bytes:
        from yt_dlp.networking.exceptions import IncompleteRead

        chunk: bytes = self._fp.read(amt, **kwargs)
        self.received += len(chunk)
        ended = not chunk if (amt is not None and amt > 0) else True
        if ended and self.received < self.expected:
            raise IncompleteRead(partial=self.received, expected=self.expected - self.received)
        return chunk

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fp, name)


def _expected_length(response: Any) -> int | None:
    """The body length a response announces, when the bytes read are the bytes sent."""
    encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
    length = response.headers.get("Content-Length")
    if encoding != "identity" or length is None or not length.strip().isdigit():
        return None
    return int(length)


def _response_record(response: Any) -> model.HttpResponse | None:
    headers = model.headers_without_cookies(response.headers.items())
    try:
        return model.HttpResponse(url=str(response.url), status=int(response.status), headers=headers)
    except (TypeError, ValueError):
        return None


def _set_cookie_withheld(response: model.HttpResponse) -> bool:
    return any(name.lower() == "set-cookie" for name, _ in response.headers)


def _make_youtube_dl(params: dict[str, Any]) -> Any:
    """A YoutubeDL that notes every response it receives (yt-dlp is imported only when needed)."""
    import yt_dlp
    from yt_dlp.networking.exceptions import HTTPError, RequestError, network_exceptions
    from yt_dlp.utils import DownloadError, YoutubeDLError

    class RecordingYoutubeDL(yt_dlp.YoutubeDL):  # type: ignore[misc]
        def __init__(self, params: dict[str, Any]) -> None:
            super().__init__(params)
            self.phase = "extract"
            self.page: _Tee | None = None
            self.page_response: model.HttpResponse | None = None
            #: The last HTTP error response of the step under way (the one a failure is due to):
            #: errors of steps that went on regardless (an optional request while extracting, a
            #: missing thumbnail) are forgotten when the next step starts.
            self.http_error: model.HttpResponse | None = None
            self.media_responses: list[model.HttpResponse] = []
            #: The files the downloaders write, hashed as they are written (see ``written.py``).
            self.writes: Writes | None = None

        def start_capture(self, log: _Log, work: Path, writes: Writes | None) -> None:
            """Forget what an earlier capture by this YoutubeDL left: each capture is told only
            its own messages and responses, and numbers its files from 001 in its own area."""
            self.params["logger"] = log
            self.params["paths"] = {"home": str(work), "temp": str(work)}
            self.phase = "extract"
            self.page = None
            self.page_response = None
            self.http_error = None
            self.media_responses = []
            self.writes = writes
            self._num_downloads = 0  # yt-dlp's %(autonumber)s counts the downloads of a YoutubeDL
            self._printed_messages.clear()  # messages yt-dlp gives "only once" are given again

        def extract_info(
            self,
            url: Any,
            download: bool = True,
            ie_key: str | None = None,
            extra_info: Any = None,
            process: bool = True,
            force_generic_extractor: bool = False,
        ) -> Any:
            # yt-dlp would compile the URL pattern of every extractor before the one that
            # takes the URL; the same extractor is found trying only those that can
            # (evidence_catalog.capture.matching), and yt-dlp is told which.
            if not ie_key and not force_generic_extractor and isinstance(url, str):
                ie_key = first_suitable(self._ies, url, _PLAIN_SUITABLE)
            return super().extract_info(url, download, ie_key, extra_info, process, force_generic_extractor)

        def _forceprint(self, key: str, info_dict: Any) -> Any:
            # yt-dlp renders its formats, thumbnails and subtitles tables several times per video
            # for --print templates; none is set here (forceprint, print_to_file, force*), so
            # nothing would be printed: the copy it returns is only read for those.
            if (
                self.params["forceprint"].get(key)
                or self.params["print_to_file"].get(key)
                or any(self.params.get(f"force{name}") for name in _FORCE_PRINTED)
            ):
                return super()._forceprint(key, info_dict)
            return None if info_dict is None else {}

        def urlopen(self, req: Any) -> Any:
            try:
                response = super().urlopen(req)
            except HTTPError as exc:
                seen = _response_record(exc.response)
                if seen is not None:
                    self.http_error = seen
                if seen is not None and self.phase == "media":
                    self.media_responses.append(seen)
                raise
            seen = _response_record(response)
            expected = _expected_length(response)
            if (
                self.phase not in ("media", "subtitle")
                and expected is not None
                and getattr(req, "method", "GET") != "HEAD"
            ):
                response.fp = _Whole(response.fp, expected)
            if seen is None:
                return response
            if self.phase == "media":
                self.media_responses.append(seen)
            elif self.phase in ("extract", "process") and not (self.page is not None and self.page.complete):
                # The page is the first document the extractors read whole: a short link or a
                # redirecting page is followed (even into a later extraction) to the page read.
                kind = (response.headers.get("Content-Type") or "").lower()
                if self.page_response is None or kind.startswith(_PAGE_TYPES):
                    self.page_response = seen
                if kind.startswith(_PAGE_TYPES):
                    self.page = _Tee(response.fp, PAGE_LIMIT)
                    response.fp = self.page
            return response

        def _write_thumbnails(self, *args: Any, **kwargs: Any) -> Any:
            # A thumbnail yt-dlp cannot even request (a relative or odd URL in the page) must
            # not cost the video either.
            try:
                return super()._write_thumbnails(*args, **kwargs)
            except YoutubeDLError as exc:  # an OSError (our own disk) still ends the capture
                self.params["logger"].warnings.append(f"not kept: thumbnail ({_clean(str(exc))})")
                return []

        def _write_subtitles(self, info_dict: dict[str, Any], filename: str) -> Any:
            # A subtitle that cannot be fetched must not cost the video: yt-dlp makes it a
            # warning (kept as "not kept: ...") when errors are ignored, for this step only.
            before = self.params.get("ignoreerrors")
            self.params["ignoreerrors"] = True
            try:
                return super()._write_subtitles(info_dict, filename)
            finally:
                self.params["ignoreerrors"] = before

        def dl(self, name: str, info: dict[str, Any], subtitle: bool = False, test: bool = False) -> Any:
            before, self.phase = self.phase, ("subtitle" if subtitle else "media")
            self.http_error = None
            try:
                if test or name == "-" or self.writes is None:
                    return super().dl(name, info, subtitle=subtitle, test=test)
                return self._dl_hashing(name, info, subtitle, self.writes)
            except RequestError as exc:
                if not subtitle or isinstance(exc, network_exceptions):
                    raise
                # A request yt-dlp refuses to make (a file:// URL in the page) is a subtitle that
                # could not be fetched: yt-dlp's own handling of those only knows network errors.
                raise DownloadError(_clean(str(exc))) from exc
            finally:
                self.phase = before

        def _dl_hashing(self, name: str, info: dict[str, Any], subtitle: bool, writes: Writes) -> Any:
            # yt-dlp's own YoutubeDL.dl (not a test download, not to standard output), with the
            # downloader's files opened through *writes*, which hashes them as they are written.
            from yt_dlp.downloader import get_suitable_downloader

            if not info.get("url"):
                self.raise_no_formats(info, True)
            fd = get_suitable_downloader(info, self.params, to_stdout=False)(self, self.params)
            for hook in self._progress_hooks:
                fd.add_progress_hook(hook)
            urls = '", "'.join(
                (f["url"].split(",")[0] + ",<data>" if f["url"].startswith("data:") else f["url"])
                for f in info.get("requested_formats", []) or [info]
            )
            self.write_debug(f'Invoking {fd.FD_NAME} downloader on "{urls}"')
            writes.attach(fd)
            new_info = self._copy_infodict(info)
            if new_info.get("http_headers") is None:
                new_info["http_headers"] = self._calc_headers(new_info)
            return fd.download(name, new_info, subtitle)

    global _PLAIN_SUITABLE
    if not _PLAIN_SUITABLE:
        _PLAIN_SUITABLE = _plain_suitable()
    return RecordingYoutubeDL(params)


#: yt-dlp's own ``suitable`` and ``_match_valid_url``, which only match ``_VALID_URL``.
_PLAIN_SUITABLE: frozenset[object] = frozenset()


def _plain_suitable() -> frozenset[object]:
    from yt_dlp.extractor.common import InfoExtractor

    bases: list[Any] = [InfoExtractor]
    with contextlib.suppress(ImportError):
        from yt_dlp.extractor.lazy_extractors import LazyLoadExtractor

        bases.append(LazyLoadExtractor)
    return frozenset(
        function
        for base in bases
        for name in ("suitable", "_match_valid_url")
        if (function := getattr(base.__dict__.get(name), "__func__", None)) is not None
    )


#: yt-dlp's ``force<name>`` options (``--get-title`` ...), which print from ``_forceprint``'s copy.
_FORCE_PRINTED = ("title", "id", "url", "thumbnail", "description", "filename", "duration", "format", "json")


def ffmpeg_agent(ydl: Any, options: CaptureOptions) -> model.Agent | None:
    """ffmpeg as a software agent, as *ydl* finds it, when it is installed and allowed."""
    if options.ffmpeg is False:
        return None
    from yt_dlp.postprocessor.ffmpeg import FFmpegPostProcessor

    probe = FFmpegPostProcessor(ydl)
    if not probe.available:
        return None
    return model.Agent(name="ffmpeg", kind=model.AgentKind.SOFTWARE, version=str(probe._version or "unknown"))


#: The thread that asks ffmpeg (the one on the PATH) for its version, once per process.
_FFMPEG_PROBE: threading.Thread | None = None


def _probe_ffmpeg() -> None:
    """Ask the ffmpeg on the PATH for its version on a thread of its own, while yt-dlp reads
    the first URL: yt-dlp keeps the answer (per process) for its choice of formats and for
    :func:`ffmpeg_agent`, which would otherwise wait for the program to start and answer.
    Touches no ``YoutubeDL``: nothing it says can reach a capture's messages."""
    global _FFMPEG_PROBE

    def probe() -> None:
        from yt_dlp.postprocessor.ffmpeg import FFmpegPostProcessor

        with contextlib.suppress(Exception):
            FFmpegPostProcessor(None).available  # noqa: B018 -- runs and caches the probe

    _FFMPEG_PROBE = threading.Thread(target=probe, name="ffmpeg-version", daemon=True)
    _FFMPEG_PROBE.start()


def yt_dlp_agent() -> model.Agent:
    """yt-dlp as a software agent, with its version."""
    from yt_dlp.version import __version__ as version

    return model.Agent(name="yt-dlp", kind=model.AgentKind.SOFTWARE, version=version)


def _params(work: Path, options: CaptureOptions, log: _Log, hook: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    params: dict[str, Any] = {
        "logger": log,  # everything yt-dlp says goes here, nothing to the screen
        "quiet": False,
        "noprogress": True,
        "color": {"stdout": "no_color", "stderr": "no_color"},
        "paths": {"home": str(work), "temp": str(work)},
        "outtmpl": {"default": "%(autonumber)03d.%(ext)s"},
        "noplaylist": True,
        "ignoreerrors": False,
        "cachedir": False,
        "keepvideo": True,
        "fixup": "never",
        "updatetime": False,
        "check_formats": False,
        "writethumbnail": options.thumbnails,
        "write_all_thumbnails": False,
        "writesubtitles": options.subtitles,
        "writeautomaticsub": False,
        "subtitleslangs": ["all", "-live_chat"],
        "writedescription": options.description,
        "socket_timeout": options.socket_timeout,
        "retries": options.retries,
        "fragment_retries": options.retries,
        "extractor_retries": min(options.retries, 3),
        "file_access_retries": 0,
        "progress_hooks": [hook],
        "progress_delta": 0.5,  # yt-dlp's own progress line (unused here) at most twice a second
    }
    if options.format is not None:
        params["format"] = options.format
    if options.proxy is not None:
        params["proxy"] = options.proxy
    if options.rate_limit is not None:
        params["ratelimit"] = options.rate_limit
    if options.max_filesize is not None:
        params["max_filesize"] = options.max_filesize
    params.update(_area_params(work, options))
    return params


def _area_params(work: Path, options: CaptureOptions) -> dict[str, Any]:
    """The settings of yt-dlp that name a capture's own work area: an empty folder in place of
    ffmpeg when it must not be used, and the copy of the cookies file (yt-dlp writes its
    cookie jar back on exit, and the operator's file must not change)."""
    params: dict[str, Any] = {}
    if options.ffmpeg is False:
        empty = work / ".no-ffmpeg"
        empty.mkdir(exist_ok=True)
        params["ffmpeg_location"] = str(empty)
    elif options.ffmpeg_location is not None:
        params["ffmpeg_location"] = options.ffmpeg_location
    if options.cookies_file is not None:
        copy = work / ".cookies.txt"
        shutil.copyfile(options.cookies_file, copy)
        params["cookiefile"] = str(copy)
    return params


class Capturer:
    """yt-dlp set up once for any number of captures with the same options, one after another.

    Making a ``YoutubeDL`` costs more than a small download from a fast server: its
    extractors are listed, the URL patterns of all of them compiled when a URL is first
    matched, the network handlers and their TLS context made.  A capturer makes one when it is
    first used and keeps it for the next URL, as yt-dlp's own command does for several URLs;
    what one capture leaves in it is forgotten before the next (its messages, the responses
    seen, the numbering of files, the cookies: each capture starts with only the operator's
    cookies file, as if it were the only one).  After a capture that failed, the next one
    gets a new ``YoutubeDL``: nothing a failure left half done can reach it.

    *algorithms* are the digests the files of a capture are hashed with as they are written
    (:mod:`evidence_catalog.capture.written`): the blob store's, so that it need not read them
    again.  *write_back* starts writing the downloads to disk while they arrive (for a store
    that makes its files durable).

        with Capturer(options) as capturer:
            for url, work in ...:
                fetched = capturer.download(url, work)
    """

    def __init__(
        self, options: CaptureOptions, *, algorithms: Sequence[str] = ("sha256",), write_back: bool = True
    ) -> None:
        self.options = options
        self.algorithms = normalise_algorithms(algorithms)
        self.write_back = write_back
        self._ydl: Any = None
        self._startup_warnings: tuple[str, ...] = ()
        self._progress: CaptureProgress | None = None
        self._url = ""

    def __enter__(self) -> Capturer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Release yt-dlp (its connections); the capturer makes a new one if it is used again."""
        ydl, self._ydl = self._ydl, None
        if ydl is not None:
            # Its cookie jar was last loaded from a copy in an area that is gone by now.
            ydl.params["cookiefile"] = None
            with contextlib.suppress(Exception):
                ydl.close()

    def _hook(self, status: dict[str, Any]) -> None:
        progress = self._progress
        if progress is not None and status.get("status") in ("downloading", "finished"):
            total = status.get("total_bytes") or status.get("total_bytes_estimate")
            progress(
                Path(str(status.get("filename") or self._url)).name,
                int(status.get("downloaded_bytes") or 0),
                None if total is None else int(total),
            )

    def _youtube_dl(self, work: Path, log: _Log, writes: Writes) -> Any:
        """The YoutubeDL, made or reset for a capture into *work*."""
        from yt_dlp.utils import YoutubeDLError

        ydl = self._ydl
        if ydl is None:
            params = _params(work, self.options, log, self._hook)
            try:
                ydl = _make_youtube_dl(params)
            except YoutubeDLError as exc:  # e.g. a cookies file changed since it was checked
                raise CaptureFailed(f"yt-dlp could not start: {_clean(str(exc).removeprefix('ERROR: '))}") from exc
            self._startup_warnings = tuple(log.warnings)
            self._ydl = ydl
            if self.options.ffmpeg is None and self.options.ffmpeg_location is None and _FFMPEG_PROBE is None:
                _probe_ffmpeg()
        else:
            log.warnings.extend(self._startup_warnings)
            area = _area_params(work, self.options)
            ydl.params.update(area)
            jar = ydl.cookiejar
            jar.clear()  # what the last capture's sites set
            if "cookiefile" in area:
                try:
                    jar.load(area["cookiefile"])
                except (OSError, ValueError, http.cookiejar.LoadError) as exc:
                    raise CaptureFailed(f"yt-dlp could not start: cannot load the cookies file ({exc})") from exc
                jar.filename = area["cookiefile"]
        ydl.start_capture(log, work, writes)
        return ydl

    def download(self, url: str, work: Path, *, progress: CaptureProgress | None = None) -> Download:
        """Capture *url* into the empty directory *work*; raise :class:`CaptureFailed` if it fails.

        Succeeds only when every requested media file arrived whole (yt-dlp checks the length
        it was told and retries per ``options.retries``).  Files are left in *work* for the
        caller, each with its digests when they were computed as it was written.
        """
        work = Path(os.path.abspath(work))
        log = _Log()
        writes = Writes(self.algorithms, write_back=self.write_back)
        self._url, self._progress = url, progress
        finished = False
        try:
            ydl = self._youtube_dl(work, log, writes)
            fetched = self._download(ydl, url, work, log, writes)
            writes.close()  # a failed write-back fails the capture: the bytes may not be on disk
            finished = True
            return fetched
        finally:
            self._progress = None
            if not finished:
                with contextlib.suppress(OSError):
                    writes.close()
                self.close()
            elif self._ydl is not None:
                self._ydl.writes = None

    def _download(self, ydl: Any, url: str, work: Path, log: _Log, writes: Writes) -> Download:
        from yt_dlp.utils import DownloadError, YoutubeDLError

        options = self.options
        probed = options.ffmpeg is None and options.ffmpeg_location is None
        ffmpeg = None if probed else ffmpeg_agent(ydl, options)
        try:
            raw = ydl.extract_info(url, download=False, process=False)
            if probed:  # ffmpeg on the PATH, probed while the URL was read (see _probe_ffmpeg)
                if _FFMPEG_PROBE is not None:
                    _FFMPEG_PROBE.join()
                ffmpeg = ffmpeg_agent(ydl, options)
            ydl.phase, ydl.http_error = "process", None
            info = ydl.process_ie_result(raw, download=True)
        except (DownloadError, YoutubeDLError) as exc:
            message = log.errors[-1] if log.errors else _clean(str(exc).removeprefix("ERROR: "))
            failed = ydl.http_error
            raise CaptureFailed(
                message,
                http_status=None if failed is None else failed.status,
                final_url=None if failed is None else failed.url,
            ) from exc
        except OSError:
            raise  # our own disk: the caller says what could not be written
        except Exception as exc:
            raise CaptureFailed(f"yt-dlp failed unexpectedly ({type(exc).__name__}: {_clean(str(exc))})") from exc
        if info is None:
            raise CaptureFailed(log.errors[-1] if log.errors else "yt-dlp returned nothing for this URL")
        files, merged = _files(info, work, log, ffmpeg, writes)
        page_response = ydl.page_response
        withheld: list[str] = []
        if ydl.page is not None and ydl.page.complete and not ydl.page.overflow and ydl.page.data:
            page = work / ".page"
            known = write_known(page, bytes(ydl.page.data), self.algorithms)
            files.append(CapturedFile(page, model.ArtifactRole.PAGE_SNAPSHOT, written=known))
        elif ydl.page is not None and ydl.page.overflow:
            log.warnings.append(f"not kept: the page (larger than {PAGE_LIMIT} bytes)")
        clean = ydl.sanitize_info(info, remove_private_keys=True)
        cookies_found = _withhold_cookies(clean)
        if info.get("_type") == "playlist" or "entries" in info:
            # The playlist's info dict leaves its entries out: as --write-info-json does, each
            # video's own info dict is kept as well (what it was, its formats, where it came from).
            for number, entry in enumerate(_entries(info), start=1):
                entry_clean = ydl.sanitize_info(entry, remove_private_keys=True)
                cookies_found = _withhold_cookies(entry_clean) or cookies_found
                entry_json = work / f".info-{number:03d}.json"
                known = write_known(entry_json, info_text(entry_clean).encode("utf-8"), self.algorithms)
                files.append(CapturedFile(entry_json, model.ArtifactRole.PLATFORM_METADATA, written=known))
        if cookies_found:
            withheld.append(WITHHELD_COOKIES)
        responses = tuple(ydl.media_responses)
        if any(_set_cookie_withheld(r) for r in responses):
            withheld.append(WITHHELD_SET_COOKIE)
        info_json = work / ".info.json"
        info_written = write_known(info_json, info_text(clean).encode("utf-8"), self.algorithms)
        tools = [yt_dlp_agent()]
        if merged and ffmpeg is not None:
            tools.append(ffmpeg)
        return Download(
            files=tuple(files),
            info=clean,
            info_json=info_json,
            platform_info=platform_info(clean),
            extractor=_text(clean.get("extractor_key")),
            platform=_text(clean.get("extractor")),
            platform_id=_text(clean.get("id")),
            final_url=None if page_response is None else page_response.url,
            http_status=None if page_response is None else page_response.status,
            responses=responses,
            tools=tuple(tools),
            withheld=tuple(withheld),
            warnings=tuple(log.warnings),
            info_json_written=info_written,
        )


def download(url: str, work: Path, options: CaptureOptions, *, progress: CaptureProgress | None = None) -> Download:
    """Capture *url* into the empty directory *work*; raise :class:`CaptureFailed` if it fails.

    Succeeds only when every requested media file arrived whole (yt-dlp checks the length it
    was told and retries per ``options.retries``).  Files are left in *work* for the caller.
    A :class:`Capturer` does the same for many URLs, setting yt-dlp up once.
    """
    with Capturer(options) as capturer:
        return capturer.download(url, work, progress=progress)


def _entries(info: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The videos of a result: itself, or each entry of a playlist (a post with several videos)."""
    if info.get("_type") == "playlist" or "entries" in info:
        for entry in info.get("entries") or ():
            if isinstance(entry, dict):
                yield from _entries(entry)
    else:
        yield info


def _files(
    info: dict[str, Any], work: Path, log: _Log, ffmpeg: model.Agent | None, writes: Writes | None = None
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

    for entry in _entries(info):
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


def _withhold_cookies(value: Any) -> bool:
    """Replace the value of every ``cookies`` member in place; tell whether any was found."""
    found = False
    if isinstance(value, dict):
        for key in list(value):
            if key == "cookies" and isinstance(value[key], str) and value[key]:
                value[key] = WITHHELD
                found = True
            else:
                found = _withhold_cookies(value[key]) or found
    elif isinstance(value, list):
        for item in value:
            found = _withhold_cookies(item) or found
    return found


def info_text(info: dict[str, Any]) -> str:
    """An info dict as JSON text, as yt-dlp's own ``--write-info-json`` writes it (UTF-8, not
    ASCII-escaped), except that a lone surrogate a site sent (``"\\udcff"`` in its JSON-LD: half
    of a character, which UTF-8 cannot hold) is written as the escape it came as."""
    text = json.dumps(info, ensure_ascii=False)
    return _SURROGATE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


#: A surrogate code point: in JSON text from ``json.dumps`` only ever inside a string.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(value: Any) -> str | None:
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
        title=_text(info.get("title")),
        uploader=_text(info.get("uploader")),
        uploader_id=_text(info.get("uploader_id")),
        channel=_text(info.get("channel")),
        channel_id=_text(info.get("channel_id")),
        uploaded_at=uploaded_at,
        upload_date=upload_date,
        duration_s=_number(info.get("duration")),
        format_id=_text(info.get("format_id")),
        webpage_url=_text(info.get("webpage_url")),
    )
