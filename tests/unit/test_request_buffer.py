"""service/cli/request_buffer.py: a request is complete exactly when its framing ends, however
its bytes are split; what follows it is kept; oversized heads and bodies are refused."""

from __future__ import annotations

import pytest

from service.cli.request_buffer import MAX_HEAD_BYTES, SPOOL_MEMORY_BYTES, RequestBuffer

MAX_BODY = 1 << 20
LINE = 8190


def _feed(pieces: list[bytes]) -> tuple[RequestBuffer, list[bool]]:
    """Feed `pieces` in order; the buffer and whether it was complete after each one."""
    buffer = RequestBuffer(MAX_BODY, LINE)
    seen = []
    for piece in pieces:
        assert buffer.feed(piece) is None
        seen.append(buffer.complete)
    return buffer, seen


def _bytewise(data: bytes) -> list[bytes]:
    return [data[i:i + 1] for i in range(len(data))]


def _replayed(buffer: RequestBuffer) -> bytes:
    head, body, extra = buffer.replay()
    return head + (body.read() if body else b"") + extra


CHUNKED_BODY = b"5;name=v\r\nhello\r\n1A\r\n" + b"x" * 26 + b"\r\n0\r\nX-Sum: 1\r\n\r\n"
REQUESTS = {
    "no body": b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
    "length": b"POST /v1/verify HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world",
    "chunked": b"POST /v1/stamps HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED_BODY,
    "chunked, no trailer": (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"3\r\nabc\r\n0\r\n\r\n"),
}


@pytest.mark.parametrize("name", REQUESTS)
def test_complete_exactly_at_the_end_whatever_the_split(name: str) -> None:
    data = REQUESTS[name]
    for pieces in ([data], _bytewise(data), [data[:7], data[7:40], data[40:]]):
        buffer, seen = _feed([p for p in pieces if p])
        assert seen[-1] and not any(seen[:-1]), (name, pieces)
        assert _replayed(buffer) == data
        assert buffer.extra == b""


def test_bytes_after_the_request_are_kept_for_the_next_one() -> None:
    following = b"GET /next HTTP/1.1\r\n\r\n"
    for name, data in REQUESTS.items():
        buffer, seen = _feed([data + following])
        assert seen == [True], name
        assert buffer.extra == following
        assert _replayed(buffer) == data + following


def test_a_large_body_is_spooled_to_disk_and_replayed_whole() -> None:
    body = bytes(range(256)) * (SPOOL_MEMORY_BYTES // 256 * 3)
    data = b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    buffer, _ = _feed([data[i:i + 65536] for i in range(0, len(data), 65536)])
    assert buffer.complete and buffer.body is not None
    assert buffer.body._rolled  # type: ignore[attr-defined]  # on disk, not in memory
    assert _replayed(buffer) == data
    buffer.close()


def test_expect_continue_is_answered_here_and_dropped_from_the_head() -> None:
    buffer, seen = _feed([b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"])
    assert seen == [False] and buffer.wants_continue
    assert b"expect" not in bytes(buffer.head).lower()
    assert buffer.feed(b"ok") is None and buffer.complete


@pytest.mark.parametrize("head", [
    b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
])
def test_framing_gunicorn_refuses_is_handed_over_at_its_head(head: bytes) -> None:
    _, seen = _feed([head])
    assert seen == [True]


def test_a_bad_chunk_size_is_handed_over_for_gunicorn_to_refuse() -> None:
    _, seen = _feed([b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"])
    assert seen == [True]


@pytest.mark.parametrize(("data", "status"), [
    (b"GET /" + b"a" * (LINE + 10), 414),
    (b"GET / HTTP/1.1\r\nX: " + b"b" * MAX_HEAD_BYTES, 431),
    (b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1), 413),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % (MAX_BODY + 1)
     + b"x" * (MAX_BODY + 1), 413),
])
def test_oversized_requests_are_refused(data: bytes, status: int) -> None:
    refusal = RequestBuffer(MAX_BODY, LINE).feed(data)
    assert refusal is not None and refusal.status == status


def test_empty_lines_before_the_request_line_are_skipped() -> None:
    buffer, seen = _feed(_bytewise(b"\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"))
    assert seen[-1] and not any(seen[:-1])
    assert bytes(buffer.head) == b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
