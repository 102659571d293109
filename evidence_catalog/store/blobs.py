"""What every blob store offers, in a folder on this machine
(:class:`~evidence_catalog.store.blobstore.BlobStore`) or in object storage
(:class:`~evidence_catalog.store.objectstore.ObjectBlobStore`).  The catalog and its operations
work with a :class:`BlobStorage`, whichever a catalog's settings name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from evidence_catalog.hashing import ProgressCallback, Readable
from evidence_catalog.model import Digests
from evidence_catalog.store.blobstore import StoredBlob, StoreEntry

if TYPE_CHECKING:
    from evidence_catalog.findings import Finding


class BlobStorage(Protocol):
    """Content-addressed, write-once storage of bytes under their SHA-256."""

    #: How paths in the store are shown (``blobs`` in a catalog folder, else the store's URL).
    label: str
    #: Readers per CPU that keep a verification busy: hashing is bound by the CPU on a local
    #: disk, by the network's round trips on object storage.
    readers_per_cpu: int
    #: The damaged copies this store moved aside in this process, as (SHA-256, where it was
    #: moved, relative to the store), appended the moment each is moved: what the custody log
    #: must still say (:meth:`~evidence_catalog.operations.context.Context.write` takes them off
    #: as it says them, and puts them back should its transaction not commit).
    moved: list[tuple[str, str]]

    def local_path(self, sha256: str) -> Path | None:
        """The file holding the bytes on this machine's file system, or ``None`` when the store
        keeps them elsewhere (object storage)."""
        ...

    @property
    def location(self) -> str:
        """Where the store is, for messages."""
        ...

    def exists(self, sha256: str) -> bool:
        """Tell whether the blob is stored."""
        ...

    def open(self, sha256: str) -> BinaryIO:
        """Open a stored blob for reading (``FileNotFoundError`` when it is not there)."""
        ...

    def local_copy(self, sha256: str) -> AbstractContextManager[Path]:
        """A path on this machine holding the blob's bytes, for as long as the context lasts
        (to be read only)."""
        ...

    def put_stream(
        self, stream: Readable, *, progress: ProgressCallback | None = None, defer_sync: bool = False
    ) -> StoredBlob:
        """Store *stream*'s bytes, hashing them on the way; deduplicate by SHA-256.  With
        *defer_sync* they may not be durable until :meth:`sync`."""
        ...

    def adopt_file(self, path: Path, *, progress: ProgressCallback | None = None) -> StoredBlob:
        """Store a finished file this process made (a capture's download), which is consumed."""
        ...

    def sync(self) -> None:
        """Make everything stored with ``defer_sync`` durable."""
        ...

    def verify(
        self, sha256: str, expected: Digests, size: int, *, progress: ProgressCallback | None = None
    ) -> list[Finding]:
        """Re-hash a stored blob; return what does not match the recorded digests and size."""
        ...

    def remove(self, sha256: str) -> None:
        """Remove a blob that no record claims (an import that failed after storing it)."""
        ...

    def stored(self, now: float) -> Iterator[StoreEntry]:
        """Every blob in the store, in address order (for ``fsck``)."""
        ...

    def temporary(self, now: float) -> Iterator[StoreEntry]:
        """Unfinished writes a killed process left."""
        ...

    def quarantined(self, now: float) -> Iterator[StoreEntry]:
        """Damaged copies moved aside (kept: they are evidence of the damage)."""
        ...

    def delete(self, entry: StoreEntry) -> None:
        """Delete a blob or temporary leftover :meth:`stored` or :meth:`temporary` listed."""
        ...
