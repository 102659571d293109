"""The library's one error hierarchy.

Every error names *what* went wrong, *where* (a file, a field, a record id) and *why*, so the CLI can
print it as one line and a script can act on it.  The library never calls ``sys.exit``.

The classes here are the kinds of error.  An error of one part of the library is defined in its
module, under one of them (:class:`~evidence_catalog.checkpoint.CheckpointError`,
:class:`~evidence_catalog.merkle.MerkleError`, :class:`~evidence_catalog.interchange.bag.BagError`
...); one that was a :class:`ValueError` or a :class:`TypeError` before it joined the family is one
still.  Every one a script can meet is exported from :mod:`evidence_catalog`.
"""

from __future__ import annotations


class EvidenceError(Exception):
    """Base of every error this library raises on purpose."""

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class InputError(EvidenceError):
    """The caller's input is wrong: a missing or unreadable path, a bad option value."""


class ValidationError(EvidenceError):
    """A value does not satisfy the data model or a published schema."""


class ModelError(ValidationError, ValueError):
    """An object of the data model (:mod:`evidence_catalog.model`, a record filter, a category)
    cannot be built from the values given: the message names the field and the rule.

    It is also a :class:`ValueError`, which is what these checks raised before, so that code
    written then keeps working."""


class ModelTypeError(ValidationError, TypeError):
    """A value of another type altogether than the data model or a document wants, where the
    library checks the type itself: text for a timestamp, a list for a JSON object, a value
    that is no top-level document.

    It is also a :class:`TypeError`, which is what these checks raised before."""


class CatalogError(EvidenceError):
    """The catalog cannot be used: not a catalog, newer than this library, corrupt."""


class CatalogNotFoundError(CatalogError):
    """The path given is not a catalog directory."""


class CatalogDatabaseError(CatalogError):
    """The catalog database answered a read or write with an error: a damaged database file,
    or a database server's refusal (its own words are in the message).  Nothing was changed."""


class CatalogVersionError(CatalogError):
    """The catalog was written by a newer (or unknown) version of this library."""


class IntegrityError(EvidenceError):
    """Stored bytes or history are not what was recorded."""


class NotFoundError(EvidenceError):
    """A record, artifact or event that was asked for does not exist."""


class StorageError(EvidenceError):
    """Bytes could not be stored (disk full, permission denied); nothing was recorded."""


class NetworkError(EvidenceError):
    """A download failed: refused, timed out, an HTTP error, a body cut short or too large.
    Nothing was recorded."""
