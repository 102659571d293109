"""What the report search index holds for a report, and how search text becomes a query.

The index is derived from the reports (their JSON bodies stay the truth): one ``report_index``
row per report with the time it is searched by, ``report_term`` rows for the exact filters
(mention, hashtag, feed, author), and its words: on SQLite in an FTS5 full-text table; on
PostgreSQL in ``report_index`` (a ``tsvector`` under a GIN index, the text of the words, and
what ranking needs) and ``report_lexeme`` (how many reports hold each word).  Words are made
by one rule for every database (:mod:`evidence_catalog.store.words`), and hits are ranked by
one rule too (FTS5's bm25, worked out on PostgreSQL as FTS5 works it out).  The index is
written (:func:`index_rows`; the migrations that index reports ingested before them use the
functions at the end) and searched (:meth:`SearchIndex.search_reports`) here too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from evidence_catalog import model
from evidence_catalog.serialize import structure
from evidence_catalog.store.engine import (
    Connections,
    chunks,
    execute,
    json_body,
    table_of,
)
from evidence_catalog.store.inserts import insert_many, sqlite_executemany
from evidence_catalog.store.tables import RecordPartRow, ReportIndexRow, ReportTermRow, TextSearchVector
from evidence_catalog.store.words import MAX_QUERY_WORDS as MAX_QUERY_WORDS
from evidence_catalog.store.words import _indexed_tokens as _indexed_tokens  # (tests)
from evidence_catalog.store.words import fts_body as fts_body
from evidence_catalog.store.words import fts_query as fts_query
from evidence_catalog.store.words import indexed_words as indexed_words
from evidence_catalog.store.words import query_phrases as query_phrases
from evidence_catalog.store.words import report_words as report_words
from evidence_catalog.store.words import searchable as searchable
from evidence_catalog.store.words import word_tokens as word_tokens

#: The FTS5 table: contentless (the text is in the reports already), rowid = ``report_index.num``.
#: It is given each report's words as :func:`word_tokens` makes them, one space between them,
#: and the ``ascii`` tokenizer only splits them again at those spaces (every other character of
#: a word is a letter, digit or mark): what a word is, and how it is folded, is decided here
#: once, in Python, for SQLite and PostgreSQL alike (revision 0007).
FTS_TABLE = "report_fts"
FTS_CREATE = f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(body, content='', tokenize='ascii')"


def outside_metadata(name: str | None, type_: str, parents: object) -> bool:
    """Alembic's ``include_name`` filter: False for the FTS5 table and the shadow tables SQLite
    keeps for it, and for PostgreSQL's GIN index of words, which no SQLModel table describes."""
    del parents
    if type_ == "index":
        return name != PG_LEXEMES_INDEX
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


def search_time(report: model.Report, found_at: dt.datetime) -> dt.datetime:
    """The time ``--since`` compares: when it was published where known, else when the source
    says it last changed, else when it was found."""
    return report.published_at or report.updated_at or found_at


# -- PostgreSQL's full-text index -------------------------------------------------------------
#
# On PostgreSQL ``report_index.lexemes`` is a ``tsvector`` of the report's words as word_tokens
# made them -- given as they are, with their positions (no parser, no dictionary: what
# PostgreSQL's 'simple' configuration would do, without its own idea of a word) -- and a GIN
# index finds the reports holding every searched word, and every searched run of words as a
# phrase (``<->``).  What a tsvector cannot hold is checked in ``report_index.words``.  Hits are
# ranked as SQLite's FTS5 ranks them (bm25, see SearchIndex._ranked_postgresql), from what the
# index keeps of each report: its number of words, the running total of words over the reports
# indexed up to it (numbered from 1, none ever removed: the last one's total and number are the
# whole index's), and how often a repeated word occurs; and how many reports hold each lexeme
# (``report_lexeme``, added to as reports are indexed: a lookup where a count would visit each).

#: The GIN index over ``report_index.lexemes``, made by hand on PostgreSQL only (no SQLModel
#: table describes it, as none describes SQLite's FTS5 table).
PG_LEXEMES_INDEX = "ix_report_index_lexemes"
PG_INDEX_CREATE = f"CREATE INDEX IF NOT EXISTS {PG_LEXEMES_INDEX} ON report_index USING gin (lexemes)"

