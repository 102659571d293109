"""Database schema revision 0002: captures (several sources of a derived artifact, versions,
lookup of earlier captures).  The catalog directory layout (``format_version`` in
``catalog.toml``) is unchanged.

* ``record_artifact.derived_from`` becomes a JSON list of SHA-256s (a merged video has two
  sources); no catalog of format 1 has a derived artifact, so every value is NULL and stays so.
* ``record_artifact.version_of`` names the earlier version of a re-captured item.
* ``acquisition.requested_url``, ``platform_key`` and ``outcome`` let an earlier capture of the
  same item be found (no format-1 catalog has a capture: NULL and ``succeeded`` are right).
* ``record_part.identity`` finds a report ingested before (no format-1 catalog has a report).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("record_artifact") as batch:
        batch.alter_column(
            "derived_from",
            type_=sa.JSON,
            existing_type=sa.String(64),
            existing_nullable=True,
            # PostgreSQL converts in place: a single SHA-256 becomes a one-element list.
            postgresql_using="CASE WHEN derived_from IS NULL THEN NULL ELSE json_build_array(derived_from) END",
        )
        batch.add_column(sa.Column("version_of", sa.String(64), nullable=True))
    with op.batch_alter_table("acquisition") as batch:
        batch.add_column(sa.Column("requested_url", sa.String, nullable=True))
        batch.add_column(sa.Column("platform_key", sa.String, nullable=True))
        batch.add_column(sa.Column("outcome", sa.String, nullable=False, server_default="succeeded"))
    op.create_index("ix_acquisition_requested_url", "acquisition", ["requested_url"])
    op.create_index("ix_acquisition_platform_key", "acquisition", ["platform_key"])
    with op.batch_alter_table("record_part") as batch:
        batch.add_column(sa.Column("identity", sa.String, nullable=True))
    op.create_index("ix_record_part_identity", "record_part", ["identity"])


def downgrade() -> None:
    op.drop_index("ix_record_part_identity", "record_part")
    with op.batch_alter_table("record_part") as batch:
        batch.drop_column("identity")
    op.drop_index("ix_acquisition_platform_key", "acquisition")
    op.drop_index("ix_acquisition_requested_url", "acquisition")
    with op.batch_alter_table("acquisition") as batch:
        batch.drop_column("outcome")
        batch.drop_column("platform_key")
        batch.drop_column("requested_url")
    with op.batch_alter_table("record_artifact") as batch:
        batch.drop_column("version_of")
        batch.alter_column(
            "derived_from",
            type_=sa.String(64),
            existing_type=sa.JSON,
            existing_nullable=True,
            postgresql_using="derived_from->>0",
        )
