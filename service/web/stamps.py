"""/v1/stamps: register an image (or digest), read receipts, their tokens and evidence bundles.

Every route needs an API key, and a key sees only its own receipts (another key's id is a 404,
exactly like an unknown id, so ids cannot be probed).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from service.evidence.certificate import CSP as CERTIFICATE_CSP
from service.evidence.manifest import format_timestamp
from service.i18n import LANGUAGES, negotiate
from service.logs import note
from service.usecases import receipts
from service.usecases.receipts import Receipt, Token
from service.usecases.register import Registered, register
from service.web.auth import require_key
from service.web.context import current_services, signals
from service.web.intake import read_registration
from service.web.limits import limited
from service.web.problems import INVALID_FIELD, NOT_FOUND, ApiError
from service.web.render import decode_cursor, encode_cursor, links, receipt_json, summary_json

bp = Blueprint("stamps", __name__, url_prefix="/v1/stamps")

DEFAULT_PAGE_SIZE = 20
REPLY_MEDIA_TYPE = "application/timestamp-reply"  # RFC 3161 section 3.4


@bp.post("")
@require_key
@limited("register")
def create_stamp() -> tuple[Response, int]:
    """Register: hash, build the manifest, commit the receipt, then enqueue (202)."""
    services = current_services()
    reg = read_registration(request, services.settings.max_upload_bytes, g.api_key.id)
    reg.name_earlier = True
    try:
        registered = register(services, reg, signals())
    finally:
        if reg.image is not None:
            reg.image.close()
    receipt = registered.receipt
    note(receipt_id=receipt.id)
    body = accepted_json(registered)
    response = jsonify(body)
    response.headers["Location"] = body["links"]["self"]
    if receipt.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response, 202


def accepted_json(registered: Registered) -> dict[str, Any]:
    """The 202 answer of a registration (also each accepted item of a batch)."""
    receipt = registered.receipt
    body: dict[str, Any] = {
        "id": receipt.id,
        "status": receipt.status,
        "manifest_digest": receipt.manifest_digest,
        "links": links(receipt.id),
        "warnings": receipt.warnings,
        # "Already registered at ...": the same bytes registered before by this key.
        "earlier_receipts": [
            {"id": e.id, "created_at": format_timestamp(e.created_at), "status": e.status,
             "links": links(e.id)} for e in registered.earlier],
    }
    if registered.disclosure is not None:  # a private record: the salts, this once, to keep
        body["disclosure"] = json.loads(registered.disclosure)
    return body


def _own_receipt(receipt_id: str) -> Receipt:
    return receipts.own_receipt(current_services(), receipt_id, g.api_key.id)


def _tokens(receipt: Receipt) -> list[Token]:
    return receipts.tokens_of(current_services(), receipt)


@bp.get("")
@require_key
def list_stamps() -> Response:
    """The key's receipts, newest first, `limit` at a time, with an opaque `next_cursor`."""
    args = request.args
    try:
        limit = int(args.get("limit", DEFAULT_PAGE_SIZE))
    except ValueError:
        limit = 0
    cursor = args.get("cursor")
    page = receipts.list_own(
        current_services(), g.api_key.id, status=args.get("status"),
        external_id=args.get("external_id"), limit=limit,
        after=decode_cursor(cursor) if cursor else None,
    )
    return jsonify({"items": [summary_json(r) for r in page.items],
                    "next_cursor": encode_cursor(page.last_id)})


@bp.get("/<receipt_id>")
@require_key
def get_stamp(receipt_id: str) -> Response:
    """Status, manifest, proof and tokens of one receipt."""
    receipt = _own_receipt(receipt_id)
    return jsonify(receipt_json(receipt, _tokens(receipt)))


@bp.get("/<receipt_id>/tokens", endpoint="list_tokens")
@require_key
def list_stamp_tokens(receipt_id: str) -> Response:
    """The receipt's tokens (empty until it is stamped)."""
    receipt = _own_receipt(receipt_id)
    return jsonify({"tokens": receipt_json(receipt, _tokens(receipt))["tokens"]})


@bp.get("/<receipt_id>/tokens/<tsa>.tsr")
@require_key
def get_token(receipt_id: str, tsa: str) -> Response:
    """One TSA's DER TimeStampResp, as `openssl ts -reply -in` reads it."""
    token = next((t for t in _tokens(_own_receipt(receipt_id)) if t.tsa == tsa), None)
    if token is None:
        raise ApiError(NOT_FOUND, "No token from this TSA for this receipt")
    response = Response(token.reply_der, mimetype=REPLY_MEDIA_TYPE)
    response.headers["Content-Disposition"] = f'attachment; filename="{receipt_id}-{tsa}.tsr"'
    return response


def _flag(value: str | None) -> bool:
    """A query flag: absent or false/0 is off, true/1 on; anything else a 400."""
    if value is None or value.lower() in ("false", "0"):
        return False
    if value.lower() in ("true", "1"):
        return True
    raise ApiError(INVALID_FIELD, "history must be true or false")


@bp.get("/<receipt_id>/bundle")
@require_key
def get_bundle(receipt_id: str) -> Response:
    """The evidence bundle (ZIP), its exhibit in the language of `?lang=` or Accept-Language;
    409 not-ready until the receipt is stamped."""
    receipt = _own_receipt(receipt_id)
    language = negotiate(request.headers.get("Accept-Language"), request.args.get("lang"))
    bundle = receipts.receipt_bundle(current_services(), receipt, language,
                                     history=_flag(request.args.get("history")))
    response = Response(bundle, mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="{receipt.id}.zip"'
    response.headers["Vary"] = "Accept-Language"  # the exhibit inside follows it
    return response


# -- the exhibit (issue 15 §2): the bundle's certificate alone, in the reader's language --
@bp.get("/<receipt_id>/certificate.pdf", defaults={"kind": "pdf"})
@bp.get("/<receipt_id>/certificate.html", defaults={"kind": "html"})
@require_key
def get_certificate(receipt_id: str, kind: str) -> Response:
    """certificate.pdf or certificate.html as in the bundle; `?lang=` or Accept-Language
    chooses the language (en, zh); 409 not-ready until the receipt is stamped."""
    language = negotiate(request.headers.get("Accept-Language"), request.args.get("lang"))
    return certificate_response(_own_receipt(receipt_id), kind, language)


def certificate_response(receipt: Receipt, kind: str, language: str) -> Response:
    """The receipt's certificate.pdf (`kind` "pdf") or certificate.html, as in its bundle: the
    API's route and the receipt page's (signed-in owner) answer the same."""
    body = receipts.receipt_certificate(current_services(), receipt, language,
                                        pdf=kind == "pdf")
    if kind == "pdf":
        response = Response(body, mimetype="application/pdf")
        response.headers["Content-Disposition"] = \
            f'attachment; filename="{receipt.id}-certificate.pdf"'
    else:
        response = Response(body, mimetype="text/html")
        response.headers["Content-Security-Policy"] = CERTIFICATE_CSP
    response.headers["Content-Language"] = LANGUAGES[language]
    response.headers["Vary"] = "Accept-Language"
    return response
