"""RFC 6962 Merkle trees: the published reference vectors, and properties against a direct
transcription of the RFC's recursive definitions."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evidence_catalog import merkle

VECTORS = json.loads((Path(__file__).parent / "data" / "rfc6962_vectors.json").read_text(encoding="utf-8"))
LEAVES = [bytes.fromhex(h) for h in VECTORS["leaves_hex"]]
ROOTS = [bytes.fromhex(h) for h in VECTORS["roots_hex"]]


def b64(value: str | None) -> bytes:
    return b"" if value is None else base64.b64decode(value)


# -- the RFC's definitions, written out as the RFC states them ---------------------------------


def mth(data: list[bytes]) -> bytes:
    n = len(data)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + mth(data[:k]) + mth(data[k:])).digest()


def path(m: int, data: list[bytes]) -> list[bytes]:
    n = len(data)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*path(m, data[:k]), mth(data[k:])]
    return [*path(m - k, data[k:]), mth(data[:k])]


def subproof(m: int, data: list[bytes], b: bool) -> list[bytes]:
    n = len(data)
    if m == n:
        return [] if b else [mth(data)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*subproof(m, data[:k], b), mth(data[k:])]
    return [*subproof(m - k, data[k:], False), mth(data[:k])]


def source(data: list[bytes]) -> merkle.SubtreeSource:
    return merkle.perfect_from_leaves([merkle.leaf_hash(d) for d in data])


# -- reference vectors -------------------------------------------------------------------------


@pytest.mark.parametrize("size", range(9))
def test_the_roots_of_the_reference_leaves(size: int) -> None:
    assert merkle.root(source(LEAVES[:size]), size) == ROOTS[size]
    assert mth(LEAVES[:size]) == ROOTS[size]


@pytest.mark.parametrize("vector", VECTORS["inclusion"], ids=lambda v: v["file"])
def test_reference_inclusion_vectors(vector: dict[str, Any]) -> None:
    proof = [b64(p) for p in vector["proof"] or []]
    ok = merkle.verify_inclusion(
        vector["leafIdx"], vector["treeSize"], b64(vector["leafHash"]), proof, b64(vector["root"])
    )
    assert ok is not vector["wantErr"]
    if not vector["wantErr"] and vector["treeSize"] <= len(LEAVES) and b64(vector["root"]) == ROOTS[vector["treeSize"]]:
        # The proof we make for the reference tree is the published one.
        made = merkle.inclusion_proof(source(LEAVES[: vector["treeSize"]]), vector["leafIdx"], vector["treeSize"])
        assert made == proof


@pytest.mark.parametrize("vector", VECTORS["consistency"], ids=lambda v: v["file"])
def test_reference_consistency_vectors(vector: dict[str, Any]) -> None:
    proof = [b64(p) for p in vector["proof"] or []]
    ok = merkle.verify_consistency(vector["size1"], vector["size2"], proof, b64(vector["root1"]), b64(vector["root2"]))
    assert ok is not vector["wantErr"]
    size1, size2 = vector["size1"], vector["size2"]
    if (
        not vector["wantErr"]
        and 0 < size1 <= size2 <= len(LEAVES)
        and b64(vector["root2"]) == ROOTS[size2]
        and b64(vector["root1"]) == ROOTS[size1]
    ):
        assert merkle.consistency_proof(source(LEAVES[:size2]), size1, size2) == proof


def test_there_are_reference_vectors_of_both_kinds_and_outcomes() -> None:
    for kind in ("inclusion", "consistency"):
        outcomes = {v["wantErr"] for v in VECTORS[kind]}
        assert outcomes == {True, False}, kind


# -- properties --------------------------------------------------------------------------------

leaf_lists = st.lists(st.binary(max_size=8), min_size=1, max_size=70)


@settings(max_examples=200, deadline=None)
@given(leaf_lists)
def test_root_agrees_with_the_rfc_definition(data: list[bytes]) -> None:
    assert merkle.root(source(data), len(data)) == mth(data)


@settings(max_examples=200, deadline=None)
@given(leaf_lists, st.data())
def test_inclusion_proofs_are_the_rfc_path_and_verify(data: list[bytes], draw: st.DataObject) -> None:
    m = draw.draw(st.integers(0, len(data) - 1))
    proof = merkle.inclusion_proof(source(data), m, len(data))
    assert proof == path(m, data)
    leaf = merkle.leaf_hash(data[m])
    assert merkle.verify_inclusion(m, len(data), leaf, proof, mth(data))
    # Any other leaf, index, size or a changed proof hash fails.
    assert not merkle.verify_inclusion(m, len(data), merkle.leaf_hash(data[m] + b"x"), proof, mth(data))
    if proof:
        i = draw.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:i], bytes([proof[i][0] ^ 1]) + proof[i][1:], *proof[i + 1 :]]
        assert not merkle.verify_inclusion(m, len(data), leaf, bad, mth(data))
        assert not merkle.verify_inclusion(m, len(data), leaf, proof[:-1], mth(data))


@settings(max_examples=200, deadline=None)
@given(leaf_lists, st.data())
def test_consistency_proofs_are_the_rfc_proof_and_verify(data: list[bytes], draw: st.DataObject) -> None:
    n = len(data)
    m = draw.draw(st.integers(1, n))
    proof = merkle.consistency_proof(source(data), m, n)
    assert proof == ([] if m == n else subproof(m, data, True))
    assert merkle.verify_consistency(m, n, proof, mth(data[:m]), mth(data))
    # A tree that does not extend the old one is not consistent with it.
    changed = [*data[: m - 1], data[m - 1] + b"!", *data[m:]]
    assert not merkle.verify_consistency(m, n, proof, mth(changed[:m]), mth(data))
    if m < n:
        assert not merkle.verify_consistency(m, n, proof, mth(data[:m]), mth(changed))
        assert not merkle.verify_consistency(m, n, proof[:-1], mth(data[:m]), mth(data))


@settings(max_examples=100, deadline=None)
@given(leaf_lists)
def test_completed_nodes_build_every_perfect_subtree(data: list[bytes]) -> None:
    stored: dict[tuple[int, int], bytes] = {}
    for index, item in enumerate(data):
        for level, position, value in merkle.completed_nodes(
            index, merkle.leaf_hash(item), lambda lv, ix: stored[(lv, ix)]
        ):
            stored[(level, position)] = value
    reference = source(data)
    for (level, position), value in stored.items():
        assert value == reference(level, position)
    assert merkle.root(lambda lv, ix: stored[(lv, ix)], len(data)) == mth(data)
