"""The one word rule of report search: what a word is, how it is folded, and how search text
becomes a query, for SQLite (FTS5) and PostgreSQL alike.  Part of
:mod:`evidence_catalog.store.search`, which imports these names back under their own.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from evidence_catalog import model

#: Arabic harakat (and Quranic marks) and Hebrew niqqud and cantillation: optional vowel marks,
#: left out so that ``مدرسة`` finds ``مَدرسة``.
_VOWEL_MARKS = re.compile("[\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed]")


def searchable(text: str) -> str:
    """Text as both the index and a query see it: Unicode NFKC, optional Arabic and Hebrew
    vowel marks removed (the stored reports keep them)."""
    return _VOWEL_MARKS.sub("", unicodedata.normalize("NFKC", text))


_WORD = re.compile(r"\S+")

#: The most words a search may hold (counted as :func:`query_phrases` splits them).  PostgreSQL
#: answers a search of some thousands ("stack depth limit exceeded": each word is a term of the
#: query and of its rank), where SQLite still does; both refuse more than this alike.
MAX_QUERY_WORDS = 2_000


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


def fts_body(report: model.Report) -> str:
    """What the FTS5 table holds for a report: its words, one space between them."""
    return " ".join(_indexed_tokens(report_words(report)))


def _indexed_tokens(text: str) -> list[str]:
    """:func:`word_tokens` of a report's text, found by one regular expression instead of a
    look at each character (what an ingest of many reports spends most of its words' time
    on); text with characters beyond the Basic Multilingual Plane goes to :func:`word_tokens`.
    ``tests/test_ingest_scale.py`` holds the two equal."""
    searched = searchable(text)
    if not searched.isascii():
        if _ASTRAL.search(searched):
            return word_tokens(text)
        runs, based, marks = _bmp_word_patterns()
        found = []
        for run in runs.findall(searched):
            if run.isascii():
                found.append(run.lower())
            elif based.search(run):
                # _fold: with no mark to remove, the run case folded, in NFC.
                folded = run.casefold()
                decomposed = unicodedata.normalize("NFD", folded)
                if marks.search(decomposed) or _ASTRAL.search(decomposed):
                    folded = _fold(run)
                else:
                    folded = unicodedata.normalize("NFC", folded)
                if folded:
                    found.append(folded)
        return found
    return [run.lower() for run in _ASCII_RUN.findall(searched)]


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
#: The word characters of ASCII text (letters and digits: no other ASCII character is one).
_ASCII_RUN = re.compile("[A-Za-z0-9]+")
_BMP_PATTERNS: list[tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]] = []


def _bmp_word_patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """Of the Basic Multilingual Plane: runs of word characters (letters, digits, marks,
    private use), a character of a run that is not a mark, and a mark; made once.  Their
    character classes are those of :mod:`evidence_catalog.store.bmp_classes`, written from
    ``unicodedata`` beforehand (:func:`bmp_classes`, 20 ms at each first ingest or search of
    a process otherwise), where this Python's Unicode is the one they were written from."""
    if not _BMP_PATTERNS:
        from evidence_catalog.store import bmp_classes

        if unicodedata.unidata_version == bmp_classes.UNIDATA_VERSION:
            word, base, mark = bmp_classes.WORD, bmp_classes.BASE, bmp_classes.MARK
        else:
            word, base, mark = bmp_classes_of_unicodedata()
        _BMP_PATTERNS.append((re.compile(f"[{word}]+"), re.compile(f"[{base}]"), re.compile(f"[{mark}]")))
    return _BMP_PATTERNS[0]


def bmp_classes_of_unicodedata() -> tuple[str, str, str]:
    """The character classes (their ranges, as a regular expression writes them) of the Basic
    Multilingual Plane's word characters, of those that are not marks, and of marks, from
    this Python's ``unicodedata``: what :mod:`evidence_catalog.store.bmp_classes` holds."""
    word, base, mark = [], [], []
    for code in range(0x10000):
        category = unicodedata.category(chr(code))
        if category[0] in "LN" or category == "Co":
            base.append(code)
            word.append(code)
        elif category[0] == "M":
            mark.append(code)
            word.append(code)
    return _ranges(word), _ranges(base), _ranges(mark)


def bmp_classes_module() -> str:
    """The text of :mod:`evidence_catalog.store.bmp_classes` for this Python's Unicode."""
    classes = zip(("WORD", "BASE", "MARK"), bmp_classes_of_unicodedata(), strict=True)
    return (
        '"""The character classes of :func:`evidence_catalog.store.words._bmp_word_patterns`, written\n'
        "from ``unicodedata`` by ``words.bmp_classes_module()`` (tests/test_ingest_scale.py holds them\n"
        'equal to it).  Data only."""\n\n'
        f'UNIDATA_VERSION = "{unicodedata.unidata_version}"\n'
        + "".join(f"{name} = (\n{_wrapped(ranges)})\n" for name, ranges in classes)
    )


def _wrapped(ranges: str, width: int = 96) -> str:
    """A class's ranges as lines of raw strings, broken between ranges."""
    lines, line = [], ""
    for one in re.findall(r"\\u[0-9a-f]{4}(?:-\\u[0-9a-f]{4})?", ranges):
        if len(line) + len(one) > width:
            lines.append(line)
            line = ""
        line += one
    return "".join(f'    r"{text}"\n' for text in [*lines, line] if text)


def _ranges(codes: list[int]) -> str:
    """A character class's ranges of these code points (ascending)."""
    parts, start = [], 0
    for position, code in enumerate(codes):
        if position + 1 == len(codes) or codes[position + 1] != code + 1:
            first = codes[start]
            parts.append(f"\\u{first:04x}" if first == code else f"\\u{first:04x}-\\u{code:04x}")
            start = position + 1
    return "".join(parts)


def indexed_words(report: model.Report) -> str:
    """A report's words for ``report_index.words`` (databases without FTS5): one space between
    them and at both ends, so that a searched run of words is a ``LIKE '% run %'`` match."""
    return f" {fts_body(report)} "


def query_phrases(text: str) -> list[list[str]]:
    """The words of search text: one phrase per white-space-separated word, each the run of
    words :func:`word_tokens` splits it into (``al-Bab`` must be found as ``al bab``)."""
    return [tokens for tokens in (word_tokens(w) for w in _WORD.findall(text)) if tokens]


def fts_query(phrases: Sequence[Sequence[str]]) -> str:
    """The FTS5 query matching reports that hold every phrase (of :func:`query_phrases`).

    Each phrase is quoted, so nothing a user types is read as query syntax (``-``, ``:``,
    ``*``, ``OR``, a stray quote: none is part of a word)."""
    return " AND ".join('"' + " ".join(tokens) + '"' for tokens in phrases)
