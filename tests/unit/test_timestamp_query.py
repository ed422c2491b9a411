"""A TimeStampReq the client builds is one the built-in TSA parses, and one OpenSSL reads."""

from __future__ import annotations

import hashlib
import re
import secrets
from pathlib import Path

import pytest

from service.errors import MalformedInputError
from service.timestamping import der, tlv
from service.timestamping.client import build_query
from service.timestamping.tsa_config import HASH_SIZES, TSAConfig
from service.timestamping.tsa_query import (
    ACCEPTED_HASHES,
    MAX_NONCE_OCTETS,
    FailInfo,
    QueryRejectedError,
    encode_query,
    parse_query,
)
from tests.support.openssl_pki import run_openssl

POLICY = "1.3.6.1.4.1.99999.1.2"


def tsa(hash_alg: str, policy: str | None = None) -> TSAConfig:
    return TSAConfig(name="t", url="http://127.0.0.1:1/", enabled=True, roots=(),
                     hash_alg=hash_alg, policy=policy)


def openssl_text(query: bytes, tmp_path: Path) -> str:
    """What `openssl ts -query -in REQ -text` prints for the query."""
    path = tmp_path / "req.tsq"
    path.write_bytes(query)
    return run_openssl("ts", "-query", "-in", path, "-text").decode()


def test_the_client_asks_for_what_the_tsa_accepts() -> None:
    assert set(HASH_SIZES.items()) == set(ACCEPTED_HASHES.values())


@pytest.mark.parametrize("hash_alg", sorted(HASH_SIZES))
@pytest.mark.parametrize("policy", [None, POLICY])
def test_client_query_parses_in_the_tsa_and_in_openssl(
    hash_alg: str, policy: str | None, tmp_path: Path
) -> None:
    digest = hashlib.new(hash_alg, b"round trip").digest()
    nonce = secrets.randbits(64) | 1 << 63  # a full 64-bit nonce needs a 0x00 pad octet
    query = build_query(tsa(hash_alg, policy), digest, nonce=nonce)
    parsed = parse_query(query.der)
    assert (parsed.hash_name, parsed.digest) == (hash_alg, digest)
    assert parsed.nonce == query.nonce == nonce
    assert parsed.cert_req is True and parsed.req_policy == policy
    text = openssl_text(query.der, tmp_path)
    assert f"Hash Algorithm: {hash_alg}\n" in text
    dumped = "".join(re.findall(r"^\s+[0-9a-f]{4} - ([0-9a-f -]+?)\s{3}", text, re.M))
    assert bytes.fromhex(dumped.replace("-", " ")) == digest
    assert f"Nonce: 0x{nonce:X}\n" in text
    assert "Certificate required: yes\n" in text
    assert f"Policy OID: {policy or 'unspecified'}\n" in text


def test_cert_req_false_is_left_out_as_der_requires() -> None:
    digest = bytes(32)
    query = encode_query(digest, hash_name="sha256", nonce=None, cert_req=False, policy=None)
    parsed = parse_query(query)
    assert parsed.cert_req is False and parsed.nonce is None
    head = bytes.fromhex("3034 020101 302f 300b 0609608648016503040201 0420")
    assert query == head + digest  # no certReq element, no NULL hash parameters


@pytest.mark.parametrize(("digest", "hash_name", "nonce", "policy"), [
    pytest.param(bytes(20), "sha1", 1, None, id="sha1"),
    pytest.param(bytes(31), "sha256", 1, None, id="short-digest"),
    pytest.param(bytes(32), "sha256", 1 << (8 * MAX_NONCE_OCTETS), None, id="long-nonce"),
    pytest.param(bytes(32), "sha256", 1, "not an oid", id="bad-policy"),
])
def test_what_the_tsa_would_refuse_is_not_encoded(
    digest: bytes, hash_name: str, nonce: int, policy: str | None
) -> None:
    with pytest.raises(MalformedInputError):
        encode_query(digest, hash_name=hash_name, nonce=nonce, cert_req=True, policy=policy)


def test_longest_nonce_round_trips() -> None:
    nonce = (1 << (8 * MAX_NONCE_OCTETS - 1)) - 1
    query = encode_query(bytes(32), hash_name="sha256", nonce=nonce, cert_req=True, policy=None)
    assert parse_query(query).nonce == nonce


def _reframe(body: bytes) -> bytes:
    """SEQUENCE around `body` with a DER length."""
    return b"\x30" + der.length(len(body)) + body


_GOOD = encode_query(bytes(32), hash_name="sha256", nonce=7, cert_req=True, policy=None)
_BODY = _GOOD[2:]


@pytest.mark.parametrize("query", [
    pytest.param(b"\x30\x81" + _GOOD[1:], id="long-form-length"),
    pytest.param(b"\x30\x80" + _BODY + b"\x00\x00", id="indefinite-length"),
    pytest.param(_reframe(_BODY.replace(b"\x02\x01\x07", b"\x02\x02\x00\x07")),
                 id="padded-nonce"),
    pytest.param(_reframe(_BODY.replace(b"\x01\x01\xff", b"\x01\x01\x01")), id="certReq-01"),
])
def test_ber_query_is_read_lenient_but_refused_by_the_tsa(query: bytes) -> None:
    fields = tlv.children(query, tlv.read(query))  # the verifier's reader takes it
    assert [tlv.integer(query, f) for f in fields if f.tag == der.INTEGER] == [1, 7]
    with pytest.raises(QueryRejectedError, match="not DER") as caught:
        parse_query(query)
    assert caught.value.fail_info == FailInfo.BAD_DATA_FORMAT
