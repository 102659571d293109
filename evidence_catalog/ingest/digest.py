"""Feed-reader digests: plain text as feed readers export it, parsed into feeds, items and cards.

Pure: text in, structure out (no I/O).  The format::

    Example Watch (Twitter)                 <- a feed block: "Name (Platform)"
    RT @field_reporter: Satellite ...       <- an item: its title ...
    1. The trenches appear ...                 (several lines: a numbered thread)
    RT @field_reporter: Satellite ...       <- ... and its description, the same text again
    1. The trenches appear ...
    YouTube                                 <- a link card: the site name alone on a line,
    'Count them again': ...                    the linked page's title,
    Researchers spent a year ... why the…      its description (a trailing "…": cut short)

An item is recognised by its repetition: feed readers print an item's title and then its
description, which for social posts are the same text.  Lines that do not repeat are kept as an
item of their own (``repeated=False``) with a warning, never dropped.  Text is kept exactly as it
stands in the digest (quotes, dashes, scripts); each item knows the lines it came from.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from typing import Any

from attrs import field, frozen

#: Platforms a feed block's header may name (the part in parentheses), compared case-insensitively.
PLATFORMS = frozenset(
    p.lower()
    for p in (
        "Twitter", "X", "Telegram", "YouTube", "Facebook", "Instagram", "TikTok", "VK", "VKontakte",
        "Mastodon", "Bluesky", "Reddit", "Threads", "LinkedIn", "Rumble", "Odysee", "RSS", "Atom", "Web",
    )
)  # fmt: skip

_HEADER = re.compile(r"^(?P<name>\S(?:.*\S)?) \((?P<platform>[^()\s][^()]*)\)$")
_REPOST = re.compile(r"^RT @(?P<handle>\w{1,50}):")
_MENTION = re.compile(r"(?<![\w.@])@(\w{1,50})")
_HASHTAG = re.compile(r"#(\w+)")
_SENTENCE_END = (".", "!", "?", ":", ";", ",", "…")
_ELLIPSIS = "…"

#: The longest item (in lines) recognised by its repetition: a bound that keeps parsing linear.
MAX_ITEM_LINES = 200

#: A site-name line is short: at most this many characters and words.
SITE_NAME_MAX_CHARS = 40
SITE_NAME_MAX_WORDS = 4


def _tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(value)


@frozen
class DigestCard:
    """A link card: the site's name, the linked page's title and (often cut short) description."""

    site_name: str
    title: str
    description: str | None = None
    #: True when the description (or, without one, the title) ends in "…".
    truncated: bool = False
    first_line: int = 0
    last_line: int = 0


@frozen
class DigestItem:
    """One item of a feed block."""

    feed_name: str
    platform: str
    #: The item's text exactly as in the digest, its lines joined by "\n".
    text: str
    first_line: int
    last_line: int
    #: True when the text appeared twice in a row (title, then description), as expected.
    repeated: bool = True
    #: For a repost (``RT @handle:``): the original author's handle, without "@".
    repost_of: str | None = None
    mentions: tuple[str, ...] = field(default=(), converter=_tuple)
    hashtags: tuple[str, ...] = field(default=(), converter=_tuple)
    card: DigestCard | None = None


@frozen
class DigestFeed:
    """A feed block: its header line and its items."""

    name: str
    platform: str
    line: int
    items: tuple[DigestItem, ...] = field(default=(), converter=_tuple)


@frozen
class Digest:
    """A parsed digest: its feeds, and what could not be read as the format says."""

    feeds: tuple[DigestFeed, ...] = field(default=(), converter=_tuple)
    #: (line, message) for each part kept in a form the format does not describe.
    warnings: tuple[tuple[int, str], ...] = field(default=(), converter=_tuple)

    @property
    def items(self) -> list[DigestItem]:
        """Every item of every feed, in digest order."""
        return [item for feed in self.feeds for item in feed.items]


def header(line: str) -> tuple[str, str] | None:
    """``(feed name, platform)`` when *line* starts a feed block, else ``None``."""
    found = _HEADER.match(line)
    if found is None or found.group("platform").strip().lower() not in PLATFORMS:
        return None
    return found.group("name"), found.group("platform")


def mentions(text: str) -> tuple[str, ...]:
    """``@handles`` in *text* (without "@"), each once, in order; e-mail addresses are not."""
    return tuple(dict.fromkeys(_MENTION.findall(text)))


def hashtags(text: str) -> tuple[str, ...]:
    """``#tags`` in *text* (without "#"), each once, in order, also when glued to other
    characters (``#Trump-#Putin`` holds two); an all-digit ``#5`` is a number, not a tag."""
    return tuple(dict.fromkeys(tag for tag in _HASHTAG.findall(text) if not tag.isdigit()))


def looks_like_site_name(line: str) -> bool:
    """A line that can be a link card's site name: short, a few words, not a sentence."""
    text = line.strip()
    return (
        bool(text)
        and text == line
        and len(text) <= SITE_NAME_MAX_CHARS
        and len(text.split()) <= SITE_NAME_MAX_WORDS
        and not text.endswith(_SENTENCE_END)
        and _REPOST.match(text) is None
        and header(text) is None
    )


class _Lines(list[str]):
    """A digest's lines, with where each distinct line occurs (so that finding a repetition
    looks only at the places the first line comes back, not at every length up to the limit:
    a 50 MB digest of lines that never repeat is read in linear time)."""

    def __init__(self, lines: Iterable[str]) -> None:
        super().__init__(lines)
        self.at: dict[str, list[int]] = {}
        for number, line in enumerate(self):
            self.at.setdefault(line, []).append(number)


def _repeat_length(lines: _Lines, start: int, stop: int) -> int:
    """The smallest k >= 1 such that the k lines at *start* are repeated right after them
    (within *stop*), or 0."""
    limit = min(MAX_ITEM_LINES, (stop - start) // 2)
    places = lines.at[lines[start]]
    for n in range(bisect.bisect_right(places, start), len(places)):
        k = places[n] - start
        if k > limit:
            break
        if lines[start : start + k] == lines[start + k : start + 2 * k]:
            return k
    return 0


def parse_digest(text: str) -> Digest:
    """Parse a digest's text.  Never raises on odd content: what does not fit is a warning."""
    # Line breaks are LF or CRLF (digests saved on Windows); nothing else splits a line: U+2028
    # or U+0085 inside a post is text, kept as it is.
    split = [line.removesuffix("\r") for line in text.split("\n")]
    if split and split[-1] == "":
        split.pop()  # the final line break
    lines = _Lines(split)
    feeds: list[DigestFeed] = []
    warnings: list[tuple[int, str]] = []
    index = 0
    # Lines before the first feed header belong to no feed: kept as a warning, not guessed.
    while index < len(lines) and header(lines[index]) is None:
        if lines[index].strip():
            warnings.append((index + 1, "text before the first feed header was not read as an item"))
        index += 1
    while index < len(lines):
        name, platform = header(lines[index])  # type: ignore[misc]
        start = index + 1
        stop = start
        while stop < len(lines) and header(lines[stop]) is None:
            stop += 1
        items = _parse_block(lines, start, stop, name, platform, warnings)
        if not items:
            warnings.append((index + 1, f"feed block {name!r} has no items"))
        feeds.append(DigestFeed(name=name, platform=platform, line=index + 1, items=items))
        index = stop
    return Digest(feeds=feeds, warnings=warnings)


def _parse_block(
    lines: _Lines, start: int, stop: int, feed: str, platform: str, warnings: list[tuple[int, str]]
) -> list[DigestItem]:
    items: list[DigestItem] = []
    i = start
    while i < stop:
        if not lines[i].strip():
            i += 1
            continue
        k = _repeat_length(lines, i, stop)
        if k:
            item_lines, first, end = lines[i : i + k], i, i + 2 * k
            repeated = True
        else:
            # Lines up to the next repeated item (or the block's end), read as one item.
            end = i + 1
            while end < stop and lines[end].strip() and not _repeat_length(lines, end, stop):
                end += 1
            item_lines, first, repeated = lines[i:end], i, False
            warnings.append((i + 1, "item text is not repeated (title and description differ or one is missing)"))
        card, end = _card_after(lines, end, stop)
        body = "\n".join(item_lines)
        first_line = item_lines[0]
        repost = _REPOST.match(first_line)
        items.append(
            DigestItem(
                feed_name=feed,
                platform=platform,
                text=body,
                first_line=first + 1,
                last_line=end,
                repeated=repeated,
                repost_of=None if repost is None else repost.group("handle"),
                mentions=mentions(body),
                hashtags=hashtags(body),
                card=card,
            )
        )
        i = end
    return items


def _card_after(lines: _Lines, at: int, stop: int) -> tuple[DigestCard | None, int]:
    """A link card starting at line *at*, and where the block goes on after it."""
    if at + 1 >= stop or not looks_like_site_name(lines[at]) or _repeat_length(lines, at, stop):
        return None, at
    if _repeat_length(lines, at + 1, stop) or not lines[at + 1].strip():
        return None, at  # the next line starts an item: the short line was not a site name
    title = lines[at + 1]
    description = None
    end = at + 2
    if end < stop and lines[end].strip() and not _repeat_length(lines, end, stop):
        description, end = lines[end], end + 1
    truncated = (description if description is not None else title).rstrip().endswith(_ELLIPSIS)
    return DigestCard(
        site_name=lines[at],
        title=title,
        description=description,
        truncated=truncated,
        first_line=at + 1,
        last_line=end,
    ), end


# -- reports ------------------------------------------------------------------------------------


def normalise_for_identity(text: str) -> str:
    """Text as compared for a report's identity: Unicode NFC, runs of white space as one space,
    trimmed, case kept (``@Desk`` and ``@desk`` may be different accounts)."""
    import unicodedata

    return " ".join(unicodedata.normalize("NFC", text).split())


def report_identity(
    *, platform: str | None, post_id: str | None, feed: str | None, author: str | None, text: str
) -> str:
    """A report's identity: ``platform:post id`` where the platform's id is known; otherwise
    ``sha256:`` + SHA-256 of the JSON array ``[feed, author, text]`` (each normalised by
    :func:`normalise_for_identity`, ``null`` when unknown), UTF-8, with no spaces: the same post
    read from two digests has one identity, and anyone can recompute it."""
    import hashlib
    import json

    if platform and post_id:
        return f"{platform.lower()}:{post_id}"
    parts = [None if v is None else normalise_for_identity(v) for v in (feed, author, text)]
    canonical = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def item_report(item: DigestItem, *, report_id: str, document_sha256: str | None, identity: str | None = None) -> Any:
    """The :class:`~evidence_catalog.model.Report` an item states (with *identity*, see
    :func:`report_identity`).  A digest carries no URLs: the report says its URL is unknown
    (``url_known=False``); its author is the original author of a repost, else the feed itself."""
    from evidence_catalog import model

    card = item.card
    return model.Report(
        id=report_id,
        source=model.Source(platform=item.platform, feed_name=item.feed_name),
        text=item.text,
        author=item.repost_of or item.feed_name,
        url=None,
        url_known=False,
        mentions=item.mentions,
        hashtags=item.hashtags,
        link_cards=()
        if card is None
        else (
            model.LinkCard(
                site_name=card.site_name, title=card.title, description=card.description, truncated=card.truncated
            ),
        ),
        repost=None
        if item.repost_of is None
        else model.Repost(reposted_by=item.feed_name, original_author=item.repost_of),
        document_sha256=document_sha256,
        line_span=model.LineSpan(first=item.first_line, last=item.last_line),
        identity=identity,
    )
