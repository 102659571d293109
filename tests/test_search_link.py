"""Report search and linking reports to records, end to end.

Reports come from real inputs rendered here (feed-reader digests, RSS, twarc2 JSON Lines)
ingested into real catalogs; captures come from the local media server on 127.0.0.1 (no
internet); the custody log is replayed and compared with the database.  Search results are
compared as sets of report ids (or first lines, for readability) with what each input says.

Search means the same on SQLite and PostgreSQL, in every script: one digest is ingested into a
catalog on each (on a PostgreSQL server the tests start), and every query finds the same reports
in both.  Those tests choose their databases themselves, so the PostgreSQL run leaves them out.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import html
import itertools
import json
import re
import shutil
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import escape

import attrs
import pytest
import sqlalchemy as sa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from evidence_catalog import Catalog, model
from evidence_catalog.capture import CaptureOptions
from evidence_catalog.errors import InputError, NotFoundError
from evidence_catalog.ingest.links import MIN_PREFIX, LinkSuggestion, suggest, title_key, url_key
from evidence_catalog.replay import replay
from evidence_catalog.results import LinkResult
from evidence_catalog.store.search import MAX_QUERY_WORDS, query_phrases
from tests.conftest import FixedClock, copy_catalog, raw_database
from tests.media_server import MediaServer, Route
from tests.pg_server import PostgresServer
from tests.salted import unsalted_linked_event

UTC = dt.UTC
CLIP = (Path(__file__).parent / "data" / "clip.mp4").read_bytes()
#: Other bytes, for a second capture (the same bytes would join the first capture's record).
OTHER_CLIP = (Path(__file__).parent / "data" / "clip-video.mp4").read_bytes()
FAST = CaptureOptions(retries=0, socket_timeout=2)
#: When the reports of the ``newsroom`` catalog were found (its clock starts here).
FOUND = dt.datetime(2025, 5, 6, 12, 0, tzinfo=UTC)


def tz(hours: float) -> dt.timezone:
    return dt.timezone(dt.timedelta(hours=hours))


# -- rendering real inputs ------------------------------------------------------------------------


@attrs.frozen
class Card:
    """A digest link card: site name line, title line, optional description line."""

    site: str
    title: str
    description: str | None = None


@attrs.frozen
class Item:
    """A digest item: its text (printed twice, as feed readers do) and an optional card."""

    text: str
    card: Card | None = None


def digest_text(*blocks: tuple[str, str, Sequence[Item]]) -> str:
    """A digest: for each ``(feed name, platform, items)`` a header and its items."""
    lines: list[str] = []
    for name, platform, items in blocks:
        lines.append(f"{name} ({platform})")
        for item in items:
            body = item.text.split("\n")
            lines += body + body
            if item.card is not None:
                lines += [item.card.site, item.card.title]
                if item.card.description is not None:
                    lines.append(item.card.description)
    return "\n".join(lines) + "\n"


@attrs.frozen
class Tweet:
    id: str
    handle: str
    text: str
    mentions: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    created_at: dt.datetime | None = None
    #: The handle whose tweet this one retweets.
    retweet_of: str | None = None


def twarc_jsonl(tweets: Sequence[Tweet]) -> str:
    """One twarc2 response page holding *tweets*, their users and the tweets they retweet."""
    users: dict[str, str] = {}

    def user(handle: str) -> str:
        return users.setdefault(handle, str(1000 + len(users)))

    data, referenced = [], []
    for tweet in tweets:
        doc: dict[str, Any] = {
            "id": tweet.id,
            "author_id": user(tweet.handle),
            "text": tweet.text,
            "entities": {
                "mentions": [{"start": 0, "end": 1, "username": m} for m in tweet.mentions],
                "hashtags": [{"start": 0, "end": 1, "tag": h} for h in tweet.hashtags],
                "urls": [{"url": "https://t.co/x", "expanded_url": u} for u in tweet.urls],
            },
        }
        if tweet.created_at is not None:
            doc["created_at"] = tweet.created_at.isoformat()
        if tweet.retweet_of is not None:
            original = f"{tweet.id}9"
            doc["referenced_tweets"] = [{"type": "retweeted", "id": original}]
            referenced.append({"id": original, "author_id": user(tweet.retweet_of), "text": "original"})
        data.append(doc)
    page = {
        "data": data,
        "includes": {
            "users": [{"id": uid, "username": handle, "name": handle} for handle, uid in users.items()],
            "tweets": referenced,
        },
    }
    return json.dumps(page, ensure_ascii=False) + "\n"


@attrs.frozen
class Entry:
    guid: str
    title: str
    description: str = ""
    link: str | None = None
    author: str | None = None
    published: dt.datetime | None = None


def rss_text(title: str, entries: Sequence[Entry]) -> str:
    items = []
    for e in entries:
        parts = [f"<title>{escape(e.title)}</title>", f'<guid isPermaLink="false">{escape(e.guid)}</guid>']
        if e.description:
            parts.append(f"<description>{escape(e.description)}</description>")
        if e.link is not None:
            parts.append(f"<link>{escape(e.link)}</link>")
        if e.author is not None:
            parts.append(f"<author>{escape(e.author)}</author>")
        if e.published is not None:
            parts.append(f"<pubDate>{email.utils.format_datetime(e.published)}</pubDate>")
        items.append("<item>" + "".join(parts) + "</item>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>https://feeds.example.org/</link>"
        + "\n".join(items)
        + "</channel></rss>\n"
    )


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def og_video_page(video_url: str, title: str) -> bytes:
    """A page whose only video is its Open Graph video: yt-dlp's generic extractor then takes
    the item's title from ``og:title`` exactly as written."""
    shown = html.escape(title)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{shown}</title>
<meta property="og:title" content="{shown}">
<meta property="og:type" content="video.other">
<meta property="og:video" content="{video_url}">
<meta property="og:video:type" content="video/mp4">
</head><body><h1>{shown}</h1></body></html>
""".encode()


def capture_titled(
    catalog: Catalog, server: MediaServer, base: str, name: str, title: str, body: bytes = CLIP
) -> tuple[str, str]:
    """Capture a video page titled *title* from the local server: ``(record id, page URL)``."""
    video = server.route(f"{base}/{name}/clip.mp4", Route(body=body, media_type="video/mp4"))
    page = server.route(
        f"{base}/{name}/watch", Route(body=og_video_page(video, title), media_type="text/html; charset=utf-8")
    )
    result = catalog.capture_url(page, options=FAST, analyze=False)
    assert result.ok, result.error
    assert result.record_id is not None
    [acquisition] = catalog.record(result.record_id).acquisitions
    assert acquisition.platform_info is not None and acquisition.platform_info.title == title  # the premise
    return result.record_id, page


# -- reading results ------------------------------------------------------------------------------


def first_line(report: model.Report) -> str:
    return report.text.split("\n", 1)[0]


def found(catalog: Catalog, text: str = "", **filters: Any) -> set[str]:
    """First lines of every report a search finds (all of them: no limit)."""
    return {first_line(hit.report) for hit in catalog.search(text, limit=None, **filters)}


def found_ids(catalog: Catalog, text: str = "", **filters: Any) -> set[str]:
    return {hit.report.id for hit in catalog.search(text, limit=None, **filters)}


def reports_on(catalog: Catalog) -> dict[str, str]:
    """Report id -> the record it is on, read record by record."""
    return {report.id: record.id for record in catalog.records() for report in record.reports}


def report_by_line(catalog: Catalog, line: str) -> tuple[str, model.Report]:
    """``(record id, report)`` of the one report whose first line is *line*."""
    [hit] = [(r.id, p) for r in catalog.records() for p in r.reports if first_line(p) == line]
    return hit


def found_times(catalog: Catalog) -> dict[str, dt.datetime]:
    """When each report was found: the time of the custody event that ingested it."""
    return {e.details["report"]["id"]: e.at for e in catalog.history() if e.action == "report.ingested"}


def state(catalog: Catalog) -> tuple[list[model.EvidenceRecord], int]:
    """Everything a failed call must leave as it was: the records and the custody log's length."""
    return list(catalog.records()), len(catalog.history())


# -- the newsroom: one catalog with reports in every format and script ---------------------------

RT_LINE = "RT @coast_watch: Night images show two new berths at the #EastQuay yard, via @PortLog"
FILM_LINE = "Our film is out"
FILM_CARD = Card(
    "YouTube",
    "‘Read the ledger twice’: the East Quay records | City Paper Film",
    "Two reporters compared ledgers with satellite pictures of the yard and ask wh…",
)
CYRILLIC_LINE = "Обстріл у Бучі вранці #Бахмут #Trump-#Putin"
ARABIC_LINE = "قصف مدرسة في حلب #حلب"
CAFE_LINE = "CAFÉ OLÉ reopened near the station, mail desk@example.org"
NFD_LINE = "Cafe\u0301 Noir opened on the quay"
WIDE_LINE = "ＢＵＣＨＡ in full-width letters, and the ﬁre brigade"

DIGEST = digest_text(
    ("Harbour Monitor", "Twitter", [Item(RT_LINE)]),
    ("Records Desk", "Telegram", [Item(FILM_LINE, FILM_CARD)]),
    ("Дозор", "Telegram", [Item(CYRILLIC_LINE), Item(ARABIC_LINE)]),
    ("Station Watch", "Web", [Item(CAFE_LINE), Item(NFD_LINE), Item(WIDE_LINE)]),
)
TWEETS = [
    Tweet(
        "501",
        "harbour_mon",
        "RT @coast_watch: Gate closed on 4 May",
        mentions=("coast_watch",),
        hashtags=("EastQuay",),
        created_at=dt.datetime(2025, 5, 5, 18, 30, tzinfo=UTC),
        retweet_of="coast_watch",
    ),
    # 23:30 on 4 May at -02:00 is 01:30 on 5 May in UTC ...
    Tweet("502", "coast_watch", "Tanks moving near Izium", created_at=dt.datetime(2025, 5, 4, 23, 30, tzinfo=tz(-2))),
    # ... and 00:30 on 5 May at +02:00 is 22:30 on 4 May in UTC.
    Tweet(
        "503",
        "coast_watch",
        "Convoy seen at dawn",
        urls=("https://monitor.example.org/posts/77",),
        created_at=dt.datetime(2025, 5, 5, 0, 30, tzinfo=tz(2)),
    ),
]
RSS_ENTRIES = [
    Entry(
        "kd-1",
        "Ferry terminal damaged",
        "Photos from the ferry terminal",
        link="https://kyiv-desk.example.net/posts/7",
        author="Night Desk",
        published=dt.datetime(2025, 5, 5, 9, 0, tzinfo=UTC),
    ),
    Entry("kd-2", "Power restored in the east", "", author="Day Desk"),  # no date: found time counts
]


