"""`chronoseal serve` under slow clients (issue 11, section 1): 200 connections trickling a head
or a body a byte at a time hold no gunicorn thread, so /healthz and uploads from other clients
are served meanwhile; the slow ones get a 408 problem+json; gunicorn's own refusals (400, 414,
431) are problem+json; pipelined, chunked and `Expect: 100-continue` requests still work."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from service.runtime.redis_server import free_port
from tests.e2e.conftest import REDIS_URL
from tests.support.images import png_bytes

REPO = Path(__file__).resolve().parents[2]
CLI = "import sys; from service.cli import main; sys.exit(main(sys.argv[1:]))"
START_TIMEOUT_S = 30  # migrations, then gunicorn forks two workers; slow on a busy machine
SLOW_CONNECTIONS = 200  # the figure
TRICKLE_S = 0.2  # each slow connection sends a byte this often
# The issue: "0 of 10 health checks answered within 3 s" before; a probe must beat that bound
# (the p99 < 1 s figure is bench/abuse.py's, on a machine not shared with the test suite).
PROBE_TIMEOUT_S = 3.0
# Slow ones are cut off after this (default 10 s): long enough for the probes, short for a test.
REQUEST_TIMEOUT_S = 6
REFUSAL_WAIT_S = REQUEST_TIMEOUT_S + 15  # the sweep runs twice a second; a busy machine
PROBLEM = "application/problem+json"


@dataclass
class Server:
    base: str
    port: int
    auth: dict[str, str]
    log: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("slow")
    env = {**os.environ, "PYTHONPATH": str(REPO), "CHRONOSEAL_DATA_DIR": str(tmp / "data"),
           "CHRONOSEAL_QUEUE": f"test-slow-{os.getpid()}", "REDIS_URL": REDIS_URL,
           "CHRONOSEAL_CONFIG": str(tmp / "absent.toml"),
           "CHRONOSEAL_API_REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S)}
    env.pop("DATABASE_URL", None)
    # `keys` creates no database: the schema first, as a deploy does (`db upgrade`).
    subprocess.run([sys.executable, "-c", CLI, "db", "upgrade"], env=env, check=True, cwd=tmp,
                   capture_output=True)
    created = subprocess.run([sys.executable, "-c", CLI, "keys", "create", "--name", "slow"],
                             env=env, capture_output=True, text=True, check=True, cwd=tmp)
    port = free_port()
    log = tmp / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-c", CLI, "serve", "--port", str(port),
                                    "--workers", "2"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, cwd=tmp)
    # A stamping worker, so /healthz is 200 (it is 503 while none heartbeats).
    with (tmp / "worker.log").open("wb") as out:
        worker = subprocess.Popen([sys.executable, "-c", CLI, "worker"], env=env, stdout=out,
                                  stderr=subprocess.STDOUT, cwd=tmp)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None, log.read_text()
            assert worker.poll() is None, (tmp / "worker.log").read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield Server(base, port, {"Authorization": f"Bearer {created.stdout.split()[-1]}"}, log)
    finally:
        for child in (process, worker):
            child.send_signal(signal.SIGTERM)
        for child in (process, worker):
            child.wait(timeout=30)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setblocking(False)
    return sock


class Trickle:
    """Slow connections: even ones trickle a head, odd ones a POST /v1/verify body."""

    HEAD = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"p" * 4096
    BODY_HEAD = b"POST /v1/verify HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n"

    def __init__(self, port: int, count: int) -> None:
        self.socks = [_connect(port) for _ in range(count)]
        for sock in self.socks[1::2]:
            sock.send(self.BODY_HEAD)
        self.answers: dict[int, bytes] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        sent = 0
        while not self.stopping.wait(TRICKLE_S):
            for i, sock in enumerate(self.socks):
                if i in self.answers:
                    continue
                try:
                    self.answers[i] = sock.recv(65536)  # the server answered (or closed)
                    continue
                except BlockingIOError:
                    pass
                except OSError:
                    self.answers[i] = b""
                    continue
                payload = self.HEAD if i % 2 == 0 else b" " * 100000
                try:
                    sock.send(payload[sent % len(payload):][:1])
                except OSError:
                    self.answers[i] = b""
            sent += 1

    def close(self) -> None:
        self.stopping.set()
        self.thread.join()
        for sock in self.socks:
            sock.close()


def test_slow_clients_hold_no_thread_and_get_408(server: Server) -> None:
    trickle = Trickle(server.port, SLOW_CONNECTIONS)
    try:
        image = png_bytes(32, 32)
        for i in range(10):  # other clients, each on its own new connection
            started = time.monotonic()
            health = requests.get(f"{server.base}/healthz", timeout=PROBE_TIMEOUT_S)
            assert health.status_code == 200
            posted = requests.post(f"{server.base}/v1/stamps", headers=server.auth,
                                   timeout=PROBE_TIMEOUT_S,
                                   files={"image": (f"{i}.png", image + bytes([i]), "image/png")})
            assert posted.status_code == 202, posted.text
            assert time.monotonic() - started < 2 * PROBE_TIMEOUT_S
        assert len(trickle.answers) < SLOW_CONNECTIONS // 2, "slow ones were cut off too early"
        deadline = time.monotonic() + REFUSAL_WAIT_S
        while len(trickle.answers) < SLOW_CONNECTIONS:
            assert time.monotonic() < deadline, f"{len(trickle.answers)} slow ones answered"
            time.sleep(0.2)
    finally:
        trickle.close()
    for kind, first in (("head", 0), ("body", 1)):
        answers = [trickle.answers[i] for i in range(first, SLOW_CONNECTIONS, 2)]
        answered = [a for a in answers if a]
        assert len(answered) > len(answers) // 2, kind  # most read their 408 before the FIN
        for answer in answered:
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408 "), (kind, head)
            assert f"Content-Type: {PROBLEM}".encode() in head
            assert json.loads(body)["type"] == "urn:chronoseal:problem:request-timeout"


def _raw(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send `data` on a new connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(("request_bytes", "status", "slug"), [
    (b"NOT A REQUEST\r\n\r\n", 400, "bad-request"),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414, "uri-too-long"),
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n",
     431, "header-fields-too-large"),
    (b"GET / HTTP/1.1\r\nX-Big: " + b"b" * 70000 + b"\r\n\r\n", 431, "header-fields-too-large"),
    (b"POST /v1/verify HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999\r\n\r\n", 413,
     "payload-too-large"),
    (b"POST /v1/verify HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 400,
     "bad-request"),  # a body with no known end
])
def test_the_servers_own_refusals_are_problem_json(server: Server, request_bytes: bytes,
                                                     status: int, slug: str) -> None:
    head, _, body = _raw(server.port, request_bytes).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status), head
    assert f"Content-Type: {PROBLEM}".encode() in head, head
    problem = json.loads(body)
    assert (problem["type"], problem["status"]) == (f"urn:chronoseal:problem:{slug}", status)


def test_pipelined_chunked_and_expect_continue_requests_are_served(server: Server) -> None:
    digest = "0" * 64
    verify = json.dumps({"sha256": digest, "receipt_id": "rcp_unknown"}).encode()
    chunked = b"%x;ext=1\r\n%s\r\n0\r\nX-Trailer: t\r\n\r\n" % (len(verify), verify)
    pipelined = (b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
                 b"POST /v1/verify HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n" + chunked +
                 b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    answer = _raw(server.port, pipelined)
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", answer) == [b"200", b"404", b"200"], answer
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/verify HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                     b"Expect: 100-continue\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(verify))
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(verify)
        rest = b"".join(iter(lambda: sock.recv(65536), b""))
    assert rest.startswith(b"HTTP/1.1 404 ") and b"100 Continue" not in rest, rest


def test_clients_that_never_close_do_not_stall_the_server(server: Server) -> None:
    """After a `Connection: close` answer gunicorn's gthread lingered up to 2 s for the client's
    FIN on its event loop; 20 clients that never close would then stall everyone for ~20 s."""
    lingering = [socket.create_connection(("127.0.0.1", server.port), timeout=5)
                 for _ in range(20)]
    try:
        for sock in lingering:
            sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")  # HTTP/1.0: answered, then closed
        started = time.monotonic()
        for _ in range(5):
            assert requests.get(f"{server.base}/healthz", timeout=PROBE_TIMEOUT_S).ok
        assert time.monotonic() - started < 2 * PROBE_TIMEOUT_S
        for sock in lingering:  # each got its answer and the server's FIN
            answer = b"".join(iter(lambda s=sock: s.recv(65536), b""))
            assert answer.startswith(b"HTTP/1.0 200 "), answer
    finally:
        for sock in lingering:
            sock.close()
