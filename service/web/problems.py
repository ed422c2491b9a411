"""RFC 9457 problem+json: the one place where errors become HTTP responses.

Public messages are constants chosen here; causes go to the log, never into the body.
"""

from __future__ import annotations

import json as stdlib_json
import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, has_request_context, request
from werkzeug.exceptions import HTTPException

from service import errors
from service.client.api import ClientError
from service.client.watch_sender import KeyRefusedError
from service.client.watch_state import StateLockedError
from service.evidence.exhibit_pdf import ExhibitRenderError
from service.timestamping.tsa_query import QueryRejectedError
from service.usecases.lineage import UnknownParentError
from service.usecases.stamping.requester import TrustUnavailableError
from service.web.multipart import FieldTooLargeError, FormError
from service.webhooks import errors as webhook_errors

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
METADATA_OUT_OF_BOUNDS = Problem(
    "metadata-out-of-bounds", 400,
    "A generation record or manifest field is out of bounds (size, depth, precision or form)",
)
INVALID_DIGEST = Problem("invalid-digest", 400, "sha256 must be 64 hexadecimal characters")
INVALID_CALLBACK_URL = Problem(
    "invalid-callback-url", 400, "callback_url must be an absolute http or https URL"
)
INVALID_FIELD = Problem("invalid-field", 400, "A request field is missing or invalid")
UNAUTHORIZED = Problem("unauthorized", 401, "A valid API key is required")
INVALID_SIGNATURE = Problem(
    "invalid-signature", 401, "The webhook signature is missing, stale or does not verify"
)
URL_REFUSED = Problem(
    "url-refused", 400, "The URL is not http(s) or points to an address webhooks may not reach"
)
NOT_FOUND = Problem("not-found", 404, "No such resource")
# web pages (service/web/pages)
CSRF_REFUSED = Problem("csrf-refused", 403, "The form's CSRF token is missing or does not match")
# A callable (problem, detail) -> Response | None that renders a page error as HTML for a
# browser; service/web/pages installs it, and None means problem+json as usual.
PAGE_ERRORS_KEY = "chronoseal.page_errors"
METHOD_NOT_ALLOWED = Problem("method-not-allowed", 405, "Method not allowed")
IDEMPOTENCY_CONFLICT = Problem(
    "idempotency-conflict", 409, "Idempotency-Key was already used with another request body"
)
PAYLOAD_TOO_LARGE = Problem("payload-too-large", 413, "The upload exceeds the size limit")
UNSUPPORTED_MEDIA_TYPE = Problem("unsupported-media-type", 415, "Unsupported Content-Type")
UNREADABLE_IMAGE = Problem(
    "unreadable-image", 400, "The upload is not an image that can be decoded"
)
IMAGE_TOO_MANY_PIXELS = Problem(
    "image-too-many-pixels", 413, "The image has more pixels than the decoding limit"
)
RATE_LIMITED = Problem(
    "rate-limited", 429, "Too many requests; retry after the seconds in Retry-After"
)
NOT_READY = Problem("not-ready", 409, "The receipt is not stamped yet")
DECODE_BUSY = Problem(
    "decode-busy", 503, "The server is decoding as many images as it can; try again shortly"
)
INSUFFICIENT_STORAGE = Problem(
    "insufficient-storage", 507, "The server is out of disk space; nothing was stored"
)
UNAVAILABLE = Problem("unavailable", 503, "A backing service is unavailable")
# -- the exhibit (issue 15 §2) --
EXHIBIT_UNAVAILABLE = Problem(
    "exhibit-unavailable", 503, "The certificate PDF cannot be printed on this server now"
)
MISCONFIGURED = Problem("misconfigured", 503, "The service is misconfigured")
UPSTREAM_FAILED = Problem("upstream-failed", 502, "A remote server did not answer usably")
VERIFICATION_FAILED = Problem("verification-failed", 422, "A check on the evidence failed")
INTERNAL = Problem("internal", 500, "Internal error")
# Content Credentials (issue 17)
IMAGE_NOT_KEPT = Problem(
    "image-not-kept", 409,
    "The registered image is not kept on the server; embed locally with chronoseal stamp --embed",
)
EMBED_FAILED = Problem("embed-failed", 502, "The Content Credentials could not be signed")
# Answered by the HTTP server before the app sees the request (service/cli/gunicorn_worker.py).
FORBIDDEN = Problem("forbidden", 403, "Forbidden")
REQUEST_TIMEOUT = Problem("request-timeout", 408, "The request did not arrive in time")
URI_TOO_LONG = Problem("uri-too-long", 414, "The request line is too long")
EXPECTATION_FAILED = Problem("expectation-failed", 417, "The Expect header cannot be met")
HEADERS_TOO_LARGE = Problem("header-fields-too-large", 431, "The request headers are too large")
NOT_IMPLEMENTED = Problem("not-implemented", 501, "The request uses an unsupported feature")

