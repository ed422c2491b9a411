"""Issue 12 cases where the verifier disagreed with `openssl ts -verify` on real tokens.

Each PKI and token is made by openssl; each test asserts our verdict and OpenSSL's on the
same token, so a fix cannot drift from the reference.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from service.cli import main
from service.timestamping import cms
from service.timestamping.verify import verify_timestamp
from tests.support.openssl_pki import OpenSSLPKI, make_query, openssl_ts_verify

DATA = b"issue 12: real tokens"
DIGEST = hashlib.sha256(DATA).digest()
ROOT = Path(__file__).resolve().parents[2]


def certs(path: Path | None) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes()) if path else []


def token(pki: OpenSSLPKI, *, hash_alg: str = "sha256", chain: bool = True) -> bytes:
    return pki.reply(make_query(DATA, hash_alg=hash_alg), include_chain=chain)


def ours(reply: bytes, roots: Path, **kwargs):
    return verify_timestamp(reply, digest=DIGEST, roots=certs(roots), **kwargs)


def cli(*args: str) -> tuple[int, str]:
    """Run `chronoseal` in a subprocess (stdout and stderr together, as a user sees them)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "service.cli", *args], capture_output=True,
                          env=env, timeout=60, check=False)
    return proc.returncode, (proc.stdout + proc.stderr).decode()


# 1. --data is hashed with the token's own imprint algorithm.
@pytest.mark.parametrize("hash_alg", ["sha1", "sha384", "sha512"])
def test_verify_token_data_uses_the_tokens_imprint_algorithm(openssl_pki, tmp_path,
                                                             hash_alg) -> None:
    pki = openssl_pki(key="ec-p256")
    reply = token(pki, hash_alg=hash_alg)
    (tmp_path / "t.tsr").write_bytes(reply)
    (tmp_path / "data").write_bytes(DATA)
    args = ["verify-token", "--token", str(tmp_path / "t.tsr"), "--data", str(tmp_path / "data"),
            "--ca", str(pki.root_pem)]
    assert main(args) == 0
    assert openssl_ts_verify(reply, data=DATA, ca_pem=pki.root_pem)
    assert main([*args, "--hash-alg", "sha256"]) == 2  # --hash-alg belongs to --digest


# 2. A SHA-1-signed CA certificate is checked, accepted with a warning.
def test_sha1_signed_ca_certificate_verifies_with_a_warning(openssl_pki) -> None:
    pki = openssl_pki(key="ec-p256", intermediate=True, cert_digest="sha1")
    reply = token(pki)
    verdict = ours(reply, pki.root_pem)
    assert verdict.valid, verdict.reasons
    assert any("signed with sha1" in w for w in verdict.warnings), verdict.warnings
    assert openssl_ts_verify(reply, digest=DIGEST, ca_pem=pki.root_pem)


def test_uncheckable_certificate_signature_is_reported_as_such(openssl_pki, tmp_path) -> None:
    """An intermediate whose signature algorithm nobody knows: "cannot be checked", not "no
    chain" (the OID ecdsa-with-SHA256 is bent to the unassigned 1.2.840.10045.4.3.9)."""
    pki = openssl_pki(key="ec-p256", intermediate=True)
    ecdsa_sha256 = bytes.fromhex("06082a8648ce3d040302")
    der = certs(pki.intermediate_pem)[0].public_bytes(serialization.Encoding.DER)
    assert der.count(ecdsa_sha256) == 2  # TBSCertificate signature and signatureAlgorithm
    bent = x509.load_der_x509_certificate(der.replace(ecdsa_sha256, ecdsa_sha256[:-1] + b"\x09"))
    untrusted = tmp_path / "untrusted.pem"
    untrusted.write_bytes(bent.public_bytes(serialization.Encoding.PEM))
    reply = token(pki, chain=False)
    verdict = ours(reply, pki.root_pem, untrusted=[bent])
    assert not verdict.valid
    assert any("cannot be checked" in r and "1.2.840.10045.4.3.9" in r
               for r in verdict.reasons), verdict.reasons
    assert not any("no certificate chain" in r for r in verdict.reasons)
    assert not openssl_ts_verify(reply, digest=DIGEST, ca_pem=pki.root_pem, untrusted=untrusted)


