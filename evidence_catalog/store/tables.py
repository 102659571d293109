"""SQLModel tables of the catalog database.

The database is an index over the blobs and the custody log: each part of a record is a row with
the columns that queries need plus, where the part is rich, its JSON body as made by the one
converter in :mod:`evidence_catalog.serialize`.  Changes go through Alembic migrations in
``migrations/``; a test checks that these tables and the migrations agree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

# PostgreSQL's own column types, named without importing its dialect where it is not used (the
# import costs every command's start-up a tenth of a second).


class TextSearchVector(sa.types.TypeDecorator[str]):
    """PostgreSQL's ``tsvector``; text elsewhere."""

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import TSVECTOR

            return dialect.type_descriptor(TSVECTOR())
        return dialect.type_descriptor(sa.Text())


class BinaryJSON(sa.types.TypeDecorator[Any]):
    """PostgreSQL's ``jsonb`` (its values read without parsing text again); JSON elsewhere."""

    impl = sa.JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(sa.JSON())


def _json() -> Any:
    return Field(sa_column=sa.Column(sa.JSON, nullable=False))


class RecordRow(SQLModel, table=True):
    """An evidence record's own columns."""

    __tablename__ = "record"

    id: str = Field(primary_key=True, max_length=36)
    created_at: dt.datetime = Field(sa_type=sa.DateTime(timezone=True), index=True)  # type: ignore[call-overload]
    created_by: dict[str, Any] = _json()
    title: str | None = Field(default=None)


class ArtifactRow(SQLModel, table=True):
    """Bytes held in the blob store, with all their recorded digests."""

    __tablename__ = "artifact"

    sha256: str = Field(primary_key=True, max_length=64)
    size: int = Field(sa_type=sa.BigInteger)  # type: ignore[call-overload]
    media_type: str
    md5: str | None = Field(default=None, max_length=32, index=True)
    sha1: str | None = Field(default=None, max_length=40, index=True)
    sha512: str | None = Field(default=None, max_length=128)
    blake2b: str | None = Field(default=None, max_length=128)
    extracted: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON, nullable=True))
    stored_at: dt.datetime = Field(sa_type=sa.DateTime(timezone=True))  # type: ignore[call-overload]


class RecordArtifactRow(SQLModel, table=True):
    """Which record holds which artifact, in which role."""

    __tablename__ = "record_artifact"

    record_id: str = Field(foreign_key="record.id", primary_key=True, max_length=36)
    sha256: str = Field(foreign_key="artifact.sha256", primary_key=True, max_length=64, index=True)
    position: int
    role: str
    #: SHA-256s of the sources of a derived artifact (a JSON list), else NULL.
    derived_from: list[str] | None = Field(default=None, sa_column=sa.Column(sa.JSON, nullable=True))
    derivation: str | None = Field(default=None)
    #: SHA-256 of the earlier version this artifact replaces (the same source re-captured).
    version_of: str | None = Field(default=None, max_length=64)


class CustodyEventRow(SQLModel, table=True):
    """One event of the append-only custody log."""

    __tablename__ = "custody_event"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: dt.datetime = Field(sa_type=sa.DateTime(timezone=True))  # type: ignore[call-overload]
    actor: dict[str, Any] = _json()
    action: str = Field(index=True)
    subject: str = Field(index=True)
    details: dict[str, Any] = _json()
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class AcquisitionRow(SQLModel, table=True):
    """How an artifact or report came into the catalog; ``body`` is the full acquisition."""

    __tablename__ = "acquisition"

    id: str = Field(primary_key=True, max_length=36)
    record_id: str = Field(foreign_key="record.id", index=True, max_length=36)
    artifact_sha256: str | None = Field(default=None, foreign_key="artifact.sha256", index=True, max_length=64)
    method: str
    started_at: dt.datetime = Field(sa_type=sa.DateTime(timezone=True))  # type: ignore[call-overload]
    custody_seq: int = Field(foreign_key="custody_event.seq")
    #: For captures: the URL asked for, and ``extractor:platform id`` -- how an earlier capture
    #: of the same item is found when it is captured again.
    requested_url: str | None = Field(default=None, index=True)
    platform_key: str | None = Field(default=None, index=True)
    # The server default is the one migration 0002 gave the column (every acquisition before it
    # succeeded); the library always writes the outcome itself.
    outcome: str = Field(default="succeeded", sa_column_kwargs={"server_default": "succeeded"})
    #: Order among the acquisitions one event logged (an import logs a record's all at once).
    position: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    body: dict[str, Any] = _json()


