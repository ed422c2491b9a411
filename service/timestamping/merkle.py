"""Merkle trees over manifest digests, hashed as in RFC 9162 section 2.1 (SHA-256).

A batch of receipts is stamped once: the TSA imprint is the tree root, and each receipt keeps an
inclusion proof from its leaf to that root. Hashed bytes (domain-separated so that a leaf can
never be passed off as an interior node):

    leaf = SHA-256(0x00 || manifest_digest)      # manifest_digest: 32 raw bytes
    node = SHA-256(0x01 || left || right)

The tree over n leaves splits at k, the largest power of two smaller than n (RFC 9162 MTH).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

from service.errors import MalformedInputError

HASH_NAME = "sha256"
DIGEST_SIZE = 32  # SHA-256 output: manifest digests, leaf and node hashes are all this long
MAX_TREE_SIZE = 100_000  # one TSA request per batch; bounds memory (~6 MB of hashes) and latency
MAX_PROOF_LENGTH = 64  # an audit path for any tree of < 2**64 leaves; longer input is rejected

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(digest: bytes) -> bytes:
    """Hash a 32-byte manifest digest into its leaf: SHA-256(0x00 || digest)."""
    _check_digest(digest, "manifest digest")
    return hashlib.sha256(_LEAF_PREFIX + digest).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash two child hashes into their parent: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


class MerkleTree:
    """An RFC 9162 tree over manifest digests, with its root and inclusion proofs.

    All levels are kept (about 2n hashes): building hashes each node once, a proof reads
    O(log n) of them.
    """

    def __init__(self, digests: Sequence[bytes]) -> None:
        if not 1 <= len(digests) <= MAX_TREE_SIZE:
            raise MalformedInputError(
                f"a Merkle tree needs 1..{MAX_TREE_SIZE} leaves, got {len(digests)}"
            )
        level = [leaf_hash(d) for d in digests]
        # Level-by-level pairing: an odd last node is promoted unchanged to the level above.
        # This equals RFC 9162 MTH because its left subtrees are always complete (power of 2).
        self._levels: list[list[bytes]] = [level]
        while len(level) > 1:
            nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            self._levels.append(nxt)
            level = nxt

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0])

    @property
    def root(self) -> bytes:
        """The tree head: the bytes the TSA is asked to imprint."""
        return self._levels[-1][0]

    def leaf(self, index: int) -> bytes:
        """The leaf hash at `index`."""
        return self._levels[0][self._check_index(index)]

    def inclusion_proof(self, index: int) -> list[bytes]:
        """The audit path (RFC 9162 2.1.3.1) for leaf `index`, ordered leaf to root."""
        self._check_index(index)
        proof = []
        for level in self._levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                proof.append(level[sibling])
            # else: the node is the promoted last one of an odd level and has no sibling here.
            index >>= 1
        return proof

    def _check_index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.size:
            raise MalformedInputError(f"leaf index {index!r} outside 0..{self.size - 1}")
        return index


def verify_inclusion(
    digest: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Check that `digest` is leaf `index` of a tree of `size` leaves with head `root`.

    RFC 9162 section 2.1.3.2, step by step. Never raises: any malformed input gives False.
    """
    try:
        if not (_is_int(index) and _is_int(size) and 0 <= index < size <= MAX_TREE_SIZE):
            return False
        if not isinstance(proof, Sequence) or len(proof) > MAX_PROOF_LENGTH:
            return False
        if not all(_is_hash(p) for p in proof) or not _is_hash(root) or not _is_hash(digest):
            return False
        fn, sn = index, size - 1  # 1-2. fn: the leaf's position, sn: the last leaf's
        r = leaf_hash(bytes(digest))  # 3. start from the leaf hash
        for p in proof:  # 4. fold in each audit path element
            if sn == 0:  # 4a. path longer than the tree is tall
                return False
            if fn & 1 or fn == sn:  # 4b. p is a left sibling
                r = node_hash(bytes(p), r)
                while fn & 1 == 0 and fn != 0:  # skip levels where r had no right sibling
                    fn >>= 1
                    sn >>= 1
            else:  # 4c. p is a right sibling
                r = node_hash(r, bytes(p))
            fn >>= 1
            sn >>= 1
        return sn == 0 and hmac.compare_digest(r, bytes(root))  # 5. path used up, root matches
    except Exception:  # contract: a verifier answers False, it does not raise
        return False


def proof_to_json(
    digest: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> dict[str, Any]:
    """The proof as stored in the evidence bundle's proof.json (hex strings, leaf = leaf hash)."""
    return {
        "hash": HASH_NAME,
        "leaf_index": index,
        "tree_size": size,
        "leaf": leaf_hash(digest).hex(),
        "audit_path": [p.hex() for p in proof],
        "root": root.hex(),
    }


def tree_proof_to_json(tree: MerkleTree, digest: bytes, index: int) -> dict[str, Any]:
    """proof_to_json for leaf `index` of `tree`, checking that `digest` really is that leaf."""
    if leaf_hash(digest) != tree.leaf(index):
        raise MalformedInputError(f"digest is not leaf {index} of this tree")
    return proof_to_json(digest, index, tree.size, tree.inclusion_proof(index), tree.root)


def _check_digest(value: bytes, what: str) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != DIGEST_SIZE:
        raise MalformedInputError(f"{what} must be {DIGEST_SIZE} bytes")


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes | bytearray) and len(value) == DIGEST_SIZE


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
