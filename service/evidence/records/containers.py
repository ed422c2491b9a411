"""Walk PNG, JPEG and WebP files for the places generation records live, in bounded reads.

Only metadata is read: PNG text chunks (tEXt, zTXt, iTXt), eXIf, C2PA's caBX; JPEG APP1 (EXIF,
XMP), APP11 (C2PA JUMBF), APP13 (IPTC IIM) up to the first scan; WebP's EXIF, XMP and C2PA
chunks. Image data is skipped by seeking: the cost depends on the number of chunks, not on the
file's size.
"""

from __future__ import annotations

from typing import BinaryIO

from service.evidence.records.embedded import Embedded
from service.evidence.records.jpeg import read_jpeg
from service.evidence.records.png import PNG_SIGNATURE, read_png
from service.evidence.records.webp import read_webp

__all__ = ["Embedded", "read_embedded"]


def read_embedded(fileobj: BinaryIO) -> Embedded:
    """Dispatch on the magic bytes; unknown containers give an empty result."""
    head = fileobj.read(12)
    if head.startswith(PNG_SIGNATURE):
        return read_png(fileobj)
    if head.startswith(b"\xff\xd8"):
        return read_jpeg(fileobj)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return read_webp(fileobj)
    return Embedded()
