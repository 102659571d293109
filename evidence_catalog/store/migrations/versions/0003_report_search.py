"""Database schema revision 0003: the report search index.

* ``report_index`` (one row per report: the time ``--since`` compares) and ``report_term``
  (mentions, hashtags, feed and author, normalised) for exact filters;
* on SQLite, the FTS5 table ``report_fts`` over each report's words.

Reports ingested before this revision are indexed here from their stored JSON; the reports
themselves are not changed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_index",
        sa.Column("num", sa.Integer, primary_key=True),
        sa.Column("part_id", sa.String(36), sa.ForeignKey("record_part.id"), nullable=False, unique=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_report_index_at", "report_index", ["at"])
    op.create_table(
        "report_term",
        sa.Column("part_id", sa.String(36), sa.ForeignKey("record_part.id"), primary_key=True),
        sa.Column("kind", sa.String, primary_key=True),
        sa.Column("value", sa.String, primary_key=True),
    )
    op.create_index("ix_report_term_kind_value", "report_term", ["kind", "value"])
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute(FTS_CREATE_0003)
    _index_existing_reports(bind)


#: The FTS5 table as this revision made it (0007 makes it anew, with words made in Python).
FTS_CREATE_0003 = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS report_fts USING fts5"
    "(body, content='', tokenize='unicode61 remove_diacritics 2')"
)


def _index_existing_reports(bind: sa.Connection) -> None:
    from evidence_catalog import model
    from evidence_catalog.serialize import structure
    from evidence_catalog.store.database import aware, index_rows

    part = sa.table(
        "record_part",
        sa.column("id", sa.String),
        sa.column("kind", sa.String),
        sa.column("custody_seq", sa.Integer),
        sa.column("body", sa.JSON),
    )
    event = sa.table("custody_event", sa.column("seq", sa.Integer), sa.column("at", sa.DateTime(timezone=True)))
    rows = bind.execute(
        sa.select(part.c.id, part.c.body, event.c.at)
        .join(event, event.c.seq == part.c.custody_seq)
        .where(part.c.kind == "report")
        .order_by(part.c.custody_seq, part.c.id)
    ).all()
    reports = [(part_id, structure(body, model.Report), aware(at)) for part_id, body, at in rows]
    if reports:
        index_rows(bind, reports, with_words=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS report_fts")
    op.drop_index("ix_report_term_kind_value", "report_term")
    op.drop_table("report_term")
    op.drop_index("ix_report_index_at", "report_index")
    op.drop_table("report_index")
