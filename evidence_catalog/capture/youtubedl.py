"""The ``YoutubeDL`` a capture drives: yt-dlp's settings for evidence (:func:`params`), the
subclass that notes every HTTP response, keeps the page the extractor read and hashes what the
downloaders write (:func:`make_youtube_dl`), yt-dlp's logger (:class:`Log`), and yt-dlp and
ffmpeg as software agents.

Separate from :mod:`evidence_catalog.capture.ytdlp`, which runs captures with it: this is the
part that depends on yt-dlp's internals (the methods it overrides), kept in one place.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evidence_catalog import model
from evidence_catalog.capture.matching import first_suitable
from evidence_catalog.capture.written import Writes

if TYPE_CHECKING:
    from evidence_catalog.capture.options import CaptureOptions
    from evidence_catalog.capture.warc import WarcRecorder

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


class Log:
    """yt-dlp's logger: keeps warnings and errors, prints nothing."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.errors: list[str] = []

    def debug(self, message: str) -> None:
        message = clean(message)
        if "File is larger than max-filesize" in message:
            self.warnings.append(message.removeprefix("[download] "))
        elif message.startswith("[info]") and "thumbnail" in message.lower() and "does not exist" in message:
            self.warnings.append(f"thumbnail not kept: {message.removeprefix('[info] ')}")

    def info(self, message: str) -> None:
        self.debug(message)

    def warning(self, message: str) -> None:
        self.warnings.append(clean(message.removeprefix("WARNING: ")))

    def error(self, message: str) -> None:
        self.errors.append(clean(message.removeprefix("ERROR: ")))


def clean(message: str) -> str:
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


class _Held:
    """Wraps the body of a media response the extractors received but did not read: a direct
    media link, which yt-dlp's generic extractor requests only to see its type and which the
    download then asks for again with the same request.  The response is held back, unread,
    for that download (one request to the server per file, as ``curl`` makes, instead of two).

    Reading it in any way, or even looking at anything of the body but through ``read``
    (``close``, ``readinto``, ``closed`` ...), marks it *touched*: a body some bytes of which
    went elsewhere is never handed to a download, which then makes its own request."""

    def __init__(self, fp: Any, raw: Any, key: tuple[object, ...]) -> None:
        self._fp = fp  # what the extractors read through (the length checked, see _Whole)
        self.raw = raw  # the body as the network handler gave it
        self.key = key
        self.touched = False

    def read(self, amt: int | None = None, **kwargs: Any) -> bytes:
        self.touched = True
        chunk: bytes = self._fp.read(amt, **kwargs)
        return chunk

    def __getattr__(self, name: str) -> Any:
        self.touched = True
        return getattr(self._fp, name)


def _request_key(ydl: Any, req: Any) -> tuple[object, ...] | None:
    """What makes two requests the same request, as yt-dlp would send them: a plain ``GET``
    (no body) of the same URL with the same headers (yt-dlp's own defaults merged in, as its
    network handlers merge them), proxies and request options, and the same cookies from the
    cookie jar at the time it is made.  ``None`` for any other request (a ``HEAD``, a
    ``POST``, a URL given as text) and for one that cannot be told apart this way (a URL the
    cookie jar cannot read: yt-dlp says what is wrong with it when it is sent)."""
    from yt_dlp.networking import Request
    from yt_dlp.utils.networking import HTTPHeaderDict

    if not isinstance(req, Request) or req.method != "GET" or req.data is not None:
        return None
    try:
        headers = HTTPHeaderDict(ydl.params.get("http_headers") or {}, req.headers)
        return (
            req.url,
            sorted((name.lower(), value) for name, value in headers.items()),
            dict(req.proxies),
            dict(req.extensions),
            ydl.cookiejar.get_cookie_header(req.url),
        )
    except (ValueError, TypeError):  # e.g. "unknown url type" from the cookie jar
        return None


def _close_quietly(response: Any) -> None:
    with contextlib.suppress(Exception):
        response.close()


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


def cookie_values(jar: Any) -> list[str]:
    """The values of the cookies in *jar* (the operator's, and those sites set since)."""
    with getattr(jar, "_cookies_lock", None) or contextlib.nullcontext():
        return [str(cookie.value) for cookie in jar if cookie.value]


