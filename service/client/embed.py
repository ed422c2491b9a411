"""`chronoseal stamp --embed`: beside a stamped image, a copy carrying its registration as a
C2PA manifest, signed here (for hash-only receipts the server never had the image), and
registered by digest as a child of the original.

The manifest is the one GET /v1/stamps/{id}/content-credentials makes (same definition, same
signing certificate: the server's, read from its data dir on this machine; same claim TSA),
built from the receipt as the API shows it and the bundle's batch-head.json.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

from service.client.api import StampClient
from service.client.stamping import read_local_record
from service.evidence.credentials.definition import (
    RegistrationFacts,
    TokenTime,
    child_metadata,
    manifest_definition,
)
from service.evidence.credentials.embed import LocalSigner, embed
from service.evidence.hashing import sniff_media_type
from service.webhooks.events import receipt_links

COPY_INFIX = ".c2pa"  # NAME.c2pa.EXT: the copy keeps its format's suffix, viewers open it
HEAD_MEMBER = "batch-head.json"


def copy_path(image: Path, out_dir: Path | None) -> Path:
    return (out_dir or image.parent) / (image.stem + COPY_INFIX + image.suffix)


def embed_copy(client: StampClient, image: Path, receipt: dict[str, Any], bundle: bytes,
               signer: LocalSigner, out_dir: Path | None) -> tuple[Path, str]:
    """Write the signed copy and register it; (its path, its receipt id)."""
    data = image.read_bytes()
    media_type = sniff_media_type(data[:16])
    head = _batch_head(bundle)
    facts = RegistrationFacts.of(
        str(receipt["id"]), receipt["manifest"], str(receipt["manifest_digest"]),
        receipt["proof"],
        [TokenTime(t["tsa"], t["gen_time"], t["serial"]) for t in receipt["tokens"]],
        client.server.rstrip("/") + receipt_links(str(receipt["id"]))["bundle"], head)
    copy = embed(data, media_type or "", manifest_definition(facts), signer.material,
                 signer.ta_url)
    target = copy_path(image, out_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + f".{os.getpid()}.partial")
    partial.write_bytes(copy)
    os.replace(partial, target)
    sha256 = hashlib.sha256(copy).hexdigest()
    # A child of the original (its manifest's parents), as the server registers its copies
    # (usecases.credentials.child_registration); the copy's own record, C2PA included (its
    # copy_of link), read here and sent as `record`, as for any hash-only registration.
    metadata = child_metadata(receipt["manifest"].get("generation") or {})
    record = read_local_record(target).record
    child = client.register_digest(sha256, metadata, f"chronoseal-embed:{sha256}",
                                   {"parents": [str(receipt["id"])]}, record)
    return target, str(child["id"])


def _batch_head(bundle: bytes) -> dict[str, Any] | None:
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        if HEAD_MEMBER not in archive.namelist():
            return None  # a bundle from before batch heads
        head: dict[str, Any] = json.loads(archive.read(HEAD_MEMBER))
        return head
