"""One HTTP/1.x request read whole before a gunicorn thread sees it (cli/gunicorn_worker.py).

`RequestBuffer.feed` takes bytes as they arrive and says when the request is complete: its head
ended by an empty line, then its body by `Content-Length` or by the last chunk of a chunked
body (framing only: gunicorn decodes it again). A request whose framing gunicorn will reject
anyway (several lengths, an unknown transfer coding) counts as complete at its head, so gunicorn
answers it at once. Bodies above SPOOL_MEMORY_BYTES go to a temporary file, so a slow upload
costs no thread and little memory. `Replay` then gives gunicorn's parser those bytes in order.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import IO

# Past this the body is kept on disk: 200 slow uploads then hold at most 50 MiB of memory.
SPOOL_MEMORY_BYTES = 256 * 1024
# No request of ours needs a longer head (a key, ids, a few standard headers); gunicorn alone
# allows ~800 KiB (100 fields of 8 KiB), which a slow client could make every worker hold.
MAX_HEAD_BYTES = 64 * 1024
MAX_CHUNK_LINE_BYTES = 4096  # a chunk-size line with extensions; gunicorn rejects longer ones
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass(frozen=True)
class Refusal:
    """Why a request is answered before gunicorn sees it: HTTP status and a public detail."""

    status: int
    detail: str


class RequestBuffer:
    """The bytes of one request, fed as they arrive; `complete` once framing says it ended."""

    def __init__(self, max_body_bytes: int, max_line_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes
        self.max_line_bytes = max_line_bytes
        self.head = bytearray()
        self.head_done = False
        self._line_end = -1  # where the request line ends, once seen
        self.complete = False
        self.wants_continue = False  # the client waits for "100 Continue" before its body
        self.extra = b""  # bytes after the request (a pipelined next request)
        self.body: IO[bytes] | None = None
        self.body_bytes = 0  # framed body bytes received
        self._remaining = 0  # Content-Length bytes still to come, or bytes of the current chunk
        self._chunked = False
        self._line = bytearray()  # a chunk-size or trailer line being read
        self._state = "size"  # chunked: size, data, data-crlf, trailer

    def feed(self, data: bytes) -> Refusal | None:
        """Take `data`; a Refusal when the request must be answered with an error instead."""
        if not self.head_done:
            searched = max(0, len(self.head) - 3)  # only new bytes are searched: no O(n^2)
            self.head += data
            if self._line_end < 0:
                while self.head.startswith(b"\r\n"):  # empty lines before a request mean nothing
                    del self.head[:2]
                    searched = 0
                self._line_end = self.head.find(b"\r\n", max(0, searched - 1))
            end = self.head.find(b"\r\n\r\n", searched)
            if end < 0:
                return self._head_too_long()
            data = bytes(self.head[end + 4:])
            del self.head[end + 4:]
            self.head_done = True
            refusal = self._frame()
            if refusal is not None or self.complete:
                self.extra = data
                return refusal
        return self._feed_body(data)

    def replay(self) -> tuple[bytes, IO[bytes] | None, bytes]:
        """(head, body file rewound or None, extra): the request's bytes, in order."""
        if self.body is not None:
            self.body.seek(0)
        return bytes(self.head), self.body, self.extra

    def close(self) -> None:
        if self.body is not None:
            self.body.close()

    def _head_too_long(self) -> Refusal | None:
        if self._line_end < 0 and len(self.head) > self.max_line_bytes + 4:
            return Refusal(414, f"the request line exceeds {self.max_line_bytes} bytes")
        if len(self.head) > MAX_HEAD_BYTES:
            return Refusal(431, f"the request head exceeds {MAX_HEAD_BYTES} bytes")
        return None

    def _frame(self) -> Refusal | None:
        """Read the framing headers; mark the request complete when it has no body to wait for."""
        lengths, codings, expect = set(), [], False
        for line in bytes(self.head).split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                lengths.add(value)
            elif name == b"transfer-encoding":
                codings += [c.strip() for c in value.split(b",")]
            elif name == b"expect" and value == b"100-continue":
                expect = True
        if codings:
            self._chunked = codings[-1] == b"chunked" and not lengths
            self.complete = not self._chunked  # gunicorn refuses it at once (400 or 501)
        elif len(lengths) == 1 and (value := lengths.pop()).isdigit():
            self._remaining = int(value)
            if self._remaining > self.max_body_bytes:
                return Refusal(413, f"the request body exceeds {self.max_body_bytes} bytes")
            self.complete = self._remaining == 0
        else:
            self.complete = True  # no body, or lengths gunicorn refuses (400)
        if not self.complete:
            self.body = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
            if expect:  # we say "100 Continue" ourselves; gunicorn must not say it again
                self.wants_continue = True
                self._drop_expect()
        return None

    def _drop_expect(self) -> None:
        lines = bytes(self.head).split(b"\r\n")
        kept = [ln for ln in lines if ln.partition(b":")[0].strip().lower() != b"expect"]
        self.head = bytearray(b"\r\n".join(kept))

    def _feed_body(self, data: bytes) -> Refusal | None:
        if self._chunked:
            return self._feed_chunked(data)
        take = data[:self._remaining]
        self._write(take)
        self._remaining -= len(take)
        if self._remaining == 0:
            self.complete = True
            self.extra = data[len(take):]
        return None

    def _feed_chunked(self, data: bytes) -> Refusal | None:
        """Follow chunk sizes and the trailer section to find where the body ends."""
        pos = 0
        while pos < len(data) and not self.complete:
            if self._state == "data":
                take = min(self._remaining, len(data) - pos)
                self._write(data[pos:pos + take])
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._state = "data-crlf"  # the CRLF after the data, read as a line
                continue
            end = data.find(b"\n", pos)
            piece = data[pos:] if end < 0 else data[pos:end + 1]
            self._write(piece)
            pos += len(piece)
            self._line += piece
            if len(self._line) > MAX_CHUNK_LINE_BYTES:
                self._finish_early()  # gunicorn refuses the line (400)
                break
            if end < 0:
                continue
            line, self._line = bytes(self._line).strip(), bytearray()
            self._end_of_line(line)
        if self.complete:
            self.extra = data[pos:]
        if self.body_bytes > self.max_body_bytes:
            return Refusal(413, f"the request body exceeds {self.max_body_bytes} bytes")
        return None

    def _end_of_line(self, line: bytes) -> None:
        if self._state == "trailer":
            self.complete = not line  # the empty line after the trailers ends the body
            return
        if self._state == "data-crlf":
            self._state = "size"
            return
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            self._finish_early()  # a bad size line: gunicorn refuses it (400)
            return
        if size == 0:
            self._state = "trailer"
        else:
            self._state, self._remaining = "data", size

    def _finish_early(self) -> None:
        self.complete = True

    def _write(self, piece: bytes) -> None:
        assert self.body is not None
        self.body.write(piece)
        self.body_bytes += len(piece)


class Replay:
    """A socket-like source for gunicorn's parser: the buffered request's bytes, then nothing."""

    def __init__(self, head: bytes, body: IO[bytes] | None, extra: bytes) -> None:
        self._parts: list[bytes] = [head]
        self._body = body
        self._extra = extra
        self.used = False

    def recv(self, size: int) -> bytes:
        if self._parts:
            part = self._parts.pop(0)
            if len(part) > size:
                self._parts.insert(0, part[size:])
            return part[:size]
        if self._body is not None:
            data = self._body.read(size)
            if data:
                return data
            self._body.close()
            self._body = None
        if self._extra:
            data, self._extra = self._extra[:size], self._extra[size:]
            return data
        # Never the socket: a thread must not wait on a client. Past the request the loop read
        # (only where its framing and gunicorn's disagree) the parser sees the end of input.
        return b""

    def rest(self) -> bytes:
        """Once the request is done: the bytes after it (a pipelined request), not yet read by
        the parser. Any unread part of the request itself is dropped (gunicorn then closes)."""
        data = self._extra
        if self._body is not None:
            self._body.close()
        self._parts, self._body, self._extra = [], None, b""
        return data
