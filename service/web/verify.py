"""POST /v1/verify: check an image (or its SHA-256) against an evidence bundle or a receipt.

No API key is needed. The service trusts only the roots of the TSAs it is configured with,
never roots a bundle brings along. A receipt id alone reveals nothing private:

- with the owner's key (Authorization: Bearer), the full verdict, as for an uploaded bundle;
- without it, only a public receipt answers, and only with valid/invalid, which checks
  failed, and each TSA's name and time (no manifest, record or digests);
- a private receipt without its owner's key is a 404, exactly like an unknown id.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.datastructures import FileStorage

from service.evidence.bundle_check import MAX_BUNDLE_BYTES, BundleVerdict
from service.evidence.hashing import hash_stream
from service.usecases.verify import verify_bundle, verify_receipt
from service.web.auth import authenticate
from service.web.context import current_services
from service.web.intake import FORM_OVERHEAD_BYTES, read_json_body
from service.web.limits import limited
from service.web.problems import (
    INVALID_DIGEST,
    INVALID_FIELD,
    PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    ApiError,
)

bp = Blueprint("verify", __name__, url_prefix="/v1")

MAX_JSON_BYTES = 4096  # {"sha256": ..., "receipt_id": ..., "partial_chain": ...}: short values
MAX_RECEIPT_ID_CHARS = 100  # ids are ~30 characters; longer is not ours
FORM_FIELDS = frozenset({"image", "sha256", "bundle", "receipt_id", "partial_chain"})
JSON_FIELDS = frozenset({"sha256", "receipt_id", "partial_chain"})
# partial_chain as a form field: the words a form sends for a boolean, nothing else.
_FORM_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


@bp.post("/verify")
@limited("verify")
def verify() -> Response:
    """The verdict as JSON (200 whether valid or not); problem+json when unusable."""
    settings = current_services().settings
    # An image and a bundle, each bounded below, plus the form's framing.
    request.max_content_length = settings.max_upload_bytes + MAX_BUNDLE_BYTES + FORM_OVERHEAD_BYTES
    if request.mimetype == "multipart/form-data":
        digest, bundle, receipt_id, partial = _from_form(settings.max_upload_bytes)
    elif request.mimetype == "application/json":
        digest, bundle, receipt_id, partial = _from_json()
    else:
        raise ApiError(UNSUPPORTED_MEDIA_TYPE, "Send multipart/form-data or application/json")
    if (bundle is None) == (receipt_id is None):
        raise ApiError(INVALID_FIELD, "Send exactly one of 'bundle' (a file) or 'receipt_id'")
    services = current_services()
    if receipt_id is not None:
        caller = authenticate().id if request.headers.get("Authorization") else None
        verdict, full = verify_receipt(services, receipt_id, caller, digest,
                                       partial_chain=partial)
    else:
        assert bundle is not None
        verdict, full = verify_bundle(services, bundle, digest, partial_chain=partial), True
    return jsonify(verdict.as_dict() if full else redacted(verdict))


def redacted(verdict: BundleVerdict) -> dict[str, Any]:
    """What anyone may learn about a public receipt: the outcome, failed checks, TSA times."""
    return {
        "valid": verdict.valid,
        "image_checked": verdict.image_checked,
        "failed_checks": [c.name for c in verdict.checks if c.ok is False],
        "timestamps": [{"tsa": s.tsa, "valid": s.valid, "gen_time": s.as_dict()["gen_time"]}
                       for s in verdict.stamps],
    }


def _from_form(image_limit: int) -> tuple[str | None, bytes | None, str | None, bool]:
    unknown = sorted((set(request.form) | set(request.files)) - FORM_FIELDS)
    if unknown:
        raise ApiError(INVALID_FIELD, f"unexpected form part(s): {', '.join(unknown)}")
    image, text_digest = request.files.get("image"), request.form.get("sha256")
    if image is not None and text_digest is not None:
        raise ApiError(INVALID_FIELD, "Send 'image' or 'sha256', not both")
    digest = (hash_stream(image.stream, limit=image_limit).sha256.hex()
              if image is not None else None)
    if text_digest is not None:
        digest = _digest(text_digest)
    bundle_file: FileStorage | None = request.files.get("bundle")
    bundle = None
    if bundle_file is not None:
        bundle = bundle_file.stream.read(MAX_BUNDLE_BYTES + 1)
        if len(bundle) > MAX_BUNDLE_BYTES:
            raise ApiError(PAYLOAD_TOO_LARGE, f"a bundle is at most {MAX_BUNDLE_BYTES} bytes")
    partial = request.form.get("partial_chain", "false")
    if partial.lower() not in _FORM_BOOLEANS:
        raise ApiError(INVALID_FIELD, "partial_chain must be true or false")
    return (digest, bundle, _receipt_id(request.form.get("receipt_id")),
            _FORM_BOOLEANS[partial.lower()])


def _from_json() -> tuple[str | None, bytes | None, str | None, bool]:
    data = read_json_body(request, MAX_JSON_BYTES)
    if not isinstance(data, dict) or set(data) - JSON_FIELDS:
        raise ApiError(INVALID_FIELD, "the body must be {\"sha256\": ..., \"receipt_id\": ..., "
                       "\"partial_chain\": ...}")
    digest, partial = data.get("sha256"), data.get("partial_chain", False)
    if not isinstance(partial, bool):
        raise ApiError(INVALID_FIELD, "partial_chain must be true or false")
    return ((_digest(digest) if digest is not None else None), None,
            _receipt_id(data.get("receipt_id")), partial)


def _digest(value: Any) -> str:
    if not isinstance(value, str) or not _SHA256_HEX.fullmatch(value):
        raise ApiError(INVALID_DIGEST)
    return value.lower()


def _receipt_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_RECEIPT_ID_CHARS:
        raise ApiError(INVALID_FIELD, f"receipt_id must be 1..{MAX_RECEIPT_ID_CHARS} characters")
    return value
