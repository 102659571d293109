"""evidence_catalog: catalogue online evidence with provenance, integrity and chain of custody.

Everything the ``evidence-catalog`` command does is reachable from here::

    from evidence_catalog import Catalog

    with Catalog.init("my-catalog", operator="A. Analyst <analyst@example.org>") as catalog:
        results = catalog.add(["photo.jpg"], tags=["school"])
        print(catalog.verify().ok)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
from evidence_catalog.lazy import lazy_names
from evidence_catalog.versions import versions  # imported now: the name is also its module's

if TYPE_CHECKING:
    from evidence_catalog.analysis import ContentCredentials, MediaAnalysis, PerceptualHash
    from evidence_catalog.capture import CaptureFailed, CaptureOptions
    from evidence_catalog.capture.page import PageOptions
    from evidence_catalog.catalog import Catalog
    from evidence_catalog.checkpoint import CheckpointError, KeyDamagedError, KeyLockedError
    from evidence_catalog.custody import CommitmentError
    from evidence_catalog.filters import RecordFilter
    from evidence_catalog.ingest.links import LinkSuggestion
    from evidence_catalog.interchange.bag import BagError
    from evidence_catalog.interchange.import_provenance import UnsignedProvenanceError
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
    from evidence_catalog.operations.migrating import MigrationError, MigrationResult
    from evidence_catalog.results import (
        AddResult,
        AnalysisResult,
        CaptureResult,
        CheckpointInfo,
        ExhibitResult,
        ExportResult,
        FsckEntry,
        FsckReport,
        ImportResult,
        InclusionProof,
        IngestResult,
        KeyChange,
        LinkResult,
        LogKeyInfo,
        MatchedFrame,
        SearchHit,
        SimilarMatch,
        TimestampResult,
        VerificationReport,
    )
    from evidence_catalog.timestamp import TimestampError
    from evidence_catalog.versions import __version__
    from evidence_catalog.vocabulary import BUILTIN_CATEGORIES, Category

__all__ = [
    "BUILTIN_CATEGORIES",
    "Acquisition",
    "AddResult",
    "Agent",
    "AnalysisResult",
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
    "ContentCredentials",
    "CustodyEvent",
    "Digests",
    "EventTime",
    "EvidenceError",
    "EvidenceRecord",
    "ExhibitResult",
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
    "MatchedFrame",
    "MediaAnalysis",
    "MerkleError",
    "MigrationError",
    "MigrationResult",
    "ModelError",
    "ModelTypeError",
    "NetworkError",
    "NotFoundError",
    "Note",
    "PageOptions",
    "PerceptualHash",
    "Place",
    "RecordFilter",
    "Relation",
    "Report",
    "SearchHit",
    "SensitivityFlag",
    "SimilarMatch",
    "StorageError",
    "TimestampError",
    "TimestampResult",
    "UnsignedProvenanceError",
    "ValidationError",
    "VerificationReport",
    "__version__",
    "versions",
]

#: Where each name that is not imported above is defined.  A script that imports the package
#: pays for what it uses only: :class:`Catalog` brings the database layer, the rest comes with
#: the first use of its name (PEP 562); ``from evidence_catalog import X`` works for every name.
_LAZY: dict[str, str] = {
    "ContentCredentials": "analysis",
    "MediaAnalysis": "analysis",
    "PerceptualHash": "analysis",
    "CaptureFailed": "capture",
    "CaptureOptions": "capture",
    "PageOptions": "capture.page",
    "Catalog": "catalog",
    "CheckpointError": "checkpoint",
    "KeyDamagedError": "checkpoint",
    "KeyLockedError": "checkpoint",
    "CommitmentError": "custody",
    "RecordFilter": "filters",
    "LinkSuggestion": "ingest.links",
    "BagError": "interchange.bag",
    "UnsignedProvenanceError": "interchange.import_provenance",
    "FieldPathError": "interchange.redact",
    "MerkleError": "merkle",
    "MigrationError": "operations.migrating",
    "MigrationResult": "operations.migrating",
    "Acquisition": "model",
    "Agent": "model",
    "Artifact": "model",
    "Assessment": "model",
    "Claim": "model",
    "CustodyEvent": "model",
    "Digests": "model",
    "EventTime": "model",
    "EvidenceRecord": "model",
    "GeoPosition": "model",
    "Note": "model",
    "Place": "model",
    "Relation": "model",
    "Report": "model",
    "SensitivityFlag": "model",
    "AddResult": "results",
    "AnalysisResult": "results",
    "CaptureResult": "results",
    "CheckpointInfo": "results",
    "ExhibitResult": "results",
    "ExportResult": "results",
    "FsckEntry": "results",
    "FsckReport": "results",
    "ImportResult": "results",
    "InclusionProof": "results",
    "IngestResult": "results",
    "KeyChange": "results",
    "LinkResult": "results",
    "LogKeyInfo": "results",
    "MatchedFrame": "results",
    "SearchHit": "results",
    "SimilarMatch": "results",
    "TimestampResult": "results",
    "VerificationReport": "results",
    "TimestampError": "timestamp",
    "BUILTIN_CATEGORIES": "vocabulary",
    "Category": "vocabulary",
    "__version__": "versions",
}


#: The names of :data:`_LAZY`, imported from their modules the first time each is asked for.
__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)
