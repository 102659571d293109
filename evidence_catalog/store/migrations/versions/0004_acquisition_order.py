"""Database schema revision 0004: the order of a record's acquisitions survives an import.

Acquisitions are listed by the custody event that logged them.  An imported record's
acquisitions are all logged by one event (``record.imported``), so ``acquisition.position``
keeps the order they had in the record that was imported.  Existing rows get 0, which leaves
their order as it was.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("acquisition") as batch:
        batch.add_column(sa.Column("position", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("acquisition") as batch:
        batch.drop_column("position")