ALL_PROBLEMS: tuple[Problem, ...] = (
    BAD_REQUEST, INVALID_METADATA, METADATA_OUT_OF_BOUNDS, INVALID_DIGEST, INVALID_CALLBACK_URL,
    INVALID_FIELD, UNAUTHORIZED, NOT_FOUND, METHOD_NOT_ALLOWED, IDEMPOTENCY_CONFLICT, NOT_READY,
    PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, UNAVAILABLE, INTERNAL, INVALID_SIGNATURE,
    URL_REFUSED, UNREADABLE_IMAGE, IMAGE_TOO_MANY_PIXELS, MISCONFIGURED, UPSTREAM_FAILED,
    VERIFICATION_FAILED, RATE_LIMITED, DECODE_BUSY, INSUFFICIENT_STORAGE, FORBIDDEN,
    REQUEST_TIMEOUT, URI_TOO_LONG, EXPECTATION_FAILED, HEADERS_TOO_LARGE, NOT_IMPLEMENTED,
    CSRF_REFUSED,  # web pages
    IMAGE_NOT_KEPT, EMBED_FAILED,
    EXHIBIT_UNAVAILABLE,  # the exhibit (issue 15 §2)
)
_BY_STATUS = {p.status: p for p in (
    BAD_REQUEST, UNAUTHORIZED, NOT_FOUND, METHOD_NOT_ALLOWED, PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE, UNAVAILABLE, INTERNAL, RATE_LIMITED, FORBIDDEN, REQUEST_TIMEOUT,
    URI_TOO_LONG, EXPECTATION_FAILED, HEADERS_TOO_LARGE, NOT_IMPLEMENTED,
)}


def problem_for_status(status: int) -> Problem:
    """The problem of an HTTP status with no domain error behind it (routing, the server)."""
    return _BY_STATUS.get(status) or Problem(f"http-{status}", status, f"HTTP {status}")


