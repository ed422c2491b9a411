"""Stamp one file: hash, skip if its bundle already verifies, register, wait, fetch, check, write.

Re-running is safe: a valid bundle is never redone, and registration carries an Idempotency-Key
derived from the digest and the record, so a run cut short finds its receipt again.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from service.client.api import ClientError, StampClient
from service.errors import MalformedInputError
from service.evidence.bundle_check import MAX_BUNDLE_BYTES, TokenMemo, check_bundle
from service.evidence.manifest import canonicalize
from service.evidence.records import read_generation_record

BUNDLE_SUFFIX = ".chronoseal.zip"
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".avif", ".tif", ".tiff",
                            ".bmp", ".heic", ".heif", ".jxl"})
POLL_FIRST_S = 0.25  # most batches close within a second (batch_max_wait_ms)
POLL_FACTOR = 1.6
POLL_MAX_S = 5.0  # a stamp delayed by TSA retries is polled every 5 s, not hammered
HASH_BLOCK_BYTES = 1 << 20
MAX_RESUBMITS = 5  # failed receipts re-registered in one run before the file counts as failed
IDEMPOTENCY_KEY_STEM = 100  # the key's digest part, kept when a failed receipt's id is added
RECORD_WARNING = "generation record: "  # as the server prefixes its reader's warnings


@dataclass(frozen=True)
class Options:
    """What every file of a run shares."""

    out_dir: Path | None  # None: each bundle next to its image
    hash_only: bool
    metadata: dict[str, Any]
    wait_s: float  # give up on a receipt still pending after this long
    roots: Sequence[x509.Certificate] | None  # for the skip check and the final check


@dataclass(frozen=True)
class Outcome:
    """How one file ended: `stamped`, `skipped` or `failed` (with the reason)."""

    path: Path
    state: str
    detail: str
    bundle: Path | None = None


def find_images(targets: Iterable[Path]) -> list[Path]:
    """Files named directly, plus the images (by suffix) directly inside named directories."""
    found: list[Path] = []
    for target in targets:
        if target.is_dir():
            found += sorted(p for p in target.iterdir()
                            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            found.append(target)
    return list(dict.fromkeys(found))


def bundle_path(image: Path, out_dir: Path | None) -> Path:
    """NAME.chronoseal.zip (NAME with its suffix, so a.png and a.jpg do not collide)."""
    return (out_dir or image.parent) / (image.name + BUNDLE_SUFFIX)


def stamp_file(client: StampClient, path: Path, options: Options,
               report: Callable[[Path, str], None]) -> Outcome:
    """Run one file through; never raises for the file's own problems (they become failed)."""
    try:
        return _stamp(client, path, options, report)
    except (ClientError, OSError, MalformedInputError) as exc:
        return Outcome(path, "failed", str(exc))


def _stamp(client: StampClient, path: Path, options: Options,
           report: Callable[[Path, str], None]) -> Outcome:
    sha256 = sha256_file(path)
    target = bundle_path(path, options.out_dir)
    if valid_bundle(target, sha256, options.roots):
        return Outcome(path, "skipped", "a valid bundle exists", target)
    metadata = dict(options.metadata)
    record = read_local_record(path).record if options.hash_only else None
    key = idempotency_key(options.hash_only, sha256, metadata, record)
    report(path, "registering" if options.hash_only else "uploading")
    accepted = _register(client, path, sha256, metadata, record, key, options.hash_only)
    receipt_id = str(accepted["id"])
    report(path, "waiting")
    receipt = _wait(client, receipt_id, options.wait_s)
    data = client.bundle(receipt_id)
    verdict = check_bundle(data, image_sha256=sha256, roots=options.roots)
    if not verdict.valid:
        return Outcome(path, "failed", f"{receipt_id}: the bundle does not verify: "
                       + "; ".join(verdict.reasons))
    write_atomically(target, data)
    return Outcome(path, "stamped", f"{receipt_id} at {receipt.get('stamped_at')}", target)


