"""Merkle proofs under random mutation (hypothesis): any change to a proof makes it fail."""

from __future__ import annotations

import hashlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.timestamping.merkle import MerkleTree, verify_inclusion

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _digests(n: int, salt: int) -> list[bytes]:
    return [hashlib.sha256(f"{salt}:{i}".encode()).digest() for i in range(n)]


@st.composite
def proofs(draw: st.DrawFn) -> tuple[list[bytes], int, int, list[bytes], bytes]:
    n = draw(st.integers(1, 1500))
    i = draw(st.integers(0, n - 1))
    d = _digests(n, draw(st.integers(0, 2**32)))
    tree = MerkleTree(d)
    return d, i, n, tree.inclusion_proof(i), tree.root


def _flip(b: bytes, bit: int) -> bytes:
    bit %= len(b) * 8
    out = bytearray(b)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@SETTINGS
@given(proofs())
def test_genuine_proofs_verify(case: tuple[list[bytes], int, int, list[bytes], bytes]) -> None:
    d, i, n, proof, root = case
    assert verify_inclusion(d[i], i, n, proof, root)


@SETTINGS
@given(proofs(), st.integers(0, 2**16), st.data())
def test_mutated_proofs_fail(
    case: tuple[list[bytes], int, int, list[bytes], bytes], bit: int, data: st.DataObject
) -> None:
    d, i, n, proof, root = case
    assert not verify_inclusion(_flip(d[i], bit), i, n, proof, root)
    assert not verify_inclusion(d[i], i, n, proof, _flip(root, bit))
    extra = hashlib.sha256(b"extra").digest()
    assert not verify_inclusion(d[i], i, n, [*proof, extra], root)
    assert not verify_inclusion(d[i], i, n, [extra, *proof], root)
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        flipped = [*proof[:k], _flip(proof[k], bit), *proof[k + 1 :]]
        assert not verify_inclusion(d[i], i, n, flipped, root)
        assert not verify_inclusion(d[i], i, n, proof[:k] + proof[k + 1 :], root)
        if len(proof) > 1 and k + 1 < len(proof):
            swapped = [*proof[:k], proof[k + 1], proof[k], *proof[k + 2 :]]
            assert not verify_inclusion(d[i], i, n, swapped, root)
    if n > 1:
        j = data.draw(st.integers(0, n - 1).filter(lambda j: j != i))
        assert not verify_inclusion(d[j], i, n, proof, root)
        assert not verify_inclusion(d[i], j, n, proof, root)


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=40),
    st.binary(max_size=40),
    st.lists(st.binary(min_size=0, max_size=40), max_size=70),
    st.lists(st.integers(), max_size=3),
)


@settings(max_examples=500, deadline=None)
@given(JUNK, JUNK, JUNK, JUNK, JUNK)
def test_verify_never_raises(
    digest: object, index: object, size: object, proof: object, root: object
) -> None:
    assert verify_inclusion(digest, index, size, proof, root) in (True, False)  # type: ignore[arg-type]
