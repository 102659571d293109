"""Where the text exports write: any :class:`TextSink`, and a file that hashes what it is given.

The JSON, JSON Lines, CSV and PROV-JSON writers take a :class:`TextSink` -- an open text file,
a bag's payload file (:meth:`~evidence_catalog.interchange.bag.BagWriter.open_text`) or a
:class:`HashingTextSink` -- so that none of them holds a whole export in memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import BinaryIO, Protocol

from evidence_catalog.hashing import MultiHasher


class TextSink(Protocol):
    """Anything text is written to, piece by piece (what :mod:`csv` and :func:`json.dump` need)."""

    def write(self, text: str, /) -> object: ...


class HashingTextSink:
    """Writes text as UTF-8 to *raw* and hashes exactly the bytes written (an export's digests
    are known without reading the file again)."""

    def __init__(self, raw: BinaryIO, algorithms: Iterable[str] = ()) -> None:
        self.raw = raw
        self.hasher = MultiHasher(algorithms)

    def write(self, text: str) -> int:
        data = text.encode("utf-8")
        self.hasher.update(data)
        self.raw.write(data)
        return len(text)
