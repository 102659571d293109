"""The web archive of one capture: its WARC started in the capture's work area (:func:`start`),
then closed and packaged as a WACZ that the capture stores with the record (:func:`finish`).

The WARC is written by :mod:`~evidence_catalog.capture.warc` as yt-dlp makes its requests
(:mod:`~evidence_catalog.capture.recording`), and packaged by
:mod:`~evidence_catalog.capture.webarchive`.  Everything is in the work area: a capture that
fails or is killed leaves nothing behind, and its record never names an archive it lacks (the
WACZ is stored with the other files of the capture, in the same transaction).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from evidence_catalog import model
from evidence_catalog.capture.downloaded import CapturedFile
from evidence_catalog.capture.warc import WITHHELD_NOTE, WarcRecorder

__all__ = ["WACZ_NAME", "agents", "finish", "start", "withheld_note"]

#: The WACZ's name in the work area (a dot name: never taken for a file yt-dlp wrote).
WACZ_NAME = ".archive.wacz"
#: The WARC's folder in the work area, and its name (also its name inside the WACZ).
WARC_DIR = ".archive"
WARC_NAME = "data.warc.gz"


@functools.cache
def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def agents() -> tuple[model.Agent, ...]:
    """warcio (which wrote the WARC) and py-wacz (which indexed it) as software agents."""
    return (
        model.Agent(name="warcio", kind=model.AgentKind.SOFTWARE, version=_version("warcio")),
        model.Agent(name="py-wacz", kind=model.AgentKind.SOFTWARE, version=_version("wacz")),
    )


def software() -> str:
    """What wrote the archive, as its ``warcinfo`` record and ``datapackage.json`` name it."""
    from evidence_catalog.versions import __version__

    return (
        f"evidence-catalog {__version__} (warcio {_version('warcio')}), recording the requests of"
        f" yt-dlp {_version('yt-dlp')}"
    )


def start(work: Path) -> WarcRecorder:
    """A WARC being recorded in the capture's work area *work*."""
    folder = work / WARC_DIR
    folder.mkdir()
    return WarcRecorder(
        folder / WARC_NAME,
        software=software(),
        info={
            "description": "every HTTP exchange of one capture, recorded as it was made (no second fetch);"
            " bodies as read off the connection"
        },
    )


def withheld_note(recorder: WarcRecorder) -> str:
    """What the acquisition says was withheld from the web archive."""
    parts = []
    if recorder.withheld:
        parts.append(f"{', '.join(sorted(recorder.withheld))} header values")
    if recorder.withheld_elsewhere:
        parts.append(f"cookie values in request {' and '.join(sorted(recorder.withheld_elsewhere))}")
    return f"{' and '.join(parts)} in the web archive (WACZ)"


def finish(recorder: WarcRecorder, work: Path, url: str, final_url: str | None, title: str) -> CapturedFile:
    """Close the WARC and package it as a WACZ in *work*, with the page of *url* (else
    *final_url*, else the first response) as its entry point; the WACZ as a file of the capture."""
    from evidence_catalog.capture.webarchive import Page, package

    recorder.close()
    entry = None
    for candidate in (url, final_url):
        entry = next((r for r in recorder.responses if r.url == candidate), None)
        if entry is not None:
            break
    if entry is None and recorder.responses:
        entry = recorder.responses[0]
    pages = (
        [] if entry is None else [Page(entry.record_id.strip("<>").rpartition(":")[2], entry.url, entry.date, title)]
    )
    out = work / WACZ_NAME
    package(
        recorder.path,
        out,
        pages=pages,
        created=recorder.started,
        title=f"Web archive of {url}",
        description=(
            f"The HTTP exchanges of one capture of {url} by evidence-catalog with yt-dlp ({recorder.exchanges}"
            f" requests, {len(recorder.failures)} without a response), recorded as they were made."
        ),
        software=software(),
        withheld=WITHHELD_NOTE,
        warc_digest=recorder.digest,
    )
    os.remove(recorder.path)  # in the WACZ now: the work area need not hold it twice
    return CapturedFile(out, model.ArtifactRole.WEB_ARCHIVE)
