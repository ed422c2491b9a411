"""The built-in TSA publishes a CRL for its TSA certificate (GET /crl, the URL written into the
certificate), `chronoseal tsa revoke` lists the current certificate in it, and the next start
issues a new certificate from the same root; data dirs made before keep working."""

from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from werkzeug.test import Client

from service.cli.tsa import run_revoke
from service.timestamping.authority import AuthoritySettings, TimeStampAuthority
from service.timestamping.revocation import check_crl, crl_urls, targets
from service.timestamping.tsa_crl import revoke
from service.web.tsa import CRL_MEDIA_TYPE, create_app

CRL_URL = "http://127.0.0.1:8319/crl"
CLI = [sys.executable, "-c", "import sys; from service.cli import main; sys.exit(main())"]


def _open(data_dir: Path, crl_url: str | None = CRL_URL) -> TimeStampAuthority:
    return TimeStampAuthority.open(AuthoritySettings(data_dir=data_dir, crl_url=crl_url))


def _crl(authority: TimeStampAuthority) -> x509.CertificateRevocationList:
    response = Client(create_app(authority)).get("/crl")
    assert response.status_code == 200 and response.mimetype == CRL_MEDIA_TYPE
    return x509.load_der_x509_crl(response.data)


def _revoke(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "tsa", "revoke", "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_tsa_certificate_names_the_crl_the_tsa_serves(tmp_path: Path) -> None:
    authority = _open(tmp_path)
    material = authority.material
    assert crl_urls(material.tsa_cert) == (CRL_URL,)
    crl = _crl(authority)
    assert crl.issuer == material.root_cert.subject
    assert crl.is_signature_valid(material.root_cert.public_key())  # type: ignore[arg-type]
    now = datetime.now(UTC)
    assert crl.next_update_utc is not None and crl.last_update_utc <= now < crl.next_update_utc
    assert len(crl) == 0
    (target,) = targets(material.chain)
    assert check_crl(target, crl.public_bytes(_der()), now).ok is True


def test_revoke_lists_the_certificate_and_the_next_start_issues_a_new_one(
        tmp_path: Path) -> None:
    authority = _open(tmp_path)
    old = authority.material.tsa_cert
    done = _revoke(tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"{old.serial_number:x}" in done.stdout
    entry = _crl(authority).get_revoked_certificate_by_serial_number(old.serial_number)
    assert entry is not None  # the running TSA's CRL lists it at once
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason \
        is x509.ReasonFlags.cessation_of_operation
    (target,) = targets(authority.material.chain)
    crl_der = _crl(authority).public_bytes(_der())
    assert check_crl(target, crl_der, old.not_valid_before_utc).ok is True  # before: valid
    assert check_crl(target, crl_der, datetime.now(UTC)).ok is False  # from now on: not
    assert revoke(tmp_path, old, x509.ReasonFlags.key_compromise).reason \
        is x509.ReasonFlags.cessation_of_operation  # revoking twice keeps the first record
    renewed = _open(tmp_path).material
    assert renewed.tsa_cert.serial_number != old.serial_number
    assert renewed.root_cert == authority.material.root_cert
    assert renewed.tsa_cert.issuer == renewed.root_cert.subject
    assert crl_urls(renewed.tsa_cert) == (CRL_URL,)
    assert _open(tmp_path).material.tsa_cert == renewed.tsa_cert  # not revoked: kept


def test_a_key_compromise_voids_earlier_tokens_too(tmp_path: Path) -> None:
    authority = _open(tmp_path)
    revoke(tmp_path, authority.material.tsa_cert, x509.ReasonFlags.key_compromise)
    (target,) = targets(authority.material.chain)
    status = check_crl(target, _crl(authority).public_bytes(_der()),
                       authority.material.tsa_cert.not_valid_before_utc)
    assert status.ok is False and "voids every token" in status.detail


def test_a_data_dir_from_before_keeps_its_certificate_without_a_crl_url(tmp_path: Path) -> None:
    old = _open(tmp_path, crl_url=None).material.tsa_cert
    assert crl_urls(old) == ()
    reopened = _open(tmp_path).material.tsa_cert  # now configured with a URL: cert is kept
    assert reopened == old and crl_urls(reopened) == ()


def test_revoke_without_a_tsa_is_an_error(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(data_dir=tmp_path / "nothing", reason="superseded")
    assert run_revoke(args) == 2
    assert "no TSA certificate" in capsys.readouterr().err


def _der():  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER
