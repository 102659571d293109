"""The search index's rows, held to the reports by ``verify``.

``search`` finds a report through its ``report_index`` row and filters by the ``report_term``
rows (mention, hashtag, feed, author) written for it.  They are derived from the report, and
``verify`` did not read them: a review inserted one term row and ``search --mention
journalist_x`` listed a post that never mentions that account, tying it to a person, with
``verify`` saying intact; a report's index row deleted hid it from every search.  Now each
report's index row and terms are compared with what indexing the report writes, and index rows
of a part that is no report are named.  (The words of the full-text index are not compared.)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence_catalog import Catalog
from evidence_catalog.findings import EntryUnreadable, UnloggedChange
from evidence_catalog.store.search import report_terms
from evidence_catalog.store.words import fts_body

from .conftest import run_sql

DIGEST = (
    "Field Monitor (Twitter)\n"
    "RT @example_watch: Shelling near a school #verification\n"
    "RT @example_watch: Shelling near a school #verification\n"
    "Demo Newsroom (Telegram)\n"
    "Our team published the video, please help @MapDesk geolocate it #osint #Україна\n"
    "Our team published the video, please help @MapDesk geolocate it #osint #Україна\n"
    "Field Monitor (Twitter)\n"
    "A third post with no mention at all\n"
    "A third post with no mention at all\n"
)


@pytest.fixture
def filled(catalog: Catalog, tmp_path: Path) -> Catalog:
    digest = tmp_path / "digest.txt"
    digest.write_text(DIGEST, encoding="utf-8")
    catalog.ingest(digest)
    return catalog


def reports(catalog: Catalog) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """Each report's id: its record and its filter terms."""
    found = {}
    for record_id in catalog.record_ids():
        for report in catalog.record(record_id).reports:
            found[report.id] = (record_id, list(report_terms(report)))
    return found


def named(catalog: Catalog) -> tuple[set[str], set[str]]:
    """The reports whose index ``verify`` says disagrees, and the subjects of unlogged rows."""
    report = catalog.verify(record_event=False, remember=False)
    disagreeing = {
        f.reason.split(":")[0].removeprefix("report ")
        for f in report.findings
        if isinstance(f, EntryUnreadable) and "the search index" in f.reason
    }
    unlogged = {f.subject for f in report.findings if isinstance(f, UnloggedChange)}
    assert len(report.findings) == len(disagreeing) + len(unlogged), report.findings
    return disagreeing, unlogged


def test_a_clean_index_passes(filled: Catalog) -> None:
    held = reports(filled)
    assert len(held) == 3 and any(("mention", "mapdesk") in terms for _, terms in held.values())
    assert filled.verify(record_event=False, remember=False).ok


def test_a_term_added_to_a_report_is_named_and_search_no_longer_trusted(filled: Catalog) -> None:
    report_id = sorted(reports(filled))[0]
    run_sql(
        filled,
        "insert into report_term (part_id, kind, value) values (:p, 'mention', 'journalist_x')",
        {"p": report_id},
    )
    assert [h.report.id for h in filled.search("", mention="journalist_x")] == [report_id]  # what the edit does
    report = filled.verify(record_event=False, remember=False)
    [found] = report.findings
    record_id = reports(filled)[report_id][0]
    assert isinstance(found, EntryUnreadable) and found.subject == f"record {record_id}"
    assert (
        found.reason == f"report {report_id}: the search index: filter terms it does not hold: mention 'journalist_x'"
    )


def test_a_term_removed_and_an_index_row_removed_are_named(filled: Catalog) -> None:
    held = reports(filled)
    with_mention = next(i for i, (_, terms) in held.items() if ("mention", "mapdesk") in terms)
    other = next(i for i in sorted(held) if i != with_mention)
    run_sql(filled, "delete from report_term where part_id = :p and kind = 'mention'", {"p": with_mention})
    run_sql(filled, "delete from report_index where part_id = :p", {"p": other})
    assert filled.search("", mention="mapdesk") == []
    report = filled.verify(record_event=False, remember=False)
    reasons = sorted(f.reason for f in report.findings if isinstance(f, EntryUnreadable))
    if filled.db.engine.dialect.name == "sqlite":  # the report's FTS5 document stays, numbered by no row
        [stray] = [f for f in report.findings if isinstance(f, UnloggedChange)]
        assert stray.subject.startswith("the full-text index's document ")
    else:
        assert all(isinstance(f, EntryUnreadable) for f in report.findings)
    assert reasons == sorted(
        [
            f"report {with_mention}: the search index: its filter terms missing: mention 'mapdesk'",
            f"report {other}: the search index: it has no row in report_index, so no search finds it",
        ]
    )


