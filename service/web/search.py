"""POST /v1/search: earlier registrations of images that look like the uploaded one.

Scope: with an API key, the key's own receipts and receipts marked public; anonymously, public
receipts only, and then only id, times and digest. Matches are oldest first: the first one is
the earliest registration Chronoseal holds of that picture.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from service.evidence.manifest import format_timestamp
from service.evidence.perceptual import query_hashes
from service.evidence.similarity import MAX_PHASH_DISTANCE, Closeness, closest_matches
from service.storage.perceptual import MatchedReceipt, find_candidates, matched_receipts
from service.web.auth import authenticate
from service.web.context import current_services
from service.web.intake import IMAGE_FIELD
from service.web.multipart import FieldTooLargeError, FormError, parse_form
from service.web.problems import INVALID_FIELD, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, ApiError
from service.web.render import links

bp = Blueprint("search", __name__, url_prefix="/v1/search")

MAX_MATCHES = 50  # a picture registered more often than this is not a dispute about one original


def _time(value: datetime | None) -> str | None:
    return format_timestamp(value) if value is not None else None


def _match_json(receipt: MatchedReceipt, near: Closeness, full: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": receipt.id,
        "distance": near.distance,
        "similarity": near.similarity,
        "stamped_at": _time(receipt.stamped_at),
        "tsa_times": {tsa: _time(t) for tsa, t in sorted(receipt.tsa_times.items())},
        "created_at": _time(receipt.created_at),
        "image_sha256": receipt.image_sha256,
    }
    if full:
        body["public"] = receipt.public
        body["links"] = links(receipt.id)
    return body


@bp.post("")
def search() -> Response:
    """Hash the uploaded image (and its mirror image) and answer the registrations it matches."""
    key_id = authenticate().id if request.headers.get("Authorization") else None
    services = current_services()
    if request.mimetype != "multipart/form-data":
        raise ApiError(UNSUPPORTED_MEDIA_TYPE, f"Send multipart/form-data with an {IMAGE_FIELD!r}")
    boundary = request.mimetype_params.get("boundary", "")
    if not boundary:
        raise ApiError(INVALID_FIELD, "multipart/form-data without a boundary")
    try:
        form = parse_form(request.stream, boundary.encode("latin-1"), file_field=IMAGE_FIELD,
                          text_fields=frozenset(), limit=services.settings.max_upload_bytes)
    except FieldTooLargeError as exc:
        raise ApiError(PAYLOAD_TOO_LARGE, str(exc)) from exc
    except FormError as exc:
        raise ApiError(INVALID_FIELD, str(exc)) from exc
    try:
        if form.spool is None:
            raise ApiError(INVALID_FIELD, f"the {IMAGE_FIELD!r} file part is required")
        query = query_hashes(form.spool)  # type: ignore[arg-type]
    finally:
        form.close()
    if not query:
        return jsonify({"matches": []})
    with services.engine.connect() as conn:
        found = find_candidates(conn, [h.phash for h in query], MAX_PHASH_DISTANCE)
        near = closest_matches(query, ((v.receipt_id, v.phash, v.dhash256) for v in found.views))
        visible = matched_receipts(conn, list(near), key_id)
    matches = [_match_json(r, near[r.id], key_id is not None and r.api_key_id == key_id)
               for r in visible[:MAX_MATCHES]]
    return jsonify({"matches": matches})