@pytest.fixture(scope="module")
def newsroom_made(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Path]:
    """The newsroom catalog, made once per module and closed (see ``newsroom``)."""
    folder = tmp_path_factory.mktemp("newsroom")
    # Made before any test's own fixtures, so the back-end's database is asked for here.
    server = request.getfixturevalue("pg_server") if request.config.getoption("--backend") == "postgresql" else None
    database = None if server is None else server.new_database()
    with Catalog.init(
        folder / "catalog", operator="Test Analyst <a@example.org>", clock=FixedClock(FOUND), database=database
    ) as cat:
        cat.ingest(write(folder, "tweets.jsonl", twarc_jsonl(TWEETS)))
        cat.ingest(write(folder, "kyiv.rss", rss_text("Kyiv  Desk", RSS_ENTRIES)))
        cat.ingest(write(folder, "digest.txt", DIGEST))
    yield folder / "catalog"
    if server is not None and database is not None:
        server.drop_database(database)


@pytest.fixture
def newsroom(newsroom_made: Path, tmp_path: Path) -> Iterator[Catalog]:
    """A catalog of reports in every input format and several scripts, found at ``FOUND``: a
    copy of its own for each test."""
    copy_catalog(newsroom_made, tmp_path / "newsroom")
    with Catalog.open(tmp_path / "newsroom", clock=FixedClock(FOUND + dt.timedelta(hours=1))) as cat:
        yield cat


def all_lines(catalog: Catalog) -> set[str]:
    return {first_line(report) for record in catalog.records() for report in record.reports}


def test_the_newsroom_holds_what_the_inputs_say(newsroom: Catalog) -> None:
    """The premise of the search tests: every item became one report."""
    assert all_lines(newsroom) == {
        RT_LINE,
        FILM_LINE,
        CYRILLIC_LINE,
        ARABIC_LINE,
        CAFE_LINE,
        NFD_LINE,
        WIDE_LINE,
        "RT @coast_watch: Gate closed on 4 May",
        "Tanks moving near Izium",
        "Convoy seen at dawn",
        "Ferry terminal damaged",
        "Power restored in the east",
    }
    assert found(newsroom) == all_lines(newsroom)  # no words, no filters: everything


# -- 1. words -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("berths", {RT_LINE}),
        ("BERTHS", {RT_LINE}),
        ("Night berths", {RT_LINE}),
        ("eastquay", {RT_LINE}),  # a hashtag is a word of the text too
        ("gate", {"RT @coast_watch: Gate closed on 4 May"}),
        # Every word must be present, in any order, anywhere in the report.
        ("berths gate", set()),
        ("yard berths", {RT_LINE}),
        # Link cards: site name, title and description are searched.
        ("ledger", {FILM_LINE}),
        ("LEDGERS satellite", {FILM_LINE}),
        ("youtube", {FILM_LINE}),
        ("east quay", {FILM_LINE}),  # "#EastQuay" is one word, not "east" and "quay"
        # Accents and case, either way round; composed or decomposed.
        ("cafe", {CAFE_LINE, NFD_LINE}),
        ("CAFÉ", {CAFE_LINE, NFD_LINE}),
        ("Cafe\u0301", {CAFE_LINE, NFD_LINE}),
        ("ole", {CAFE_LINE}),
        ("noir café", {NFD_LINE}),
        # Non-Latin scripts.
        ("бучі", {CYRILLIC_LINE}),
        ("БУЧІ ВРАНЦІ", {CYRILLIC_LINE}),
        ("бахмут", {CYRILLIC_LINE}),
        ("حلب", {ARABIC_LINE}),
        ("مدرسة حلب", {ARABIC_LINE}),
        ("مَدْرَسَة", {ARABIC_LINE}),  # vowel marks (harakat) are optional in Arabic writing
        ("مدرسة berths", set()),
        # Glued hashtags hold both words.
        ("putin", {CYRILLIC_LINE}),
        ("TRUMP putin", {CYRILLIC_LINE}),
        # Compatibility forms (full-width letters, ligatures) are the letters they stand for.
        ("bucha", {WIDE_LINE}),
        ("ＢＵＣＨＡ", {WIDE_LINE}),
        ("fire brigade", {WIDE_LINE}),
        ("ﬁre", {WIDE_LINE}),
        # Names of feeds and authors, and URLs.
        ("coast_watch tanks", {"Tanks moving near Izium"}),
        ("night desk", {"Ferry terminal damaged"}),
        ("kyiv-desk.example.net/posts/7", {"Ferry terminal damaged"}),
        ("monitor.example.org", {"Convoy seen at dawn"}),
        ("nothing-like-this", set()),
    ],
)
def test_words_are_found_whatever_their_case_accents_or_script(
    newsroom: Catalog, text: str, expected: set[str]
) -> None:
    assert found(newsroom, text) == expected


# -- 1. exact filters -----------------------------------------------------------------------------

GATE = "RT @coast_watch: Gate closed on 4 May"
TANKS = "Tanks moving near Izium"
CONVOY = "Convoy seen at dawn"
FERRY = "Ferry terminal damaged"
POWER = "Power restored in the east"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"mention": "PortLog"}, {RT_LINE}),
        ({"mention": "@portlog"}, {RT_LINE}),
        ({"mention": " @PORTLOG "}, {RT_LINE}),
        ({"mention": "Port"}, set()),  # exact, not a prefix
        ({"mention": "example"}, set()),  # desk@example.org is an e-mail address, not a mention
        ({"mention": "coast_watch"}, {RT_LINE, GATE}),  # "RT @x" in a digest; entities in a tweet
        ({"hashtag": "EastQuay"}, {RT_LINE, GATE}),
        ({"hashtag": "#eastquay"}, {RT_LINE, GATE}),
        ({"hashtag": "#Trump"}, {CYRILLIC_LINE}),
        ({"hashtag": "PUTIN"}, {CYRILLIC_LINE}),
        ({"hashtag": "Trump-"}, set()),
        ({"hashtag": "#бахмут"}, {CYRILLIC_LINE}),
        ({"hashtag": "حلب"}, {ARABIC_LINE}),
        ({"feed": "Harbour Monitor"}, {RT_LINE}),
        ({"feed": "harbour   MONITOR"}, {RT_LINE}),  # case and runs of spaces ignored
        ({"feed": "Дозор"}, {CYRILLIC_LINE, ARABIC_LINE}),
        ({"feed": "дозор"}, {CYRILLIC_LINE, ARABIC_LINE}),
        ({"feed": "station watch"}, {CAFE_LINE, NFD_LINE, WIDE_LINE}),
        ({"feed": "station"}, set()),  # a whole name, not a word of it
        ({"feed": "kyiv desk"}, {FERRY, POWER}),  # an RSS feed's title
        ({"feed": "coast_watch"}, {TANKS, CONVOY}),  # a tweet's feed is its account
        ({"feed": "harbour_mon"}, {GATE}),
        # Authors: the author, the account, and both sides of a repost.
        ({"author": "coast_watch"}, {RT_LINE, GATE, TANKS, CONVOY}),
        ({"author": "@harbour_mon"}, {GATE}),  # the account that retweeted
        ({"author": "Harbour Monitor"}, {RT_LINE}),  # the feed that reposted
        ({"author": "records desk"}, {FILM_LINE}),  # a digest item's author is its feed
        ({"author": "Night Desk"}, {FERRY}),
        # Filters and words together.
        ({"author": "coast_watch", "hashtag": "eastquay"}, {RT_LINE, GATE}),
        ({"author": "coast_watch", "hashtag": "eastquay", "feed": "harbour_mon"}, {GATE}),
        ({"author": "coast_watch", "mention": "PortLog", "text": "night"}, {RT_LINE}),
        ({"author": "coast_watch", "text": "ledger"}, set()),
    ],
)
def test_filters_match_exactly_ignoring_case_and_the_at_or_hash_sign(
    newsroom: Catalog, filters: dict[str, str], expected: set[str]
) -> None:
    filters = dict(filters)
    assert found(newsroom, filters.pop("text", ""), **filters) == expected


@pytest.mark.parametrize(("kind", "value"), [("mention", "@"), ("hashtag", " # "), ("feed", "   "), ("author", "")])
def test_a_blank_filter_is_an_input_error(newsroom: Catalog, kind: str, value: str) -> None:
    filters: dict[str, Any] = {kind: value}
    with pytest.raises(InputError, match=f"{kind} is blank"):
        newsroom.search(**filters)


# -- 1. since ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        # A date is the start of that day in UTC: 01:30Z on 5 May is in, 22:30Z on 4 May is not,
        # although that was already 5 May where it was posted (+02:00).
        (dt.date(2025, 5, 5), "all but the convoy"),
        ("2025-05-05", "all but the convoy"),
        (dt.date(2025, 5, 4), "everything"),
        # A time with its zone: 03:30 at +02:00 is 01:30Z, the very time of the tanks tweet.
        (dt.datetime(2025, 5, 5, 3, 30, tzinfo=tz(2)), "all but the convoy"),
        ("2025-05-05T01:30Z", "all but the convoy"),
        ("2025-05-05T01:30:00.000001+00:00", "from the ferry on"),
        (dt.datetime(2025, 5, 5, 1, 30, 0, 1, tzinfo=UTC), "from the ferry on"),
        # Reports without a published time are searched by the time they were found.
        (dt.date(2025, 5, 6), "found ones only"),
        (FOUND, "found ones only"),
        (dt.date(2025, 5, 7), "nothing"),
    ],
)
def test_since_compares_published_times_in_utc_and_else_found_times(
    newsroom: Catalog, since: dt.datetime | dt.date | str, expected: str
) -> None:
    everything = all_lines(newsroom)
    undated = everything - {GATE, TANKS, CONVOY, FERRY}  # the digest's items and the undated entry
    assert POWER in undated
    wanted = {
        "everything": everything,
        "all but the convoy": everything - {CONVOY},
        "from the ferry on": everything - {CONVOY, TANKS},
        "found ones only": undated,
        "nothing": set(),
    }[expected]
    assert found(newsroom, since=since) == wanted


