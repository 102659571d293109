"""Feed-reader digests: parsing the plain-text format into feeds, items and link cards."""

from __future__ import annotations

import itertools

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evidence_catalog.ingest.digest import (
    PLATFORMS,
    Digest,
    DigestCard,
    DigestFeed,
    DigestItem,
    hashtags,
    header,
    item_report,
    looks_like_site_name,
    mentions,
    parse_digest,
    report_identity,
)

# A made-up digest in the format feed readers export (see docs): two feeds, a repost thread,
# curly quotes and a dash, and a link card whose description is cut short.
DIGEST = """\
Harbour Monitor (Twitter)
RT @coast_watch: Night images from 5 May show two new berths at the #EastQuay yard.
1. The berths appear between 2 and 5 May.
2. As @PortLog wrote, the gate was shut on 4 May — “maintenance”, said the operator.
RT @coast_watch: Night images from 5 May show two new berths at the #EastQuay yard.
1. The berths appear between 2 and 5 May.
2. As @PortLog wrote, the gate was shut on 4 May — “maintenance”, said the operator.
Records Desk (Telegram)
Our @CityPaper team’s new film is out: what the yard ledgers show
Our @CityPaper team’s new film is out: what the yard ledgers show
YouTube
‘Read the ledger twice’: the East Quay records | City Paper Film
Two reporters spent a winter comparing ledgers with satellite pictures of the yard and ask wh…
"""


def test_a_digest_is_read_into_feeds_items_and_cards() -> None:
    digest = parse_digest(DIGEST)
    assert digest.warnings == ()
    assert [(f.name, f.platform, f.line) for f in digest.feeds] == [
        ("Harbour Monitor", "Twitter", 1),
        ("Records Desk", "Telegram", 8),
    ]
    thread, film = digest.items
    assert thread.text == "\n".join(DIGEST.splitlines()[1:4])  # exact, curly quotes and dash kept
    assert (thread.first_line, thread.last_line, thread.repeated) == (2, 7, True)
    assert thread.repost_of == "coast_watch"
    assert thread.mentions == ("coast_watch", "PortLog")
    assert thread.hashtags == ("EastQuay",)
    assert thread.card is None
    assert film.text == "Our @CityPaper team’s new film is out: what the yard ledgers show"
    assert (film.first_line, film.last_line) == (9, 13)
    assert film.repost_of is None and film.mentions == ("CityPaper",)
    assert film.card == DigestCard(
        site_name="YouTube",
        title="‘Read the ledger twice’: the East Quay records | City Paper Film",
        description=DIGEST.splitlines()[12],
        truncated=True,
        first_line=11,
        last_line=13,
    )


def test_hashtags_glued_to_other_characters_and_mentions() -> None:
    assert hashtags("#Trump-#Putin summit; school #5; #школа№5 and#glued") == ("Trump", "Putin", "школа", "glued")
    assert mentions("RT @a_b: cc @Desk, mail desk@example.org, @@x") == ("a_b", "Desk")


def test_what_does_not_fit_the_format_is_kept_and_named_not_dropped() -> None:
    text = "stray line\nFeed (Telegram)\nfirst line only once\nsecond line only once\nA (RSS)\n"
    digest = parse_digest(text)
    [item] = digest.items
    assert item.text == "first line only once\nsecond line only once" and not item.repeated
    assert [line for line, _ in digest.warnings] == [1, 3, 5]  # stray text, unrepeated item, empty feed


def test_a_card_without_description_and_one_not_cut_short() -> None:
    text = (
        "F (Twitter)\nPost\nPost\nVimeo\nA film title\nG (Twitter)\nOther\nOther\nBBC News\nTitle\nWhole description.\n"
    )
    one, two = parse_digest(text).items
    assert one.card == DigestCard("Vimeo", "A film title", None, False, 4, 5)
    assert two.card == DigestCard("BBC News", "Title", "Whole description.", False, 9, 11)


def test_crlf_line_breaks_are_line_breaks_and_other_separators_are_text() -> None:
    [item] = parse_digest("F (Twitter)\r\nPost\u2028more\r\nPost\u2028more\r\n").items
    assert item.text == "Post\u2028more"


# -- property: render -> parse gives the same structure back --------------------------------------

_TEXT = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\n\r\x85"),
    min_size=1,
    max_size=40,
).filter(lambda t: t.strip() == t and header(t) is None)
_NAMES = _TEXT.filter(lambda t: "(" not in t and ")" not in t)
_SITES = _TEXT.filter(looks_like_site_name)


@st.composite
def _cards(draw: st.DrawFn) -> DigestCard:
    site = draw(_SITES)
    title = draw(_TEXT.filter(lambda t: t != site))
    description = draw(st.none() | _TEXT.filter(lambda t: t not in (site, title)))
    return DigestCard(site_name=site, title=title, description=description)


