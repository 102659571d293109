"""What every operation works with: one small object, made when a catalog is opened."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from evidence_catalog import model
from evidence_catalog.config import CatalogConfig
from evidence_catalog.errors import EvidenceError
from evidence_catalog.store.blobs import BlobStorage
from evidence_catalog.store.database import CatalogDatabase
from evidence_catalog.store.keyfiles import LogKey

Clock = Callable[[], dt.datetime]


@attrs.define(eq=False)
class KeyState:
    """The log key of an open catalog, and what is known of it so far."""

    log_key: LogKey
    #: The passphrase given when the catalog was opened (``None``: from the environment, if set).
    passphrase: str | None
    #: Whether every write transaction that appends events ends with a checkpoint (the catalog
    #: has its key; false only while a catalog from before signed checkpoints is being opened).
    signs: bool = False
    #: The private key, once opened and checked against the key the log names.
    private: Ed25519PrivateKey | None = None
    #: The log's name (its checkpoints' origin line), read once.
    log_name: str | None = None
    #: The key is encrypted and no passphrase was given: changes keep unsigned checkpoints.
    locked: bool = False
    #: Why the key cannot sign (a wrong passphrase, damaged or replaced key files).
    error: EvidenceError | None = None


@attrs.define(eq=False)
class Context:
    """An open catalog as its operations see it: folder, settings, database, blob store, who
    acts, the clock, and the log key."""

    path: Path
    config: CatalogConfig
    db: CatalogDatabase
    blobs: BlobStorage
    operator: model.Agent
    clock: Clock
    key: KeyState

    @contextmanager
    def write(self) -> Iterator[Any]:
        """A write transaction (see :meth:`CatalogDatabase.write`) that, when it appended custody
        events, ends with a checkpoint of the log, signed by its key, in the same transaction."""
        from evidence_catalog.operations.log_key import write_checkpoint

        with self.db.write(sealed=True) as session:
            yield session
            if self.db.appended(session) and self.key.signs:
                write_checkpoint(self, session)

    def log_event(self, action: str, details: dict[str, Any], session: Any = None) -> model.CustodyEvent:
        """Append one event about the catalog as a whole, by this catalog's operator, now: in the
        write transaction *session*, or in a transaction of its own."""
        if session is None:
            with self.write() as own:
                return self.log_event(action, details, own)
        return self.db.append_event(
            session, at=self.clock(), actor=self.operator, action=action, subject="catalog", details=details
        )