@pytest.mark.parametrize(
    ("since", "message"),
    [
        (dt.datetime(2025, 5, 5, 10, 0), "has no time zone"),
        ("2025-05-05T10:00", "has no time zone"),
        ("2025-05-05 10:00:00", "has no time zone"),
        ("yesterday", "is not a date"),
        ("2025-13-01", "is not a date"),
    ],
)
def test_a_since_without_a_zone_or_not_a_time_is_refused(newsroom: Catalog, since: Any, message: str) -> None:
    with pytest.raises(InputError, match=message) as raised:
        newsroom.search(since=since)
    assert raised.value.where == "since"


def test_results_are_newest_first_and_limit_takes_the_first(newsroom: Catalog) -> None:
    everything = newsroom.search(limit=None)
    when = found_times(newsroom)
    times = [hit.report.published_at or when[hit.report.id] for hit in everything]
    assert times == sorted(times, reverse=True)
    assert len(everything) == 12
    for limit in (1, 3, 12, 50):
        assert newsroom.search(limit=limit) == everything[:limit]
    assert len(newsroom.search("coast_watch", limit=1)) == 1
    assert len(newsroom.search("coast_watch", limit=None)) == 4


@pytest.mark.parametrize("limit", [0, -1, True, 2.5, "3"])
def test_a_limit_that_is_not_a_positive_whole_number_is_refused(newsroom: Catalog, limit: Any) -> None:
    with pytest.raises(InputError, match="limit must be a whole number"):
        newsroom.search(limit=limit)


# -- 1. hostile search text -----------------------------------------------------------------------


def has_words(text: str) -> bool:
    """Whether search text holds a word: a letter, a digit or a private-use character (as Unicode
    NFKC has it; combining marks alone are none)."""
    return any(c.isalnum() or unicodedata.category(c) == "Co" for c in unicodedata.normalize("NFKC", text))


HOSTILE = [
    '"',
    '""',
    'berths"',
    "'",
    "-",
    "--",
    "-berths",
    "*",
    "berths*",
    "OR",
    "AND",
    "NOT",
    "berths OR gate",
    "berths NOT yard",
    "NEAR(",
    "NEAR(berths gate)",
    "NEAR(berths yard, 5)",
    ":",
    "body:berths",
    "report_fts:berths",
    "{body}: berths",
    "^berths",
    "(",
    ")",
    "+",
    "\\",
    "%",
    "_",
    "' OR 1=1 --",
    "'; DROP TABLE record; --",
    "\x01\x02\x1f\x7f",
    "berths\x0b\x0c\x1b[31m",
    "\u200b",
    "\u202e",
    "😀",
    "…",
    " \t\n ",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_search_text_is_taken_as_words_never_as_query_syntax(newsroom: Catalog, text: str) -> None:
    hits = found(newsroom, text)
    assert hits <= all_lines(newsroom)
    if not has_words(text):
        assert hits == all_lines(newsroom)  # no words: every report
    for mention in (text, "@" + text):
        if text.strip(" \t\n#@"):
            assert found(newsroom, mention=mention) == set()


def test_text_that_is_not_unicode_is_an_input_error(newsroom: Catalog) -> None:
    cases: list[dict[str, Any]] = [{"text": "berths \udc80"}, {"mention": "\ud800"}, {"feed": "Desk \udcff"}]
    for filters in cases:
        with pytest.raises(InputError, match="is not valid UTF-8 text"):
            newsroom.search(**filters)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("berths OR gate", set()),  # OR is a word here, not "either"
        ("berths NOT yard", set()),  # NOT is a word, not "without"
        ("NEAR(berths yard)", set()),  # the words "near", "berths", "yard"
        ("body:berths", set()),  # "body berths" as a phrase, not the column
        ("-berths", {RT_LINE}),  # not "without berths"
        ("berths*", {RT_LINE}),  # not a prefix query: the word
        ("bert*", set()),
        ('"berths', {RT_LINE}),
    ],
)
def test_query_syntax_has_no_effect(newsroom: Catalog, text: str, expected: set[str]) -> None:
    assert found(newsroom, text) == expected


def test_any_search_text_without_nul_never_raises(newsroom: Catalog) -> None:
    everything = all_lines(newsroom)
    fragments = st.sampled_from(['"', "'", "-", "*", "OR", "NEAR(", ":", "^", "(", ")", "berths", "AND", "NOT", " "])
    # Any Unicode text that UTF-8 can hold (no lone surrogates), without NUL.
    anything = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)
    texts = anything | st.lists(fragments, max_size=8).map("".join)

    @settings(max_examples=40)
    @given(text=texts)
    @example(text="\u00af")  # NFKC: a space and a combining macron, no word (it found nothing)
    @example(text="\U000f0000")  # private use: a word, as FTS5's unicode61 had it
    def check(text: str) -> None:
        hits = found(newsroom, text)
        assert hits <= everything
        if not has_words(text):
            assert hits == everything

    check()


# -- 1. property: filters equal a brute-force filter over what the inputs said --------------------

HANDLES = ["desk_one", "DeskTwo", "дозор_ua", "rédaction"]
MENTIONS = [*HANDLES, "PortLog", "ПортЛог"]
HASHTAGS = ["EastQuay", "Бахмут", "حلب", "Trump", "Putin", "school5"]
FEEDS = ["Kyiv Desk", "Дозор Новини", "Harbour Monitor"]
BASE = dt.datetime(2025, 5, 5, tzinfo=UTC)
OFFSETS = [tz(0), tz(3), tz(-2), tz(5.5)]


@attrs.frozen
class Post:
    """What one generated item says, whatever the input it is written in."""

    fmt: str
    label: str
    author: str
    feed: str
    mentions: tuple[str, ...]
    hashtags: tuple[str, ...]
    repost_of: str | None
    published: dt.datetime | None


@st.composite
def posts(draw: st.DrawFn) -> list[Post]:
    count = draw(st.integers(min_value=1, max_value=9))
    rss_feed = draw(st.sampled_from(FEEDS))
    made = []
    for n in range(count):
        fmt = draw(st.sampled_from(["twarc", "rss", "digest"]))
        author = draw(st.sampled_from(HANDLES))
        minutes = draw(st.integers(min_value=-3 * 24 * 60, max_value=3 * 24 * 60))
        published = (BASE + dt.timedelta(minutes=minutes)).astimezone(draw(st.sampled_from(OFFSETS)))
        tags = st.lists(st.sampled_from(MENTIONS), max_size=3, unique=True).map(tuple)
        others = st.sampled_from([h for h in HANDLES if h != author])
        made.append(
            Post(
                fmt=fmt,
                label=f"n{n}x",
                author=author,
                feed={"twarc": author, "rss": rss_feed, "digest": draw(st.sampled_from(FEEDS))}[fmt],
                mentions=() if fmt == "rss" else draw(tags),
                hashtags=()
                if fmt == "rss"
                else draw(st.lists(st.sampled_from(HASHTAGS), max_size=3, unique=True).map(tuple)),
                repost_of=None if fmt == "rss" else draw(st.none() | others),
                published=None if fmt == "digest" else draw(st.none() | st.just(published)),
            )
        )
    return made


def write_inputs(folder: Path, made: Sequence[Post]) -> list[Path]:
    """The posts as twarc2 JSONL, an RSS feed and a digest (each only if it has posts)."""
    paths = []
    tweets = [
        Tweet(
            id=str(9000 + int(p.label[1:-1])),
            handle=p.author,
            text=(f"RT @{p.repost_of}: " if p.repost_of else "") + f"{p.label} tweet",
            mentions=tuple(dict.fromkeys(([p.repost_of] if p.repost_of else []) + list(p.mentions))),
            hashtags=p.hashtags,
            created_at=p.published,
            retweet_of=p.repost_of,
        )
        for p in made
        if p.fmt == "twarc"
    ]
    if tweets:
        paths.append(write(folder, "tweets.jsonl", twarc_jsonl(tweets)))
    entries = [
        Entry(guid=p.label, title=f"{p.label} headline", author=p.author, published=p.published)
        for p in made
        if p.fmt == "rss"
    ]
    if entries:
        paths.append(write(folder, "feed.rss", rss_text(next(p.feed for p in made if p.fmt == "rss"), entries)))
    blocks = []
    for p in made:
        if p.fmt != "digest":
            continue
        text = (f"RT @{p.repost_of}: " if p.repost_of else "") + p.label
        text += "".join(f" @{m}" for m in p.mentions)
        if p.hashtags:
            text += " " + "-".join(f"#{h}" for h in p.hashtags)  # glued: #a-#b-#c
        blocks.append((p.feed, "Telegram", [Item(text)]))
    if blocks:
        paths.append(write(folder, "digest.txt", digest_text(*blocks)))
    return paths


def key(kind: str, value: str) -> str:
    """A name as the filters compare it: NFKC, case folded, spaces collapsed, no @ or #."""
    text = " ".join(unicodedata.normalize("NFKC", value).split()).casefold()
    return text.removeprefix("#" if kind == "hashtag" else "@") if kind != "feed" else text


def post_terms(p: Post) -> dict[str, set[str]]:
    """The names each filter matches a post by, from what its input says."""
    mentions = set(p.mentions) | ({p.repost_of} if p.repost_of and p.fmt in ("twarc", "digest") else set())
    if p.fmt == "twarc":
        authors = {p.author} | ({p.repost_of} if p.repost_of else set())
    elif p.fmt == "rss":
        authors = {p.author}
    else:  # a digest item's author is the original author of a repost, else its feed
        authors = {p.feed} | ({p.repost_of} if p.repost_of else set())
    named = {"mention": mentions, "hashtag": set(p.hashtags), "feed": {p.feed}, "author": authors}
    return {kind: {key(kind, v) for v in values} for kind, values in named.items()}


