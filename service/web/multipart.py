"""Streaming multipart/form-data: the image part is hashed as it arrives, never held in memory.

Werkzeug's own form parser spools files itself and keeps fields in memory; here the sans-IO
`MultipartDecoder` is fed from `request.stream` one chunk at a time, so memory stays at a few
chunks whatever the upload's size. The image bytes also go to a spooled temporary file (in
memory up to SPOOL_MEMORY_BYTES, then on disk) so the image probe can read them again.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from service.evidence.hashing import HashedUpload, hash_stream

READ_CHUNK_BYTES = 64 * 1024  # one socket read at a time
DECODER_BUFFER_BYTES = 4 * READ_CHUNK_BYTES  # the decoder's buffer: a chunk plus part headers
MAX_PARTS = 16  # image, metadata and four small fields fit with room; bounds parsing work
MAX_FIELD_BYTES = 256 * 1024  # text fields (metadata is the big one): generous for any prompt
SPOOL_MEMORY_BYTES = 1024 * 1024  # larger images spill to disk: memory stays bounded


class FormError(ValueError):
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


class _Events:
    """Pull decoder events, reading the stream only when the decoder needs more bytes."""

    def __init__(self, stream: Any, boundary: bytes) -> None:
        self._stream = stream
        self._decoder = MultipartDecoder(
            boundary, max_form_memory_size=DECODER_BUFFER_BYTES, max_parts=MAX_PARTS
        )

    def next(self) -> Any:
        while True:
            try:
                event = self._decoder.next_event()
            except ValueError as exc:
                raise FormError("malformed multipart body") from exc
            if not isinstance(event, NeedData):
                return event
            chunk = self._stream.read(READ_CHUNK_BYTES)
            self._decoder.receive_data(chunk or None)


class _PartReader:
    """A file-like view of the current part's data, for `hash_stream`."""

    def __init__(self, events: _Events) -> None:
        self._events = events
        self._buffer = b""
        self.done = False

    def read(self, n: int = -1, /) -> bytes:
        while not self._buffer and not self.done:
            event = self._events.next()
            if not isinstance(event, Data):
                raise FormError("malformed multipart body")
            self._buffer, self.done = event.data, not event.more_data
        size = len(self._buffer) if n < 0 else n
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


def _read_field(events: _Events, name: str) -> str:
    data = bytearray()
    while True:
        event = events.next()
        if not isinstance(event, Data):
            raise FormError("malformed multipart body")
        data += event.data
        if len(data) > MAX_FIELD_BYTES:
            raise FieldTooLargeError(f"field {name!r} exceeds {MAX_FIELD_BYTES} bytes")
        if not event.more_data:
            break
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
    events = _Events(stream, boundary)
    form = StreamedForm()
    make_spool = spool_factory or (
        lambda: tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
    )
    try:
        while True:
            event = events.next()
            if isinstance(event, Epilogue):
                return form
            if not isinstance(event, Field | File):
                continue  # the preamble
            name = event.name
            if name in form.fields or (name == file_field and form.file is not None):
                raise FormError(f"field {name!r} given twice")
            if name == file_field:  # with or without a filename: some clients send neither
                form.spool = make_spool()
                reader = _PartReader(events)
                form.file = hash_stream(reader, limit=limit, spool=form.spool)  # type: ignore[arg-type]
                form.filename = getattr(event, "filename", None)
            elif name in text_fields and isinstance(event, Field):
                form.fields[name] = _read_field(events, name)
            else:
                allowed = ", ".join(sorted({file_field, *text_fields}))
                raise FormError(f"unexpected form part {name!r}; expected: {allowed}")
    except BaseException:
        form.close()
        raise
