"""The batch head: what a TSA signs for a batch, so the tree size is signed along with the root.

Proof format 2 (bundles from this version on): the token's imprint is SHA-256 over the exact
bytes of batch-head.json, an RFC 8785 (JCS) object

    {"batch_id": ..., "closed_at": "YYYY-MM-DDTHH:MM:SSZ", "hash": "sha256", "root": HEX,
     "tree_size": N, "type": "chronoseal.batch-head", "v": 1}

so a proof can no longer claim another tree size (leaf 1 of 3 also verifies in a tree of 4).
Proof format 1 (earlier bundles, no head) imprints the 32-byte root itself; both verify.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import rfc8785

from service.errors import MalformedInputError
from service.timestamping.merkle import MAX_TREE_SIZE

HEAD_TYPE = "chronoseal.batch-head"  # names the object, so a head is never read as a manifest
HEAD_VERSION = 1  # the head's own format
PROOF_FORMAT_ROOT = 1  # proof.json without "v": the token imprints the Merkle root
PROOF_FORMAT_HEAD = 2  # proof.json "v": 2: the token imprints SHA-256(batch-head.json)
MAX_HEAD_BYTES = 1024  # a head is ~200 bytes: seven short fields
MAX_BATCH_ID_CHARS = 64  # batch ids are ~30 characters
_HEX64 = re.compile(r"[0-9a-f]{64}")
_KEYS = frozenset({"batch_id", "closed_at", "hash", "root", "tree_size", "type", "v"})
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # whole seconds: the close time is stated, not measured


@dataclass(frozen=True)
class BatchHead:
    """A parsed head, with the exact bytes it was read from (the bytes are what is signed)."""

    jcs: bytes
    root: bytes
    tree_size: int
    batch_id: str
    closed_at: datetime

    @property
    def imprint(self) -> bytes:
        """The 32 bytes a TSA timestamps for this batch."""
        return head_imprint(self.jcs)


def build_batch_head(root: bytes, tree_size: int, batch_id: str, closed_at: datetime) -> bytes:
    """The RFC 8785 bytes of the head; the same inputs always give the same bytes."""
    if len(root) != hashlib.sha256().digest_size or not 1 <= tree_size <= MAX_TREE_SIZE:
        raise MalformedInputError("a batch head needs a 32-byte root and a valid tree size")
    if not 0 < len(batch_id) <= MAX_BATCH_ID_CHARS:
        raise MalformedInputError(f"a batch id is 1..{MAX_BATCH_ID_CHARS} characters")
    head: dict[str, str | int] = {
        "type": HEAD_TYPE, "v": HEAD_VERSION, "hash": "sha256", "root": root.hex(),
        "tree_size": tree_size, "batch_id": batch_id,
        "closed_at": closed_at.astimezone(UTC).strftime(_TIME_FORMAT),
    }
    return rfc8785.dumps(head)


def head_imprint(jcs: bytes) -> bytes:
    """SHA-256 over the exact head bytes: the messageImprint of proof format 2's tokens."""
    return hashlib.sha256(jcs).digest()


def parse_batch_head(data: bytes) -> BatchHead:
    """Read batch-head.json; MalformedInputError unless it is a canonical v1 head."""
    if len(data) > MAX_HEAD_BYTES:
        raise MalformedInputError(f"a batch head is at most {MAX_HEAD_BYTES} bytes")
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise MalformedInputError("batch-head.json is not JSON") from exc
    if not isinstance(obj, dict) or set(obj) != _KEYS:
        raise MalformedInputError(f"batch-head.json must hold exactly {', '.join(sorted(_KEYS))}")
    root, size, batch_id = obj["root"], obj["tree_size"], obj["batch_id"]
    if (obj["type"] != HEAD_TYPE or obj["v"] != HEAD_VERSION or obj["hash"] != "sha256"
            or not isinstance(root, str) or not _HEX64.fullmatch(root)
            or type(size) is not int or not 1 <= size <= MAX_TREE_SIZE
            or not isinstance(batch_id, str) or not 0 < len(batch_id) <= MAX_BATCH_ID_CHARS
            or not isinstance(obj["closed_at"], str)):
        raise MalformedInputError("batch-head.json is not a v1 batch head")
    try:
        closed_at = datetime.strptime(obj["closed_at"], _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise MalformedInputError("batch-head.json closed_at is not YYYY-MM-DDTHH:MM:SSZ") from exc
    if not hmac.compare_digest(rfc8785.dumps(obj), data):
        raise MalformedInputError("batch-head.json is not in canonical (RFC 8785) form")
    return BatchHead(jcs=data, root=bytes.fromhex(root), tree_size=size, batch_id=batch_id,
                     closed_at=closed_at)