def test_index_rows_of_no_report_are_named_and_search_passes_them_over(filled: Catalog) -> None:
    held = reports(filled)
    some = sorted(held)[0]
    note_id = filled.add_note(held[some][0], "a note is a part, but no report").id
    for part_id, num in (("no-such-part", 9001), (note_id, 9002)):
        run_sql(
            filled,
            "insert into report_index (num, part_id, at) select :num, :p, at from report_index where part_id = :some",
            {"num": num, "p": part_id, "some": some},
            foreign_keys=False,
        )
        run_sql(
            filled,
            "insert into report_term (part_id, kind, value) values (:p, 'mention', 'mapdesk')",
            {"p": part_id},
            foreign_keys=False,
        )
    assert {h.report.id for h in filled.search("", mention="mapdesk")} <= set(held)  # no traceback, no phantom
    disagreeing, unlogged = named(filled)
    assert disagreeing == set()
    assert unlogged == {
        f"{table} row of part {part} (which is no report the catalog holds)"
        for table in ("report_index", "report_term")
        for part in ("no-such-part", note_id)
    }


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_exactly_the_reports_whose_terms_were_changed_are_named(filled: Catalog, data: st.DataObject) -> None:
    held = reports(filled)
    edits = data.draw(
        st.lists(
            st.tuples(
                st.sampled_from(sorted(held)),
                st.sampled_from(["add", "remove"]),
                st.sampled_from(["mention", "hashtag", "feed", "author"]),
                st.text(st.characters(exclude_characters="\x00"), min_size=1, max_size=12),  # PostgreSQL: no NUL
            ),
            max_size=4,
        )
    )
    changed = set()
    for report_id, how, kind, value in edits:
        terms = set(held[report_id][1])
        if how == "add" and (kind, value) not in terms:
            statement = "insert into report_term (part_id, kind, value) values (:p, :k, :v)"
            if not run_sql(
                filled,
                "select 1 from report_term where part_id = :p and kind = :k and value = :v",
                {"p": report_id, "k": kind, "v": value},
            ):
                run_sql(filled, statement, {"p": report_id, "k": kind, "v": value})
                changed.add(report_id)
        elif how == "remove" and terms:
            drop = sorted(terms)[len(value) % len(terms)]
            done = run_sql(
                filled,
                "select 1 from report_term where part_id = :p and kind = :k and value = :v",
                {"p": report_id, "k": drop[0], "v": drop[1]},
            )
            run_sql(
                filled,
                "delete from report_term where part_id = :p and kind = :k and value = :v",
                {"p": report_id, "k": drop[0], "v": drop[1]},
            )
            if done:
                changed.add(report_id)
    try:
        assert named(filled) == (changed, set())
    finally:  # the index as indexing writes it, for the next example
        run_sql(filled, "delete from report_term")
        for report_id, (_, terms) in held.items():
            for kind, value in terms:
                run_sql(
                    filled,
                    "insert into report_term (part_id, kind, value) values (:p, :k, :v)",
                    {"p": report_id, "k": kind, "v": value},
                )
    assert filled.verify(record_event=False, remember=False).ok


def _words_of(catalog: Catalog, report_id: str) -> tuple[int, str]:
    [(num,)] = run_sql(catalog, "select num from report_index where part_id = :p", {"p": report_id})
    report = next(r for i in catalog.record_ids() for r in catalog.record(i).reports if r.id == report_id)
    return num, fts_body(report)


def set_words(catalog: Catalog, report_id: str, words: list[str] | None, now: str | None = None) -> None:
    """Put *words* in the full-text index in place of the report's (none: take it out), as one
    with access to the database can: FTS5's own ``delete`` (given the words the document holds
    *now*, by default the report's) and insert, or PostgreSQL's columns."""
    num, body = _words_of(catalog, report_id)
    if catalog.db.engine.dialect.name == "sqlite":
        held = {"n": num, "b": body if now is None else now}
        run_sql(catalog, "insert into report_fts(report_fts, rowid, body) values ('delete', :n, :b)", held)
        if words is not None:
            run_sql(catalog, "insert into report_fts(rowid, body) values (:n, :b)", {"n": num, "b": " ".join(words)})
    else:
        text = " ".join(words or [])
        run_sql(
            catalog,
            "update report_index set words = :w, lexemes = to_tsvector('simple', :t) where part_id = :p",
            {"w": f" {text} ", "t": text, "p": report_id},
        )