def brute_force(
    made: Sequence[Post], ids: dict[str, str], found_at: dict[str, dt.datetime], filters: dict[str, Any]
) -> set[str]:
    since = filters.get("since")
    if isinstance(since, dt.date) and not isinstance(since, dt.datetime):
        since = dt.datetime(since.year, since.month, since.day, tzinfo=UTC)
    kept = set()
    for p in made:
        terms = post_terms(p)
        if any(key(kind, filters[kind]) not in terms[kind] for kind in terms if kind in filters):
            continue
        if since is not None and (p.published or found_at[ids[p.label]]) < since:
            continue
        kept.add(ids[p.label])
    return kept


def variants(kind: str, value: str) -> list[str]:
    sign = {"mention": "@", "hashtag": "#", "author": "@"}.get(kind, "")
    return [value, sign + value.upper(), f"  {value.swapcase()} ", value.replace(" ", "   ")]


filter_sets = st.fixed_dictionaries(
    {},
    optional={
        "mention": st.sampled_from(MENTIONS).map(str.lower),
        "hashtag": st.sampled_from(HASHTAGS).map(lambda h: "#" + h.upper()),
        "feed": st.sampled_from(FEEDS + HANDLES),
        "author": st.sampled_from(HANDLES + FEEDS),
        "since": st.integers(min_value=-4 * 24, max_value=4 * 24).map(lambda h: BASE + dt.timedelta(hours=h))
        | st.dates(min_value=dt.date(2025, 5, 1), max_value=dt.date(2025, 5, 9)),
    },
)


@pytest.fixture
def empty_template(tmp_path: Path) -> Path:
    """An empty catalog, closed: copied for each example (cheaper than making one each time)."""
    with Catalog.init(tmp_path / "template", operator="Test Analyst <a@example.org>"):
        pass
    return tmp_path / "template"


@pytest.mark.slow
def test_filters_equal_a_brute_force_filter_over_the_inputs(empty_template: Path, tmp_path: Path) -> None:
    @settings(max_examples=30)
    @given(made=posts(), combos=st.lists(filter_sets, max_size=6))
    def check(made: list[Post], combos: list[dict[str, Any]]) -> None:
        with tempfile.TemporaryDirectory(dir=tmp_path) as scratch:
            folder = Path(scratch)
            copy_catalog(empty_template, folder / "catalog")
            with Catalog.open(folder / "catalog", clock=FixedClock(BASE + dt.timedelta(hours=7))) as catalog:
                for path in write_inputs(folder, made):
                    assert catalog.ingest(path).reports_added > 0
                ids = {label_of(r): r.id for r in _reports(catalog)}
                assert set(ids) == {p.label for p in made}
                found_at = found_times(catalog)
                queries: list[dict[str, Any]] = [{}, *combos]
                for kind, pool in (("mention", MENTIONS), ("hashtag", HASHTAGS), ("feed", FEEDS + HANDLES)):
                    queries += [{kind: v} for value in pool for v in variants(kind, value)]
                queries += [{"author": v} for value in HANDLES + FEEDS for v in variants("author", value)]
                queries += [{"since": BASE + dt.timedelta(hours=h)} for h in (-49, -1, 0, 7, 30)]
                queries += [{"since": BASE.date() + dt.timedelta(days=d)} for d in range(-3, 4)]
                queries += [{"since": p.published} for p in made if p.published is not None]
                for query in queries:
                    assert found_ids(catalog, **query) == brute_force(made, ids, found_at, query), query
                for p in made:  # and each post is found by its own word
                    assert found_ids(catalog, p.label) == {ids[p.label]}

    check()


def _reports(catalog: Catalog) -> list[model.Report]:
    return [report for record in catalog.records() for report in record.reports]


def label_of(report: model.Report) -> str:
    found_label = re.search(r"\bn\d+x\b", report.text)
    assert found_label is not None, report.text
    return found_label.group()


# -- 1. the same results on SQLite and PostgreSQL -------------------------------------------------

#: Reports in many scripts: the texts of one digest's items.
REPORTS = [
    "Ещё один обстрел Харькова ночью",
    "Київ під обстрілом, бій йде біля школи",
    "Die Straße nach Butscha ist gesperrt",
    "Νοσοκομείο της Μαριούπολης χτυπήθηκε",
    "ΟΔΟΣ ΚΛΕΙΣΤΗ στην πόλη",
    "ที่นี่ มีระเบิด ใกล้โรงเรียน",
    "बमबारी हुई अस्पताल के पास",
    "قَصفٌ على مَدرسة في حلب #حلب",
    "Le café près de la gare a été détruit à Évreux",
    "🔥 Пожежа на складі 🚒 #Херсон",
    "Talks stalled again #Trump-#Putin",
    "Cafe\u0301 Noir reopened near al-Bab",
    "Ｆｕｌｌ-width ＢＵＣＨＡ and the ﬁre brigade",
]


def _digest(texts: list[str]) -> str:
    """A feed-reader digest: one feed, each item's text printed twice (title, description)."""
    lines = ["Field Desk (Telegram)"]
    for text in texts:
        lines += [text, text]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def two_backends(pg_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Catalog]]:
    """The same digest ingested into a catalog on SQLite and one on PostgreSQL."""
    folder = tmp_path_factory.mktemp("parity")
    (folder / "digest.txt").write_text(_digest(REPORTS), encoding="utf-8")
    database = pg_server.new_database()
    catalogs: dict[str, Catalog] = {}
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Catalog, "_default_database", None)  # SQLite, whatever --backend says
            catalogs["sqlite"] = Catalog.init(folder / "sqlite", operator="Analyst <a@example.org>")
        catalogs["postgresql"] = Catalog.init(folder / "pg", operator="Analyst <a@example.org>", database=database)
        for catalog in catalogs.values():
            assert catalog.ingest(folder / "digest.txt").reports_added == len(REPORTS)
        yield catalogs
    finally:
        for catalog in catalogs.values():
            catalog.close()
        pg_server.drop_database(database)


def _found(catalog: Catalog, query: str) -> set[str]:
    return {hit.report.text for hit in catalog.search(query, limit=None)}


def _same_on_both(catalogs: dict[str, Catalog], query: str) -> set[str]:
    on_sqlite, on_postgresql = _found(catalogs["sqlite"], query), _found(catalogs["postgresql"], query)
    assert on_sqlite == on_postgresql, f"{query!r}: SQLite {on_sqlite}, PostgreSQL {on_postgresql}"
    return on_sqlite


@pytest.mark.no_postgresql_pass
def test_the_premise_every_item_is_one_report(two_backends: dict[str, Catalog]) -> None:
    assert _same_on_both(two_backends, "") == set(REPORTS)


@pytest.mark.no_postgresql_pass
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("еще", {REPORTS[0]}),
        ("ЕЩЁ ОДИН", {REPORTS[0]}),
        ("киів", {REPORTS[1]}),
        ("иде", {REPORTS[1]}),
        ("strasse", {REPORTS[2]}),
        ("STRAßE butscha", {REPORTS[2]}),
        ("νοσοκομειο", {REPORTS[3]}),
        ("οδος", {REPORTS[4]}),
        ("ΠΌΛΗ", {REPORTS[4]}),
        ("มีระเบิด", {REPORTS[5]}),
        ("ท", set()),
        ("अस्पताल", {REPORTS[6]}),
        ("मबार", set()),
        ("مدرسة", {REPORTS[7]}),
        ("#حلب", {REPORTS[7]}),
        ("cafe", {REPORTS[8], REPORTS[11]}),
        ("CAFÉ", {REPORTS[8], REPORTS[11]}),
        ("evreux detruit", {REPORTS[8]}),
        ("херсон", {REPORTS[9]}),
        ("trump putin", {REPORTS[10]}),
        ("#Trump-#Putin", {REPORTS[10]}),
        ("putin-trump", set()),
        ("al-bab", {REPORTS[11]}),
        ("bucha fire full", {REPORTS[12]}),
        ("caf", set()),
        ("🔥", set(REPORTS)),
        ("\"'*-:", set(REPORTS)),
        ("OR", set()),
        ("the", {REPORTS[12]}),
    ],
)
def test_search_means_the_same_on_sqlite_and_postgresql(
    two_backends: dict[str, Catalog], query: str, expected: set[str]
) -> None:
    assert _same_on_both(two_backends, query) == expected


@pytest.mark.no_postgresql_pass
@pytest.mark.parametrize("joiner", [" ", "-"])  # separate words; one phrase of them all
@pytest.mark.parametrize("words", [1700, MAX_QUERY_WORDS - 1])
def test_a_search_of_thousands_of_words_means_the_same_on_sqlite_and_postgresql(
    two_backends: dict[str, Catalog], words: int, joiner: str
) -> None:
    """A search of more words than a PostgreSQL statement may have columns (1,664): each word's
    count and frequency were a column of their own, and the search failed as a database that
    could not be read.  Every word of a report, repeated, still finds it; one word more that
    no report holds finds nothing."""
    text = REPORTS[12]
    chosen: list[str] = []  # as many of its words as make *words* searched words (some make two)
    count = 0
    for word in itertools.cycle(text.split()):
        count += sum(len(phrase) for phrase in query_phrases(word))
        if count > words:
            break
        chosen.append(word)
    query = " ".join(chosen)
    if joiner == " ":
        assert _same_on_both(two_backends, query) == {text}
    assert _same_on_both(two_backends, query.replace(" ", joiner) + " zzzunheard") == set()


@pytest.mark.no_postgresql_pass
@pytest.mark.parametrize("joiner", [" ", "-"])
def test_a_search_of_more_words_than_searched_at_once_is_refused_alike(
    two_backends: dict[str, Catalog], joiner: str
) -> None:
    """PostgreSQL cannot answer a search of some thousands of words (its stack is too deep),
    where SQLite can: both refuse more than MAX_QUERY_WORDS as an InputError naming the text."""
    query = joiner.join(f"w{n}" for n in range(MAX_QUERY_WORDS + 1))
    for catalog in two_backends.values():
        with pytest.raises(InputError, match="holds 2,001 words; at most 2,000") as caught:
            catalog.search(query)
        assert caught.value.where == "text"
        assert catalog.search(query.rsplit(joiner, 1)[0]) == []  # one word fewer is searched


_WORDS = sorted({word for text in REPORTS for word in text.split()})
_CHARACTERS = sorted({char for text in REPORTS for char in unicodedata.normalize("NFD", text)} | set("#-'\"*:_%\\"))


_CASES: list[Callable[[str], str]] = [str.upper, str.lower, str.casefold, str.title, str.strip]


