"""`/` Verify and `/find` Find the original: forms in, the verdict or the matches out.

The verdict comes from the verify use case (the same as POST /v1/verify); when the image given
is not the registered one, the page searches at once for what it looks like (usecases.search)
and shows the closest registration beside it, with a difference view.
"""

from __future__ import annotations

from typing import Any

from flask import Response

from service.evidence.bundle_check import MAX_BUNDLE_BYTES, BundleVerdict
from service.usecases.pictures import compare, operator_run_tsas
from service.usecases.register import SpooledImage
from service.usecases.search import Match, search
from service.usecases.verify import verify_bundle, verify_receipt
from service.web.context import current_services
from service.web.limits import limited
from service.web.pages import forms
from service.web.pages.blueprint import bp, render, viewer
from service.web.pages.explain import explain_all, image_mismatch
from service.web.problems import INVALID_FIELD, ApiError


@bp.get("/")
def verify_form() -> Response:
    """The empty Verify form (a receipt id may be filled in from a share link)."""
    return render("pages/verify.html", receipt_id=forms.text("receipt_id"))


@bp.post("/")
@limited("verify")
def verify_submit() -> Response:
    """The verdict in plain words; on an image mismatch, what it looks like instead."""
    services = current_services()
    image = forms.image("image", services.settings.max_upload_bytes)
    try:
        digest = forms.digest("sha256")
        if image is not None and digest is not None:
            raise ApiError(INVALID_FIELD, "Give an image or a digest, not both")
        if image is not None:
            digest = image.hashed.sha256.hex()
        bundle = forms.file_bytes("bundle", MAX_BUNDLE_BYTES, "bundle")
        receipt_id = forms.text("receipt_id")
        if (bundle is None) == (receipt_id is None):
            raise ApiError(INVALID_FIELD, "Give a bundle file or a receipt id (one of them)")
        if receipt_id is not None:
            verdict, full = verify_receipt(services, receipt_id, viewer(), digest)
        else:
            assert bundle is not None
            verdict, full = verify_bundle(services, bundle, digest), True
        lookalike = _lookalike(image) if image is not None and image_mismatch(verdict) else None
        return render("pages/verdict.html", verdict=verdict, full=full,
                      checks=explain_all(verdict, full), operator=operator_run_tsas(services),
                      receipt_id=receipt_id, digest=digest, earliest=_earliest(verdict),
                      **(lookalike or {}))
    finally:
        if image is not None:
            image.close()


def _earliest(verdict: BundleVerdict) -> object:
    times = [s.gen_time for s in verdict.stamps if s.valid and s.gen_time is not None]
    return min(times) if times else None


def _lookalike(image: SpooledImage) -> dict[str, Any]:
    """The registrations `image` looks like, the closest first, and its comparison."""
    services = current_services()
    matches = search(services, image.file, viewer())
    if not matches:
        return {"matches": []}
    best = max(matches, key=lambda m: m.closeness.similarity)
    return {"matches": matches, "best": best,
            "comparison": compare(services, best.receipt.id, viewer(), image.file)}


@bp.get("/find")
def find_form() -> Response:
    return render("pages/find.html")


@bp.post("/find")
@limited("search")
def find_submit() -> Response:
    """The earliest registrations that look like the uploaded image, with the comparison."""
    services = current_services()
    image = forms.image("image", services.settings.max_upload_bytes)
    if image is None:
        raise ApiError(INVALID_FIELD, "Choose an image to look for")
    try:
        matches: list[Match] = search(services, image.file, viewer())
        comparison = (compare(services, matches[0].receipt.id, viewer(), image.file)
                      if matches else None)
        return render("pages/find.html", matches=matches, searched=True, comparison=comparison,
                      operator=operator_run_tsas(services))
    finally:
        image.close()
