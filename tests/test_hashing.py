"""The one streaming hashing routine agrees with hashlib for any data cut into any blocks."""

from __future__ import annotations

import hashlib
import io
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evidence_catalog.errors import InputError
from evidence_catalog.hashing import SUPPORTED_ALGORITHMS, hash_bytes, hash_stream, normalise_algorithms

from .conftest import ZeroStream


class ChunkedStream:
    """A readable stream that hands out its data in the chunk sizes it is given."""

    def __init__(self, data: bytes, chunks: list[int]) -> None:
        self.data, self.chunks, self.pos = data, list(chunks), 0

    def readinto(self, buffer: memoryview) -> int:
        size = self.chunks.pop(0) if self.chunks else len(buffer)
        size = max(1, min(size, len(buffer), len(self.data) - self.pos))
        if self.pos >= len(self.data):
            return 0
        buffer[:size] = self.data[self.pos : self.pos + size]
        self.pos += size
        return size


algorithm_sets = st.lists(st.sampled_from(SUPPORTED_ALGORITHMS), unique=True)


@given(
    data=st.binary(max_size=5000),
    chunks=st.lists(st.integers(min_value=1, max_value=700), max_size=50),
    block_size=st.integers(min_value=1, max_value=4096),
    algorithms=algorithm_sets,
)
def test_stream_digests_equal_hashlib_over_any_chunking(
    data: bytes, chunks: list[int], block_size: int, algorithms: list[str]
) -> None:
    digests, size = hash_stream(ChunkedStream(data, chunks), algorithms, block_size=block_size)
    assert size == len(data)
    expected = {a: hashlib.new(a, data).hexdigest() for a in ("sha256", *algorithms)}
    assert digests.as_dict() == expected


@given(data=st.binary(max_size=3000), block_size=st.integers(min_value=1, max_value=512))
def test_blocks_seen_by_the_copier_are_exactly_the_bytes_hashed(data: bytes, block_size: int) -> None:
    copied = bytearray()
    digests, _ = hash_stream(io.BytesIO(data), block_size=block_size, on_block=copied.extend)
    assert bytes(copied) == data
    assert digests == hash_bytes(data)


def test_sha256_is_always_computed_and_first() -> None:
    assert normalise_algorithms(["MD5", "sha-1", "blake2b"]) == ("sha256", "md5", "sha1", "blake2b")


def test_unknown_algorithm_is_refused_by_name() -> None:
    with pytest.raises(InputError, match="crc32"):
        normalise_algorithms(["crc32"])


def test_memory_does_not_grow_with_stream_size() -> None:
    size = 64 * 1024 * 1024
    tracemalloc.start()
    try:
        digests, total = hash_stream(ZeroStream(size), ["md5", "sha1"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == size
    assert digests.sha256 == hashlib.sha256(bytes(size)).hexdigest()
    assert peak < 4 * 1024 * 1024  # one 1 MiB block plus small change, never the whole stream


def test_a_stream_with_no_data_ready_is_not_taken_for_its_end() -> None:
    class NonBlocking:
        def readinto(self, buffer: memoryview) -> None:
            return None

    with pytest.raises(BlockingIOError):
        hash_stream(NonBlocking())  # type: ignore[arg-type]
