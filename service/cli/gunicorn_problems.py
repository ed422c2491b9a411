"""The HTTP server's own answers (gunicorn's refusals, the worker's 408/413/414/431) as RFC 9457
problem+json, with the types of service/web/problems.py, written as raw bytes on a socket."""

from __future__ import annotations

from http import HTTPStatus

from gunicorn.http import errors as http_errors

from service.web.problems import problem_bytes, problem_for_status

# gunicorn's parse errors and the status its own handle_error gives each; the first match wins.
_STATUS_OF: tuple[tuple[type[Exception], int], ...] = (
    (http_errors.LimitRequestLine, 414),
    (http_errors.LimitRequestHeaders, 431),
    (http_errors.ExpectationFailed, 417),
    (http_errors.UnsupportedTransferCoding, 501),
    (http_errors.ForbiddenProxyRequest, 403),
    (http_errors.ConfigurationProblem, 500),
    (http_errors.InvalidResponseHeader, 500),
    (http_errors.InvalidResponseHeaderName, 500),
    (http_errors.ParseException, 400),
)


def parse_error_status(exc: Exception) -> int:
    """The status gunicorn gives `exc` (workers/base.py handle_error), 500 for the app's own."""
    return next((status for cls, status in _STATUS_OF if isinstance(exc, cls)), 500)


def error_bytes(status: int, detail: str | None) -> bytes:
    """A whole HTTP/1.1 response: the problem of `status`, then the connection closes."""
    problem = problem_for_status(status)
    body = problem_bytes(problem, detail)
    head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nConnection: close\r\n"
            f"Content-Type: application/problem+json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1", "replace") + body
