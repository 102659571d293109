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
  file must not change.  Cookie values never reach stored documents (see :data:`downloaded.WITHHELD_COOKIES`).
* Nothing is written outside the work directory (no cache directory, no screen output).

This module runs captures (:class:`Capturer`, :func:`download`); what a user can ask of one is in
:mod:`~evidence_catalog.capture.options`, the ``YoutubeDL`` it drives and yt-dlp's settings in
:mod:`~evidence_catalog.capture.youtubedl`, and what a capture brought back, read from yt-dlp's
info dict, in :mod:`~evidence_catalog.capture.downloaded`.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evidence_catalog import model
from evidence_catalog.capture import archiving, downloaded, youtubedl
from evidence_catalog.capture.downloaded import CapturedFile, Download
from evidence_catalog.capture.options import CaptureFailed, CaptureOptions, CaptureProgress, parse_size
from evidence_catalog.capture.warc import WarcRecorder
from evidence_catalog.capture.written import Writes, write_known
from evidence_catalog.capture.youtubedl import Log
from evidence_catalog.hashing import normalise_algorithms

# The key of "the same item captured again" is the model's (the store keys acquisitions by it); a
# capture names its item by it too.
from evidence_catalog.model import GENERIC_EXTRACTORS as GENERIC_EXTRACTORS
from evidence_catalog.model import item_key as item_key