@st.composite
def _items(draw: st.DrawFn) -> tuple[list[str], DigestCard | None]:
    lines = draw(st.lists(_TEXT, min_size=1, max_size=4, unique=True))
    if draw(st.booleans()):
        lines[0] = f"RT @{draw(st.from_regex(r'[A-Za-z0-9_]{1,15}', fullmatch=True))}: {lines[0]}"
    card = draw(st.none() | _cards())
    if card is not None and (card.site_name in lines or card.title in lines or card.description in lines):
        card = None
    return lines, card


_FEEDS = st.lists(
    st.tuples(_NAMES, st.sampled_from(sorted(PLATFORMS)), st.lists(_items(), min_size=1, max_size=4)),
    min_size=1,
    max_size=4,
)


def _render(feeds: list[tuple[str, str, list[tuple[list[str], DigestCard | None]]]]) -> str:
    out: list[str] = []
    for name, platform, items in feeds:
        out.append(f"{name} ({platform})")
        for lines, card in items:
            out += lines + lines
            if card is not None:
                out += [card.site_name, card.title] + ([card.description] if card.description else [])
    return "\n".join(out) + "\n"


def _distinct(feeds: list[tuple[str, str, list[tuple[list[str], DigestCard | None]]]]) -> bool:
    """Neighbouring items differ, and no line of a card starts an item (else even a reader
    could not tell them apart)."""
    for _, _, items in feeds:
        texts = [tuple(lines) for lines, _ in items]
        if any(a == b for a, b in itertools.pairwise(texts)):
            return False
        starts = {lines[0] for lines, _ in items}
        for _, card in items:
            if card is not None and {card.site_name, card.title, card.description} & starts:
                return False
    return True


@pytest.mark.slow
@settings(max_examples=120)
@given(_FEEDS.filter(_distinct))
def test_rendered_digests_parse_back_to_the_same_structure(
    feeds: list[tuple[str, str, list[tuple[list[str], DigestCard | None]]]],
) -> None:
    digest = parse_digest(_render(feeds))
    assert digest.warnings == ()
    assert [(f.name, f.platform) for f in digest.feeds] == [(name, platform) for name, platform, _ in feeds]
    for feed, (_, _, items) in zip(digest.feeds, feeds, strict=True):
        assert len(feed.items) == len(items)
        for parsed, (lines, card) in zip(feed.items, items, strict=True):
            assert parsed.text == "\n".join(lines)
            assert parsed.repeated
            assert (parsed.repost_of is not None) == lines[0].startswith("RT @")
            got = None if parsed.card is None else attrs.evolve(parsed.card, truncated=False, first_line=0, last_line=0)
            assert got == card


def test_line_spans_cover_the_digest_without_overlap() -> None:
    digest = parse_digest(DIGEST)
    spans = [(f.line, f.line) for f in digest.feeds] + [(i.first_line, i.last_line) for i in digest.items]
    covered = sorted(n for first, last in spans for n in range(first, last + 1))
    assert covered == list(range(1, len(DIGEST.splitlines()) + 1))


def test_types_are_what_the_module_exports() -> None:
    digest = parse_digest(DIGEST)
    assert isinstance(digest, Digest) and isinstance(digest.feeds[0], DigestFeed)
    assert isinstance(digest.items[0], DigestItem)


# -- reports and identity ---------------------------------------------------------------------------


def test_an_item_becomes_a_report_with_its_provenance_and_an_unknown_url() -> None:
    from evidence_catalog import model

    thread, film = parse_digest(DIGEST).items
    sha = "ab" * 32
    report = item_report(thread, report_id=model.new_id(), document_sha256=sha)
    assert report.url is None and report.url_known is False
    assert report.repost == model.Repost(reposted_by="Harbour Monitor", original_author="coast_watch")
    assert report.author == "coast_watch"
    assert report.source == model.Source(platform="Twitter", feed_name="Harbour Monitor")
    assert report.line_span == model.LineSpan(2, 7) and report.document_sha256 == sha
    [card] = item_report(film, report_id=model.new_id(), document_sha256=None).link_cards
    assert card.site_name == "YouTube" and card.truncated and card.url is None


def test_identity_is_the_platform_id_when_known_else_a_documented_hash() -> None:
    import hashlib

    assert report_identity(platform="Telegram", post_id="42", feed="F", author="a", text="t") == "telegram:42"
    expected = hashlib.sha256('["Feed","desk","a “quoted” text"]'.encode()).hexdigest()
    got = report_identity(platform="Twitter", post_id=None, feed="Feed", author="desk", text=" a  “quoted”\ntext ")
    assert got == f"sha256:{expected}"


@given(st.text(max_size=30), st.text(max_size=30), st.text(max_size=60))
def test_identity_ignores_white_space_and_unicode_composition_but_not_case(feed: str, author: str, text: str) -> None:
    import unicodedata

    one = report_identity(platform=None, post_id=None, feed=feed, author=author, text=text)
    spaced = report_identity(
        platform=None,
        post_id=None,
        feed=f" {unicodedata.normalize('NFD', feed)} ",
        author=author,
        text=text.replace(" ", "  \n"),
    )
    assert one == spaced
    if text.upper() != text:
        assert report_identity(platform=None, post_id=None, feed=feed, author=author, text=text.upper()) != one
