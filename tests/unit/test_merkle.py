"""Merkle tree: known answers against a literal RFC 9162 MTH/PATH, exhaustive small trees."""

from __future__ import annotations

import hashlib

import pytest

from service.errors import MalformedInputError
from service.timestamping import merkle
from service.timestamping.merkle import (
    MAX_TREE_SIZE,
    MerkleTree,
    leaf_hash,
    proof_to_json,
    tree_proof_to_json,
    verify_inclusion,
)

EXHAUSTIVE_MAX = 300  # every tree size 1..300 and every leaf in it


def digests(n: int, salt: bytes = b"") -> list[bytes]:
    return [hashlib.sha256(salt + i.to_bytes(4, "big")).digest() for i in range(n)]


class Reference:
    """RFC 9162 section 2.1.1 and 2.1.3.1 written out literally (recursion on D[n])."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.d = leaves
        self.memo: dict[tuple[int, int], bytes] = {}  # keeps the exhaustive test O(n) per tree

    @staticmethod
    def split(n: int) -> int:
        k = 1
        while k * 2 < n:
            k *= 2
        return k

    def mth(self, lo: int, hi: int) -> bytes:
        if (lo, hi) not in self.memo:
            n = hi - lo
            if n == 1:
                value = hashlib.sha256(b"\x00" + self.d[lo]).digest()
            else:
                k = self.split(n)
                value = hashlib.sha256(
                    b"\x01" + self.mth(lo, lo + k) + self.mth(lo + k, hi)
                ).digest()
            self.memo[lo, hi] = value
        return self.memo[lo, hi]

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        n = hi - lo
        if n == 1:
            return []
        k = self.split(n)
        if m < k:
            return self.path(m, lo, lo + k) + [self.mth(lo + k, hi)]
        return self.path(m - k, lo + k, hi) + [self.mth(lo, lo + k)]


def shape(m: int, n: int) -> tuple[str, ...]:
    """Which side each audit-path sibling sits on, leaf to root (RFC 9162 PATH recursion)."""
    if n == 1:
        return ()
    k = Reference.split(n)
    return shape(m, k) + ("R",) if m < k else shape(m - k, n - k) + ("L",)


# RFC 9162 has no test vectors; these pin our bytes so that a change of hashing is noticed.
def test_known_answers_pinned() -> None:
    d = digests(3)
    assert MerkleTree(d[:1]).root == hashlib.sha256(b"\x00" + d[0]).digest()
    l0, l1, l2 = (hashlib.sha256(b"\x00" + x).digest() for x in d)
    n01 = hashlib.sha256(b"\x01" + l0 + l1).digest()
    assert MerkleTree(d).root == hashlib.sha256(b"\x01" + n01 + l2).digest()
    assert MerkleTree(d).inclusion_proof(2) == [n01]
    assert MerkleTree(d).inclusion_proof(0) == [l1, l2]
    assert MerkleTree(digests(5)).root.hex() == (Reference(digests(5)).mth(0, 5).hex())


def test_every_size_and_leaf_matches_reference_and_verifies() -> None:
    for n in range(1, EXHAUSTIVE_MAX + 1):
        d = digests(n)
        tree, ref = MerkleTree(d), Reference(d)
        assert tree.size == n
        assert tree.root == ref.mth(0, n), n
        for i in range(n):
            proof = tree.inclusion_proof(i)
            assert proof == ref.path(i, 0, n), (n, i)
            assert verify_inclusion(d[i], i, n, proof, tree.root), (n, i)
            # wrong leaf: another digest, or this one at the neighbouring position
            assert not verify_inclusion(d[(i + 1) % n], i, n, proof, tree.root) or n == 1
            for j in (i - 1, i + 1):
                assert not verify_inclusion(d[i], j, n, proof, tree.root), (n, i, j)


def test_wrong_index_never_verifies_small_trees() -> None:
    for n in range(1, 65):
        d = digests(n)
        tree = MerkleTree(d)
        for i in range(n):
            proof = tree.inclusion_proof(i)
            for j in range(n + 2):
                assert verify_inclusion(d[i], j, n, proof, tree.root) == (j == i), (n, i, j)


def test_proof_from_a_tree_of_another_size_fails() -> None:
    for n in range(1, EXHAUSTIVE_MAX + 1):
        d = digests(n + 1)
        small, big = MerkleTree(d[:n]), MerkleTree(d)
        for i in range(n):
            assert not verify_inclusion(d[i], i, n, big.inclusion_proof(i), small.root)
            assert not verify_inclusion(d[i], i, n + 1, small.inclusion_proof(i), big.root)


def test_claimed_size_is_bound_only_through_the_path_shape() -> None:
    """The root alone does not authenticate tree_size (RFC 9162 signs it in the tree head):
    a claimed size verifies exactly when it gives the leaf the same audit-path shape. The
    digest's inclusion under the root is sound either way; the size must come from the batch."""
    for n in range(1, 130):
        d = digests(n)
        tree = MerkleTree(d)
        for i in range(n):
            proof = tree.inclusion_proof(i)
            for other in range(max(1, n - 3), n + 4):
                expected = other == n or (i < other and shape(i, other) == shape(i, n))
                assert verify_inclusion(d[i], i, other, proof, tree.root) == expected


