"""WebP (RIFF): the EXIF, "XMP " and C2PA chunks; other chunks are skipped by their sizes."""

from __future__ import annotations

import struct
from typing import BinaryIO

from service.evidence.records.embedded import Embedded, read_exact
from service.evidence.records.exif import read_exif_texts
from service.evidence.records.limits import (
    MAX_C2PA_BYTES,
    MAX_CONTAINER_ITEMS,
    MAX_ITEM_BYTES,
    MAX_XMP_BYTES,
)


def read_webp(fileobj: BinaryIO) -> Embedded:
    out = Embedded("webp")
    fileobj.seek(12)
    for _ in range(MAX_CONTAINER_ITEMS):
        header = read_exact(fileobj, 8)
        if header is None:
            return out
        kind, size = struct.unpack("<4sI", header)
        padded = size + (size & 1)
        limit = MAX_C2PA_BYTES if kind == b"C2PA" else MAX_ITEM_BYTES
        if kind == b"VP8X" and size >= 1:
            flags = read_exact(fileobj, 1)
            out.alpha = flags is not None and bool(flags[0] & 0x10)
            fileobj.seek(padded - 1, 1)
            continue
        if kind == b"VP8L" and size >= 5:
            head = read_exact(fileobj, 5)
            out.alpha = out.alpha or (head is not None and bool(head[4] & 0x10))
            fileobj.seek(padded - 5, 1)
            continue
        if kind not in (b"EXIF", b"XMP ", b"C2PA"):
            fileobj.seek(padded, 1)
            continue
        if size > limit:
            out.skip(kind.decode("latin-1").strip(), size)
            fileobj.seek(padded, 1)
            continue
        if not out.spend(size):
            fileobj.seek(padded, 1)
            continue
        data = read_exact(fileobj, size)
        if data is None:
            out.warnings.append("WebP chunk cut short")
            return out
        fileobj.seek(padded - size, 1)
        if kind == b"EXIF":
            for key, text in read_exif_texts(data, out.warnings).items():
                out.add_text(key, text)
        elif kind == b"XMP ":
            out.xmp = out.xmp or data[:MAX_XMP_BYTES].decode("utf-8", "replace")
        else:
            out.c2pa = out.c2pa or data
    out.warnings.append(f"WebP with more than {MAX_CONTAINER_ITEMS} chunks; the rest not read")
    return out
