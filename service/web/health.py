"""GET /healthz: is the database answering, is Redis answering. No key needed."""

from __future__ import annotations

import logging

import redis
from flask import Blueprint, Response, jsonify

from service.storage.engine import ping
from service.storage.errors import DatabaseUnavailableError
from service.web.context import current_services
from service.web.problems import UNAVAILABLE, problem_response

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


def _check_database() -> str:
    try:
        ping(current_services().engine)
    except DatabaseUnavailableError as exc:
        log.warning("health: %s", exc)
        return "unavailable"
    return "ok"


def _check_redis() -> str:
    try:
        current_services().redis.ping()
    except (redis.RedisError, OSError) as exc:
        log.warning("health: redis unavailable: %s", exc.__class__.__name__)
        return "unavailable"
    return "ok"


@bp.get("/healthz")
def healthz() -> Response:
    """200 {"status": "ok", ...} when every part answers; else a 503 problem naming the parts down.

    The 503 is problem+json like every error, with the same per-part members as the 200.
    """
    parts = {"database": _check_database(), "redis": _check_redis()}
    down = [name for name, state in parts.items() if state != "ok"]
    if down:
        response = problem_response(
            UNAVAILABLE, f"unavailable: {', '.join(down)}", unavailable=down, **parts
        )
    else:
        response = jsonify({"status": "ok", **parts})
    response.headers["Cache-Control"] = "no-store"
    return response
