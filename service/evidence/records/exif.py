"""EXIF (TIFF IFD) reading, just enough for generation records: a few text tags and UserComment.

A1111 and Fooocus write their record to the Exif IFD's UserComment (0x9286), whose first eight
bytes name the encoding (EXIF 2.32 table 9): "ASCII\\0\\0\\0", "UNICODE\\0" (UTF-16, in practice
either byte order: piexif writes big-endian whatever the TIFF order), "JIS\\0\\0\\0\\0\\0", or
eight NULs (undefined).
"""

from __future__ import annotations

import struct

from service.evidence.records.limits import MAX_TIFF_ENTRIES

EXIF_HEADER = b"Exif\x00\x00"  # APP1 segments and some WebP EXIF chunks start with it
USER_COMMENT = 0x9286
EXIF_IFD_POINTER = 0x8769
# Text tags worth keeping from IFD0 and the Exif IFD, by the names ExifTool gives them.
TEXT_TAGS = {
    0x010E: "ImageDescription",
    0x010F: "Make",
    0x0110: "Model",
    0x0131: "Software",
    0x013B: "Artist",
    0x8298: "Copyright",
    0x927C: "MakerNote",
    USER_COMMENT: "UserComment",
}
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}


def read_exif_texts(data: bytes, warnings: list[str]) -> dict[str, str]:
    """The TEXT_TAGS found in a TIFF/EXIF block (with or without the Exif header), decoded."""
    if data.startswith(EXIF_HEADER):
        data = data[len(EXIF_HEADER) :]
    if data[:4] not in (b"II*\x00", b"MM\x00*"):
        warnings.append("EXIF block without a TIFF header; ignored")
        return {}
    order = "<" if data[:2] == b"II" else ">"
    out: dict[str, str] = {}
    ifd0 = struct.unpack_from(order + "I", data, 4)[0]
    pending = [ifd0]
    seen: set[int] = set()
    while pending:  # IFD0, then the Exif IFD it points to; `seen` ends pointer loops
        offset = pending.pop()
        if offset in seen or len(seen) >= 2:
            continue
        seen.add(offset)
        for tag, kind, value in _entries(data, offset, order, warnings):
            if tag == EXIF_IFD_POINTER and kind in (4, 13) and len(value) == 4:
                pending.append(struct.unpack(order + "I", value)[0])
            elif tag in TEXT_TAGS and kind in (1, 2, 7) and TEXT_TAGS[tag] not in out:
                text = decode_user_comment(value, order) if tag == USER_COMMENT else _ascii(value)
                if text:
                    out[TEXT_TAGS[tag]] = text
    return out


def _entries(
    data: bytes, offset: int, order: str, warnings: list[str]
) -> list[tuple[int, int, bytes]]:
    if offset + 2 > len(data):
        warnings.append("EXIF IFD offset outside the block; ignored")
        return []
    count = struct.unpack_from(order + "H", data, offset)[0]
    if count > MAX_TIFF_ENTRIES:
        warnings.append(f"EXIF IFD with {count} entries; only {MAX_TIFF_ENTRIES} read")
        count = MAX_TIFF_ENTRIES
    entries = []
    for i in range(count):
        at = offset + 2 + 12 * i
        if at + 12 > len(data):
            warnings.append("EXIF IFD runs past the block; truncated")
            break
        tag, kind, n = struct.unpack_from(order + "HHI", data, at)
        size = _TYPE_SIZES.get(kind, 0) * n
        if size <= 4:
            value = data[at + 8 : at + 8 + size]
        else:
            start = struct.unpack_from(order + "I", data, at + 8)[0]
            if start + size > len(data):
                if tag in TEXT_TAGS:  # other tags' offsets (maker notes...) are not our business
                    warnings.append(f"EXIF tag 0x{tag:04x} points outside the block; ignored")
                continue
            value = data[start : start + size]
        entries.append((tag, kind, value))
    return entries


def _ascii(value: bytes) -> str:
    return value.split(b"\x00", 1)[0].decode("utf-8", "replace").strip()


def decode_user_comment(value: bytes, order: str = ">") -> str:
    """UserComment text: its 8-byte code names the encoding; UTF-16 order is guessed if unmarked."""
    prefix, body = value[:8], value[8:]
    if prefix == b"UNICODE\x00":
        return _utf16(body, order).rstrip("\x00").strip()
    if prefix == b"JIS\x00\x00\x00\x00\x00":
        return body.decode("shift_jis", "replace").rstrip("\x00").strip()
    if prefix in (b"ASCII\x00\x00\x00", b"\x00" * 8):
        return body.decode("utf-8", "replace").rstrip("\x00").strip()
    return value.decode("utf-8", "replace").rstrip("\x00").strip()  # no code: take it as text


def _utf16(body: bytes, order: str) -> str:
    if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return body.decode("utf-16", "replace")  # the BOM decides
    body = body[: len(body) // 2 * 2]
    # ASCII-range characters have a zero high byte: it sits at even offsets in big-endian text.
    zeros_even = body[0::2].count(0)
    zeros_odd = body[1::2].count(0)
    big = zeros_even > zeros_odd if zeros_even != zeros_odd else order == ">"
    return body.decode("utf-16-be" if big else "utf-16-le", "replace")