# 3. keyUsage nonRepudiation (contentCommitment) alone is a TSA key usage.
# (openssl ts -reply refuses to sign with other usages; test_verify_checks covers those.)
@pytest.mark.parametrize("usage", ["critical, nonRepudiation",
                                   "critical, digitalSignature, nonRepudiation"])
def test_tsa_key_usage_matches_openssl(openssl_pki, usage) -> None:
    pki = openssl_pki(key="ec-p256", tsa_key_usage=usage)
    reply = token(pki)
    verdict = ours(reply, pki.root_pem)
    assert verdict.valid, verdict.reasons
    assert openssl_ts_verify(reply, digest=DIGEST, ca_pem=pki.root_pem)


# 4. The SignerIdentifier issuer is compared as RFC 5280 7.1 says.
def _recase_sid_issuer(reply: bytes) -> bytes:
    """Lower-case "Chronoseal Test" in the SignerInfo's issuerAndSerialNumber only (unsigned)."""
    signed = cms.parse_signed_data(*cms.parse_envelope(reply).content)
    issuer = signed.signers[0].issuer
    at = reply.rfind(b"\x02\x01\x01\x30")  # SignerInfo version 1, then issuerAndSerialNumber
    start = reply.index(issuer, at)
    assert start - at <= 6
    changed = issuer.replace(b"Chronoseal Test", b"chronoseal test").replace(b"Root CA", b"ROOT ca")
    assert changed != issuer and len(changed) == len(issuer)
    return reply[:start] + changed + reply[start + len(issuer):]


def test_signer_issuer_differing_in_case_still_finds_its_certificate(openssl_pki) -> None:
    pki = openssl_pki(key="ec-p256")
    reply = _recase_sid_issuer(token(pki))
    verdict = ours(reply, pki.root_pem)
    assert verdict.valid, verdict.reasons
    assert openssl_ts_verify(reply, digest=DIGEST, ca_pem=pki.root_pem)


# 5. Only self-signed roots are anchors unless a partial chain is asked for.
@pytest.mark.parametrize("anchor", ["intermediate", "tsa"])
def test_non_self_signed_root_needs_partial_chain(openssl_pki, tmp_path, anchor) -> None:
    pki = openssl_pki(key="ec-p256", intermediate=True)
    reply = token(pki)
    ca = pki.intermediate_pem if anchor == "intermediate" else pki.tsa_cert_pem
    strict = ours(reply, ca)
    assert not strict.valid
    assert any("not trust anchors without partial chain" in r for r in strict.reasons)
    assert not openssl_ts_verify(reply, digest=DIGEST, ca_pem=ca)
    partial = ours(reply, ca, partial_chain=True)
    assert partial.valid, partial.reasons
    assert partial.facts.anchor == certs(ca)[0]
    assert openssl_ts_verify(reply, digest=DIGEST, ca_pem=ca, partial_chain=True)
    (tmp_path / "t.tsr").write_bytes(reply)
    args = ["verify-token", "--token", str(tmp_path / "t.tsr"), "--digest", DIGEST.hex(),
            "--ca", str(ca), "--json"]
    assert main(args) == 1
    assert main([*args, "--partial-chain"]) == 0


def test_verdict_names_the_anchor(openssl_pki, capsys) -> None:
    pki = openssl_pki(key="ec-p256", intermediate=True)
    verdict = ours(token(pki), pki.root_pem)
    root = certs(pki.root_pem)[0]
    assert verdict.facts.anchor == root
    anchor = verdict.as_dict()["facts"]["trust_anchor"]
    assert anchor["subject"] == root.subject.rfc4514_string()
    assert len(anchor["sha256"]) == 64


def test_root_and_intermediate_in_ca_file_still_verify(openssl_pki, tmp_path) -> None:
    """Like OpenSSL's CAfile: a non-self-signed CA given as root still serves as an issuer."""
    pki = openssl_pki(key="ec-p256", intermediate=True)
    reply = token(pki, chain=False)
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pki.root_pem.read_bytes() + pki.intermediate_pem.read_bytes())
    assert ours(reply, ca, untrusted=certs(pki.tsa_cert_pem)).valid
    assert openssl_ts_verify(reply, digest=DIGEST, ca_pem=ca, untrusted=pki.tsa_cert_pem)


# 6. NameConstraints and policy constraints of CAs are enforced.
EXCLUDE_TSA = ("nameConstraints = critical, excluded;dirName:nc_tsa",
               "[ nc_tsa ]\nO = Chronoseal Test\nCN = Test TSA ec-p256\n")
