"""evidence_catalog: catalogue online evidence with provenance, integrity and chain of custody.

Everything the ``evidence-catalog`` command does is reachable from here::

    from evidence_catalog import Catalog

    with Catalog.init("my-catalog", operator="A. Analyst <analyst@example.org>") as catalog:
        results = catalog.add(["photo.jpg"], tags=["school"])
        print(catalog.verify().ok)
"""

from evidence_catalog.capture import CaptureFailed, CaptureOptions
from evidence_catalog.catalog import Catalog
from evidence_catalog.checkpoint import CheckpointError, KeyDamagedError, KeyLockedError
from evidence_catalog.custody import CommitmentError
from evidence_catalog.errors import (
    CatalogDatabaseError,
    CatalogError,
    CatalogNotFoundError,
    CatalogVersionError,
    EvidenceError,
    InputError,
    IntegrityError,
    ModelError,
    ModelTypeError,
    NetworkError,
    NotFoundError,
    StorageError,
    ValidationError,
)
from evidence_catalog.filters import RecordFilter
from evidence_catalog.ingest.links import LinkSuggestion
from evidence_catalog.interchange.bag import BagError
from evidence_catalog.interchange.importing import UnsignedProvenanceError
from evidence_catalog.interchange.redact import FieldPathError
from evidence_catalog.merkle import MerkleError
from evidence_catalog.model import (
    Acquisition,
    Agent,
    Artifact,
    Assessment,
    Claim,
    CustodyEvent,
    Digests,
    EventTime,
    EvidenceRecord,
    GeoPosition,
    Note,
    Place,
    Relation,
    Report,
    SensitivityFlag,
)
from evidence_catalog.results import (
    AddResult,
    CaptureResult,
    CheckpointInfo,
    ExportResult,
    FsckEntry,
    FsckReport,
    ImportResult,
    InclusionProof,
    IngestResult,
    KeyChange,
    LinkResult,
    LogKeyInfo,
    SearchHit,
    TimestampResult,
    VerificationReport,
)
from evidence_catalog.timestamp import TimestampError
from evidence_catalog.versions import __version__, versions
from evidence_catalog.vocabulary import BUILTIN_CATEGORIES, Category

__all__ = [
    "BUILTIN_CATEGORIES",
    "Acquisition",
    "AddResult",
    "Agent",
    "Artifact",
    "Assessment",
    "BagError",
    "CaptureFailed",
    "CaptureOptions",
    "CaptureResult",
    "Catalog",
    "CatalogDatabaseError",
    "CatalogError",
    "CatalogNotFoundError",
    "CatalogVersionError",
    "Category",
    "CheckpointError",
    "CheckpointInfo",
    "Claim",
    "CommitmentError",
    "CustodyEvent",
    "Digests",
    "EventTime",
    "EvidenceError",
    "EvidenceRecord",
    "ExportResult",
    "FieldPathError",
    "FsckEntry",
    "FsckReport",
    "GeoPosition",
    "ImportResult",
    "InclusionProof",
    "IngestResult",
    "InputError",
    "IntegrityError",
    "KeyChange",
    "KeyDamagedError",
    "KeyLockedError",
    "LinkResult",
    "LinkSuggestion",
    "LogKeyInfo",
    "MerkleError",
    "ModelError",
    "ModelTypeError",
    "NetworkError",
    "NotFoundError",
    "Note",
    "Place",
    "RecordFilter",
    "Relation",
    "Report",
    "SearchHit",
    "SensitivityFlag",
    "StorageError",
    "TimestampError",
    "TimestampResult",
    "UnsignedProvenanceError",
    "ValidationError",
    "VerificationReport",
    "__version__",
    "versions",
]
