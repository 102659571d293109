"""Merkle tree hashing, inclusion and consistency proofs exactly as RFC 6962 section 2.1 defines
them (and RFC 9162 section 2.1 verifies them).  Pure: no I/O.

The custody log is the sequence of leaves; leaf *i* (0-based) is custody event ``seq = i + 1``.

* ``leaf_hash(d) = SHA-256(0x00 || d)`` and ``node_hash(l, r) = SHA-256(0x01 || l || r)``;
* the tree hash of *n* leaves, ``MTH(D[n])``: the hash of the empty string for ``n = 0``, the leaf
  hash for ``n = 1``, else ``node_hash(MTH(D[0:k]), MTH(D[k:n]))`` with *k* the largest power
  of two smaller than *n*;
* an inclusion proof ``PATH(m, D[n])`` and a consistency proof ``PROOF(m, D[n])`` as in RFC 6962
  sections 2.1.1 and 2.1.2.

Hashes of ranges come from a :class:`SubtreeSource`: any function giving the hash of a *perfect*
subtree (``2**level`` leaves starting at a multiple of ``2**level``).  Every range the
algorithms need splits into O(log n) perfect subtrees, so with stored perfect subtrees (see
:class:`evidence_catalog.store.database.CatalogDatabase`) a proof costs O(log n) lookups, and
with an in-memory list of leaves (:func:`perfect_from_leaves`) the functions work on their own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from evidence_catalog.errors import IntegrityError

#: ``(level, index) -> hash`` of the perfect subtree of ``2**level`` leaves starting at leaf
#: ``index * 2**level``.
SubtreeSource = Callable[[int, int], bytes]

EMPTY_ROOT = hashlib.sha256(b"").digest()


class MerkleError(IntegrityError, ValueError):
    """The Merkle tree cannot give or prove what is asked of it: a leaf or size outside the
    tree, a proof of the wrong shape, or a perfect subtree the catalog should hold but does not.

    It is also a :class:`ValueError`, which is what it was before."""


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256 of 0x00 and the leaf data."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256 of 0x01 and the two children."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than *n* (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_hash(subtree: SubtreeSource, start: int, end: int) -> bytes:
    """``MTH(D[start:end])`` for a range the RFC's recursion produces (``start`` a multiple of
    the largest power of two not above ``end - start``): O(log n) perfect subtrees."""
    n = end - start
    if n <= 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0:  # a power of two, aligned: one perfect subtree
        level = n.bit_length() - 1
        return subtree(level, start >> level)
    k = _split(n)
    return node_hash(subtree(k.bit_length() - 1, start // k), range_hash(subtree, start + k, end))


def root(subtree: SubtreeSource, size: int) -> bytes:
    """``MTH(D[size])``: the root of the first *size* leaves."""
    return range_hash(subtree, 0, size)


def inclusion_proof(subtree: SubtreeSource, index: int, size: int) -> list[bytes]:
    """``PATH(index, D[size])``: the audit path of leaf *index* in the tree of *size* leaves."""
    if not 0 <= index < size:
        raise MerkleError(f"leaf {index} is not in a tree of {size} leaves")
    return _path(subtree, index, 0, size)


def _path(subtree: SubtreeSource, m: int, start: int, end: int) -> list[bytes]:
    n = end - start
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(subtree, m, start, start + k), range_hash(subtree, start + k, end)]
    return [*_path(subtree, m - k, start + k, end), range_hash(subtree, start, start + k)]


def consistency_proof(subtree: SubtreeSource, old_size: int, new_size: int) -> list[bytes]:
    """``PROOF(old_size, D[new_size])``: that the tree of *new_size* leaves extends the tree of
    *old_size* leaves (empty when the sizes are equal)."""
    if not 0 < old_size <= new_size:
        raise MerkleError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size == new_size:
        return []
    return _subproof(subtree, old_size, 0, new_size, True)


def _subproof(subtree: SubtreeSource, m: int, start: int, end: int, whole: bool) -> list[bytes]:
    n = end - start
    if m == n:
        return [] if whole else [range_hash(subtree, start, end)]
    k = _split(n)
    if m <= k:
        return [*_subproof(subtree, m, start, start + k, whole), range_hash(subtree, start + k, end)]
    return [*_subproof(subtree, m - k, start + k, end, False), range_hash(subtree, start, start + k)]


# -- verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2) ---------------------------------------


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to; :class:`MerkleError` for a proof of the wrong shape."""
    if not 0 <= index < size:
        raise MerkleError(f"leaf {index} is not in a tree of {size} leaves")
    if len(leaf) != 32:
        raise MerkleError("a leaf hash is 32 bytes")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if len(p) != 32:
            raise MerkleError("a proof hash is not 32 bytes")
        if sn == 0:
            raise MerkleError("the proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise MerkleError("the proof is shorter than the tree is deep")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes) -> bool:
    """Whether *proof* shows leaf hash *leaf* at *index* in the tree of *size* with this root."""
    try:
        return root_from_inclusion(index, size, leaf, proof) == expected_root
    except MerkleError:
        return False


def verify_consistency(old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes) -> bool:
    """Whether *proof* shows that the tree of *new_size* leaves with *new_root* extends the tree
    of *old_size* leaves with *old_root*."""
    if not 0 < old_size <= new_size:
        return False  # a proof from the empty tree proves nothing, and is refused (RFC 9162)
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof or any(len(h) != 32 for h in (*proof, old_root, new_root)):
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a node of the new tree
        path = [old_root, *path]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


# -- perfect subtrees ---------------------------------------------------------------------------


def perfect_from_leaves(leaves: Sequence[bytes]) -> SubtreeSource:
    """A :data:`SubtreeSource` over leaf hashes held in memory (computed on demand, cached)."""
    cache: dict[tuple[int, int], bytes] = {}

    def subtree(level: int, index: int) -> bytes:
        if level == 0:
            return leaves[index]
        key = (level, index)
        found = cache.get(key)
        if found is None:
            found = node_hash(subtree(level - 1, 2 * index), subtree(level - 1, 2 * index + 1))
            cache[key] = found
        return found

    return subtree


def completed_nodes(index: int, leaf: bytes, subtree: SubtreeSource) -> list[tuple[int, int, bytes]]:
    """The perfect subtrees that adding leaf *index* completes: ``(level, index, hash)``, the
    leaf itself first.  Storing these as leaves arrive keeps every perfect subtree at hand."""
    nodes = [(0, index, leaf)]
    level, position, current = 0, index, leaf
    while position & 1:
        current = node_hash(subtree(level, position - 1), current)
        level, position = level + 1, position >> 1
        nodes.append((level, position, current))
    return nodes


class Frontier:
    """The tree over leaves given one at a time, in O(log n) memory: the roots of the perfect
    subtrees the leaves so far split into (one per bit of their count, largest first).

    :meth:`add` names every perfect subtree each leaf completes (what
    :func:`completed_nodes` gives, so a stored tree can be checked node by node as a log is
    read) and :meth:`root` is ``MTH`` of the leaves so far, without holding them."""

    def __init__(self) -> None:
        self.size = 0
        self._peaks: list[bytes] = []

    def add(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add the next leaf hash; return the perfect subtrees it completes ``(level, index,
        hash)``, the leaf itself first."""
        nodes = [(0, self.size, leaf)]
        level, position, current = 0, self.size, leaf
        while position & 1:
            current = node_hash(self._peaks.pop(), current)
            level, position = level + 1, position >> 1
            nodes.append((level, position, current))
        self._peaks.append(current)
        self.size += 1
        return nodes

    def root(self) -> bytes:
        """``MTH`` of the leaves added so far: the perfect subtrees folded from the right, as
        the RFC's split of a range at its largest power of two makes it."""
        if not self._peaks:
            return EMPTY_ROOT
        current = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            current = node_hash(peak, current)
        return current