@st.composite
def _queries(draw: st.DrawFn) -> str:
    """Words of the reports, whole or cut anywhere (inside a grapheme too), in any case and
    normal form, or a few characters of theirs."""
    if draw(st.booleans()):
        return draw(st.text(alphabet=_CHARACTERS, max_size=6))
    parts = []
    for word in draw(st.lists(st.sampled_from(_WORDS), min_size=1, max_size=3)):
        if draw(st.booleans()):
            start = draw(st.integers(0, len(word)))
            word = word[start : draw(st.integers(start, len(word)))]
        form: Literal["NFC", "NFD", "NFKC"] = draw(st.sampled_from(["NFC", "NFD", "NFKC"]))
        change = draw(st.sampled_from(_CASES))
        parts.append(change(unicodedata.normalize(form, word)))
    return " ".join(parts)


@pytest.mark.no_postgresql_pass
@settings(max_examples=150)
@given(query=_queries())
def test_any_search_finds_the_same_reports_on_sqlite_and_postgresql(
    two_backends: dict[str, Catalog], query: str
) -> None:
    _same_on_both(two_backends, query)


# Random reports and searches: the same hits in the same order on both databases.  Few words, so
# that reports share them, repeat them and tie on score; few times, so that they tie on time
# too; runs that overlap themselves ("alpha alpha", "alpha bravo alpha").  With PostgreSQL's
# limits made tiny, its other ways of indexing a report -- long words hashed, words without
# positions, a report checked word by word -- are taken by small reports as well.

_VOCABULARY = ["alpha", "bravo", "café", "ёж", "حلب", "delta", "echo", "fox", "golf", "hotel"]
_HANDLES = ["desk_one", "desk_two", "desk_three"]
_TAGS = ["east", "west"]
_TIMES = [None, dt.datetime(2025, 5, 1, tzinfo=UTC), dt.datetime(2025, 5, 2, tzinfo=UTC)]


@st.composite
def _tweets(draw: st.DrawFn) -> list[Tweet]:
    made = []
    for n in range(draw(st.integers(min_value=1, max_value=14))):
        # Mostly from a few of the words: some words are in most reports, others in few (their
        # weight in a search of several differs).
        pool = _VOCABULARY[: draw(st.sampled_from([3, 10]))]
        words = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=7))
        if draw(st.integers(0, 9)) == 0:  # a word over and over
            words += [words[0]] * draw(st.sampled_from([3, 300]))
        made.append(
            Tweet(
                id=str(7000 + n),
                handle=draw(st.sampled_from(_HANDLES)),
                text=draw(st.sampled_from([" ", "-", " - "])).join(words),
                mentions=tuple(draw(st.lists(st.sampled_from(_HANDLES), max_size=2, unique=True))),
                hashtags=tuple(draw(st.lists(st.sampled_from(_VOCABULARY[:3]), max_size=2, unique=True))),
                created_at=draw(st.sampled_from(_TIMES)),
            )
        )
    return made


@st.composite
def _searches(draw: st.DrawFn) -> dict[str, Any]:
    phrases = draw(st.lists(st.lists(st.sampled_from([*_VOCABULARY, "zulu"]), min_size=1, max_size=3), max_size=3))
    query: dict[str, Any] = {
        "text": " ".join("-".join(draw(st.sampled_from(_CASES))(w) for w in phrase) for phrase in phrases),
        "limit": draw(st.sampled_from([None, 1, 2, 3, 100])),
        "offset": draw(st.sampled_from([0, 0, 1, 3])),
    }
    for kind, pool in (("mention", _HANDLES), ("hashtag", _VOCABULARY[:3]), ("author", _HANDLES)):
        if draw(st.integers(0, 4)) == 0:
            query[kind] = draw(st.sampled_from(pool))
    if draw(st.integers(0, 4)) == 0:
        query["since"] = draw(st.sampled_from(_TIMES[1:]))
    if draw(st.integers(0, 4)) == 0:
        query["tags"] = [draw(st.sampled_from(_TAGS))]
    return query


def _ranked(catalog: Catalog, query: dict[str, Any]) -> list[str]:
    """The identities of the reports a search finds, in its order."""
    query = dict(query)
    tags = query.pop("tags", None)
    criteria = None if tags is None else catalog.record_filter(tags=tags)
    return [str(hit.report.identity) for hit in catalog.search(record_filter=criteria, **query)]


@pytest.mark.no_postgresql_pass
@pytest.mark.parametrize("limits", ["postgresql's", "tiny"])
def test_random_reports_are_found_and_ranked_alike_on_sqlite_and_postgresql(
    pg_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limits: str
) -> None:
    from evidence_catalog.store import search

    if limits == "tiny":
        for name, value in (("LEXEME_MAX_BYTES", 4), ("LEXEMES_MAX_BYTES", 40), ("MAX_POSITION", 9)):
            monkeypatch.setattr(search, name, value)
        monkeypatch.setattr(search, "MAX_POSITIONS", 2)
    monkeypatch.setattr(Catalog, "_default_database", None)  # each catalog says where it lives

    @settings(max_examples=20)
    @given(tweets=_tweets(), split=st.integers(min_value=0, max_value=14), queries=st.lists(_searches(), max_size=12))
    @example(  # a run found twice where its words overlap (FTS5 counts both) ties otherwise
        tweets=[Tweet("7001", "desk_one", "alpha alpha alpha"), Tweet("7002", "desk_one", "alpha alpha bravo")],
        split=0,
        queries=[{"text": "alpha-alpha"}, {"text": "ALPHA-bravo-alpha alpha"}],
    )
    def check(tweets: list[Tweet], split: int, queries: list[dict[str, Any]]) -> None:
        with tempfile.TemporaryDirectory(dir=tmp_path) as scratch:
            folder = Path(scratch)
            # Two inputs, each tagged: records that a record filter tells apart.
            inputs = [
                (write(folder, f"{tag}.jsonl", twarc_jsonl(part)), tag)
                for part, tag in ((tweets[:split], "east"), (tweets[split:], "west"))
                if part
            ]
            database = pg_server.new_database()
            try:
                with (
                    Catalog.init(folder / "sqlite", operator="Analyst <a@example.org>") as on_sqlite,
                    Catalog.init(folder / "pg", operator="Analyst <a@example.org>", database=database) as on_pg,
                ):
                    for path, tag in inputs:
                        assert (
                            on_sqlite.ingest(path, tags=[tag]).reports_added
                            == on_pg.ingest(path, tags=[tag]).reports_added
                        )
                    everything = _ranked(on_sqlite, {"limit": None})
                    assert len(everything) == len(tweets)
                    for query in [{"text": "alpha"}, {"text": "alpha-alpha bravo"}, *queries]:
                        ranked = _ranked(on_sqlite, query)
                        assert _ranked(on_pg, query) == ranked, query
                        if "tags" in query:  # the filter's page: the unfiltered hits it keeps, cut
                            tagged = {
                                str(report.identity)
                                for record in on_sqlite.records()
                                if set(query["tags"]) <= set(record.tags)
                                for report in record.reports
                            }
                            every = _ranked(on_sqlite, {**query, "tags": None, "limit": None, "offset": 0})
                            kept = [identity for identity in every if identity in tagged][query["offset"] :]
                            assert ranked == (kept if query["limit"] is None else kept[: query["limit"]]), query
            finally:
                pg_server.drop_database(database)

    check()


def _statements(catalog: Catalog, run: Callable[[], object]) -> list[tuple[str, Any]]:
    """The SQL statements (with their parameters) *run* sends to the catalog's database."""
    sent: list[tuple[str, Any]] = []

    def record(*args: Any) -> None:
        sent.append((args[2], args[3]))

    sa.event.listen(catalog.db.engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        sa.event.remove(catalog.db.engine, "before_cursor_execute", record)
    return sent


_PLAN_DIGEST = _digest([f"alpha bravo {n}" if n % 3 else f"charlie delta {n}" for n in range(30)])


@pytest.mark.no_postgresql_pass
def test_postgresql_finds_words_through_its_gin_index(pg_database: str, tmp_path: Path) -> None:
    """Every statement of a search that looks for words can use the GIN index (asked not to
    scan the table, PostgreSQL finds its plan through it): the words are a tsquery on the
    indexed column, never an expression of it that no index holds."""
    with Catalog.init(tmp_path / "catalog", operator="Analyst <a@example.org>", database=pg_database) as catalog:
        assert catalog.ingest(write(tmp_path, "digest.txt", _PLAN_DIGEST)).reports_added == 30
        for text in ("alpha", "bravo-alpha", "alpha delta", "alpha-alpha"):
            statements = [
                (sql, params)
                for sql, params in _statements(catalog, lambda t=text: catalog.search(t))
                if "lexemes @@" in sql
            ]
            assert len(statements) == 2, text  # the figures of the ranking, then the page
            with catalog.db.engine.connect() as connection:
                connection.exec_driver_sql("SET enable_seqscan = off")
                for sql, params in statements:
                    plan = "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {sql}", params))
                    assert "Seq Scan on report_index" not in plan, plan
                    assert "ix_report_index_lexemes" in plan, plan


@pytest.mark.no_postgresql_pass
@pytest.mark.parametrize("limits", ["postgresql's", "tiny"])
def test_postgresql_keeps_how_many_reports_hold_each_word(
    pg_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limits: str
) -> None:
    """``report_lexeme`` holds, for each lexeme of the full-text index, the number of reports
    holding it -- what ranking needs of a searched word, read instead of counted -- after
    ingests and imports (added to as reports come; tiny limits index some reports without
    positions and some as every word); a search of one word reads the count there and does
    not count the reports holding it."""
    from evidence_catalog.store import search

    if limits == "tiny":
        monkeypatch.setattr(search, "LEXEMES_MAX_BYTES", 40)
        monkeypatch.setattr(search, "MAX_POSITIONS", 1)
    texts = [f"alpha bravo {n}" if n % 3 else f"charlie alpha alpha delta {n} echo foxtrot golf" for n in range(30)]
    with Catalog.init(tmp_path / "catalog", operator="Analyst <a@example.org>", database=pg_database) as catalog:
        assert catalog.ingest(write(tmp_path, "one.txt", _digest(texts[:20]))).reports_added == 20
        assert catalog.ingest(write(tmp_path, "two.txt", _digest(texts[20:]))).reports_added == 10
        with catalog.db.engine.connect() as connection:
            kept = dict(connection.exec_driver_sql("SELECT lexeme, reports FROM report_lexeme").all())
            counted = dict(
                connection.exec_driver_sql(
                    "SELECT u.lexeme, count(*) FROM report_index i CROSS JOIN unnest(i.lexemes) u GROUP BY u.lexeme"
                ).all()
            )
        assert kept == counted
        assert kept.get("alpha", 0) + kept.get(search.ALL_LEXEME, 0) == 30  # every report holds it
        if limits == "tiny":
            assert kept[search.NO_POSITIONS] > 0
        figures = [sql for sql, _ in _statements(catalog, lambda: catalog.search("alpha")) if "report_lexeme" in sql]
        assert len(figures) == 1 and "i.lexemes @@ CAST(%(q0)s" not in figures[0], figures
        assert {hit.report.text for hit in catalog.search("charlie", limit=None)} == {
            text for text in texts if "charlie" in text
        }