PERMIT_ORG = ("nameConstraints = critical, permitted;dirName:nc_org",
              "[ nc_org ]\nO = Chronoseal Test\n")
PERMIT_OTHER = ("nameConstraints = critical, permitted;dirName:nc_other",
                "[ nc_other ]\nO = Someone Else\n")


@pytest.mark.parametrize(("constraint", "fragment"), [
    (EXCLUDE_TSA, "is excluded"), (PERMIT_OTHER, "is not permitted"), (PERMIT_ORG, None),
], ids=["excluded", "not-permitted", "permitted"])
def test_name_constraints_match_openssl(openssl_pki, constraint, fragment) -> None:
    line, section = constraint
    pki = openssl_pki(key="ec-p256", intermediate=True, intermediate_extra=line,
                      extra_sections=section)
    reply = token(pki)
    verdict = ours(reply, pki.root_pem)
    assert verdict.valid is (fragment is None), verdict.reasons
    if fragment is not None:
        assert any(fragment in r and "name constraints" in r for r in verdict.reasons)
    assert openssl_ts_verify(reply, digest=DIGEST, ca_pem=pki.root_pem) is (fragment is None)


REQUIRE_POLICY = "policyConstraints = critical, requireExplicitPolicy:0"


@pytest.mark.parametrize(("inter", "tsa", "valid"), [
    (REQUIRE_POLICY, "", False),
    (REQUIRE_POLICY + "\ncertificatePolicies = 2.5.29.32.0", "certificatePolicies = 1.2.3.4",
     True),
    (REQUIRE_POLICY + "\ncertificatePolicies = 1.2.3.5", "certificatePolicies = 1.2.3.4",
     False),
], ids=["no-policy", "policy", "other-policy"])
def test_policy_constraints_match_openssl_policy_check(openssl_pki, inter, tsa, valid) -> None:
    """RFC 5280 6.1 makes policy processing part of path validation; OpenSSL does it only with
    -policy_check (by default it accepts all three), so that is the reference here."""
    pki = openssl_pki(key="ec-p256", intermediate=True, intermediate_extra=inter, tsa_extra=tsa)
    reply = token(pki)
    verdict = ours(reply, pki.root_pem)
    assert verdict.valid is valid, verdict.reasons
    if not valid:
        assert any("explicit certificate policy" in r for r in verdict.reasons)
    assert openssl_ts_verify(reply, digest=DIGEST, ca_pem=pki.root_pem,
                             policy_check=True) is valid


# 7. A negative serial number in the certificate bag keeps verifying, without warnings.
def test_negative_serial_certificate_verifies_without_warnings(openssl_pki, tmp_path) -> None:
    pki = openssl_pki(key="ec-p256", tsa_serial=-4242)
    reply = token(pki)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        verdict = ours(reply, pki.root_pem)
        assert verdict.valid, verdict.reasons
        verdict.as_dict()
    assert verdict.facts.as_dict()["signer_certificate"]["serial"] == -4242
    assert any("not positive" in w for w in verdict.warnings)
    assert openssl_ts_verify(reply, digest=DIGEST, ca_pem=pki.root_pem)
    (tmp_path / "t.tsr").write_bytes(reply)
    code, out = cli("verify-token", "--token", str(tmp_path / "t.tsr"), "--digest",
                    DIGEST.hex(), "--ca", str(pki.root_pem), "--json")
    assert code == 0, out
    assert "Warning" not in out and json.loads(out)["valid"]


# 8. A reader that closes the pipe early ends the output quietly.
@pytest.mark.parametrize("command", ["verify-token", "verify"])
def test_closed_stdout_exits_quietly(openssl_pki, tmp_path, command) -> None:
    pki = openssl_pki(key="ec-p256")
    (tmp_path / "t.tsr").write_bytes(token(pki))
    if command == "verify-token":
        args = ["verify-token", "--token", str(tmp_path / "t.tsr"), "--digest", DIGEST.hex(),
                "--ca", str(pki.root_pem), "--json"]
    else:
        (tmp_path / "b.zip").write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty ZIP
        args = ["verify", str(tmp_path / "b.zip"), "--json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `| head` exiting before the verdict is written
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert proc.returncode in (0, 1)
