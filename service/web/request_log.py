"""Request ids and the one log line per API request (it replaces gunicorn's access log).

`X-Request-Id` is taken from the client when it is bounded visible ASCII, otherwise a new one
is made; it is sent back on every response (problems and 404s too) and bound to every log line
made while the request is handled (service.logs.bind). The request line holds method, route
(the URL rule, not the path: no ids or query strings), status, duration_ms to the response
headers, request_id and, when the request registered or read one, receipt_id. Never headers,
never bodies.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, request

from service.logs import bind, note, unbind
from service.logs.context import current_fields

REQUEST_ID_HEADER = "X-Request-Id"
# Room for a UUID, a W3C trace id or a proxy's own id; bounds what a client adds to each line.
MAX_REQUEST_ID_CHARS = 128
# Visible ASCII only: no spaces, control characters or terminal escapes reach a log line.
_ACCEPTED_ID = re.compile(rf"[\x21-\x7e]{{1,{MAX_REQUEST_ID_CHARS}}}")
MAX_LOGGED_PATH_CHARS = 200  # an unrouted path (404) is logged, cut to this
# Probes ask every few seconds and a 503 from /readyz is an answer, not a fault (health.py logs
# why it is not ready): their lines are DEBUG.
PROBE_ROUTES = frozenset({"/healthz", "/readyz"})

log = logging.getLogger(__name__)
StartResponse = Callable[..., Any]


def request_id(header: str | None) -> str:
    """The client's id when it is 1-128 visible ASCII characters, else a new random one."""
    if header is not None and _ACCEPTED_ID.fullmatch(header):
        return header
    return os.urandom(16).hex()


class RequestLog:
    """WSGI middleware around the Flask app: binds the id, sets the header, logs the line."""

    def __init__(self, app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
                 ) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        started = time.perf_counter()
        rid = request_id(environ.get("HTTP_X_REQUEST_ID"))
        token = bind(request_id=rid)
        logged = False

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            nonlocal logged
            headers.append((REQUEST_ID_HEADER, rid))
            if not logged:
                logged = True
                self._line(environ, int(status[:3]), started)
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, start)
        except BaseException:
            if not logged:
                self._line(environ, 500, started)
            raise
        finally:
            unbind(token)

    def _line(self, environ: dict[str, Any], status: int, started: float) -> None:
        route = current_fields().get("route")
        level = (logging.DEBUG if route in PROBE_ROUTES
                 else logging.WARNING if status >= 500 else logging.INFO)
        if not log.isEnabledFor(level):  # once per request: build nothing that is not logged
            return
        method = environ.get("REQUEST_METHOD", "-")
        extra: dict[str, Any] = {"method": method, "status": status,
                                 "duration_ms": round((time.perf_counter() - started) * 1000, 2)}
        if route is None:
            extra["path"] = environ.get("PATH_INFO", "")[:MAX_LOGGED_PATH_CHARS]
        log.log(level, "%s %s %s", method, route or extra.get("path"), status, extra=extra)


def _note_route(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Route and receipt id of the matched URL, on every line of the request from here on."""
    rule = request.url_rule
    receipt_id = (values or {}).get("receipt_id")
    if receipt_id is not None:
        note(route=rule.rule if rule else None, receipt_id=receipt_id)
    elif rule is not None:
        note(route=rule.rule)


def install(app: Flask) -> None:
    """Request ids and request lines for `app`."""
    app.wsgi_app = RequestLog(app.wsgi_app)  # type: ignore[method-assign]
    app.url_value_preprocessor(_note_route)
