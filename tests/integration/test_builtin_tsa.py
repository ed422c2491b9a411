"""The built-in TSA over real HTTP, in a thread: openssl's queries, openssl's and our verifier."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyasn1.codec.der import decoder
from pyasn1_modules import rfc3161, rfc5652

from service.timestamping import der
from service.timestamping.authority import AuthoritySettings, TimeStampAuthority
from service.timestamping.tsa_keys import KeyType
from service.timestamping.verify import verify_timestamp
from service.web.tsa import MAX_QUERY_BYTES, QUERY_MEDIA_TYPE, create_app, serve_in_thread
from tests.support.openssl_pki import make_query, openssl_ts_verify

HTTP_TIMEOUT_S = 10
QUERY_HEADERS = {"Content-Type": QUERY_MEDIA_TYPE}
SHA256 = "2.16.840.1.101.3.4.2.1"


@pytest.fixture
def tsa_url(tmp_path: Path) -> Iterator[str]:
    """URL of a built-in TSA (P-256) served over loopback HTTP from a thread."""
    authority = TimeStampAuthority.open(AuthoritySettings(data_dir=tmp_path / "tsa"))
    with serve_in_thread(create_app(authority)) as server:
        yield server.url


def post_query(url: str, query: bytes, session: requests.Session | None = None) -> bytes:
    response = (session or requests).post(url + "/", data=query, headers=QUERY_HEADERS,
                                          timeout=HTTP_TIMEOUT_S)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/timestamp-reply"
    return response.content


def fetch_chain(url: str, directory: Path) -> tuple[list[x509.Certificate], Path, Path]:
    """GET /certs; write the root (last) and the TSA certificate (first) for openssl."""
    chain = x509.load_pem_x509_certificates(requests.get(url + "/certs",
                                                         timeout=HTTP_TIMEOUT_S).content)
    root, tsa = directory / "root.pem", directory / "tsa.pem"
    root.write_bytes(chain[-1].public_bytes(Encoding.PEM))
    tsa.write_bytes(chain[0].public_bytes(Encoding.PEM))
    return chain, root, tsa


def status_and_bits(reply: bytes) -> tuple[int, set[int], int | None]:
    """PKIStatus, failInfo bits and (granted) the TSTInfo serial of a TimeStampResp."""
    resp, rest = decoder.decode(reply, asn1Spec=rfc3161.TimeStampResp())
    assert rest == b""
    status = resp["status"]
    bits = status["failInfo"].asBinary() if status["failInfo"].isValue else ""
    serial = None
    if resp["timeStampToken"].isValue:
        signed, _ = decoder.decode(resp["timeStampToken"]["content"],
                                   asn1Spec=rfc5652.SignedData())
        tst, _ = decoder.decode(bytes(signed["encapContentInfo"]["eContent"]),
                                asn1Spec=rfc3161.TSTInfo())
        serial = int(tst["serialNumber"])
    return int(status["status"]), {i for i, b in enumerate(bits) if b == "1"}, serial


@pytest.mark.parametrize("hash_alg", ["sha256", "sha384", "sha512"])
@pytest.mark.parametrize("cert_req", [True, False], ids=["certReq", "noCertReq"])
def test_openssl_query_verifies(tsa_url: str, tmp_path: Path, hash_alg: str,
                                cert_req: bool) -> None:
    data = f"image bytes for {hash_alg}".encode()
    query = make_query(data, hash_alg=hash_alg, cert_req=cert_req)
    reply = post_query(tsa_url, query)
    chain, root, tsa = fetch_chain(tsa_url, tmp_path)
    untrusted = None if cert_req else tsa
    assert openssl_ts_verify(reply, query=query, ca_pem=root, untrusted=untrusted)
    assert openssl_ts_verify(reply, data=data, ca_pem=root, untrusted=untrusted)
    # Our own verifier agrees (needs the TSA certificate when the token carries none).
    verdict = verify_timestamp(reply, digest=hashlib.new(hash_alg, data).digest(),
                               hash_alg=hash_alg, roots=[chain[-1]],
                               untrusted=() if cert_req else [chain[0]])
    assert verdict.valid, verdict.reasons
    assert verdict.facts.serial == status_and_bits(reply)[2]


def test_rsa_3072_over_http(tmp_path: Path) -> None:
    authority = TimeStampAuthority.open(AuthoritySettings(data_dir=tmp_path / "rsa",
                                                          key_type=KeyType.RSA_3072))
    with serve_in_thread(create_app(authority)) as server:
        query = make_query(b"rsa please", hash_alg="sha384")
        reply = post_query(server.url, query)
        chain, root, _ = fetch_chain(server.url, tmp_path)
    assert openssl_ts_verify(reply, query=query, ca_pem=root)
    verdict = verify_timestamp(reply, digest=hashlib.sha384(b"rsa please").digest(),
                               hash_alg="sha384", roots=[chain[-1]])
    assert verdict.valid, verdict.reasons


def _hand_query(alg: str, digest: bytes, policy: str | None = None) -> bytes:
    imprint = der.sequence(der.sequence(der.oid(alg)), der.octet_string(digest))
    return der.sequence(der.integer(1), imprint, der.oid(policy) if policy else b"",
                        der.integer(1234))


@pytest.mark.parametrize(("query", "bit"), [
    pytest.param(b"\x30\x05garbage", 5, id="malformed-badDataFormat"),
    pytest.param(_hand_query("1.2.840.113549.2.5", bytes(16)), 0, id="md5-badAlg"),
    pytest.param(_hand_query("1.3.6.1.4.1.99999.1", bytes(32)), 0, id="unknown-oid-badAlg"),
    pytest.param(_hand_query(SHA256, bytes(31)), 5, id="imprint-length-badDataFormat"),
    pytest.param(_hand_query(SHA256, bytes(32), policy="1.2.3.4.5.6"), 15,
                 id="unacceptedPolicy"),
])
def test_rejections_over_http(tsa_url: str, query: bytes, bit: int) -> None:
    status, bits, serial = status_and_bits(post_query(tsa_url, query))
    assert (status, bits, serial) == (2, {bit}, None)


def test_openssl_query_with_unaccepted_policy(tsa_url: str) -> None:
    query = make_query(b"x", policy="1.2.3.4.99")
    assert status_and_bits(post_query(tsa_url, query))[:2] == (2, {15})


def test_oversize_body_is_refused(tsa_url: str) -> None:
    response = requests.post(tsa_url + "/", data=bytes(MAX_QUERY_BYTES + 1),
                             headers=QUERY_HEADERS, timeout=HTTP_TIMEOUT_S)
    assert response.status_code == 413


def test_wrong_content_type_is_refused(tsa_url: str) -> None:
    response = requests.post(tsa_url + "/", data=make_query(b"x"),
                             headers={"Content-Type": "application/octet-stream"},
                             timeout=HTTP_TIMEOUT_S)
    assert response.status_code == 415


def test_serials_unique_across_concurrent_requests(tsa_url: str) -> None:
    query = _hand_query(SHA256, bytes(32))
    serials: list[int] = []
    lock = threading.Lock()

    def client() -> None:
        with requests.Session() as session:
            got = [status_and_bits(post_query(tsa_url, query, session))[2] for _ in range(40)]
        with lock:
            serials.extend(s for s in got if s is not None)

    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(serials) == len(set(serials)) == 240
