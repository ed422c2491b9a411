"""Revocation data for a TSA's chain: which URLs to ask, and whether a token survives it.

Fetching is the caller's (usecases.stamping.revocation, through the SSRF-checked transport);
this module is pure: it names what to fetch for each certificate of a validated chain (the CRL
distribution points of RFC 5280 4.2.1.13, else the OCSP responders of its AuthorityInfoAccess;
plain http(s) URIs) and judges stored CRLs and OCSP responses at a token's genTime (for OCSP,
step 1 is: signed by the issuer or by a responder certificate it issued with id-kp-OCSPSigning,
for this certificate's CertID).

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
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

KIND_CRL = "crl"
KIND_OCSP = "ocsp"  # a DER OCSPResponse (RFC 6960), asked when the certificate names no CRL
KIND_NONE = "none"  # nothing could be stored for this certificate: `note` says why
KINDS = (KIND_CRL, KIND_OCSP, KIND_NONE)
URL_SCHEMES = ("http://", "https://")  # RFC 5280 CDPs may be ldap:; we do not speak it
MAX_CRL_BYTES = 1024 * 1024  # a TSA CA's CRL is KiBs; public CAs' big ones are refused, not read
MAX_OCSP_BYTES = 64 * 1024  # a response with its responder certificate is 1-4 KiB
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
    ocsp_urls: tuple[str, ...] = ()

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


def ocsp_urls(cert: x509.Certificate) -> tuple[str, ...]:
    """The http(s) OCSP responder URIs of the certificate's AuthorityInfoAccess (RFC 5280)."""
    try:
        access = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return ()
    urls = [d.access_location.value for d in access
            if d.access_method == AuthorityInformationAccessOID.OCSP
            and isinstance(d.access_location, x509.UniformResourceIdentifier)
            and d.access_location.value.lower().startswith(URL_SCHEMES)]
    return tuple(dict.fromkeys(urls))[:MAX_URLS_PER_CERT]


def ocsp_request(target: RevocationTarget) -> bytes:
    """A DER OCSPRequest for the certificate, without nonce (responders of TSA CAs pre-sign
    answers, RFC 5019). The CertID hashes with SHA-1, which RFC 5019 2.1.1 requires responders
    to accept: it names the certificate, it secures nothing."""
    builder = ocsp.OCSPRequestBuilder().add_certificate(target.cert, target.issuer,
                                                        hashes.SHA1())  # noqa: S303
    return builder.build().public_bytes(Encoding.DER)


def targets(chain: Sequence[x509.Certificate]) -> list[RevocationTarget]:
    """Every certificate of a validated chain (TSA first, root last) except the root, each with
    the certificate that issued it and its CRL URLs (possibly none)."""
    found = []
    for index, cert in enumerate(chain[:-1]):
        issuer = _issuer_of(cert, chain[index + 1:])
        if issuer is not None:
            found.append(RevocationTarget(cert, issuer, crl_urls(cert), ocsp_urls(cert)))
    return found


def ordered_blobs(entries: Sequence[RevocationEntry]) -> list[bytes]:
    """A token's revocation data as bytes in a stable order (by certificate digest, then URL),
    for whatever must cover them (RFC 4998 data objects); entries without data are skipped."""
    kept = sorted((e for e in entries if e.der), key=lambda e: (e.cert_sha256, e.url or ""))
    return [e.der for e in kept if e.der is not None]


def next_update(kind: str, der: bytes) -> datetime | None:
    """nextUpdate of a DER CRL or OCSP response (aware UTC), None if unreadable or absent: how
    long to cache it."""
    try:
        if kind == KIND_OCSP:
            response = ocsp.load_der_ocsp_response(der)
            if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
                return None
            return response.next_update_utc
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
        stored = [e for e in by_cert.get(target.cert_sha256, [])
                  if e.kind in (KIND_CRL, KIND_OCSP) and e.der]
        if not stored:
            notes = [e.note for e in by_cert.get(target.cert_sha256, []) if e.note]
            why = notes[0] if notes else (
                "the certificate names no CRL distribution point or OCSP responder"
                if not target.crl_urls and not target.ocsp_urls
                else "none was stored with the token")
            statuses.append(CertificateStatus(
                subject, target.cert_sha256, None,
                f"no revocation data available for {subject}: {why}"))
            continue
        results = [(check_ocsp if entry.kind == KIND_OCSP else check_crl)(
            target, entry.der, gen_time) for entry in stored if entry.der]
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
    said = (f"revoked at {revoked_at:%Y-%m-%d %H:%M:%S} UTC, reason "
            f"{reason.value if reason else 'not given'}")
    if revoked_at > gen_time and reason in REASONS_KEEPING_EARLIER_TOKENS:
        return status(True, f"{said}, after genTime: tokens from before remain valid "
                      f"(RFC 3161 section 4; CRL {when})", revoked_at=revoked_at,
                      reason=reason.value)
    why = ("at or before genTime" if revoked_at <= gen_time else
           "after genTime, but for a reason that voids every token of the key (RFC 3161 4)")
    return status(False, f"{said}: {why}", revoked_at=revoked_at,
                  reason=reason.value if reason else None)


