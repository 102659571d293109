"""Catalog format 1: records, artifacts, acquisitions, tags, record parts, custody log.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "record",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.JSON, nullable=False),
        sa.Column("title", sa.String, nullable=True),
    )
    op.create_index("ix_record_created_at", "record", ["created_at"])
    op.create_table(
        "artifact",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("media_type", sa.String, nullable=False),
        sa.Column("md5", sa.String(32), nullable=True),
        sa.Column("sha1", sa.String(40), nullable=True),
        sa.Column("sha512", sa.String(128), nullable=True),
        sa.Column("blake2b", sa.String(128), nullable=True),
        sa.Column("extracted", sa.JSON, nullable=True),
        sa.Column("stored_at", _TS, nullable=False),
    )
    op.create_index("ix_artifact_md5", "artifact", ["md5"])
    op.create_index("ix_artifact_sha1", "artifact", ["sha1"])
    op.create_table(
        "custody_event",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("actor", sa.JSON, nullable=False),
        sa.Column("action", sa.String, nullable=False),
        sa.Column("subject", sa.String, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("hash"),
    )
    op.create_index("ix_custody_event_action", "custody_event", ["action"])
    op.create_index("ix_custody_event_subject", "custody_event", ["subject"])
    op.create_table(
        "record_artifact",
        sa.Column("record_id", sa.String(36), sa.ForeignKey("record.id"), primary_key=True),
        sa.Column("sha256", sa.String(64), sa.ForeignKey("artifact.sha256"), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("role", sa.String, nullable=False),
        sa.Column("derived_from", sa.String(64), nullable=True),
        sa.Column("derivation", sa.String, nullable=True),
    )
    op.create_index("ix_record_artifact_sha256", "record_artifact", ["sha256"])
    op.create_table(
        "acquisition",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("record_id", sa.String(36), sa.ForeignKey("record.id"), nullable=False),
        sa.Column("artifact_sha256", sa.String(64), sa.ForeignKey("artifact.sha256"), nullable=True),
        sa.Column("method", sa.String, nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("custody_seq", sa.Integer, sa.ForeignKey("custody_event.seq"), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_index("ix_acquisition_record_id", "acquisition", ["record_id"])
    op.create_index("ix_acquisition_artifact_sha256", "acquisition", ["artifact_sha256"])
    op.create_table(
        "record_tag",
        sa.Column("record_id", sa.String(36), sa.ForeignKey("record.id"), primary_key=True),
        sa.Column("tag", sa.String, primary_key=True),
    )
    op.create_index("ix_record_tag_tag", "record_tag", ["tag"])
    op.create_table(
        "record_part",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("record_id", sa.String(36), sa.ForeignKey("record.id"), nullable=False),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("custody_seq", sa.Integer, sa.ForeignKey("custody_event.seq"), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_index("ix_record_part_record_id", "record_part", ["record_id"])
    op.create_index("ix_record_part_kind", "record_part", ["kind"])


def downgrade() -> None:
    for table in ("record_part", "record_tag", "acquisition", "record_artifact", "custody_event", "artifact", "record"):
        op.drop_table(table)
