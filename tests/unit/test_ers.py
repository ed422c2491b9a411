"""RFC 4998 hash trees and EvidenceRecord DER (timestamping.ers), without any service."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.errors import MalformedInputError
from service.evidence.renewal_check import coverage, data_objects
from service.timestamping import ers
from service.usecases.renew import uses_weak_hash
from tests.support.token_builder import build_reply, make_pki


def h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def test_list_values_sort_before_concatenating() -> None:
    a, b = h(b"a"), h(b"b")
    assert ers.list_value([a, b]) == ers.list_value([b, a]) == h(min(a, b) + max(a, b))


def test_a_three_leaf_tree_by_hand() -> None:
    leaves = [[h(b"token0"), h(b"cert0")], [h(b"token1")], [h(b"token2")]]
    v = [ers.list_value(leaf) for leaf in leaves]
    tree = ers.build_tree(leaves)
    assert tree.root == ers.list_value([ers.list_value([v[0], v[1]]), v[2]])
    assert tree.reduced(0) == (tuple(leaves[0]), (v[1],), (v[2],))
    assert tree.reduced(2) == (tuple(leaves[2]), (ers.list_value([v[0], v[1]]),))


@given(st.lists(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=3),
                min_size=1, max_size=40))
def test_every_leaf_reduces_to_the_root_and_nothing_else_does(leaves: list[list[bytes]]) -> None:
    tree = ers.build_tree(leaves)
    for i, leaf in enumerate(leaves):
        assert ers.reduce(leaf[0], tree.reduced(i)) == tree.root
    outsider = h(b"".join(b for leaf in leaves for b in leaf))  # in no list
    if all(outsider not in leaf for leaf in leaves):
        assert ers.reduce(outsider, tree.reduced(0)) is None


def test_a_hash_not_in_the_first_list_is_not_covered() -> None:
    tree = ers.build_tree([[h(b"x")], [h(b"y")]])
    assert ers.reduce(h(b"z"), tree.reduced(0)) is None


def test_records_round_trip_and_refuse_garbage() -> None:
    pki = make_pki()
    tree = ers.build_tree([[h(b"a")], [h(b"b")], [h(b"c")]])
    token = ers.token_of(build_reply(pki, tree.root))
    chain = [ers.ArchiveTimeStamp(tree.reduced(1), token),
             ers.ArchiveTimeStamp((), ers.token_of(build_reply(pki, h(token))))]
    der = ers.encode_record(chain)
    assert ers.decode_record(der) == chain
    assert ers.reduce(h(b"b"), ers.decode_record(der)[0].lists) == tree.root
    for bad in (b"", b"\x30\x00", b"\x30\x03\x02\x01\x02", b"x" * (ers.MAX_RECORD_BYTES + 1)):
        with pytest.raises(MalformedInputError):
            ers.decode_record(bad)


def test_weak_imprints_and_certificate_hashes_make_a_token_due() -> None:
    pki = make_pki()
    strong = build_reply(pki, h(b"x"))
    weak = build_reply(pki, hashlib.sha1(b"x").digest(), tst_kwargs={"hash_name": "sha1"})
    chain = [pki.tsa]
    assert not uses_weak_hash(strong, chain, ("md5", "sha1"))
    assert uses_weak_hash(weak, chain, ("md5", "sha1"))
    assert uses_weak_hash(strong, chain, ("SHA-256",))  # the certificates are signed with it
    assert not uses_weak_hash(weak, chain, ())


def test_the_first_list_must_fit_the_token_its_chain_and_revocation_members() -> None:
    crl = ("revocation/t/aa.crl", b"crl")
    objects = data_objects("t", b"token", [b"cert1", b"root"], [crl])
    first = ers.data_object_hashes(b"token", [b"cert1", b"root"], [b"crl"])
    fit = coverage(objects, first)
    assert fit.problem is None and fit.uncovered == ()
    assert fit.covered == ("tokens/t.tsr", "certs/t.pem#1", "certs/t.pem#2", "revocation/t/aa.crl")
    # Renewed before the CRL was stored: the member is reported, not a failure.
    fit = coverage(objects, ers.data_object_hashes(b"token", [b"cert1", b"root"], []))
    assert fit.problem is None and fit.uncovered == ("revocation/t/aa.crl",)
    # A changed CRL: its old hash matches no member.
    changed = data_objects("t", b"token", [b"cert1", b"root"], [(crl[0], b"other")])
    problem = coverage(changed, first).problem
    assert problem is not None and "no longer holds" in problem
    # A chain certificate the record does not cover.
    problem = coverage(objects, ers.data_object_hashes(b"token", [b"cert1"], [b"crl"])).problem
    assert problem is not None and "certs/t.pem#2" in problem
