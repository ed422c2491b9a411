"""HTTP to checked targets: connect to the pinned address, no redirects, bounded time and size.

`post` sends a webhook and reads at most MAX_RESPONSE_BYTES of the answer; `download` streams
an image to a caller that bounds its size. Both connect to `Target.address` (see ssrf.py),
send the original host in `Host` and, for https, verify the certificate for that host name
(SNI too). Redirects are never followed: a 3xx is just a non-2xx answer. The whole exchange
has one deadline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from service.webhooks.errors import TooLargeError, TransportError
from service.webhooks.ssrf import Target

MAX_RESPONSE_BYTES = 4096  # a receiver's answer is only logged: a few KiB say why it failed
READ_CHUNK_BYTES = 64 * 1024  # image downloads are read in chunks this big, checking limits
USER_AGENT = "Chronoseal-Webhooks/1"


@dataclass(frozen=True)
class Timeouts:
    """Connect timeout, and the deadline of the whole exchange (both seconds)."""

    connect_s: float
    total_s: float


@dataclass(frozen=True)
class Answer:
    """What a receiver answered: status and the first MAX_RESPONSE_BYTES of its body."""

    status: int
    body_head: bytes


def _pool(target: Target, timeouts: Timeouts) -> urllib3.HTTPConnectionPool:
    timeout = urllib3.Timeout(connect=timeouts.connect_s, read=timeouts.total_s)
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            target.address, target.port, timeout=timeout, retries=False, maxsize=1,
            cert_reqs="CERT_REQUIRED", server_hostname=target.host, assert_hostname=target.host,
        )
    return urllib3.HTTPConnectionPool(target.address, target.port, timeout=timeout,
                                      retries=False, maxsize=1)


def _read_head(response: urllib3.BaseHTTPResponse, limit: int, deadline: float) -> bytes:
    """The first `limit` bytes of the answer; the rest is not read."""
    body, size = _BodyStream(response, deadline), 0
    chunks: list[bytes] = []
    while size <= limit and (chunk := body.read(limit + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:limit]


@contextmanager
def _opened(target: Target, method: str, headers: dict[str, str], body: bytes | None,
            timeouts: Timeouts) -> Iterator[tuple[urllib3.BaseHTTPResponse, float]]:
    """The response (body not read yet) and the exchange's deadline; transport errors raised
    while it is open, reading included, become TransportError."""
    deadline = time.monotonic() + timeouts.total_s
    pool = _pool(target, timeouts)
    try:
        response = pool.urlopen(
            method, target.path, body=body,
            headers={"Host": target.host_header, "User-Agent": USER_AGENT, **headers},
            redirect=False, retries=False, preload_content=False, assert_same_host=False,
        )
        try:
            yield response, deadline
        finally:
            response.close()
    except (Urllib3Error, OSError) as exc:
        raise TransportError(f"{exc.__class__.__name__} talking to {target.host}") from exc
    finally:
        pool.close()


def post(target: Target, headers: dict[str, str], body: bytes, timeouts: Timeouts) -> Answer:
    """POST `body` as JSON to the checked target; any HTTP answer is returned, never raised."""
    headers = {"Content-Type": "application/json", **headers}
    with _opened(target, "POST", headers, body, timeouts) as (response, deadline):
        return Answer(response.status, _read_head(response, MAX_RESPONSE_BYTES, deadline))


class _BodyStream:
    """A response body as a stream: one socket read per `read`, none past the deadline."""

    def __init__(self, response: urllib3.BaseHTTPResponse, deadline: float) -> None:
        self._response = response
        self._deadline = deadline

    def read(self, n: int = READ_CHUNK_BYTES, /) -> bytes:
        # read1: whatever one socket read gives, so a trickle cannot hold us past the deadline
        # (each socket read is itself bounded by the timeout set on the connection).
        if time.monotonic() > self._deadline:
            raise TransportError("deadline passed while reading the answer")
        return self._response.read1(min(n if n > 0 else READ_CHUNK_BYTES, READ_CHUNK_BYTES))


@contextmanager
def download(target: Target, timeouts: Timeouts, *, accept: str = "image/*"
             ) -> Iterator[_BodyStream]:
    """GET the checked target (2xx only) and stream its body; the reader bounds its size."""
    with _opened(target, "GET", {"Accept": accept}, None, timeouts) as (response, deadline):
        if not 200 <= response.status < 300:
            raise TransportError(f"{target.host} answered HTTP {response.status}")
        yield _BodyStream(response, deadline)


def fetch(target: Target, limit: int, timeouts: Timeouts, *, accept: str = "image/*") -> bytes:
    """GET the target's body (2xx only) into memory, refusing more than `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    with download(target, timeouts, accept=accept) as body:
        while chunk := body.read(min(READ_CHUNK_BYTES, limit + 1 - size)):
            size += len(chunk)
            if size > limit:
                raise TooLargeError(f"body exceeds {limit} bytes")
            chunks.append(chunk)
    return b"".join(chunks)
