"""/v1/stamps: register an image (or digest), read receipts, their tokens and evidence bundles.

Every route needs an API key, and a key sees only its own receipts (another key's id is a 404,
exactly like an unknown id, so ids cannot be probed).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from sqlalchemy import Connection

from service.errors import MetadataError
from service.evidence.bundle import build_bundle
from service.evidence.generation import merge_generation, normalize_request_metadata
from service.evidence.manifest import Manifest, build_manifest, canonicalize
from service.storage.group_commit import group_commit_for
from service.storage.receipts import Receipt, get_receipt, insert_receipt, list_receipts
from service.storage.tables import RECEIPT_STATUSES
from service.storage.tokens import Token, list_tokens
from service.storage.uploads import undone_unless_committed
from service.timestamping.tsa_config import tsa_chain_pem
from service.web.auth import require_key
from service.web.context import current_services, signals
from service.web.intake import Submission, idempotency_key, read_submission
from service.web.problems import INVALID_FIELD, NOT_FOUND, NOT_READY, ApiError
from service.web.render import (
    decode_cursor,
    encode_cursor,
    links,
    proof_json,
    receipt_json,
    summary_json,
)
from service.wiring import Services

bp = Blueprint("stamps", __name__, url_prefix="/v1/stamps")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100  # each item is small, but a page is built in memory: keep it bounded
REPLY_MEDIA_TYPE = "application/timestamp-reply"  # RFC 3161 section 3.4
RECORD_TOO_LARGE = "generation record: does not fit the manifest beside the request's; left out"


def request_fingerprint(sub: Submission) -> str:
    """SHA-256 over the canonical request (JCS): a repeat with another body is a conflict."""
    canonical = {
        "sha256": sub.sha256,
        "size": sub.size,
        "metadata": sub.metadata,
        "external_id": sub.external_id,
        "callback_url": sub.callback_url,
        "public": sub.public,
    }
    return hashlib.sha256(canonicalize(canonical)).hexdigest()


@bp.post("")
@require_key
def create_stamp() -> tuple[Response, int]:
    """Register: hash, build the manifest, commit the receipt, then enqueue (202)."""
    services = current_services()
    key = idempotency_key(request)
    sub = read_submission(request, services.settings.max_upload_bytes)
    try:
        return _register(services, key, sub)
    finally:
        sub.close()


def _register(services: Services, key: str | None, sub: Submission) -> tuple[Response, int]:
    manifest = _manifest(sub)
    keep = sub.image_file is not None
    uploads = services.uploads
    api_key_id = g.api_key.id
    fingerprint = request_fingerprint(sub) if key else None  # not under the write lock

    def write(conn: Connection) -> Receipt:
        receipt = insert_receipt(
            conn,
            api_key_id=api_key_id,
            image_sha256=sub.sha256,
            image_size=sub.size,
            media_type=sub.media_type,
            manifest_jcs=manifest.jcs,
            manifest_digest=manifest.digest.hex(),
            external_id=sub.external_id,
            callback_url=sub.callback_url,
            warnings=sub.warnings,
            public=sub.public,
            idempotency_key=key,
            request_fingerprint=fingerprint,
            hash_pending=keep,
        )
        if keep and uploads.transactional and not receipt.replayed:
            assert sub.image_file is not None
            if uploads.keep(conn, sub.sha256, sub.image_file):
                kept.append(sub.sha256)
        return receipt

    with undone_unless_committed(uploads) as kept:
        if keep and not uploads.transactional:
            # A file is written before the shared transaction, not while holding the write lock.
            assert sub.image_file is not None
            if uploads.keep(None, sub.sha256, sub.image_file):
                kept.append(sub.sha256)
        # Shared with other requests' inserts: one commit (and fsync) for the whole group.
        receipt = group_commit_for(services.engine).run(write)
    if receipt.replayed:
        for sha256 in kept:  # the first request's image was hashed already: nothing waits
            uploads.forget(sha256)
    # Committed above; from here on nothing may fail the request: the signals run on their own
    # threads, and the sweeper re-enqueues anything Redis did not take (latency, never a loss).
    if receipt.status == "pending":
        signals().stamping.poke()
    if keep and not receipt.replayed:
        signals().hashing.poke()
    body = {
        "id": receipt.id,
        "status": receipt.status,
        "manifest_digest": receipt.manifest_digest,
        "links": links(receipt.id),
        "warnings": receipt.warnings,
    }
    response = jsonify(body)
    response.headers["Location"] = body["links"]["self"]
    if receipt.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response, 202


def _manifest(sub: Submission) -> Manifest:
    """The manifest, with the file's generation record beside the request's; when both together
    exceed the manifest's bounds, the request's alone (the file's stays in the hashed bytes)."""
    request_generation = normalize_request_metadata(sub.metadata)
    record = sub.record
    file_generation = record.as_generation() if record is not None and record.found else None

    def build(generation: dict[str, Any]) -> Manifest:
        return build_manifest(
            image_sha256=sub.sha256, size=sub.size, media_type=sub.media_type,
            generation=generation, submitted_at=datetime.now(UTC), external_id=sub.external_id,
        )

    try:
        return build(merge_generation(request_generation, file_generation))
    except MetadataError:
        if file_generation is None:
            raise
    sub.warnings.append(RECORD_TOO_LARGE)
    return build(request_generation)


def _own_receipt(receipt_id: str) -> Receipt:
    with current_services().engine.connect() as conn:
        receipt = get_receipt(conn, receipt_id, g.api_key.id)
    if receipt is None:
        raise ApiError(NOT_FOUND, "No receipt with this id")
    return receipt


def _tokens(receipt: Receipt) -> list[Token]:
    if receipt.status != "stamped" or receipt.batch_id is None:
        return []
    with current_services().engine.connect() as conn:
        return list_tokens(conn, receipt.batch_id)


@bp.get("")
@require_key
def list_stamps() -> Response:
    """The key's receipts, newest first, `limit` at a time, with an opaque `next_cursor`."""
    args = request.args
    status = args.get("status")
    if status is not None and status not in RECEIPT_STATUSES:
        raise ApiError(INVALID_FIELD, f"status must be one of {', '.join(RECEIPT_STATUSES)}")
    try:
        limit = int(args.get("limit", DEFAULT_PAGE_SIZE))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ApiError(INVALID_FIELD, f"limit must be an integer in 1..{MAX_PAGE_SIZE}")
    cursor = args.get("cursor")
    with current_services().engine.connect() as conn:
        rows, last_id = list_receipts(
            conn, g.api_key.id, status=status, external_id=args.get("external_id"),
            limit=limit, cursor=decode_cursor(cursor) if cursor else None,
        )
    page = {"items": [summary_json(r) for r in rows], "next_cursor": encode_cursor(last_id)}
    return jsonify(page)


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


def receipt_bundle(receipt: Receipt) -> bytes:
    """The receipt's evidence bundle (ZIP bytes); 409 not-ready until it is stamped."""
    tokens = _tokens(receipt)
    proof = proof_json(receipt)
    if receipt.status != "stamped" or proof is None or not tokens:
        raise ApiError(NOT_READY, f"The receipt is {receipt.status}", receipt_status=receipt.status)
    services = current_services()
    return build_bundle(
        manifest_jcs=receipt.manifest_jcs,
        proof=proof,
        tokens={t.tsa: t.reply_der for t in tokens},
        chains={t.tsa: t.chain_pem or tsa_chain_pem(services.settings, t.tsa) for t in tokens},
        receipt_id=receipt.id,
        image_name=None,
    )


@bp.get("/<receipt_id>/bundle")
@require_key
def get_bundle(receipt_id: str) -> Response:
    """The evidence bundle (ZIP); 409 not-ready until the receipt is stamped."""
    receipt = _own_receipt(receipt_id)
    response = Response(receipt_bundle(receipt), mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="{receipt.id}.zip"'
    return response
