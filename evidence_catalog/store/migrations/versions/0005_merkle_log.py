"""Database schema revision 0005: the custody log becomes an RFC 6962 Merkle tree with signed
checkpoints.

* ``merkle_node`` holds every perfect subtree of the tree over the custody events (leaf *i* is
  SHA-256(0x00 || RFC 8785 JSON of event ``seq = i + 1``)); it is filled here from the events
  already in the log, in their order -- no event is changed, removed or reordered, and the v1
  hash links (``prev_hash``/``hash``) stay as they are and are still checked.
* ``checkpoint`` holds the signed checkpoints (C2SP signed notes) of the log.
* ``timestamp_token`` holds RFC 3161 time-stamp requests (queued while offline) and tokens.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "merkle_node",
        sa.Column("level", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "checkpoint",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tree_size", sa.Integer, nullable=False),
        sa.Column("root_hash", sa.String(64), nullable=False),
        sa.Column("note", sa.String, nullable=False),
        sa.Column("signed", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_checkpoint_tree_size", "checkpoint", ["tree_size"])
    op.create_table(
        "timestamp_token",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subject_kind", sa.String, nullable=False),
        sa.Column("subject", sa.String, nullable=False),
        sa.Column("data_sha256", sa.String(64), nullable=False),
        sa.Column("tsa_url", sa.String, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("token", sa.String, nullable=True),
        sa.Column("gen_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("error", sa.String, nullable=True),
    )
    op.create_index("ix_timestamp_token_status", "timestamp_token", ["status"])
    from evidence_catalog.store.database import build_merkle_nodes

    build_merkle_nodes(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_timestamp_token_status", "timestamp_token")
    op.drop_table("timestamp_token")
    op.drop_index("ix_checkpoint_tree_size", "checkpoint")
    op.drop_table("checkpoint")
    op.drop_table("merkle_node")