def test_batch_of_one() -> None:
    d = digests(1)
    tree = MerkleTree(d)
    assert tree.root == leaf_hash(d[0])
    assert tree.inclusion_proof(0) == []
    assert verify_inclusion(d[0], 0, 1, [], tree.root)
    assert not verify_inclusion(d[0], 0, 2, [], tree.root)


@pytest.mark.parametrize("bad", [b"", b"x" * 31, b"x" * 33, "a" * 32, None])
def test_digest_length_is_checked(bad: object) -> None:
    with pytest.raises(MalformedInputError):
        leaf_hash(bad)  # type: ignore[arg-type]
    with pytest.raises(MalformedInputError):
        MerkleTree([digests(1)[0], bad])  # type: ignore[list-item]


def test_tree_size_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MalformedInputError):
        MerkleTree([])
    monkeypatch.setattr(merkle, "MAX_TREE_SIZE", 8)
    MerkleTree(digests(8))
    with pytest.raises(MalformedInputError):
        MerkleTree(digests(9))
    assert MAX_TREE_SIZE == 100_000


def test_largest_tree_builds() -> None:
    d = digests(MAX_TREE_SIZE)
    tree = MerkleTree(d)
    last = MAX_TREE_SIZE - 1
    proof = tree.inclusion_proof(last)
    assert len(proof) <= 17
    assert verify_inclusion(d[last], last, MAX_TREE_SIZE, proof, tree.root)
    with pytest.raises(MalformedInputError):
        MerkleTree(d + d[:1])


@pytest.mark.parametrize("index", [-1, 3, True, 1.0, "0", None])
def test_inclusion_proof_rejects_bad_index(index: object) -> None:
    with pytest.raises(MalformedInputError):
        MerkleTree(digests(3)).inclusion_proof(index)  # type: ignore[arg-type]


def test_proof_json() -> None:
    d = digests(6)
    tree = MerkleTree(d)
    doc = tree_proof_to_json(tree, d[4], 4)
    assert doc == proof_to_json(d[4], 4, 6, tree.inclusion_proof(4), tree.root)
    assert doc["hash"] == "sha256"
    assert doc["leaf"] == leaf_hash(d[4]).hex()
    assert doc["root"] == tree.root.hex()
    assert (doc["leaf_index"], doc["tree_size"]) == (4, 6)
    path = [bytes.fromhex(h) for h in doc["audit_path"]]
    assert verify_inclusion(d[4], doc["leaf_index"], doc["tree_size"], path, tree.root)
    with pytest.raises(MalformedInputError):
        tree_proof_to_json(tree, d[3], 4)