class RecordTagRow(SQLModel, table=True):
    """A tag on a record."""

    __tablename__ = "record_tag"

    record_id: str = Field(foreign_key="record.id", primary_key=True, max_length=36)
    tag: str = Field(primary_key=True, index=True)


class RecordPartRow(SQLModel, table=True):
    """A report, note, claim, assessment, relation or sensitivity flag on a record.

    ``kind`` names the part; ``body`` is its JSON.  Later features give parts that need querying
    their own columns by migration.
    """

    __tablename__ = "record_part"

    id: str = Field(primary_key=True, max_length=36)
    record_id: str = Field(foreign_key="record.id", max_length=36)
    kind: str
    #: A report's identity (platform id or content hash): how a repeated ingest finds it.
    identity: str | None = Field(default=None)
    position: int
    custody_seq: int = Field(foreign_key="custody_event.seq")
    body: dict[str, Any] = _json()

    # Two-column indexes, not one per column (revision 0008): a lookup by kind *and* identity
    # (the duplicate check of every ingested report) or by record *and* kind must be answered
    # by an index holding both, whatever the order the indexes were made in and whatever
    # statistics the database has.  With one index per column SQLite picked either, without
    # statistics, and the ``kind`` index made each check a scan of every report.
    __table_args__ = (
        sa.Index("ix_record_part_kind_identity", "kind", "identity"),
        sa.Index("ix_record_part_record_id_kind", "record_id", "kind", "position"),
    )


class ReportIndexRow(SQLModel, table=True):
    """A report in the search index: the time it is searched by (see
    :mod:`evidence_catalog.store.search`); ``num`` is its row in the full-text table."""

    __tablename__ = "report_index"

    num: int = Field(primary_key=True)
    part_id: str = Field(foreign_key="record_part.id", unique=True, max_length=36)
    at: dt.datetime = Field(sa_type=sa.DateTime(timezone=True), index=True)  # type: ignore[call-overload]
    #: The report's words as :func:`~evidence_catalog.store.search.indexed_words` gives them, on
    #: databases without SQLite's full-text table (``NULL`` on SQLite, as are the columns below).
    words: str | None = Field(default=None, sa_type=sa.Text)  # type: ignore[call-overload]
    #: PostgreSQL's full-text index of them (a GIN index; see
    #: :func:`~evidence_catalog.store.search.lexemes_literal`), and what ranks a hit as SQLite's
    #: FTS5 ranks it: the number of words, that number summed over this report and every one
    #: indexed before it, and how often each word that occurs more than once occurs.
    lexemes: str | None = Field(default=None, sa_type=TextSearchVector)  # type: ignore[call-overload]
    word_count: int | None = Field(default=None)
    word_total: int | None = Field(default=None, sa_type=sa.BigInteger)  # type: ignore[call-overload]
    word_repeats: dict[str, int] | None = Field(default=None, sa_column=sa.Column(BinaryJSON, nullable=True))


class ReportTermRow(SQLModel, table=True):
    """An exact search filter of a report: a mention, hashtag, feed or author, normalised."""

    __tablename__ = "report_term"

    part_id: str = Field(foreign_key="record_part.id", primary_key=True, max_length=36)
    kind: str = Field(primary_key=True)
    value: str = Field(primary_key=True)

    __table_args__ = (sa.Index("ix_report_term_kind_value", "kind", "value"),)


