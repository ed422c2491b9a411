"""POST /v1/hooks/{integration}: posting tools announce a publication (Standard Webhooks).

Checked in this order, and nothing is stored before every check passed: the integration
exists (404), the body is within the limit (413), the signature and timestamp verify with the
integration's secret (401), a repeated webhook-id answers the first message's receipt (202,
`Idempotent-Replayed`), the body parses (400), an image URL passes the SSRF guard (400
url-refused). Then the message is stored and its job enqueued; the answer is 202 at once.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request

from service.errors import MalformedInputError, UploadTooLargeError
from service.storage.engine import write_transaction
from service.storage.ids import new_receipt_id
from service.storage.inbound import accept_inbound, find_inbound, integration_secret
from service.web.context import current_services
from service.web.problems import (
    BAD_REQUEST,
    INVALID_SIGNATURE,
    NOT_FOUND,
    PAYLOAD_TOO_LARGE,
    URL_REFUSED,
    ApiError,
)
from service.web.render import links
from service.webhooks.errors import SignatureError, URLRefusedError
from service.webhooks.inbound import check_image_url, max_body_bytes, parse
from service.webhooks.signing import verify
from service.webhooks.ssrf import Allowlist
from workers.outbox import INBOUND_LEASE_S
from workers.queueing import enqueue_inbound

log = logging.getLogger(__name__)
bp = Blueprint("hooks", __name__, url_prefix="/v1/hooks")


def _answer(receipt_id: str, replayed: bool) -> tuple[Response, int]:
    response = jsonify({"id": receipt_id, "status": "pending", "links": links(receipt_id),
                        "warnings": []})
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response, 202


@bp.post("/<integration_id>", endpoint="receive")
def receive(integration_id: str) -> tuple[Response, int]:
    """Accept a signed post.published message (202) and register its image in the queue."""
    services = current_services()
    with services.engine.connect() as conn:
        found = integration_secret(conn, integration_id)
    if found is None:
        raise ApiError(NOT_FOUND, "No integration with this id")
    integration, secret = found
    limit = max_body_bytes(services.settings.max_upload_bytes)
    request.max_content_length = limit
    if (request.content_length or 0) > limit:
        raise ApiError(PAYLOAD_TOO_LARGE, f"bodies are limited to {limit} bytes")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise ApiError(PAYLOAD_TOO_LARGE, f"bodies are limited to {limit} bytes")
    try:
        message_id = verify(secret, body, {k.lower(): v for k, v in request.headers.items()})
    except SignatureError as exc:
        log.info("inbound %s: signature refused: %s", integration_id, exc)
        raise ApiError(INVALID_SIGNATURE) from exc
    if len(message_id) > 255:
        raise ApiError(BAD_REQUEST, "webhook-id is too long")
    with services.engine.connect() as conn:
        earlier = find_inbound(conn, integration.id, message_id)
    if earlier is not None:
        return _answer(earlier.receipt_id, replayed=True)
    try:
        post = parse(body, services.settings.max_upload_bytes)
        if post.image_url is not None:
            check_image_url(post.image_url, Allowlist.parse(services.settings.webhook_allowlist))
    except MalformedInputError as exc:
        raise ApiError(BAD_REQUEST, str(exc)) from exc
    except UploadTooLargeError as exc:
        raise ApiError(PAYLOAD_TOO_LARGE, str(exc)) from exc
    except URLRefusedError as exc:
        raise ApiError(URL_REFUSED, str(exc)) from exc
    with write_transaction(services.engine) as conn:
        message, created = accept_inbound(conn, integration.id, message_id, body,
                                          new_receipt_id(), INBOUND_LEASE_S)
    if created:
        enqueue_inbound(services, message.id)  # if Redis is down, the outbox pump finds it
    return _answer(message.receipt_id, replayed=not created)
