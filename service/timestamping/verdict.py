"""The result of verifying a timestamp token: facts read from it and reasons it failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from service.timestamping.certificates import certificate_serial


@dataclass(frozen=True)
class TokenFacts:
    """What the token says, as far as it could be read; None where it could not."""

    gen_time: datetime | None = None  # aware, UTC
    serial: int | None = None
    tsa_name: str | None = None
    policy: str | None = None
    hash_algorithm: str | None = None  # of the message imprint, e.g. "sha256"
    hashed_message: bytes | None = None
    nonce: int | None = None
    accuracy: dict[str, int] | None = None  # seconds / millis / micros, as present
    ordering: bool | None = None
    signature_algorithm: str | None = None  # OID of SignerInfo signatureAlgorithm
    signer_certificate: x509.Certificate | None = None
    # The validated path, TSA certificate first and the trusted root last (empty if none).
    chain: tuple[x509.Certificate, ...] = ()
    status: str | None = None  # PKIStatus name; None for a bare token
    status_text: str | None = None
    fail_info: tuple[str, ...] = ()

    @property
    def anchor(self) -> x509.Certificate | None:
        """The trust anchor the validated path ends at (a given root), None without a path."""
        return self.chain[-1] if self.chain else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: times RFC 3339, bytes hex, the certificate summarised."""
        cert = self.signer_certificate
        return {
            "gen_time": self.gen_time.isoformat().replace("+00:00", "Z") if self.gen_time else None,
            "serial": self.serial,
            "tsa_name": self.tsa_name,
            "policy": self.policy,
            "hash_algorithm": self.hash_algorithm,
            "hashed_message": self.hashed_message.hex() if self.hashed_message else None,
            "nonce": self.nonce,
            "accuracy": self.accuracy,
            "ordering": self.ordering,
            "signature_algorithm": self.signature_algorithm,
            "signer_certificate": _certificate_summary(cert) if cert is not None else None,
            "trust_anchor": _anchor_summary(self.anchor) if self.anchor is not None else None,
            "status": self.status,
            "status_text": self.status_text,
            "fail_info": list(self.fail_info),
        }


@dataclass(frozen=True)
class Verdict:
    """valid is True iff reasons is empty; warnings never make a token invalid."""

    valid: bool
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    facts: TokenFacts = field(default_factory=TokenFacts)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for the CLI and the API."""
        return {
            "valid": self.valid,
            "reasons": list(self.reasons),
            "warnings": list(self.warnings),
            "facts": self.facts.as_dict(),
        }


def _anchor_summary(cert: x509.Certificate) -> dict[str, Any]:
    return {"subject": cert.subject.rfc4514_string(),
            "sha256": cert.fingerprint(hashes.SHA256()).hex()}


def _certificate_summary(cert: x509.Certificate) -> dict[str, Any]:
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": certificate_serial(cert),
        "not_before": cert.not_valid_before_utc.isoformat().replace("+00:00", "Z"),
        "not_after": cert.not_valid_after_utc.isoformat().replace("+00:00", "Z"),
        "sha256": cert.fingerprint(hashes.SHA256()).hex(),
    }
