"""The webhook HTTP client against real servers: pinned address, bounded answer, deadlines."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from service.webhooks.errors import TooLargeError, TransportError
from service.webhooks.ssrf import Allowlist, check_url
from service.webhooks.transport import MAX_RESPONSE_BYTES, Timeouts, fetch, post
from tests.support.webhook_receiver import self_signed_tls, webhook_receiver

QUICK = Timeouts(connect_s=1.0, total_s=1.0)


@contextmanager
def serving(handle) -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            handle(self)

        do_GET = do_POST  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _target(port: int, path: str = "/hook"):
    return check_url(f"http://127.0.0.1:{port}{path}", Allowlist.parse(["127.0.0.1/32"]))


def test_the_checked_address_is_used_and_the_name_sent_as_host() -> None:
    # "receiver.invalid" cannot resolve anywhere: reaching the receiver proves no second lookup.
    with webhook_receiver() as rx:
        port = int(rx.url.rsplit(":", 1)[1].split("/")[0])
        target = check_url(f"http://receiver.invalid:{port}/hook?a=1",
                           Allowlist.parse(["receiver.invalid"]),
                           resolver=lambda host, p: ["127.0.0.1"])
        answer = post(target, {"webhook-id": "msg_1"}, b"{}", QUICK)
    assert answer.status == 204
    [request] = rx.requests
    assert request.headers["host"] == f"receiver.invalid:{port}"
    assert request.path == "/hook?a=1" and request.headers["webhook-id"] == "msg_1"


def test_only_the_first_kib_of_an_answer_is_read() -> None:
    def huge(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(500)
        handler.send_header("Content-Length", str(50 * 1024 * 1024))
        handler.end_headers()
        try:
            for _ in range(50 * 1024):
                handler.wfile.write(b"x" * 1024)
        except OSError:
            pass  # the client hung up after its few KiB, as it should

    with serving(huge) as port:
        started = time.monotonic()
        answer = post(_target(port), {}, b"{}", QUICK)
    assert answer.status == 500 and len(answer.body_head) == MAX_RESPONSE_BYTES
    assert time.monotonic() - started < 1.0


def test_a_receiver_slower_than_the_deadline_is_a_transport_error() -> None:
    def slow(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(2.5)
        handler.send_response(200)
        handler.end_headers()

    with serving(slow) as port:
        started = time.monotonic()
        with pytest.raises(TransportError):
            post(_target(port), {}, b"{}", Timeouts(connect_s=1.0, total_s=0.5))
    assert time.monotonic() - started < 2.0


def test_a_trickling_answer_stops_at_the_deadline() -> None:
    def trickle(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        try:
            for _ in range(100):
                handler.wfile.write(b"x")
                handler.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass

    with serving(trickle) as port:
        started = time.monotonic()
        with pytest.raises(TransportError, match="deadline"):
            fetch(_target(port), 10 * 1024 * 1024, Timeouts(connect_s=1.0, total_s=0.5))
    assert time.monotonic() - started < 2.0


def test_a_refused_connection_is_a_transport_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(TransportError):
            post(_target(port), {}, b"{}", QUICK)


def test_downloads_are_bounded() -> None:
    with webhook_receiver() as rx:
        rx.payload = b"\x89PNG" + b"x" * 5000
        port = int(rx.url.rsplit(":", 1)[1].split("/")[0])
        assert fetch(_target(port, "/a.png"), 10_000, QUICK) == rx.payload
        with pytest.raises(TooLargeError):
            fetch(_target(port, "/a.png"), 4096, QUICK)


def _https_target(name: str, port: int):
    return check_url(f"https://{name}:{port}/hook", Allowlist.parse([name]),
                     resolver=lambda host, p: ["127.0.0.1"])


def test_https_to_the_pinned_address_verifies_the_certificate_for_the_name(
        tmp_path, monkeypatch) -> None:
    cert, tls = self_signed_tls(tmp_path, "receiver.test")
    with webhook_receiver(tls=tls) as rx:
        port = int(rx.url.rsplit(":", 1)[1].split("/")[0])
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust this receiver only
        assert post(_https_target("receiver.test", port), {}, b"{}", QUICK).status == 204
        assert [r.headers["host"] for r in rx.requests] == [f"receiver.test:{port}"]
        # The same server reached under another name: its certificate does not match.
        with pytest.raises(TransportError):
            post(_https_target("other.test", port), {}, b"{}", QUICK)
        # Untrusted certificate: refused.
        monkeypatch.setenv("SSL_CERT_FILE", str(self_signed_tls(tmp_path, "x.test")[0]))
        with pytest.raises(TransportError):
            post(_https_target("receiver.test", port), {}, b"{}", QUICK)
    assert len(rx.requests) == 1


def test_an_allowlisted_ipv6_literal_is_reached_with_a_bracketed_host() -> None:
    class V6(ThreadingHTTPServer):
        address_family = socket.AF_INET6

    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            hosts.append(self.headers["Host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    try:
        server = V6(("::1", 0), Handler)
    except OSError as exc:  # a host without IPv6 loopback
        pytest.skip(f"no IPv6 loopback: {exc}")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        target = check_url(f"http://[::1]:{port}/x", Allowlist.parse(["::1/128"]))
        assert post(target, {}, b"{}", QUICK).status == 204
    finally:
        server.shutdown()
        server.server_close()
    assert hosts == [f"[::1]:{port}"]