def idempotency_key(hash_only: bool, sha256: str, metadata: dict[str, Any],
                    record: dict[str, Any] | None) -> str:
    """The registration's Idempotency-Key: from what is sent, so a run cut short finds its
    receipts again and a changed record makes a new one."""
    sent = {"mode": "digest" if hash_only else "upload", "sha256": sha256, "metadata": metadata}
    if record:
        sent["record"] = record
    return "chronoseal-stamp:" + hashlib.sha256(canonicalize(sent)).hexdigest()


def key_after_failure(key: str, failed_id: str) -> str:
    """A replayed receipt that had failed is registered anew under a key naming it, so running
    again retries a failure instead of repeating it."""
    return f"{key[:IDEMPOTENCY_KEY_STEM]}:after:{failed_id}"


def _register(client: StampClient, path: Path, sha256: str, metadata: dict[str, Any],
              record: dict[str, Any] | None, key: str, hash_only: bool) -> dict[str, Any]:
    """Register (or find again) the receipt, anew after a failed one (key_after_failure)."""
    for _ in range(MAX_RESUBMITS + 1):
        if hash_only:
            accepted = client.register_digest(sha256, metadata, key, record)
        else:
            accepted = client.register_upload(path, metadata, key)
        if accepted.get("status") != "failed":
            return accepted
        key = key_after_failure(key, str(accepted["id"]))
    raise ClientError(f"{accepted['id']} failed, as did {MAX_RESUBMITS} retries; see its failure")


def _wait(client: StampClient, receipt_id: str, wait_s: float) -> dict[str, Any]:
    """Poll GET /v1/stamps/{id} with growing pauses until it is stamped (or failed, or late)."""
    deadline = time.monotonic() + wait_s
    pause = POLL_FIRST_S
    while True:
        try:
            receipt = client.receipt(receipt_id)
        except ClientError as exc:
            if not exc.retryable:
                raise
            receipt = {"status": "pending", "last_error": str(exc)}
        status = receipt.get("status")
        if status == "stamped":
            return receipt
        if status == "failed":
            raise ClientError(f"{receipt_id} failed: {receipt.get('failure')}")
        if time.monotonic() + pause > deadline:
            last = receipt.get("last_error")
            raise ClientError(f"{receipt_id} still {status} after {wait_s:g} s"
                              + (f" ({last})" if last else "") + "; run again to resume")
        time.sleep(pause)
        pause = min(pause * POLL_FACTOR, POLL_MAX_S)


@dataclass(frozen=True)
class LocalRecord:
    """The generation record read here from the file (--hash-only), in the shape the server
    gives a record it reads itself (`source`, fields, `raw`, `details`...), and the reader's
    warnings; `record` is None when the file carries none."""

    record: dict[str, Any] | None
    warnings: tuple[str, ...]


def read_local_record(path: Path) -> LocalRecord:
    """The file's embedded record, sent as `record` beside the digest: the server merges it
    with `--metadata` as it merges a record it reads (`sources`, `conflicts`)."""
    found = read_generation_record(path)
    warnings = tuple(RECORD_WARNING + w for w in found.warnings)
    return LocalRecord(found.as_generation() if found.found else None, warnings)


def valid_bundle(target: Path, sha256: str, roots: Sequence[x509.Certificate] | None,
                 memo: TokenMemo | None = None) -> bool:
    """The bundle written for this image exists and verifies (then the image is skipped)."""
    try:
        with target.open("rb") as fh:
            data = fh.read(MAX_BUNDLE_BYTES + 1)
        return check_bundle(data, image_sha256=sha256, roots=roots, memo=memo).valid
    except (OSError, MalformedInputError):
        return False


def write_atomically(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + f".{os.getpid()}.partial")
    partial.write_bytes(data)
    os.replace(partial, target)


def sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
