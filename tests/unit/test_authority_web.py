"""The TSA's WSGI app without a network: routing, content types, body limit, RFC 3161 answers."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from cryptography import x509
from pyasn1.codec.der import decoder
from pyasn1_modules import rfc3161
from werkzeug.test import Client

from service.timestamping.authority import AuthoritySettings, TimeStampAuthority
from service.web.tsa import MAX_QUERY_BYTES, QUERY_MEDIA_TYPE, REPLY_MEDIA_TYPE, create_app
from tests.unit.test_authority_serials import query_der


@pytest.fixture
def tsa_client(tmp_path: Path) -> Client:
    return Client(create_app(TimeStampAuthority.open(AuthoritySettings(data_dir=tmp_path))))


def status_of(reply: bytes) -> int:
    resp, _ = decoder.decode(reply, asn1Spec=rfc3161.TimeStampResp())
    return int(resp["status"]["status"])


def test_stamp(tsa_client: Client) -> None:
    response = tsa_client.post("/", data=query_der(), content_type=QUERY_MEDIA_TYPE)
    assert response.status_code == 200
    assert response.mimetype == REPLY_MEDIA_TYPE
    assert status_of(response.data) == 0


def test_malformed_query_is_an_rfc3161_rejection(tsa_client: Client) -> None:
    response = tsa_client.post("/", data=b"\x30\x03abc", content_type=QUERY_MEDIA_TYPE)
    assert response.status_code == 200
    assert response.mimetype == REPLY_MEDIA_TYPE
    assert status_of(response.data) == 2


def test_certs_chain_order(tsa_client: Client, tmp_path: Path) -> None:
    response = tsa_client.get("/certs")
    assert response.status_code == 200
    assert response.mimetype == "application/pem-certificate-chain"
    tsa, root = x509.load_pem_x509_certificates(response.data)
    assert tsa.subject.public_bytes() == x509.load_pem_x509_certificate(
        (tmp_path / "tsa-cert.pem").read_bytes()).subject.public_bytes()
    assert root.subject == root.issuer == tsa.issuer


def test_oversize_body_is_refused(tsa_client: Client) -> None:
    body = query_der() + bytes(MAX_QUERY_BYTES)
    response = tsa_client.post("/", data=body, content_type=QUERY_MEDIA_TYPE)
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


def test_oversize_chunked_body_is_refused(tsa_client: Client) -> None:
    stream = io.BytesIO(bytes(MAX_QUERY_BYTES + 10))
    response = tsa_client.post("/", input_stream=stream, content_type=QUERY_MEDIA_TYPE,
                               environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 413


def test_body_at_the_limit_is_read(tsa_client: Client) -> None:
    response = tsa_client.post("/", data=bytes(MAX_QUERY_BYTES), content_type=QUERY_MEDIA_TYPE)
    assert response.status_code == 200
    assert status_of(response.data) == 2


@pytest.mark.parametrize("content_type", ["application/octet-stream", "text/plain", ""])
def test_wrong_content_type(tsa_client: Client, content_type: str) -> None:
    response = tsa_client.post("/", data=query_der(), content_type=content_type)
    assert response.status_code == 415


def test_content_type_parameters_and_case_are_tolerated(tsa_client: Client) -> None:
    response = tsa_client.post("/", data=query_der(),
                               content_type="Application/Timestamp-Query; charset=binary")
    assert response.status_code == 200


def test_methods_and_paths(tsa_client: Client) -> None:
    assert tsa_client.get("/").status_code == 405
    assert tsa_client.get("/").headers["Allow"] == "POST"
    assert tsa_client.post("/certs").status_code == 405
    assert tsa_client.get("/nope").status_code == 404


def test_mountable_under_a_prefix(tmp_path: Path) -> None:
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    def main_api(environ: dict, start_response: object) -> list[bytes]:
        start_response("404 Not Found", [("Content-Type", "text/plain")])  # type: ignore[operator]
        return [b"main api"]

    tsa = create_app(TimeStampAuthority.open(AuthoritySettings(data_dir=tmp_path)))
    client = Client(DispatcherMiddleware(main_api, {"/tsa": tsa}))
    assert status_of(client.post("/tsa", data=query_der(), content_type=QUERY_MEDIA_TYPE).data) == 0
    assert status_of(client.post("/tsa/", data=query_der(),
                                 content_type=QUERY_MEDIA_TYPE).data) == 0
    assert len(x509.load_pem_x509_certificates(client.get("/tsa/certs").data)) == 2
