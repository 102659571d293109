"""Database schema revision 0006: full-text search without SQLite's FTS5.

``report_index.words`` holds a report's words as the search sees them (split, case and
diacritics folded, one space between them and at both ends), so that a database without FTS5
(PostgreSQL) finds the same reports for the same words: each searched word must appear as that
run of words.  It is filled on such databases only (SQLite searches its FTS5 table and leaves
the column empty).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("report_index") as batch:
        batch.add_column(sa.Column("words", sa.Text, nullable=True))
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        return
    from evidence_catalog.store.database import fill_report_words

    fill_report_words(bind)


def downgrade() -> None:
    with op.batch_alter_table("report_index") as batch:
        batch.drop_column("words")
