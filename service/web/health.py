"""GET /healthz (liveness) and GET /readyz (readiness). No key needed.

Liveness never asks the database (an orchestrator that restarts the API because the database is
down would only add restarts to the outage): it says "no stamping worker" until one heartbeats,
and names a child `chronoseal up` gave up restarting. Readiness says whether an upload made now
will be stamped. Both are service.usecases.health.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from service.usecases.disk import OK, disk_room
from service.usecases.health import liveness, readiness
from service.web.context import current_services
from service.web.problems import UNAVAILABLE, problem_response

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """200 while a stamping worker heartbeats and no child is in a crash loop, else a 503
    problem naming what is failing; touches no database. It also reports the disk registrations
    write to: "degraded" while its free space is low or under the reserve (a restart would not
    free any, so a low disk alone keeps the status code 200)."""
    state = liveness(current_services())
    disk = disk_room(current_services())
    if not state.failing:
        status = "ok" if disk.state == OK else "degraded"
        response = jsonify({"status": status, "disk": disk.as_json()})
    else:
        response = problem_response(UNAVAILABLE, "; ".join(state.reasons),
                                    failing=state.failing, disk=disk.as_json(), **state.as_json())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/readyz")
def readyz() -> Response:
    """200 with every part's state when uploads will be stamped; else a 503 problem naming
    the parts not ready, with the same per-part members as the 200."""
    state = readiness(current_services())
    if state.ready:
        response = jsonify({"status": "ok", **state.as_json()})
    else:
        not_ready = state.not_ready
        response = problem_response(UNAVAILABLE, f"not ready: {', '.join(not_ready)}",
                                    not_ready=not_ready, **state.as_json())
    response.headers["Cache-Control"] = "no-store"
    return response
