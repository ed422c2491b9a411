"""Walk PNG, JPEG and WebP files for the places generation records live, in bounded reads.

Only metadata is read: PNG text chunks (tEXt, zTXt, iTXt), eXIf, C2PA's caBX; JPEG APP1 (EXIF,
XMP), APP11 (C2PA JUMBF), APP13 (IPTC IIM) up to the first scan; WebP's EXIF, XMP and C2PA
chunks. Image data is skipped by seeking: the cost depends on the number of chunks, not on the
file's size.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from service.evidence.records.exif import read_exif_texts
from service.evidence.records.iptc import read_photoshop_iptc
from service.evidence.records.limits import (
    MAX_C2PA_BYTES,
    MAX_CONTAINER_ITEMS,
    MAX_INFLATED_BYTES,
    MAX_ITEM_BYTES,
    MAX_TOTAL_TEXT_BYTES,
    MAX_XMP_BYTES,
    RAW_HEAD_CHARS,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
XMP_KEYWORD = "XML:com.adobe.xmp"  # PNG iTXt keyword for XMP (XMP spec part 3, 1.1.5)
XMP_APP1 = b"http://ns.adobe.com/xap/1.0/\x00"
_PNG_TEXT = {b"tEXt", b"zTXt", b"iTXt"}


@dataclass
class Embedded:
    """Metadata found in a file: texts by keyword or EXIF tag name, XMP, and C2PA bytes."""

    container: str | None = None
    texts: dict[str, str] = field(default_factory=dict)
    xmp: str | None = None
    c2pa: bytes | None = None
    iptc: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, dict[str, Any]] = field(default_factory=dict)  # too large to read
    warnings: list[str] = field(default_factory=list)
    work_left: int = MAX_TOTAL_TEXT_BYTES  # metadata bytes still to read or inflate

    def spend(self, size: int) -> bool:
        """Take `size` bytes of the work budget; False (warned once) when it is spent."""
        if size > self.work_left:
            if self.work_left >= 0:
                self.warnings.append(f"metadata beyond {MAX_TOTAL_TEXT_BYTES} bytes not read")
            self.work_left = -1
            return False
        self.work_left -= size
        return True

    def add_text(self, key: str, text: str) -> None:
        if key in self.texts:
            self.warnings.append(f"second {key!r} text ignored; the first is kept")
            return
        self.texts[key] = text

    def skip(self, key: str, size: int, head: bytes = b"") -> None:
        """Note a chunk too large to read: its size and first RAW_HEAD_CHARS bytes stay in raw."""
        self.skipped[key] = {"truncated": True, "bytes": size,
                             "head": head[:RAW_HEAD_CHARS].decode("utf-8", "replace")}
        self.warnings.append(f"{key!r} metadata of {size} bytes is over the limit; skipped")


def read_embedded(fileobj: BinaryIO) -> Embedded:
    """Dispatch on the magic bytes; unknown containers give an empty result."""
    head = fileobj.read(12)
    if head.startswith(PNG_SIGNATURE):
        return _png(fileobj, head)
    if head.startswith(b"\xff\xd8"):
        return _jpeg(fileobj, head)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp(fileobj)
    return Embedded()


def _read_exact(fileobj: BinaryIO, size: int) -> bytes | None:
    data = fileobj.read(size)
    return data if len(data) == size else None


def _png(fileobj: BinaryIO, head: bytes) -> Embedded:
    out = Embedded("png")
    fileobj.seek(len(PNG_SIGNATURE))
    for _ in range(MAX_CONTAINER_ITEMS):
        header = _read_exact(fileobj, 8)
        if header is None:
            out.warnings.append("PNG ends without IEND")
            return out
        length, kind = struct.unpack(">I4s", header)
        if kind == b"IEND":
            return out
        wanted = kind in _PNG_TEXT or kind in (b"eXIf", b"caBX")
        if not wanted:
            fileobj.seek(length + 4, 1)  # data and CRC
            continue
        if length > (MAX_C2PA_BYTES if kind == b"caBX" else MAX_ITEM_BYTES):
            keyword, head = _png_head(fileobj, kind, length)
            out.skip(keyword, length, head)
            fileobj.seek(length + 4, 1)
            continue
        if not out.spend(length):
            fileobj.seek(length + 4, 1)
            continue
        data = _read_exact(fileobj, length)
        fileobj.seek(4, 1)  # CRC: not checked; a damaged chunk reads as damaged text
        if data is None:
            out.warnings.append(f"PNG {kind.decode('latin-1')} chunk cut short")
            return out
        if kind == b"eXIf":
            out.texts.update(
                {k: v for k, v in read_exif_texts(data, out.warnings).items() if k not in out.texts}
            )
        elif kind == b"caBX":
            out.c2pa = out.c2pa or data
        else:
            _png_text(out, kind, data)
    out.warnings.append(f"PNG with more than {MAX_CONTAINER_ITEMS} chunks; the rest not read")
    return out


def _png_head(fileobj: BinaryIO, kind: bytes, length: int) -> tuple[str, bytes]:
    """Keyword and first bytes of a chunk too large to read; the file is rewound after."""
    at = fileobj.tell()
    head = fileobj.read(min(80 + RAW_HEAD_CHARS, length))
    fileobj.seek(at)
    if kind not in _PNG_TEXT:
        return kind.decode("latin-1"), b""
    keyword, _, rest = head.partition(b"\x00")
    return keyword.decode("latin-1"), rest if kind == b"tEXt" else b""


def _png_text(out: Embedded, kind: bytes, data: bytes) -> None:
    keyword_bytes, sep, rest = data.partition(b"\x00")
    keyword = keyword_bytes.decode("latin-1")
    if not sep or not 1 <= len(keyword_bytes) <= 79:
        out.warnings.append(f"PNG {kind.decode()} chunk without a valid keyword; ignored")
        return
    if keyword in out.texts:
        out.warnings.append(f"second {keyword!r} text ignored; the first is kept")
        return
    text: str | None
    if kind == b"tEXt":
        text = _decode_text(rest, out, keyword, latin1=True)
    elif kind == b"zTXt":
        inflated = _inflate(rest[1:], out, keyword)  # rest[0] is the method: 0 = zlib
        text = None if inflated is None else _decode_text(inflated, out, keyword, latin1=True)
    else:  # iTXt: flag, method, language tag NUL, translated keyword NUL, UTF-8 text
        if len(rest) < 2:
            out.warnings.append(f"iTXt {keyword!r} is truncated; ignored")
            return
        compressed = rest[0] == 1
        parts = rest[2:].split(b"\x00", 2)
        if len(parts) < 3:
            out.warnings.append(f"iTXt {keyword!r} is truncated; ignored")
            return
        body: bytes | None = parts[2]
        if compressed:
            body = _inflate(parts[2], out, keyword)
        text = None if body is None else _decode_text(body, out, keyword, latin1=False)
    if text is None:
        return
    if keyword == XMP_KEYWORD:
        out.xmp = out.xmp or text[:MAX_XMP_BYTES]
    else:
        out.add_text(keyword, text)


def _inflate(data: bytes, out: Embedded, keyword: str) -> bytes | None:
    inflater = zlib.decompressobj()
    allowed = min(MAX_INFLATED_BYTES, max(out.work_left, 0))
    if not allowed:
        out.spend(1)  # warns once that the budget is spent
        return None
    try:
        result = inflater.decompress(data, allowed + 1)
    except zlib.error:
        out.warnings.append(f"compressed text {keyword!r} does not inflate; ignored")
        return None
    if len(result) > allowed:
        if allowed < MAX_INFLATED_BYTES:  # the file's total budget ran out, not this chunk's
            out.spend(allowed + 1)
        else:
            out.skip(keyword, len(data), result)
        return None
    out.spend(len(result))
    if not inflater.eof:
        out.warnings.append(f"compressed text {keyword!r} is cut short; the part inflated kept")
    return result


def _decode_text(data: bytes, out: Embedded, keyword: str, *, latin1: bool) -> str:
    """UTF-8 when valid (many tools write UTF-8 into tEXt despite the spec), else Latin-1."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        if latin1:
            return data.decode("latin-1")
        out.warnings.append(f"text {keyword!r} is not valid UTF-8; undecodable bytes replaced")
        return data.decode("utf-8", "replace")


