"""Database schema revision 0007: one rule for what a searched word is, on every database.

Until now SQLite's FTS5 split and folded words itself (``unicode61``) while PostgreSQL used
Python's rules in ``report_index.words``, and the two disagreed on some scripts (Cyrillic ``ё``,
Thai and Devanagari marks, ``ß``).  From this revision the words are made in Python
(:func:`evidence_catalog.store.search.word_tokens`) for both: SQLite's FTS5 table is made anew
with the ``ascii`` tokenizer, which only splits the given words at their spaces, and filled
from the stored reports; on PostgreSQL ``report_index.words`` is filled again.  The reports
themselves are not changed.

Downgrading gives SQLite its 0003 table back (filled from the reports as 0003 filled it); on
PostgreSQL the words stay as this revision made them (the 0006 code searches them all the same).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from evidence_catalog.store.database import fill_fts, fill_report_words
    from evidence_catalog.store.search import FTS_CREATE, FTS_TABLE

    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
        op.execute(FTS_CREATE)
        fill_fts(bind)
    else:
        fill_report_words(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    import sqlalchemy as sa

    from evidence_catalog import model
    from evidence_catalog.serialize import structure
    from evidence_catalog.store.search import FTS_TABLE, report_words

    op.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
    op.execute(
        f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(body, content='', tokenize='unicode61 remove_diacritics 2')"
    )
    rows = bind.exec_driver_sql(
        "SELECT i.num, p.body FROM report_index i JOIN record_part p ON p.id = i.part_id ORDER BY i.num"
    )
    for chunk in iter(lambda: rows.fetchmany(2000), []):
        bind.execute(
            sa.text(f"INSERT INTO {FTS_TABLE}(rowid, body) VALUES (:num, :body)"),
            [{"num": num, "body": report_words(structure(_parsed(body), model.Report))} for num, body in chunk],
        )


def _parsed(body: object) -> object:
    import json

    return json.loads(body) if isinstance(body, str) else body
