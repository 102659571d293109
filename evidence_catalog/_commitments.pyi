"""The custody log's salted commitments, in C (``_commitments.c``; see :mod:`evidence_catalog.custody`)."""

from collections.abc import Callable, Set
from typing import Any

def committed(
    node: Any,
    pointer: str,
    secret: bytes,
    escape: Callable[[str], str],
    whole: Callable[[Any, str], Any],
    other: Callable[[Any, str], Any],
    key_check: Callable[[Any], object],
    whole_names: Set[str],
    tuples: bool,
    /,
) -> Any: ...
def committed_json(
    node: Any,
    pointer: str,
    secret: bytes,
    escape: Callable[[str], str],
    whole: Callable[[Any, str], Any],
    other: Callable[[Any, str], Any],
    key_check: Callable[[Any], object],
    whole_names: Set[str],
    tuples: bool,
    encode: Callable[[Any], str],
    /,
) -> bytes: ...
def salt(secret: bytes, pointer: str, /) -> str: ...

#: The SHA-256 of the ``_commitments.c`` it was built from (checked at import: ``native.py``).
SOURCE_SHA256: str
