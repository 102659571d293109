"""The search index held to the reports, for ``verify``.

The index is derived from the reports (:mod:`evidence_catalog.store.search`), and ``search``
trusts it: a filter term written by hand ties a post to an account it never mentions, a row or
a document taken out hides a report from every search.  :class:`IndexCheck` compares, a page of
reports at a time, what the index holds of each report with what indexing it writes:

- its ``report_index`` row (by which it is found at all) and its ``report_term`` rows;
- its words: on PostgreSQL ``report_index.words``, ``lexemes`` (the ``tsvector`` searched),
  ``word_count`` and ``word_repeats``, compared in the database page by page; on SQLite the
  FTS5 table, which is contentless (it cannot give a document's text back) and is read once at
  the end through ``fts5vocab`` (each word of each document with its position), each document's
  words in the order of their positions digested with a key drawn by each verification, and
  compared with the digest of the report's words; and its size (FTS5's ``docsize``);
- rows of the index for a part that is no report, and FTS5 documents of no report's row.

What ranking alone reads (PostgreSQL's running ``word_total`` and ``report_lexeme`` counts) is
not compared: it orders hits, it does not choose them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import sqlite3
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from evidence_catalog import model
from evidence_catalog.store.engine import chunks, execute, first_line, table_of
from evidence_catalog.store.search import FTS_CREATE, FTS_TABLE, lexemes_literal, report_terms, word_repeats
from evidence_catalog.store.tables import RecordPartRow, ReportIndexRow, ReportTermRow
from evidence_catalog.store.words import fts_body, report_words, word_tokens

#: The most bytes of a word FTS5 keeps (``FTS5_MAX_TOKEN_SIZE``): a longer word is kept cut there.
FTS_MAX_TOKEN = 32768


class IndexCheck:
    """Holds what a verification learns of the search index across its pages of records."""

    def __init__(self, session: Session) -> None:
        self.session = session
        dialect = session.get_bind().dialect
        self.sqlite = dialect.name == "sqlite"
        #: How SQLAlchemy writes a report's search time into ``report_index.at`` (on SQLite, text).
        column = table_of(ReportIndexRow).c.at
        self._written_at = column.type.dialect_impl(dialect).bind_processor(dialect)
        self._key = os.urandom(32)
        #: Of each report's ``report_index.num``: the digest of the words it should hold (SQLite).
        self._expected: dict[int, bytes] = {}
        #: And the number of its words, which FTS5 keeps apart (``docsize``) for ranking.
        self._counts: dict[int, int] = {}
        #: Records that could not be read, whose reports were not compared.
        self._unread: set[str] = set()

    def page(self, reports: Sequence[model.Report]) -> list[tuple[str, str]]:
        """``(report id, how)`` for each of *reports* whose index rows are not the ones indexing
        it writes."""
        index, terms = table_of(ReportIndexRow), table_of(ReportTermRow)
        numbers: dict[str, int] = {}
        held: dict[str, set[tuple[Any, Any]]] = {}
        differ: dict[str, list[str]] = {}
        times: dict[str, Any] = {}
        for ids in chunks([report.id for report in reports]):
            # The time as stored: SQLite compares its text with --since's, whatever it parses to.
            at = sa.type_coerce(index.c.at, sa.String) if self.sqlite else index.c.at
            query = sa.select(index.c.part_id, index.c.num, at).where(index.c.part_id.in_(ids))
            for row in execute(self.session, query):
                part_id, num, when = tuple(row)
                numbers[str(part_id)] = num
                times[str(part_id)] = when
            query = sa.select(terms.c.part_id, terms.c.kind, terms.c.value).where(terms.c.part_id.in_(ids))
            for row in execute(self.session, query):
                part_id, kind, value = tuple(row)
                held.setdefault(part_id, set()).add((kind, value))
        if not self.sqlite:
            for part_id, what in self._postgresql_words(reports, numbers):
                differ.setdefault(part_id, []).append(what)
        found = []
        for report in reports:
            num = numbers.get(report.id)
            how = ["it has no row in report_index, so no search finds it"] if num is None else []
            expected, kept = set(report_terms(report)), held.get(report.id, set())
            if kept - expected:
                how.append(f"filter terms it does not hold: {_said(kept - expected)}")
            if expected - kept:
                how.append(f"its filter terms missing: {_said(expected - kept)}")
            how.extend(differ.get(report.id, ()))
            stated = report.published_at or report.updated_at  # else the time it was found: not in it
            if num is not None and stated is not None and not self._same_time(times[report.id], stated):
                how.append("its time in report_index (what --since compares) is not the time it states")
            if num is not None and self.sqlite:
                words = [word.encode()[:FTS_MAX_TOKEN] for word in fts_body(report).split(" ") if word]
                listed = b" ".join(b"%d:%d:%s" % (at, len(word), word) for at, word in enumerate(words))
                self._expected[num] = self._digest(listed)
                self._counts[num] = len(words)
            if how:
                found.append((report.id, "; ".join(how)))
        return found

    def _same_time(self, stored: Any, stated: dt.datetime) -> bool:
        """Whether *stored* is what indexing writes for *stated*: on SQLite the very text
        SQLAlchemy writes (searches compare the text; its writer pads a year before 1000, which
        ``strftime`` does not), on PostgreSQL the same instant."""
        if self.sqlite and self._written_at is not None:
            return bool(stored == self._written_at(stated.astimezone(dt.UTC)))
        return isinstance(stored, dt.datetime) and stored == stated

    def unreadable(self, record_id: str) -> None:
        """Say that *record_id* could not be read: its reports' documents are not compared."""
        self._unread.add(record_id)

    def finish(self) -> list[tuple[bool, str, str]]:
        """What no page could see, each as ``(unlogged, subject, reason)``: rows of the index for a
        part that is no report, or a second row for one (unlogged), and on SQLite the FTS5
        table: its definition, its own consistency, and each document whose words are not its
        report's, or that no report's row numbers."""
        part, index = table_of(RecordPartRow), table_of(ReportIndexRow)
        found: list[tuple[bool, str, str]] = []
        for table in (index, table_of(ReportTermRow)):
            report = sa.select(part.c.id).where(part.c.id == table.c.part_id, part.c.kind == "report").exists()
            stray = execute(self.session, sa.select(table.c.part_id).where(~report).distinct()).scalars().all()
            found.extend(
                (True, f"{table.name} row of part {part_id} (which is no report the catalog holds)", "it")
                for part_id in sorted(stray, key=repr)
            )
        twice = sa.select(index.c.part_id).group_by(index.c.part_id).having(sa.func.count() > 1)
        found.extend(
            (True, f"a second report_index row of report {part_id}", "it")
            for part_id in sorted(execute(self.session, twice).scalars().all(), key=repr)
        )
        if self.sqlite:
            try:
                found.extend(self._fts_table())
                found.extend(self._fts_documents())
            except (sa.exc.DatabaseError, UnicodeDecodeError, ValueError, TypeError) as exc:
                reason = first_line(getattr(exc, "orig", None) or exc)
                found.append((False, f"the search index's full-text table {FTS_TABLE}", f"it cannot be read: {reason}"))
        return found

    # -- SQLite's FTS5 table ------------------------------------------------------------------

    def _digest(self, words: bytes) -> bytes:
        """The keyed digest of a document's words, each as ``position:length:word`` (its length
        in bytes: no word can pass for several), in the order of their positions."""
        return hashlib.blake2b(words, digest_size=16, key=self._key).digest()

    def _fts_table(self) -> list[tuple[bool, str, str]]:
        """The FTS5 table's definition (another tokenizer finds other words in what it is
        given) and FTS5's own check of its index (an edited page index hides words from
        every look-up while each word still reads back)."""
        connection = self.session.connection()
        subject = f"the search index's full-text table {FTS_TABLE}"
        [sql] = connection.exec_driver_sql(
            "SELECT coalesce((SELECT sql FROM sqlite_schema WHERE name = ?), '')", (FTS_TABLE,)
        ).one()
        if sql != FTS_CREATE.replace(" IF NOT EXISTS", ""):
            return [(False, subject, f"it is not defined as indexing made it ({sql or 'missing'})")]
        # The check writes nothing, but SQLite runs it as a write: on a connection of its own,
        # rolled back; a catalog that cannot be written is not checked this way.
        bind = self.session.get_bind()
        raw = (bind if isinstance(bind, sa.Engine) else bind.engine).raw_connection()
        try:
            try:
                raw.execute("BEGIN")
                raw.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('integrity-check')")
            except sqlite3.OperationalError as exc:
                if "readonly" in str(exc) or "read-only" in str(exc) or "locked" in str(exc):
                    return []
                return [(False, subject, f"FTS5's own check of it fails ({exc})")]
            except sqlite3.DatabaseError as exc:
                return [(False, subject, f"FTS5's own check of it fails ({exc})")]
            finally:
                with contextlib.suppress(sqlite3.Error):
                    raw.execute("ROLLBACK")
        finally:
            raw.close()
        return []

    def _fts_documents(self) -> list[tuple[bool, str, str]]:
        part = table_of(RecordPartRow)
        connection = self.session.connection()
        connection.exec_driver_sql(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.ec_fts_words USING fts5vocab(main, {FTS_TABLE}, instance)"
        )
        try:
            # SQLite joins each document's words (in C), as bytes (FTS5 keeps a word's first
            # 32 KiB, which may end inside a character); in the order of their positions as the
            # inner query sorts them, which an aggregate need not keep: a document whose words do
            # not match is put in that order here and compared again.
            rows = connection.exec_driver_sql(
                "SELECT doc, count(*), CAST(group_concat(\"offset\" || ':' || length(CAST(term AS BLOB)) || ':'"
                " || CAST(term AS BLOB), ' ') AS BLOB) FROM (SELECT doc, term, \"offset\" FROM temp.ec_fts_words"
                ' ORDER BY doc, "offset") GROUP BY doc'
            ).all()
        finally:
            connection.exec_driver_sql("DROP TABLE IF EXISTS temp.ec_fts_words")
        stored: dict[int, bytes] = {}
        instances: dict[int, int] = {}
        digest, expected = self._digest, self._expected
        for doc, count, words in rows:
            if not isinstance(words, bytes):
                raise ValueError(f"document {doc} has no words with positions (detail=full)")
            made = digest(words)
            if made != expected.get(doc):
                in_order: list[bytes] = sorted(_items(words), key=_position)
                made = digest(b" ".join(in_order))
            stored[doc], instances[doc] = made, count
        # A document taken out with other words than it holds keeps its words and loses its size
        # (and every search that meets it fails as "malformed"): the sizes are compared too.
        sizes = {
            doc: _varint(size) for doc, size in connection.exec_driver_sql(f"SELECT id, sz FROM {FTS_TABLE}_docsize")
        }
        none = digest(b"")  # a document without words has none to list
        wrong = {num for num, made in expected.items() if stored.get(num, none) != made}
        wrong.update(
            num for num, count in self._counts.items() if sizes.get(num) != count or instances.get(num, 0) != count
        )
        wrong.update(doc for doc in (*stored, *sizes) if doc not in expected)
        if not wrong:
            return []
        index = table_of(ReportIndexRow)
        owners: dict[int, tuple[str, str]] = {}
        ordered = sorted(wrong)
        for nums in (ordered[at : at + 500] for at in range(0, len(ordered), 500)):
            query = (
                sa.select(index.c.num, index.c.part_id, part.c.record_id)
                .join(part, part.c.id == index.c.part_id)
                .where(index.c.num.in_(nums))
            )
            for row in execute(self.session, query):
                num, report_id, record_id = tuple(row)
                owners[num] = (str(report_id), str(record_id))
        found: list[tuple[bool, str, str]] = []
        for num in sorted(wrong):
            if num not in expected and num in owners and owners[num][1] in self._unread:
                continue  # a report of a record that could not be read, which is a finding already
            if num in owners:
                report_id, record_id = owners[num]
                how = "its words in the full-text index are not the report's"
                found.append((False, f"record {record_id}", f"report {report_id}: the search index: {how}"))
            else:
                found.append(
                    (True, f"the full-text index's document {num} (which no report's index row numbers)", "it")
                )
        return found

    # -- PostgreSQL's columns -----------------------------------------------------------------

    def _postgresql_words(self, reports: Sequence[model.Report], numbers: dict[str, int]) -> list[tuple[str, str]]:
        rows = []
        for report in reports:
            if report.id in numbers:
                tokens = word_tokens(report_words(report))
                repeats = word_repeats(tokens)
                rows.append((report.id, f" {' '.join(tokens)} ", lexemes_literal(tokens), len(tokens), repeats))
        found = []
        for chunk in (rows[at : at + 500] for at in range(0, len(rows), 500)):
            query = sa.text(
                "SELECT i.part_id, i.words IS DISTINCT FROM e.words,"
                " i.lexemes IS DISTINCT FROM CAST(e.lexemes AS tsvector),"
                " i.word_count IS DISTINCT FROM e.word_count,"
                " coalesce(i.word_repeats, 'null') IS DISTINCT FROM coalesce(CAST(e.repeats AS jsonb), 'null')"
                " FROM report_index i JOIN unnest(CAST(:ids AS text[]), CAST(:words AS text[]),"
                " CAST(:lexemes AS text[]), CAST(:counts AS integer[]), CAST(:repeats AS text[]))"
                " AS e(part_id, words, lexemes, word_count, repeats) ON i.part_id = e.part_id"
            )
            params = {
                "ids": [r[0] for r in chunk],
                "words": [r[1] for r in chunk],
                "lexemes": [r[2] for r in chunk],
                "counts": [r[3] for r in chunk],
                "repeats": [None if r[4] is None else _json(r[4]) for r in chunk],
            }
            for part_id, *differs in self.session.connection().execute(query, params):
                names = [
                    n for n, d in zip(("words", "lexemes", "word_count", "word_repeats"), differs, strict=True) if d
                ]
                if names:
                    found.append(
                        (str(part_id), f"its words in the full-text index are not the report's ({', '.join(names)})")
                    )
        return found


def _items(words: bytes) -> list[bytes]:
    """The ``position:length:word`` items of a document's joined words, read by their lengths."""
    items: list[bytes] = []
    at = 0
    while at < len(words):
        first = words.index(b":", at)
        second = words.index(b":", first + 1)
        end = second + 1 + int(words[first + 1 : second])
        items.append(words[at:end])
        at = end + 1  # the space between two items
    return items


def _position(item: bytes) -> int:
    return int(item.partition(b":")[0])


def _varint(data: object) -> int:
    """The first number of an FTS5 ``docsize`` blob (SQLite's variable-length integer), or -1."""
    if not isinstance(data, bytes) or not data:
        return -1
    value = 0
    for at, byte in enumerate(data[:9]):
        if at == 8:
            return (value << 8) | byte
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value
    return -1


def _json(value: dict[str, int]) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


def _said(terms: set[tuple[Any, Any]]) -> str:
    return ", ".join(f"{kind} {value!r}" for kind, value in sorted(terms, key=repr))
