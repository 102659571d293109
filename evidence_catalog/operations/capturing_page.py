"""Capturing a web page in a real browser (:mod:`evidence_catalog.capture.page`): its screenshot,
rendered DOM, PDF print, text and web archive stored as a capture's files are, then record,
artifacts, acquisition and custody event written in one transaction; a failed attempt is logged
as such."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from evidence_catalog.capture.downloaded import Download
from evidence_catalog.capture.options import CaptureFailed, CaptureOptions
from evidence_catalog.capture.page import PageOptions, chromium_path, load_page
from evidence_catalog.errors import EvidenceError, InputError, StorageError
from evidence_catalog.model import Agent, AgentKind, PlatformInfo, new_id
from evidence_catalog.operations import common, log_key
from evidence_catalog.operations.capturing import (
    check_capture_request,
    log_failed_capture,
    record_capture,
    store_captured,
)
from evidence_catalog.operations.common import check_url, checked_tags
from evidence_catalog.operations.context import Context
from evidence_catalog.results import CaptureResult


def capture_page(
    ctx: Context,
    url: str,
    *,
    record_id: str | None = None,
    options: PageOptions | None = None,
    tags: Sequence[str] = (),
    note: str | None = None,
) -> CaptureResult:
    """Capture the web page at *url* in the system's Chromium: a full-page screenshot (role
    ``screenshot``, the record's main file), the rendered DOM (``rendered_page``), a PDF print
    (``page_print``), the page's text (``page_text``) and every HTTP exchange of the page as a
    WACZ (``web_archive``), in one transaction with its acquisition (Chromium's and Playwright's
    versions, the settings, the requested and final URL) and one custody event.

    A page that has not loaded within the time limit is captured as it was then: its
    acquisition's note starts ``partial capture``, as does the result's ``not_kept``.  A page
    that cannot be captured (an error of the browser or the network, the hard time limit, a
    download instead of a page) gives ``ok=False`` and a logged failed attempt; nothing is
    stored.  Raises :class:`InputError` when Chromium or Playwright is not installed.
    """
    options = options or PageOptions()
    chromium_path()  # before anything else: said in one line, with how to install it
    log_key.check_signing_key(ctx)
    url = check_url(url)
    tags = checked_tags(tags)
    check_capture_request(ctx, record_id, tags, note)
    acquisition_id = new_id()
    started_at = ctx.clock()
    failure: str | None = None
    final_url: str | None = None
    interrupted = False
    with common.work_area(ctx, acquisition_id) as work:
        try:
            page = load_page(url, work, options)
            stored = [(item, store_captured(ctx, item)) for item in page.files]
        except CaptureFailed as exc:
            failure, final_url = exc.message, exc.final_url
        except (StorageError, InputError) as exc:
            failure = str(exc)
        except OSError as exc:
            failure = f"the capture could not be written ({exc.strerror or exc}); nothing was stored"
        except KeyboardInterrupt:
            failure, interrupted = "interrupted by the operator", True
    tools = _tools_without_browser() if failure is not None else ()
    if interrupted:
        with contextlib.suppress(EvidenceError):
            log_failed_capture(
                ctx, url, acquisition_id, started_at, failure or "", record_id, settings=options.describe(), tools=tools
            )
        raise KeyboardInterrupt
    if failure is not None:
        return log_failed_capture(
            ctx,
            url,
            acquisition_id,
            started_at,
            failure,
            record_id,
            final_url=final_url,
            settings=options.describe(),
            tools=tools,
        )
    fetched = Download(
        files=page.files,
        info={},
        info_json=work / "none",
        platform_info=PlatformInfo(title=page.title or None, webpage_url=page.final_url),
        extractor=None,
        platform=None,
        platform_id=None,
        final_url=page.final_url,
        http_status=page.http_status,
        responses=(),
        tools=page.tools,
        withheld=() if page.withheld is None else (page.withheld,),
        warnings=page.notes,
    )
    settings = (*options.describe(), f"user_agent_sent={page.user_agent}")
    return record_capture(
        ctx,
        CaptureOptions(),
        url,
        fetched,
        stored,
        acquisition_id,
        started_at,
        record_id=record_id,
        tags=tags,
        note=note,
        noted=None,
        settings=settings,
    )


def _tools_without_browser() -> tuple[Agent, ...]:
    """The tools of a failed attempt: Playwright (Chromium's version is known once it ran)."""
    from evidence_catalog.capture.archiving import _version

    return (Agent(name="Playwright", kind=AgentKind.SOFTWARE, version=_version("playwright")),)
