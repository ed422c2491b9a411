"""HTTP to checked targets: connect to the pinned address, no redirects, bounded time and size.

`post` sends a webhook and reads at most MAX_RESPONSE_BYTES of the answer; `fetch` downloads an
image up to a caller's limit. Both connect to `Target.address` (see ssrf.py), send the original
host in `Host` and, for https, verify the certificate for that host name (SNI too). Redirects
are never followed: a 3xx is just a non-2xx answer. The whole exchange has one deadline.
"""

from __future__ import annotations

import time
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


def _read(response: urllib3.BaseHTTPResponse, limit: int, deadline: float, *,
          truncate: bool) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise TransportError("deadline passed while reading the answer")
        # read1: whatever one socket read gives, so a trickle cannot hold us past the deadline
        # (each socket read is itself bounded by the timeout set on the connection).
        chunk = response.read1(min(READ_CHUNK_BYTES, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            if truncate:
                return b"".join(chunks)[:limit]
            raise TooLargeError(f"body exceeds {limit} bytes")


def _exchange(target: Target, method: str, headers: dict[str, str], body: bytes | None,
              limit: int, timeouts: Timeouts, *, truncate: bool) -> Answer:
    deadline = time.monotonic() + timeouts.total_s
    pool = _pool(target, timeouts)
    try:
        response = pool.urlopen(
            method, target.path, body=body,
            headers={"Host": target.host_header, "User-Agent": USER_AGENT, **headers},
            redirect=False, retries=False, preload_content=False, assert_same_host=False,
        )
        try:
            return Answer(response.status, _read(response, limit, deadline, truncate=truncate))
        finally:
            response.close()
    except Urllib3Error as exc:
        raise TransportError(f"{exc.__class__.__name__} talking to {target.host}") from exc
    except OSError as exc:
        raise TransportError(f"{exc.__class__.__name__} talking to {target.host}") from exc
    finally:
        pool.close()


def post(target: Target, headers: dict[str, str], body: bytes, timeouts: Timeouts) -> Answer:
    """POST `body` as JSON to the checked target; any HTTP answer is returned, never raised."""
    headers = {"Content-Type": "application/json", **headers}
    return _exchange(target, "POST", headers, body, MAX_RESPONSE_BYTES, timeouts, truncate=True)


def fetch(target: Target, limit: int, timeouts: Timeouts) -> bytes:
    """GET the target's body (2xx only), refusing more than `limit` bytes (TooLargeError)."""
    answer = _exchange(target, "GET", {"Accept": "image/*"}, None, limit, timeouts,
                       truncate=False)
    if not 200 <= answer.status < 300:
        raise TransportError(f"{target.host} answered HTTP {answer.status}")
    return answer.body_head
