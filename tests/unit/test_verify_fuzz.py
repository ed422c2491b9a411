"""Random, truncated and mutated replies give a verdict, never an exception or a hang."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.timestamping import der, tlv
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


UNSIGNED = _unsigned_spans()


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
    if not any(at in span for span in UNSIGNED):
        assert not verdict.valid, (at, xor)


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
