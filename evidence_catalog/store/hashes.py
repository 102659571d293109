"""The perceptual hashes of analysed images and videos, one row per hash (``perceptual_hash``).

An analysis document (:class:`~evidence_catalog.analysis.MediaAnalysis`, stored as an artifact)
is the evidence of the hashes it holds; these rows index them, so that near duplicates are found
without reading every analysis.  They are written once, in the transaction that stores the
analysis (:meth:`PerceptualHashes.add_hashes`), and never changed or removed: ``id`` grows in the
order they were written, and since every write transaction holds the catalog's one write lock,
a row committed later has a higher id -- an index kept in memory catches up by reading the rows
after the last id it saw (:meth:`PerceptualHashes.hash_rows_after`).

The database only stores and hands rows back in id order; matching and ranking are done in one
place, :mod:`evidence_catalog.similarity`, so that SQLite and PostgreSQL give the same answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlmodel import Session

from evidence_catalog.analysis import PerceptualHash
from evidence_catalog.store.engine import Connections, execute, table_of
from evidence_catalog.store.inserts import insert_many
from evidence_catalog.store.tables import PerceptualHashRow, RecordArtifactRow

#: Rows :meth:`PerceptualHashes.hash_rows_after` hands back at most, when not told.
ROWS_PER_BATCH = 10_000


class StoredHash(NamedTuple):
    """One row of ``perceptual_hash``, as stored."""

    id: int
    record_id: str
    #: The analysed image or video.
    artifact_sha256: str
    #: The analysis document that holds the hash.
    analysis_sha256: str
    #: Milliseconds from the start of a video to the frame hashed; ``None`` for an image.
    offset_ms: int | None
    quality: int
    algorithm: str
    #: The hash's bytes (32 for PDQ).
    hash: bytes

    def perceptual_hash(self) -> PerceptualHash:
        """The hash as the analysis document holds it (its offset in seconds)."""
        return PerceptualHash(
            value=self.hash.hex(),
            quality=self.quality,
            offset_s=None if self.offset_ms is None else self.offset_ms / 1000,
            algorithm=self.algorithm,
        )


def offset_ms(offset_s: float | None) -> int | None:
    """A frame's offset in whole milliseconds, as stored (``None`` for an image)."""
    return None if offset_s is None else round(offset_s * 1000)


def _columns(table: sa.Table) -> list[sa.Column[object]]:
    return [
        table.c.id,
        table.c.record_id,
        table.c.artifact_sha256,
        table.c.analysis_sha256,
        table.c.offset_ms,
        table.c.quality,
        table.c.algorithm,
        table.c.hash,
    ]


def _stored(rows: Sequence[Sequence[Any]]) -> list[StoredHash]:
    # PostgreSQL hands a bytea back as a memoryview: bytes, as SQLite gives them.
    return [StoredHash(row[0], row[1], row[2], row[3], row[4], row[5], row[6], bytes(row[7])) for row in rows]


class PerceptualHashes(Connections):
    """The perceptual hash rows (part of :class:`~evidence_catalog.store.database.CatalogDatabase`)."""

    def add_hashes(
        self,
        session: Session,
        record_id: str,
        artifact_sha256: str,
        analysis_sha256: str,
        hashes: Sequence[PerceptualHash],
    ) -> int:
        """Append the *hashes* of the analysis *analysis_sha256* of the artifact
        *artifact_sha256* on the record *record_id*, in their order, in the write transaction
        *session*; how many rows were written.

        Every hash is kept, the unusable too (their quality says so; they are never matched).
        Writing the hashes of an analysis the record already has rows of writes nothing (0):
        an analysis made again gives the same document, and its hashes are not indexed twice.
        """
        table = table_of(PerceptualHashRow)
        known = execute(
            session,
            sa.select(table.c.id)
            .where(
                table.c.record_id == record_id,
                table.c.artifact_sha256 == artifact_sha256,
                table.c.analysis_sha256 == analysis_sha256,
            )
            .limit(1),
        ).first()
        if known is not None or not hashes:
            return 0
        rows = [
            {
                "record_id": record_id,
                "artifact_sha256": artifact_sha256,
                "analysis_sha256": analysis_sha256,
                "offset_ms": offset_ms(h.offset_s),
                "quality": h.quality,
                "algorithm": h.algorithm,
                "hash": bytes.fromhex(h.value),
            }
            for h in hashes
        ]
        insert_many(session, table, rows)
        return len(rows)

    def hash_rows_after(self, session: Session, after: int = 0, *, limit: int = ROWS_PER_BATCH) -> list[StoredHash]:
        """At most *limit* rows with an id above *after*, in id order (the order written)."""
        table = table_of(PerceptualHashRow)
        query = sa.select(*_columns(table)).where(table.c.id > after).order_by(table.c.id).limit(limit)
        return _stored(execute(session, query).all())

    def hashes_of_record(self, session: Session, record_id: str) -> list[StoredHash]:
        """Every hash row of the record *record_id*, in id order."""
        table = table_of(PerceptualHashRow)
        query = sa.select(*_columns(table)).where(table.c.record_id == record_id).order_by(table.c.id)
        return _stored(execute(session, query).all())

    def hashes_held_by(self, session: Session, record_id: str) -> list[StoredHash]:
        """Every hash row of the artifacts the record *record_id* holds, whichever record their
        analysis was stored on, in id order."""
        table, held = table_of(PerceptualHashRow), table_of(RecordArtifactRow)
        query = (
            sa.select(*_columns(table))
            .join(held, held.c.sha256 == table.c.artifact_sha256)
            .where(held.c.record_id == record_id)
            .order_by(table.c.id)
        )
        return _stored(execute(session, query).all())

    def hashes_of_artifact(self, session: Session, sha256: str) -> list[StoredHash]:
        """Every hash row of the analysed artifact *sha256* (on any record), in id order."""
        table = table_of(PerceptualHashRow)
        query = sa.select(*_columns(table)).where(table.c.artifact_sha256 == sha256).order_by(table.c.id)
        return _stored(execute(session, query).all())

    def hash_count(self, session: Session, *, min_quality: int = 0) -> int:
        """How many hash rows there are (of at least *min_quality*)."""
        table = table_of(PerceptualHashRow)
        query = sa.select(sa.func.count()).select_from(table)
        if min_quality:
            query = query.where(table.c.quality >= min_quality)
        return int(execute(session, query).scalar_one())
