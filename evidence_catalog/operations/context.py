"""What every operation works with: one small object, made when a catalog is opened."""

from __future__ import annotations

import contextlib
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

#: The key, in a write transaction's ``session.info``, of the set of damaged copies (where each
#: was moved) that the transaction's own events name (``add`` names them in ``artifact.added``).
MOVED_NAMED = "moved_named"


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
        events, ends with a checkpoint of the log, signed by its key, in the same transaction.

        Before that it logs the damaged stored copies the blob store moved aside in this process
        that no event says yet (:meth:`log_moved`); once the transaction has committed, they are
        said, and taken off the store's list (a transaction rolled back leaves them on it, for
        the next one: see :meth:`log_moved_left`)."""
        from evidence_catalog.operations.log_key import write_checkpoint

        with self.db.write(sealed=True) as session:
            yield session
            said = self.log_moved(session)
            if self.db.appended(session) and self.key.signs:
                write_checkpoint(self, session)
        for entry in said:  # committed
            with contextlib.suppress(ValueError):  # (another transaction's, said at the same time)
                self.blobs.moved.remove(entry)

    def log_moved(self, session: Any) -> list[tuple[str, str]]:
        """Append, in the write transaction *session*, one ``copies.quarantined`` event naming
        the damaged copies the blob store moved aside (each SHA-256, and where it is kept) that
        no event of this transaction names already (an ``artifact.added`` event's
        ``damaged_copy_quarantined``: :data:`MOVED_NAMED` in the session's ``info``); none when
        there are none.  Returns every moved copy the transaction says, those named included."""
        from evidence_catalog.custody import Action

        pending = list(dict.fromkeys(self.blobs.moved))
        if not pending:
            return []
        named = session.info.get(MOVED_NAMED, set())
        copies = [{"sha256": sha, "kept_as": kept_as} for sha, kept_as in sorted(pending) if kept_as not in named]
        if copies:
            self.log_event(Action.COPIES_QUARANTINED, {"copies": copies}, session)
        return pending

    def log_moved_left(self) -> None:
        """Log, in a transaction of its own, damaged copies moved aside that no committed event
        says yet: what an operation that failed after the blob store moved one leaves (its own
        transaction, rolled back, said nothing).  Nothing when there are none; when the catalog
        cannot be written to now, they stay listed (``fsck`` lists the copies kept)."""
        if not self.blobs.moved:
            return
        with contextlib.suppress(EvidenceError):
            with self.write():
                pass

    def log_event(self, action: str, details: dict[str, Any], session: Any = None) -> model.CustodyEvent:
        """Append one event about the catalog as a whole, by this catalog's operator, now: in the
        write transaction *session*, or in a transaction of its own."""
        if session is None:
            with self.write() as own:
                return self.log_event(action, details, own)
        return self.db.append_event(
            session, at=self.clock(), actor=self.operator, action=action, subject="catalog", details=details
        )
