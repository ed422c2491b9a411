"""The steps of stamping a file that the run's stages (service.client.pipeline) share: find
images, hash, skip a file whose bundle already verifies, read its record, the Idempotency-Key,
and write the bundle. `pipeline.stamp_file` runs one file through those stages.

Re-running is safe: a valid bundle is never redone, and registration carries an Idempotency-Key
derived from the digest and the records, so a run cut short finds its receipts again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from service.errors import MalformedInputError
from service.evidence.bundle_check import MAX_BUNDLE_BYTES, TokenMemo, check_bundle
from service.evidence.credentials.embed import LocalSigner
from service.evidence.disclosure import Opening, commit_generation
from service.evidence.generation import (
    merge_generation,
    normalize_client_record,
    normalize_request_metadata,
)
from service.evidence.records import read_generation_record

BUNDLE_SUFFIX = ".chronoseal.zip"
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".avif", ".tif", ".tiff",
                            ".bmp", ".heic", ".heif", ".jxl"})
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
    embed: LocalSigner | None = None  # --embed: also write a copy with Content Credentials
    history: bool = False  # bundles carry each earlier iteration (history/)
    private_record: bool = False  # commitments in the manifest; disclosure.json in the bundle
    lineage: dict[str, Any] = field(default_factory=dict)  # session, parents (usecases.lineage)
    exhibit: bool = True  # bundles carry certificate.html and .pdf (--no-exhibit: not)


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


def idempotency_key(hash_only: bool, sha256: str, metadata: dict[str, Any],
                    record: dict[str, Any] | None, lineage: dict[str, Any] | None = None) -> str:
    """The registration's Idempotency-Key: from what is sent, so a run cut short finds its
    receipts again and a changed record (or another session or parents) makes a new one."""
    sent: dict[str, Any] = {"mode": "digest" if hash_only else "upload", "sha256": sha256,
                            "metadata": metadata}
    if record:
        sent["record"] = record
    if lineage:
        sent["lineage"] = lineage
    # Sorted JSON, not JCS: equal input, equal text, and the C encoder is ten times faster on
    # a record of a few KiB (a run hashes hundreds of files a second).
    text = json.dumps(sent, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "chronoseal-stamp:" + hashlib.sha256(text.encode()).hexdigest()


def key_after_failure(key: str, failed_id: str) -> str:
    """A replayed receipt that had failed is registered anew under a key naming it, so running
    again retries a failure instead of repeating it."""
    return f"{key[:IDEMPOTENCY_KEY_STEM]}:after:{failed_id}"


def request_fields(options: Options, metadata: dict[str, Any], record: dict[str, Any] | None
                   ) -> tuple[dict[str, Any], dict[str, Opening] | None]:
    """The request's session, parents and private-record fields and, for a private --hash-only
    run, the openings of the commitments computed here over the record the server would have
    built (an upload's are computed by the server, which reads the file)."""
    if not options.private_record:
        return dict(options.lineage), None
    if not options.hash_only:
        return {**options.lineage, "private_record": True}, None
    generation = merge_generation(normalize_request_metadata(metadata),
                                  normalize_client_record(record) if record else None)
    private, opened = commit_generation(generation)
    return {**options.lineage, "private_record": True,
            "commitments": private["commitments"]}, opened


def answered_disclosure(accepted: dict[str, Any]) -> bytes | None:
    """The disclosure.json the server answered for a private record it committed, as bytes."""
    disclosure = accepted.get("disclosure")
    if not isinstance(disclosure, dict):
        return None
    return (json.dumps(disclosure, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


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
