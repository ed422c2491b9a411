"""The built-in TSA in-process: token structure, signatures, rejections, keys and certificates."""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID
from pyasn1.codec.der import decoder, encoder
from pyasn1_modules import rfc3161, rfc5035, rfc5652

from service.errors import ConfigError
from service.timestamping import der
from service.timestamping.authority import (
    DEFAULT_POLICY_OID,
    AuthoritySettings,
    TimeStampAuthority,
)
from service.timestamping.tsa_keys import KeyType
from service.timestamping.tsa_query import FailInfo
from tests.support.openssl_pki import make_query, openssl_ts_verify

SHA256_OID = "2.16.840.1.101.3.4.2.1"
OTHER_POLICY = "1.2.3.4.5"
DIGEST = hashlib.sha256(b"chronoseal").digest()


@pytest.fixture
def make_authority(tmp_path: Path) -> Callable[..., TimeStampAuthority]:
    """Factory: an authority over a data dir under tmp_path (default `tsa`)."""

    def factory(name: str = "tsa", **settings: object) -> TimeStampAuthority:
        return TimeStampAuthority.open(AuthoritySettings(data_dir=tmp_path / name, **settings))

    return factory


def query_der(digest: bytes = DIGEST, *, alg: str = SHA256_OID, nonce: int | None = 42,
              cert_req: bool = True, policy: str | None = None, version: int = 1,
              extensions: bytes = b"") -> bytes:
    """A TimeStampReq written by hand, so tests can make every kind of bad one."""
    imprint = der.sequence(der.sequence(der.oid(alg)), der.octet_string(digest))
    return der.sequence(
        der.integer(version), imprint, der.oid(policy) if policy else b"",
        der.integer(nonce) if nonce is not None else b"",
        der.boolean(True) if cert_req else b"", extensions,
    )


def decode_reply(reply: bytes) -> rfc3161.TimeStampResp:
    resp, rest = decoder.decode(reply, asn1Spec=rfc3161.TimeStampResp())
    assert rest == b""
    assert encoder.encode(resp) == reply, "reply is not canonical DER"
    return resp


def token_parts(reply: bytes) -> tuple[rfc5652.SignedData, rfc3161.TSTInfo, bytes]:
    """SignedData, TSTInfo and the raw TSTInfo DER of a granted reply."""
    resp = decode_reply(reply)
    assert int(resp["status"]["status"]) == 0
    token = resp["timeStampToken"]
    assert str(token["contentType"]) == "1.2.840.113549.1.7.2"
    signed, _ = decoder.decode(token["content"], asn1Spec=rfc5652.SignedData())
    econtent = bytes(signed["encapContentInfo"]["eContent"])
    tst, _ = decoder.decode(econtent, asn1Spec=rfc3161.TSTInfo())
    return signed, tst, econtent


def fail_bits(reply: bytes) -> set[int]:
    status = decode_reply(reply)["status"]
    assert int(status["status"]) == 2
    assert not decode_reply(reply)["timeStampToken"].isValue
    bits = status["failInfo"].asBinary()
    return {i for i, bit in enumerate(bits) if bit == "1"}


def test_token_fields(make_authority: Callable[..., TimeStampAuthority]) -> None:
    authority = make_authority()
    before = datetime.now(UTC)
    signed, tst, _ = token_parts(authority.respond(query_der(nonce=2**70 + 5)))
    assert int(signed["version"]) == 3
    assert int(tst["version"]) == 1
    assert str(tst["policy"]) == DEFAULT_POLICY_OID
    assert bytes(tst["messageImprint"]["hashedMessage"]) == DIGEST
    assert str(tst["messageImprint"]["hashAlgorithm"]["algorithm"]) == SHA256_OID
    assert int(tst["nonce"]) == 2**70 + 5
    gen_time = tst["genTime"].asDateTime
    assert before - timedelta(seconds=1) <= gen_time <= datetime.now(UTC) + timedelta(seconds=1)
    assert str(tst["genTime"]).endswith("Z")
    assert int(tst["accuracy"]["seconds"]) == 1
    # tsa [0] EXPLICIT GeneralName: directoryName [4], explicit too (Name is a CHOICE).
    subject = authority.material.tsa_cert.subject.public_bytes()
    assert encoder.encode(tst["tsa"]) == der.explicit(0, der.explicit(4, subject))


