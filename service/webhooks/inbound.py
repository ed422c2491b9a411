"""Inbound `post.published` messages from posting tools: parse them, then register the image.

Parsing happens in the request (a malformed or refused message is answered at once and nothing
is stored); registering happens in a job (service.usecases.inbound): the image is streamed from
`image_stream` into the register use case, like an upload, with the publication as the tool
reported it, under the receipt id reserved when the message was accepted.

Body (Standard Webhooks payload structure):
    {"type": "post.published", "timestamp": "...",
     "data": {"image": {"base64": "..."} | {"url": "https://..."},
              "generation": {...}, "publication": {"platform", "post_url", "published_at"},
              "external_id": "...", "callback_url": "https://..."}}
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from service.errors import MalformedInputError, UploadTooLargeError
from service.evidence.hashing import Readable
from service.settings import Settings
from service.webhooks.ssrf import Allowlist, Resolver, check_url, system_resolver
from service.webhooks.transport import Timeouts, download

EVENT = "post.published"
IMAGE_SCHEMES = ("https",)  # the contract: images are fetched over https only
MAX_TEXT_CHARS = 2048  # platform, post URL, published_at, callback URL: labels and URLs
PUBLICATION_FIELDS = ("platform", "post_url", "published_at")
MAX_MESSAGE_ID_CHARS = 255  # the webhook-id column; Standard Webhooks ids are ~30 characters


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
    # session, parents, private_record as sent: checked by the one lineage parser
    # (usecases.lineage.read_lineage), like every other registration path's.
    lineage: dict[str, Any] = field(default_factory=dict)


LINEAGE_KEYS = ("session", "parents", "private_record", "store_disclosure")


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
                         _text(data, "callback_url", required=False),
                         {k: data[k] for k in LINEAGE_KEYS if k in data})


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

    @classmethod
    def from_settings(cls, settings: Settings, resolver: Resolver = system_resolver
                      ) -> InboundOptions:
        return cls(Allowlist.parse(settings.webhook_allowlist), settings.max_upload_bytes,
                   Timeouts(settings.webhook_connect_timeout_s, settings.webhook_timeout_s),
                   settings.webhook_retry_schedule_s, resolver)


class _Base64Stream:
    """Decodes base64 text a slice at a time: the decoded image never sits whole in memory."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._at = 0

    def read(self, n: int = 1 << 16, /) -> bytes:
        chars = max(4, (n + 2) // 3 * 4)  # whole 4-character groups: each decodes alone
        piece = self._text[self._at:self._at + chars]
        self._at += len(piece)
        return base64.b64decode(piece, validate=True)


@contextmanager
def image_stream(post: PostPublished, options: InboundOptions) -> Iterator[Readable]:
    """The message's image as a stream: decoded from base64, or downloaded over https after
    the SSRF guard checked the URL again (its host may resolve elsewhere now)."""
    if post.image_b64 is not None:
        yield _Base64Stream(post.image_b64)
        return
    assert post.image_url is not None
    target = check_url(post.image_url, options.allowlist, resolver=options.resolver,
                       schemes=IMAGE_SCHEMES)
    with download(target, options.timeouts) as body:
        yield body
