"""Image bytes built at test time: small PNGs and a decompression bomb."""

from __future__ import annotations

import functools
import io
import struct
import zlib

from PIL import Image


def png_bytes(width: int = 8, height: int = 8, color: tuple[int, int, int] = (200, 10, 10)
              ) -> bytes:
    """A real PNG made by Pillow."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@functools.lru_cache(maxsize=2)
def bomb_png(side: int = 30_000) -> bytes:
    """A valid, all-black 1-bit PNG of side x side pixels (900 Mpx at 30000): ~110 KB on disk.

    Written row by row through zlib so the test never holds the decoded pixels; Pillow's
    decompression-bomb limit (about 179 Mpx) refuses to open it.
    """
    row = b"\x00" + bytes((side + 7) // 8)  # filter type 0, then the packed bits
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row) for _ in range(side)]
    parts.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts))
            + _chunk(b"IEND", b""))
