"""An ingest stays linear in its items: the queries it runs do not grow with the catalog, its
batched lookups find what one lookup per item found, and its faster word splitting makes the
words the search rule makes.

The query tests run the statements an ingest really runs (captured while it runs), on a
catalog made by ``init`` and on one made by running every migration (their indexes are made in
another order), with and without the statistics of ``ANALYZE``, and with a one-column index on
``kind`` made after all the others (what once sent the duplicate check through every report).
On SQLite each statement's work is counted in virtual machine instructions, on a catalog and
on the same catalog with ten times the reports: a statement that reads every report (a scan, or
a search of an index on a column that all reports share) does ten times the work.  On
PostgreSQL, where the planner rightly reads small tables whole, each statement's plan must use
an index for every table it reads once sequential scans are priced out.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import sqlalchemy as sa
from hypothesis import example, given
from hypothesis import strategies as st

from evidence_catalog import Catalog
from evidence_catalog.operations import ingesting
from evidence_catalog.store import bmp_classes, words
from evidence_catalog.store import engine as store_engine
from evidence_catalog.store.search import _indexed_tokens, word_tokens
from tests.conftest import catalog_database_url

OPERATOR = "Analyst <analyst@example.org>"


def write_digest(path: Path, first: int, count: int) -> Path:
    """A digest of items *first* to *first + count - 1* (the same number, the same item), in
    feeds of 50; each item printed twice, as the format has it."""
    lines: list[str] = []
    for i in range(first, first + count):
        if i % 50 == 0 or i == first:
            lines.append(f"Feed {i // 50:04d} (Telegram)")
        text = f"Post {i}: the ledger lists {i % 17} ships at the #EastQuay yard, said @port_{i % 5}"
        lines += [text, text]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- the statements an ingest runs --------------------------------------------------------------


@contextlib.contextmanager
def statements_of(catalog: Catalog) -> Iterator[list[tuple[str, Any]]]:
    """The ``SELECT`` statements run on *catalog*'s database inside the block, with their
    parameters, each different statement once."""
    seen: dict[str, Any] = {}

    def listen(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool) -> None:
        if not many and statement.lstrip().upper().startswith("SELECT"):
            seen.setdefault(statement, parameters)

    found: list[tuple[str, Any]] = []
    sa.event.listen(catalog.db.engine, "before_cursor_execute", listen)
    try:
        yield found
    finally:
        sa.event.remove(catalog.db.engine, "before_cursor_execute", listen)
    found.extend(seen.items())


def vm_steps(database: Path, statement: str, parameters: Any) -> int:
    """How many SQLite virtual machine instructions *statement* takes to run to its end."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    try:
        connection.set_progress_handler(count, 1)
        connection.execute(statement, parameters).fetchall()
    finally:
        connection.close()
    return steps


def made_by_migrations(connection: sa.Connection) -> None:
    """What ``init`` makes in one step, made as an old catalog got it: every migration in turn."""
    from alembic import command

    command.upgrade(store_engine._alembic_config(connection), "head")


SETUPS = {
    "init": (False, False, False),
    "migrations": (True, False, False),
    "init, ANALYZE": (False, True, False),
    "migrations, ANALYZE": (True, True, False),
    "a kind index made last": (False, False, True),
    "a kind index made last, ANALYZE": (True, True, True),
}


@pytest.fixture(params=list(SETUPS))
def setup(request: pytest.FixtureRequest) -> tuple[bool, bool, bool]:
    return SETUPS[request.param]


def prepare(catalog: Catalog, analyze: bool, kind_index: bool) -> None:
    with catalog.db.engine.begin() as connection:
        if kind_index:  # made after every other index: SQLite without statistics favoured it
            connection.exec_driver_sql("CREATE INDEX ix_late_kind ON record_part (kind)")
        if analyze:
            connection.exec_driver_sql("ANALYZE")


