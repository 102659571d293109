"""Database schema revision 0010: how many reports hold each word, kept on PostgreSQL.

Ranking a search (bm25) needs, for each searched word, the number of reports holding it.
SQLite's FTS5 table keeps that number; PostgreSQL counted it at every search, a visit of each
report holding the word (a tenth of a second for a word in most of 100,000 reports).  From this
revision ``report_lexeme`` keeps, for each lexeme of ``report_index.lexemes``, the number of
reports holding it, added to as reports are indexed; it is filled here from the index.  On
SQLite the table is made and stays empty.

Downgrading drops the table.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_lexeme",
        sa.Column("lexeme", sa.String(), nullable=False),
        sa.Column("reports", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("lexeme"),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        from evidence_catalog.store.search import fill_lexeme_counts

        fill_lexeme_counts(bind)


def downgrade() -> None:
    op.drop_table("report_lexeme")
