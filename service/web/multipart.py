"""Streaming multipart/form-data: the image part is hashed as it arrives, never held in memory.

Werkzeug's own form parser spools files itself and keeps fields in memory; here a small parser
reads `request.stream` one chunk at a time, so memory stays at a few chunks whatever the
upload's size. The image bytes also go to a spooled temporary file (in
memory up to SPOOL_MEMORY_BYTES, then on disk) so the image probe can read them again.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from werkzeug.http import parse_options_header

from service.errors import InvalidInputError
from service.evidence.hashing import HashedUpload, hash_stream

READ_CHUNK_BYTES = 64 * 1024  # one socket read at a time
MAX_HEADER_BYTES = 16 * 1024  # one part's headers: a name, a filename and a content type
MAX_BOUNDARY_BYTES = 200  # RFC 2046 allows 70; some clients send longer ones
MAX_PARTS = 16  # image, metadata and four small fields fit with room; bounds parsing work
MAX_FIELD_BYTES = 256 * 1024  # text fields (metadata is the big one): generous for any prompt
SPOOL_MEMORY_BYTES = 1024 * 1024  # larger images spill to disk: memory stays bounded


class FormError(InvalidInputError):
    """The body is not acceptable multipart/form-data; the message is safe to show."""


class FieldTooLargeError(FormError):
    """A text field is longer than MAX_FIELD_BYTES."""


@dataclass
class StreamedForm:
    """Text fields by name, and the hashed file (with a rewound spool of its bytes)."""

    fields: dict[str, str] = field(default_factory=dict)
    file: HashedUpload | None = None
    filename: str | None = None
    spool: IO[bytes] | None = None

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()


class _Parser:
    """A minimal streaming multipart reader (RFC 7578 / RFC 2046 section 5.1.1).

    Parts are found with `bytes.find` on the delimiter CRLF "--" boundary; werkzeug's sans-IO
    decoder compiles two regular expressions per request (the boundary differs each time),
    which cost more than the rest of the parsing on a typical upload.
    """

    def __init__(self, stream: Any, boundary: bytes) -> None:
        if not boundary or len(boundary) > MAX_BOUNDARY_BYTES:
            raise FormError("bad multipart boundary")
        self._stream = stream
        self._delimiter = b"\r\n--" + boundary
        # A CRLF in front lets the first boundary, at the very start of the body, match too.
        self._buffer = bytearray(b"\r\n")
        self._eof = False

    def _fill(self) -> None:
        chunk = self._stream.read(READ_CHUNK_BYTES)
        if not chunk:
            self._eof = True
        self._buffer += chunk

    def _need(self, n: int) -> None:
        while len(self._buffer) < n and not self._eof:
            self._fill()
        if len(self._buffer) < n:
            raise FormError("truncated multipart body")

    def skip_preamble(self) -> None:
        """Discard everything up to the first delimiter (memory stays at a chunk or two)."""
        keep = len(self._delimiter) - 1
        while (index := self._buffer.find(self._delimiter)) < 0:
            if self._eof:
                raise FormError("malformed multipart body: no boundary")
            del self._buffer[: max(0, len(self._buffer) - keep)]
            self._fill()
        del self._buffer[: index + len(self._delimiter)]

    def next_part(self) -> dict[str, str] | None:
        """After a delimiter: the next part's Content-Disposition parameters, or None at the end."""
        self._need(2)
        if self._buffer[:2] == b"--":
            return None  # the close delimiter; the epilogue is ignored
        while (end := self._buffer.find(b"\r\n\r\n", 0, MAX_HEADER_BYTES + 4)) < 0:
            if len(self._buffer) > MAX_HEADER_BYTES:  # however many reads brought them
                raise FormError(f"multipart part headers exceed {MAX_HEADER_BYTES} bytes")
            if self._eof:
                raise FormError("malformed multipart part headers")
            self._fill()
        head = bytes(self._buffer[:end])
        del self._buffer[: end + 4]
        lines = head.split(b"\r\n")
        if lines[0].strip(b" \t"):  # transport padding after the boundary, then CRLF
            raise FormError("malformed multipart boundary line")
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if sep and name.strip().lower() == b"content-disposition":
                kind, options = parse_options_header(value.decode("utf-8", "replace"))
                if kind.lower() != "form-data" or "name" not in options:
                    raise FormError("multipart part without a form-data name")
                return options
        raise FormError("multipart part without Content-Disposition")

    def read_data(self) -> bytes:
        """The next piece of the current part's data; b"" once its closing delimiter is reached."""
        keep = len(self._delimiter) - 1
        while True:
            index = self._buffer.find(self._delimiter)
            if index == 0:
                del self._buffer[: len(self._delimiter)]
                return b""
            if index > 0:
                out = bytes(self._buffer[:index])
                del self._buffer[:index]
                return out
            if len(self._buffer) > keep:  # all but a possible partial delimiter at the end
                out = bytes(self._buffer[: len(self._buffer) - keep])
                del self._buffer[: len(self._buffer) - keep]
                return out
            if self._eof:
                raise FormError("truncated multipart body")
            self._fill()


class _PartReader:
    """A file-like view of the current part's data, for `hash_stream`."""

    def __init__(self, parser: _Parser) -> None:
        self._parser = parser
        self._buffer = b""
        self.done = False

    def read(self, n: int = -1, /) -> bytes:
        while not self._buffer and not self.done:
            self._buffer = self._parser.read_data()
            self.done = not self._buffer
        size = len(self._buffer) if n < 0 else n
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


def _read_field(parser: _Parser, name: str) -> str:
    data = bytearray()
    while chunk := parser.read_data():
        data += chunk
        if len(data) > MAX_FIELD_BYTES:
            raise FieldTooLargeError(f"field {name!r} exceeds {MAX_FIELD_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormError(f"field {name!r} is not UTF-8") from exc


def parse_form(
    stream: Any,
    boundary: bytes,
    *,
    file_field: str,
    text_fields: frozenset[str],
    limit: int,
    spool_factory: Callable[[], IO[bytes]] | None = None,
) -> StreamedForm:
    """Parse the body: `file_field` is hashed (UploadTooLargeError past `limit` bytes).

    Unknown or repeated fields are refused, so a misspelt field name is an error, not silence.
    """
    parser = _Parser(stream, boundary)
    form = StreamedForm()
    make_spool = spool_factory or (
        lambda: tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
    )
    try:
        parser.skip_preamble()
        for _ in range(MAX_PARTS):
            options = parser.next_part()
            if options is None:
                return form
            name = options["name"]
            if name in form.fields or (name == file_field and form.file is not None):
                raise FormError(f"field {name!r} given twice")
            if name == file_field:  # with or without a filename: some clients send neither
                form.spool = make_spool()
                reader = _PartReader(parser)
                form.file = hash_stream(reader, limit=limit, spool=form.spool)  # type: ignore[arg-type]
                while not reader.done:  # hash_stream stops at limit + 1 bytes: nothing left
                    reader.read()
                form.filename = options.get("filename")
            elif name in text_fields and "filename" not in options:
                form.fields[name] = _read_field(parser, name)
            else:
                allowed = ", ".join(sorted({file_field, *text_fields}))
                raise FormError(f"unexpected form part {name!r}; expected: {allowed}")
        raise FormError(f"more than {MAX_PARTS} form parts")
    except BaseException:
        form.close()
        raise
