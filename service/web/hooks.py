"""POST /v1/hooks/{integration}: posting tools announce a publication (Standard Webhooks).

Checked in this order, and nothing is stored before every check passed: the integration
exists (404), the body is within the limit (413), the signature and timestamp verify with the
integration's secret (401), a repeated webhook-id answers the first message's receipt (202,
`Idempotent-Replayed`), the body parses (400), an image URL passes the SSRF guard (400
url-refused). Then the message is stored and its job enqueued; the answer is 202 at once.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from service.errors import UploadTooLargeError
from service.logs import note
from service.usecases.inbound import accept
from service.web.context import current_services
from service.web.render import links

bp = Blueprint("hooks", __name__, url_prefix="/v1/hooks")


def _read_body(limit: int) -> bytes:
    """The request body, refused (413) past `limit` bytes whatever Content-Length says."""
    request.max_content_length = limit
    if (request.content_length or 0) > limit:
        raise UploadTooLargeError(limit)
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise UploadTooLargeError(limit)
    return body


@bp.post("/<integration_id>", endpoint="receive")
def receive(integration_id: str) -> tuple[Response, int]:
    """Accept a signed post.published message (202) and register its image in the queue."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    accepted = accept(current_services(), integration_id, _read_body, headers)
    note(receipt_id=accepted.receipt_id)
    response = jsonify({"id": accepted.receipt_id, "status": "pending",
                        "links": links(accepted.receipt_id), "warnings": []})
    if accepted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response, 202
