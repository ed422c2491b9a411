"""gunicorn's gthread worker, made safe from slow clients; its own errors as problem+json.

The stock gthread worker hands a connection to a thread as soon as it is readable, and the
thread then blocks reading the rest of the head and body: forty clients sending a byte at a time
held all 2 x 4 threads of the API. Here the worker's event loop (one selector per process, which
gthread already runs) reads each request whole first (service/cli/request_buffer.py), with a
deadline for the head and a minimum pace for the body, and only a complete request reaches a
thread, which then reads it from memory or a spool file. Slow clients cost a connection slot
(worker_connections per process) and a few KiB, never a thread. gunicorn's own answers to bad
requests (400, 414, 431, ...) are RFC 9457 problem+json like the app's.
"""

from __future__ import annotations

import errno
import logging
import selectors
import socket
import time
from contextlib import suppress
from functools import partial
from typing import Any

from gunicorn import http as gunicorn_http
from gunicorn import util
from gunicorn.workers.gthread import TConn, ThreadWorker

from service.cli.gunicorn_problems import error_bytes, parse_error_status
from service.cli.request_buffer import CONTINUE, Refusal, Replay, RequestBuffer
from service.settings import load_settings

log = logging.getLogger(__name__)

# settings.api_request_timeout_s (T): a head (request line and headers) must arrive whole within
# T; clients send it in one packet, so only a slow or idle connection waits that long. A body may
# pause BODY_IDLE_FACTOR x T between bytes (a phone on a bad link), and must average at least
# MIN_BODY_BYTES_PER_S once T has passed: a 50 MiB upload at 1 Mbit/s passes easily.
BODY_IDLE_FACTOR = 3
MIN_BODY_BYTES_PER_S = 1024
RECV_BYTES = 256 * 1024  # one read of the event loop: large enough for a fast upload
DRAIN_BYTES = 1024 * 1024  # read before closing a refused connection; a client sends no more
SWEEP_EVERY_S = 0.5  # how often deadlines are checked
# Above anything the app accepts (an inbound image in base64 is 4/3 of it; /v1/verify adds a
# 4 MiB bundle): a larger declared body is refused before it is read.
BODY_SLACK_BYTES = 16 * 1024 * 1024


class BufferedConn(TConn):  # type: ignore[misc]
    """A connection whose next request is read by the event loop, then replayed to gunicorn."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.buffer: RequestBuffer | None = None
        self.source: Replay | None = None  # what the thread's parser reads
        self.started = 0.0
        self.last_data = 0.0

    def init(self) -> None:
        if self.source is None or self.source.used:
            super().init()
            return
        self.initialized = True
        self.sock.setblocking(True)
        self.source.used = True
        self.parser = gunicorn_http.get_parser(self.cfg, self.source, self.client)

    def close(self, graceful: bool = False) -> None:
        """Close without waiting: gthread's graceful close lingers up to 2 s for the client's FIN
        on the event loop's thread, which a client that never closes would stall for all."""
        if self.source is not None:
            self.source.rest()  # closes its spool file
            self.source = None
        if graceful:  # what the client sent is read first, so the kernel sends FIN, not RST
            self.sock.setblocking(False)
            _drain_nonblocking(self.sock)
            with suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)
        util.close(self.sock)

    def leftover(self) -> bytes:
        """Bytes read past the last request (pipelined), from the parser and the replay."""
        ahead = self.parser.unreader.take_buffered() if self.parser is not None else b""
        rest = self.source.rest() if self.source is not None else b""
        self.source = None
        return ahead + rest