def test_a_report_taken_out_of_the_full_text_index_is_named(filled: Catalog) -> None:
    held = reports(filled)
    hidden = next(i for i in held if "geolocate" in _words_of(filled, i)[1])
    assert [h.report.id for h in filled.search("geolocate")] == [hidden]
    set_words(filled, hidden, None)
    assert filled.search("geolocate") == []  # what the edit does
    report = filled.verify(record_event=False, remember=False)
    [found] = report.findings
    assert isinstance(found, EntryUnreadable) and found.subject == f"record {held[hidden][0]}"
    assert found.reason.startswith(f"report {hidden}: the search index: its words in the full-text index are not")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_exactly_the_reports_whose_words_were_changed_are_named(filled: Catalog, data: st.DataObject) -> None:
    held = sorted(reports(filled))
    originals = {i: _words_of(filled, i)[1].split(" ") for i in held}
    word = st.text(alphabet="abcxyz", min_size=1, max_size=4)
    edits = data.draw(st.dictionaries(st.sampled_from(held), st.lists(word, max_size=6), max_size=3))
    for report_id, words in edits.items():
        set_words(filled, report_id, words)
    changed = {i for i, words in edits.items() if words != originals[i]}
    try:
        assert named(filled) == (changed, set())
    finally:
        for report_id, words in edits.items():
            set_words(filled, report_id, originals[report_id], now=" ".join(words))
    assert filled.verify(record_event=False, remember=False).ok


@pytest.mark.sqlite_only
def test_a_document_taken_out_with_other_words_than_it_holds_is_named(filled: Catalog) -> None:
    # FTS5 keeps the words and drops the document's size: every search meeting it then fails as
    # "malformed", while its words read back as they were.
    report_id = sorted(reports(filled))[0]
    num, _ = _words_of(filled, report_id)
    run_sql(filled, "insert into report_fts(report_fts, rowid, body) values ('delete', :n, 'other words')", {"n": num})
    assert named(filled) == ({report_id}, set())


def test_a_changed_search_time_of_a_dated_report_is_named(catalog: Catalog, tmp_path: Path) -> None:
    # The time --since compares is the report's own (published, else updated) where it has one;
    # a report without one is searched by when it was found, which it does not hold: not compared.
    from .test_ingest import ATOM, RSS

    for name, text in (("monitor.rss", RSS), ("desk.atom", ATOM)):
        (tmp_path / name).write_text(text, encoding="utf-8")
        catalog.ingest(tmp_path / name)
    assert catalog.verify(record_event=False, remember=False).ok
    dated = {r.id: r for _, (_, r) in _every_report(catalog).items() if r.published_at or r.updated_at}
    assert len(dated) == 2
    assert len(catalog.search("", since="2025-05-05")) == 3
    target = sorted(dated)[0]
    run_sql(
        catalog, "update report_index set at = :at where part_id = :p", {"at": dt.datetime(2020, 1, 1), "p": target}
    )
    assert target not in {h.report.id for h in catalog.search("", since="2025-05-05")}  # what the edit does
    disagreeing, unlogged = named(catalog)
    assert (disagreeing, unlogged) == ({target}, set())


def _every_report(catalog: Catalog) -> dict[str, tuple[str, Any]]:
    return {r.id: (i, r) for i in catalog.record_ids() for r in catalog.record(i).reports}


@pytest.mark.sqlite_only
def test_the_same_instant_written_as_other_text_is_named(catalog: Catalog, tmp_path: Path) -> None:
    # SQLite compares the stored text with --since's: "T" for " " sorts after every time that day.
    from .test_ingest import RSS

    (tmp_path / "monitor.rss").write_text(RSS, encoding="utf-8")
    catalog.ingest(tmp_path / "monitor.rss")
    [(part_id, at)] = run_sql(catalog, "select part_id, at from report_index where at like '2025-05-05%'")
    run_sql(catalog, "update report_index set at = :at where part_id = :p", {"at": at.replace(" ", "T"), "p": part_id})
    assert named(catalog) == ({part_id}, set())


def test_a_report_dated_before_the_year_1000_is_no_false_alarm(catalog: Catalog, tmp_path: Path) -> None:
    # SQLite keeps the year as four digits ("0999"); the first version of the check wrote the
    # time it expected with strftime, which does not pad it, and called such a report changed.
    feed = (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom"><title>Desk</title>'
        "<id>urn:desk</id><updated>2025-05-05T00:00:00Z</updated><entry><title>An old chronicle</title>"
        '<id>urn:e1</id><link href="https://example.org/a"/><published>0999-03-01T00:00:00Z</published>'
        "<updated>0999-03-01T00:00:00Z</updated><summary>a scan</summary></entry></feed>"
    )
    (tmp_path / "desk.atom").write_text(feed, encoding="utf-8")
    catalog.ingest(tmp_path / "desk.atom")
    [(_, report)] = _every_report(catalog).values()
    assert report.published_at is not None and report.published_at.year == 999
    assert catalog.verify(record_event=False, remember=False).ok


