"""TSA certificate purpose and path validation to a supplied root, at the token's genTime.

Path building is done here rather than with cryptography's verifier, which refuses profiles
OpenSSL accepts for TSAs (see constraints.py for what was measured); the rules follow what
`openssl ts -verify` enforces, except that validity is judged at genTime (RFC 3161 section 4),
names compare as RFC 5280 7.1 says (names.py), and certificate policies are always processed.
Only self-signed roots are trust anchors unless a partial chain is asked for.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from service.errors import MalformedInputError, VerificationError
from service.timestamping import constraints
from service.timestamping.certificates import check_certificate_signature, extension
from service.timestamping.names import NameKey, name_key

# Root, a few intermediates and the TSA: deeper paths are not real TSA hierarchies.
MAX_CHAIN_DEPTH = 8
# Bounds the path search when many certificates share a subject name.
MAX_CANDIDATE_PATHS = 16


@dataclass(frozen=True)
class TrustStore:
    """Trust anchors indexed by subject, so repeated verifications do not rescan them.

    `given` is every certificate the caller passed as a root; `anchors` those trusted as path
    ends: the self-signed ones, or all of them with partial_chain (OpenSSL's -partial_chain).
    The others still serve as issuers on the way to an anchor, as in OpenSSL's CAfile.
    """

    given: tuple[x509.Certificate, ...]
    anchors: frozenset[x509.Certificate]
    by_subject: dict[NameKey | bytes, tuple[x509.Certificate, ...]]
    partial_chain: bool

    @property
    def roots(self) -> tuple[x509.Certificate, ...]:
        """Every certificate given as a root (anchor or not), for finding the signer."""
        return self.given


@functools.lru_cache(maxsize=64)
def trust_store(roots: tuple[x509.Certificate, ...], partial_chain: bool = False) -> TrustStore:
    """Index a set of roots once; callers pass the same roots for every token."""
    by_subject: dict[NameKey | bytes, list[x509.Certificate]] = {}
    for root in roots:
        by_subject.setdefault(_subject_key(root), []).append(root)
    anchors = frozenset(r for r in roots if partial_chain or is_self_signed(r))
    return TrustStore(roots, anchors, {k: tuple(v) for k, v in by_subject.items()}, partial_chain)


def is_self_signed(cert: x509.Certificate) -> bool:
    """Subject equals issuer (RFC 5280 7.1) and key identifiers, where both exist, agree.

    OpenSSL's test for a root; the signature is not checked (an anchor is trusted as given).
    """
    if _subject_key(cert) != _issuer_key(cert):
        return False
    ski, aki = extension(cert, x509.SubjectKeyIdentifier), extension(
        cert, x509.AuthorityKeyIdentifier)
    return ski is None or aki is None or aki.key_identifier in (None, ski.digest)


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
    # As OpenSSL and ETSI EN 319 422: when present, digitalSignature or nonRepudiation
    # (contentCommitment), either or both, and nothing else.
    if ku is not None and (not (ku.digital_signature or ku.content_commitment)
                           or _other_usages(ku)):
        reasons.append("TSA certificate key usage does not allow (only) digitalSignature "
                       "or nonRepudiation")
    return reasons


def build_chain(
    leaf: x509.Certificate,
    pool: Sequence[x509.Certificate],
    store: TrustStore,
    at: datetime,
) -> list[x509.Certificate]:
    """A validated path [leaf, ..., anchor] at time `at`; VerificationError says why not."""
    by_subject: dict[NameKey | bytes, list[x509.Certificate]] = {}
    for cert in [*pool, *(c for c in store.given if c not in store.anchors)]:
        by_subject.setdefault(_subject_key(cert), []).append(cert)
    unchecked: list[str] = []
    paths = _paths([leaf], store, by_subject, [], unchecked)
    if not paths:
        raise VerificationError(_no_path_reason(store, unchecked))
    problems: list[str] = []
    for path in paths:
        problems = _validate(path, at)
        if not problems:
            return path
    raise VerificationError("; ".join(problems))


def weak_signatures(path: Sequence[x509.Certificate]) -> list[str]:
    """Warnings for certificates of a validated path signed with a hash no longer safe."""
    warnings = []
    for depth, cert in enumerate(path[:-1]):  # the anchor's own signature is not relied on
        try:
            name = cert.signature_hash_algorithm
        except UnsupportedAlgorithm:
            continue
        if isinstance(name, hashes.SHA1):
            warnings.append(f"{_who(cert, depth)} is signed with sha1, which is no longer "
                            "collision resistant")
    return warnings


def _no_path_reason(store: TrustStore, unchecked: list[str]) -> str:
    if unchecked:
        return "certificate chain cannot be checked: " + "; ".join(dict.fromkeys(unchecked))
    reason = "no certificate chain from the TSA certificate to a trusted root"
    skipped = [c for c in store.given if c not in store.anchors]
    if skipped:
        names = ", ".join(c.subject.rfc4514_string() for c in skipped[:3])
        reason += (f" (not self-signed, so not trust anchors without partial chain: {names})")
    return reason


def _paths(
    path: list[x509.Certificate],
    store: TrustStore,
    by_subject: dict[NameKey | bytes, list[x509.Certificate]],
    found: list[list[x509.Certificate]],
    unchecked: list[str],
) -> list[list[x509.Certificate]]:
    """Depth-first search for candidate paths ending at an anchor; signatures checked as it goes."""
    cert = path[-1]
    if cert in store.anchors:
        found.append(list(path))
        return found
    if len(path) >= MAX_CHAIN_DEPTH:
        return found
    key = _issuer_key(cert)
    candidates = [*(a for a in store.by_subject.get(key, ()) if a in store.anchors),
                  *by_subject.get(key, ())]
    for issuer in candidates:
        if len(found) >= MAX_CANDIDATE_PATHS:
            break
        if issuer in path:
            continue
        outcome = _issued_by(cert, issuer)
        if outcome == _SIGNED:
            _paths([*path, issuer], store, by_subject, found, unchecked)
        elif outcome != _NOT_SIGNED:
            unchecked.append(f"{_who(cert, len(path) - 1)}: {outcome}")
    return found


_SIGNED, _NOT_SIGNED = "signed", "not signed"


@functools.lru_cache(maxsize=4096)
def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> str:
    """_SIGNED, _NOT_SIGNED, or why the signature cannot be checked; cached (chains recur).

    The names already match (RFC 5280 7.1, see names.py). The signature is checked here
    rather than with `verify_directly_issued_by`, which compares names as bytes and refuses
    SHA-1 signatures that old TSA hierarchies still carry (weak_signatures warns of them).
    """
    try:
        check_certificate_signature(cert, issuer.public_key())
    except InvalidSignature:
        return _NOT_SIGNED
    except UnsupportedAlgorithm as exc:
        return str(exc)
    except (ValueError, TypeError) as exc:  # a key that does not load or fit
        return f"issuer key cannot check the signature ({exc})"
    return _SIGNED


def _who(cert: x509.Certificate, depth: int) -> str:
    return "TSA certificate" if depth == 0 else f"CA certificate {cert.subject.rfc4514_string()}"


@functools.lru_cache(maxsize=1024)
def _subject_key(cert: x509.Certificate) -> NameKey | bytes:
    return _key_of(cert.subject.public_bytes())


@functools.lru_cache(maxsize=1024)
def _issuer_key(cert: x509.Certificate) -> NameKey | bytes:
    return _key_of(cert.issuer.public_bytes())


def _key_of(der: bytes) -> NameKey | bytes:
    try:
        return name_key(der)
    except MalformedInputError:
        return der  # compared exactly


def _validate(path: list[x509.Certificate], at: datetime) -> list[str]:
    """RFC 5280 6.1 checks OpenSSL also makes: validity, CA constraints, critical extensions."""
    problems = []
    for depth, cert in enumerate(path):
        who = _who(cert, depth)
        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            problems.append(f"{who} is not valid at genTime {at.isoformat()}")
        unknown = [e.oid.dotted_string for e in cert.extensions
                   if e.critical and isinstance(e.value, x509.UnrecognizedExtension)
                   and e.oid not in constraints.HANDLED_RAW_EXTENSIONS]
        if unknown:
            problems.append(f"{who} has unhandled critical extensions {unknown}")
        if depth == 0:
            continue
        problems += _check_issuer(cert, who, depth - 1)
    return problems + list(_constraint_problems(tuple(path)))


@functools.lru_cache(maxsize=256)
def _constraint_problems(path: tuple[x509.Certificate, ...]) -> tuple[str, ...]:
    """Name and policy constraints do not depend on the time: cached per path, as chains recur."""
    return (*constraints.check_name_constraints(path), *constraints.check_policies(path))


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
    return extension(cert, x509.KeyUsage)


def _other_usages(ku: x509.KeyUsage) -> bool:
    return any((ku.key_encipherment, ku.data_encipherment, ku.key_agreement, ku.key_cert_sign,
                ku.crl_sign))
