"""hash_stream: exact digests, bounded memory, the upload limit, spooling."""

from __future__ import annotations

import hashlib
import io
import tempfile
import tracemalloc

import pytest

from service.errors import ChronosealError, UploadTooLargeError
from service.evidence.hashing import CHUNK_SIZE, HEAD_SIZE, hash_stream

MiB = 1024 * 1024


class GeneratedStream:
    """A read(n) stream over `total` pseudo-random bytes produced on demand, never held whole."""

    def __init__(self, total: int, block: int = 1 << 16) -> None:
        self.total, self.sent, self.block = total, 0, block
        self.pattern = hashlib.sha256(b"seed").digest() * (block // 32)
        self.largest_request = 0

    def read(self, n: int = -1) -> bytes:
        self.largest_request = max(self.largest_request, n)
        n = min(n if n >= 0 else self.block, self.block, self.total - self.sent)
        out = self.pattern[:n]
        self.sent += n
        return out

    def expected_digest(self) -> bytes:
        h, left = hashlib.sha256(), self.total
        while left:
            n = min(self.block, left)
            h.update(self.pattern[:n])
            left -= n
        return h.digest()


def test_digest_size_and_head_match_the_bytes() -> None:
    data = bytes(range(256)) * 1000
    result = hash_stream(io.BytesIO(data), limit=len(data))
    assert result.sha256 == hashlib.sha256(data).digest()
    assert result.size == len(data)
    assert result.head == data[:HEAD_SIZE]


def test_empty_stream() -> None:
    result = hash_stream(io.BytesIO(b""), limit=10)
    assert (result.sha256, result.size, result.head) == (hashlib.sha256().digest(), 0, b"")


def test_exactly_the_limit_is_accepted_one_more_byte_is_not() -> None:
    assert hash_stream(io.BytesIO(b"x" * 100), limit=100).size == 100
    with pytest.raises(UploadTooLargeError) as info:
        hash_stream(io.BytesIO(b"x" * 101), limit=100)
    assert isinstance(info.value, ChronosealError)
    assert info.value.limit == 100


def test_oversized_stream_is_abandoned_after_limit_plus_one_byte() -> None:
    stream = GeneratedStream(60 * MiB)
    with pytest.raises(UploadTooLargeError):
        hash_stream(stream, limit=1 * MiB)
    assert stream.sent == 1 * MiB + 1


def test_big_stream_under_the_limit_hashes_in_bounded_memory() -> None:
    stream = GeneratedStream(60 * MiB)
    tracemalloc.start()
    try:
        result = hash_stream(stream, limit=64 * MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.size == 60 * MiB
    assert result.sha256 == stream.expected_digest()
    assert peak < 1 * MiB  # a few chunks, not the 60 MiB
    assert stream.largest_request <= CHUNK_SIZE


def test_small_chunks_and_short_reads_give_the_same_digest() -> None:
    data = b"chronoseal" * 5000
    assert hash_stream(io.BytesIO(data), limit=10**6, chunk_size=7).sha256 == (
        hashlib.sha256(data).digest()
    )


def test_spool_receives_every_byte_and_is_rewound() -> None:
    data = b"\x89PNG\r\n\x1a\n" + b"z" * 300_000
    with tempfile.SpooledTemporaryFile(max_size=64 * 1024) as spool:
        result = hash_stream(io.BytesIO(data), limit=len(data), spool=spool)
        assert spool.tell() == 0
        assert spool.read() == data
    assert result.sha256 == hashlib.sha256(data).digest()


@pytest.mark.parametrize(("limit", "chunk_size"), [(-1, 10), (10, 0)])
def test_nonsense_parameters_are_rejected(limit: int, chunk_size: int) -> None:
    with pytest.raises(ValueError):
        hash_stream(io.BytesIO(b"x"), limit=limit, chunk_size=chunk_size)
