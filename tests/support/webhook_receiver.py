"""A real HTTP receiver for webhook tests: records every request, answers from a script.

    with webhook_receiver(statuses=[500, 500, 204]) as rx:   # then 204 for ever
        ... rx.url ... rx.requests (method, path, headers, body)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 10 * 1024 * 1024  # the test receiver reads at most this much


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    statuses: list[int]
    requests: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    payload: bytes = b""  # served to GET requests (image downloads)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_status(self) -> int:
        with self.lock:
            status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
            self.answers.append(status)
            return status


@contextmanager
def webhook_receiver(statuses: list[int] | None = None, host: str = "127.0.0.1"
                     ) -> Iterator[Receiver]:
    """Serve on a free loopback port until the block ends."""
    receiver = Receiver(url="", statuses=list(statuses or [204]))

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
            body = self.rfile.read(length) if length else b""
            with receiver.lock:
                receiver.requests.append(Received(self.command, self.path,
                                                  {k.lower(): v for k, v in self.headers.items()},
                                                  body))

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            self._record()
            status = receiver.next_status()
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def do_GET(self) -> None:  # noqa: N802
            self._record()
            self.send_response(200)
            self.send_header("Content-Length", str(len(receiver.payload)))
            self.end_headers()
            self.wfile.write(receiver.payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    receiver.url = f"http://{host}:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
