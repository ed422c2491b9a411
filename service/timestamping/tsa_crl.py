"""The built-in TSA's certificate revocation list: what was revoked, and the signed CRL.

revoked.json in the TSA's data dir lists every revoked TSA certificate (serial, time, reason);
`chronoseal tsa revoke` appends the current one. The TSA serves GET /crl: a DER CRL (RFC 5280
version 2) signed by its root with SHA-256, thisUpdate now and nextUpdate CRL_VALIDITY later,
carrying AuthorityKeyIdentifier and a CRL number as section 5.2 requires.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from service.errors import ConfigError
from service.timestamping.serials import write_atomically

REVOKED_FILE = "revoked.json"
# How long a served CRL speaks for: relying parties cache it this long, so a revocation may go
# unseen by them for up to this; a day is the usual CRL period of TSA CAs.
CRL_VALIDITY = timedelta(days=1)
BACKDATE = timedelta(minutes=5)  # thisUpdate: tolerate relying parties' clocks running behind
MAX_REVOKED = 10_000  # a TSA revokes its certificate a few times in its life; bounds the file
REASONS = {flag.name: flag for flag in x509.ReasonFlags
           if flag not in (x509.ReasonFlags.remove_from_crl,)}
# cryptography's ReasonFlags values are RFC 5280's names (keyCompromise, cessationOfOperation).
REASON_NAMES = {flag.value: flag for flag in REASONS.values()}


@dataclass(frozen=True)
class Revoked:
    """One revoked TSA certificate."""

    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags


def read_revoked(data_dir: Path) -> list[Revoked]:
    """The revoked certificates recorded in `data_dir` (none when the file does not exist)."""
    path = data_dir / REVOKED_FILE
    try:
        entries = json.loads(path.read_text())
        return [Revoked(int(e["serial"]), datetime.fromisoformat(e["revoked_at"]),
                        REASON_NAMES[e["reason"]]) for e in entries[:MAX_REVOKED]]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a list of revoked certificates: {exc}") from exc


def is_revoked(data_dir: Path, serial: int) -> bool:
    return any(r.serial == serial for r in read_revoked(data_dir))


def revoke(data_dir: Path, cert: x509.Certificate, reason: x509.ReasonFlags,
           now: datetime | None = None) -> Revoked:
    """Record `cert` as revoked at `now` (once; a second revoke keeps the first record)."""
    revoked = read_revoked(data_dir)
    for entry in revoked:
        if entry.serial == cert.serial_number:
            return entry
    entry = Revoked(cert.serial_number, (now or datetime.now(UTC)).replace(microsecond=0),
                    reason)
    revoked.append(entry)
    data = [{"serial": str(r.serial), "revoked_at": r.revoked_at.isoformat(),
             "reason": r.reason.value} for r in revoked]
    write_atomically(data_dir / REVOKED_FILE, (json.dumps(data, indent=2) + "\n").encode(),
                     mode=0o644)
    return entry


def build_crl(root_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
              root_cert: x509.Certificate, revoked: list[Revoked],
              now: datetime | None = None) -> bytes:
    """The DER CRL of `revoked`, signed by the root (see the module docstring)."""
    now = now or datetime.now(UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(root_cert.subject)
        .last_update(now - BACKDATE).next_update(now + CRL_VALIDITY)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                       critical=False)
        # Increases with every CRL issued: milliseconds since the epoch need no stored counter.
        .add_extension(x509.CRLNumber(int(now.timestamp() * 1000)), critical=False)
    )
    for entry in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(entry.serial).revocation_date(entry.revoked_at)
            .add_extension(x509.CRLReason(entry.reason), critical=False)
            .build()
        )
    return builder.sign(root_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
