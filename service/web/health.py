"""GET /healthz: is the database answering, is Redis answering. No key needed."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from service.usecases.health import OK, check_parts
from service.web.context import current_services
from service.web.problems import UNAVAILABLE, problem_response

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """200 {"status": "ok", ...} when every part answers; else a 503 problem naming the parts down.

    The 503 is problem+json like every error, with the same per-part members as the 200.
    """
    parts = check_parts(current_services())
    down = [name for name, state in parts.items() if state != OK]
    if down:
        response = problem_response(
            UNAVAILABLE, f"unavailable: {', '.join(down)}", unavailable=down, **parts
        )
    else:
        response = jsonify({"status": "ok", **parts})
    response.headers["Cache-Control"] = "no-store"
    return response