@pytest.mark.no_postgresql_pass
def test_sqlite_search_starts_from_the_full_text_table_or_the_rarest_filter(tmp_path: Path) -> None:
    """bm25 counts each phrase's reports once per full-text query: the FTS5 table leads the join
    (second, it would be queried again for every row of the first).  Without words, a filter
    with few reports leads instead of a walk through every report, newest first."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Catalog, "_default_database", None)
        catalog = Catalog.init(tmp_path / "catalog", operator="Analyst <a@example.org>")
    with catalog:
        assert catalog.ingest(write(tmp_path, "digest.txt", _PLAN_DIGEST)).reports_added == 30
        for query in ({"text": "alpha"}, {"text": "bravo-alpha", "since": "2020-01-01"}, {"author": "field desk"}):
            [(sql, params)] = [
                (sql, params)
                for sql, params in _statements(catalog, lambda q=query: catalog.search(**q))  # type: ignore[misc]
                if "ORDER BY" in sql
            ]
            with raw_database(catalog) as connection:
                plan = [row[3] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)]
            first = "SCAN f VIRTUAL TABLE" if "text" in query else "SEARCH d USING"
            assert plan[0].startswith(first), plan


@pytest.mark.no_postgresql_pass
def test_sqlite_checks_a_filter_with_fewer_reports_than_the_words_as_one_list(tmp_path: Path) -> None:
    """A filter with fewer reports than the searched words have is made a list once, and each
    report holding the words is looked up in it (the FTS5 table still leads, queried once);
    otherwise each hit is checked on its own.  The hits and their order are those of the
    search without the filter, cut to the reports that have it."""
    texts = [f"alpha bravo {n}" + (" @portlog" if n % 5 == 0 else "") for n in range(30)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Catalog, "_default_database", None)
        catalog = Catalog.init(tmp_path / "catalog", operator="Analyst <a@example.org>")
    with catalog:
        assert catalog.ingest(write(tmp_path, "digest.txt", _digest(texts))).reports_added == 30
        mentioning = {hit.report.id for hit in catalog.search(mention="portlog", limit=None)}
        assert len(mentioning) == 6
        for text, filters, listed in (
            ("alpha", {"mention": "portlog"}, True),  # 6 reports against 30
            ("alpha 25", {"mention": "portlog"}, False),  # 1 report holds both words
            ("alpha", {"mention": "portlog", "feed": "field desk"}, True),  # the smaller one listed
            ("alpha", {"feed": "field desk"}, False),  # every report is the feed's
        ):
            [(sql, params)] = [
                (sql, params)
                for sql, params in _statements(catalog, lambda t=text, f=filters: catalog.search(t, **f))  # type: ignore[misc]
                if "ORDER BY" in sql
            ]
            with raw_database(catalog) as connection:
                plan = [row[3] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)]
            assert plan[0].startswith("SCAN f VIRTUAL TABLE"), plan
            assert any(step.startswith("LIST SUBQUERY") for step in plan) is listed, (text, filters, plan)
            every = [hit.report.id for hit in catalog.search(text, limit=None)]
            kept = [report for report in every if filters.get("mention") is None or report in mentioning]
            for limit, offset in ((None, 0), (2, 0), (2, 3)):
                hits = [hit.report.id for hit in catalog.search(text, limit=limit, offset=offset, **filters)]
                assert hits == kept[offset : None if limit is None else offset + limit], (text, filters)


# -- 2. the index survives closing, reopening and upgrading ---------------------------------------

QUERIES: list[dict[str, Any]] = [
    {"text": "berths"},
    {"text": "бучі"},
    {"text": "bucha"},
    {"mention": "portlog"},
    {"hashtag": "putin"},
    {"feed": "kyiv desk"},
    {"author": "coast_watch"},
    {"since": dt.date(2025, 5, 5)},
    {"since": dt.date(2025, 5, 6)},
    {"text": "coast_watch", "since": dt.date(2025, 5, 5)},
]


def run_queries(catalog: Catalog) -> list[set[str]]:
    results = []
    for query in QUERIES:
        query = dict(query)
        results.append(found(catalog, query.pop("text", ""), **query))
    return results


def test_the_index_is_found_again_after_closing_and_reopening(newsroom: Catalog) -> None:
    before = run_queries(newsroom)
    assert all(before[:8]) and before[2] == {WIDE_LINE}  # the queries do find things
    newsroom.close()
    with Catalog.open(newsroom.path) as again:
        assert run_queries(again) == before


def test_reports_ingested_before_the_search_index_existed_are_found_after_the_upgrade(newsroom: Catalog) -> None:
    from alembic import command

    from evidence_catalog.store.database import HEAD_REVISION, _alembic_config

    before = run_queries(newsroom)
    ordered = [hit.report.id for hit in newsroom.search(limit=None)]
    # Take the schema down to 0002, as a catalog ingested into by the version before search was.
    history = newsroom.history()
    with newsroom.db.engine.begin() as connection:
        command.downgrade(_alembic_config(connection), "0002")
    newsroom.close()
    # A catalog at 0002 had no log key (it came with the checkpoints, 0005): its catalog.created
    # names none and its folder holds none, as the upgrade finds such a catalog.  (Keeping the key
    # would leave a log whose key no checkpoint signed: the upgrade must not sign that.)
    head: model.CustodyEvent | None = None
    with raw_database(newsroom) as db:
        table = sa.Table("custody_event", sa.MetaData(), autoload_with=db)
        for event in history:
            # As versions before salted commitments wrote it: unsalted, hashed over its own text.
            details = {k: v for k, v in event.details.items() if not (event.action == "catalog.created" and k == "log")}
            head, document = unsalted_linked_event(
                head, at=event.at, actor=event.actor, action=event.action, subject=event.subject, details=details
            )
            db.execute(
                table.update()
                .where(table.c.seq == event.seq)
                .values(details=document["details"], prev_hash=head.prev_hash, hash=head.hash)
            )
    shutil.rmtree(newsroom.path / "keys")
    with raw_database(newsroom) as db:
        assert db.execute(sa.text("select version_num from alembic_version")).fetchall() == [("0002",)]
        tables = set(sa.inspect(db).get_table_names())
        assert not tables & {"report_index", "report_term", "report_fts"}
    with Catalog.open(newsroom.path, operator="Upgrader <u@example.org>") as upgraded:
        assert run_queries(upgraded) == before
        # Same times, same order: reports without a published time keep the time they were found.
        assert [hit.report.id for hit in upgraded.search(limit=None)] == ordered
        upgrade = [e.details for e in upgraded.history() if e.action == "catalog.upgraded"]
        assert [(d["from_revision"], d["to_revision"]) for d in upgrade] == [("0002", HEAD_REVISION)]
        assert upgraded.verify().ok
        # New reports go into the rebuilt index after the old ones.
        extra = write(newsroom.path.parent, "more.txt", digest_text(("Late Desk", "Telegram", [Item("late berths")])))
        upgraded.ingest(extra)
        assert found(upgraded, "berths") == {RT_LINE, "late berths"}


# -- 3. link --------------------------------------------------------------------------------------

DESK_ITEMS = ["alpha harbour report", "beta convoy report", "gamma ferry report", "delta bridge report"]


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Catalog]:
    """A catalog with four digest reports (one record each) and a file's record with none."""
    with Catalog.init(tmp_path / "desk", operator="Test Analyst <a@example.org>", clock=FixedClock()) as cat:
        cat.ingest(write(tmp_path, "desk.txt", digest_text(("Desk", "Telegram", [Item(t) for t in DESK_ITEMS]))))
        [added] = cat.add([write(tmp_path, "film.txt", "the film's bytes")])
        assert added.record_id is not None
        yield cat


def film_record(catalog: Catalog) -> str:
    [record_id] = [r.id for r in catalog.records() if not r.reports]
    return record_id


def test_link_moves_the_report_and_its_source_document_and_keeps_the_note(desk: Catalog) -> None:
    target = film_record(desk)
    source, report = report_by_line(desk, "alpha harbour report")
    before_source = desk.record(source)
    film_artifacts = desk.record(target).artifacts

    result = desk.link(report.id, target, note="The post announces this film")

    assert result == LinkResult(report_id=report.id, from_record=source, record_id=target, moved=True)
    moved = desk.record(target)
    assert moved.reports == (report,)  # the report itself is not changed
    assert moved.artifacts[: len(film_artifacts)] == film_artifacts
    [document] = moved.artifacts[len(film_artifacts) :]
    assert document.role is model.ArtifactRole.SOURCE_DOCUMENT
    assert document.artifact.sha256 == report.document_sha256
    [note] = moved.notes
    assert note.text == "The post announces this film" and note.author == desk.operator
    left = desk.record(source)
    assert left.reports == ()
    # The record it left keeps its history: the document and how it was acquired.
    assert (left.artifacts, left.acquisitions) == (before_source.artifacts, before_source.acquisitions)
    [*_, event] = desk.history()
    assert (event.action, event.subject, event.at) == ("report.linked", target, note.written_at)
    assert event.details["report_id"] == report.id and event.details["from_record"] == source
    assert event.details["document"]["artifact"]["digests"]["sha256"] == report.document_sha256
    assert event.details["note"]["text"] == "The post announces this film"
    # Search finds it on its new record.
    [hit] = desk.search("alpha")
    assert (hit.record_id, hit.report) == (target, report)

    # A second report from the same document: the document is on the record already.
    _, other = report_by_line(desk, "beta convoy report")
    desk.link(other.id, target)
    again = desk.record(target)
    assert again.artifacts == moved.artifacts and again.notes == moved.notes
    assert [r.id for r in again.reports] == [report.id, other.id]
    [*_, second] = desk.history()
    assert second.details["document"] is None and second.details["note"] is None
    assert desk.verify().ok