def check_ocsp(target: RevocationTarget, der: bytes, gen_time: datetime) -> CertificateStatus:
    """Steps 1-3 of the module docstring for one certificate and one DER OCSP response: signed
    by the issuer itself or by a responder certificate the issuer gave id-kp-OCSPSigning (RFC
    6960 4.2.2.2), for this certificate's CertID, speaking for genTime, status at genTime."""
    subject = target.cert.subject.rfc4514_string()

    def status(ok: bool, detail: str, **more: object) -> CertificateStatus:
        return CertificateStatus(subject, target.cert_sha256, ok, f"{subject}: OCSP: {detail}",
                                 **more)  # type: ignore[arg-type]

    if len(der) > MAX_OCSP_BYTES:
        return status(False, f"response larger than {MAX_OCSP_BYTES} bytes")
    try:
        response = ocsp.load_der_ocsp_response(der)
        if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            return status(False, f"the responder answered {response.response_status.name}")
        cert_id_ok = _same_cert_id(response, target)
        this_update, next_update = response.this_update_utc, response.next_update_utc
        cert_status = response.certificate_status
    except ValueError as exc:
        return status(False, f"not a readable OCSP response ({exc})")
    # 1. For this certificate, signed by the issuer or its delegated responder.
    if not cert_id_ok:
        return status(False, "the response is about another certificate")
    signer = _ocsp_signer(response, target.issuer)
    if signer is None:
        return status(False, "not signed by the issuer or a responder it authorised")
    # 2. Speaks for genTime (an OCSP response without nextUpdate speaks only for its time).
    end = next_update or this_update
    if end < gen_time:
        return status(False, f"the response's period ended ({end:%Y-%m-%d %H:%M:%S} UTC) before "
                      f"genTime {gen_time:%Y-%m-%d %H:%M:%S} UTC: it says nothing about then")
    when = ("current at genTime" if this_update <= gen_time
            else f"produced after genTime, at {this_update:%Y-%m-%d %H:%M:%S} UTC")
    # 3. Status at genTime.
    if cert_status is ocsp.OCSPCertStatus.GOOD:
        return status(True, f"good ({when}, signed by {signer})")
    if cert_status is ocsp.OCSPCertStatus.UNKNOWN:
        return status(False, "the responder does not know the certificate")
    revoked_at = response.revocation_time_utc
    reason = response.revocation_reason
    if revoked_at is None:
        return status(False, "revoked, at no stated time")
    said = (f"revoked at {revoked_at:%Y-%m-%d %H:%M:%S} UTC, reason "
            f"{reason.value if reason else 'not given'}")
    if revoked_at > gen_time and reason in REASONS_KEEPING_EARLIER_TOKENS:
        return status(True, f"{said}, after genTime: tokens from before remain valid "
                      f"(RFC 3161 section 4; {when})", revoked_at=revoked_at,
                      reason=reason.value if reason else None)
    why = ("at or before genTime" if revoked_at <= gen_time else
           "after genTime, but for a reason that voids every token of the key (RFC 3161 4)")
    return status(False, f"{said}: {why}", revoked_at=revoked_at,
                  reason=reason.value if reason else None)


def _same_cert_id(response: ocsp.OCSPResponse, target: RevocationTarget) -> bool:
    """The response's CertID is the target's: serial, and the issuer's name and key hashes."""
    if response.serial_number != target.cert.serial_number:
        return False
    mine = ocsp.OCSPRequestBuilder().add_certificate(
        target.cert, target.issuer, response.hash_algorithm).build()
    return (mine.issuer_name_hash == response.issuer_name_hash
            and mine.issuer_key_hash == response.issuer_key_hash)


def _ocsp_signer(response: ocsp.OCSPResponse, issuer: x509.Certificate) -> str | None:
    """Who signed the response, if the issuer or a responder it authorised did; else None."""
    if _signed_by(issuer, response.signature, response.tbs_response_bytes, response):
        return "the issuer"
    for responder in response.certificates[:MAX_URLS_PER_CERT]:
        try:
            usage = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            continue
        if (ExtendedKeyUsageOID.OCSP_SIGNING in usage and responder.issuer == issuer.subject
                and _issued_by(responder, issuer)
                and _signed_by(responder, response.signature, response.tbs_response_bytes,
                               response)):
            return f"responder {responder.subject.rfc4514_string()}"
    return None


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _signed_by(cert: x509.Certificate, signature: bytes, data: bytes,
               response: ocsp.OCSPResponse) -> bool:
    """Whether `cert`'s key made `signature` over `data` with the response's hash algorithm."""
    key = cert.public_key()
    algorithm = response.signature_hash_algorithm
    if algorithm is None:
        return False
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(algorithm))
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


def _reason(entry: x509.RevokedCertificate) -> x509.ReasonFlags | None:
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except (x509.ExtensionNotFound, ValueError):
        return None


def _issuer_of(cert: x509.Certificate, above: Sequence[x509.Certificate]
               ) -> x509.Certificate | None:
    return next((c for c in above if c.subject == cert.issuer), None)

