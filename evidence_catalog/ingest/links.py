"""Which captured media a report is about: suggestions for ``evidence-catalog link``.

Pure functions over reports and capture acquisitions (no I/O).  A suggestion is only that: the
operator decides, and ``Catalog.link`` records the decision.  Two reasons are offered:

* ``same-url``: a URL in the report (its own, its links, its link cards) is the URL a capture
  asked for, ended at, or the platform's page of the captured item; URLs are compared without
  the fragment, a ``www.`` prefix, a default port or a trailing ``/``, with scheme and host in
  lower case.
* ``same-title``: a link card's title is the captured item's title (Unicode NFKC, case folded,
  anything but letters and digits ignored); a card title cut short (``…``) matches a title that
  begins with what it shows, if it shows at least :data:`MIN_PREFIX` letters and digits.  A
  card whose description alone is cut short shows its whole title: that must match exactly.
"""

from __future__ import annotations

import re
import unicodedata
import urllib.parse
from collections.abc import Iterable, Iterator

from attrs import frozen

from evidence_catalog import model

#: Letters and digits a cut-short card title must show to be matched as a prefix.
MIN_PREFIX = 12

_DEFAULT_PORTS = {"http": 80, "https": 443}
_NOT_WORD = re.compile(r"[\W_]+")
_EMBED_NUMBER = re.compile(r"\s\(\d{1,3}\)\Z")


@frozen
class LinkSuggestion:
    """A report that looks like it is about media captured on another record."""

    report_id: str
    #: The record the report is on now, and the record holding the capture.
    report_record: str
    record_id: str
    #: ``same-url`` or ``same-title``, and the URL or title that matched (as the capture has it).
    reason: str
    matched: str


def url_key(url: str) -> str | None:
    """The form URLs are compared in (see the module notes); ``None`` for no http(s) URL."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower().removeprefix("www.")
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    path = parts.path.rstrip("/")
    return urllib.parse.urlunsplit(("https" if scheme == "http" else scheme, host, path, parts.query, ""))


def title_key(title: str) -> str:
    """A title as compared: NFKC, case folded, only its letters and digits, one space apart."""
    text = unicodedata.normalize("NFKC", title).casefold()
    return " ".join(_NOT_WORD.sub(" ", text).split())


def report_urls(report: model.Report) -> Iterator[str]:
    """Every URL a report carries: its own, its links, its link cards'."""
    yield from (u for u in (report.url, *report.links, *(c.url for c in report.link_cards)) if u)


def capture_urls(acquisition: model.Acquisition) -> Iterator[str]:
    """Every URL a capture is known by: asked for, ended at, the item's page on its platform."""
    info = acquisition.platform_info
    page = None if info is None else info.webpage_url
    yield from (u for u in (acquisition.requested_url, acquisition.final_url, page) if u)


def suggest(
    reports: Iterable[tuple[str, model.Report]], captures: Iterable[tuple[str, model.Acquisition]]
) -> list[LinkSuggestion]:
    """Suggestions for ``(record id, report)`` pairs against ``(record id, acquisition)`` pairs
    of successful captures, each (report, record) once, by URL before title; never a report
    with the record it is already on."""
    by_url: dict[str, dict[str, str]] = {}
    by_title: dict[str, dict[str, str]] = {}
    for record_id, acquisition in captures:
        if acquisition.method is not model.AcquisitionMethod.CAPTURED_FROM_URL:
            continue
        if acquisition.outcome is not model.Outcome.SUCCEEDED:
            continue
        for url in capture_urls(acquisition):
            key = url_key(url)
            if key:
                by_url.setdefault(key, {}).setdefault(record_id, url)
        info = acquisition.platform_info
        if info is not None and info.title:
            # yt-dlp names the n-th video embedded in a page "<page title> (n)"; the page title
            # is what a link card shows.
            for title in {info.title, _EMBED_NUMBER.sub("", info.title)}:
                if title_key(title):
                    by_title.setdefault(title_key(title), {}).setdefault(record_id, info.title)
    found: dict[tuple[str, str], LinkSuggestion] = {}
    for report_record, report in reports:
        for record_id, reason, matched in _matches(report, by_url, by_title):
            if record_id != report_record and (report.id, record_id) not in found:
                found[report.id, record_id] = LinkSuggestion(report.id, report_record, record_id, reason, matched)
    return list(found.values())


def _matches(
    report: model.Report, by_url: dict[str, dict[str, str]], by_title: dict[str, dict[str, str]]
) -> Iterator[tuple[str, str, str]]:
    """``(record id, reason, matched)`` of every capture a report matches, URLs first."""
    for url in report_urls(report):
        for record_id, matched in by_url.get(url_key(url) or "", {}).items():
            yield record_id, "same-url", matched
    for card in report.link_cards:
        title = (card.title or "").rstrip()
        key = title_key(title.removesuffix("…"))
        if not key:
            continue
        # ``truncated`` mostly means the description was cut short: the title is cut short only
        # when it ends in "…" itself (or is all the card shows).  A whole title matches exactly.
        if title.endswith("…") or (card.truncated and not card.description):
            if len(key.replace(" ", "")) < MIN_PREFIX:
                continue
            held = [records for captured, records in by_title.items() if captured.startswith(key)]
        else:
            held = [by_title[key]] if key in by_title else []
        for records in held:
            for record_id, matched in records.items():
                yield record_id, "same-title", matched