#: The longest word, in UTF-8 bytes, kept in the index as it is (PostgreSQL keeps lexemes of
#: less than 2 KiB); a longer one is kept as ``#`` and its SHA-256, which no word can be.
LEXEME_MAX_BYTES = 255
#: The most bytes of lexemes one report's ``tsvector`` holds (PostgreSQL's limit is 1 MiB).  A
#: report with more distinct words than that is indexed as the one lexeme :data:`ALL_LEXEME`:
#: every search looks at it, and checks each of its words in ``report_index.words``.
LEXEMES_MAX_BYTES = 512 * 1024
ALL_LEXEME = "#all"
#: PostgreSQL keeps a word's positions up to 16,383, and at most 256 of them: a report with more
#: words, or a word more often, has its lexemes without positions and :data:`NO_POSITIONS`; a
#: run of words is then checked in ``report_index.words``.
MAX_POSITION = 16383
MAX_POSITIONS = 256
NO_POSITIONS = "#nopos"

#: FTS5's bm25 constants (``fts5_aux.c``): k1, b, and the two sums it makes of them.
BM25_K1 = 1.2
BM25_B = 0.75
_K1_PLUS_1 = BM25_K1 + 1.0
_ONE_MINUS_B = 1 - BM25_B


def lexeme(word: str) -> str:
    """The lexeme PostgreSQL's index keeps for a word (see :data:`LEXEME_MAX_BYTES`).  A long
    one is hashed from its first 32 KiB only, as FTS5 keeps only those (``FTS5_MAX_TOKEN_SIZE``:
    two words alike that far are one word to it)."""
    data = word.encode()
    return word if len(data) <= LEXEME_MAX_BYTES else "#" + hashlib.sha256(data[:32768]).hexdigest()


def lexemes_literal(tokens: Sequence[str]) -> str:
    """The ``tsvector`` of a report's words, as PostgreSQL reads it from text: each distinct
    lexeme once, quoted (words hold no quote nor backslash), with the positions (from 1) of its
    words -- a run of words is then a phrase query (``<->``) -- where they fit."""
    return _lexemes(tokens)[0]


def _lexemes(tokens: Sequence[str]) -> tuple[str, list[str]]:
    """:func:`lexemes_literal` of a report's words, and the distinct lexemes it holds
    (:data:`ALL_LEXEME` or :data:`NO_POSITIONS` among them where it holds them): what
    ``report_lexeme`` counts."""
    positions: dict[str, list[int]] = {}
    for position, word in enumerate(tokens, start=1):
        positions.setdefault(lexeme(word), []).append(position)
    if sum(len(item.encode()) for item in positions) > LEXEMES_MAX_BYTES:
        return f"'{ALL_LEXEME}'", [ALL_LEXEME]
    held = list(positions)
    if len(tokens) > MAX_POSITION or any(len(found) > MAX_POSITIONS for found in positions.values()):
        return " ".join(f"'{item}'" for item in sorted(positions)) + f" '{NO_POSITIONS}'", [*held, NO_POSITIONS]
    return " ".join(f"'{item}':{','.join(map(str, found))}" for item, found in sorted(positions.items())), held


def word_repeats(tokens: Sequence[str]) -> dict[str, int] | None:
    """How often each word that occurs more than once occurs (``None`` when none does)."""
    repeated = {word: count for word, count in Counter(tokens).items() if count > 1}
    return repeated or None


def _bordered(tokens: Sequence[str]) -> bool:
    """Whether a run of words can overlap itself (``a a``, ``a b a``): a proper head of it is
    also its tail."""
    return any(tokens[cut:] == tokens[: len(tokens) - cut] for cut in range(1, len(tokens)))


def _tsquery(phrases: Sequence[Sequence[str]]) -> str:
    """A ``tsquery`` (as text) matching the reports whose ``lexemes`` hold every phrase: as a
    run of words (``<->``) where they have positions, as words alike elsewhere
    (:data:`NO_POSITIONS`, the runs then checked in the text), and every report indexed as
    :data:`ALL_LEXEME` (checked word by word)."""
    runs = " & ".join("(" + " <-> ".join(f"'{lexeme(w)}'" for w in tokens) + ")" for tokens in phrases)
    words = " & ".join(f"'{item}'" for item in dict.fromkeys(lexeme(w) for tokens in phrases for w in tokens))
    return f"({runs}) | ('{NO_POSITIONS}' & {words}) | '{ALL_LEXEME}'"


