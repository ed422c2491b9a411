"""One test per verification check, on tokens built in Python so each field can be broken."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from service.timestamping import cms
from service.timestamping.verify import digest_data, verify_timestamp
from tests.support import token_builder as tb

DATA = b"chronoseal test data"
DIGEST = hashlib.sha256(DATA).digest()


@pytest.fixture(scope="module")
def pki() -> tb.PyPKI:
    return tb.make_pki("ec-p256")


def verify(pki: tb.PyPKI, reply: bytes, digest: bytes = DIGEST, **kwargs):
    kwargs.setdefault("now", tb.NOW)
    return verify_timestamp(reply, digest=digest, roots=[pki.root], **kwargs)


def assert_invalid(verdict, fragment: str) -> None:
    assert not verdict.valid
    assert any(fragment in r for r in verdict.reasons), verdict.reasons


def test_baseline_token_is_valid_and_reports_facts(pki) -> None:
    verdict = verify(pki, tb.build_reply(pki, DIGEST))
    assert verdict.valid, verdict.reasons
    assert verdict.reasons == () and verdict.warnings == ()
    facts = verdict.facts
    assert facts.gen_time == tb.NOW and facts.serial == 7 and facts.nonce == 12345
    assert facts.policy == "1.2.3.4.1" and facts.hash_algorithm == "sha256"
    assert facts.status == "granted" and facts.signer_certificate == pki.tsa
    assert verdict.as_dict()["facts"]["signer_certificate"]["subject"].startswith("CN=Py TSA")


def test_bare_token_is_accepted(pki) -> None:
    verdict = verify(pki, tb.build_reply(pki, DIGEST, bare=True))
    assert verdict.valid, verdict.reasons
    assert verdict.facts.status is None


# --- status and content types ---------------------------------------------------------------
def test_status_rejection_is_invalid(pki) -> None:
    assert_invalid(verify(pki, tb.build_reply(pki, DIGEST, status=2)), "rejection")


def test_status_granted_with_mods_is_valid(pki) -> None:
    assert verify(pki, tb.build_reply(pki, DIGEST, status=1)).valid


def test_content_type_must_be_signed_data(pki) -> None:
    reply = tb.build_reply(pki, DIGEST, content_type="1.2.840.113549.1.7.1")
    assert_invalid(verify(pki, reply), "not id-signedData")


def test_econtent_type_must_be_tst_info(pki) -> None:
    reply = tb.build_reply(pki, DIGEST, econtent_type="1.2.840.113549.1.7.1")
    assert_invalid(verify(pki, reply), "not id-ct-TSTInfo")


def test_exactly_one_signer(pki) -> None:
    assert_invalid(verify(pki, tb.build_reply(pki, DIGEST, signers=2)), "exactly one SignerInfo")


# --- message imprint, nonce, policy ----------------------------------------------------------
def test_imprint_must_match_the_data(pki) -> None:
    other = hashlib.sha256(b"other data").digest()
    assert_invalid(verify(pki, tb.build_reply(pki, DIGEST), other), "imprint does not match")


def test_imprint_algorithm_must_match(pki) -> None:
    d384 = hashlib.sha384(DATA).digest()
    reply = tb.build_reply(pki, d384, tst_kwargs={"hash_name": "sha384"})
    assert_invalid(verify(pki, reply, d384[:32]), "imprint hash algorithm is sha384")
    assert verify(pki, reply, d384, hash_alg="sha384").valid


@pytest.mark.parametrize("hash_name", ["sha256", "sha384", "sha512"])
def test_sha2_imprints_verify_without_warning(pki, hash_name) -> None:
    digest = digest_data(DATA, hash_name)
    reply = tb.build_reply(pki, digest, tst_kwargs={"hash_name": hash_name})
    verdict = verify(pki, reply, digest, hash_alg=hash_name)
    assert verdict.valid and verdict.warnings == ()


def test_sha1_imprint_verifies_but_is_weak(pki) -> None:
    digest = hashlib.sha1(DATA).digest()
    reply = tb.build_reply(pki, digest, tst_kwargs={"hash_name": "sha1"})
    verdict = verify(pki, reply, digest, hash_alg="sha1")
    assert verdict.valid
    assert any("sha1" in w for w in verdict.warnings)


def test_nonce_must_match_when_given(pki) -> None:
    reply = tb.build_reply(pki, DIGEST)
    assert verify(pki, reply, nonce=12345).valid
    assert_invalid(verify(pki, reply, nonce=54321), "nonce")


def test_missing_nonce_fails_when_one_was_sent(pki) -> None:
    reply = tb.build_reply(pki, DIGEST, tst_kwargs={"nonce": None})
    assert_invalid(verify(pki, reply, nonce=12345), "nonce")


def test_policy_must_match_when_given(pki) -> None:
    reply = tb.build_reply(pki, DIGEST)
    assert verify(pki, reply, policy="1.2.3.4.1").valid
    assert_invalid(verify(pki, reply, policy="1.2.3.4.2"), "policy")


def test_tst_info_version_must_be_1(pki) -> None:
    reply = tb.build_reply(pki, DIGEST, tst_kwargs={"version": 2})
    assert_invalid(verify(pki, reply), "version")


# --- signed attributes ------------------------------------------------------------------------
def test_signed_attributes_are_required(pki) -> None:
    reply = tb.build_reply(pki, DIGEST, signed_attrs=False)
    assert_invalid(verify(pki, reply), "no signed attributes")


def test_content_type_attribute_must_be_tst_info(pki) -> None:
    reply = tb.build_reply(pki, DIGEST, ct_attr="1.2.840.113549.1.7.1")
    assert_invalid(verify(pki, reply), "content-type attribute")


def test_message_digest_attribute_must_match_econtent(pki) -> None:
    reply = tb.build_reply(pki, DIGEST, md_override=b"\x01" * 32)
    assert_invalid(verify(pki, reply), "message-digest")


# --- signature algorithms ---------------------------------------------------------------------
ALGORITHMS = ["rsa2048", "rsa-pss", "ec-p256", "ec-p384", "ec-p521", "ed25519"]


@pytest.fixture(scope="module", params=ALGORITHMS)
def alg_pki(request) -> tb.PyPKI:
    return tb.make_pki(request.param)


def test_each_signature_algorithm_verifies(alg_pki) -> None:
    verdict = verify(alg_pki, tb.build_reply(alg_pki, DIGEST))
    assert verdict.valid, verdict.reasons


def test_each_signature_algorithm_rejects_a_flipped_signature(alg_pki) -> None:
    reply = bytearray(tb.build_reply(alg_pki, DIGEST))
    signed = cms.parse_signed_data(*cms.parse_envelope(bytes(reply)).content)
    signature = signed.signers[0].signature
    at = bytes(reply).find(signature) + len(signature) // 2
    reply[at] ^= 0x01
    assert_invalid(verify(alg_pki, bytes(reply)), "signature")


@pytest.mark.parametrize("digest_name", ["sha384", "sha512"])
def test_signer_digest_algorithm_other_than_sha256(pki, digest_name) -> None:
    assert verify(pki, tb.build_reply(pki, DIGEST, digest_name=digest_name)).valid


# --- signer certificate and ESS ---------------------------------------------------------------
def test_signer_found_by_subject_key_identifier(pki) -> None:
    assert verify(pki, tb.build_reply(pki, DIGEST, sid="ski")).valid


def test_signer_not_found_without_certificates(pki) -> None:
    reply = tb.build_reply(pki, DIGEST, certs=[])
    assert_invalid(verify(pki, reply), "signer certificate not found")
    assert verify(pki, reply, untrusted=[pki.tsa]).valid


def test_signer_must_be_the_identified_certificate(pki) -> None:
    other = tb.make_pki("ec-p256", slot="other")
    reply = tb.build_reply(pki, DIGEST, certs=[other.tsa], sid="ski")
    assert_invalid(verify(pki, reply), "signer certificate not found")


def test_signing_certificate_attribute_is_required(pki) -> None:
    assert_invalid(verify(pki, tb.build_reply(pki, DIGEST, ess=None)), "signing-certificate")


def test_signing_certificate_v1_sha1_is_accepted(pki) -> None:
    assert verify(pki, tb.build_reply(pki, DIGEST, ess="v1")).valid


def test_signing_certificate_v2_with_sha512_is_accepted(pki) -> None:
    ess = tb.ess_v2(pki.tsa, hash_name="sha512")
    assert verify(pki, tb.build_reply(pki, DIGEST, ess=ess)).valid


def test_signing_certificate_hash_must_match(pki) -> None:
    ess = tb.ess_v2(pki.tsa, cert_hash=b"\x00" * 32)
    assert_invalid(verify(pki, tb.build_reply(pki, DIGEST, ess=ess)), "signing-certificate-v2")


def test_signing_certificate_issuer_serial_must_match(pki) -> None:
    ess = tb.ess_v2(pki.tsa, serial_delta=1)
    assert_invalid(verify(pki, tb.build_reply(pki, DIGEST, ess=ess)), "signing-certificate-v2")


def test_signing_certificate_naming_another_certificate_fails(pki) -> None:
    other = tb.make_pki("ec-p256", slot="other")
    ess = tb.ess_v2(other.tsa)
    assert_invalid(verify(pki, tb.build_reply(pki, DIGEST, ess=ess)), "signing-certificate-v2")


# --- TSA certificate purpose ------------------------------------------------------------------
TS = ExtendedKeyUsageOID.TIME_STAMPING


@pytest.mark.parametrize(
    ("tsa_kwargs", "fragment"),
    [
        ({"eku_critical": False}, "not critical"),
        ({"eku": [TS, ExtendedKeyUsageOID.CODE_SIGNING]}, "not only timeStamping"),
        ({"eku": None}, "no extended key usage"),
        ({"key_usage": {"key_encipherment": True}}, "digitalSignature"),
        ({"key_usage": {"digital_signature": True, "key_cert_sign": True}}, "digitalSignature"),
    ],
)
def test_tsa_certificate_purpose(tsa_kwargs, fragment) -> None:
    pki = tb.make_pki("ec-p256", tsa_kwargs=tsa_kwargs)
    assert_invalid(verify(pki, tb.build_reply(pki, DIGEST)), fragment)


def test_tsa_certificate_without_key_usage_is_accepted() -> None:
    pki = tb.make_pki("ec-p256", tsa_kwargs={"key_usage": {}})
    assert verify(pki, tb.build_reply(pki, DIGEST)).valid
