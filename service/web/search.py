"""POST /v1/search: earlier registrations of images that look like the uploaded one.

Scope: with an API key, the key's own receipts and receipts marked public; anonymously, public
receipts only, and then only id, times and digest. Matches are closest first (at most
MAX_MATCHES); `earliest` is the earliest registration of the same picture among all matches
(the priority claim) and `total` how many matched.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from service.evidence.manifest import format_timestamp
from service.usecases.search import Match, search
from service.web.auth import authenticate
from service.web.context import current_services
from service.web.intake import IMAGE_FIELD, read_form
from service.web.limits import limited
from service.web.problems import INVALID_FIELD, UNSUPPORTED_MEDIA_TYPE, ApiError
from service.web.render import links

bp = Blueprint("search", __name__, url_prefix="/v1/search")

def _time(value: datetime | None) -> str | None:
    return format_timestamp(value) if value is not None else None


def _match_json(match: Match) -> dict[str, Any]:
    receipt, near = match.receipt, match.closeness
    body: dict[str, Any] = {
        "id": receipt.id,
        "distance": near.distance,
        "similarity": near.similarity,
        "stamped_at": _time(receipt.stamped_at),
        "tsa_times": {tsa: _time(t) for tsa, t in sorted(receipt.tsa_times.items())},
        "created_at": _time(receipt.created_at),
        "image_sha256": receipt.image_sha256,
    }
    if match.own:
        body["public"] = receipt.public
        body["links"] = links(receipt.id)
    return body


@bp.post("", endpoint="search")
@limited("search")
def search_images() -> Response:
    """Hash the uploaded image (and its mirror image) and answer the registrations it matches."""
    key_id = authenticate().id if request.headers.get("Authorization") else None
    services = current_services()
    if request.mimetype != "multipart/form-data":
        raise ApiError(UNSUPPORTED_MEDIA_TYPE, f"Send multipart/form-data with an {IMAGE_FIELD!r}")
    form = read_form(request, services.settings.max_upload_bytes, frozenset())
    try:
        if form.spool is None:
            raise ApiError(INVALID_FIELD, f"the {IMAGE_FIELD!r} file part is required")
        result = search(services, form.spool, key_id)  # type: ignore[arg-type]
    finally:
        form.close()
    return jsonify({
        "matches": [_match_json(m) for m in result.matches],
        "earliest": _match_json(result.earliest) if result.earliest is not None else None,
        "total": result.total,
    })
