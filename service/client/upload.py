"""A multipart/form-data body read from disk as it is sent, so an image is never held in memory.

requests builds `files=` bodies in memory; this file-like object has a length (so requests sends
Content-Length, not chunks) and yields the preamble, the file's bytes, then the closing boundary.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import BinaryIO

_UNSAFE_FILENAME = str.maketrans({'"': "_", "\\": "_", "\r": "_", "\n": "_"})


class MultipartFile:
    """Text fields, then one file part; `read(n)` as a stream, `len()` the exact body size."""

    def __init__(self, path: Path, file_field: str, fields: dict[str, str]) -> None:
        self.boundary = "chronoseal-" + secrets.token_hex(16)
        head = "".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n" for name, value in fields.items())
        filename = path.name.translate(_UNSAFE_FILENAME)
        head += (f'--{self.boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
                 f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n')
        head_bytes, tail = head.encode(), f"\r\n--{self.boundary}--\r\n".encode()
        self._file = path.open("rb")
        self._length = len(head_bytes) + path.stat().st_size + len(tail)
        self._parts: list[bytes | BinaryIO] = [head_bytes, self._file, tail]

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        out = b""
        while self._parts and (size < 0 or len(out) < size):
            part = self._parts[0]
            want = -1 if size < 0 else size - len(out)
            if isinstance(part, bytes):
                chunk = part if want < 0 else part[:want]
                rest = part[len(chunk):]
                if rest:
                    self._parts[0] = rest
                else:
                    self._parts.pop(0)
            else:
                chunk = part.read(want)
                if not chunk or (want < 0):
                    self._parts.pop(0)
            out += chunk
        return out

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> MultipartFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
