"""Database schema revision 0009: PostgreSQL's own full-text search.

Until now PostgreSQL searched reports with ``LIKE`` over ``report_index.words``, a scan of every
report, and listed hits newest first where SQLite ranks them.  From this revision
``report_index.lexemes`` holds each report's words as a ``tsvector`` -- the words
:func:`evidence_catalog.store.search.word_tokens` makes, given to PostgreSQL as they are (no
parser, no stemming, no stop words), without positions -- with a GIN index over it; and
``word_count``, ``word_total`` (the running total of words, in the order reports were indexed)
and ``word_repeats`` (how often each repeated word occurs) let PostgreSQL rank hits as SQLite's
FTS5 ranks them (bm25).  Phrases of several words are still checked in ``words``.  The columns
are filled from the stored reports; on SQLite they stay empty (its FTS5 table does all this).

Downgrading drops the index and the columns.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR

    with op.batch_alter_table("report_index") as batch:
        batch.add_column(sa.Column("lexemes", sa.Text().with_variant(TSVECTOR(), "postgresql"), nullable=True))
        batch.add_column(sa.Column("word_count", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("word_total", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("word_repeats", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=True))
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from evidence_catalog.store.search import PG_INDEX_CREATE, fill_report_lexemes

    fill_report_lexemes(bind)
    op.execute(PG_INDEX_CREATE)  # after the fill: one build instead of an update per row


def downgrade() -> None:
    from evidence_catalog.store.search import PG_LEXEMES_INDEX

    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {PG_LEXEMES_INDEX}")
    with op.batch_alter_table("report_index") as batch:
        batch.drop_column("word_repeats")
        batch.drop_column("word_total")
        batch.drop_column("word_count")
        batch.drop_column("lexemes")