def test_linking_a_report_to_the_record_it_is_on_changes_nothing(desk: Catalog) -> None:
    target = film_record(desk)
    source, report = report_by_line(desk, "gamma ferry report")
    desk.link(report.id, target)
    records, events = state(desk)
    again = desk.link(report.id, target, note="again")
    assert again == LinkResult(report_id=report.id, from_record=target, record_id=target, moved=False)
    assert state(desk) == (records, events)  # no event, no note
    own_record, own_report = report_by_line(desk, "delta bridge report")
    own = desk.link(own_report.id, own_record)
    assert (own.from_record, own.moved) == (own_record, False)
    assert state(desk) == (records, events)
    assert source != target


@pytest.mark.parametrize("which", ["report", "record", "malformed record", "a record as the report"])
def test_unknown_ids_are_not_found_and_change_nothing(desk: Catalog, which: str) -> None:
    target = film_record(desk)
    source, report = report_by_line(desk, "alpha harbour report")
    report_id, record_id = {
        "report": (model.new_id(), target),
        "record": (report.id, model.new_id()),
        "malformed record": (report.id, "not-a-record"),
        "a record as the report": (source, target),
    }[which]
    missing = f"no record with id {record_id}" if "record" in which.split()[-1] else f"no report with id {report_id}"
    before = state(desk)
    with pytest.raises(NotFoundError, match=re.escape(missing)):
        desk.link(report_id, record_id, note="why")
    assert state(desk) == before


@pytest.mark.parametrize("note", ["", " ", "\n\t "])
def test_a_blank_note_is_refused_and_changes_nothing(desk: Catalog, note: str) -> None:
    _, report = report_by_line(desk, "alpha harbour report")
    before = state(desk)
    with pytest.raises(InputError, match="note must not be blank"):
        desk.link(report.id, film_record(desk), note=note)
    assert state(desk) == before


def assert_log_rebuilds_the_records(catalog: Catalog) -> None:
    rebuilt = replay(catalog.history())
    assert rebuilt.problems == ()
    assert rebuilt.records == {record.id: record for record in catalog.records()}
    # Not remembered: the property test below puts a copy of one catalog at the same path again
    # and again, which a verification's memory rightly takes for a log rolled back.
    assert catalog.verify(remember=False).ok


def test_reports_moved_away_and_back_keep_the_order_the_log_gives(desk: Catalog) -> None:
    """Regression: a report joining a record after one left it must come after the others, in
    the database as in the log (it was given the same position as one already there)."""
    a_record, a = report_by_line(desk, "alpha harbour report")
    b_record, b = report_by_line(desk, "beta convoy report")
    _, c = report_by_line(desk, "gamma ferry report")
    desk.link(c.id, a_record)  # alpha's record: alpha, gamma
    desk.link(a.id, b_record)  # alpha's record: gamma
    desk.link(b.id, a_record)  # alpha's record: gamma, beta
    assert [r.id for r in desk.record(a_record).reports] == [c.id, b.id]
    assert [r.id for r in desk.record(b_record).reports] == [a.id]
    assert_log_rebuilds_the_records(desk)


def test_ingesting_again_after_a_link_adds_nothing(desk: Catalog, tmp_path: Path) -> None:
    target = film_record(desk)
    _, report = report_by_line(desk, "alpha harbour report")
    desk.link(report.id, target)
    records = desk.record_ids()
    again = desk.ingest(tmp_path / "desk.txt")
    assert (again.reports_added, again.reports_present) == (0, 4)
    assert desk.record_ids() == records
    assert reports_on(desk)[report.id] == target
    assert_log_rebuilds_the_records(desk)


@pytest.fixture
def desk_template(desk: Catalog) -> Path:
    desk.close()
    return desk.path


@pytest.mark.slow
def test_any_sequence_of_links_keeps_every_report_on_exactly_one_record(desk_template: Path, tmp_path: Path) -> None:
    with Catalog.open(desk_template) as template:
        records = template.record_ids()
        start = reports_on(template)
    reports = sorted(start)
    links = st.lists(st.tuples(st.sampled_from(reports), st.sampled_from(records), st.booleans()), max_size=8)

    @settings(max_examples=25)
    @given(links=links)
    def check(links: list[tuple[str, str, bool]]) -> None:
        with tempfile.TemporaryDirectory(dir=tmp_path) as scratch:
            copy_catalog(desk_template, Path(scratch) / "catalog")
            with Catalog.open(Path(scratch) / "catalog", clock=FixedClock()) as catalog:
                where = dict(start)
                for report_id, record_id, with_note in links:
                    result = catalog.link(report_id, record_id, note="moved" if with_note else None)
                    assert (result.from_record, result.moved) == (where[report_id], where[report_id] != record_id)
                    where[report_id] = record_id
                on = Counter(report.id for record in catalog.records() for report in record.reports)
                assert on == Counter(reports)  # each report once, none lost
                assert reports_on(catalog) == where
                assert_log_rebuilds_the_records(catalog)
                assert {h.report.id: h.record_id for h in catalog.search(limit=None)} == where  # search agrees

    check()


# -- 4. link suggestions --------------------------------------------------------------------------

TITLE = "‘Read the ledger twice’: the East Quay records | City Paper Film"


def test_suggestions_from_a_real_capture_by_title_and_by_url(tmp_path: Path, server: MediaServer, base: str) -> None:
    with Catalog.init(tmp_path / "cat", operator="Test Analyst <a@example.org>") as catalog:
        film, page = capture_titled(catalog, server, base, "film", TITLE)
        other, other_page = capture_titled(
            catalog, server, base, "other", "Night shelling of the port, 5 May", OTHER_CLIP
        )
        digest = digest_text(
            ("Records Desk", "Telegram", [Item("Our film is out", Card("YouTube", TITLE, "Two reporters spent…"))]),
            ("City Paper", "Telegram", [Item("Watch it tonight", Card("YouTube", TITLE[:30] + "…"))]),
            ("Elsewhere", "Telegram", [Item("Another film", Card("YouTube", TITLE.replace("East", "West")))]),
            ("Short", "Telegram", [Item("Cut too short", Card("YouTube", TITLE[: MIN_PREFIX - 2] + "…"))]),
        )
        catalog.ingest(write(tmp_path, "digest.txt", digest))
        link_variant = page.replace("http://", "HTTP://").replace("/watch", "/watch/") + "#comments"
        catalog.ingest(
            write(
                tmp_path,
                "feed.rss",
                rss_text(
                    "Harbour",
                    [
                        Entry("h-1", "The film, on its own page", link=link_variant),
                        Entry("h-2", "Not that film", link=page + "/2"),
                    ],
                ),
            )
        )
        catalog.ingest(
            write(tmp_path, "t.jsonl", twarc_jsonl([Tweet("77", "desk_one", "Shelling video", urls=(other_page,))]))
        )
        line = {report.id: first_line(report) for report in _reports(catalog)}
        on = reports_on(catalog)

        def shown(suggestions: list[LinkSuggestion]) -> set[tuple[str, str, str, str]]:
            for s in suggestions:
                assert s.report_record == on[s.report_id]
            return {(line[s.report_id], s.record_id, s.reason, s.matched) for s in suggestions}

        everything = {
            ("Our film is out", film, "same-title", TITLE),
            ("Watch it tonight", film, "same-title", TITLE),
            ("The film, on its own page", film, "same-url", page),
            ("Shelling video", other, "same-url", other_page),
        }
        assert shown(catalog.link_suggestions()) == everything
        assert shown(catalog.link_suggestions(film)) == everything - {("Shelling video", other, "same-url", other_page)}
        assert shown(catalog.link_suggestions(other)) == {("Shelling video", other, "same-url", other_page)}
        rss_record = on[next(r for r, text in line.items() if text == "The film, on its own page")]
        assert shown(catalog.link_suggestions(rss_record)) == {("The film, on its own page", film, "same-url", page)}
        unrelated = on[next(r for r, text in line.items() if text == "Another film")]
        assert catalog.link_suggestions(unrelated) == []
        with pytest.raises(NotFoundError):
            catalog.link_suggestions(model.new_id())

        # Linked: a report on the capture's record is no longer suggested; the rest still are.
        [announcement] = [s for s in catalog.link_suggestions() if line[s.report_id] == "Our film is out"]
        catalog.link(announcement.report_id, announcement.record_id)
        assert shown(catalog.link_suggestions()) == everything - {("Our film is out", film, "same-title", TITLE)}
        assert catalog.verify().ok


def report_with(**fields: Any) -> model.Report:
    return model.Report(id=model.new_id(), source=model.Source(platform="Telegram"), text="x", **fields)


def capture_of(title: str | None, url: str = "https://video.example.org/watch?v=1", **fields: Any) -> model.Acquisition:
    at = dt.datetime(2025, 5, 5, tzinfo=UTC)
    return model.Acquisition(
        id=model.new_id(),
        method=fields.pop("method", model.AcquisitionMethod.CAPTURED_FROM_URL),
        started_at=at,
        ended_at=at,
        operator=model.Agent(name="Test Analyst"),
        artifact_sha256="a" * 64,
        requested_url=url,
        platform_info=model.PlatformInfo(title=title),
        **fields,
    )


CAPTURED = "01966b7e-0000-7000-8000-000000000001"
ELSEWHERE = "01966b7e-0000-7000-8000-000000000002"


