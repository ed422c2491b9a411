"""Revocation data for a TSA's chain: which URLs to ask, and whether a token survives it.

Fetching is the caller's (usecases.stamping.revocation, through the SSRF-checked transport);
this module is pure: it names what to fetch for each certificate of a validated chain (the CRL
distribution points of RFC 5280 4.2.1.13, plain http(s) URIs) and judges stored CRLs at a
token's genTime.

The check at genTime, per certificate below the root (the root is a trust anchor):
  1. the CRL names the certificate's issuer and is signed by it (key usage cRLSign if stated);
  2. it speaks for genTime: current then (thisUpdate <= genTime <= nextUpdate), or issued
     later, which lists any revocation before it with its date (the rule ETSI EN 319 102-1
     uses: revocation data from after the signing time is the stronger evidence). A CRL whose
     nextUpdate is before genTime is stale: it says nothing about genTime;
  3. the certificate's serial is not listed, or was revoked after genTime for a reason under
     which RFC 3161 section 4 keeps earlier tokens valid (unspecified, affiliationChanged,
     superseded, cessationOfOperation). keyCompromise, cACompromise and the other reasons,
     or an entry without a reason code, void every token of that key (RFC 3161 section 4).
A certificate with no stored CRL is reported as not checked, never as valid.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding

KIND_CRL = "crl"
KIND_NONE = "none"  # nothing could be stored for this certificate: `note` says why
KINDS = (KIND_CRL, KIND_NONE)
URL_SCHEMES = ("http://", "https://")  # RFC 5280 CDPs may be ldap:; we do not speak it
MAX_CRL_BYTES = 1024 * 1024  # a TSA CA's CRL is KiBs; public CAs' big ones are refused, not read
MAX_URLS_PER_CERT = 4  # real certificates name one or two distribution points
# RFC 3161 section 4: revocation with one of these reasons leaves earlier tokens valid.
REASONS_KEEPING_EARLIER_TOKENS = frozenset({
    x509.ReasonFlags.unspecified, x509.ReasonFlags.affiliation_changed,
    x509.ReasonFlags.superseded, x509.ReasonFlags.cessation_of_operation,
})


def cert_sha256(cert: x509.Certificate) -> str:
    """The SHA-256 of a certificate's DER, hex: how stored revocation data names its subject."""
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


@dataclass(frozen=True)
class RevocationTarget:
    """One certificate of a chain whose status can be asked, its issuer and where to ask."""

    cert: x509.Certificate
    issuer: x509.Certificate
    crl_urls: tuple[str, ...]

    @property
    def cert_sha256(self) -> str:
        return cert_sha256(self.cert)


@dataclass(frozen=True)
class RevocationEntry:
    """What was stored for one certificate of a token's chain: a DER CRL, or why there is none."""

    cert_sha256: str
    kind: str  # KIND_CRL or KIND_NONE
    url: str | None
    der: bytes | None
    note: str | None = None


