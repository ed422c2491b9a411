"""Content Credentials: a registered image's copy carrying its registration as a C2PA manifest
(GET /v1/stamps/{id}/content-credentials), and the root its signer chains to (GET /c2pa/root.pem).

The copy's bytes differ from the original's, so it is registered too, as a child of the
original: the answer names that receipt in `Chronoseal-Receipt` and a Link (rel="self"), and the
original in `Chronoseal-Copy-Of`.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, request

from service.logs import note
from service.usecases import credentials
from service.web.auth import require_key
from service.web.context import current_services, signals
from service.web.limits import limited
from service.web.problems import METHOD_NOT_ALLOWED, ApiError
from service.web.render import links

bp = Blueprint("credentials", __name__)

PEM_MEDIA_TYPE = "application/x-pem-file"
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


@bp.get("/v1/stamps/<receipt_id>/content-credentials")
@require_key
@limited("register")
def get_content_credentials(receipt_id: str) -> Response:
    """The image with a signed C2PA manifest of its registration; the copy is registered
    (once: later calls answer the same copy while its bytes are kept)."""
    if request.method == "HEAD":  # Flask adds HEAD to GET routes: it must not register a copy
        raise ApiError(METHOD_NOT_ALLOWED, "HEAD would sign and register a copy; use GET",
                       headers={"Allow": "GET"})
    made = credentials.content_credentials(current_services(), signals(), receipt_id,
                                           g.api_key.id, request.host_url)
    child = made.child.receipt
    note(receipt_id=child.id)
    response = Response(made.image, mimetype=made.media_type)
    response.headers["Chronoseal-Receipt"] = child.id
    response.headers["Chronoseal-Copy-Of"] = made.parent_id
    response.headers["Link"] = f'<{links(child.id)["self"]}>; rel="self"'
    if child.replayed:  # the copy made by an earlier call, byte for byte
        response.headers["Idempotent-Replayed"] = "true"
    name = f"{receipt_id}.content-credentials.{EXTENSIONS[made.media_type]}"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.get("/c2pa/root.pem")
def get_root() -> Response:
    """The root of Chronoseal's C2PA signing certificate, for viewers' trust lists."""
    material = credentials.signing_material(current_services())
    return Response(material.root_pem, mimetype=PEM_MEDIA_TYPE)
