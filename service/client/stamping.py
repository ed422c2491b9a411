"""Stamp one file: hash, skip if its bundle already verifies, register, wait, fetch, check, write.

Re-running is safe: a valid bundle is never redone, and registration carries an Idempotency-Key
derived from the digest and the record, so a run cut short finds its receipt again.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from service.client.api import ClientError, StampClient
from service.client.embed import embed_copy
from service.errors import EmbedError, MalformedInputError
from service.evidence.bundle import with_disclosure
from service.evidence.bundle_check import MAX_BUNDLE_BYTES, check_bundle
from service.evidence.credentials.embed import LocalSigner
from service.evidence.disclosure import Opening, commit_generation, disclosure_document
from service.evidence.generation import normalize_request_metadata
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


@dataclass(frozen=True)
class Options:
    """What every file of a run shares."""

    out_dir: Path | None  # None: each bundle next to its image
    hash_only: bool
    metadata: dict[str, Any]
    wait_s: float  # give up on a receipt still pending after this long
    roots: Sequence[x509.Certificate] | None  # for the skip check and the final check
    embed: LocalSigner | None = None  # --embed: also write a copy with Content Credentials
    history: bool = False  # bundles carry each earlier iteration (history/)
    private_record: bool = False  # commitments in the manifest; disclosure.json in the bundle
    lineage: dict[str, Any] = field(default_factory=dict)  # session, parents (usecases.lineage)


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
    except (ClientError, OSError, MalformedInputError, EmbedError) as exc:
        return Outcome(path, "failed", str(exc))


def _stamp(client: StampClient, path: Path, options: Options,
           report: Callable[[Path, str], None]) -> Outcome:
    sha256 = _sha256_file(path)
    target = bundle_path(path, options.out_dir)
    if _valid_bundle(target, sha256, options.roots):
        return Outcome(path, "skipped", "a valid bundle exists", target)
    metadata = dict(options.metadata)
    if options.hash_only:
        metadata = {**read_local_record(path), **metadata}
    mode = "digest" if options.hash_only else "upload"
    request = {"mode": mode, "sha256": sha256, "metadata": metadata}
    if options.lineage:  # another session or parents is another request
        request["lineage"] = options.lineage
    key = "chronoseal-stamp:" + hashlib.sha256(canonicalize(request)).hexdigest()
    extra, opened = request_fields(metadata, options)
    if opened is not None:  # committed here: only the commitments leave this machine
        metadata = {}
    if options.private_record:  # fresh salts each run: a replay could not be opened
        key = f"chronoseal-stamp:private:{secrets.token_hex(16)}"
    report(path, "registering" if options.hash_only else "uploading")
    accepted = _register(client, path, sha256, metadata, key, options.hash_only, extra)
    receipt_id = str(accepted["id"])
    disclosure = (disclosure_document(str(accepted["manifest_digest"]), opened)
                  if opened is not None else _answered_disclosure(accepted))
    report(path, "waiting")
    receipt = _wait(client, receipt_id, options.wait_s)
    data = client.bundle(receipt_id, history=options.history)
    if disclosure is not None:  # kept only here, in the creator's copy of the bundle
        data = with_disclosure(data, disclosure)
    verdict = check_bundle(data, image_sha256=sha256, roots=options.roots)
    if not verdict.valid:
        return Outcome(path, "failed", f"{receipt_id}: the bundle does not verify: "
                       + "; ".join(verdict.reasons))
    _write_atomically(target, data)
    detail = f"{receipt_id} at {receipt.get('stamped_at')}"
    if options.embed is not None:
        copy, child_id = embed_copy(client, path, receipt, data, options.embed, options.out_dir)
        detail += f"; Content Credentials copy {copy} registered as {child_id}"
    return Outcome(path, "stamped", detail, target)


def request_fields(metadata: dict[str, Any], options: Options
                   ) -> tuple[dict[str, Any], dict[str, Opening] | None]:
    """The request's session, parents and private-record fields and, for a private --hash-only
    run, the openings of the commitments computed here (an upload's are computed by the
    server, which reads the file)."""
    if not options.private_record:
        return dict(options.lineage), None
    if not options.hash_only:
        return {**options.lineage, "private_record": True}, None
    private, opened = commit_generation(normalize_request_metadata(metadata))
    return {**options.lineage, "private_record": True,
            "commitments": private["commitments"]}, opened


def _answered_disclosure(accepted: dict[str, Any]) -> bytes | None:
    disclosure = accepted.get("disclosure")
    if not isinstance(disclosure, dict):
        return None
    return (json.dumps(disclosure, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _register(client: StampClient, path: Path, sha256: str, metadata: dict[str, Any],
              key: str, hash_only: bool, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Register (or find again) the receipt; a replayed receipt that had failed is registered
    anew under a key naming it, so running again retries a failure instead of repeating it."""
    for _ in range(MAX_RESUBMITS + 1):
        if hash_only:
            accepted = client.register_digest(sha256, metadata, key, extra)
        else:
            accepted = client.register_upload(path, metadata, key, extra)
        if accepted.get("status") != "failed":
            return accepted
        key = f"{key[:IDEMPOTENCY_KEY_STEM]}:after:{accepted['id']}"
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


def read_local_record(path: Path) -> dict[str, Any]:
    """The generation record embedded in the file, read here for --hash-only, as `metadata`.

    The normalised fields go in as themselves; the embedded texts as they were (`embedded`,
    with their format in `embedded_source`), so the manifest's `raw` keeps the original.
    """
    record = read_generation_record(path)
    if not record.found:
        return {}
    out = {**record.fields, "embedded_source": record.source, "embedded": dict(record.raw)}
    if record.provenance:  # XMP, IPTC, and C2PA as c2pa-python validated it here
        out["embedded_provenance"] = dict(record.provenance)
    return out


def _valid_bundle(target: Path, sha256: str, roots: Sequence[x509.Certificate] | None) -> bool:
    try:
        with target.open("rb") as fh:
            data = fh.read(MAX_BUNDLE_BYTES + 1)
        return check_bundle(data, image_sha256=sha256, roots=roots).valid
    except (OSError, MalformedInputError):
        return False


def _write_atomically(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + f".{os.getpid()}.partial")
    partial.write_bytes(data)
    os.replace(partial, target)


def _sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
