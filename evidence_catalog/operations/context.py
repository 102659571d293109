"""What every operation works with: one small object, made when a catalog is opened."""

from __future__ import annotations

import datetime as dt
import threading
import warnings
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

    #: Serialises taking the blob store's moves (:meth:`_take_moved`) between threads.
    _moves_lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)
    #: Moves :meth:`log_moved_left` tried to say already (it does not try a move twice).
    _moves_tried: set[tuple[str, str]] = attrs.field(factory=set, init=False, repr=False)

    @contextmanager
    def write(self) -> Iterator[Any]:
        """A write transaction (see :meth:`CatalogDatabase.write`) that, when it appended custody
        events, ends with a checkpoint of the log, signed by its key, in the same transaction.

        Before that it says the damaged stored copies the blob store moved aside in this process
        that no committed event says yet: it takes them off the store's list
        (:attr:`~evidence_catalog.store.blobs.BlobStorage.moved`) and appends one
        ``copies.quarantined`` event naming each (its SHA-256, where it is kept); should the
        transaction not commit, they go back on the list, for the next one (or
        :meth:`log_moved_left`).  Each move is said once."""
        from evidence_catalog.custody import Action
        from evidence_catalog.operations.log_key import write_checkpoint

        taken: list[tuple[str, str]] = []
        try:
            with self.db.write(sealed=True) as session:
                yield session
                taken = self._take_moved()
                if taken:
                    copies = [{"sha256": sha, "kept_as": kept_as} for sha, kept_as in sorted(set(taken))]
                    self.log_event(Action.COPIES_QUARANTINED, {"copies": copies}, session)
                if self.db.appended(session) and self.key.signs:
                    write_checkpoint(self, session)
        except BaseException:
            self.blobs.moved.extend(taken)  # not said: back on the list
            raise

    def _take_moved(self) -> list[tuple[str, str]]:
        """The blob store's moves not said yet, taken off its list (others may append to it
        meanwhile, on other threads: only what was there is taken)."""
        with self._moves_lock:
            moved = self.blobs.moved
            count = len(moved)
            taken = moved[:count]
            del moved[:count]
        return taken

    def log_moved_left(self) -> None:
        """Say, in a transaction of its own, the damaged copies moved aside that no committed
        event says yet: what an operation that failed after the blob store moved one leaves (its
        own transaction, rolled back, said nothing).  Each move is tried once here (the next
        write transaction of this process says it all the same): when the catalog cannot be
        written to now, a warning names where each copy is kept, and ``fsck`` lists it."""
        untried = [entry for entry in self.blobs.moved if entry not in self._moves_tried]
        if not untried:
            return
        self._moves_tried.update(untried)
        try:
            with self.write():
                pass
        except Exception as exc:  # noqa: BLE001 -- never in place of what the operation raised
            kept = ", ".join(f"blobs/{kept_as}" for _, kept_as in untried)
            warnings.warn(
                f"damaged stored copies were moved aside and kept ({kept}), but the custody log could not "
                f"say so now ({exc}); the next change to this catalog says so, and fsck lists them",
                stacklevel=3,
            )

    def log_event(self, action: str, details: dict[str, Any], session: Any = None) -> model.CustodyEvent:
        """Append one event about the catalog as a whole, by this catalog's operator, now: in the
        write transaction *session*, or in a transaction of its own."""
        if session is None:
            with self.write() as own:
                return self.log_event(action, details, own)
        return self.db.append_event(
            session, at=self.clock(), actor=self.operator, action=action, subject="catalog", details=details
        )
