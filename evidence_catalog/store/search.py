"""What the report search index holds for a report, and how search text becomes a query.

The index is derived from the reports (their JSON bodies stay the truth): one ``report_index``
row per report with the time it is searched by, ``report_term`` rows for the exact filters
(mention, hashtag, feed, author), and on SQLite an FTS5 full-text table over its words.  Both
the catalog and migration 0003 (which indexes reports ingested before it) use these functions.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterator

from evidence_catalog import model

#: The FTS5 table: contentless (the text is in the reports already), rowid = ``report_index.num``;
#: unicode61 splits on anything that is not a letter or digit in any script and folds case and
#: diacritics, so ``Bucha`` finds ``#Bucha`` and ``#Trump-#Putin`` holds ``putin``.
FTS_TABLE = "report_fts"
FTS_CREATE = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5"
    "(body, content='', tokenize='unicode61 remove_diacritics 2')"
)


def outside_metadata(name: str | None, type_: str, parents: object) -> bool:
    """Alembic's ``include_name`` filter: False for the FTS5 table and the shadow tables SQLite
    keeps for it, which no SQLModel table describes."""
    del parents
    return not (type_ == "table" and name is not None and name.startswith(FTS_TABLE))


def term_key(kind: str, value: str) -> str:
    """The form a mention, hashtag, feed name or author is stored and looked up in: Unicode
    NFKC, case folded, runs of white space made one space, a leading ``@`` or ``#`` dropped."""
    text = " ".join(unicodedata.normalize("NFKC", value).split()).casefold()
    if kind in ("mention", "author"):
        text = text.removeprefix("@")
    elif kind == "hashtag":
        text = text.removeprefix("#")
    return text


def report_terms(report: model.Report) -> Iterator[tuple[str, str]]:
    """The ``(kind, key)`` filter terms of a report, each once.  A repost's author terms are
    both the original author and the account that reposted it; the feed term is the feed's name
    (digests, RSS) or else the account it came from."""
    values: list[tuple[str, str | None]] = [
        *(("mention", m) for m in report.mentions),
        *(("hashtag", h) for h in report.hashtags),
        ("feed", report.source.feed_name or report.source.account_handle),
        ("author", report.author),
        ("author", report.source.account_handle),
    ]
    if report.repost is not None:
        values += [("author", report.repost.original_author), ("author", report.repost.reposted_by)]
    seen: set[tuple[str, str]] = set()
    for kind, value in values:
        if value is None:
            continue
        key = (kind, term_key(kind, value))
        if key[1] and key not in seen:
            seen.add(key)
            yield key


def report_words(report: model.Report) -> str:
    """The text the full-text index holds for a report: its text, its link cards, the feed,
    author and repost names, and its URLs (so a search for a site or a film's title finds it).

    In Unicode NFKC, as :func:`fts_query` puts search text: the tokenizer does not fold
    compatibility forms, so ``ＢＵＣＨＡ`` or ``ﬁre`` would otherwise be found by no search."""
    parts: list[str | None] = [
        report.text,
        report.source.feed_name,
        report.source.account_handle,
        report.author,
        *((report.repost.original_author, report.repost.reposted_by) if report.repost is not None else ()),
        *(text for card in report.link_cards for text in (card.site_name, card.title, card.description, card.url)),
        report.url,
        *report.links,
    ]
    return searchable("\n".join(p for p in parts if p))


#: Arabic harakat (and Quranic marks) and Hebrew niqqud and cantillation: optional vowel marks
#: that unicode61's ``remove_diacritics`` leaves on (it folds Latin letters only), so that
#: ``مدرسة`` finds ``مَدرسة``.
_VOWEL_MARKS = re.compile("[\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed]")


def searchable(text: str) -> str:
    """Text as both the index and a query see it: Unicode NFKC, optional Arabic and Hebrew
    vowel marks removed (the stored reports keep them)."""
    return _VOWEL_MARKS.sub("", unicodedata.normalize("NFKC", text))


def search_time(report: model.Report, found_at: dt.datetime) -> dt.datetime:
    """The time ``--since`` compares: when it was published where known, else when the source
    says it last changed, else when it was found."""
    return report.published_at or report.updated_at or found_at


_WORD = re.compile(r"\S+")


def fts_query(text: str) -> str | None:
    """An FTS5 query matching reports that hold every word of *text* (``None`` for no words).

    Each word becomes a quoted FTS5 string, so nothing a user types is read as query syntax
    (``-``, ``:``, ``*``, ``OR``, a stray quote); a word the tokenizer splits (``al-Bab``)
    must appear as that phrase."""
    words = [w for w in _WORD.findall(searchable(text)) if any(c.isalnum() for c in w)]
    if not words:
        return None
    return " AND ".join('"' + word.replace('"', '""') + '"' for word in words)


def _fold(token: str) -> str:
    """Case and diacritics folded, as ``unicode61 remove_diacritics 2`` folds them."""
    decomposed = unicodedata.normalize("NFD", token.casefold())
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if unicodedata.category(c) != "Mn"))


def word_tokens(text: str) -> list[str]:
    """The words of *text* as the full-text index splits them: runs of letters, digits and
    private-use characters (everything else separates), case and diacritics folded."""
    tokens: list[str] = []
    current: list[str] = []
    for char in searchable(text):
        category = unicodedata.category(char)
        if category[0] in "LN" or category in ("Co", "Mn"):
            current.append(char)
        elif current:
            tokens.append("".join(current))
            current = []
    if current:
        tokens.append("".join(current))
    return [folded for folded in (_fold(t) for t in tokens) if folded]


def indexed_words(report: model.Report) -> str:
    """A report's words for a database without FTS5: one space between them and at both ends, so
    that a searched run of words is a ``LIKE '% run %'`` match."""
    return f" {' '.join(word_tokens(report_words(report)))} "


def word_patterns(text: str) -> list[str] | None:
    """One ``LIKE`` pattern per searched word (``None`` when *text* has no words), matching
    :func:`fts_query`'s meaning on SQLite: every word, a word the tokenizer splits as a run."""
    words = [w for w in _WORD.findall(searchable(text)) if any(c.isalnum() for c in w)]
    patterns = [f"% {' '.join(tokens)} %" for tokens in (word_tokens(w) for w in words) if tokens]
    return patterns or None
