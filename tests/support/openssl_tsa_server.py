"""A real HTTP TSA for tests: each query is answered by `openssl ts -reply` of an OpenSSLPKI.

`serve_openssl_tsa(pki)` yields the URL of a ThreadingHTTPServer running in a thread. `mode`
makes it misbehave in one specific way, so each client failure has a real cause:

    None            honest answers
    "garbage"       200 application/timestamp-reply with random bytes
    "wrong_nonce"   the query's nonce is changed before OpenSSL sees it
    "other_imprint" the query's imprint is replaced by another digest
    "reject"        the query asks for an unknown policy: OpenSSL's own rejection (unacceptedPolicy)
    "http500"       HTTP 500
    "slow"          answers after `delay` seconds

`hook(query_der) -> Answer | None` replaces the mode entirely; returning None falls back to the
honest answer. `queries` and `headers`, when given, collect every query body and the request
headers received.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import rfc3161ng
from pyasn1.codec.der import decoder, encoder

from tests.support.openssl_pki import OpenSSLPKI

MODES = {None, "garbage", "wrong_nonce", "other_imprint", "reject", "http500", "slow"}
UNKNOWN_POLICY = "1.3.6.1.4.1.99999.9.9"  # not in the PKI's openssl.cnf: OpenSSL rejects it
MAX_QUERY_BYTES = 64 * 1024  # test queries are ~100 bytes


@dataclass
class Answer:
    """What the server sends back."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(
        default_factory=lambda: {"Content-Type": "application/timestamp-reply"}
    )


Hook = Callable[[bytes], Answer | None]


def _rewrite_query(query_der: bytes, mode: str) -> bytes:
    """Change one field of a TimeStampReq, so that OpenSSL signs something we did not ask."""
    req, _ = decoder.decode(query_der, asn1Spec=rfc3161ng.TimeStampReq())
    if mode == "wrong_nonce":
        req["nonce"] = int(req["nonce"]) + 1 if req["nonce"].isValue else 42
    elif mode == "other_imprint":
        old = bytes(req["messageImprint"]["hashedMessage"])
        req["messageImprint"]["hashedMessage"] = bytes(b ^ 0xFF for b in old)
    elif mode == "reject":
        req["reqPolicy"] = UNKNOWN_POLICY
    return encoder.encode(req)


def _answer(pki: OpenSSLPKI, mode: str | None, query: bytes) -> Answer:
    if mode == "garbage":
        return Answer(os.urandom(300))
    if mode == "http500":
        return Answer(b"internal error", 500, {"Content-Type": "text/plain"})
    if mode in ("wrong_nonce", "other_imprint", "reject"):
        query = _rewrite_query(query, mode)
    return Answer(pki.reply(query))


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a slow handler must not hold up shutdown

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up early (timeouts, size limits) are expected here, not errors."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@contextmanager
def serve_openssl_tsa(
    pki: OpenSSLPKI,
    *,
    mode: str | None = None,
    hook: Hook | None = None,
    delay: float = 2.0,
    queries: list[bytes] | None = None,
    headers: list[dict[str, str]] | None = None,
) -> Iterator[str]:
    """Serve `pki` as an RFC 3161 TSA on 127.0.0.1 (free port); yield its URL."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; one of {sorted(map(str, MODES))}")
    stopping = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            query = self.rfile.read(min(length, MAX_QUERY_BYTES))
            if queries is not None:
                queries.append(query)
            if headers is not None:
                headers.append(dict(self.headers.items()))
            if mode == "slow" and stopping.wait(delay):
                return  # shutting down: drop the connection
            answer = (hook(query) if hook else None) or _answer(pki, mode, query)
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if answer.headers.get("Connection") == "close":
                self.close_connection = True  # no length: the body ends when the socket closes
            else:
                self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: pytest shows failures, not every request."""

    server = _Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="openssl-tsa", daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
