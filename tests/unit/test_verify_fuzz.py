"""Random, truncated and mutated replies give a verdict, never an exception or a hang."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.timestamping import der, tlv
from service.timestamping.names import same_name
from service.timestamping.verify import Verdict, verify_timestamp
from tests.support import token_builder as tb

# Mutated certificates with a zero serial make cryptography warn; that is expected here.
pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")

DIGEST = hashlib.sha256(b"fuzz").digest()
PKI = tb.make_pki("ec-p256", intermediates=1)
REPLY = tb.build_reply(PKI, DIGEST)
# No example database: the suite stays free of files written into the shared checkout.
FAST = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))


def verify(reply: bytes) -> Verdict:
    return verify_timestamp(reply, digest=DIGEST, roots=[PKI.root], now=tb.NOW)


def _unsigned_spans() -> list[range]:
    """Bytes a mutation may change without invalidating: PKIStatusInfo, SignedData version and
    digestAlgorithms (OpenSSL ignores them too)."""
    outer = tlv.read(REPLY)
    status, token = tlv.children(REPLY, outer)
    content = tlv.children(REPLY, tlv.children(REPLY, token)[1])[0]
    version, digest_algs = tlv.children(REPLY, content)[:2]
    return [range(status.start, status.end), range(version.start, version.end),
            range(digest_algs.start, digest_algs.end)]


def _signed_data(reply: bytes = REPLY) -> list[tlv.Tlv]:
    """The children of the reply's SignedData."""
    token = tlv.children(reply, tlv.read(reply))[1]
    content = tlv.children(reply, tlv.children(reply, token)[1])[0]
    return tlv.children(reply, content)


def _sid_issuer() -> range:
    """The issuer Name in the SignerInfo's sid: unsigned, and matched to the certificate by
    RFC 5280 7.1 comparison (as OpenSSL's X509_NAME_cmp does), so a change of letter case
    there still names the same certificate."""
    signer = tlv.children(REPLY, _signed_data()[-1])[0]
    name = tlv.children(REPLY, tlv.children(REPLY, signer)[1])[0]
    return range(name.start, name.end)


def _certificate_signatures(reply: bytes) -> list[tlv.Tlv]:
    """Each certificate's signatureValue BIT STRING (its body starts with the unused bits)."""
    certs = next(part for part in _signed_data(reply) if part.tag == 0xA0)
    return [tlv.children(reply, cert)[2] for cert in tlv.children(reply, certs)]


UNSIGNED = _unsigned_spans()
SID_ISSUER = _sid_issuer()


def test_baseline_reply_is_valid() -> None:
    assert verify(REPLY).valid


@settings(FAST, max_examples=700)
@given(st.binary(max_size=3000))
def test_random_bytes_are_invalid(data: bytes) -> None:
    assert not verify(data).valid


@settings(FAST, max_examples=300)
@given(st.binary(max_size=200))
def test_random_bytes_inside_a_sequence_are_invalid(data: bytes) -> None:
    assert not verify(b"\x30" + der.length(len(data)) + data).valid


@settings(FAST, max_examples=400)
@given(st.integers(min_value=0, max_value=len(REPLY) - 1))
def test_truncated_replies_are_invalid(cut: int) -> None:
    assert not verify(REPLY[:cut]).valid


@settings(FAST, max_examples=500)
@given(st.integers(min_value=0, max_value=len(REPLY) - 1), st.integers(1, 255))
def test_single_byte_mutations_are_invalid_outside_unsigned_fields(at: int, xor: int) -> None:
    mutated = bytearray(REPLY)
    mutated[at] ^= xor
    verdict = verify(bytes(mutated))
    assert isinstance(verdict, Verdict)
    if any(at in span for span in UNSIGNED):
        return
    if at in SID_ISSUER and same_name(bytes(mutated[SID_ISSUER.start:SID_ISSUER.stop]),
                                      REPLY[SID_ISSUER.start:SID_ISSUER.stop]):
        return
    assert not verdict.valid, (at, xor)


def _reply_with_even_signature_ends() -> tuple[tb.PyPKI, bytes, list[int]]:
    """A reply whose certificates' signatures all end in a 0 bit, so that an unused-bits
    octet of 1 still parses (DER wants unused bits zero) and only the verifier can refuse it.
    Each try succeeds with probability 1/4; 64 tries fail with probability below 1e-7."""
    for _ in range(64):
        pki = tb.make_pki("ec-p256", intermediates=1)
        reply = tb.build_reply(pki, DIGEST)
        signatures = _certificate_signatures(reply)
        if all(reply[sig.body_end - 1] & 1 == 0 for sig in signatures):
            return pki, reply, [sig.body for sig in signatures]
    raise AssertionError("no reply with even signature ends in 64 tries")


def test_certificate_signature_with_unused_bits_is_invalid() -> None:
    """OpenSSL refuses a signatureValue whose unused-bits octet is not 0 ("invalid bit string
    bits leftover"); so must we. A CI run found the chain accepted it: cryptography drops that
    octet, and parses it when the bits it covers are zero."""
    pki, reply, offsets = _reply_with_even_signature_ends()
    assert len(offsets) == 2  # the TSA's certificate and its intermediate
    assert verify_timestamp(reply, digest=DIGEST, roots=[pki.root], now=tb.NOW).valid
    for at in offsets:  # the TSA's certificate is also bound by its ESSCertIDv2 hash
        assert reply[at] == 0
        mutated = bytearray(reply)
        mutated[at] = 1
        verdict = verify_timestamp(bytes(mutated), digest=DIGEST, roots=[pki.root], now=tb.NOW)
        assert not verdict.valid, at
    assert any("no certificate chain" in reason for reason in verdict.reasons), verdict.reasons



@settings(FAST, max_examples=300)
@given(st.lists(st.tuples(st.integers(0, len(REPLY) - 1), st.binary(min_size=0, max_size=4)),
                min_size=1, max_size=4))
def test_splices_give_a_verdict(edits: list[tuple[int, bytes]]) -> None:
    mutated = bytearray(REPLY)
    for at, chunk in edits:
        mutated[at : at + len(chunk) // 2 + 1] = chunk
    verdict = verify(bytes(mutated))
    assert isinstance(verdict, Verdict)
    assert verdict.valid or verdict.reasons
