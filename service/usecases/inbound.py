"""Posting tools announce a publication (`post.published`): accept it, then register its image.

Accepting happens in the request and checks, in this order, with nothing stored before every
check passed: the integration exists, the signature headers are present and the timestamp
is within tolerance (before the body is read), the body is within the limit, the signature
verifies with the integration's secret, a repeated webhook-id answers the first
message's receipt, the body parses, an image URL passes the SSRF guard. Registering happens in
a job and goes through the register use case, like an upload: the image is streamed, probed
and its embedded generation record read, under the receipt id reserved at acceptance, in the
transaction that marks the message done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from service.errors import (
    ChronosealError,
    InvalidInputError,
    MalformedInputError,
    MetadataError,
    NotFoundError,
)
from service.storage.engine import write_transaction
from service.storage.ids import new_receipt_id
from service.storage.inbound import (
    accept_inbound,
    find_inbound,
    finish_inbound,
    get_inbound,
    integration_secret,
    retry_inbound,
)
from service.usecases.lineage import read_lineage
from service.usecases.queueing import enqueue_inbound
from service.usecases.rate_limits import Counter, RateLimiter
from service.usecases.register import Registration, register, spool_image
from service.usecases.signals import Signals
from service.webhooks.errors import (
    ResolutionError,
    SignatureError,
    TransportError,
    URLRefusedError,
)
from service.webhooks.inbound import (
    MAX_MESSAGE_ID_CHARS,
    InboundOptions,
    check_image_url,
    image_stream,
    max_body_bytes,
    parse,
)
from service.webhooks.signing import check_headers, verify
from service.webhooks.ssrf import Allowlist, check_registered_url
from service.wiring import Services

log = logging.getLogger(__name__)

INBOUND_LEASE_S = 300.0  # an image download and a hash; a lost job is retried after this
KEY_REVOKED = "the integration's API key was revoked"
NO_INTEGRATION = "No integration with this id"


@dataclass(frozen=True)
class Accepted:
    """The receipt id reserved for a message, and whether the message was a repeat."""

    receipt_id: str
    replayed: bool


def accept(services: Services, integration_id: str, read_body: Callable[[int], bytes],
           headers: Mapping[str, str], limiter: RateLimiter | None = None) -> Accepted:
    """Check and store a signed message, then enqueue its registration.

    `read_body(limit)` returns the body, raising UploadTooLargeError past `limit` bytes; it is
    called only once the integration is known and the signature headers are well-formed and
    current. Headers are keyed in lower case. With a `limiter`, a message whose signature
    verified counts against its integration's rate limit (RateLimitedError past it).
    """
    with services.engine.connect() as conn:
        found = integration_secret(conn, integration_id)
    if found is None:
        raise NotFoundError(NO_INTEGRATION)
    integration, sealed = found
    secret = services.secrets.open(sealed)
    settings = services.settings
    try:
        check_headers(headers)  # before the body is read: unsigned or stale costs no read
        body = read_body(max_body_bytes(settings.max_upload_bytes))
        message_id = verify(secret, body, headers)
    except SignatureError as exc:
        log.info("inbound %s: signature refused: %s", integration_id, exc,
                 extra={"integration_id": integration_id})
        raise
    rate = settings.rate_limit_inbound_per_integration
    if limiter is not None and rate is not None:
        limiter.hit([Counter("inbound", "integration", integration.id, rate)])
    if len(message_id) > MAX_MESSAGE_ID_CHARS:
        raise MalformedInputError("webhook-id is too long")
    with services.engine.connect() as conn:
        earlier = find_inbound(conn, integration.id, message_id)
    if earlier is not None:
        return Accepted(earlier.receipt_id, replayed=True)
    post = parse(body, settings.max_upload_bytes)
    allowlist = Allowlist.parse(settings.webhook_allowlist)
    if post.image_url is not None:
        check_image_url(post.image_url, allowlist, services.resolver)
    if post.callback_url is not None:  # refused now (400 url-refused), not first at delivery
        check_registered_url(post.callback_url, allowlist, resolver=services.resolver)
    with write_transaction(services.engine) as conn:
        message, created = accept_inbound(conn, integration.id, message_id, body,
                                          new_receipt_id(), INBOUND_LEASE_S)
    if created:
        enqueue_inbound(services, message.id)  # if Redis is down, the outbox pump finds it
    return Accepted(message.receipt_id, replayed=not created)


def _fail(services: Services, inbound_id: str, error: str) -> None:
    with write_transaction(services.engine) as conn:
        finish_inbound(conn, inbound_id, "failed", error)


def register_inbound(services: Services, inbound_id: str, signals: Signals,
                     options: InboundOptions | None = None) -> str | None:
    """Create the receipt of an accepted message; its id (None when the message failed).

    Idempotent: a message already done returns its receipt, one that failed stays failed.
    A download that fails in transit is retried on the options' schedule, then fails.
    """
    started = time.perf_counter()
    options = options or InboundOptions.from_settings(services.settings, services.resolver)
    with services.engine.connect() as conn:
        message = get_inbound(conn, inbound_id)
        found = integration_secret(conn, message.integration_id) if message else None
    if message is None:
        return None
    if message.status != "accepted":
        return message.receipt_id if message.status == "done" else None
    if found is None:  # its API key was revoked after the message was accepted
        _fail(services, inbound_id, KEY_REVOKED)
        return None
    integration = found[0]
    try:
        post = parse(message.body or b"", options.max_image_bytes)
        with image_stream(post, options) as stream:
            image = spool_image(stream, options.max_image_bytes)
    except (TransportError, ResolutionError) as exc:  # the image host may be back later
        attempt = message.attempts + 1
        if attempt < len(options.schedule_s):
            log.info("inbound %s: download attempt %d failed: %s", inbound_id, attempt, exc,
                     extra={"inbound_id": inbound_id})
            due = datetime.now(UTC) + timedelta(seconds=options.schedule_s[attempt])
            with write_transaction(services.engine) as conn:
                retry_inbound(conn, inbound_id, str(exc), due)
            return None
        log.warning("inbound %s failed after %d attempts: %s", inbound_id, attempt, exc,
                    extra={"inbound_id": inbound_id})
        _fail(services, inbound_id, str(exc))
        return None
    except ChronosealError as exc:  # malformed, too large, refused URL: final
        log.warning("inbound %s failed: %s", inbound_id, exc, extra={"inbound_id": inbound_id})
        _fail(services, inbound_id, str(exc))
        return None
    reg = Registration(
        owner=integration.api_key_id, image=image, metadata=post.generation,
        external_id=post.external_id, callback_url=post.callback_url,
        publication={**post.publication, "reported_by": integration.id},
        receipt_id=message.receipt_id,
    )
    try:
        reg.lineage = read_lineage(post.lineage)
        receipt = register(services, reg, signals,
                           also=lambda conn: finish_inbound(conn, inbound_id, "done")).receipt
    except (MalformedInputError, InvalidInputError, MetadataError, URLRefusedError) as exc:
        log.warning("inbound %s failed: %s", inbound_id, exc, extra={"inbound_id": inbound_id})
        _fail(services, inbound_id, str(exc))
        return None
    finally:
        image.close()
    log.info("inbound %s registered as %s", inbound_id, receipt.id, extra={
        "inbound_id": inbound_id, "receipt_id": receipt.id, "replayed": receipt.replayed,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1)})
    return receipt.id
