"""Creator pages: sign in with an API key, list and filter receipts, upload images, see
webhook deliveries. Each acts as the signed-in key, through the same use cases as /v1.

Uploads: one form, several images (a plain multipart form); upload.js sends them one request
each with progress, asking for JSON. Each image counts against the register rate limits.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from service.usecases import endpoints, receipts
from service.usecases.keys import hash_secret
from service.usecases.rate_limits import Counter
from service.usecases.register import MAX_EXTERNAL_ID, Registration, register, spool_image
from service.usecases.sessions import Session, sign_in, sign_out
from service.web.auth import MAX_KEY_CHARS, key_for_secret
from service.web.context import current_services, rate_limiter, signals
from service.web.limits import address_counter
from service.web.pages import forms
from service.web.pages.blueprint import (
    MAX_UPLOAD_FILES,
    SESSION_COOKIE,
    bp,
    render,
    session,
    set_session_cookie,
)
from service.web.problems import INVALID_FIELD, UNAUTHORIZED, ApiError
from service.web.render import decode_cursor, encode_cursor

PAGE_SIZE = 20
DELIVERY_PAGE = 50


def _signed_in() -> Session:
    found = session()
    if found is None:
        raise ApiError(UNAUTHORIZED, "Sign in with your API key first")
    return found


@bp.get("/signin")
def signin_form() -> Response:
    return render("pages/signin.html")


@bp.post("/signin")
def signin_submit() -> BaseResponse:
    """Check the key (rate-limited like a bearer key), start a session, go to the receipts."""
    secret = (request.form.get("api_key") or "").strip()
    if not secret or len(secret) > MAX_KEY_CHARS:
        return render("pages/signin.html", code=400, error=True)
    try:
        key = key_for_secret(secret)
    except ApiError as exc:
        if exc.problem is not UNAUTHORIZED:
            raise
        return render("pages/signin.html", code=401, error=True)
    started = sign_in(current_services(), key, hash_secret(secret))
    response = redirect(url_for("pages.my_receipts"), code=303)
    set_session_cookie(response, started)
    return response


@bp.post("/signout")
def signout() -> BaseResponse:
    found = session()
    if found is not None:
        sign_out(current_services(), found.id)
    response = redirect(url_for("pages.verify_form"), code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@bp.get("/my")
def my_receipts() -> Response:
    """The key's receipts, newest first, filtered by status and external id."""
    owner = _signed_in().key.id
    status = forms.text("status")
    external_id = forms.text("external_id", MAX_EXTERNAL_ID)
    after = forms.text("after")
    page = receipts.list_own(current_services(), owner, status=status, external_id=external_id,
                             limit=PAGE_SIZE, after=decode_cursor(after) if after else None)
    return render("pages/my.html", page=page, status=status, external_id=external_id,
                  statuses=receipts.RECEIPT_STATUSES, next_cursor=encode_cursor(page.last_id))


def _count_registration(key_id: str) -> None:
    """One image against the register limits, per address and per key (as POST /v1/stamps)."""
    settings = current_services().settings
    counters = address_counter(settings, "register")
    if settings.rate_limit_register_per_key is not None:
        counters.append(Counter("register", "key", key_id, settings.rate_limit_register_per_key))
    rate_limiter().hit(counters)


@bp.post("/my/upload")
def upload() -> BaseResponse:
    """Register each uploaded image; JSON for upload.js, the receipts page otherwise."""
    owner = _signed_in().key.id
    files = [f for f in request.files.getlist("images") if f.filename]
    if not files or len(files) > MAX_UPLOAD_FILES:
        raise ApiError(INVALID_FIELD, f"Choose 1 to {MAX_UPLOAD_FILES} images")
    services = current_services()
    public = request.form.get("public") == "on"
    made: list[dict[str, Any]] = []

    for upload_file in files:
        _count_registration(owner)
        image = spool_image(upload_file.stream, services.settings.max_upload_bytes,
                            upload_file.filename)
        try:
            receipt = register(services, Registration(owner=owner, image=image, public=public),
                               signals()).receipt
        finally:
            image.close()
        made.append({"id": receipt.id, "name": upload_file.filename, "status": receipt.status,
                     "url": url_for("pages.receipt_page", receipt_id=receipt.id)})
    if request.accept_mimetypes.best == "application/json":
        return jsonify({"receipts": made})
    return redirect(url_for("pages.my_receipts"), code=303)


@bp.get("/my/deliveries")
def deliveries() -> Response:
    """The key's webhook deliveries, newest first (optionally one status)."""
    owner = _signed_in().key.id
    status = forms.text("status")
    log = endpoints.delivery_log(current_services(), owner, endpoint_id=None, status=status,
                                 limit=DELIVERY_PAGE)
    return render("pages/deliveries.html", deliveries=log, status=status,
                  states=endpoints.DELIVERY_STATES)