def test_signer_info_and_signature(make_authority: Callable[..., TimeStampAuthority]) -> None:
    authority = make_authority()
    signed, _, econtent = token_parts(authority.respond(query_der()))
    cert = authority.material.tsa_cert
    certs = [encoder.encode(c["certificate"]) for c in signed["certificates"]]
    assert certs == [cert.public_bytes(serialization.Encoding.DER)]
    (signer,) = signed["signerInfos"]
    assert int(signer["version"]) == 1
    sid = signer["sid"]["issuerAndSerialNumber"]
    assert int(sid["serialNumber"]) == cert.serial_number
    assert encoder.encode(sid["issuer"]) == cert.issuer.public_bytes()
    attrs = {str(a["attrType"]): a["attrValues"][0] for a in signer["signedAttrs"]}
    assert set(attrs) == {"1.2.840.113549.1.9.3", "1.2.840.113549.1.9.4",
                          "1.2.840.113549.1.9.5", "1.2.840.113549.1.9.16.2.47"}
    content_type, _ = decoder.decode(attrs["1.2.840.113549.1.9.3"])
    assert str(content_type) == "1.2.840.113549.1.9.16.1.4"
    message_digest, _ = decoder.decode(attrs["1.2.840.113549.1.9.4"])
    assert bytes(message_digest) == hashlib.sha256(econtent).digest()
    ess, _ = decoder.decode(attrs["1.2.840.113549.1.9.16.2.47"],
                            asn1Spec=rfc5035.SigningCertificateV2())
    cert_id = ess["certs"][0]
    assert bytes(cert_id["certHash"]) == hashlib.sha256(
        cert.public_bytes(serialization.Encoding.DER)).digest()
    assert int(cert_id["issuerSerial"]["serialNumber"]) == cert.serial_number
    # The signature covers the signed attributes re-tagged as SET OF (0x31).
    signed_attrs = encoder.encode(signer["signedAttrs"])
    to_verify = b"\x31" + signed_attrs[1:]
    public_key = cert.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(bytes(signer["signature"]), to_verify, ec.ECDSA(hashes.SHA256()))


def test_no_certificates_without_cert_req(make_authority: Callable[..., TimeStampAuthority]
                                          ) -> None:
    signed, tst, _ = token_parts(make_authority().respond(query_der(cert_req=False, nonce=None)))
    assert not signed["certificates"].isValue
    assert not tst["nonce"].isValue


def test_accepted_extra_policy_is_echoed(make_authority: Callable[..., TimeStampAuthority]
                                         ) -> None:
    authority = make_authority(extra_policies=(OTHER_POLICY,))
    _, tst, _ = token_parts(authority.respond(query_der(policy=OTHER_POLICY)))
    assert str(tst["policy"]) == OTHER_POLICY
    _, tst, _ = token_parts(authority.respond(query_der(policy=DEFAULT_POLICY_OID)))
    assert str(tst["policy"]) == DEFAULT_POLICY_OID


GOOD = query_der()


@pytest.mark.parametrize(("query", "bit"), [
    pytest.param(b"", FailInfo.BAD_DATA_FORMAT, id="empty"),
    pytest.param(b"not asn1 at all", FailInfo.BAD_DATA_FORMAT, id="garbage"),
    pytest.param(GOOD[:-3], FailInfo.BAD_DATA_FORMAT, id="truncated"),
    pytest.param(GOOD + b"\x00", FailInfo.BAD_DATA_FORMAT, id="trailing-bytes"),
    pytest.param(b"\x30\x80" + GOOD[2:] + b"\x00\x00", FailInfo.BAD_DATA_FORMAT,
                 id="indefinite-length"),
    pytest.param(query_der(version=2), FailInfo.BAD_DATA_FORMAT, id="version-2"),
    pytest.param(query_der(alg="1.3.14.3.2.26", digest=b"\x00" * 20), FailInfo.BAD_ALG,
                 id="sha1"),
    pytest.param(query_der(alg="1.2.3.4.99"), FailInfo.BAD_ALG, id="unknown-hash-oid"),
    pytest.param(query_der(digest=DIGEST[:20]), FailInfo.BAD_DATA_FORMAT, id="short-imprint"),
    pytest.param(query_der(digest=DIGEST + b"\x00"), FailInfo.BAD_DATA_FORMAT,
                 id="long-imprint"),
    pytest.param(query_der(policy="1.2.3.9.9"), FailInfo.UNACCEPTED_POLICY, id="policy"),
    pytest.param(query_der(extensions=der.explicit(0, der.sequence(der.oid("1.2.3")))),
                 FailInfo.UNACCEPTED_EXTENSION, id="extension"),
    pytest.param(query_der(nonce=2**600), FailInfo.BAD_DATA_FORMAT, id="huge-nonce"),
])
def test_rejections(make_authority: Callable[..., TimeStampAuthority], query: bytes,
                    bit: FailInfo) -> None:
    assert fail_bits(make_authority().respond(query)) == {bit}


