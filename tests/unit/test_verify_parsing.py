"""Tolerant parsing (BER, unsorted sets), input bounds and caller-argument errors."""

from __future__ import annotations

import hashlib

import pytest

from service.errors import MalformedInputError
from service.timestamping import cms, tlv
from service.timestamping.verify import digest_data, verify_timestamp
from tests.support import token_builder as tb

DIGEST = hashlib.sha256(b"parsing").digest()


@pytest.fixture(scope="module")
def pki() -> tb.PyPKI:
    return tb.make_pki("ec-p256", intermediates=1)


def verify(pki: tb.PyPKI, reply: bytes, **kwargs):
    return verify_timestamp(reply, digest=DIGEST, roots=[pki.root], now=tb.NOW, **kwargs)


def test_ber_long_form_lengths_are_read_and_signature_still_verifies(pki) -> None:
    reply = tb.to_long_form(tb.build_reply(pki, DIGEST))
    assert reply != tb.build_reply(pki, DIGEST)
    verdict = verify(pki, reply)
    assert verdict.valid, verdict.reasons


def test_ber_long_form_with_a_flipped_signed_attribute_fails(pki) -> None:
    reply = bytearray(tb.to_long_form(tb.build_reply(pki, DIGEST)))
    at = bytes(reply).find(bytes.fromhex("2a864886f70d010903"))  # content-type attribute OID
    reply[at + 8] ^= 0x01
    assert not verify(pki, bytes(reply)).valid


def test_indefinite_lengths_are_read(pki) -> None:
    reply = tb.build_reply(pki, DIGEST)
    outer = tlv.read(reply)
    indefinite = b"\x30\x80" + reply[outer.body : outer.end] + b"\x00\x00"
    assert verify(pki, indefinite).valid


def test_unsorted_certificate_set_is_accepted(pki) -> None:
    reply = tb.build_reply(pki, DIGEST, certs=[pki.intermediates[0], pki.tsa])
    assert verify(pki, reply).valid


def test_reply_over_the_size_bound_is_invalid(pki) -> None:
    verdict = verify(pki, b"\x30\x84" + (cms.MAX_REPLY_BYTES).to_bytes(4, "big") +
                     bytes(cms.MAX_REPLY_BYTES))
    assert not verdict.valid and "larger than" in verdict.reasons[0]


def test_too_many_certificates_is_invalid(pki) -> None:
    certs = [pki.tsa] * (cms.MAX_CERTIFICATES + 1)
    verdict = verify(pki, tb.build_reply(pki, DIGEST, certs=certs))
    assert not verdict.valid and "certificates" in verdict.reasons[0]


def test_trailing_bytes_are_invalid(pki) -> None:
    assert not verify(pki, tb.build_reply(pki, DIGEST) + b"\x00").valid


@pytest.mark.parametrize("garbage", [b"", b"\x00", b"\x30\x00", b"\x30\x03\x02\x01\x00",
                                     b"not a token at all", b"\x30\x80\x00\x00"])
def test_garbage_is_an_invalid_verdict(pki, garbage) -> None:
    verdict = verify(pki, garbage)
    assert not verdict.valid and verdict.reasons


def test_digest_length_must_fit_hash_algorithm(pki) -> None:
    with pytest.raises(MalformedInputError):
        verify_timestamp(b"", digest=b"\x00" * 20, roots=[pki.root])


def test_unknown_hash_algorithm_is_an_argument_error(pki) -> None:
    with pytest.raises(MalformedInputError):
        verify_timestamp(b"", digest=DIGEST, hash_alg="md5", roots=[pki.root])
    with pytest.raises(MalformedInputError):
        digest_data(b"", "whirlpool")


def test_roots_are_required() -> None:
    with pytest.raises(MalformedInputError):
        verify_timestamp(b"", digest=DIGEST, roots=[])


def test_digest_data_accepts_common_spellings() -> None:
    assert digest_data(b"x", "SHA-256") == hashlib.sha256(b"x").digest()
    assert digest_data(b"x", "sha384") == hashlib.sha384(b"x").digest()


def test_nested_indefinite_lengths_stay_linear(pki) -> None:
    """Hostile BER (deep indefinite nesting around many elements) must not go quadratic."""
    import time

    depth = 60
    body = b"\x05\x00" * ((cms.MAX_REPLY_BYTES - 8 * depth) // 2)
    signed_data = b"\x30\x80" * depth + body + b"\x00\x00" * depth
    reply = (b"\x30\x80\x30\x03\x02\x01\x00\x30\x80\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02"
             b"\xa0\x80" + signed_data + b"\x00\x00" * 3)[: cms.MAX_REPLY_BYTES]
    started = time.perf_counter()
    verdict = verify(pki, reply)
    assert not verdict.valid
    assert time.perf_counter() - started < 5  # quadratic walking took over 10 s at this size
    start = time.perf_counter()
    assert tlv.to_der_lengths(signed_data) and time.perf_counter() - start < 5