def test_the_queries_of_an_ingest_do_not_grow_with_the_catalog(tmp_path: Path, setup: tuple[bool, bool, bool]) -> None:
    migrations, analyze, kind_index = setup
    schema = mock.patch.object(store_engine, "_create_head_schema", made_by_migrations) if migrations else None
    with contextlib.ExitStack() as stack:
        if schema is not None:
            stack.enter_context(schema)
        catalog = stack.enter_context(Catalog.init(tmp_path / "catalog", operator=OPERATOR))
    with catalog:
        assert catalog.ingest(write_digest(tmp_path / "first.txt", 0, 60)).reports_added == 60
        prepare(catalog, analyze, kind_index)
        # 40 new reports and 20 already catalogued: every lookup an ingest makes, found or not.
        with statements_of(catalog) as statements:
            again = catalog.ingest(write_digest(tmp_path / "second.txt", 40, 60))
        assert (again.reports_added, again.reports_present) == (40, 20)
        if catalog.db.engine.dialect.name == "postgresql":
            if kind_index:  # PostgreSQL picks by cost and statistics, not by the order indexes were made in
                pytest.skip("only SQLite picks among indexes by the order they were made in")
            assert catalog.ingest(write_digest(tmp_path / "more.txt", 1000, 900)).reports_added == 900
            check_plans_on_postgresql(catalog, statements)
            return
        database = tmp_path / "catalog" / "catalog.db"
        before = {statement: vm_steps(database, statement, parameters) for statement, parameters in statements}
        assert catalog.ingest(write_digest(tmp_path / "more.txt", 1000, 900)).reports_added == 900
        prepare(catalog, analyze, False)
        after = {statement: vm_steps(database, statement, parameters) for statement, parameters in statements}
    duplicate_checks = [s for s in statements if "record_part.identity IN" in s[0]]
    assert duplicate_checks, "the ingest looked up no report by its identity"
    grown = {
        " ".join(statement.split())[:160]: (before[statement], after[statement])
        for statement, _ in statements
        if after[statement] > 2 * before[statement] + 50
    }
    assert grown == {}, "statements whose work grew with ten times the reports (instructions before, after)"
    for statement, parameters in duplicate_checks:
        with sqlite3.connect(database) as connection:
            plan = connection.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
        assert [row[3] for row in plan] == [
            "SEARCH record_part USING INDEX ix_record_part_kind_identity (kind=? AND identity=?)"
        ]


def check_plans_on_postgresql(catalog: Catalog, statements: list[tuple[str, Any]]) -> None:
    """Every statement's plan reads every table through an index once sequential scans are
    priced out (a table no index serves is still read whole: that is what fails), with the
    statistics autovacuum keeps; the duplicate check finds reports by their identity in the
    index (not by reading every report's and filtering).  On a catalog of a thousand reports:
    on a few dozen, reading an index whole is cheaper, and rightly chosen."""
    url = catalog_database_url(catalog)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SET enable_seqscan = off")
            connection.exec_driver_sql("ANALYZE")
            for statement, parameters in statements:
                [[plan]] = connection.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).all()
                nodes = list(plan_nodes(plan[0]["Plan"] if isinstance(plan, list) else json.loads(plan)[0]["Plan"]))
                scans = [n for n in nodes if n["Node Type"] == "Seq Scan"]
                assert scans == [], f"{statement}: reads {[n['Relation Name'] for n in scans]} whole"
                if "record_part.identity IN" in statement:  # the duplicate check: by identity
                    conditions = [n.get("Index Cond", "") for n in nodes]
                    assert any("identity" in c for c in conditions), (statement, conditions)
    finally:
        engine.dispose()


def plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from plan_nodes(child)


# -- batched lookups find what one lookup per report found ------------------------------------


