"""TSA client against real HTTP TSAs: `openssl ts -reply` behind HTTP, and the built-in TSA."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import requests
import rfc3161ng
from cryptography import x509
from pyasn1.codec.der import decoder

from service.errors import (
    MalformedInputError,
    TSAHTTPStatusError,
    TSAMalformedReplyError,
    TSARejectedError,
    TSATransportError,
    TSAVerificationError,
)
from service.timestamping.client import (
    MAX_REPLY_BYTES,
    build_query,
    fetch_reply,
    request_token,
    verify,
)
from service.timestamping.tsa_config import TSAConfig
from tests.support.openssl_pki import OTHER_POLICIES, OpenSSLPKI, openssl_ts_verify
from tests.support.openssl_tsa_server import Answer, serve_openssl_tsa

DIGEST = hashlib.sha256(b"a batch root").digest()


def certs(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def config(url: str, pki: OpenSSLPKI, **changes: object) -> TSAConfig:
    base = TSAConfig(
        name="test",
        url=url,
        enabled=True,
        roots=(pki.root_pem,),
        connect_timeout_s=2.0,
        read_timeout_s=5.0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def ec_pki(openssl_pki: Callable[..., OpenSSLPKI]) -> OpenSSLPKI:
    return openssl_pki(key="ec-p256")


@pytest.fixture(scope="session")
def rsa_pki(openssl_pki: Callable[..., OpenSSLPKI]) -> OpenSSLPKI:
    return openssl_pki(key="rsa2048")


@pytest.mark.parametrize("key", ["ec-p256", "rsa2048"])
def test_token_from_openssl_tsa(openssl_pki: Callable[..., OpenSSLPKI], key: str) -> None:
    pki = openssl_pki(key=key)
    queries: list[bytes] = []
    headers: list[dict[str, str]] = []
    with serve_openssl_tsa(pki, queries=queries, headers=headers) as url:
        result = request_token(config(url, pki), DIGEST, roots=certs(pki.root_pem))
    assert result.tsa == "test" and result.verdict.valid, result.verdict.reasons
    assert (
        result.gen_time.tzinfo is not None and abs(time.time() - result.gen_time.timestamp()) < 60
    )
    assert result.serial == result.verdict.facts.serial
    # what went over the wire: our digest under SHA-256, our nonce, certReq true, no policy
    (query,) = queries
    req, _ = decoder.decode(query, asn1Spec=rfc3161ng.TimeStampReq())
    assert bytes(req["messageImprint"]["hashedMessage"]) == DIGEST
    assert req["messageImprint"]["hashAlgorithm"]["algorithm"] == rfc3161ng.id_sha256
    assert int(req["nonce"]) == result.nonce == result.verdict.facts.nonce
    assert bool(req["certReq"]) and not req["reqPolicy"].isValue
    assert headers[0]["Content-Type"] == "application/timestamp-query"
    assert "Authorization" not in headers[0]
    # and OpenSSL, the reference, agrees with our verdict
    assert openssl_ts_verify(result.reply, digest=DIGEST, ca_pem=pki.root_pem)


def test_nonces_are_fresh_64_bit_values(ec_pki: OpenSSLPKI) -> None:
    tsa = config("http://127.0.0.1:1/", ec_pki)
    nonces = {build_query(tsa, DIGEST).nonce for _ in range(200)}
    assert len(nonces) == 200 and all(0 <= n < 2**64 for n in nonces)
    assert max(nonces).bit_length() > 56


@pytest.mark.parametrize("hash_alg", ["sha384", "sha512"])
def test_other_hash_algorithms(ec_pki: OpenSSLPKI, hash_alg: str) -> None:
    digest = hashlib.new(hash_alg, b"x").digest()
    with serve_openssl_tsa(ec_pki) as url:
        tsa = config(url, ec_pki, hash_alg=hash_alg)
        result = request_token(tsa, digest, roots=certs(ec_pki.root_pem))
    assert result.verdict.facts.hash_algorithm == hash_alg
    with pytest.raises(MalformedInputError, match=f"a {hash_alg} digest is"):
        build_query(tsa, DIGEST)


def test_policy_is_requested_and_required(ec_pki: OpenSSLPKI) -> None:
    with serve_openssl_tsa(ec_pki) as url:
        tsa = config(url, ec_pki, policy=OTHER_POLICIES[0])
        result = request_token(tsa, DIGEST, roots=certs(ec_pki.root_pem))
    assert result.verdict.facts.policy == OTHER_POLICIES[0]


def test_intermediate_given_as_untrusted(openssl_pki: Callable[..., OpenSSLPKI]) -> None:
    pki = openssl_pki(intermediate=True)
    assert pki.intermediate_pem is not None
    with serve_openssl_tsa(pki) as url:
        tsa = config(url, pki)
        result = request_token(
            tsa, DIGEST, roots=certs(pki.root_pem), untrusted=certs(pki.intermediate_pem)
        )
        assert result.verdict.valid
        with pytest.raises(TSAVerificationError):  # the token carries only the TSA certificate
            request_token(tsa, DIGEST, roots=certs(pki.root_pem))


def test_basic_auth_is_sent(ec_pki: OpenSSLPKI) -> None:
    headers: list[dict[str, str]] = []
    with serve_openssl_tsa(ec_pki, headers=headers) as url:
        tsa = config(url, ec_pki, username="alice", password_env="PW", password="s3cret")
        request_token(tsa, DIGEST, roots=certs(ec_pki.root_pem))
    assert headers[0]["Authorization"] == "Basic YWxpY2U6czNjcmV0"


def test_session_is_reused_and_left_open(ec_pki: OpenSSLPKI) -> None:
    with serve_openssl_tsa(ec_pki) as url, requests.Session() as session:
        for _ in range(2):
            request_token(
                config(url, ec_pki), DIGEST, roots=certs(ec_pki.root_pem), session=session
            )


# --- each failure type for its cause ---------------------------------------------------------


def test_connection_refused_is_transport(ec_pki: OpenSSLPKI) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(TSATransportError) as info:
            request_token(
                config(f"http://127.0.0.1:{port}/", ec_pki), DIGEST, roots=certs(ec_pki.root_pem)
            )
    assert info.value.retryable and info.value.tsa == "test"


def test_read_timeout_is_transport(ec_pki: OpenSSLPKI) -> None:
    with serve_openssl_tsa(ec_pki, mode="slow", delay=5) as url:
        started = time.monotonic()
        with pytest.raises(TSATransportError, match="(?i)timed? ?out"):
            request_token(
                config(url, ec_pki, read_timeout_s=0.3), DIGEST, roots=certs(ec_pki.root_pem)
            )
        assert time.monotonic() - started < 2


def test_http_500_is_status_error(ec_pki: OpenSSLPKI) -> None:
    with (
        serve_openssl_tsa(ec_pki, mode="http500") as url,
        pytest.raises(TSAHTTPStatusError) as info,
    ):
        request_token(config(url, ec_pki), DIGEST, roots=certs(ec_pki.root_pem))
    assert info.value.status == 500 and info.value.retryable


def test_redirect_is_not_followed(ec_pki: OpenSSLPKI) -> None:
    queries: list[bytes] = []
    redirect = Answer(b"", 302, {"Location": "http://127.0.0.1:1/elsewhere"})
    with (
        serve_openssl_tsa(ec_pki, hook=lambda q: redirect, queries=queries) as url,
        pytest.raises(TSAHTTPStatusError) as info,
    ):
        request_token(config(url, ec_pki), DIGEST, roots=certs(ec_pki.root_pem))
    assert info.value.status == 302 and len(queries) == 1


def test_garbage_is_malformed(ec_pki: OpenSSLPKI) -> None:
    with serve_openssl_tsa(ec_pki, mode="garbage") as url, pytest.raises(TSAMalformedReplyError):
        request_token(config(url, ec_pki), DIGEST, roots=certs(ec_pki.root_pem))


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda good: Answer(good[:-10]), id="truncated"),
        pytest.param(lambda good: Answer(good + b"\x00"), id="trailing-bytes"),
        pytest.param(
            lambda good: Answer(good, headers={"Content-Type": "text/html"}), id="html-content-type"
        ),
        pytest.param(lambda good: Answer(b"\x30\x05\x30\x03\x02\x01\x00"), id="granted-no-token"),
        pytest.param(lambda good: Answer(b"\x30\x05\x30\x03\x02\x01\x09"), id="unknown-status"),
        pytest.param(lambda good: Answer(b"\x30" * (MAX_REPLY_BYTES + 1)), id="too-large"),
        pytest.param(
            lambda good: Answer(
                b"\x30" * (MAX_REPLY_BYTES * 4),
                headers={"Content-Type": "application/timestamp-reply", "Connection": "close"},
            ),
            id="too-large-streamed-without-length",
        ),
    ],
)
def test_malformed_replies(ec_pki: OpenSSLPKI, mangle: Callable[[bytes], Answer]) -> None:
    hook = lambda query: mangle(ec_pki.reply(query))  # noqa: E731
    with serve_openssl_tsa(ec_pki, hook=hook) as url, pytest.raises(TSAMalformedReplyError):
        request_token(config(url, ec_pki), DIGEST, roots=certs(ec_pki.root_pem))


def test_openssl_rejection_carries_fail_info(ec_pki: OpenSSLPKI) -> None:
    with serve_openssl_tsa(ec_pki, mode="reject") as url, pytest.raises(TSARejectedError) as info:
        request_token(config(url, ec_pki), DIGEST, roots=certs(ec_pki.root_pem))
    assert info.value.status == "rejection"
    assert info.value.fail_info == ["unacceptedPolicy"]
    assert not info.value.retryable
    assert "policy" in str(info.value).lower()  # OpenSSL's statusString is kept


def test_wrong_nonce_fails_verification(ec_pki: OpenSSLPKI) -> None:
    with (
        serve_openssl_tsa(ec_pki, mode="wrong_nonce") as url,
        pytest.raises(TSAVerificationError) as info,
    ):
        request_token(config(url, ec_pki), DIGEST, roots=certs(ec_pki.root_pem))
    assert any("nonce" in r for r in info.value.reasons)


def test_token_over_another_imprint_fails_verification(ec_pki: OpenSSLPKI) -> None:
    with (
        serve_openssl_tsa(ec_pki, mode="other_imprint") as url,
        pytest.raises(TSAVerificationError) as info,
    ):
        request_token(config(url, ec_pki), DIGEST, roots=certs(ec_pki.root_pem))
    assert any("imprint" in r for r in info.value.reasons)


def test_certificate_outside_configured_roots(ec_pki: OpenSSLPKI, rsa_pki: OpenSSLPKI) -> None:
    with serve_openssl_tsa(ec_pki) as url, pytest.raises(TSAVerificationError) as info:
        request_token(config(url, ec_pki), DIGEST, roots=certs(rsa_pki.root_pem))
    assert any("chain" in r for r in info.value.reasons)


def test_fetch_and_verify_are_separate(ec_pki: OpenSSLPKI) -> None:
    tsa = config("http://unused/", ec_pki)
    with serve_openssl_tsa(ec_pki) as url:
        query = build_query(replace(tsa, url=url), DIGEST)
        reply = fetch_reply(replace(tsa, url=url), query.der)
    roots = certs(ec_pki.root_pem)
    assert verify(tsa, reply, digest=DIGEST, nonce=query.nonce, roots=roots).valid
    verdict = verify(tsa, reply, digest=DIGEST, nonce=query.nonce + 1, roots=roots)
    assert not verdict.valid and verdict.reasons
