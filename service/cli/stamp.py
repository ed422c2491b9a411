"""`chronoseal stamp FILE_OR_DIR...`: register images, wait for their stamps, write bundles.

Each image gets NAME.chronoseal.zip (next to it, or in --out). Images whose bundle already
verifies are skipped, so a run can be repeated until everything is stamped. Exit codes: 0 every
file stamped or skipped, 1 some failed (listed at the end with the reason) or the server refused
the key or could not be reached, 2 unusable input (a missing path), 130 stopped by Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from service.cli._client_options import add_client_options, api_key, metadata_option
from service.cli.verify_token import read_certificates
from service.client.api import ClientError, StampClient
from service.client.pipeline import StampRun
from service.client.stamping import Options, Outcome, find_images
from service.errors import ConfigError, MalformedInputError
from service.evidence.credentials.embed import LocalSigner
from service.settings import load_settings

EXIT_OK, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C
DEFAULT_JOBS = 4  # uploads overlap hashing and waiting; more mostly queues at the server
MAX_JOBS = 32
DEFAULT_WAIT_S = 600.0  # TSA retries can delay a stamp by minutes; after that, run again
PROGRESS_INTERVAL_S = 0.2  # redraws of the bar at most this often


def register(subparsers: Any) -> None:
    """Add the stamp sub-command."""
    parser = subparsers.add_parser("stamp", help="timestamp images and write their bundles",
                                   description=__doc__)
    parser.add_argument("targets", nargs="+", type=Path, metavar="FILE_OR_DIR")
    add_client_options(parser)
    parser.add_argument("--out", type=Path, help="directory for the bundles (default: beside "
                        "each image)")
    parser.add_argument("--hash-only", action="store_true", help="send only the SHA-256 and the "
                        "locally read generation record: the image never leaves this machine")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS,
                        help="uploads in flight, and threads fetching bundles")
    parser.add_argument("--wait", type=float, default=DEFAULT_WAIT_S,
                        help="seconds to wait for each stamp before giving up")
    parser.add_argument("--embed", action="store_true", help="also write NAME.c2pa.EXT, a copy "
                        "carrying its registration as C2PA Content Credentials, signed here "
                        "with the server's key from its data dir, and register it")
    parser.add_argument("--history", action="store_true", help="bundles carry each earlier "
                        "iteration (the parents named at registration), checked by verify.py")
    parser.add_argument("--session", help="the working session these images belong to")
    parser.add_argument("--parent", action="append", default=[], metavar="RECEIPT_OR_SHA256",
                        help="an earlier iteration (receipt id or image SHA-256); repeatable")
    parser.add_argument("--private-record", action="store_true", help="the manifest holds "
                        "salted commitments, not the record; disclosure.json in each bundle opens "
                        "them (see chronoseal disclose)")
    # No exhibit by default: a stamp run is the bulk one (issue 14: at most twice sha256sum's,
    # or curl's, time over 1,000 files), and WeasyPrint's PDF costs the server 0.2-0.3 s a
    # bundle (with it, 1,000 uploads took 12 times curl's time in bench/client.py). It is
    # derived from the evidence, not part of it: `chronoseal exhibit` or the receipt page print
    # it when a dispute needs it (from the stored thumbnail for uploads).
    exhibit = parser.add_mutually_exclusive_group()
    exhibit.add_argument("--exhibit", dest="exhibit", action="store_true", default=False,
                         help="bundles carry certificate.html and certificate.pdf, the court "
                         "exhibit")
    exhibit.add_argument("--no-exhibit", dest="exhibit", action="store_false", help="bundles "
                         "without them (the default: the PDF is most of a bundle's server time; "
                         "`chronoseal exhibit BUNDLE` adds them later)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The command; Ctrl-C before the files are under way ends it at once (exit 130)."""
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("chronoseal stamp: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _run(args: argparse.Namespace) -> int:
    try:
        key, options = _setup(args)
    except (MalformedInputError, OSError, ConfigError) as exc:
        print(f"chronoseal stamp: error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    missing = [str(t) for t in args.targets if not t.exists()]
    if missing:
        print(f"chronoseal stamp: error: no such file or directory: {', '.join(missing)}",
              file=sys.stderr)
        return EXIT_UNUSABLE
    images = find_images(args.targets)
    if not images:
        print("chronoseal stamp: error: no image files found", file=sys.stderr)
        return EXIT_UNUSABLE
    client = StampClient(args.server, key, connections=args.jobs + 2)
    try:
        client.check_access()  # a refused key or a server that is down: one message, now
    except ClientError as exc:
        print(f"chronoseal stamp: error: {why_client_failed(exc, args.server)}", file=sys.stderr)
        return EXIT_FAILED
    with Progress(len(images), sys.stderr) as progress:
        stamp_run = StampRun(client, options, args.jobs, progress.event, progress.done)
        try:
            outcomes = stamp_run.run(images)
        except KeyboardInterrupt:
            stamp_run.cancel()
            outcomes = stamp_run.outcomes(images)
    if stamp_run.fatal:
        print(f"chronoseal stamp: error: {stamp_run.fatal}", file=sys.stderr)
    code = summarize(outcomes, sys.stdout, unfinished=len(images) - len(outcomes))
    if not options.exhibit and any(o.state == "stamped" for o in outcomes):
        print("bundles written without the court exhibit (certificate.pdf): "
              "`chronoseal exhibit BUNDLE...` adds it when one is needed", file=sys.stdout)
    if stamp_run.cancelled and not stamp_run.fatal:
        print("interrupted: run again to finish (stamped files are skipped)", file=sys.stdout)
        return EXIT_INTERRUPTED
    return EXIT_FAILED if stamp_run.fatal else code


def why_client_failed(exc: ClientError, server: str) -> str:
    """One line for a run that cannot go on: the key refused, or the server unreachable."""
    if exc.fatal:
        return f"the server refused the API key ({exc})"
    if exc.unreachable:
        return f"cannot reach the server at {server}: is it running? ({exc})"
    return str(exc)


def _setup(args: argparse.Namespace) -> tuple[str, Options]:
    key = api_key(args)
    if not 1 <= args.jobs <= MAX_JOBS:
        raise MalformedInputError(f"--jobs must be 1..{MAX_JOBS}")
    metadata = metadata_option(args.metadata)
    roots = read_certificates(args.ca, "--ca") if args.ca else None
    return key, Options(out_dir=args.out, hash_only=args.hash_only, metadata=metadata,
                        wait_s=args.wait, roots=roots, history=args.history,
                        private_record=args.private_record, exhibit=args.exhibit,
                        lineage={k: v for k, v in (("session", args.session),
                                                   ("parents", args.parent)) if v},
                        embed=_local_signer() if args.embed else None)


def summarize(outcomes: list[Outcome], out: TextIO, unfinished: int = 0) -> int:
    """One line per file, failures last with their reasons; the exit code."""
    for o in outcomes:
        if o.state != "failed":
            print(f"{o.state:8} {o.path} -> {o.bundle} ({o.detail})", file=out)
    failed = [o for o in outcomes if o.state == "failed"]
    counts = {s: sum(o.state == s for o in outcomes) for s in ("stamped", "skipped", "failed")}
    print(", ".join(f"{n} {s}" for s, n in counts.items())
          + (f", {unfinished} not finished" if unfinished else ""), file=out)
    if failed:
        print("failed:", file=out)
        for o in failed:
            print(f"  {o.path}: {o.detail}", file=out)
    return EXIT_FAILED if failed else EXIT_OK


class Progress:
    """A tqdm bar on stderr (files, rate and time left); warnings per file above it."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.stream = stream
        self.bar = tqdm(total=total, file=stream, unit="file", ascii=True, dynamic_ncols=True,
                        mininterval=PROGRESS_INTERVAL_S, smoothing=0.1)
        self.failed = 0

    def event(self, kind: str, path: Path, text: str) -> None:
        if kind == "warning":
            self.bar.write(f"warning: {path}: {text}", file=self.stream)

    def done(self, outcome: Outcome) -> None:
        if outcome.state == "failed":
            self.failed += 1
            self.bar.set_postfix_str(f"{self.failed} failed", refresh=False)
        self.bar.update(1)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()


def _local_signer() -> LocalSigner:
    """The signer of --embed's copies; imported only then (it loads the storage package and
    SQLAlchemy, half a second of every `chronoseal stamp` start otherwise)."""
    from service.usecases.credentials import local_signer

    return local_signer(load_settings())
