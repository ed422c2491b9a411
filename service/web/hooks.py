"""POST /v1/hooks/{integration}: posting tools announce a publication (Standard Webhooks).

Checked in this order, and nothing is stored before every check passed: the client address
is within its rate limit (429), the integration exists (404), the three signature headers are
there and the timestamp is within 5 minutes (401, before any of the body is read), the body
is within the limit (413, with a Content-Length or chunked), the signature verifies with the
integration's secret (401), the integration is within its rate limit (429), a repeated
webhook-id answers the first message's receipt (202, `Idempotent-Replayed`), the body parses
(400), an image URL passes the SSRF guard (400 url-refused). Then the message is stored and
its job enqueued; the answer is 202 at once.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from service.errors import UploadTooLargeError
from service.logs import note
from service.usecases.inbound import accept
from service.web.context import current_services, rate_limiter
from service.web.limits import address_counter
from service.web.multipart import READ_CHUNK_BYTES
from service.web.render import links

bp = Blueprint("hooks", __name__, url_prefix="/v1/hooks")


def _read_body(limit: int) -> bytes:
    """The request body, refused (413) past `limit` bytes, with a Content-Length or chunked.

    The body is read until it ends or passes the limit: a chunked body over the limit is a
    413, not a body cut short at the limit (whose signature would then fail as a 401).
    """
    if (request.content_length or 0) > limit:
        raise UploadTooLargeError(limit)
    # One byte of slack: werkzeug raises on any read once its maximum is reached, also when
    # the body ends exactly there; a body that reaches limit + 1 bytes is the one refused.
    request.max_content_length = limit + 1
    chunks: list[bytes] = []
    size = 0
    try:
        while size <= limit and (chunk := request.stream.read(READ_CHUNK_BYTES)):
            chunks.append(chunk)
            size += len(chunk)
    except RequestEntityTooLarge:
        raise UploadTooLargeError(limit) from None
    if size > limit:
        raise UploadTooLargeError(limit)
    return b"".join(chunks)


@bp.post("/<integration_id>", endpoint="receive")
def receive(integration_id: str) -> tuple[Response, int]:
    """Accept a signed post.published message (202) and register its image in the queue."""
    services = current_services()
    rate_limiter().hit(address_counter(services.settings, "inbound"))  # before any lookup
    headers = {k.lower(): v for k, v in request.headers.items()}
    accepted = accept(services, integration_id, _read_body, headers, rate_limiter())
    note(receipt_id=accepted.receipt_id)
    response = jsonify({"id": accepted.receipt_id, "status": "pending",
                        "links": links(accepted.receipt_id), "warnings": []})
    if accepted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response, 202
