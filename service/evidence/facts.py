"""What a bundle states, gathered once and rendered by certificate.html and VERIFY.md alike."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from service.timestamping.batch_head import BatchHead


@dataclass(frozen=True)
class TimestampFacts:
    """One TSA's token as read (not verified) from its DER, plus its chain's root fingerprint."""

    name: str  # the sanitised name used in tokens/<name>.tsr and certs/<name>.pem
    subject: str  # the TSA certificate's subject (RFC 4514), who signed the time
    gen_time: datetime
    serial: int
    policy: str
    chain_length: int  # certificates in certs/<name>.pem; the last one is the root
    root_fingerprint: str  # SHA-256 of the root's DER, colon-separated as `openssl x509` prints
    # Each certificate below the root: (its 1-based place in the chain, SHA-256 of its DER,
    # serial as hex, its revocation/<name>/<sha256>.crl or .ocsp member, "" when none).
    revocation: tuple[tuple[int, str, str, str], ...] = ()


@dataclass(frozen=True)
class AuditStep:
    """One fold of the audit path: node = SHA-256(0x01 || left || right)."""

    left: str
    right: str
    result: str


@dataclass(frozen=True)
class Authority:
    """Who a TSA is, for a reader: its description, and whether this service's operator runs
    it (the built-in TSA, whose root the operator created itself) or it is independent."""

    description: str
    operator_run: bool


@dataclass(frozen=True)
class AncestorFacts:
    """One earlier iteration the bundle carries under history/<receipt id>/: its manifest and
    its tokens as read (verify.py checks them), and the file name it was registered with."""

    receipt_id: str
    manifest: dict[str, Any]
    manifest_digest: str
    timestamps: tuple[TimestampFacts, ...]
    image_name: str | None = None


@dataclass(frozen=True)
class BundleFacts:
    """Everything the human-readable documents show, as hex strings and parsed JSON."""

    receipt_id: str
    image_name: str | None
    manifest: dict[str, Any]
    manifest_digest: str
    proof: dict[str, Any]
    steps: tuple[AuditStep, ...]
    timestamps: tuple[TimestampFacts, ...]
    batch_head: BatchHead | None = None  # proof format 2: the tokens imprint SHA-256 of it
    # For the exhibit (certificate.html/.pdf): the registered image's bytes while the service
    # still stores them (its thumbnail), each TSA by sanitised name, the verification page.
    image: bytes | None = None
    authorities: dict[str, Authority] = field(default_factory=dict)
    verify_url: str | None = None
    language: str = "en"
    history: tuple[AncestorFacts, ...] = ()  # the earlier iterations under history/, if any


def audit_steps(leaf: bytes, index: int, size: int, path: list[bytes]) -> tuple[AuditStep, ...]:
    """The RFC 9162 2.1.3.2 fold spelled out step by step, for a person to redo by hand."""
    steps = []
    fn, sn, r = index, size - 1, leaf
    for p in path:
        left, right = (p, r) if fn & 1 or fn == sn else (r, p)
        if fn & 1 or fn == sn:
            while fn & 1 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        r = hashlib.sha256(b"\x01" + left + right).digest()
        steps.append(AuditStep(left.hex(), right.hex(), r.hex()))
        fn >>= 1
        sn >>= 1
    return tuple(steps)
