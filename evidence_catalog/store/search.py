"""What the report search index holds for a report, and how search text becomes a query.

The index is derived from the reports (their JSON bodies stay the truth): one ``report_index``
row per report with the time it is searched by, ``report_term`` rows for the exact filters
(mention, hashtag, feed, author), and its words: on SQLite in an FTS5 full-text table, elsewhere
in ``report_index.words``.  Words are made here, by one rule for every database.  The catalog
and the migrations that index reports ingested before them use these functions.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterator

from evidence_catalog import model

#: The FTS5 table: contentless (the text is in the reports already), rowid = ``report_index.num``.
#: It is given each report's words as :func:`word_tokens` makes them, one space between them,
#: and the ``ascii`` tokenizer only splits them again at those spaces (every other character of
#: a word is a letter, digit or mark): what a word is, and how it is folded, is decided here
#: once, in Python, for SQLite and PostgreSQL alike (revision 0007).
FTS_TABLE = "report_fts"
FTS_CREATE = f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(body, content='', tokenize='ascii')"


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

    In Unicode NFKC (:func:`searchable`): ``ＢＵＣＨＡ`` and ``ﬁre`` are the letters they stand
    for.  :func:`word_tokens` makes the words of it."""
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


#: Arabic harakat (and Quranic marks) and Hebrew niqqud and cantillation: optional vowel marks,
#: left out so that ``مدرسة`` finds ``مَدرسة``.
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


#: Letters whose combining marks a search ignores: Latin, Greek and Cyrillic (``cafe`` finds
#: ``café``, ``еще`` finds ``ещё``).  In other scripts a mark is part of the spelling (Devanagari
#: and Thai vowel signs, for instance): kept.  Arabic and Hebrew vowel marks are removed before
#: (:data:`_VOWEL_MARKS`).
_MARKS_IGNORED_ON = re.compile(
    "[\u0000-\u024f\u0370-\u03ff\u0400-\u052f\u1c80-\u1c8f\u1d00-\u1dbf\u1e00-\u1fff"
    "\u2c60-\u2c7f\ua640-\ua69f\ua720-\ua7ff\uab30-\uab6f]"
)


def _fold(token: str) -> str:
    """Case folded, and the combining marks on Latin, Greek and Cyrillic letters removed."""
    kept: list[str] = []
    ignore_marks = False
    for char in unicodedata.normalize("NFD", token.casefold()):
        if unicodedata.category(char)[0] == "M":
            if ignore_marks:
                continue
        else:
            ignore_marks = _MARKS_IGNORED_ON.match(char) is not None
        kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept))


def word_tokens(text: str) -> list[str]:
    """The words of *text* as search sees them, on every database: runs of letters, digits,
    combining marks and private-use characters (everything else separates: ``#Trump-#Putin``
    holds ``trump`` and ``putin``), in NFKC, case folded, marks on Latin, Greek and Cyrillic
    letters removed; marks with no letter or digit to go with (``¯`` is a space and a
    combining macron in NFKC) are no word.  A script written without spaces (Thai, Chinese,
    Japanese) gives one word per run, so a search finds such text only by a whole run."""
    tokens: list[str] = []
    current: list[str] = []
    based = False  # whether the run holds more than combining marks
    for char in searchable(text):
        category = unicodedata.category(char)
        if category[0] in "LN" or category == "Co":
            current.append(char)
            based = True
        elif category[0] == "M":
            current.append(char)
        else:
            if based:
                tokens.append("".join(current))
            current, based = [], False
    if based:
        tokens.append("".join(current))
    return [folded for folded in (_fold(t) for t in tokens) if folded]


def fts_body(report: model.Report) -> str:
    """What the FTS5 table holds for a report: its words, one space between them."""
    return " ".join(word_tokens(report_words(report)))


def indexed_words(report: model.Report) -> str:
    """A report's words for ``report_index.words`` (databases without FTS5): one space between
    them and at both ends, so that a searched run of words is a ``LIKE '% run %'`` match."""
    return f" {fts_body(report)} "


def query_phrases(text: str) -> list[list[str]]:
    """The words of search text: one phrase per white-space-separated word, each the run of
    words :func:`word_tokens` splits it into (``al-Bab`` must be found as ``al bab``)."""
    return [tokens for tokens in (word_tokens(w) for w in _WORD.findall(text)) if tokens]


def fts_query(text: str) -> str | None:
    """An FTS5 query matching reports that hold every word of *text* (``None`` for no words).

    Each phrase is quoted, so nothing a user types is read as query syntax (``-``, ``:``,
    ``*``, ``OR``, a stray quote: none is part of a word)."""
    phrases = query_phrases(text)
    if not phrases:
        return None
    return " AND ".join('"' + " ".join(tokens) + '"' for tokens in phrases)


def word_patterns(text: str) -> list[str] | None:
    """One ``LIKE`` pattern per phrase of *text* (``None`` when it has no words), meaning what
    :func:`fts_query` means on SQLite: every phrase, as that run of words.  Words hold no ``%``,
    ``_`` or ``\\``."""
    phrases = query_phrases(text)
    return [f"% {' '.join(tokens)} %" for tokens in phrases] or None