__all__ = [
    "CaptureFailed",
    "CaptureOptions",
    "CaptureProgress",
    "CapturedFile",
    "Capturer",
    "Download",
    "download",
    "parse_size",
]


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
    again.

        with Capturer(options) as capturer:
            for url, work in ...:
                fetched = capturer.download(url, work)
    """

    def __init__(self, options: CaptureOptions, *, algorithms: Sequence[str] = ("sha256",)) -> None:
        self.options = options
        self.algorithms = normalise_algorithms(algorithms)
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

    def _youtube_dl(self, work: Path, log: Log, writes: Writes, recorder: WarcRecorder | None) -> Any:
        """The YoutubeDL, made or reset for a capture into *work*."""
        from yt_dlp.utils import YoutubeDLError

        ydl = self._ydl
        if ydl is None:
            params = youtubedl.params(work, self.options, log, self._hook)
            try:
                ydl = youtubedl.make_youtube_dl(params)
            except YoutubeDLError as exc:  # e.g. a cookies file changed since it was checked
                reason = youtubedl.clean(str(exc).removeprefix("ERROR: "))
                raise CaptureFailed(f"yt-dlp could not start: {reason}") from exc
            self._startup_warnings = tuple(log.warnings)
            self._ydl = ydl
            if self.options.ffmpeg is None and self.options.ffmpeg_location is None and youtubedl.FFMPEG_PROBE is None:
                youtubedl.probe_ffmpeg()
        else:
            log.warnings.extend(self._startup_warnings)
            area = youtubedl.area_params(work, self.options)
            ydl.params.update(area)
            jar = ydl.cookiejar
            jar.clear()  # what the last capture's sites set
            if "cookiefile" in area:
                try:
                    jar.load(area["cookiefile"])
                except (OSError, ValueError, http.cookiejar.LoadError) as exc:
                    raise CaptureFailed(f"yt-dlp could not start: cannot load the cookies file ({exc})") from exc
                jar.filename = area["cookiefile"]
        ydl.start_capture(log, work, writes, recorder)
        return ydl

    def download(self, url: str, work: Path, *, progress: CaptureProgress | None = None) -> Download:
        """Capture *url* into the empty directory *work*; raise :class:`CaptureFailed` if it fails.

        Succeeds only when every requested media file arrived whole (yt-dlp checks the length
        it was told and retries per ``options.retries``).  Files are left in *work* for the
        caller, each with its digests when they were computed as it was written.
        """
        work = Path(os.path.abspath(work))
        log = Log()
        writes = Writes(self.algorithms)
        self._url, self._progress = url, progress
        finished = False
        recorder = archiving.start(work) if self.options.archive else None
        try:
            ydl = self._youtube_dl(work, log, writes, recorder)
            fetched = self._download(ydl, url, work, log, writes, recorder)
            finished = True
            return fetched
        finally:
            self._progress = None
            writes.close()
            if recorder is not None:
                recorder.discard()  # nothing left to write once the archive is made
            if not finished:
                self.close()
            elif self._ydl is not None:
                self._ydl.writes = None
                self._ydl.recorder = None

    def _download(
        self, ydl: Any, url: str, work: Path, log: Log, writes: Writes, recorder: WarcRecorder | None
    ) -> Download:
        from yt_dlp.utils import DownloadError, YoutubeDLError

        options = self.options
        probed = options.ffmpeg is None and options.ffmpeg_location is None
        ffmpeg = None if probed else youtubedl.ffmpeg_agent(ydl, options)
        try:
            raw = ydl.extract_info(url, download=False, process=False)
            if probed:  # ffmpeg on the PATH, probed while the URL was read (see youtubedl.probe_ffmpeg)
                if youtubedl.FFMPEG_PROBE is not None:
                    youtubedl.FFMPEG_PROBE.join()
                ffmpeg = youtubedl.ffmpeg_agent(ydl, options)
            ydl.phase, ydl.http_error = "process", None
            info = ydl.process_ie_result(raw, download=True)
        except (DownloadError, YoutubeDLError) as exc:
            message = log.errors[-1] if log.errors else youtubedl.clean(str(exc).removeprefix("ERROR: "))
            failed = ydl.http_error
            raise CaptureFailed(
                message,
                http_status=None if failed is None else failed.status,
                final_url=None if failed is None else failed.url,
            ) from exc
        except OSError:
            raise  # our own disk: the caller says what could not be written
        except Exception as exc:
            reason = f"{type(exc).__name__}: {youtubedl.clean(str(exc))}"
            raise CaptureFailed(f"yt-dlp failed unexpectedly ({reason})") from exc
        if info is None:
            raise CaptureFailed(log.errors[-1] if log.errors else "yt-dlp returned nothing for this URL")
        files, merged = downloaded.files(info, work, log, ffmpeg, writes)
        page_response = ydl.page_response
        withheld: list[str] = []
        if ydl.page is not None and ydl.page.complete and not ydl.page.overflow and ydl.page.data:
            page = work / ".page"
            known = write_known(page, bytes(ydl.page.data), self.algorithms)
            files.append(CapturedFile(page, model.ArtifactRole.PAGE_SNAPSHOT, written=known))
        elif ydl.page is not None and ydl.page.overflow:
            log.warnings.append(f"not kept: the page (larger than {youtubedl.PAGE_LIMIT} bytes)")
        clean = ydl.sanitize_info(info, remove_private_keys=True)
        cookies_found = downloaded.withhold_cookies(clean)
        if info.get("_type") == "playlist" or "entries" in info:
            # The playlist's info dict leaves its entries out: as --write-info-json does, each
            # video's own info dict is kept as well (what it was, its formats, where it came from).
            for number, entry in enumerate(downloaded.entries(info), start=1):
                entry_clean = ydl.sanitize_info(entry, remove_private_keys=True)
                cookies_found = downloaded.withhold_cookies(entry_clean) or cookies_found
                entry_json = work / f".info-{number:03d}.json"
                known = write_known(entry_json, downloaded.info_text(entry_clean).encode("utf-8"), self.algorithms)
                files.append(CapturedFile(entry_json, model.ArtifactRole.PLATFORM_METADATA, written=known))
        if cookies_found:
            withheld.append(downloaded.WITHHELD_COOKIES)
        responses = tuple(ydl.media_responses)
        if any(downloaded.set_cookie_withheld(r) for r in responses):
            withheld.append(downloaded.WITHHELD_SET_COOKIE)
        info_json = work / ".info.json"
        info_written = write_known(info_json, downloaded.info_text(clean).encode("utf-8"), self.algorithms)
        tools = [youtubedl.yt_dlp_agent()]
        if merged and ffmpeg is not None:
            tools.append(ffmpeg)
        if recorder is not None:
            ydl.release_held()  # a response the download did not ask for: recorded as far as it was read
            final_url = None if page_response is None else page_response.url
            title = downloaded.text(clean.get("title")) or url
            files.append(archiving.finish(recorder, work, url, final_url, title))
            if recorder.withheld or recorder.withheld_elsewhere:
                withheld.append(archiving.withheld_note(recorder))
            tools.extend(archiving.agents())
        return Download(
            files=tuple(files),
            info=clean,
            info_json=info_json,
            platform_info=downloaded.platform_info(clean),
            extractor=downloaded.text(clean.get("extractor_key")),
            platform=downloaded.text(clean.get("extractor")),
            platform_id=downloaded.text(clean.get("id")),
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
