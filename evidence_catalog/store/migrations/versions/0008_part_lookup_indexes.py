"""Database schema revision 0008: the lookups of record parts each have an index of their own.

``record_part`` had one index per column (``record_id``, ``kind``, ``identity``).  The duplicate
check of every ingested report asks for ``kind = 'report' AND identity = ?``; without
statistics SQLite chose either index, depending on the order they were made in, and with the
``kind`` index each check read every report so far: an ingest got slower with every item.
From this revision:

* ``ix_record_part_kind_identity`` (``kind``, ``identity``) answers the duplicate check, and
  every lookup of parts by kind, with both columns;
* ``ix_record_part_record_id_kind`` (``record_id``, ``kind``, ``position``) answers the parts of
  a record, and of a record by kind in their order (a note, claim or link counts the record's
  parts of its kind).

They replace the three one-column indexes, which they make redundant.  Rows are not changed.
Downgrading makes the three indexes again.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_record_part_kind_identity", "record_part", ["kind", "identity"])
    op.create_index("ix_record_part_record_id_kind", "record_part", ["record_id", "kind", "position"])
    op.drop_index("ix_record_part_identity", "record_part")
    op.drop_index("ix_record_part_kind", "record_part")
    op.drop_index("ix_record_part_record_id", "record_part")


def downgrade() -> None:
    op.create_index("ix_record_part_record_id", "record_part", ["record_id"])
    op.create_index("ix_record_part_kind", "record_part", ["kind"])
    op.create_index("ix_record_part_identity", "record_part", ["identity"])
    op.drop_index("ix_record_part_record_id_kind", "record_part")
    op.drop_index("ix_record_part_kind_identity", "record_part")
