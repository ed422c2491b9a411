"""JPEG: APP1 (EXIF, XMP), APP11 (C2PA JUMBF, possibly split over segments) and APP13 (IPTC
IIM) segments before the first scan; the entropy-coded data after it is never read."""

from __future__ import annotations

import struct
from typing import BinaryIO

from service.evidence.records.embedded import Embedded, read_exact
from service.evidence.records.exif import read_exif_texts
from service.evidence.records.iptc import read_photoshop_iptc
from service.evidence.records.limits import MAX_C2PA_BYTES, MAX_CONTAINER_ITEMS

XMP_APP1 = b"http://ns.adobe.com/xap/1.0/\x00"


def read_jpeg(fileobj: BinaryIO) -> Embedded:
    out = Embedded("jpeg")
    jumbf: list[bytes] = []
    store_instance = b""
    fileobj.seek(2)
    for _ in range(MAX_CONTAINER_ITEMS):
        marker = read_exact(fileobj, 2)
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
        size_bytes = read_exact(fileobj, 2)
        if size_bytes is None:
            break
        size = struct.unpack(">H", size_bytes)[0] - 2
        if kind not in (0xE1, 0xEB, 0xED) or size < 0:
            fileobj.seek(max(size, 0), 1)
            continue
        if not out.spend(size):
            fileobj.seek(size, 1)
            continue
        data = read_exact(fileobj, size)
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
            # "JP", box instance (2), sequence number (4), then the box; every segment after
            # the first repeats the box's LBox/TBox header (C2PA 2.1, A.3.3), left out here.
            instance = data[2:4]
            if not jumbf:
                store_instance = instance
            if instance == store_instance:
                sequence = int.from_bytes(data[4:8], "big")
                jumbf.append(data[8:] if sequence <= 1 else data[16:])
    if jumbf:
        out.c2pa = b"".join(jumbf)[:MAX_C2PA_BYTES]
    return out
