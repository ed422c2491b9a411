"""`chronoseal exhibit BUNDLE...`: add the court exhibit to bundles written without it.

`chronoseal stamp --hash-only` writes bundles without certificate.html and certificate.pdf
unless given --exhibit: printing the PDF costs the server 0.2-0.3 s per bundle, a hundred times
the rest of a bulk run, and most of a run's images never reach a court. This fetches the two
for the bundles that need them, when they do. The receipt is the one VERIFY.md names, and the
server's receipt must hold the bundle's own manifest (same SHA-256), so a bundle only ever
gains its own exhibit. A bundle must verify before and after; it is replaced atomically.
Bundles that already carry both files are left alone. Exit codes: 0 every bundle has its
exhibit, 1 some failed (listed with the reason) or the server refused the key or could not be
reached, 2 unusable input (a missing path), 130 stopped by Ctrl-C.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from service.cli._client_options import add_server_options, api_key
from service.cli.stamp import DEFAULT_JOBS, EXIT_INTERRUPTED, MAX_JOBS, why_client_failed
from service.client.api import ClientError, StampClient
from service.client.stamping import BUNDLE_SUFFIX, write_atomically
from service.errors import ChronosealError, MalformedInputError
from service.evidence.bundle import exhibit_missing, with_exhibit
from service.evidence.bundle_check import MAX_BUNDLE_BYTES, check_bundle
from service.evidence.instructions import receipt_named

EXIT_OK, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2
LANGUAGES = ("en", "zh")


def register(subparsers: Any) -> None:
    """Add the exhibit sub-command."""
    parser = subparsers.add_parser("exhibit", help="add certificate.html and certificate.pdf "
                                   "to bundles written without them", description=__doc__)
    parser.add_argument("targets", nargs="+", type=Path, metavar="BUNDLE_OR_DIR",
                        help=f"bundles, or directories searched for *{BUNDLE_SUFFIX}")
    add_server_options(parser)
    parser.add_argument("--lang", choices=LANGUAGES, help="the exhibit's language (default: "
                        "the server's)")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help="bundles in flight")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The command: each bundle gains its exhibit, or is listed as failed with the reason."""
    try:
        key = api_key(args)
        if not 1 <= args.jobs <= MAX_JOBS:
            raise MalformedInputError(f"--jobs must be 1..{MAX_JOBS}")
        bundles = _find_bundles(args.targets)
    except MalformedInputError as exc:
        print(f"chronoseal exhibit: error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    client = StampClient(args.server, key, connections=args.jobs)
    try:
        client.check_access()
    except ClientError as exc:
        print(f"chronoseal exhibit: error: {why_client_failed(exc, args.server)}",
              file=sys.stderr)
        return EXIT_FAILED
    failed = 0
    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            outcomes = pool.map(lambda p: _outcome(client, p, args.lang), bundles)
            for path, outcome in zip(bundles, outcomes, strict=True):
                failed += outcome.startswith("failed")
                print(f"{outcome.split(':')[0]:8} {path}{_reason(outcome)}")
    except KeyboardInterrupt:
        print("chronoseal exhibit: interrupted (bundles done so far are complete)",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"{len(bundles) - failed} with their exhibit, {failed} failed")
    return EXIT_FAILED if failed else EXIT_OK


def _find_bundles(targets: list[Path]) -> list[Path]:
    missing = [str(t) for t in targets if not t.exists()]
    if missing:
        raise MalformedInputError(f"no such file or directory: {', '.join(missing)}")
    found: list[Path] = []
    for target in targets:
        found += sorted(target.rglob(f"*{BUNDLE_SUFFIX}")) if target.is_dir() else [target]
    if not found:
        raise MalformedInputError(f"no *{BUNDLE_SUFFIX} bundles found")
    return found


def _outcome(client: StampClient, path: Path, language: str | None) -> str:
    """'added', 'present' or 'failed: why'; a refused key or lost server fails every bundle."""
    try:
        return add_exhibit(client, path, language)
    except (ChronosealError, OSError, zipfile.BadZipFile) as exc:
        return f"failed: {exc}"


def add_exhibit(client: StampClient, path: Path, language: str | None) -> str:
    """Fetch and add the bundle's exhibit: 'added', or 'present' when it has one already."""
    with path.open("rb") as handle:
        data = handle.read(MAX_BUNDLE_BYTES + 1)
    if len(data) > MAX_BUNDLE_BYTES:
        raise MalformedInputError("larger than a bundle can be")
    if not check_bundle(data).valid:
        raise MalformedInputError("the bundle does not verify (chronoseal verify says why)")
    if not exhibit_missing(data):
        return "present"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        receipt_id = receipt_named(archive.read("VERIFY.md"))
        manifest = archive.read("manifest.json")
    if receipt_id is None:
        raise MalformedInputError("VERIFY.md names no receipt")
    stated = client.receipt(receipt_id).get("manifest_digest")
    if stated != hashlib.sha256(manifest).hexdigest():
        raise MalformedInputError(f"receipt {receipt_id} on the server holds another manifest")
    out = with_exhibit(data, client.certificate(receipt_id, "html", language),
                       client.certificate(receipt_id, "pdf", language))
    if not check_bundle(out).valid:  # never replace a good bundle with a broken one
        raise MalformedInputError("the bundle with its exhibit does not verify")
    write_atomically(path, out)
    return "added"


def _reason(outcome: str) -> str:
    return f" ({outcome.split(': ', 1)[1]})" if ": " in outcome else ""
