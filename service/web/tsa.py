"""The built-in TSA over HTTP (RFC 3161 section 3.4) as a plain WSGI app.

    POST /       application/timestamp-query -> 200 application/timestamp-reply
    GET  /certs  the PEM chain, TSA certificate first, root last
    GET  /crl    the root's DER CRL (revoked TSA certificates), the TSA certificate's CRL DP

Plain WSGI rather than Flask: this path is hot (see bench/tsa.py) and needs no routing. The app
uses PATH_INFO only, so another server can mount it under a prefix (e.g. werkzeug's
DispatcherMiddleware at /tsa). `serve_in_thread` runs it for tests and in-process use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from service.timestamping.authority import TimeStampAuthority
from service.web import problems

# A TimeStampReq is 50-150 octets (a SHA-512 imprint, a nonce, a policy OID); 16 KiB leaves
# room for any extension while bounding what one request can make us buffer and parse.
MAX_QUERY_BYTES = 16 * 1024
QUERY_MEDIA_TYPE = "application/timestamp-query"
REPLY_MEDIA_TYPE = "application/timestamp-reply"
PEM_CHAIN_MEDIA_TYPE = "application/pem-certificate-chain"
CRL_MEDIA_TYPE = "application/pkix-crl"  # RFC 5280 section 4.2.1.13 / RFC 2585
CRL_PATH = "/crl"
SHUTDOWN_POLL_S = 0.05  # serve_in_thread: how often the loop checks for stop(); tests stop a lot

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


class TSAApp:
    """WSGI callable answering RFC 3161 queries with one TimeStampAuthority."""

    def __init__(self, authority: TimeStampAuthority) -> None:
        self.authority = authority

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/":
            if method != "POST":
                return self._problem(environ, start_response, problems.METHOD_NOT_ALLOWED)
            return self._stamp(environ, start_response)
        if path == "/certs":
            if method not in ("GET", "HEAD"):
                return self._problem(environ, start_response, problems.METHOD_NOT_ALLOWED)
            return _send(start_response, PEM_CHAIN_MEDIA_TYPE, self.authority.certs_pem())
        if path == CRL_PATH:
            if method not in ("GET", "HEAD"):
                return self._problem(environ, start_response, problems.METHOD_NOT_ALLOWED)
            crl = self.authority.crl_der()
            if crl is None:
                return self._problem(environ, start_response, problems.NOT_FOUND,
                                     "this TSA's root key is not here: it publishes no CRL")
            return _send(start_response, CRL_MEDIA_TYPE, crl)
        return self._problem(environ, start_response, problems.NOT_FOUND)

    def _stamp(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        media_type = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if media_type != QUERY_MEDIA_TYPE:
            return self._problem(environ, start_response, problems.UNSUPPORTED_MEDIA_TYPE,
                                 f"send {QUERY_MEDIA_TYPE}")
        body = _read_body(environ)
        if body is None:
            return self._problem(environ, start_response, problems.PAYLOAD_TOO_LARGE,
                                 f"a timestamp query is at most {MAX_QUERY_BYTES} bytes")
        # Malformed queries are answered by the authority as RFC 3161 rejections (HTTP 200).
        return _send(start_response, REPLY_MEDIA_TYPE, self.authority.respond(body))

    @staticmethod
    def _problem(environ: Environ, start_response: StartResponse, problem: problems.Problem,
                 detail: str | None = None) -> Iterable[bytes]:
        response = problems.problem_response(problem, detail)
        if problem is problems.METHOD_NOT_ALLOWED:
            response.headers["Allow"] = "GET, HEAD" if environ.get("PATH_INFO") in (
                "/certs", CRL_PATH) else "POST"
        return response(environ, start_response)


def _read_body(environ: Environ) -> bytes | None:
    """The request body, or None when it exceeds MAX_QUERY_BYTES (never reads more than that)."""
    stream = environ["wsgi.input"]
    length_text = environ.get("CONTENT_LENGTH") or ""
    if length_text.strip():
        try:
            length = int(length_text)
        except ValueError:
            return b""  # an unusable length: the authority answers badDataFormat
        return None if length > MAX_QUERY_BYTES else stream.read(max(length, 0))
    if not environ.get("wsgi.input_terminated"):
        return b""  # WSGI: without a length and a terminated stream there is no body to read
    body: bytes = stream.read(MAX_QUERY_BYTES + 1)  # chunked: read one past the limit to see
    return None if len(body) > MAX_QUERY_BYTES else body


def _send(start_response: StartResponse, media_type: str, body: bytes) -> list[bytes]:
    start_response("200 OK", [("Content-Type", media_type), ("Content-Length", str(len(body))),
                              ("Cache-Control", "no-store")])
    return [body]


def create_app(authority: TimeStampAuthority) -> TSAApp:
    """The WSGI app for `authority`; mount it anywhere or run it with any WSGI server."""
    return TSAApp(authority)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """Tests and the bench make thousands of requests; one log line each is noise."""


@dataclass
class RunningServer:
    """A WSGI server running in a daemon thread; `url` ends without a slash."""

    url: str
    server: BaseWSGIServer
    thread: threading.Thread

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_in_thread(app: Callable[..., Iterable[bytes]], host: str = "127.0.0.1",
                    port: int = 0) -> RunningServer:
    """Serve `app` with werkzeug's threaded HTTP/1.1 server in a thread; port 0 picks a free one."""
    server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, args=(SHUTDOWN_POLL_S,),
                              name="tsa-http", daemon=True)
    thread.start()
    return RunningServer(f"http://{host}:{server.server_port}", server, thread)