def test_repeats_are_found_across_batches_within_the_input_and_in_the_catalog(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingesting, "INGEST_CHUNK", 7)  # lookups and inserts in many small batches
    first = catalog.ingest(write_digest(tmp_path / "first.txt", 0, 20))
    assert (first.reports_added, first.reports_present) == (20, 0)
    # Items 10-19 are catalogued; 20-29 are new, and repeated later in the same input.
    path = tmp_path / "second.txt"
    write_digest(path, 10, 20)
    path.write_text(path.read_text(encoding="utf-8") * 2, encoding="utf-8")
    second = catalog.ingest(path)
    assert (second.items, second.reports_added, second.reports_present) == (40, 10, 30)
    identities: dict[str, list[str]] = {}
    for record in catalog.records():
        for report in record.reports:
            identities.setdefault(report.identity or "", []).append(record.id)
    assert len(identities) == 30 and all(len(ids) == 1 for ids in identities.values())
    assert catalog.verify().ok


def test_the_batched_lookup_answers_as_one_lookup_per_identity(catalog: Catalog, tmp_path: Path) -> None:
    catalog.ingest(write_digest(tmp_path / "first.txt", 0, 30))
    with catalog.db.read() as session:
        identities = [report.identity or "" for _, report in catalog.db.reports(session)]
        asked = [*identities[::3], "sha256:" + "0" * 64, "twitter:1", *identities[:2]]
        one_by_one = {i: catalog.db.record_with_report(session, i) for i in asked}
        together = catalog.db.records_with_reports(session, asked)
    assert together == {i: r for i, r in one_by_one.items() if r is not None}
    assert len(together) == len(set(identities[::3]) | set(identities[:2]))


# -- the words an ingest indexes ------------------------------------------------------------


@given(st.text(st.characters(blacklist_categories=()), max_size=40))
@example("Post 6: спутниковые снимки — “maintenance” café ёлка Straße #Trump-#Putin")
@example("مَدرسة עִברִית ﬁre ＢＵＣＨＡ x\u0301 \u0301\u0301 ¯ a\u00ad b ǅ İ ΐ ﬃ ᾈ 😀 𝐀𝐁 \ue000")
def test_the_words_indexed_for_a_report_are_the_words_search_makes(text: str) -> None:
    assert _indexed_tokens(text) == word_tokens(text)


def test_the_word_patterns_hold_every_character_of_the_plane_as_its_category_says() -> None:
    """The classes are written beforehand (``store/bmp_classes.py``); whichever way they were
    had, each of the 65,536 characters is in them exactly as ``unicodedata`` puts it."""
    words._BMP_PATTERNS.clear()  # made again here, from the written classes where they apply
    runs, based, marks = words._bmp_word_patterns()
    for code in range(0x10000):
        char = chr(code)
        category = unicodedata.category(char)
        base = category[0] in "LN" or category == "Co"
        mark = category[0] == "M"
        assert bool(runs.fullmatch(char)) == (base or mark), (hex(code), category)
        assert bool(based.fullmatch(char)) == base, (hex(code), category)
        assert bool(marks.fullmatch(char)) == mark, (hex(code), category)


def test_the_written_classes_are_those_of_this_pythons_unicode() -> None:
    if unicodedata.unidata_version != bmp_classes.UNIDATA_VERSION:
        pytest.skip(f"classes written for Unicode {bmp_classes.UNIDATA_VERSION}, this Python has another")
    written = Path(bmp_classes.__file__).read_text(encoding="utf-8")
    assert written == words.bmp_classes_module(), (
        "write it again: python -c 'from evidence_catalog.store import words; "
        'print(words.bmp_classes_module(), end="")\' > evidence_catalog/store/bmp_classes.py'
    )


def test_other_unicode_makes_its_classes_from_unicodedata(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bmp_classes, "UNIDATA_VERSION", "0.0.0")
    monkeypatch.setattr(bmp_classes, "WORD", "a")  # wrong, and not to be used
    monkeypatch.setattr(words, "_BMP_PATTERNS", [])
    runs, _, _ = words._bmp_word_patterns()
    assert runs.fullmatch("ёлка") and not runs.fullmatch("a b")
