"""The ESS signing-certificate attributes (RFC 2634 v1, RFC 5035 v2) that bind the signer cert.

Without them an attacker could swap in another certificate for the same key; RFC 3161
requires one. Matching follows OpenSSL: every certificate ID must name a certificate of the
validated chain, and the first must name the signer certificate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography import x509
from pyasn1_modules import rfc2634, rfc5035

from service.errors import MalformedInputError
from service.timestamping import oids
from service.timestamping.certificates import certificate_serial
from service.timestamping.cms import decode, directory_name_der
from service.timestamping.names import same_name

# A chain is a handful of certificates; a longer ID list is abuse and is refused.
MAX_CERT_IDS = 16


def check_signing_certificate(
    attrs: dict[str, list[bytes]], chain: Sequence[x509.Certificate]
) -> list[str]:
    """Reasons the ESS attribute(s) do not bind the signer certificate chain[0]; [] if they do."""
    v1 = attrs.get(oids.ID_AA_SIGNING_CERTIFICATE)
    v2 = attrs.get(oids.ID_AA_SIGNING_CERTIFICATE_V2)
    if not v1 and not v2:
        return ["no signing-certificate or signing-certificate-v2 attribute"]
    reasons = []
    # Both present: each is checked on its own, as RFC 5035 section 5.4 asks.
    for values, spec, label in (
        (v1, rfc2634.SigningCertificate(), "signing-certificate"),
        (v2, rfc5035.SigningCertificateV2(), "signing-certificate-v2"),
    ):
        if values is None:
            continue
        if len(values) != 1:
            reasons.append(f"{label} attribute must have exactly one value")
            continue
        try:
            ids = list(_cert_ids(decode(values[0], spec, label)))
        except MalformedInputError as exc:
            reasons.append(str(exc))
            continue
        reasons += _match(ids, chain, label)
    return reasons


def _cert_ids(value: Any) -> list[tuple[str | None, bytes, Any]]:
    """(hash name, cert hash, issuerSerial or None) per ESSCertID / ESSCertIDv2."""
    out: list[tuple[str | None, bytes, Any]] = []
    for cert_id in value["certs"]:
        hash_name: str | None = "sha1"  # ESSCertID (v1) is always SHA-1
        if "hashAlgorithm" in cert_id:
            hash_name = oids.HASH_NAMES.get(str(cert_id["hashAlgorithm"]["algorithm"]))
        serial = cert_id["issuerSerial"] if cert_id["issuerSerial"].isValue else None
        out.append((hash_name, bytes(cert_id["certHash"]), serial))
    return out


def _match(
    ids: list[tuple[str | None, bytes, Any]], chain: Sequence[x509.Certificate], label: str
) -> list[str]:
    if not ids:
        return [f"{label} attribute lists no certificate"]
    if len(ids) > MAX_CERT_IDS:
        return [f"{label} attribute lists more than {MAX_CERT_IDS} certificates"]
    if ids[0][0] is None:
        return [f"{label} uses an unsupported hash algorithm"]
    if not _matches(ids[0], chain[0]):
        return [f"{label} does not identify the signer certificate"]
    for cert_id in ids[1:]:
        if not any(_matches(cert_id, cert) for cert in chain[1:]):
            return [f"{label} names a certificate that is not in the chain"]
    return []


def _matches(cert_id: tuple[str | None, bytes, Any], cert: x509.Certificate) -> bool:
    hash_name, cert_hash, issuer_serial = cert_id
    if hash_name is None or cert.fingerprint(oids.hash_class(hash_name)) != cert_hash:
        return False
    if issuer_serial is None:
        return True
    names = issuer_serial["issuer"]
    if len(names) != 1 or names[0].getName() != "directoryName":
        return False
    try:
        issuer_der = directory_name_der(names[0])
    except MalformedInputError:
        return False
    return (
        same_name(issuer_der, cert.issuer.public_bytes())
        and int(issuer_serial["serialNumber"]) == certificate_serial(cert)
    )

