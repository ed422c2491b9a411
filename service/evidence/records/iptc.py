"""IPTC IIM (the legacy binary IPTC in JPEG APP13 "Photoshop 3.0" resource 0x0404): credit,
by-line, caption and originating program, beside their XMP equivalents (xmp.py)."""

from __future__ import annotations

import struct
from typing import Any

from service.evidence.records.limits import MAX_CONTAINER_ITEMS

PHOTOSHOP_HEADER = b"Photoshop 3.0\x00"
IPTC_RESOURCE = 0x0404
# Record 2 datasets kept, by the key they get in `provenance["iptc"]`.
DATASETS = {80: "by_line", 110: "credit", 115: "source", 116: "copyright",
            120: "caption", 65: "originating_program", 70: "program_version"}


def read_photoshop_iptc(segment: bytes) -> dict[str, Any]:
    """The DATASETS of the IPTC resource in an APP13 segment's body; {} when there is none."""
    if not segment.startswith(PHOTOSHOP_HEADER):
        return {}
    data, at = segment, len(PHOTOSHOP_HEADER)
    for _ in range(MAX_CONTAINER_ITEMS):
        if data[at : at + 4] != b"8BIM" or at + 7 > len(data):
            return {}
        resource = struct.unpack_from(">H", data, at + 4)[0]
        name_length = data[at + 6]
        at += 6 + ((name_length + 2) & ~1)  # Pascal name padded to an even size
        if at + 4 > len(data):
            return {}
        size = struct.unpack_from(">I", data, at)[0]
        body = data[at + 4 : at + 4 + size]
        if resource == IPTC_RESOURCE:
            return _datasets(body)
        at += 4 + size + (size & 1)
    return {}


def _datasets(body: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    at = 0
    while at + 5 <= len(body) and body[at] == 0x1C:
        record, dataset = body[at + 1], body[at + 2]
        size = struct.unpack_from(">H", body, at + 3)[0]
        if size & 0x8000:  # extended length: not used for text datasets
            break
        value = body[at + 5 : at + 5 + size].decode("utf-8", "replace").strip()
        key = DATASETS.get(dataset) if record == 2 else None
        if key and value and key not in out:
            out[key] = value
        at += 5 + size
    return out
