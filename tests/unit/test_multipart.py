"""The streaming multipart parser: any chunking of the body gives the same parts."""

from __future__ import annotations

import hashlib
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.errors import UploadTooLargeError
from service.web.multipart import FieldTooLargeError, FormError, parse_form

BOUNDARY = b"----chronoseal-test-boundary"


Part = tuple[str, bytes, str | None]


def body(*parts: Part, preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    out = preamble
    for name, data, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += b"--" + BOUNDARY + b"\r\nContent-Disposition: " + disposition.encode()
        out += b"\r\nContent-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
    return out + b"--" + BOUNDARY + b"--\r\n" + epilogue


class Chunked(io.RawIOBase):
    """A stream that hands out at most the given sizes per read, cycling."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self.data, self.sizes, self.pos, self.i = data, sizes, 0, 0

    def read(self, n: int = -1) -> bytes:
        size = min(n if n >= 0 else len(self.data), self.sizes[self.i % len(self.sizes)])
        self.i += 1
        out = self.data[self.pos : self.pos + size]
        self.pos += len(out)
        return out


def parse(raw: bytes, sizes: list[int] | None = None, limit: int = 10**6):
    stream = Chunked(raw, sizes) if sizes else io.BytesIO(raw)
    return parse_form(stream, BOUNDARY, file_field="image",
                      text_fields=frozenset({"metadata", "external_id"}), limit=limit)


# Data that contains near-delimiters: CRLF, dashes, a boundary prefix without its CRLF.
TRICKY = b"\r\n--" + BOUNDARY[:-1] + b"x\r\n--\r\nx--" + BOUNDARY + b"not after a line break"


@pytest.mark.parametrize("size", [1, 2, 3, 7, len(BOUNDARY) + 3, 64, 65536])
def test_parts_survive_any_chunk_size(size: int) -> None:
    image = TRICKY * 50 + bytes(range(256))
    form = parse(body(("metadata", b'{"prompt": "a, b"}', None), ("image", image, "a.png"),
                      preamble=b"ignored preamble\r\n", epilogue=b"ignored"), [size])
    assert form.fields == {"metadata": '{"prompt": "a, b"}'}
    assert form.file is not None and form.file.sha256 == hashlib.sha256(image).digest()
    assert form.file.size == len(image) and form.filename == "a.png"
    assert form.spool is not None and form.spool.read() == image


@settings(max_examples=150, deadline=None)
@given(image=st.binary(max_size=3000), sizes=st.lists(st.integers(1, 200), min_size=1, max_size=8))
def test_random_data_and_chunking_round_trip(image: bytes, sizes: list[int]) -> None:
    form = parse(body(("image", image, "x"), ("external_id", b"post-1", None)), sizes)
    assert form.file is not None and form.file.sha256 == hashlib.sha256(image).digest()
    assert form.fields == {"external_id": "post-1"}


def test_empty_form_and_missing_file() -> None:
    form = parse(body())
    assert form.file is None and form.fields == {}


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"no boundary anywhere", "no boundary"),
        (body(("image", b"abc", "a"))[:-20], "truncated"),
        (body(("image", b"abc", "a")).replace(b"Content-Disposition", b"X-Other"),
         "Content-Disposition"),
        (body(("other", b"abc", None)), "unexpected form part"),
        (body(("metadata", b"{}", None), ("metadata", b"{}", None)), "given twice"),
        (body(("metadata", b"\xff\xfe", None)), "not UTF-8"),
        (body(("metadata", b"{}", None)).replace(b"\r\n\r\n", b"\r\n" + b"X: y\r\n" * 3000, 1),
         "headers"),
    ],
)
def test_malformed_bodies_are_form_errors(raw: bytes, message: str) -> None:
    with pytest.raises(FormError, match=message):
        parse(raw)


@pytest.mark.parametrize("sizes", [[1 << 20], [65536], [7, 4096]])
def test_part_headers_over_the_limit_are_refused_however_they_are_read(sizes: list[int]) -> None:
    padded = body(("metadata", b"{}", None)).replace(
        b"\r\n\r\n", b"\r\nX-Pad: " + b"a" * (20 * 1024) + b"\r\n\r\n", 1)
    with pytest.raises(FormError, match="exceed 16384 bytes"):
        parse_form(Chunked(padded, sizes), BOUNDARY, file_field="image",
                   text_fields=frozenset({"metadata"}), limit=4096)
    just_fits = body(("metadata", b"{}", None)).replace(
        b"\r\n\r\n", b"\r\nX-Pad: " + b"a" * (15 * 1024) + b"\r\n\r\n", 1)
    form = parse_form(Chunked(just_fits, sizes), BOUNDARY, file_field="image",
                      text_fields=frozenset({"metadata"}), limit=4096)
    assert form.fields == {"metadata": "{}"}


def test_too_many_parts() -> None:
    raw = body(*[(f"f{i}", b"", None) for i in range(40)])
    with pytest.raises(FormError):
        parse_form(io.BytesIO(raw), BOUNDARY, file_field="image",
                   text_fields=frozenset(f"f{i}" for i in range(40)), limit=10)


def test_limits_on_fields_and_file() -> None:
    with pytest.raises(FieldTooLargeError):
        parse(body(("metadata", b"x" * (300 * 1024), None)))
    with pytest.raises(UploadTooLargeError):
        parse(body(("image", b"y" * 5000, "a")), limit=4096)