def _jpeg(fileobj: BinaryIO, head: bytes) -> Embedded:
    out = Embedded("jpeg")
    jumbf: list[bytes] = []
    fileobj.seek(2)
    for _ in range(MAX_CONTAINER_ITEMS):
        marker = _read_exact(fileobj, 2)
        if marker is None or marker[0] != 0xFF:
            break
        kind = marker[1]
        if kind == 0xFF:  # fill byte before a marker
            fileobj.seek(-1, 1)
            continue
        if kind in (0xD9, 0xDA):  # end of image, start of scan: metadata comes before
            break
        if 0xD0 <= kind <= 0xD7 or kind == 0x01:
            continue  # markers without a length
        size_bytes = _read_exact(fileobj, 2)
        if size_bytes is None:
            break
        size = struct.unpack(">H", size_bytes)[0] - 2
        if kind not in (0xE1, 0xEB, 0xED) or size < 0:
            fileobj.seek(max(size, 0), 1)
            continue
        if not out.spend(size):
            fileobj.seek(size, 1)
            continue
        data = _read_exact(fileobj, size)
        if data is None:
            out.warnings.append("JPEG segment cut short")
            break
        if kind == 0xE1 and data.startswith(b"Exif\x00"):
            for key, text in read_exif_texts(data, out.warnings).items():
                out.add_text(key, text)
        elif kind == 0xE1 and data.startswith(XMP_APP1) and out.xmp is None:
            out.xmp = data[len(XMP_APP1) :].decode("utf-8", "replace")
        elif kind == 0xED and not out.iptc:
            out.iptc = read_photoshop_iptc(data)
        elif kind == 0xEB and data[:2] == b"JP" and sum(map(len, jumbf)) < MAX_C2PA_BYTES:
            jumbf.append(data[8:])  # "JP", box instance (2), sequence number (4), then the box
    if jumbf:
        out.c2pa = b"".join(jumbf)[:MAX_C2PA_BYTES]
    return out


def _webp(fileobj: BinaryIO) -> Embedded:
    out = Embedded("webp")
    fileobj.seek(12)
    for _ in range(MAX_CONTAINER_ITEMS):
        header = _read_exact(fileobj, 8)
        if header is None:
            return out
        kind, size = struct.unpack("<4sI", header)
        padded = size + (size & 1)
        limit = MAX_C2PA_BYTES if kind == b"C2PA" else MAX_ITEM_BYTES
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
        data = _read_exact(fileobj, size)
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