class ApiError(errors.ChronosealError):
    """Raised by handlers: a known problem plus an optional public detail and extra members."""

    def __init__(
        self,
        problem: Problem,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or problem.title)
        self.problem = problem
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem_response(
    problem: Problem,
    detail: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """Render a problem as application/problem+json (an HTML page for a browser's page)."""
    page = current_app.extensions.get(PAGE_ERRORS_KEY) if has_request_context() else None
    if page is not None and (rendered := page(problem, detail)) is not None:
        rendered.headers.update(headers or {})
        return rendered  # type: ignore[no-any-return]
    response = Response(problem_bytes(problem, detail, **extra), status=problem.status,
                        mimetype=PROBLEM_MEDIA_TYPE)
    response.headers.update(headers or {})
    return response


def problem_bytes(problem: Problem, detail: str | None = None, **extra: Any) -> bytes:
    """The problem+json body: also written by the HTTP server, outside any Flask request."""
    return stdlib_json.dumps(problem_body(problem, detail, **extra), sort_keys=True).encode()


def problem_body(problem: Problem, detail: str | None = None, **extra: Any) -> dict[str, Any]:
    """The problem+json members, as an object."""
    body: dict[str, Any] = {"type": problem.type, "title": problem.title, "status": problem.status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return body


# Every error class of the hierarchy -> the problem it becomes, and whether the exception's own
# message is written for the client (`detail`) or only for the log. The most specific class
# of an exception wins (its MRO is walked); tests/unit/test_problem_table.py checks that every
# ChronosealError subclass has its row. Anything outside the hierarchy is a 500.
DOMAIN_PROBLEMS: dict[type[errors.ChronosealError], tuple[Problem, bool]] = {
    errors.ChronosealError: (INTERNAL, False),
    errors.ConfigError: (MISCONFIGURED, False),
    errors.VerificationError: (VERIFICATION_FAILED, True),
    errors.MalformedInputError: (BAD_REQUEST, True),
    errors.InvalidInputError: (INVALID_FIELD, True),
    FormError: (INVALID_FIELD, True),
    FieldTooLargeError: (PAYLOAD_TOO_LARGE, True),
    errors.NotFoundError: (NOT_FOUND, True),
    errors.NotReadyError: (NOT_READY, True),
    errors.RateLimitedError: (RATE_LIMITED, True),
    errors.MetadataError: (METADATA_OUT_OF_BOUNDS, True),
    errors.RetryLaterError: (UNAVAILABLE, True),
    errors.DecodeBusyError: (DECODE_BUSY, True),
    errors.DiskFullError: (INSUFFICIENT_STORAGE, True),
    errors.UploadTooLargeError: (PAYLOAD_TOO_LARGE, True),
    errors.ImageDecodeError: (UNREADABLE_IMAGE, True),
    errors.ImageBombError: (IMAGE_TOO_MANY_PIXELS, True),
    errors.TSAError: (UPSTREAM_FAILED, False),
    errors.TSATransportError: (UPSTREAM_FAILED, False),
    errors.TSAHTTPStatusError: (UPSTREAM_FAILED, False),
    errors.TSARejectedError: (UPSTREAM_FAILED, False),
    errors.TSAMalformedReplyError: (UPSTREAM_FAILED, False),
    errors.TSAVerificationError: (UPSTREAM_FAILED, False),
    TrustUnavailableError: (MISCONFIGURED, False),
    QueryRejectedError: (BAD_REQUEST, True),
    errors.StorageError: (UNAVAILABLE, False),
    errors.DatabaseUnavailableError: (UNAVAILABLE, False),
    errors.IdempotencyConflictError: (IDEMPOTENCY_CONFLICT, False),
    errors.AmbiguousKeyError: (INVALID_FIELD, True),
    errors.BatchStateError: (INTERNAL, False),
    webhook_errors.WebhookError: (BAD_REQUEST, True),
    webhook_errors.URLRefusedError: (URL_REFUSED, True),
    webhook_errors.ResolutionError: (URL_REFUSED, True),
    webhook_errors.SignatureError: (INVALID_SIGNATURE, False),
    webhook_errors.TransportError: (UPSTREAM_FAILED, False),
    webhook_errors.TooLargeError: (PAYLOAD_TOO_LARGE, True),
    ClientError: (UPSTREAM_FAILED, False),  # the client's, talking to another Chronoseal
    # chronoseal watch's own (client side; listed so every error has one row)
    KeyRefusedError: (UPSTREAM_FAILED, False),
    StateLockedError: (MISCONFIGURED, False),
    errors.ImageNotKeptError: (IMAGE_NOT_KEPT, True),
    errors.EmbedError: (EMBED_FAILED, False),
    # -- the exhibit (issue 15 §2) --
    ExhibitRenderError: (EXHIBIT_UNAVAILABLE, False),
}

# Issue 14 (the iteration history): a registration's parent that is no receipt of its key.
UNKNOWN_PARENT = Problem("unknown-parent", 400, "A parent names no receipt of this API key")
ALL_PROBLEMS += (UNKNOWN_PARENT,)
DOMAIN_PROBLEMS[UnknownParentError] = (UNKNOWN_PARENT, True)


def problem_for(exc: errors.ChronosealError) -> tuple[Problem, bool]:
    """The row of the exception's most specific class in DOMAIN_PROBLEMS."""
    for cls in type(exc).__mro__:
        row = DOMAIN_PROBLEMS.get(cls)  # type: ignore[call-overload]
        if row is not None:
            return row
    return INTERNAL, False


def _extra(exc: errors.ChronosealError) -> dict[str, Any]:
    """Members a problem carries beside its detail (the state of a resource not ready)."""
    if isinstance(exc, errors.NotReadyError):
        return {"receipt_status": exc.state}
    return {}


def _headers(exc: errors.ChronosealError) -> dict[str, str]:
    """Headers a problem carries: Retry-After (RFC 9110) when the error says when to come back."""
    if isinstance(exc, errors.RetryLaterError):
        return {"Retry-After": str(exc.retry_after_s)}
    return {}


def install(app: Flask) -> None:
    """Install the error handlers on the app."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return problem_response(exc.problem, exc.detail, headers=exc.headers, **exc.extra)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        problem = _BY_STATUS.get(status) or Problem(f"http-{status}", status, exc.name)
        # Keep headers such as Allow (405); the body is ours, so not its Content-Type.
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        detail = None
        if status == 413:  # refused by its Content-Length: say the bound it exceeds
            limit = request.max_content_length
            detail = f"the request body exceeds {limit} bytes" if limit else None
        return problem_response(problem, detail, headers=headers)

    @app.errorhandler(errors.ChronosealError)
    def _domain_error(exc: errors.ChronosealError) -> Response:
        problem, public = problem_for(exc)
        if problem.status >= 500 and problem is INTERNAL:
            log.error("%s: %s", problem.slug, exc, exc_info=exc)
        elif not public:
            log.warning("%s: %s", problem.slug, exc)
        return problem_response(problem, str(exc) if public else None, headers=_headers(exc),
                                **_extra(exc))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return problem_response(INTERNAL)


# --- batch results (h-client): an item's own problem, as a JSON object inside a 200 answer ---
def problem_object(exc: errors.ChronosealError) -> dict[str, Any]:
    """The problem+json body an error would get as a response, as an object (batch items)."""
    if isinstance(exc, ApiError):
        problem, detail, extra = exc.problem, exc.detail, exc.extra
    else:
        problem, public = problem_for(exc)
        detail, extra = (str(exc) if public else None), _extra(exc)
        if not public:
            log.warning("%s: %s", problem.slug, exc)
    return problem_body(problem, detail, **extra)
