"""C2PA: note that a manifest store is present, and its claim generator when it can be read
without a network or a full JUMBF/CBOR decoder.

The store is JUMBF (PNG chunk caBX, JPEG APP11 "JP" segments, WebP chunk C2PA). A claim is a
CBOR map; its generator is the text under "claim_generator" (claims v1) or the "name" in the first
map of "claim_generator_info" (v2). Those keys are found by their CBOR encoding and the text item
after them is read. Signatures are not checked here: "present" is a fact, not a verdict.
"""

from __future__ import annotations

from typing import Any

_V1_KEY = b"\x6fclaim_generator"  # CBOR text(15)
_V2_KEY = b"\x74claim_generator_info"  # CBOR text(20)
_NAME_KEY = b"\x64name"  # CBOR text(4)
_NAME_WINDOW = 256  # "name" follows claim_generator_info within a few bytes
MAX_GENERATOR_CHARS = 512  # a generator string is a product name and version


def read_c2pa(store: bytes) -> dict[str, Any]:
    """{"present": True, "claim_generator": ...} (the generator only when found)."""
    out: dict[str, Any] = {"present": True}
    generator = None
    at = store.find(_V1_KEY)
    if at >= 0:
        generator = _cbor_text(store, at + len(_V1_KEY))
    if generator is None:
        at = store.find(_V2_KEY)
        if at >= 0:
            window = store[at : at + len(_V2_KEY) + _NAME_WINDOW]
            name_at = window.find(_NAME_KEY)
            if name_at >= 0:
                generator = _cbor_text(store, at + name_at + len(_NAME_KEY))
    if generator is not None:
        out["claim_generator"] = generator
    return out


def _cbor_text(data: bytes, at: int) -> str | None:
    """A CBOR text string (major type 3, definite length) starting at `at`, or None."""
    if at >= len(data) or data[at] >> 5 != 3:
        return None
    info = data[at] & 0x1F
    if info < 24:
        length, start = info, at + 1
    elif info == 24 and at + 1 < len(data):
        length, start = data[at + 1], at + 2
    elif info == 25 and at + 2 < len(data):
        length, start = int.from_bytes(data[at + 1 : at + 3], "big"), at + 3
    else:
        return None
    if length > MAX_GENERATOR_CHARS or start + length > len(data):
        return None
    return data[start : start + length].decode("utf-8", "replace")
