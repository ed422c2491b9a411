"""`chronoseal verify BUNDLE`: check an evidence bundle offline and say what it proves.

Exit codes: 0 valid, 1 invalid, 2 unusable input (unreadable file, not a bundle,
bad --digest or --ca).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.cli._output import print_result
from service.cli.verify_token import read_certificates
from service.errors import MalformedInputError
from service.evidence.bundle_check import MAX_BUNDLE_BYTES, BundleVerdict, check_bundle
from service.evidence.generation import record_rows

EXIT_VALID, EXIT_INVALID, EXIT_UNUSABLE = 0, 1, 2
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_FILE_BLOCK = 1 << 20  # images are hashed in 1 MiB reads
RECORD_VALUE_WIDTH = 72  # a prompt wraps into lines a terminal and a printout keep whole


def register(subparsers: Any) -> None:
    """Add the verify sub-command."""
    parser = subparsers.add_parser("verify", help="verify an evidence bundle offline",
                                   description=__doc__)
    parser.add_argument("bundle", type=Path, help="the bundle ZIP (NAME.chronoseal.zip)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--image", type=Path, help="the image file to compare with the manifest")
    what.add_argument("--digest", help="the image's SHA-256 (hex) instead of the file")
    parser.add_argument("--ca", type=Path,
                        help="PEM file of the TSA roots you trust (default: the bundled roots)")
    parser.add_argument("--partial-chain", action="store_true",
                        help="trust --ca (or bundled) certificates that are not self-signed as "
                        "anchors, like openssl -partial_chain")
    parser.add_argument("--at", type=_moment, default=None, metavar="TIME",
                        help="judge certificate expiry (and so whether archive timestamps are "
                        "needed) as of this ISO 8601 time, UTC unless stated; default now")
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")
    parser.set_defaults(func=run)


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run(args: argparse.Namespace) -> int:
    """Check the bundle and print the verdict; unusable input goes to stderr with exit 2."""
    try:
        verdict = _verify(args)
    except (OSError, MalformedInputError) as exc:
        print(f"chronoseal verify: error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    print_result(json.dumps(verdict.as_dict(), indent=2) if args.json else render(verdict))
    return EXIT_VALID if verdict.valid else EXIT_INVALID


def _verify(args: argparse.Namespace) -> BundleVerdict:
    with args.bundle.open("rb") as fh:
        data = fh.read(MAX_BUNDLE_BYTES + 1)
    digest = None
    if args.image is not None:
        with args.image.open("rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
    elif args.digest is not None:
        if not _HEX64.fullmatch(args.digest):
            raise MalformedInputError("--digest must be 64 hexadecimal characters (SHA-256)")
        digest = args.digest.lower()
    roots = read_certificates(args.ca, "--ca") if args.ca else None
    return check_bundle(data, image_sha256=digest, roots=roots, partial_chain=args.partial_chain,
                        now=args.at)


def render(verdict: BundleVerdict) -> str:
    """A summary a person can read: the outcome, what was proven, when, by whom, then checks."""
    lines = ["VALID evidence bundle" if verdict.valid else "INVALID evidence bundle"]
    lines += [f"  reason: {r}" for r in verdict.reasons]
    manifest = verdict.manifest or {}
    image = _section(manifest, "image")
    if verdict.valid:
        subject = ("the image you gave" if verdict.image_checked
                   else "an image (none was given to compare)")
        lines.append(f"  proven: {subject} with SHA-256 {image.get('sha256')} and the "
                     "generation record below existed no later than each time below")
    lines.append(f"  manifest digest: {verdict.manifest_digest}")
    lines.append(f"  submitted at (server clock): {manifest.get('submitted_at')}")
    lines += _record_lines(_section(manifest, "generation"))
    for stamp in verdict.stamps:
        when = f"{stamp.gen_time:%Y-%m-%d %H:%M:%S} UTC" if stamp.gen_time else "unknown time"
        lines.append(f"  timestamp {stamp.tsa}: {'valid' if stamp.valid else 'INVALID'}, "
                     f"{when}, signed by {stamp.signer or 'unknown'}")
        if stamp.bundled_root_trusted:
            lines.append("    trusted: the root certificate shipped in the bundle (weaker: "
                         "compare its SHA-256 fingerprint with the one the TSA publishes, or "
                         "pass --ca)")
        else:
            lines.append("    trusted: a root from --ca")
        if stamp.trusted_root_sha256:
            lines.append(f"    root {stamp.trusted_root}, SHA-256 {stamp.trusted_root_sha256}")
        lines += [f"    warning: {w}" for w in stamp.warnings]
        for status in stamp.revocation:
            mark = {True: "not revoked at genTime", False: "REVOKED or unverifiable",
                    None: "NO REVOCATION DATA"}[status.ok]
            lines.append(f"    revocation ({mark}): {status.detail}")
    if verdict.history:
        lines.append("  iteration history (oldest first; each checked like this bundle):")
        for number, item in enumerate(verdict.history, 1):
            when = f"{item.gen_time:%Y-%m-%d %H:%M:%S} UTC" if item.gen_time else "no valid time"
            lines.append(f"    {number}. {when}  {item.receipt_id}  image {item.image_sha256}"
                         + (f"  session {item.session}" if item.session else "")
                         + ("" if item.valid else "  INVALID"))
    lines.append("  checks:")
    for check in verdict.checks:
        mark = {True: "PASS", False: "FAIL", None: "NOT CHECKED"}[check.ok]
        lines.append(f"    [{mark}] {check.name}: {check.detail}")
    return "\n".join(lines)


def _record_lines(generation: dict[str, Any]) -> list[str]:
    """The generation record as a table: field, value, where the value came from."""
    rows = record_rows(generation)
    if not rows:
        return ["  generation record: (none)"]
    width = max(len(name) for name, _, _ in rows)
    lines = ["  generation record (every field is in manifest.json, exactly as timestamped):"]
    for name, value, origin in rows:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        wrapped = textwrap.wrap(text, RECORD_VALUE_WIDTH) or [""]
        lines.append(f"    {name:<{width}}  {wrapped[0]}")
        lines += [f"    {'':<{width}}  {more}" for more in wrapped[1:]]
        lines.append(f"    {'':<{width}}  ({origin})")
    return lines


def _section(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    value = manifest.get(name)
    return value if isinstance(value, dict) else {}
