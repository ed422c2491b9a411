"""/v1/stamps/batch, /wait and /bundles: register many digests in one request, wait for many
receipts in one long poll, fetch many bundles at once: a client's run costs a few requests
instead of thousands.

Batch items are idempotent by their own `idempotency_key` (as the single route's header): a
repeated item returns its first receipt (`replayed`), one with another body is its own 409.
"""

from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from service.errors import ChronosealError
from service.i18n import negotiate
from service.usecases import receipts
from service.usecases.register import Registered, Registration
from service.usecases.register_batch import MAX_BATCH_ITEMS, register_batch
from service.web.auth import require_key
from service.web.context import current_services, signals
from service.web.intake import check_idempotency_key, read_json_body, registration_from_json
from service.web.limits import charge, limited
from service.web.problems import INVALID_FIELD, UNSUPPORTED_MEDIA_TYPE, ApiError, problem_object
from service.web.render import summary_json
from service.web.stamps import accepted_json

bp = Blueprint("bulk", __name__, url_prefix="/v1/stamps")

# 1,000 items of ~16 KiB (a digest, a record read from the file and the caller's); a run with
# larger records sends smaller batches. Parsed whole: it bounds the request's memory too.
MAX_BATCH_BODY_BYTES = 16 * 1024 * 1024
MAX_IDS_BODY_BYTES = 64 * 1024  # 1,000 receipt ids of ~30 characters (wait, bundles)
ITEM_KEY = "idempotency_key"
DEFAULT_WAIT_S = 10.0
MAX_ID_CHARS = 64  # receipt ids are ~30 characters (rcp_ + a time-sortable id)


def _json_body(limit: int) -> dict[str, Any]:
    if request.mimetype != "application/json":
        raise ApiError(UNSUPPORTED_MEDIA_TYPE, "Send application/json")
    body = read_json_body(request, limit)
    if not isinstance(body, dict):
        raise ApiError(INVALID_FIELD, "the body must be a JSON object")
    return body


def _item(data: Any, owner: str) -> Registration | ChronosealError:
    """One item parsed by the single route's function; its problem instead when it is bad."""
    try:
        reg = registration_from_json(data, frozenset({ITEM_KEY}))
        if ITEM_KEY in data:
            reg.idempotency_key = check_idempotency_key(data[ITEM_KEY])
    except ChronosealError as exc:
        return exc
    reg.owner = owner
    return reg


@bp.post("/batch", provide_automatic_options=False)
@require_key
@limited("register")
def create_batch() -> Response:
    """Register up to MAX_BATCH_ITEMS digests in one transaction; a result per item (200)."""
    body = _json_body(MAX_BATCH_BODY_BYTES)
    unknown = sorted(set(body) - {"items"})
    items = body.get("items")
    if (unknown or not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH_ITEMS
            or not all(isinstance(i, dict) for i in items)):
        raise ApiError(INVALID_FIELD, f"the body is {{\"items\": [...]}} with 1..{MAX_BATCH_ITEMS}"
                       " digest registrations, each a JSON object")
    if len(items) > 1:
        charge("register", len(items) - 1)  # each item counts as a registration
    results = register_batch(current_services(), [_item(i, g.api_key.id) for i in items],
                             signals())
    out: list[dict[str, Any]] = []
    for result in results:
        if isinstance(result, Registered):
            receipt = accepted_json(result)
            receipt["replayed"] = result.receipt.replayed
            out.append({"status": 202, "receipt": receipt})
        else:
            problem = problem_object(result)
            out.append({"status": problem["status"], "problem": problem})
    accepted = sum(1 for o in out if o["status"] == 202)
    return jsonify({"items": out, "accepted": accepted, "refused": len(out) - accepted})


def _ids(body: dict[str, Any], allowed: frozenset[str]) -> list[str]:
    ids = body.get("ids")
    if set(body) - allowed or not isinstance(ids, list) or not all(
            isinstance(i, str) and 0 < len(i) <= MAX_ID_CHARS for i in ids):
        raise ApiError(INVALID_FIELD, f"the body is {{\"ids\": [receipt ids]}} (members: "
                       f"{', '.join(sorted(allowed))})")
    return ids


@bp.post("/bundles", provide_automatic_options=False)
@require_key
def get_bundles() -> Response:
    """Many evidence bundles in one answer (base64 by id), each byte for byte the one GET
    /v1/stamps/{id}/bundle gives (its exhibit in the language of `?lang=` or Accept-Language);
    `"exhibit": false` leaves certificate.html and .pdf out (printing the PDF is most of a
    bundle's cost). `missing` lists ids with none (not stamped or unknown)."""
    body = _json_body(MAX_IDS_BODY_BYTES)
    ids, exhibit = _ids(body, frozenset({"ids", "exhibit"})), body.get("exhibit", True)
    if not isinstance(exhibit, bool):
        raise ApiError(INVALID_FIELD, "exhibit must be true or false")
    language = negotiate(request.headers.get("Accept-Language"), request.args.get("lang"))
    bundles, missing = receipts.receipt_bundles(current_services(), g.api_key.id, ids,
                                                language, exhibit=exhibit)
    return jsonify({"bundles": {i: base64.b64encode(b).decode("ascii")
                                for i, b in bundles.items()}, "missing": missing})


@bp.post("/wait", provide_automatic_options=False)
@require_key
def wait_receipts() -> Response:
    """Long poll: answer once any of `ids` is stamped or failed, or after `wait_s` seconds."""
    body = _json_body(MAX_IDS_BODY_BYTES)
    ids, wait_s = _ids(body, frozenset({"ids", "wait_s"})), body.get("wait_s", DEFAULT_WAIT_S)
    if isinstance(wait_s, bool) or not isinstance(wait_s, int | float):
        raise ApiError(INVALID_FIELD, "wait_s must be a number of seconds")
    settled = receipts.wait_settled(current_services(), g.api_key.id, ids, float(wait_s))
    return jsonify({"items": [summary_json(r) for r in settled.items],
                    "pending": settled.pending, "unknown": settled.unknown})


@bp.route("/batch", methods=["OPTIONS"], provide_automatic_options=False)
@bp.route("/wait", methods=["OPTIONS"], provide_automatic_options=False)
@bp.route("/bundles", methods=["OPTIONS"], provide_automatic_options=False)
def bulk_options() -> Response:
    """Allow: what these paths serve (GET /v1/stamps/{receipt_id} matches them too, and
    Flask's own answer would list its GET)."""
    return Response(status=200, headers={"Allow": "OPTIONS, POST"})
