"""RFC 9457 problem+json: the one place where errors become HTTP responses.

Public messages are constants chosen here; causes go to the log, never into the body.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

from service import errors

log = logging.getLogger(__name__)
PROBLEM_BASE = "urn:chronoseal:problem:"
PROBLEM_MEDIA_TYPE = "application/problem+json"


@dataclass(frozen=True)
class Problem:
    """A stable problem type: slug (becomes the `type` URI), HTTP status and title."""

    slug: str
    status: int
    title: str

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug


BAD_REQUEST = Problem("bad-request", 400, "The request is malformed")
INVALID_METADATA = Problem("invalid-metadata", 400, "metadata must be a JSON object")
INVALID_DIGEST = Problem("invalid-digest", 400, "sha256 must be 64 hexadecimal characters")
UNAUTHORIZED = Problem("unauthorized", 401, "A valid API key is required")
NOT_FOUND = Problem("not-found", 404, "No such resource")
METHOD_NOT_ALLOWED = Problem("method-not-allowed", 405, "Method not allowed")
IDEMPOTENCY_CONFLICT = Problem(
    "idempotency-conflict", 409, "Idempotency-Key was already used with another request body"
)
PAYLOAD_TOO_LARGE = Problem("payload-too-large", 413, "The upload exceeds the size limit")
UNSUPPORTED_MEDIA_TYPE = Problem("unsupported-media-type", 415, "Unsupported Content-Type")
NOT_READY = Problem("not-ready", 409, "The receipt is not stamped yet")
UNAVAILABLE = Problem("unavailable", 503, "A backing service is unavailable")
INTERNAL = Problem("internal", 500, "Internal error")

_BY_STATUS = {p.status: p for p in (
    BAD_REQUEST, UNAUTHORIZED, NOT_FOUND, METHOD_NOT_ALLOWED, PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE, UNAVAILABLE, INTERNAL,
)}


class ApiError(errors.ChronosealError):
    """Raised by handlers: a known problem plus an optional public detail and extra members."""

    def __init__(self, problem: Problem, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or problem.title)
        self.problem = problem
        self.detail = detail
        self.extra = extra


def problem_response(problem: Problem, detail: str | None = None, **extra: Any) -> Response:
    """Render a problem as application/problem+json."""
    body: dict[str, Any] = {"type": problem.type, "title": problem.title, "status": problem.status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return Response(json.dumps(body), status=problem.status, mimetype=PROBLEM_MEDIA_TYPE)


# Domain errors the web layer presents, by type; anything else is a logged 500.
DOMAIN_PROBLEMS: tuple[tuple[type[BaseException], Problem], ...] = (
    (errors.MalformedInputError, BAD_REQUEST),
)


def install(app: Flask) -> None:
    """Install the error handlers on the app."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return problem_response(exc.problem, exc.detail, **exc.extra)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        problem = _BY_STATUS.get(status, Problem(f"http-{status}", status, exc.name))
        return problem_response(problem)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        for exc_type, problem in DOMAIN_PROBLEMS:
            if isinstance(exc, exc_type):
                return problem_response(problem, str(exc))
        log.exception("unhandled error")
        return problem_response(INTERNAL)