def crl_urls(cert: x509.Certificate) -> tuple[str, ...]:
    """The http(s) CRL distribution point URIs the certificate names (none if it names none)."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except (x509.ExtensionNotFound, ValueError):
        return ()
    urls = [name.value for point in points for name in (point.full_name or ())
            if isinstance(name, x509.UniformResourceIdentifier)
            and name.value.lower().startswith(URL_SCHEMES)]
    return tuple(dict.fromkeys(urls))[:MAX_URLS_PER_CERT]


def targets(chain: Sequence[x509.Certificate]) -> list[RevocationTarget]:
    """Every certificate of a validated chain (TSA first, root last) except the root, each with
    the certificate that issued it and its CRL URLs (possibly none)."""
    found = []
    for index, cert in enumerate(chain[:-1]):
        issuer = _issuer_of(cert, chain[index + 1:])
        if issuer is not None:
            found.append(RevocationTarget(cert, issuer, crl_urls(cert)))
    return found


def ordered_blobs(entries: Sequence[RevocationEntry]) -> list[bytes]:
    """A token's revocation data as bytes in a stable order (by certificate digest, then URL),
    for whatever must cover them (RFC 4998 data objects); entries without data are skipped."""
    kept = sorted((e for e in entries if e.der), key=lambda e: (e.cert_sha256, e.url or ""))
    return [e.der for e in kept if e.der is not None]


def crl_next_update(der: bytes) -> datetime | None:
    """nextUpdate of a DER CRL (aware UTC), None if unreadable or absent: how long to cache it."""
    try:
        return x509.load_der_x509_crl(der).next_update_utc
    except ValueError:
        return None


@dataclass(frozen=True)
class CertificateStatus:
    """The status of one certificate at genTime: ok True (not revoked then), False, or None (no
    data); `detail` says which and why, in words a reader can repeat."""

    subject: str
    cert_sha256: str
    ok: bool | None
    detail: str
    revoked_at: datetime | None = None
    reason: str | None = None


def check_chain(chain: Sequence[x509.Certificate], entries: Sequence[RevocationEntry],
                gen_time: datetime) -> list[CertificateStatus]:
    """The status at `gen_time` of every certificate of `chain` below its root (see module)."""
    by_cert: dict[str, list[RevocationEntry]] = {}
    for entry in entries:
        by_cert.setdefault(entry.cert_sha256, []).append(entry)
    statuses = []
    for target in targets(chain):
        subject = target.cert.subject.rfc4514_string()
        stored = [e for e in by_cert.get(target.cert_sha256, []) if e.kind == KIND_CRL and e.der]
        if not stored:
            notes = [e.note for e in by_cert.get(target.cert_sha256, []) if e.note]
            why = notes[0] if notes else (
                "the certificate names no CRL distribution point" if not target.crl_urls
                else "none was stored with the token")
            statuses.append(CertificateStatus(
                subject, target.cert_sha256, None,
                f"no revocation data available for {subject}: {why}"))
            continue
        results = [check_crl(target, entry.der, gen_time) for entry in stored if entry.der]
        # One CRL that speaks for genTime decides; a revocation found in any valid CRL wins.
        statuses.append(next((r for r in results if r.ok is False and r.revoked_at), None)
                        or next((r for r in results if r.ok), results[0]))
    return statuses


def check_crl(target: RevocationTarget, der: bytes, gen_time: datetime) -> CertificateStatus:
    """Steps 1-3 of the module docstring for one certificate and one DER CRL."""
    subject = target.cert.subject.rfc4514_string()

    def status(ok: bool, detail: str, **more: object) -> CertificateStatus:
        return CertificateStatus(subject, target.cert_sha256, ok, f"{subject}: {detail}",
                                 **more)  # type: ignore[arg-type]

    if len(der) > MAX_CRL_BYTES:
        return status(False, f"CRL larger than {MAX_CRL_BYTES} bytes")
    try:
        crl = x509.load_der_x509_crl(der)
    except ValueError:
        return status(False, "the stored CRL is not a DER CRL")
    # 1. Issued and signed by the certificate's issuer.
    if crl.issuer != target.cert.issuer:
        return status(False, "the CRL is not issued by the certificate's issuer")
    try:
        usage = target.issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.crl_sign:
        return status(False, "the issuer's key usage does not allow signing CRLs")
    try:
        signed = crl.is_signature_valid(target.issuer.public_key())  # type: ignore[arg-type]
    except (InvalidSignature, UnsupportedAlgorithm, TypeError, ValueError):
        signed = False
    if not signed:
        return status(False, "the CRL's signature does not verify with the issuer's key")
    # 2. Speaks for genTime.
    this_update, next_update = crl.last_update_utc, crl.next_update_utc
    if next_update is None:
        return status(False, "the CRL has no nextUpdate, so no period it speaks for")
    if next_update < gen_time:
        return status(False, f"the CRL expired ({next_update:%Y-%m-%d %H:%M:%S} UTC) before "
                      f"genTime {gen_time:%Y-%m-%d %H:%M:%S} UTC: it says nothing about then")
    when = ("current at genTime" if this_update <= gen_time
            else f"issued after genTime, at {this_update:%Y-%m-%d %H:%M:%S} UTC")
    # 3. Not revoked at genTime (or revoked later, for a reason that keeps earlier tokens).
    entry = crl.get_revoked_certificate_by_serial_number(target.cert.serial_number)
    if entry is None:
        return status(True, f"not revoked (CRL {when}, signed by its issuer)")
    revoked_at = entry.revocation_date_utc
    reason = _reason(entry)
    said = f"revoked at {revoked_at:%Y-%m-%d %H:%M:%S} UTC, reason {reason or 'not given'}"
    if revoked_at > gen_time and reason in REASONS_KEEPING_EARLIER_TOKENS:
        return status(True, f"{said}, after genTime: tokens from before remain valid "
                      f"(RFC 3161 section 4; CRL {when})", revoked_at=revoked_at,
                      reason=reason.value)
    why = ("at or before genTime" if revoked_at <= gen_time else
           "after genTime, but for a reason that voids every token of the key (RFC 3161 4)")
    return status(False, f"{said}: {why}", revoked_at=revoked_at,
                  reason=reason.value if reason else None)


def _reason(entry: x509.RevokedCertificate) -> x509.ReasonFlags | None:
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except (x509.ExtensionNotFound, ValueError):
        return None


def _issuer_of(cert: x509.Certificate, above: Sequence[x509.Certificate]
               ) -> x509.Certificate | None:
    return next((c for c in above if c.subject == cert.issuer), None)