@pytest.mark.parametrize(
    ("card", "reason"),
    [
        (model.LinkCard(title="Bucha, 2022"), "same-title"),
        (model.LinkCard(title="BUCHA 2022!"), "same-title"),  # case and punctuation ignored
        # A card whose description is cut short still shows its whole title: it matches the
        # title exactly, short or not.
        (model.LinkCard(title="Bucha, 2022", description="What we found in the sp…", truncated=True), "same-title"),
        (model.LinkCard(title="Bucha", description="What we found…", truncated=True), None),
        (model.LinkCard(title="Bucha, 20…"), None),  # a cut-short title this short matches nothing
        (model.LinkCard(title="Bucha, 2023"), None),
        (model.LinkCard(title=None, description="Bucha, 2022"), None),
        (model.LinkCard(title="x", url="https://www.Video.example.org:443/watch/?v=1#t=5"), "same-url"),
    ],
)
def test_suggest_matches_whole_titles_and_urls(card: model.LinkCard, reason: str | None) -> None:
    report = report_with(link_cards=(card,))
    found_now = suggest([(ELSEWHERE, report)], [(CAPTURED, capture_of("Bucha, 2022"))])
    assert [(s.report_id, s.record_id, s.reason) for s in found_now] == (
        [] if reason is None else [(report.id, CAPTURED, reason)]
    )


def test_suggest_prefixes_of_cut_short_titles_need_enough_letters() -> None:
    title = "Satellite images of the East Quay yard, May 2025"
    capture = [(CAPTURED, capture_of(title))]
    shown = title[:MIN_PREFIX] + "…"  # exactly MIN_PREFIX characters, all of them letters/spaces
    letters = len(title_key(shown.removesuffix("…")).replace(" ", ""))
    assert letters < MIN_PREFIX  # a space is not a letter: this one is too short ...
    assert suggest([(ELSEWHERE, report_with(link_cards=(model.LinkCard(title=shown),)))], capture) == []
    longer = title[: MIN_PREFIX + 4] + "…"  # ... and this one is long enough
    [s] = suggest([(ELSEWHERE, report_with(link_cards=(model.LinkCard(title=longer),)))], capture)
    assert (s.reason, s.matched) == ("same-title", title)


def test_suggest_ignores_failed_captures_added_files_and_the_record_a_report_is_on() -> None:
    report = report_with(links=("https://video.example.org/watch?v=1",), link_cards=(model.LinkCard(title="Bucha"),))
    failed = capture_of("Bucha", outcome=model.Outcome.FAILED, error="HTTP 404")
    added = capture_of("Bucha", method=model.AcquisitionMethod.ADDED_FROM_DISK)
    assert suggest([(ELSEWHERE, report)], [(CAPTURED, failed), (CAPTURED, added)]) == []
    assert suggest([(CAPTURED, report)], [(CAPTURED, capture_of("Bucha"))]) == []
    # URL first, and each (report, record) once.
    [s] = suggest([(ELSEWHERE, report)], [(CAPTURED, capture_of("Bucha"))])
    assert (s.reason, s.matched, s.report_record) == ("same-url", "https://video.example.org/watch?v=1", ELSEWHERE)


# -- 4. url_key and title_key ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.org/a/b", "https://example.org/a/b"),
        ("HTTP://WWW.Example.ORG:80/a/b/#frag", "https://example.org/a/b"),
        ("https://example.org:443/watch?v=AbC", "https://example.org/watch?v=AbC"),  # the query counts
        ("http://example.org:8080/x/", "https://example.org:8080/x"),
        ("  https://example.org/  ", "https://example.org"),
        ("https://example.org/Path", "https://example.org/Path"),  # paths keep their case
        ("https://www2.example.org/", "https://www2.example.org"),
        ("ftp://example.org/file", None),
        ("example.org/page", None),
        ("https://", None),
        ("https://example.org:99999/", None),  # not a port
        ("http://[::1", None),  # not a URL
        ("mailto:desk@example.org", None),
    ],
)
def test_url_key(url: str, expected: str | None) -> None:
    assert url_key(url) == expected


hosts = st.from_regex(r"\A[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){1,2}\Z").filter(lambda h: not h.startswith("www"))
paths = st.lists(st.from_regex(r"\A[A-Za-z0-9_-]{1,8}\Z"), max_size=3).map(
    lambda parts: "".join("/" + p for p in parts)
)


@settings(max_examples=40)
@given(
    host=hosts, path=paths, query=st.sampled_from(["", "?v=1", "?a=B&c=d"]), scheme=st.sampled_from(["http", "https"])
)
def test_url_key_ignores_what_does_not_name_another_page(host: str, path: str, query: str, scheme: str) -> None:
    plain = url_key(f"https://{host}{path}{query}")
    assert plain == f"https://{host}{path}{query}"
    port = {"http": ":80", "https": ":443"}[scheme]
    for variant in (
        f"{scheme.upper()}://{host.upper()}{path}{query}",
        f"{scheme}://www.{host}{port}{path}/{query}",
        f"{scheme}://{host}{path}{query}#section",
    ):
        assert url_key(variant) == plain
    assert url_key(f"https://{host}{path}/other{query}") != plain
    assert url_key(f"https://{host}:8443{path}{query}") != plain


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        (TITLE, "read the ledger twice the east quay records city paper film"),
        ("  Bucha,\t2022 —  the  FULL story ", "bucha 2022 the full story"),
        ("ＢＵＣＨＡ ﬁre", "bucha fire"),  # compatibility forms
        ("Straße", "strasse"),
        ("Café", "café"),  # accents are kept (a different word in many languages)
        ("snake_case_title", "snake case title"),
        ("Обстріл у БУЧІ", "обстріл у бучі"),
        ("قصف مدرسة في حلب!", "قصف مدرسة في حلب"),
        ("…", ""),
        ("", ""),
    ],
)
def test_title_key(title: str, expected: str) -> None:
    assert title_key(title) == expected


# -- 5. the command line --------------------------------------------------------------------------


def test_the_search_command(newsroom: Catalog, run_cli: Callable[..., Any]) -> None:
    record, report = report_by_line(newsroom, RT_LINE)
    _, tanks = report_by_line(newsroom, TANKS)
    newsroom.close()
    at = ("--catalog", newsroom.path)

    hit = run_cli("search", "BERTHS", *at)
    assert (hit.code, hit.err) == (0, "")
    assert hit.out == f"{report.id}  {record}  -  Harbour Monitor / coast_watch  {RT_LINE[:79]}…\n"  # cut at 80

    dated = run_cli("search", "--author", "coast_watch", "--since", "2025-05-05", "--feed", "coast_watch", *at)
    assert dated.code == 0
    [line] = dated.out.splitlines()
    assert line.startswith(f"{tanks.id}  ") and "  2025-05-05T01:30:00Z  coast_watch / coast_watch  Tanks" in line

    many = run_cli("search", "--author", "coast_watch", "--limit", "2", *at)
    assert many.code == 0 and len(many.out.splitlines()) == 2
    assert many.err == "(hits 1 to 2 shown; --offset 2 for the next page)\n"

    none = run_cli("search", "nothing-like-this", *at)
    assert (none.code, none.out, none.err) == (0, "", "no matches\n")

    bad = run_cli("search", "--since", "2024-03-01T10:00", *at)
    assert (bad.code, bad.out) == (2, "")
    assert bad.err.startswith("error: ") and "no time zone" in bad.err
    assert bad.err.count("\n") == 1 and "Traceback" not in bad.err

    as_json = run_cli("search", "--hashtag", "#EASTQUAY", "--json", *at)
    assert as_json.code == 0
    documents = json.loads(as_json.out)
    with Catalog.open(newsroom.path) as again:
        expected = [(h.record_id, h.report.id) for h in again.search(hashtag="eastquay")]
    assert [(d["record_id"], d["report"]["id"]) for d in documents] == expected
    assert {d["report"]["text"] for d in documents} == {RT_LINE, GATE}


def test_the_link_command(desk: Catalog, run_cli: Callable[..., Any]) -> None:
    target = film_record(desk)
    source, report = report_by_line(desk, "alpha harbour report")
    desk.close()
    at = ("--catalog", desk.path)

    moved = run_cli("link", report.id, target, "--note", "same film", *at)
    assert moved.code == 0, moved.err
    assert moved.out == f"report {report.id} moved from record {source} to {target}\n"
    again = run_cli("link", report.id, target, *at)
    assert (again.code, again.out) == (0, f"report {report.id} is on record {target} already; nothing changed\n")
    with Catalog.open(desk.path) as reopened:
        assert reports_on(reopened)[report.id] == target
        assert [n.text for n in reopened.record(target).notes] == ["same film"]
        assert [e.action for e in reopened.history()].count("report.linked") == 1

    one = run_cli("link", report.id, *at)
    assert one.code == 2 and "give a REPORT_ID and a RECORD_ID" in one.err
    unknown = run_cli("link", model.new_id(), target, *at)
    assert unknown.code == 2 and unknown.err.startswith("error: no report with id ")
    blank = run_cli("link", report.id, source, "--note", " ", *at)
    assert blank.code == 2 and "note must not be blank" in blank.err
    as_json = run_cli("link", report.id, source, "--json", *at)
    assert json.loads(as_json.out) == {
        "report_id": report.id,
        "from_record": target,
        "record_id": source,
        "moved": True,
    }


def test_the_link_suggest_command(tmp_path: Path, server: MediaServer, base: str, run_cli: Callable[..., Any]) -> None:
    with Catalog.init(tmp_path / "cat", operator="Test Analyst <a@example.org>") as catalog:
        film, _ = capture_titled(catalog, server, base, "film", TITLE)
        catalog.ingest(
            write(
                tmp_path,
                "d.txt",
                digest_text(("Records Desk", "Telegram", [Item("Our film is out", Card("YouTube", TITLE))])),
            )
        )
        on, report = report_by_line(catalog, "Our film is out")
    at = ("--catalog", catalog.path)

    listed = run_cli("link", "--suggest", *at)
    assert listed.code == 0
    assert listed.out == (
        f"report {report.id} (on {on}) -> record {film}: same-title {TITLE}\n"
        f"  evidence-catalog link {report.id} {film}\n"
    )
    assert listed.err == "1 suggestion(s)\n"
    for_record = run_cli("link", "--suggest", on, "--json", *at)
    assert json.loads(for_record.out) == [
        {"report_id": report.id, "report_record": on, "record_id": film, "reason": "same-title", "matched": TITLE}
    ]
    usage = run_cli("link", "--suggest", report.id, film, *at)
    assert usage.code == 2 and "--suggest takes at most one record ID" in usage.err

    # Run the suggested command: then there is nothing left to suggest.
    assert run_cli("link", report.id, film, *at).code == 0
    after = run_cli("link", "--suggest", *at)
    assert (after.code, after.out, after.err) == (0, "", "no matches\n")
