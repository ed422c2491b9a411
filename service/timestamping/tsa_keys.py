"""The built-in TSA's keys and certificates: created once in the data dir, then loaded.

Layout of the data dir: root-key.pem, root-cert.pem, tsa-key.pem, tsa-cert.pem (keys mode
0600, every file written atomically), and revoked.json once a TSA certificate was revoked
(tsa_crl.py). A TSA certificate created with a `crl_url` names it as its CRL distribution
point; one found revoked at start is replaced by a new key and certificate from the same root.
Creation runs under an exclusive flock on keys.lock, and tsa-cert.pem is written last, so a
second process starting at the same time waits and then loads the CA the first one made, and a
half-finished creation is simply redone.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from service.errors import ConfigError
from service.timestamping.serials import write_atomically
from service.timestamping.tsa_crl import is_revoked

ROOT_LIFETIME = timedelta(days=20 * 365)  # outlives every TSA certificate it will sign
TSA_LIFETIME = timedelta(days=10 * 365)  # tokens stay verifiable as long as this cert is valid
BACKDATE = timedelta(hours=1)  # tolerate verifiers whose clocks lag a little
RSA_BITS = 3072  # NIST SP 800-57: 128-bit security, matching P-256
LOCK_FILE = "keys.lock"
FILES = ("root-key.pem", "root-cert.pem", "tsa-key.pem", "tsa-cert.pem")

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class KeyType(StrEnum):
    """Signature key types the TSA can be configured with (`key_type`)."""

    EC_P256 = "ec-p256"
    RSA_3072 = "rsa-3072"


@dataclass(frozen=True)
class TSAKeyMaterial:
    """The TSA signing key, its certificate and the root that issued it (and its key, which
    signs the CRL)."""

    tsa_key: PrivateKey
    tsa_cert: x509.Certificate
    root_cert: x509.Certificate
    root_key: PrivateKey | None = None

    @property
    def chain(self) -> tuple[x509.Certificate, x509.Certificate]:
        """TSA certificate first, root last."""
        return (self.tsa_cert, self.root_cert)


def generate_key(key_type: KeyType) -> PrivateKey:
    if key_type is KeyType.RSA_3072:
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    return ec.generate_private_key(ec.SECP256R1())


def key_type_of(key: PrivateKey) -> KeyType:
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size == RSA_BITS:
        return KeyType.RSA_3072
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return KeyType.EC_P256
    raise ConfigError(f"unsupported TSA key {type(key).__name__}")


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Chronoseal"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _key_usage(*, digital_signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
        crl_sign=cert_sign, encipher_only=False, decipher_only=False,
    )


def create_material(key_type: KeyType, now: datetime | None = None, crl_url: str | None = None
                    ) -> tuple[PrivateKey, x509.Certificate, PrivateKey, x509.Certificate]:
    """A fresh root CA and a TSA certificate it issued (critical EKU timeStamping, alone)."""
    now = now or datetime.now(UTC)
    root_key = generate_key(key_type)
    root_name = _name("Chronoseal built-in TSA root")
    root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
    root_cert = (
        x509.CertificateBuilder()
        .subject_name(root_name).issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE).not_valid_after(now + ROOT_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(root_ski, critical=False)
        .sign(root_key, hashes.SHA256())
    )
    tsa_key, tsa_cert = issue_tsa_certificate(root_key, root_cert, key_type, now, crl_url)
    return root_key, root_cert, tsa_key, tsa_cert


def issue_tsa_certificate(root_key: PrivateKey, root_cert: x509.Certificate, key_type: KeyType,
                          now: datetime, crl_url: str | None = None
                          ) -> tuple[PrivateKey, x509.Certificate]:
    """A new TSA key and its certificate from the root; with `crl_url`, the certificate names
    it as its CRL distribution point (RFC 5280 4.2.1.13), where relying parties ask."""
    tsa_key = generate_key(key_type)
    root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name("Chronoseal built-in TSA")).issuer_name(root_cert.subject)
        .public_key(tsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE).not_valid_after(now + TSA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        # RFC 3161 2.3: the TSA certificate must have this one EKU purpose, marked critical.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(tsa_key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski),
                       critical=False)
    )
    if crl_url:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None,
                                       None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    return tsa_key, builder.sign(root_key, hashes.SHA256())


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _load(data_dir: Path) -> TSAKeyMaterial:
    key = serialization.load_pem_private_key((data_dir / "tsa-key.pem").read_bytes(), None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ConfigError(f"{data_dir / 'tsa-key.pem'} is not an EC or RSA key")
    tsa_cert = x509.load_pem_x509_certificate((data_dir / "tsa-cert.pem").read_bytes())
    root_cert = x509.load_pem_x509_certificate((data_dir / "root-cert.pem").read_bytes())
    if tsa_cert.public_key() != key.public_key():
        raise ConfigError(f"{data_dir}: tsa-key.pem does not match tsa-cert.pem")
    return TSAKeyMaterial(key, tsa_cert, root_cert, _load_root_key(data_dir))


def _load_root_key(data_dir: Path) -> PrivateKey | None:
    path = data_dir / "root-key.pem"
    if not path.exists():
        return None  # a data dir whose root key was moved offline: no CRL is served
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ConfigError(f"{path} is not an EC or RSA key")
    return key


def _replace_tsa_certificate(data_dir: Path, key_type: KeyType, crl_url: str | None) -> None:
    """A new TSA key and certificate from the kept root (the old certificate was revoked)."""
    root_key = _load_root_key(data_dir)
    if root_key is None:
        raise ConfigError(f"{data_dir}: the TSA certificate is revoked and root-key.pem is "
                          "missing, so no new one can be issued")
    root_cert = x509.load_pem_x509_certificate((data_dir / "root-cert.pem").read_bytes())
    tsa_key, tsa_cert = issue_tsa_certificate(root_key, root_cert, key_type, datetime.now(UTC),
                                              crl_url)
    write_atomically(data_dir / "tsa-key.pem", _key_pem(tsa_key), mode=0o600)
    write_atomically(data_dir / "tsa-cert.pem", _cert_pem(tsa_cert), mode=0o644)


def load_or_create(data_dir: Path, key_type: KeyType = KeyType.EC_P256,
                   crl_url: str | None = None) -> TSAKeyMaterial:
    """Load the TSA's keys from `data_dir`, creating them first if this is the first start.

    `crl_url` goes into a TSA certificate created now (an existing one is kept as it is). A TSA
    certificate listed in revoked.json is replaced first: a key and certificate from the root.
    """
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if not (data_dir / "tsa-cert.pem").exists():
            root_key, root_cert, tsa_key, tsa_cert = create_material(key_type, crl_url=crl_url)
            for name, data, mode in (
                ("root-key.pem", _key_pem(root_key), 0o600),
                ("root-cert.pem", _cert_pem(root_cert), 0o644),
                ("tsa-key.pem", _key_pem(tsa_key), 0o600),
                ("tsa-cert.pem", _cert_pem(tsa_cert), 0o644),  # last: marks creation complete
            ):
                write_atomically(data_dir / name, data, mode=mode)
        elif is_revoked(data_dir, x509.load_pem_x509_certificate(
                (data_dir / "tsa-cert.pem").read_bytes()).serial_number):
            _replace_tsa_certificate(data_dir, key_type, crl_url)
        material = _load(data_dir)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load or create TSA keys in {data_dir}: {exc}") from exc
    finally:
        os.close(fd)
    found = key_type_of(material.tsa_key)
    if found is not key_type:
        raise ConfigError(f"{data_dir} holds a {found} TSA key but {key_type} is configured; "
                          "use another data dir to change key type")
    return material