class ReportLexemeRow(SQLModel, table=True):
    """How many indexed reports hold a lexeme of PostgreSQL's full-text index (see
    :func:`~evidence_catalog.store.search.lexemes_literal`): what ranking needs of a searched
    word, kept as reports are indexed instead of counted at each search (SQLite's FTS5 table
    keeps its own; empty on SQLite)."""

    __tablename__ = "report_lexeme"

    lexeme: str = Field(primary_key=True)
    reports: int = Field(sa_type=sa.BigInteger)  # type: ignore[call-overload]


class MerkleNodeRow(SQLModel, table=True):
    """A perfect subtree of the RFC 6962 Merkle tree over the custody log: ``2**level`` leaves
    starting at leaf ``idx * 2**level`` (leaf *i* is custody event ``seq = i + 1``).  Kept as
    events are appended, so any root or proof is O(log n) lookups; derived, so ``verify``
    recomputes it from the events."""

    __tablename__ = "merkle_node"

    level: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    idx: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    hash: str = Field(max_length=64)


class CheckpointRow(SQLModel, table=True):
    """A signed checkpoint (C2SP tlog-checkpoint in a signed note) of the custody log."""

    __tablename__ = "checkpoint"

    id: int | None = Field(default=None, primary_key=True)
    tree_size: int = Field(index=True)
    root_hash: str = Field(max_length=64)
    #: The whole signed note (or the unsigned checkpoint text, when no key could sign it).
    note: str
    signed: bool
    created_at: dt.datetime = Field(sa_type=sa.DateTime(timezone=True))  # type: ignore[call-overload]


class TimestampTokenRow(SQLModel, table=True):
    """An RFC 3161 time-stamp of a checkpoint (its signed note) or an artifact: ``pending``
    while the TSA could not be reached, then ``granted`` with the token, or ``failed``."""

    __tablename__ = "timestamp_token"

    id: int | None = Field(default=None, primary_key=True)
    subject_kind: str
    subject: str
    data_sha256: str = Field(max_length=64)
    tsa_url: str
    status: str = Field(index=True)
    #: The DER token, base64.
    token: str | None = None
    gen_time: dt.datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))  # type: ignore[call-overload]
    requested_at: dt.datetime = Field(sa_type=sa.DateTime(timezone=True))  # type: ignore[call-overload]
    error: str | None = None


class PerceptualHashRow(SQLModel, table=True):
    """One perceptual hash of an analysed image, or of one frame of an analysed video.

    Derived from the analysis document (``analysis_sha256``, an artifact) that holds it, and kept
    here only so that near duplicates can be found without reading every analysis: rows are
    appended, never changed, and ``id`` is the order they were written in (every write holds the
    catalog's one write lock, so a row with a higher id was committed later: an index in memory
    catches up by reading the rows after the last id it saw).  See
    :mod:`evidence_catalog.store.hashes`."""

    __tablename__ = "perceptual_hash"

    # A 64-bit id on PostgreSQL (a video hashed once a second makes thousands of rows); SQLite's
    # INTEGER PRIMARY KEY is its 64-bit rowid already, which BIGINT would not be.
    id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    )
    record_id: str = Field(foreign_key="record.id", index=True, max_length=36)
    #: The analysed image or video.
    artifact_sha256: str = Field(foreign_key="artifact.sha256", index=True, max_length=64)
    #: The analysis document the hash is in.
    analysis_sha256: str = Field(foreign_key="artifact.sha256", max_length=64)
    #: Milliseconds from the start of a video to the frame hashed; ``NULL`` for an image.
    offset_ms: int | None = Field(default=None, sa_type=sa.BigInteger)  # type: ignore[call-overload]
    #: The hash's quality (PDQ: 0-100); under ``analysis.MIN_QUALITY`` it is never matched.
    quality: int
    algorithm: str = Field(max_length=16)
    #: The hash itself: 32 bytes for PDQ (its 64 hex digits as bytes).
    hash: bytes = Field(sa_type=sa.LargeBinary)  # type: ignore[call-overload]
