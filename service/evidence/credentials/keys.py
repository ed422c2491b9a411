"""Chronoseal's C2PA signing certificate: an ES256 key and certificate from a root of its own,
created once in <data_dir>/c2pa on first start and then loaded, like the built-in TSA's.

Files: root-key.pem, root-cert.pem, signer-key.pem, signer-cert.pem (keys 0600, each written
atomically, signer-cert.pem last: it marks creation complete), made under an exclusive flock
on keys.lock so two processes starting together make one set. The root is what viewers and
relying parties add to their trust list (GET /c2pa/root.pem); nobody else's list has it.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from service.errors import ConfigError
from service.timestamping.serials import write_atomically

SUBDIR = "c2pa"  # under the data dir, beside the built-in TSA's tsa/
ROOT_LIFETIME = timedelta(days=20 * 365)  # outlives every signing certificate it issues
SIGNER_LIFETIME = timedelta(days=5 * 365)  # C2PA validates a claim at its signing time
BACKDATE = timedelta(hours=1)  # tolerate verifiers whose clocks lag a little
LOCK_FILE = "keys.lock"
# C2PA 2.x, 14.5.1: a claim signer's EKU is one of these; c2pa-rs accepts both.
SIGNER_EKUS = (ExtendedKeyUsageOID.EMAIL_PROTECTION, x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36"))


@dataclass(frozen=True)
class SigningMaterial:
    """What the SDK signs with (PEM): the signer's key, its chain (signer first), the root."""

    key_pem: bytes
    chain_pem: bytes
    root_pem: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Chronoseal"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _usage(*, sign: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=sign, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False)


def create_material(now: datetime | None = None) -> dict[str, bytes]:
    """A fresh P-256 root and an ES256 claim-signing certificate it issued, as file contents."""
    now = now or datetime.now(UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name("Chronoseal Content Credentials root")
    root = (x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + ROOT_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(sign=False, ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()),
                           critical=False)
            .sign(root_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    signer = (x509.CertificateBuilder().subject_name(_name("Chronoseal Content Credentials"))
              .issuer_name(root_name).public_key(key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - BACKDATE).not_valid_after(now + SIGNER_LIFETIME)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(_usage(sign=True, ca=False), critical=True)
              .add_extension(x509.ExtendedKeyUsage(list(SIGNER_EKUS)), critical=False)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                             critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                  root_key.public_key()), critical=False)
              .sign(root_key, hashes.SHA256()))
    pem, pkcs8 = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    none = serialization.NoEncryption()
    return {"root-key.pem": root_key.private_bytes(pem, pkcs8, none),
            "root-cert.pem": root.public_bytes(pem),
            "signer-key.pem": key.private_bytes(pem, pkcs8, none),
            "signer-cert.pem": signer.public_bytes(pem)}


def load_or_create(data_dir: Path) -> SigningMaterial:
    """The signing material in `data_dir`/c2pa, created first if this is the first start."""
    folder = data_dir / SUBDIR
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not (folder / "signer-cert.pem").exists():
                for name, data in create_material().items():  # signer-cert.pem is last
                    write_atomically(folder / name, data,
                                     mode=0o600 if name.endswith("key.pem") else 0o644)
            return _load(folder)
        finally:
            os.close(fd)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load or create C2PA signing keys in {folder}: {exc}") from exc


def load_existing(data_dir: Path) -> SigningMaterial:
    """The signing material a server made in `data_dir` (the CLI signing locally never makes
    its own: a root nobody was given would sign nothing anyone can check)."""
    folder = data_dir / SUBDIR
    try:
        return _load(folder)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"no C2PA signing keys in {folder} (made by the server's first "
                          f"start): {exc}") from exc


def _load(folder: Path) -> SigningMaterial:
    key_pem = (folder / "signer-key.pem").read_bytes()
    cert_pem = (folder / "signer-cert.pem").read_bytes()
    root_pem = (folder / "root-cert.pem").read_bytes()
    key = serialization.load_pem_private_key(key_pem, None)
    if x509.load_pem_x509_certificate(cert_pem).public_key() != key.public_key():
        raise ValueError("signer-key.pem does not match signer-cert.pem")
    return SigningMaterial(key_pem, cert_pem + root_pem, root_pem)