def _checked_in_text(phrases: Sequence[Sequence[str]], params: dict[str, Any], name: str) -> str:
    """The SQL condition, after a report matched :func:`_tsquery`, that checks in its text what
    its lexemes could not: every phrase for a report indexed as :data:`ALL_LEXEME`, every run
    of words for one without positions (with no run searched, nothing: the one look at each
    report's lexemes it would cost is saved)."""
    likes = []
    for n, tokens in enumerate(phrases):
        params[f"{name}{n}"] = f"% {' '.join(tokens)} %"
        likes.append((len(tokens) > 1, f"i.words LIKE :{name}{n}"))
    every = " AND ".join(like for _, like in likes)
    runs = " AND ".join(like for run, like in likes if run)
    params["all"] = f"'{ALL_LEXEME}'"
    unpositioned = ""
    if runs:
        params["nopos"] = f"'{NO_POSITIONS}'"
        unpositioned = f" WHEN i.lexemes @@ CAST(:nopos AS tsquery) THEN {runs}"
    return f"CASE WHEN i.lexemes @@ CAST(:all AS tsquery) THEN {every}{unpositioned} ELSE true END"


def _regex_literal(text: str) -> str:
    """*text* as a PostgreSQL regular expression matching it literally."""
    return re.sub(r"([\\.^$|?*+()\[\]{}])", r"\\\1", text)


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
        match first (SQLite's FTS5 bm25 rank, computed the same way on PostgreSQL), then newest
        first: see :meth:`search_part_ids`."""
        found = self.search_part_ids(session, text=text, terms=terms, since=since, limit=limit, offset=offset)
        return self.reports_of_parts(session, found)

    def search_part_ids(
        self,
        session: Session,
        *,
        text: str,
        terms: Sequence[tuple[str, str]],
        since: dt.datetime | None,
        limit: int | None,
        offset: int = 0,
    ) -> list[str]:
        """The ids of the reports :meth:`search_reports` finds, in its order: found in the index
        alone (no report is read)."""
        phrases = query_phrases(text)
        params: dict[str, Any] = {}
        where = _filters(terms, since, params)
        if not phrases:
            return self._newest(session, terms, where, params, limit, offset)
        if self.engine.dialect.name == "sqlite":
            return self._ranked_sqlite(session, phrases, terms, where, params, limit, offset)
        return self._ranked_postgresql(session, phrases, where, params, limit, offset)

    def reports_of_parts(self, session: Session, part_ids: Sequence[str]) -> list[tuple[str, model.Report]]:
        """``(record id, report)`` of the reports with these ids, in their order (an id no report
        has, which only an index edited by hand can give, is left out: ``verify`` names it)."""
        part = table_of(RecordPartRow)
        rows: dict[str, Any] = {}
        for ids in chunks(part_ids):
            found = execute(
                session,
                sa.select(part.c.id, part.c.record_id, part.c.body).where(part.c.id.in_(ids), part.c.kind == "report"),
            )
            rows.update((row.id, row) for row in found)
        return [
            (str(rows[part_id].record_id), structure(json_body(rows[part_id].body), model.Report))
            for part_id in part_ids
            if part_id in rows
        ]

    def records_of_parts(self, session: Session, part_ids: Sequence[str]) -> dict[str, str]:
        """The record each of these parts is on, by part id."""
        part = table_of(RecordPartRow)
        owners: dict[str, str] = {}
        for ids in chunks(part_ids):
            found = execute(session, sa.select(part.c.id, part.c.record_id).where(part.c.id.in_(ids)))
            owners.update((str(row.id), str(row.record_id)) for row in found)
        return owners

    def _newest(
        self,
        session: Session,
        terms: Sequence[tuple[str, str]],
        where: list[str],
        params: dict[str, Any],
        limit: int | None,
        offset: int,
    ) -> list[str]:
        """The part ids of a page of the reports meeting *where*, newest first.

        SQLite walks the reports newest first and checks each against the filters unless a
        filter's own reports are fewer than that walk would take (it has no statistics to
        choose by: see :func:`_walk_costs_more`); then it starts from those.  PostgreSQL's
        planner makes that choice itself."""
        sqlite = self.engine.dialect.name == "sqlite"
        source = "report_index i"
        if sqlite and terms:
            sizes = [_term_size(session, kind, value) for kind, value in terms]
            smallest = min(range(len(terms)), key=sizes.__getitem__)
            reports = execute(session, sa.text("SELECT max(num) FROM report_index")).scalar() or 0
            if _walk_costs_more(sizes[smallest], reports, limit, offset):
                source = (
                    f"report_term d CROSS JOIN report_index i ON i.part_id = d.part_id"
                    f" AND d.kind = :kind{smallest} AND d.value = :value{smallest}"
                )
                where = [w for n, w in enumerate(where) if n != smallest]
        sql = f"SELECT i.part_id FROM {source}{_where(where)} ORDER BY i.at DESC, i.num DESC"
        return _page(session, sql, params, limit, offset, sqlite=sqlite)

    def _ranked_sqlite(
        self,
        session: Session,
        phrases: list[list[str]],
        terms: Sequence[tuple[str, str]],
        where: list[str],
        params: dict[str, Any],
        limit: int | None,
        offset: int,
    ) -> list[str]:
        """A page of the reports holding every phrase, best match first, on SQLite.

        The FTS5 table leads (``CROSS JOIN`` keeps SQLite from putting it second): bm25 is
        worked out for the rows of one full-text query, and each new query (one per row of
        another table, were it second) would count every phrase's reports again.

        A filter (*terms*, the first conditions of *where*) with fewer reports than the words
        have is made a list of index rows once, which each hit is looked up in (``+f.rowid
        IN``, the ``+`` keeping the list from the FTS5 table, which would run one full-text
        query per entry): a probe of that list instead of a lookup of the hit's part id, then
        of its term, for every report that holds the words.  Which reports pass, and their
        bm25, are the same either way: bm25's figures come from the whole full-text query."""
        params["match"] = fts_query(phrases)
        if terms:
            sizes = [_term_size(session, kind, value) for kind, value in terms]
            smallest = min(range(len(terms)), key=sizes.__getitem__)
            matches = execute(
                session,
                sa.text(f"SELECT count(*) FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :match").bindparams(
                    match=params["match"]
                ),
            ).scalar_one()
            if sizes[smallest] < matches:
                where = [
                    f"+f.rowid IN (SELECT d.num FROM report_term t CROSS JOIN report_index d ON d.part_id = t.part_id"
                    f" WHERE t.kind = :kind{smallest} AND t.value = :value{smallest})",
                    *(w for n, w in enumerate(where) if n != smallest),
                ]
        sql = (
            f"SELECT i.part_id FROM {FTS_TABLE} f CROSS JOIN report_index i ON i.num = f.rowid"
            f"{_where([f'{FTS_TABLE} MATCH :match', *where])}"
            f" ORDER BY bm25({FTS_TABLE}), i.at DESC, i.num DESC"
        )
        return _page(session, sql, params, limit, offset, sqlite=True)

    def _ranked_postgresql(
        self,
        session: Session,
        phrases: list[list[str]],
        where: list[str],
        params: dict[str, Any],
        limit: int | None,
        offset: int,
    ) -> list[str]:
        """A page of the reports holding every phrase, best match first, on PostgreSQL: found
        through the GIN index, ranked by FTS5's bm25 computed from the same figures FTS5 uses.

        For phrase *i*: ``idf_i = ln((N - n_i + 0.5) / (n_i + 0.5))`` (at least 1e-6), N the
        reports indexed, n_i those holding the phrase; a report of D words holding it f_i times
        scores ``sum(idf_i * f_i * (k1 + 1) / (f_i + k1 * (1 - b + b * D / avgdl)))``, avgdl the
        words per report; k1 = 1.2, b = 0.75.  Every operation is done in the order and
        precision ``fts5_aux.c`` does it (IEEE doubles; the logarithm in Python, as SQLite's is
        taken in this process), so equal scores are equal on both databases and the order is
        the same."""
        params["match"] = _tsquery(phrases)
        found = ["i.lexemes @@ CAST(:match AS tsquery)", _checked_in_text(phrases, params, "phrase")]
        # The figures of the whole index (the last report indexed holds the running totals) and
        # how many reports hold each phrase, in one statement.
        figures: dict[str, Any] = {}
        counts = []
        for n, tokens in enumerate(phrases):
            if len(tokens) == 1:  # its lexeme says it all (report_lexeme counts the reports
                # holding it, a lookup instead of a visit of each), but in reports indexed as
                # ALL_LEXEME: those are looked up in the GIN index and checked in their text
                figures[f"q{n}"], figures[f"p{n}_0"] = lexeme(tokens[0]), f"% {tokens[0]} %"
                figures["all"] = f"'{ALL_LEXEME}'"
                counts.append(
                    f"COALESCE((SELECT c.reports FROM report_lexeme c WHERE c.lexeme = :q{n}), 0)"
                    " + (SELECT count(*) FROM report_index i"
                    f" WHERE i.lexemes @@ CAST(:all AS tsquery) AND i.words LIKE :p{n}_0)"
                )
            else:
                figures[f"q{n}"] = _tsquery([tokens])
                check = _checked_in_text([tokens], figures, f"p{n}_")
                counts.append(
                    f"(SELECT count(*) FROM report_index i WHERE i.lexemes @@ CAST(:q{n} AS tsquery) AND {check})"
                )
        # The counts (and below, the frequencies) as one array each: a search of many words
        # would otherwise be more columns than a statement may have (1,664).
        last: Sequence[Any] | None = execute(
            session,
            sa.text(
                f"SELECT last.num, last.word_total, ARRAY[{', '.join(counts)}]"
                " FROM (SELECT num, word_total FROM report_index ORDER BY num DESC LIMIT 1) last"
            ).bindparams(**figures),
        ).first()
        if last is None:
            return []
        rows, words, holding = int(last[0]), int(last[1]), [int(count) for count in last[2]]
        avgdl = float(words) / float(rows)
        frequencies, terms = [], []
        for n, (tokens, hits) in enumerate(zip(phrases, holding, strict=True)):
            idf = math.log((rows - hits + 0.5) / (hits + 0.5))
            params[f"idf{n}"] = idf if idf > 0.0 else 1e-6
            repeats = []
            for w, word in enumerate(dict.fromkeys(tokens)):
                params[f"word{n}_{w}"] = word
                repeats.append(f"COALESCE(CAST(i.word_repeats ->> :word{n}_{w} AS integer), 1)")
            if len(tokens) == 1:
                frequency = f"CAST({repeats[0]} AS float8)"
            else:
                if _bordered(tokens):  # occurrences may overlap: each is a space its run follows
                    params[f"run{n}"] = " (?=" + _regex_literal(" ".join(tokens)) + " )"
                    count = f"(SELECT count(*) FROM regexp_matches(i.words, :run{n}, 'g'))"
                else:  # with the spaces doubled, occurrences cannot share one: replace() finds each
                    run = " " + "  ".join(tokens) + " "
                    params[f"run{n}"], params[f"length{n}"] = run, len(run.encode())
                    doubled = "replace(i.words, ' ', '  ')"
                    count = f"(octet_length({doubled}) - octet_length(replace({doubled}, :run{n}, ''))) / :length{n}"
                # A run occurs no more often than each of its words: once (it was found), unless
                # every one of them is repeated -- only then is it counted in the text.
                frequency = f"CAST(CASE WHEN least({', '.join(repeats)}) = 1 THEN 1 ELSE {count} END AS float8)"
            frequencies.append(frequency)
            terms.append(
                f"CAST(:idf{n} AS float8) * ((m.f[{n + 1}] * CAST(:k1p1 AS float8)) / (m.f[{n + 1}]"
                " + CAST(:k1 AS float8)"
                " * (CAST(:omb AS float8) + (CAST(:b AS float8) * m.d) / CAST(:avgdl AS float8))))"
            )
        params.update(k1p1=_K1_PLUS_1, k1=BM25_K1, omb=_ONE_MINUS_B, b=BM25_B, avgdl=avgdl)
        # OFFSET 0 keeps PostgreSQL from folding the inner query into the outer one, which
        # would work out each frequency twice.
        sql = (
            f"SELECT m.part_id FROM (SELECT i.part_id, i.at, i.num, CAST(i.word_count AS float8) AS d"
            f", ARRAY[{', '.join(frequencies)}] AS f FROM report_index i{_where([*found, *where])} OFFSET 0) m"
            f" ORDER BY {' + '.join(terms)} DESC, m.at DESC, m.num DESC"
        )
        return _page(session, sql, params, limit, offset, sqlite=False)


def _filters(terms: Sequence[tuple[str, str]], since: dt.datetime | None, params: dict[str, Any]) -> list[str]:
    """The SQL conditions on a report ``report_index i`` of the exact filters (their values put
    into *params*)."""
    where = []
    for n, (kind, value) in enumerate(terms):
        params[f"kind{n}"], params[f"value{n}"] = kind, value
        where.append(
            "EXISTS (SELECT 1 FROM report_term t"
            f" WHERE t.part_id = i.part_id AND t.kind = :kind{n} AND t.value = :value{n})"
        )
    if since is not None:
        params["since"] = since
        where.append("i.at >= :since")
    return where


def _term_size(session: Session, kind: str, value: str) -> int:
    """How many reports have this filter term (counted in its index)."""
    return int(
        execute(
            session,
            sa.text("SELECT count(*) FROM report_term WHERE kind = :kind AND value = :value").bindparams(
                kind=kind, value=value
            ),
        ).scalar_one()
    )


def _walk_costs_more(term_reports: int, reports: int, limit: int | None, offset: int) -> bool:
    """Whether walking *reports* newest first until a page is full costs more than sorting the
    *term_reports* reports of a filter: the walk checks about ``(offset + limit) * reports /
    term_reports`` of them (the filter's share spread evenly), each check a few lookups."""
    if limit is None or term_reports == 0:
        return True
    return term_reports * term_reports <= 4 * (offset + limit) * reports


