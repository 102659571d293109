"""The catalog database: one object, :class:`CatalogDatabase`, made of one part per job.

- :mod:`~evidence_catalog.store.engine`: database URLs, the engine and its connections, schema
  creation and upgrades, the read and write transactions (and the write lock every write takes);
- :mod:`~evidence_catalog.store.log`: the custody log, its Merkle tree and its checkpoints;
- :mod:`~evidence_catalog.store.records`: artifacts and records, and the rows they are kept in;
- :mod:`~evidence_catalog.store.search`: the search index of reports;
- :mod:`~evidence_catalog.store.hashes`: the perceptual hashes of analysed images and videos;
- :mod:`~evidence_catalog.store.timestamps`: the queue of time-stamp requests.

The names below are imported from here by the rest of the library (and by the migrations and
tests); each is defined in the module of its job.
"""

from __future__ import annotations

from evidence_catalog.merkle import MerkleError
from evidence_catalog.store.engine import (
    CLOSE_WAIT,
    HEAD_REVISION,
    MIGRATIONS,
    PG_WRITE_LOCK,
    SUPPORTED_DIALECTS,
    _alembic_config,
    aware,
    check_database_url,
    database_errors,
    safe_url,
    sqlite_url,
)
from evidence_catalog.store.hashes import PerceptualHashes, StoredHash
from evidence_catalog.store.log import (
    LOG_SIZE_BEFORE,
    CustodyLog,
    EventDraft,
    build_merkle_nodes,
    structure_event,
)
from evidence_catalog.store.records import (
    PART_KINDS,
    Records,
    acquisition_row,
    artifact_row,
    part_row,
    record_artifact_row,
    record_row,
)
from evidence_catalog.store.search import (
    SearchIndex,
    fill_fts,
    fill_report_lexemes,
    fill_report_words,
    index_rows,
)
from evidence_catalog.store.timestamps import TimestampQueue

__all__ = [
    "CLOSE_WAIT",
    "HEAD_REVISION",
    "LOG_SIZE_BEFORE",
    "MIGRATIONS",
    "PART_KINDS",
    "PG_WRITE_LOCK",
    "SUPPORTED_DIALECTS",
    "CatalogDatabase",
    "EventDraft",
    "MerkleError",
    "PerceptualHashes",
    "StoredHash",
    "_alembic_config",
    "acquisition_row",
    "artifact_row",
    "aware",
    "build_merkle_nodes",
    "check_database_url",
    "database_errors",
    "fill_fts",
    "fill_report_lexemes",
    "fill_report_words",
    "index_rows",
    "part_row",
    "record_artifact_row",
    "record_row",
    "safe_url",
    "sqlite_url",
    "structure_event",
]


# Mixins, not composition: every part works on the one engine and its connections (the base
# class they share, engine.Connections: records' lookups outside a transaction use its driver
# connection), and each method takes the session it works in, so the parts hold no state of their
# own to keep apart.  Composed, CatalogDatabase would need a delegate for each of its sixty-odd
# methods to keep their names, for nothing gained.  No part calls another's methods.
class CatalogDatabase(CustodyLog, Records, SearchIndex, PerceptualHashes, TimestampQueue):
    """The catalog's database: an index of records, artifacts and the custody log."""
