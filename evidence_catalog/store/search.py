"""What the report search index holds for a report, and how search text becomes a query.

The index is derived from the reports (their JSON bodies stay the truth): one ``report_index``
row per report with the time it is searched by, ``report_term`` rows for the exact filters
(mention, hashtag, feed, author), and its words: on SQLite in an FTS5 full-text table, elsewhere
in ``report_index.words``.  Words are made here, by one rule for every database.  The index is
written (:func:`index_rows`; the migrations that index reports ingested before them use the
functions at the end) and searched (:meth:`SearchIndex.search_reports`) here too.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterator, Sequence

import sqlalchemy as sa
from sqlmodel import Session

from evidence_catalog import model
from evidence_catalog.serialize import structure
from evidence_catalog.store.engine import Connections, execute, json_body, table_of
from evidence_catalog.store.tables import RecordPartRow, ReportIndexRow, ReportTermRow

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
    return " ".join(_indexed_tokens(report_words(report)))


def _indexed_tokens(text: str) -> list[str]:
    """:func:`word_tokens` of a report's text, found by one regular expression instead of a
    look at each character (what an ingest of many reports spends most of its words' time
    on); text with characters beyond the Basic Multilingual Plane goes to :func:`word_tokens`.
    ``tests/test_search_link.py`` holds the two equal."""
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
    private use), a character of a run that is not a mark, and a mark; made once, from
    ``unicodedata``."""
    if not _BMP_PATTERNS:
        word, base, mark = [], [], []
        for code in range(0x10000):
            category = unicodedata.category(chr(code))
            if category[0] in "LN" or category == "Co":
                base.append(code)
                word.append(code)
            elif category[0] == "M":
                mark.append(code)
                word.append(code)
        _BMP_PATTERNS.append(
            (re.compile(f"[{_ranges(word)}]+"), re.compile(f"[{_ranges(base)}]"), re.compile(f"[{_ranges(mark)}]"))
        )
    return _BMP_PATTERNS[0]


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


# -- the index in the database ----------------------------------------------------------------


class SearchIndex(Connections):
    """The search of reports (part of :class:`~evidence_catalog.store.database.CatalogDatabase`)."""

    def search_reports(
        self,
        session: Session,
        *,
        text: str,
        terms: Sequence[tuple[str, str]],
        since: dt.datetime | None,
        limit: int | None,
        offset: int = 0,
    ) -> list[tuple[str, model.Report]]:
        """``(record id, report)`` of the reports holding every word of *text* (any report when
        it has none) and every ``(kind, key)`` term, searched by time at or after *since*; best
        match first on SQLite (FTS5 rank), then newest first."""
        part, index, term = table_of(RecordPartRow), table_of(ReportIndexRow), table_of(ReportTermRow)
        query = sa.select(part.c.record_id, part.c.body).join(index, index.c.part_id == part.c.id)
        for kind, value in terms:
            query = query.where(
                sa.exists().where(term.c.part_id == part.c.id, term.c.kind == kind, term.c.value == value)
            )
        if since is not None:
            query = query.where(index.c.at >= since)
        match = fts_query(text)
        if match is not None and self.engine.dialect.name == "sqlite":
            fts = sa.table(FTS_TABLE, sa.column("rowid", sa.Integer))
            query = (
                query.join(fts, fts.c.rowid == index.c.num)
                .where(sa.text(f"{FTS_TABLE} MATCH :match").bindparams(match=match))
                .order_by(sa.literal_column(f"{FTS_TABLE}.rank"))
            )
        elif match is not None:  # no FTS5: the same words, as runs in report_index.words
            for pattern in word_patterns(text) or ():
                query = query.where(index.c.words.like(pattern))
        query = query.order_by(index.c.at.desc(), index.c.num.desc())
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        return [(str(row.record_id), structure(json_body(row.body), model.Report)) for row in execute(session, query)]


def index_rows(
    bind: Session | sa.Connection,
    reports: Sequence[tuple[str, model.Report, dt.datetime]],
    *,
    with_words: bool = True,
) -> None:
    """Put reports -- ``(part id, report, when it was found)`` -- into the search index.

    *with_words* False leaves out ``report_index.words`` (migration 0003 runs before the
    column exists; 0006 fills it)."""
    if not reports:
        return
    sqlite = (bind.get_bind() if isinstance(bind, Session) else bind).dialect.name == "sqlite"
    index, terms = table_of(ReportIndexRow), table_of(ReportTermRow)
    first = (bind.execute(sa.select(sa.func.max(index.c.num))).scalar() or 0) + 1
    numbered = list(enumerate(reports, start=first))
    bind.execute(
        sa.insert(index),
        [
            {
                "num": num,
                "part_id": part_id,
                "at": search_time(report, found),
                **({"words": None if sqlite else indexed_words(report)} if with_words else {}),
            }
            for num, (part_id, report, found) in numbered
        ],
    )
    term_rows = [
        {"part_id": part_id, "kind": kind, "value": value}
        for part_id, report, _ in reports
        for kind, value in report_terms(report)
    ]
    if term_rows:
        bind.execute(sa.insert(terms), term_rows)
    if sqlite:
        bind.execute(
            sa.text(f"INSERT INTO {FTS_TABLE}(rowid, body) VALUES (:num, :body)"),
            [{"num": num, "body": fts_body(report)} for num, (_, report, _) in numbered],
        )


def _indexed_reports(bind: sa.Connection, batch: int = 2000) -> Iterator[list[tuple[int, model.Report]]]:
    """Every indexed report with its ``report_index.num``, a batch at a time (keyset pages:
    memory stays bounded however many reports there are)."""
    index, part = table_of(ReportIndexRow), table_of(RecordPartRow)
    after = 0
    while True:
        rows = bind.execute(
            sa.select(index.c.num, part.c.body)
            .join(part, part.c.id == index.c.part_id)
            .where(index.c.num > after)
            .order_by(index.c.num)
            .limit(batch)
        ).all()
        if not rows:
            return
        yield [(num, structure(json_body(body), model.Report)) for num, body in rows]
        after = rows[-1][0]


def fill_report_words(bind: sa.Connection) -> None:
    """Fill ``report_index.words`` for every indexed report (migrations 0006 and 0007)."""
    index = table_of(ReportIndexRow)
    for reports in _indexed_reports(bind):
        bind.execute(
            sa.update(index).where(index.c.num == sa.bindparam("n")).values(words=sa.bindparam("w")),
            [{"n": num, "w": indexed_words(report)} for num, report in reports],
        )


def fill_fts(bind: sa.Connection) -> None:
    """Put every indexed report into SQLite's (empty) FTS5 table (migration 0007)."""
    for reports in _indexed_reports(bind):
        bind.execute(
            sa.text(f"INSERT INTO {FTS_TABLE}(rowid, body) VALUES (:num, :body)"),
            [{"num": num, "body": fts_body(report)} for num, report in reports],
        )
