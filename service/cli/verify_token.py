"""`chronoseal verify-token`: verify one RFC 3161 token offline against given roots.

Exit codes: 0 valid, 1 invalid, 2 unusable input (missing file, bad hex, bad PEM).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from service.cli._output import print_result
from service.errors import MalformedInputError
from service.timestamping.cms import MAX_REPLY_BYTES
from service.timestamping.verify import (
    Verdict,
    digest_data,
    imprint_algorithm,
    verify_timestamp,
)

EXIT_VALID, EXIT_INVALID, EXIT_UNUSABLE = 0, 1, 2
# PEM bundles of roots or intermediates are a few KiB; this stops reading a wrong huge file.
MAX_PEM_BYTES = 4 << 20


def register(subparsers: Any) -> None:
    """Add the verify-token sub-command."""
    parser = subparsers.add_parser(
        "verify-token", help="verify an RFC 3161 timestamp token", description=__doc__
    )
    parser.add_argument("--token", required=True, type=Path, help="TimeStampResp or token (DER)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--data", type=Path, help="file whose digest was timestamped")
    what.add_argument("--digest", help="hex digest that was timestamped")
    parser.add_argument("--hash-alg", help="hash of --digest (default sha256); with --data the "
                        "token's own imprint algorithm is used, as openssl ts -verify does")
    parser.add_argument("--ca", required=True, type=Path, help="PEM file of trusted roots")
    parser.add_argument("--untrusted", type=Path, help="PEM file of TSA/intermediate certs")
    parser.add_argument("--nonce", type=lambda s: int(s, 0), help="nonce of the request")
    parser.add_argument("--policy", help="policy OID the request asked for")
    parser.add_argument("--partial-chain", action="store_true",
                        help="trust --ca certificates that are not self-signed (an intermediate "
                        "or the TSA certificate) as anchors, like openssl -partial_chain")
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Verify and print the verdict; unusable input goes to stderr with exit code 2."""
    try:
        verdict = _verify(args)
    except (OSError, ValueError, MalformedInputError) as exc:
        print(f"chronoseal verify-token: error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    print_result(json.dumps(verdict.as_dict(), indent=2) if args.json else render(verdict))
    return EXIT_VALID if verdict.valid else EXIT_INVALID


def _verify(args: argparse.Namespace) -> Verdict:
    token = _read(args.token, MAX_REPLY_BYTES + 1)  # one byte over lets the verifier say "too big"
    hash_alg = args.hash_alg or "sha256"
    if args.data is not None:
        if args.hash_alg is not None:
            raise MalformedInputError("--hash-alg goes with --digest; --data is hashed with the "
                                      "token's own imprint algorithm")
        # Unreadable or unsupported: sha256, and the verdict says what the token holds instead.
        hash_alg = imprint_algorithm(token) or "sha256"
        with args.data.open("rb") as fh:
            digest = hashlib.file_digest(fh, hash_alg).digest()
    else:
        digest_data(b"", hash_alg)  # refuse hashes the verifier does not support first
        try:
            digest = bytes.fromhex(args.digest)
        except ValueError as exc:
            raise MalformedInputError(f"--digest is not hex: {args.digest!r}") from exc
    roots = read_certificates(args.ca, "--ca")
    untrusted = read_certificates(args.untrusted, "--untrusted") if args.untrusted else []
    return verify_timestamp(
        token, digest=digest, hash_alg=hash_alg, roots=roots, untrusted=untrusted,
        nonce=args.nonce, policy=args.policy, partial_chain=args.partial_chain,
    )


def _anchor(cert: x509.Certificate) -> str:
    return f"{cert.subject.rfc4514_string()} (SHA-256 {cert.fingerprint(hashes.SHA256()).hex()})"


def _read(path: Path, limit: int) -> bytes:
    with path.open("rb") as fh:
        return fh.read(limit)


def read_certificates(path: Path, option: str) -> list[x509.Certificate]:
    """The PEM certificates in `path` (a roots or intermediates option's file), bounded."""
    data = _read(path, MAX_PEM_BYTES)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise MalformedInputError(f"{option} {path} holds no usable PEM certificate") from exc
    return certs


def render(verdict: Verdict) -> str:
    """Human-readable verdict: the outcome, the reasons or the key facts, then warnings."""
    facts = verdict.facts
    lines = ["VALID timestamp token" if verdict.valid else "INVALID timestamp token"]
    lines += [f"  reason: {r}" for r in verdict.reasons]
    cert = facts.signer_certificate
    for label, value in (
        ("time", facts.gen_time.isoformat() if facts.gen_time else None),
        ("accuracy", facts.accuracy),
        ("serial", facts.serial),
        ("TSA", facts.tsa_name),
        ("signer", cert.subject.rfc4514_string() if cert is not None else None),
        ("anchor", _anchor(facts.anchor) if facts.anchor is not None else None),
        ("policy", facts.policy),
        ("imprint", f"{facts.hash_algorithm}:{facts.hashed_message.hex()}"
         if facts.hashed_message else None),
        ("nonce", facts.nonce),
        ("status", facts.status),
    ):
        if value is not None:
            lines.append(f"  {label}: {value}")
    lines += [f"  warning: {w}" for w in verdict.warnings]
    return "\n".join(lines)