def _where(conditions: Sequence[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


def _page(
    session: Session, sql: str, params: dict[str, Any], limit: int | None, offset: int, *, sqlite: bool
) -> list[str]:
    """The part ids *sql* selects, *limit* of them (all: ``None``) after the first *offset*."""
    if limit is not None or offset:
        sql += f" LIMIT {int(limit)}" if limit is not None else " LIMIT -1" if sqlite else " LIMIT ALL"
    if offset:
        sql += f" OFFSET {int(offset)}"
    at = table_of(ReportIndexRow).c.at.type  # a time as each database keeps it
    statement = sa.text(sql).bindparams(
        *(sa.bindparam(name, value, type_=at if name == "since" else None) for name, value in params.items())
    )
    return [str(row[0]) for row in execute(session, statement)]


def index_rows(
    bind: Session | sa.Connection,
    reports: Sequence[tuple[str, model.Report, dt.datetime]],
    *,
    with_words: bool = True,
) -> None:
    """Put reports -- ``(part id, report, when it was found)`` -- into the search index.

    *with_words* False leaves out ``report_index.words`` and the columns of PostgreSQL's
    full-text index (migration 0003 runs before they exist; 0006 and 0009 fill them)."""
    if not reports:
        return
    sqlite = (bind.get_bind() if isinstance(bind, Session) else bind).dialect.name == "sqlite"
    index, terms = table_of(ReportIndexRow), table_of(ReportTermRow)
    words_too = with_words and not sqlite
    if words_too:
        last = bind.execute(sa.select(index.c.num, index.c.word_total).order_by(index.c.num.desc()).limit(1)).first()
        first, total = (1, 0) if last is None else (last[0] + 1, last[1] or 0)
    else:
        first, total = (bind.execute(sa.select(sa.func.max(index.c.num))).scalar() or 0) + 1, 0
    numbered = list(enumerate(reports, start=first))
    rows = []
    held: Counter[str] = Counter()
    for num, (part_id, report, found) in numbered:
        row: dict[str, Any] = {"num": num, "part_id": part_id, "at": search_time(report, found)}
        if words_too:
            tokens = word_tokens(report_words(report))
            total += len(tokens)
            row.update(_word_columns(tokens, total))
            held.update(row.pop("lexemes_held"))
        elif with_words:
            row["words"] = None
        rows.append(row)
    if words_too:  # text to tsvector: PostgreSQL reads the lexemes from their text
        statement = sa.insert(index).values(lexemes=sa.cast(sa.bindparam("lexemes_text"), TextSearchVector))
        bind.execute(statement, rows)
        count_lexemes(bind, held)
    else:
        insert_many(bind, index, rows)
    term_rows = [
        {"part_id": part_id, "kind": kind, "value": value}
        for part_id, report, _ in reports
        for kind, value in report_terms(report)
    ]
    if term_rows:
        insert_many(bind, terms, term_rows)
    if sqlite:
        sqlite_executemany(
            bind,
            f"INSERT INTO {FTS_TABLE}(rowid, body) VALUES (?, ?)",
            [(num, fts_body(report)) for num, (_, report, _) in numbered],
        )


def _word_columns(tokens: Sequence[str], total: int) -> dict[str, Any]:
    """``report_index``'s word columns of a report with these words, *total* words indexed up
    to and with it (PostgreSQL; ``lexemes_text`` is the ``tsvector`` as text)."""
    literal, held = _lexemes(tokens)
    return {
        "words": f" {' '.join(tokens)} ",
        "lexemes_text": literal,
        "lexemes_held": held,
        "word_count": len(tokens),
        "word_total": total,
        "word_repeats": word_repeats(tokens),
    }


def count_lexemes(bind: Session | sa.Connection, held: Counter[str]) -> None:
    """Add to ``report_lexeme`` how many more reports hold each lexeme (PostgreSQL), in one
    statement, in the lexemes' order (writers queue for the catalog's write lock anyway)."""
    if not held:
        return
    lexemes = sorted(held)
    bind.execute(
        sa.text(
            "INSERT INTO report_lexeme (lexeme, reports)"
            " SELECT * FROM unnest(CAST(:lexemes AS text[]), CAST(:reports AS bigint[]))"
            " ON CONFLICT (lexeme) DO UPDATE SET reports = report_lexeme.reports + excluded.reports"
        ),
        {"lexemes": lexemes, "reports": [held[item] for item in lexemes]},
    )


def fill_lexeme_counts(bind: sa.Connection) -> None:
    """Count in ``report_lexeme`` the reports holding each lexeme of PostgreSQL's full-text
    index, from the index itself (migration 0010)."""
    bind.exec_driver_sql(
        "INSERT INTO report_lexeme (lexeme, reports)"
        " SELECT u.lexeme, count(*) FROM report_index i CROSS JOIN unnest(i.lexemes) u GROUP BY u.lexeme"
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


def fill_report_lexemes(bind: sa.Connection) -> None:
    """Fill PostgreSQL's full-text columns of ``report_index`` (``lexemes``, ``word_count``,
    ``word_total``, ``word_repeats``) for every indexed report, in the order they were indexed
    (migration 0009); ``words`` is written again with them, from the same words."""
    index = table_of(ReportIndexRow)
    statement = (
        sa.update(index)
        .where(index.c.num == sa.bindparam("n"))
        .values(
            words=sa.bindparam("w"),
            lexemes=sa.cast(sa.bindparam("lexemes_text"), TextSearchVector),
            word_count=sa.bindparam("c"),
            word_total=sa.bindparam("t"),
            word_repeats=sa.bindparam("r"),
        )
    )
    total = 0
    for reports in _indexed_reports(bind):
        rows = []
        for num, report in reports:
            tokens = word_tokens(report_words(report))
            total += len(tokens)
            columns = _word_columns(tokens, total)
            rows.append(
                {
                    "n": num,
                    "w": columns["words"],
                    "lexemes_text": columns["lexemes_text"],
                    "c": columns["word_count"],
                    "t": total,
                    "r": columns["word_repeats"],
                }
            )
        bind.execute(statement, rows)
