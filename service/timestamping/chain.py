"""TSA certificate purpose and path validation to a supplied root, at the token's genTime.

Path building is done here rather than with cryptography's WebPKI verifier, which refuses
profiles OpenSSL accepts for TSAs (P-521 and Ed25519 keys, no SAN); the rules follow what
`openssl ts -verify` enforces, except that validity is judged at genTime (RFC 3161 section 4).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.x509.oid import ExtendedKeyUsageOID

from service.errors import MalformedInputError, VerificationError
from service.timestamping import tlv

# Root, a few intermediates and the TSA: deeper paths are not real TSA hierarchies.
MAX_CHAIN_DEPTH = 8
# Bounds the path search when many certificates share a subject name.
MAX_CANDIDATE_PATHS = 16


@dataclass(frozen=True)
class TrustStore:
    """Roots indexed by subject so repeated verifications do not rescan them."""

    roots: frozenset[x509.Certificate]
    by_subject: dict[x509.Name, tuple[x509.Certificate, ...]]


@functools.lru_cache(maxsize=64)
def trust_store(roots: tuple[x509.Certificate, ...]) -> TrustStore:
    """Index a set of roots once; callers pass the same roots for every token."""
    by_subject: dict[x509.Name, list[x509.Certificate]] = {}
    for root in roots:
        by_subject.setdefault(root.subject, []).append(root)
    return TrustStore(frozenset(roots), {k: tuple(v) for k, v in by_subject.items()})


def check_tsa_purpose(cert: x509.Certificate) -> list[str]:
    """RFC 3161 2.3: EKU present, critical, and only id-kp-timeStamping; key usage signs."""
    reasons = []
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        if not eku.critical:
            reasons.append("TSA certificate extended key usage is not critical")
        if list(eku.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
            reasons.append("TSA certificate extended key usage is not only timeStamping")
    except x509.ExtensionNotFound:
        reasons.append("TSA certificate has no extended key usage timeStamping")
    ku = _key_usage(cert)
    # Like OpenSSL: when present, digitalSignature and nothing but nonRepudiation besides it.
    if ku is not None and (not ku.digital_signature or _other_usages(ku)):
        reasons.append("TSA certificate key usage does not allow (only) digitalSignature")
    return reasons


def build_chain(
    leaf: x509.Certificate,
    pool: Sequence[x509.Certificate],
    store: TrustStore,
    at: datetime,
) -> list[x509.Certificate]:
    """A validated path [leaf, ..., root] at time `at`; VerificationError says why there is none."""
    by_subject: dict[x509.Name, list[x509.Certificate]] = {}
    for cert in pool:
        by_subject.setdefault(cert.subject, []).append(cert)
    paths = _paths([leaf], store, by_subject, [])
    if not paths:
        raise VerificationError("no certificate chain from the TSA certificate to a trusted root")
    problems: list[str] = []
    for path in paths:
        problems = _validate(path, at)
        if not problems:
            return path
    raise VerificationError("; ".join(problems))


def _paths(
    path: list[x509.Certificate],
    store: TrustStore,
    by_subject: dict[x509.Name, list[x509.Certificate]],
    found: list[list[x509.Certificate]],
) -> list[list[x509.Certificate]]:
    """Depth-first search for candidate paths ending at a root; signatures checked as it goes."""
    cert = path[-1]
    if cert in store.roots:
        found.append(list(path))
        return found
    if len(path) >= MAX_CHAIN_DEPTH:
        return found
    candidates = store.by_subject.get(cert.issuer, ()) + tuple(by_subject.get(cert.issuer, ()))
    for issuer in candidates:
        if len(found) >= MAX_CANDIDATE_PATHS:
            break
        if issuer not in path and _issued_by(cert, issuer):
            _paths([*path, issuer], store, by_subject, found)
    return found


@functools.lru_cache(maxsize=4096)
def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Issuer name match and signature check; cached since the same TSA chain recurs."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False  # bad signature, name mismatch, unsupported key type alike
    return True


def _validate(path: list[x509.Certificate], at: datetime) -> list[str]:
    """RFC 5280 6.1 checks OpenSSL also makes: validity, CA constraints, critical extensions."""
    problems = []
    for depth, cert in enumerate(path):
        who = "TSA certificate" if depth == 0 else f"CA certificate {cert.subject.rfc4514_string()}"
        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            problems.append(f"{who} is not valid at genTime {at.isoformat()}")
        unknown = [e.oid.dotted_string for e in cert.extensions
                   if e.critical and isinstance(e.value, x509.UnrecognizedExtension)]
        if unknown:
            problems.append(f"{who} has unhandled critical extensions {unknown}")
        if depth == 0:
            continue
        problems += _check_issuer(cert, who, depth - 1)
    return problems


def _check_issuer(cert: x509.Certificate, who: str, below: int) -> list[str]:
    """A CA must assert cA, may sign certificates, and allow `below` intermediates under it."""
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        # Version 1 roots predate extensions; OpenSSL trusts them as CAs too.
        if cert.version == x509.Version.v1 and cert.issuer == cert.subject:
            return []
        return [f"{who} is not a CA (no basic constraints)"]
    problems = []
    if not bc.ca:
        problems.append(f"{who} is not a CA")
    elif bc.path_length is not None and below > bc.path_length:
        problems.append(f"{who} path length constraint exceeded")
    ku = _key_usage(cert)
    if ku is not None and not ku.key_cert_sign:
        problems.append(f"{who} key usage does not allow keyCertSign")
    return problems


def _key_usage(cert: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


def _other_usages(ku: x509.KeyUsage) -> bool:
    return any((ku.key_encipherment, ku.data_encipherment, ku.key_agreement, ku.key_cert_sign,
                ku.crl_sign))


# What cryptography raises for certificates it cannot parse or use.
_CERT_ERRORS = (ValueError, x509.InvalidVersion, x509.DuplicateExtension,
                x509.UnsupportedGeneralNameType, UnsupportedAlgorithm)


@functools.lru_cache(maxsize=256)
def load_certificate(der: bytes) -> x509.Certificate:
    """Load a token certificate; BER lengths are normalised first. Cached: TSAs repeat them.

    Raises ValueError for anything that is not a usable certificate.
    """
    try:
        return _parsed(x509.load_der_x509_certificate(der))
    except _CERT_ERRORS:
        pass
    try:
        return _parsed(x509.load_der_x509_certificate(tlv.to_der_lengths(der)))
    except (*_CERT_ERRORS, MalformedInputError) as exc:
        raise ValueError(f"certificate does not parse: {exc}") from exc


def _parsed(cert: x509.Certificate) -> x509.Certificate:
    """cryptography parses fields lazily; touch every one the steps use so errors surface here."""
    _ = (cert.issuer.rfc4514_string(), cert.subject.rfc4514_string(), cert.serial_number,
         cert.not_valid_before_utc, cert.not_valid_after_utc, list(cert.extensions),
         cert.public_key())
    return cert
