"""One streaming routine for every digest the catalog computes.

Bytes are hashed *while they pass*, in fixed-size blocks, with SHA-256 and any extra configured
algorithms updated from the same block: one read of the data, constant memory whatever its size.
:class:`DigestingReader` wraps any readable stream so that the blob store and capture code hash
what they copy without reading it twice.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from evidence_catalog.errors import InputError
from evidence_catalog.model import DIGEST_LENGTHS, Digests

#: Algorithms this library computes; SHA-256 is always among them.
SUPPORTED_ALGORITHMS: tuple[str, ...] = tuple(DIGEST_LENGTHS)

#: Block size for streaming reads: large enough to keep hashlib (which releases the GIL on big
#: updates) busy, small enough that memory stays flat.
BLOCK_SIZE = 1024 * 1024

ProgressCallback = Callable[[int], None]
"""Called with the number of bytes just processed."""


class Readable(Protocol):
    """Anything with ``readinto`` (files opened in binary mode, sockets, custom streams)."""

    def readinto(self, buffer: memoryview, /) -> int | None: ...


def normalise_algorithms(algorithms: Iterable[str] = ()) -> tuple[str, ...]:
    """Return SHA-256 followed by the other requested algorithms, each once, in a stable order.

    >>> normalise_algorithms(["md5", "sha256", "MD5"])
    ('sha256', 'md5')
    """
    wanted = {a.lower().replace("-", "") for a in algorithms}
    unknown = wanted - set(SUPPORTED_ALGORITHMS)
    if unknown:
        raise InputError(
            f"unknown digest algorithm(s) {', '.join(sorted(unknown))}; supported: {', '.join(SUPPORTED_ALGORITHMS)}"
        )
    return tuple(a for a in SUPPORTED_ALGORITHMS if a == "sha256" or a in wanted)


class MultiHasher:
    """Several hash objects fed from the same blocks."""

    def __init__(self, algorithms: Iterable[str] = ()) -> None:
        self.algorithms = normalise_algorithms(algorithms)
        self._hashers = [hashlib.new(a) for a in self.algorithms]
        self.size = 0

    def update(self, block: bytes | bytearray | memoryview) -> None:
        """Feed one block to every digest."""
        for hasher in self._hashers:
            hasher.update(block)
        self.size += len(block)

    def digests(self) -> Digests:
        """Return the digests of everything fed so far."""
        return Digests(**{a: h.hexdigest() for a, h in zip(self.algorithms, self._hashers, strict=True)})


def hash_stream(
    stream: Readable,
    algorithms: Sequence[str] = (),
    *,
    block_size: int = BLOCK_SIZE,
    on_block: Callable[[memoryview], object] | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[Digests, int]:
    """Read *stream* to its end in fixed-size blocks; return its digests and size.

    *on_block*, when given, receives each block (a view valid only during the call) so that
    callers can copy the bytes on the same pass -- this is how the blob store writes and hashes
    at once.

    >>> import io
    >>> digests, size = hash_stream(io.BytesIO(b"abc"))
    >>> digests.sha256[:16], size
    ('ba7816bf8f01cfea', 3)
    """
    hasher = MultiHasher(algorithms)
    # The thread's block buffer from its last call, when it has one (a new megabyte for each of
    # thousands of small files costs more than hashing them); a call within a call makes its own.
    spare = _spare.buffers
    buffer = spare.pop(block_size, None) or bytearray(block_size)
    view = memoryview(buffer)
    while True:
        n = stream.readinto(view)
        if n is None:  # a non-blocking stream with no data yet: treating it as the end would truncate
            raise BlockingIOError("stream had no data ready; use a blocking stream")
        if not n:
            break
        block = view[:n]
        hasher.update(block)
        if on_block is not None:
            on_block(block)
        if progress is not None:
            progress(n)
    spare[block_size] = buffer
    return hasher.digests(), hasher.size


class _Spare(threading.local):
    """Each thread's spare block buffer for :func:`hash_stream`, by block size."""

    def __init__(self) -> None:
        self.buffers: dict[int, bytearray] = {}


_spare = _Spare()


def hash_bytes(data: bytes, algorithms: Sequence[str] = ()) -> Digests:
    """Digests of an in-memory byte string (same algorithms and result as :func:`hash_stream`)."""
    hasher = MultiHasher(algorithms)
    hasher.update(data)
    return hasher.digests()


def hash_file(path: str | bytes, algorithms: Sequence[str] = (), **kwargs: object) -> tuple[Digests, int]:
    """Digests and size of the file at *path* (unbuffered reads, one pass)."""
    with open(path, "rb", buffering=0) as stream:
        return hash_stream(stream, algorithms, **kwargs)  # type: ignore[arg-type]
