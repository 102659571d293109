"""RSS and Atom feeds, read with feedparser: each entry becomes a report.

The raw feed document is what the catalog stores (as the reports' source document); this module
only reads it.  feedparser's normalised view is used for the fields, and what it could not read
(a feed that is not well-formed XML, a date it could not parse) is reported, never guessed.
"""

from __future__ import annotations

import calendar
import datetime as dt
import html
import io
import re
from collections.abc import Callable
from typing import Any

from attrs import frozen

from evidence_catalog import model
from evidence_catalog.errors import InputError
from evidence_catalog.ingest.checks import shown, text_problem
from evidence_catalog.ingest.digest import hashtags, mentions, report_identity
from evidence_catalog.serialize import unstructure

#: A markup tag, as far as the next ``>``; ``<`` cannot occur inside, so that text full of
#: ``<`` without ``>`` is still read in linear time.
_TAG = re.compile(r"<[^<>]*>")
#: A length in bytes as a feed states it: ASCII digits (``int`` refuses "²", and a number of
#: thousands of digits), at most 15 of them (JSON carries whole numbers below 2**53 exactly).
_DECIMAL = re.compile(r"[0-9]{1,15}")


@frozen
class FeedEntry:
    """One entry as a report, with a title for its record and a short note of where it was."""

    report: model.Report
    title: str
    where: str
    #: ``unstructure(report)``, made for the check of its text: the ingest stores it (with the
    #: source document set) instead of making it again.
    document: dict[str, Any] | None = None


@frozen
class ParsedFeed:
    """A feed's entries, its kind (``rss`` or ``atom``) and the problems met reading it."""

    kind: str
    title: str | None
    entries: tuple[FeedEntry, ...]
    warnings: tuple[tuple[int, str], ...] = ()