def test_words_longer_than_fts5_keeps_are_no_false_alarm(catalog: Catalog, tmp_path: Path) -> None:
    # FTS5 keeps a word's first 32 KiB, cut inside a character where it falls there (a review
    # found verify calling such a report changed, and failing on the cut bytes).
    for name, word in (("ascii", "y" * 33_000), ("hangul", "\u3131" * 11_000), ("cyrillic", "ж" * 17_000)):
        text = f"long {word} tail"
        (tmp_path / f"{name}.txt").write_text(f"Feed X (Telegram)\n{text}\n{text}\n", encoding="utf-8")
        catalog.ingest(tmp_path / f"{name}.txt")
    assert catalog.verify(record_event=False, remember=False).ok


def _sqlite(catalog: Catalog) -> sqlite3.Connection:
    return sqlite3.connect(catalog.path / "catalog.db", isolation_level=None)


def _define(db: sqlite3.Connection, table: str, sql: str) -> None:
    db.execute("PRAGMA writable_schema = ON")
    db.execute("update sqlite_schema set sql = ? where name = ?", (sql, table))
    db.execute("PRAGMA writable_schema = OFF")


@pytest.mark.sqlite_only
def test_another_tokenizer_written_into_the_schema_is_named(filled: Catalog) -> None:
    # The stored words stay; the words of a search are split otherwise, and find nothing.
    with contextlib.closing(_sqlite(filled)) as db:
        _define(
            db, "report_fts", "CREATE VIRTUAL TABLE report_fts USING fts5(body, content='', tokenize='porter ascii')"
        )
    report = filled.verify(record_event=False, remember=False)
    [found] = report.findings
    assert isinstance(found, EntryUnreadable) and "is not defined as indexing made it" in found.reason


@pytest.mark.sqlite_only
def test_a_document_of_one_word_spelling_the_listed_words_is_named(filled: Catalog) -> None:
    # A review wrote a single term "post 1:1 2:shelling ..." (a tokenizer that keeps spaces and
    # colons, put in the schema for the write and taken out again): it read back as the very
    # "position:word" list the first version digested.  Each word is now listed with its length.
    report_id = sorted(reports(filled))[0]
    num, body = _words_of(filled, report_id)
    words = body.split(" ")
    with contextlib.closing(_sqlite(filled)) as db:
        db.execute("insert into report_fts(report_fts, rowid, body) values ('delete', ?, ?)", (num, body))
        kept = "CREATE VIRTUAL TABLE report_fts USING fts5(body, content='', tokenize='ascii')"
        _define(db, "report_fts", kept.replace("'ascii'", "\"ascii tokenchars ' :'\""))
    with contextlib.closing(_sqlite(filled)) as db:
        forged = words[0] + "".join(f" {at}:{len(word.encode())}:{word}" for at, word in enumerate(words) if at)
        db.execute("insert into report_fts(rowid, body) values (?, ?)", (num, forged))
        _define(db, "report_fts", kept)
    with contextlib.closing(_sqlite(filled)) as db:
        db.execute("update report_fts_docsize set sz = ? where id = ?", (bytes([len(words)]), num))
    assert named(filled) == ({report_id}, set())


@pytest.mark.sqlite_only
def test_a_second_index_row_for_a_report_is_named(filled: Catalog) -> None:
    # UNIQUE(part_id) taken out of the schema text, then a second row for a report under another
    # number, whose document holds a word the report does not: search lists it for that word.
    report_id = sorted(reports(filled))[0]
    with contextlib.closing(_sqlite(filled)) as db:
        db.execute("PRAGMA writable_schema = ON")
        db.execute("update sqlite_schema set sql = replace(sql, 'UNIQUE (part_id), ', '') where name = 'report_index'")
        db.execute(
            "update sqlite_schema set name = 'ix_report_index_part',"
            " sql = 'CREATE INDEX ix_report_index_part ON report_index (part_id)'"
            " where name = 'sqlite_autoindex_report_index_1'"
        )
        db.execute("PRAGMA writable_schema = OFF")
    with contextlib.closing(_sqlite(filled)) as db:
        db.execute(
            "insert into report_index (num, part_id, at) select -1, part_id, at from report_index where part_id = ?",
            (report_id,),
        )
        db.execute("insert into report_fts(rowid, body) values (-1, 'journalist massacre')")
    assert report_id in {h.report.id for h in filled.search("massacre")}  # what the edit does
    disagreeing, unlogged = named(filled)
    assert f"a second report_index row of report {report_id}" in unlogged and report_id in disagreeing


def test_a_report_with_no_word_twice_is_no_false_alarm(catalog: Catalog, tmp_path: Path) -> None:
    # PostgreSQL keeps "no repeated word" as JSON null, which the first version of the check took
    # for something other than SQL's NULL (found by the CI run on PostgreSQL).
    feed = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>P</title>'
        "<item><title>New berths at the quay</title><guid>g</guid></item></channel></rss>"
    )
    (tmp_path / "feed.rss").write_text(feed, encoding="utf-8")
    catalog.ingest(tmp_path / "feed.rss")
    assert catalog.verify(record_event=False, remember=False).ok
