"""PNG: text chunks (tEXt Latin-1, zTXt deflated, iTXt UTF-8 optionally deflated), eXIf, and
C2PA's caBX; XMP is the iTXt keyword XML:com.adobe.xmp. Chunks are walked by their length
fields; image data (IDAT) is skipped by seeking, and chunk CRCs are not checked."""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

from service.evidence.records.embedded import Embedded, read_exact
from service.evidence.records.exif import read_exif_texts
from service.evidence.records.limits import (
    MAX_C2PA_BYTES,
    MAX_CONTAINER_ITEMS,
    MAX_INFLATED_BYTES,
    MAX_ITEM_BYTES,
    MAX_XMP_BYTES,
    RAW_HEAD_CHARS,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
XMP_KEYWORD = "XML:com.adobe.xmp"  # PNG iTXt keyword for XMP (XMP spec part 3, 1.1.5)
_PNG_TEXT = {b"tEXt", b"zTXt", b"iTXt"}


def read_png(fileobj: BinaryIO) -> Embedded:
    out = Embedded("png")
    fileobj.seek(len(PNG_SIGNATURE))
    for _ in range(MAX_CONTAINER_ITEMS):
        header = read_exact(fileobj, 8)
        if header is None:
            out.warnings.append("PNG ends without IEND")
            return out
        length, kind = struct.unpack(">I4s", header)
        if kind == b"IHDR" and length == 13:
            ihdr = read_exact(fileobj, 13)
            out.alpha = ihdr is not None and ihdr[9] in (4, 6)  # grey+alpha, RGBA
            fileobj.seek(4, 1)
            continue
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
        data = read_exact(fileobj, length)
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
