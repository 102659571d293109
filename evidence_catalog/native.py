"""The optional C module of the custody log's salted commitments (``_commitments.c``): whether
it is in use, found without importing the rest of the library.

The module is used only when it was built from the very source beside it: the build compiles
the SHA-256 of ``_commitments.c`` into it (``SOURCE_SHA256``), and a module whose source has
changed since (an editable install whose C file was edited, and not built again) is left out,
as a module that cannot be loaded is.  ``EVIDENCE_CATALOG_PURE_PYTHON`` (any value but empty)
leaves it out too.  Without it, the pure-Python walks make the very same bytes, more slowly.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from types import ModuleType

#: Set to any value but empty, the C module is not used (nor built, at install).
PURE_PYTHON = "EVIDENCE_CATALOG_PURE_PYTHON"


def commitments() -> ModuleType | None:
    """The C module of the commitments, or ``None`` (see the module's docs)."""
    if os.environ.get(PURE_PYTHON):
        return None
    return _built()


@functools.cache
def _built() -> ModuleType | None:
    try:
        from evidence_catalog import _commitments
    except ImportError:  # not built here, or not loadable (its libcrypto gone...)
        return None
    source = Path(__file__).with_name("_commitments.c")
    try:
        expected = hashlib.sha256(source.read_bytes()).hexdigest()
    except OSError:  # installed without its source: nothing to compare it with
        return _commitments
    if getattr(_commitments, "SOURCE_SHA256", None) != expected:
        return None  # built from another version of the source
    return _commitments


def commitments_walk() -> str:
    """How this installation makes the custody log's salted commitments: ``"C module"`` or
    ``"pure Python"``."""
    return "pure Python" if commitments() is None else "C module"