class BufferingWorker(ThreadWorker):  # type: ignore[misc]
    """`worker_class` of config/gunicorn.conf.py: gthread, with whole requests handed over."""

    def init_process(self) -> None:
        settings = load_settings()
        self.max_body_bytes = 2 * settings.max_upload_bytes + BODY_SLACK_BYTES
        self.request_timeout_s = float(settings.api_request_timeout_s)
        self.buffering: set[BufferedConn] = set()
        self.next_sweep = 0.0
        super().init_process()

    def accept(self, listener: socket.socket) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = BufferedConn(self.cfg, client_sock, client_addr, listener.getsockname())
        self.start_buffering(conn, b"")

    def on_client_socket_readable(self, conn: BufferedConn, client: socket.socket) -> None:
        """A kept-alive connection has its next request coming: read it in the loop too."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self.start_buffering(conn, b"")

    def enqueue_req(self, conn: BufferedConn) -> None:
        """Only a complete request goes to a thread; read-ahead bytes start the next one."""
        if conn.source is not None and not conn.source.used:
            super().enqueue_req(conn)
            return
        self.start_buffering(conn, conn.leftover())

    def finish_request(self, conn: BufferedConn, fs: Any) -> None:
        """Bytes pipelined behind the request go back to the parser, which gthread then sees as
        read-ahead (and hands to enqueue_req, so to the loop) instead of waiting on the socket."""
        if conn.source is not None and conn.parser is not None:
            rest = conn.source.rest()
            if rest:
                conn.parser.unreader.unread(rest)
        super().finish_request(conn, fs)

    def start_buffering(self, conn: BufferedConn, data: bytes) -> None:
        conn.buffer = RequestBuffer(self.max_body_bytes, self.cfg.limit_request_line)
        conn.started = conn.last_data = time.monotonic()
        conn.sock.setblocking(False)
        if data:
            self._take(conn, data)
        if conn.buffer is not None:
            self.buffering.add(conn)
            self.poller.register(conn.sock, selectors.EVENT_READ,
                                 partial(self.on_buffer_readable, conn))

    def on_buffer_readable(self, conn: BufferedConn, client: socket.socket) -> None:
        try:
            data = client.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._drop(conn)
            return
        conn.last_data = time.monotonic()
        self._take(conn, data)

    def _take(self, conn: BufferedConn, data: bytes) -> None:
        """Feed `data`; a complete request goes to a thread, a refused one is answered."""
        buffer = conn.buffer
        assert buffer is not None
        refusal = buffer.feed(data)
        if refusal is not None:
            self._refuse(conn, refusal)
            return
        if buffer.wants_continue and not buffer.complete:
            buffer.wants_continue = False
            _send_quietly(conn.sock, CONTINUE)
        if not buffer.complete:
            return
        self._leave_loop(conn)
        conn.source = Replay(*buffer.replay())
        conn.buffer = None
        conn.data_ready = True  # gthread's own wait for a first byte is not needed
        super().enqueue_req(conn)

    def _refuse(self, conn: BufferedConn, refusal: Refusal) -> None:
        addr = conn.client[0] if isinstance(conn.client, tuple) else ""
        self.log.warning("Refused request from ip=%s: %s", addr, refusal.detail)
        _send_quietly(conn.sock, error_bytes(refusal.status, refusal.detail))
        self._drop(conn)

    def _leave_loop(self, conn: BufferedConn) -> None:
        if conn in self.buffering:
            self.buffering.discard(conn)
            with suppress(KeyError, ValueError, OSError):
                self.poller.unregister(conn.sock)

    def _drop(self, conn: BufferedConn) -> None:
        """Close a connection still in the loop: drain what it sent (so the kernel sends FIN,
        not RST, and the client reads our answer), then close."""
        self._leave_loop(conn)
        if conn.buffer is not None:
            conn.buffer.close()
            conn.buffer = None
        self.nr_conns -= 1
        conn.close(graceful=True)

    def murder_pending(self) -> None:
        """gthread calls this every loop turn: also time out slow heads and bodies."""
        super().murder_pending()
        if not self.alive:  # stopping: requests not yet whole are not waited for
            for conn in list(self.buffering):
                self._drop(conn)
            return
        now = time.monotonic()
        if now < self.next_sweep:
            return
        self.next_sweep = now + SWEEP_EVERY_S
        for conn in list(self.buffering):
            refusal = _too_slow(conn, now, self.request_timeout_s)
            if refusal is not None:
                self._refuse(conn, refusal)

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: Exception) -> None:
        """gunicorn's answer to a request it cannot parse, as problem+json instead of HTML."""
        status = parse_error_status(exc)
        if status >= 500:
            self.log.exception("Error handling request")
        else:
            self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
        try:
            util.write_nonblock(client, error_bytes(status, None))
        except Exception:  # noqa: BLE001 - the client may be gone; nothing else to do
            self.log.debug("Failed to send error message.")


def _too_slow(conn: BufferedConn, now: float, timeout_s: float) -> Refusal | None:
    buffer = conn.buffer
    if buffer is None:
        return None
    if not buffer.head_done:
        if now - conn.started > timeout_s:
            return Refusal(408, f"the request head did not arrive within {timeout_s:g} s")
        return None
    if now - conn.last_data > BODY_IDLE_FACTOR * timeout_s:
        return Refusal(408, f"the request body paused for over {BODY_IDLE_FACTOR * timeout_s:g} s")
    elapsed = now - conn.started
    if elapsed > timeout_s and buffer.body_bytes < MIN_BODY_BYTES_PER_S * (elapsed - timeout_s):
        return Refusal(408, f"the request body came slower than {MIN_BODY_BYTES_PER_S} B/s")
    return None


def _drain_nonblocking(sock: socket.socket) -> None:
    """Read and discard what the kernel holds for `sock` (at most DRAIN_BYTES), without waiting."""
    drained = 0
    with suppress(OSError):
        while drained < DRAIN_BYTES:
            data = sock.recv(RECV_BYTES)
            if not data:
                return
            drained += len(data)


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    """One non-blocking send of a small answer; a client that does not read it loses it."""
    with suppress(OSError):
        sock.send(data)