def test_openssl_rejection_text_names_the_failure(
        make_authority: Callable[..., TimeStampAuthority], tmp_path: Path) -> None:
    from tests.support.openssl_pki import run_openssl

    (tmp_path / "r.tsr").write_bytes(make_authority().respond(query_der(policy="1.2.3.9.9")))
    text = run_openssl("ts", "-reply", "-in", tmp_path / "r.tsr", "-text").decode()
    assert "Rejected" in text and "policy is not supported" in text


def test_openssl_verifies_in_process_token(make_authority: Callable[..., TimeStampAuthority],
                                           tmp_path: Path) -> None:
    authority = make_authority()
    query = make_query(b"hello", hash_alg="sha512")
    (tmp_path / "root.pem").write_bytes(
        authority.material.root_cert.public_bytes(serialization.Encoding.PEM))
    assert openssl_ts_verify(authority.respond(query), query=query, ca_pem=tmp_path / "root.pem")


def test_rsa_3072(make_authority: Callable[..., TimeStampAuthority], tmp_path: Path) -> None:
    authority = make_authority("rsa", key_type=KeyType.RSA_3072)
    assert authority.material.tsa_key.key_size == 3072  # type: ignore[union-attr]
    query = make_query(b"rsa", hash_alg="sha256", cert_req=False)
    (tmp_path / "root.pem").write_bytes(
        authority.material.root_cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "tsa.pem").write_bytes(
        authority.material.tsa_cert.public_bytes(serialization.Encoding.PEM))
    assert openssl_ts_verify(authority.respond(query), query=query, ca_pem=tmp_path / "root.pem",
                             untrusted=tmp_path / "tsa.pem")
    with pytest.raises(ConfigError, match="rsa-3072"):
        make_authority("rsa", key_type=KeyType.EC_P256)


def test_tsa_certificate_profile(make_authority: Callable[..., TimeStampAuthority]) -> None:
    material = make_authority().material
    cert, root = material.tsa_cert, material.root_cert
    eku = cert.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert key_usage.digital_signature and not key_usage.key_cert_sign
    ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert.verify_directly_issued_by(root)
    assert material.chain == (cert, root)
    pem = make_authority().certs_pem()
    assert x509.load_pem_x509_certificates(pem) == [cert, root]


def test_keys_private_and_reused(make_authority: Callable[..., TimeStampAuthority],
                                 tmp_path: Path) -> None:
    first = make_authority()
    first.respond(query_der())  # takes a serial generation, writing serial-generation
    for name in ("root-key.pem", "tsa-key.pem", "serial-generation"):
        assert stat.S_IMODE((tmp_path / "tsa" / name).stat().st_mode) == 0o600, name
    assert not list((tmp_path / "tsa").glob(".*.tmp"))
    second = make_authority()
    assert second.material.tsa_cert == first.material.tsa_cert
    assert second.material.root_cert == first.material.root_cert


def test_injected_clock_and_signing_time_after_2049(tmp_path: Path) -> None:
    from service.timestamping.serials import SerialAllocator
    from service.timestamping.tsa_keys import load_or_create

    settings = AuthoritySettings(data_dir=tmp_path)
    moment = datetime(2051, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
    authority = TimeStampAuthority(settings, load_or_create(tmp_path), SerialAllocator(tmp_path),
                                   clock=lambda: moment)
    signed, tst, _ = token_parts(authority.respond(query_der()))
    assert str(tst["genTime"]) == "20510304050607.89Z"
    (signer,) = signed["signerInfos"]
    times = [a["attrValues"][0] for a in signer["signedAttrs"]
             if str(a["attrType"]) == "1.2.840.113549.1.9.5"]
    assert bytes(times[0])[:1] == b"\x18"  # GeneralizedTime, not UTCTime, from 2050 on
    assert bytes(times[0]).endswith(b"20510304050607Z")


def test_internal_failure_is_a_system_failure_rejection(tmp_path: Path) -> None:
    from service.timestamping.serials import SerialAllocator
    from service.timestamping.tsa_keys import load_or_create

    def broken_clock() -> datetime:
        raise OSError("clock unavailable")

    authority = TimeStampAuthority(AuthoritySettings(data_dir=tmp_path), load_or_create(tmp_path),
                                   SerialAllocator(tmp_path), clock=broken_clock)
    assert fail_bits(authority.respond(query_der())) == {FailInfo.SYSTEM_FAILURE}
