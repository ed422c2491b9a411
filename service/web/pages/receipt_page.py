"""`/r/<id>`: one receipt for people (public receipts, or the signed-in owner's), its share
link as a QR code, its bundle for the owner, and its thumbnail.

A private receipt of someone else is a 404 page, exactly like an unknown id.
"""

from __future__ import annotations

import io
import json
from typing import Any

import segno
from flask import Response, url_for

from service.usecases import receipts
from service.usecases.pictures import operator_run_tsas, receipt_thumbnail
from service.web.context import current_services
from service.web.pages.blueprint import bp, language, render, session, viewer
from service.web.problems import NOT_FOUND, ApiError
from service.web.stamps import certificate_response

QR_SCALE = 4  # module size in SVG units: a phone reads it off a screen or a print
GENERATION_FIELDS = ("prompt", "negative_prompt", "model", "model_hash", "seed", "sampler",
                     "steps", "cfg_scale", "width", "height", "software")
THUMB_CACHE_S = 300  # thumbnails change only if the kept image goes


def record_rows(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """The manifest as (field, value) rows: image, times, then the generation record."""
    rows: list[tuple[str, str]] = []
    image = manifest.get("image") or {}
    for name in ("sha256", "size", "media_type"):
        if name in image:
            rows.append((f"image.{name}", str(image[name])))
    for name in ("submitted_at", "external_id"):
        if name in manifest:
            rows.append((name, str(manifest[name])))
    generation = manifest.get("generation") or {}
    for name in GENERATION_FIELDS:
        if generation.get(name) is not None:
            value = generation[name]
            rows.append((name, value if isinstance(value, str) else json.dumps(value)))
    return rows


@bp.get("/r/<receipt_id>")
def receipt_page(receipt_id: str) -> Response:
    """Status, times per TSA, the record (owner), downloads, share link and QR code."""
    services = current_services()
    receipt, full = receipts.readable_receipt(services, receipt_id, viewer())
    tokens = receipts.tokens_of(services, receipt)
    manifest = json.loads(receipt.manifest_jcs) if full else None
    return render(
        "pages/receipt.html", receipt=receipt, full=full, tokens=tokens,
        operator=operator_run_tsas(services),
        rows=record_rows(manifest) if manifest is not None else [],
        share_url=url_for("pages.receipt_page", receipt_id=receipt.id, _external=True))


@bp.get("/r/<receipt_id>/qr.svg")
def receipt_qr(receipt_id: str) -> Response:
    """The share link as an SVG QR code (only for receipts this viewer may see)."""
    receipts.readable_receipt(current_services(), receipt_id, viewer())
    link = url_for("pages.receipt_page", receipt_id=receipt_id, _external=True)
    out = io.BytesIO()
    segno.make(link, error="m").save(out, kind="svg", scale=QR_SCALE, xmldecl=False,
                                     title=link)
    return Response(out.getvalue(), mimetype="image/svg+xml")


@bp.get("/r/<receipt_id>/bundle")
def receipt_bundle(receipt_id: str) -> Response:
    """The evidence bundle, for the signed-in owner (as GET /v1/stamps/{id}/bundle)."""
    signed_in = session()
    if signed_in is None:
        raise ApiError(NOT_FOUND, "Sign in to download the bundle of your receipt")
    services = current_services()
    receipt = receipts.own_receipt(services, receipt_id, signed_in.key.id)
    response = Response(receipts.receipt_bundle(services, receipt, language()),
                        mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="{receipt.id}.zip"'
    return response


@bp.get("/r/<receipt_id>/certificate.<any(pdf, html):kind>")
def receipt_certificate(receipt_id: str, kind: str) -> Response:
    """The certificate (PDF or printable page), for the signed-in owner, in the page's
    language (as GET /v1/stamps/{id}/certificate.pdf|html with a key)."""
    signed_in = session()
    if signed_in is None:
        raise ApiError(NOT_FOUND, "Sign in to download the certificate of your receipt")
    receipt = receipts.own_receipt(current_services(), receipt_id, signed_in.key.id)
    return certificate_response(receipt, kind, language())


@bp.get("/thumbs/<receipt_id>.png")
def receipt_thumb(receipt_id: str) -> Response:
    """The receipt's thumbnail; the placeholder when its image is not kept (hash only)."""
    png = receipt_thumbnail(current_services(), receipt_id, viewer())
    if png is None:
        return bp.send_static_file("no-image.svg")
    response = Response(png, mimetype="image/png")
    response.headers["Cache-Control"] = f"private, max-age={THUMB_CACHE_S}"
    return response