def make_youtube_dl(params: dict[str, Any]) -> Any:
    """A YoutubeDL that notes every response it receives (yt-dlp is imported only when needed)."""
    import yt_dlp
    from yt_dlp.networking.exceptions import HTTPError, RequestError, network_exceptions
    from yt_dlp.utils import DownloadError, YoutubeDLError

    class RecordingYoutubeDL(yt_dlp.YoutubeDL):  # type: ignore[misc]
        def __init__(self, params: dict[str, Any]) -> None:
            #: Where this capture's HTTP exchanges are recorded (a WARC), if anywhere.
            self.recorder: WarcRecorder | None = None
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
            #: A media response the extractors requested and left unread, kept for the download
            #: that asks for the same (see ``_Held``).
            self.held: tuple[Any, _Held] | None = None

        def start_capture(
            self, log: Log, work: Path, writes: Writes | None, recorder: WarcRecorder | None = None
        ) -> None:
            """Forget what an earlier capture by this YoutubeDL left: each capture is told only
            its own messages and responses, and numbers its files from 001 in its own area, and
            records its exchanges into *recorder* (none: not recorded)."""
            self.recorder = recorder
            self.params["logger"] = log
            self.params["paths"] = {"home": str(work), "temp": str(work)}
            self.phase = "extract"
            self.page = None
            self.page_response = None
            self.http_error = None
            self.media_responses = []
            self.writes = writes
            self.release_held()
            self._num_downloads = 0  # yt-dlp's %(autonumber)s counts the downloads of a YoutubeDL
            self._printed_messages.clear()  # messages yt-dlp gives "only once" are given again

        def release_held(self) -> None:
            """Stop holding the media response kept for a download: closed when nobody read
            from it (the download did not ask for it), left to its reader otherwise."""
            held, self.held = self.held, None
            if held is not None and not held[1].touched:
                _close_quietly(held[0])

        def close(self) -> None:
            self.release_held()
            super().close()

        def build_request_director(self, *args: Any, **kwargs: Any) -> Any:
            # Every request yt-dlp makes goes through this director: recorded there, with the
            # bytes of each body as its reader takes them (evidence_catalog.capture.recording).
            from evidence_catalog.capture.recording import attach

            director = super().build_request_director(*args, **kwargs)
            attach(director, lambda: getattr(self, "recorder", None), lambda: cookie_values(self.cookiejar))
            return director

        def extract_info(
            self, url: Any, download: bool = True, ie_key: str | None = None, *args: Any, **kwargs: Any
        ) -> Any:
            # yt-dlp would compile the URL pattern of every extractor before the one that
            # takes the URL; the same extractor is found trying only those that can
            # (evidence_catalog.capture.matching), and yt-dlp is told which.
            generic = kwargs.get("force_generic_extractor", args[2] if len(args) > 2 else False)
            if not ie_key and not generic and isinstance(url, str):
                ie_key = first_suitable(self._ies, url, _PLAIN_SUITABLE)
            return super().extract_info(url, download, ie_key, *args, **kwargs)

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
            key = _request_key(self, req)
            if self.held is not None and self.phase == "media" and key is not None:
                response, held = self.held
                if key == held.key and not held.touched:
                    # The very request the extractor made, whose answer is still unread: the
                    # download reads that answer instead of asking the server a second time.
                    self.held = None
                    response.fp = held.raw
                    seen = _response_record(response)
                    if seen is not None:
                        self.media_responses.append(seen)
                    return response
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
            raw = response.fp
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
            if (
                self.phase in ("extract", "process")
                and key is not None
                and seen.status == 200
                and not (response.headers.get("Content-Type") or "").lower().startswith(_PAGE_TYPES)
            ):
                # Media (not a page) the extractors asked for: held for the download, which
                # usually asks for it again (a direct link), until it is read or replaced.
                held = _Held(response.fp, raw, key)
                response.fp = held
                self.release_held()
                self.held = (response, held)
            return response

        def _write_thumbnails(self, *args: Any, **kwargs: Any) -> Any:
            # A thumbnail yt-dlp cannot even request (a relative or odd URL in the page) must
            # not cost the video either.
            try:
                return super()._write_thumbnails(*args, **kwargs)
            except YoutubeDLError as exc:  # an OSError (our own disk) still ends the capture
                self.params["logger"].warnings.append(f"not kept: thumbnail ({clean(str(exc))})")
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
                raise DownloadError(clean(str(exc))) from exc
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
FFMPEG_PROBE: threading.Thread | None = None


def probe_ffmpeg() -> None:
    """Ask the ffmpeg on the PATH for its version on a thread of its own, while yt-dlp reads
    the first URL: yt-dlp keeps the answer (per process) for its choice of formats and for
    :func:`ffmpeg_agent`, which would otherwise wait for the program to start and answer.
    Touches no ``YoutubeDL``: nothing it says can reach a capture's messages."""
    global FFMPEG_PROBE

    def probe() -> None:
        from yt_dlp.postprocessor.ffmpeg import FFmpegPostProcessor

        with contextlib.suppress(Exception):
            FFmpegPostProcessor(None).available  # noqa: B018 -- runs and caches the probe

    FFMPEG_PROBE = threading.Thread(target=probe, name="ffmpeg-version", daemon=True)
    FFMPEG_PROBE.start()


def yt_dlp_agent() -> model.Agent:
    """yt-dlp as a software agent, with its version."""
    from yt_dlp.version import __version__ as version

    return model.Agent(name="yt-dlp", kind=model.AgentKind.SOFTWARE, version=version)


def params(work: Path, options: CaptureOptions, log: Log, hook: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
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
    params.update(area_params(work, options))
    return params


def area_params(work: Path, options: CaptureOptions) -> dict[str, Any]:
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
