"""Database schema revision 0011: the perceptual hashes of analysed images and videos.

``perceptual_hash`` holds, one row per hash, the PDQ hashes that media analysis derives (an
image's one, a video's one per sampled frame, with its offset in milliseconds), with the record,
the analysed artifact, the analysis document that holds the hash and the hash's quality.  The
analysis documents are the evidence; these rows are an index of them, appended as analyses are
stored, from which ``similar`` finds near duplicates.  A catalog made before this revision has
no analyses, so the table starts empty.

Downgrading drops the table.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "perceptual_hash",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("record_id", sa.String(36), sa.ForeignKey("record.id"), nullable=False),
        sa.Column("artifact_sha256", sa.String(64), sa.ForeignKey("artifact.sha256"), nullable=False),
        sa.Column("analysis_sha256", sa.String(64), sa.ForeignKey("artifact.sha256"), nullable=False),
        sa.Column("offset_ms", sa.BigInteger(), nullable=True),
        sa.Column("quality", sa.Integer(), nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_perceptual_hash_record_id", "perceptual_hash", ["record_id"])
    op.create_index("ix_perceptual_hash_artifact_sha256", "perceptual_hash", ["artifact_sha256"])


def downgrade() -> None:
    op.drop_index("ix_perceptual_hash_artifact_sha256", "perceptual_hash")
    op.drop_index("ix_perceptual_hash_record_id", "perceptual_hash")
    op.drop_table("perceptual_hash")