def looks_like_feed(raw: bytes) -> bool:
    """A cheap test used to pick the format: an XML document whose root is RSS, RDF or Atom."""
    head = raw[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(b"<") and any(tag in head for tag in (b"<rss", b"<feed", b"<rdf:rdf"))


def _time(parsed: Any) -> dt.datetime | None:
    if not parsed:
        return None
    try:
        return dt.datetime.fromtimestamp(calendar.timegm(parsed), dt.UTC)
    except (OverflowError, TypeError, ValueError):
        return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


#: A member of one of feedparser's dicts, read as a plain ``dict`` member: for every name this
#: module reads so -- none is one of ``FeedParserDict``'s aliases (``guid``, ``url``,
#: ``description``...) or names it makes up (``enclosures``, ``category``, ``license``,
#: ``updated``) -- what its own ``get`` returns, without its look-ups in Python (an eighth of
#: the reading of each entry).  Aliases and made-up names are read with its ``get``.
_member = dict.get


def _plain(value: Any, detail: Any) -> str:
    """A text construct as the reader sees it: HTML (``type="html"``, RSS descriptions) without
    its tags and with its character references read; plain text as it is."""
    if not isinstance(value, str):
        return ""
    kind = _member(detail, "type") if isinstance(detail, dict) else None
    if isinstance(kind, str) and "html" in kind:
        return html.unescape(_TAG.sub(" ", value))
    return value


def _tag_text(entry: Any) -> str:
    """The text of an entry that ``#hashtags`` and ``@mentions`` are read from: its title,
    summary and content, as a reader sees them (not the markup: ``href="#top"`` is no tag)."""
    parts = [_plain(_member(entry, "title"), _member(entry, "title_detail"))]
    parts.append(_plain(_member(entry, "summary"), _member(entry, "summary_detail")))
    parts += [_plain(_member(c, "value"), c) for c in _member(entry, "content", ()) if isinstance(c, dict)]
    return "\n".join(dict.fromkeys(p for p in parts if p))


def _media(entry: Any) -> tuple[model.MediaLink, ...]:
    """An entry's enclosures (RSS ``<enclosure>``, Atom ``rel="enclosure"``) and Media RSS
    ``media:content`` items, each URL once, with the type and length the feed states."""
    found: dict[str, model.MediaLink] = {}
    items = [("enclosure", _member(e, "href") or e.get("url"), e) for e in entry.get("enclosures", ())]
    items += [("media_content", m.get("url"), m) for m in _member(entry, "media_content", ())]
    for kind, url, item in items:
        if not _text(url) or url.strip() in found:
            continue
        length = _member(item, "length") or _member(item, "filesize")
        found[url.strip()] = model.MediaLink(
            url=url.strip(),
            kind=kind,
            media_type=_text(_member(item, "type")),
            length=int(length) if isinstance(length, str) and _DECIMAL.fullmatch(length.strip()) else None,
        )
    return tuple(found.values())


def parse_feed(raw: bytes, *, where: str, document_sha256: str | None = None) -> ParsedFeed:
    """Read an RSS or Atom document; :class:`InputError` if it holds no readable entries.

    *raw* is the document itself, never a name: feedparser opens a ``bytes`` value that is the
    path of an existing file (and fetches a ``str`` that is a URL) instead of reading it, so a
    feed whose whole body is ``/home/someone/private.xml`` would catalogue that file's entries,
    and one whose body is ``/dev/zero`` would read without end.  It is given a stream of the
    bytes, which it only reads."""
    parsed = _parsed(raw, where)
    kind, feed_title, feed_link = _feed_fields(raw, parsed, where)
    warnings: list[tuple[int, str]] = []
    if parsed.get("bozo"):
        warnings.append((0, f"the feed is not well-formed; read leniently: {parsed.get('bozo_exception')}"))
    entries = [
        feed_entry(entry, number, kind, feed_title, feed_link, where, document_sha256, warnings)
        for number, entry in enumerate(parsed.entries, start=1)
    ]
    if not entries:
        raise InputError("the feed holds no entries", where=where)
    return ParsedFeed(kind=kind, title=feed_title, entries=tuple(entries), warnings=tuple(warnings))


def _parsed(raw: bytes, where: str) -> Any:
    """feedparser's result for *raw* (see :func:`parse_feed`), or :class:`InputError`."""
    import feedparser

    try:
        return feedparser.parse(io.BytesIO(raw), sanitize_html=False, resolve_relative_uris=False)
    except Exception as exc:  # noqa: BLE001 -- a hostile feed may make the parser fail any way
        # (its lenient reader stops at a character reference such as &#xdcff; with an error).
        raise InputError(
            f"is not a feed that can be read ({type(exc).__name__}: {shown(str(exc))}); nothing was ingested",
            where=where,
        ) from None


def _feed_fields(raw: bytes, parsed: Any, where: str) -> tuple[str, str | None, str | None]:
    """The feed's kind (``rss`` or ``atom``), title and link; :class:`InputError` for a document
    feedparser found to be no feed."""
    version = str(parsed.get("version") or "")
    if not version and not parsed.entries:
        problem = parsed.get("bozo_exception")
        reason = (
            " (it holds no XML; a file name or URL in it is content, and is not opened)"
            if b"<" not in raw
            else f" ({shown(str(problem))})"
            if problem
            else ""
        )
        raise InputError(f"is not an RSS or Atom feed{reason}", where=where)
    return _fields(version, parsed.feed)


def _fields(version: str, feed: Any) -> tuple[str, str | None, str | None]:
    """The kind (from feedparser's *version*), title and link of a feed (feedparser's dict of
    it): what every entry's report is made with."""
    return "atom" if version.startswith("atom") else "rss", _text(feed.get("title")), _text(feed.get("link"))


def feed_entry(
    entry: Any,
    number: int,
    kind: str,
    feed_title: str | None,
    feed_link: str | None,
    where: str,
    document_sha256: str | None,
    warnings: list[tuple[int, str]],
) -> FeedEntry:
    """Entry *number* (from 1) of a feed of this *kind*, *feed_title* and *feed_link*, as a
    report; what could not be read of it is added to *warnings*, and text that cannot be
    stored is an :class:`InputError`."""
    link = _text(_member(entry, "link"))
    post_id = _text(_member(entry, "id")) or link
    title = _text(_member(entry, "title"))
    summary = _text(_member(entry, "summary"))
    text = "\n\n".join(t for t in (title, summary) if t) or ""
    author = _text(_member(entry, "author"))
    links = [_member(item, "href") for item in _member(entry, "links", ()) if _text(_member(item, "href"))]
    links += [media.get("url") for media in _member(entry, "media_content", ()) if _text(media.get("url"))]
    # Read as plain dict members: feedparser's aliases (updated -> published) would blur
    # which date the feed gave.
    published = _time(dict.get(entry, "published_parsed"))
    updated = _time(dict.get(entry, "updated_parsed"))
    for name, value in (("published", published), ("updated", updated)):
        if dict.get(entry, name) and value is None:
            warnings.append(
                (number, f"entry {number}: its {name} date could not be read; kept in the stored feed only")
            )
    tag_text = _tag_text(entry)
    identity = report_identity(platform=kind, post_id=post_id, feed=feed_title or feed_link, author=author, text=text)
    report = model.Report(
        id=model.new_id(),
        source=model.Source(platform=kind.upper() if kind == "rss" else "Atom", feed_name=feed_title, url=feed_link),
        text=text,
        author=author,
        published_at=published,
        updated_at=updated,
        post_id=post_id,
        url=link,
        url_known=link is not None,
        links=tuple(dict.fromkeys(links)),
        mentions=mentions(tag_text),  # the rule digests have, one for every format
        hashtags=hashtags(tag_text),
        media=_media(entry),
        document_sha256=document_sha256,
        identity=identity,
    )
    document = unstructure(report)
    problem = text_problem(document)
    if problem is not None:
        raise InputError(f"entry {number}: its {problem}; nothing was ingested", where=where)
    record_title = title or (text.split("\n", 1)[0] if text else f"entry {number} of {feed_title or 'a feed'}")
    return FeedEntry(report=report, title=record_title, where=f"feed entry {number}", document=document)


#: An ``&`` that does not begin one of XML's five named references or a character reference:
#: an HTML entity such as ``&nbsp;`` undeclared, or a bare ``&`` (in a URL).  feedparser's
#: strict reader stops there, and reads the whole feed again with its lenient one.
_NOT_XML_AMPERSAND = re.compile(rb"&(?!(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);)")
#: How many entries a feed must seem to hold for :func:`stream_feed` to pay (the ingest's
#: worker presealing their events pays from as many).
STREAM_ENTRIES = 2000


def worth_reading_apart(raw: bytes) -> bool:
    """Whether a feed seems to hold :data:`STREAM_ENTRIES` entries or more, each starting with
    ``<item`` or ``<entry`` (also with a namespace prefix), and nothing feedparser's strict
    reader would stop at (an undeclared entity, a bare ``&``, a DOCTYPE's own entities): what
    :func:`stream_feed` hands over of a feed read twice is thrown away.  A guess from the bytes,
    in a few passes of C code; it decides how long a feed takes to read, never what is read."""
    entries = sum(raw.count(tag) for tag in (b"<item", b"<entry", b":item", b":entry"))
    if entries < STREAM_ENTRIES or b"<!DOCTYPE" in raw[:4096] or b"<!ENTITY" in raw[:65536]:
        return False
    return _NOT_XML_AMPERSAND.search(raw) is None


#: Entries handed over at once by :func:`stream_feed`.
STREAM_BATCH = 32


class _ChangedError(Exception):
    """What :func:`stream_feed` sent does not stand: the feed's kind, title or link changed after
    entries were made with the earlier ones, or the reading stopped (an error)."""


def stream_feed(
    raw: bytes, *, where: str, send: Callable[[list[FeedEntry]], None], batch: int = STREAM_BATCH
) -> tuple[tuple[int, str], ...] | None:
    """:func:`parse_feed`'s entries, handed to *send* a *batch* at a time while feedparser reads
    on (it returns nothing before it has read the whole feed); then the feed's warnings, or
    ``None`` when what was sent is not what :func:`parse_feed` makes of *raw*: the caller then
    drops all of it and calls :func:`parse_feed`, which says why, if anything is wrong.

    Each entry is made as feedparser ends it, with the feed's kind, title and link as they are
    then (in a feed they come before the entries); once the whole feed is read, what was sent
    stands only if those are still the same, the feed is well-formed (else feedparser reads it
    again with its lenient reader, whose entries may differ), and :func:`parse_feed` would
    accept it.  feedparser's strict reader is hooked where it ends an entry and where it meets
    an error (the reading then stops), for the call: this is for a process of its own (an
    ingest's worker), not one running other threads."""
    from feedparser import api

    reader = api.StrictFeedParser
    hooked = ("_end_item", "_end_entry", "error", "fatalError")
    originals = [reader.__dict__.get(name) for name in hooked]
    ended = reader._end_item  # (the namespace mixin's, under both names)
    assumed: tuple[str, str | None, str | None] | None = None
    made = 0
    pending: list[FeedEntry] = []
    warnings: list[tuple[int, str]] = []

    def take(entries: list[Any], fields: tuple[str, str | None, str | None]) -> None:
        nonlocal assumed, made, pending
        if assumed is None:
            assumed = fields
        elif fields != assumed:
            raise _ChangedError
        for entry in entries[made:]:
            made += 1
            pending.append(feed_entry(entry, made, *fields, where, None, warnings))
        if len(pending) >= batch:
            send(pending)
            pending = []

    def end_entry(handler: Any) -> None:
        ended(handler)
        fields = _fields(str(handler.version or ""), handler.feeddata)
        try:
            take(handler.entries, fields)
        except Exception as exc:  # feedparser takes an AttributeError here for a missing handler
            # and reads on: anything stops the reading instead (what was sent is then dropped)
            raise _ChangedError from exc

    def stop(handler: Any, exc: Exception) -> None:
        # The strict reader's errors: feedparser would read the whole feed again leniently,
        # and what was sent would not stand -- said at once, not after that second reading.
        raise _ChangedError from exc

    reader._end_item = reader._end_entry = end_entry
    reader.error = reader.fatalError = stop
    try:
        parsed = _parsed(raw, where)
        if parsed.get("bozo"):
            return None
        fields = _feed_fields(raw, parsed, where)
        if not parsed.entries:
            return None
        take(parsed.entries, fields)
    except (_ChangedError, InputError):
        return None
    finally:
        for name, original in zip(hooked, originals, strict=True):
            if original is None:
                delattr(reader, name)
            else:
                setattr(reader, name, original)
    if pending:
        send(pending)
    return tuple(warnings)
