"""Inbound `post.published` messages from posting tools: parse them, then register the image.

Parsing happens in the request (a malformed or refused message is answered at once and nothing
is stored); registering happens in a job: decode or download the image, hash it, build the
manifest with the publication as the tool reported it, and insert the receipt under the id
reserved when the message was accepted, in the transaction that marks the message done.

Body (Standard Webhooks payload structure):
    {"type": "post.published", "timestamp": "...",
     "data": {"image": {"base64": "..."} | {"url": "https://..."},
              "generation": {...}, "publication": {"platform", "post_url", "published_at"},
              "external_id": "...", "callback_url": "https://..."}}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from service.errors import ChronosealError, MalformedInputError, UploadTooLargeError
from service.evidence.generation import normalize_request_metadata
from service.evidence.hashing import HEAD_SIZE, sniff_media_type
from service.evidence.manifest import build_manifest
from service.storage.engine import write_transaction
from service.storage.inbound import (
    finish_inbound,
    get_inbound,
    integration_secret,
    retry_inbound,
)
from service.storage.receipts import get_receipt, insert_receipt
from service.storage.uploads import DatabaseUploads, UploadStore, undone_unless_committed
from service.webhooks.errors import ResolutionError, TransportError, WebhookError
from service.webhooks.ssrf import Allowlist, Resolver, check_url, system_resolver
from service.webhooks.transport import Timeouts, fetch

log = logging.getLogger(__name__)

EVENT = "post.published"
IMAGE_SCHEMES = ("https",)  # the contract: images are fetched over https only
MAX_TEXT_CHARS = 2048  # platform, post URL, published_at, callback URL: labels and URLs
PUBLICATION_FIELDS = ("platform", "post_url", "published_at")
KEY_REVOKED = "the integration's API key was revoked"


def max_body_bytes(max_image_bytes: int) -> int:
    """The largest inbound body: the image in base64 (4/3) plus a generation record."""
    return max_image_bytes * 4 // 3 + 4 + 1024 * 1024


@dataclass(frozen=True)
class PostPublished:
    """A parsed message: exactly one of image_b64 / image_url is set."""

    image_b64: str | None
    image_url: str | None
    generation: dict[str, Any]
    publication: dict[str, str]
    external_id: str | None
    callback_url: str | None


def _text(data: dict[str, Any], name: str, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT_CHARS:
        raise MalformedInputError(f"{name} must be a string of 1..{MAX_TEXT_CHARS} characters")
    return value


def parse(body: bytes, max_image_bytes: int) -> PostPublished:
    """Parse and bound a post.published body; MalformedInputError says what is wrong."""
    try:
        message = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise MalformedInputError("the body is not valid JSON") from exc
    if not isinstance(message, dict) or message.get("type") != EVENT:
        raise MalformedInputError(f"type must be {EVENT!r}")
    data = message.get("data")
    if not isinstance(data, dict):
        raise MalformedInputError("data must be an object")
    image = data.get("image")
    if not isinstance(image, dict) or len(image) != 1 or not set(image) <= {"base64", "url"}:
        raise MalformedInputError("image must be {\"base64\": ...} or {\"url\": ...}")
    image_b64 = image.get("base64")
    if image_b64 is not None:
        if not isinstance(image_b64, str):
            raise MalformedInputError("image.base64 must be a string")
        if len(image_b64) > max_image_bytes * 4 // 3 + 4:
            raise UploadTooLargeError(max_image_bytes)
        try:
            base64.b64decode(image_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedInputError("image.base64 is not valid base64") from exc
    image_url = _text(image, "url", required=False)
    generation = data.get("generation", {})
    if not isinstance(generation, dict):
        raise MalformedInputError("generation must be an object")
    publication = data.get("publication")
    if not isinstance(publication, dict):
        raise MalformedInputError("publication must be an object")
    pub = {name: str(_text(publication, name)) for name in PUBLICATION_FIELDS}
    return PostPublished(image_b64, image_url, generation, pub,
                         _text(data, "external_id", required=False),
                         _text(data, "callback_url", required=False))


def check_image_url(url: str, allowlist: Allowlist, resolver: Resolver = system_resolver) -> None:
    """Refuse (URLRefusedError) an image URL that is not https or points inside."""
    check_url(url, allowlist, resolver=resolver, schemes=IMAGE_SCHEMES)


@dataclass(frozen=True)
class InboundOptions:
    """Settings a registration needs; downloads that fail in transit are retried on
    `schedule_s` (the webhook retry schedule), then the message fails."""

    allowlist: Allowlist
    max_image_bytes: int
    timeouts: Timeouts
    schedule_s: tuple[float, ...] = (0.0,)
    resolver: Resolver = system_resolver
    uploads: UploadStore = field(default_factory=DatabaseUploads)  # where the image waits


def _image_bytes(post: PostPublished, options: InboundOptions) -> bytes:
    if post.image_b64 is not None:
        data = base64.b64decode(post.image_b64, validate=True)
        if len(data) > options.max_image_bytes:
            raise UploadTooLargeError(options.max_image_bytes)
        return data
    assert post.image_url is not None
    target = check_url(post.image_url, options.allowlist, resolver=options.resolver,
                       schemes=IMAGE_SCHEMES)
    return fetch(target, options.max_image_bytes, options.timeouts)


def register(engine: Engine, inbound_id: str, options: InboundOptions) -> str | None:
    """Create the receipt of an accepted message; returns its id (None when the message failed).

    Idempotent: a message already done returns its receipt, one that failed stays failed.
    """
    with engine.connect() as conn:
        message = get_inbound(conn, inbound_id)
        found = integration_secret(conn, message.integration_id) if message else None
    if message is None:
        return None
    if message.status != "accepted":
        return message.receipt_id if message.status == "done" else None
    if found is None:  # its API key was revoked after the message was accepted
        with write_transaction(engine) as conn:
            finish_inbound(conn, inbound_id, "failed", KEY_REVOKED)
        return None
    integration = found[0]
    try:
        post = parse(message.body or b"", options.max_image_bytes)
        image = _image_bytes(post, options)
        manifest = build_manifest(
            image_sha256=hashlib.sha256(image).hexdigest(), size=len(image),
            media_type=sniff_media_type(image[:HEAD_SIZE]),
            generation=normalize_request_metadata(post.generation),
            submitted_at=datetime.now(UTC), external_id=post.external_id,
            publication={**post.publication, "reported_by": integration.id},
        )
    except (TransportError, ResolutionError) as exc:  # the image host may be back later
        attempt = message.attempts + 1
        if attempt < len(options.schedule_s):
            log.info("inbound %s: download attempt %d failed: %s", inbound_id, attempt, exc)
            due = datetime.now(UTC) + timedelta(seconds=options.schedule_s[attempt])
            with write_transaction(engine) as conn:
                retry_inbound(conn, inbound_id, str(exc), due)
            return None
        log.warning("inbound %s failed after %d attempts: %s", inbound_id, attempt, exc)
        with write_transaction(engine) as conn:
            finish_inbound(conn, inbound_id, "failed", str(exc))
        return None
    except (ChronosealError, WebhookError) as exc:
        log.warning("inbound %s failed: %s", inbound_id, exc)
        with write_transaction(engine) as conn:
            finish_inbound(conn, inbound_id, "failed", str(exc))
        return None
    sha256 = manifest.obj["image"]["sha256"]
    with undone_unless_committed(options.uploads) as kept, write_transaction(engine) as conn:
        if get_receipt(conn, message.receipt_id, None) is None:
            insert_receipt(
                conn, receipt_id=message.receipt_id, api_key_id=integration.api_key_id,
                image_sha256=sha256, image_size=len(image), hash_pending=True,
                media_type=manifest.obj["image"].get("media_type"),
                manifest_jcs=manifest.jcs, manifest_digest=manifest.digest.hex(),
                external_id=post.external_id, callback_url=post.callback_url,
            )
            if options.uploads.keep(conn, sha256, image):  # for perceptual hashing
                kept.append(sha256)
        finish_inbound(conn, inbound_id, "done")
    return message.receipt_id
