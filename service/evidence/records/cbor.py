"""A small, bounded CBOR (RFC 8949) decoder for C2PA claims and assertions: definite lengths,
tags skipped to their content; anything else, or past a bound, is an error, never a guess."""

from __future__ import annotations

import struct
from typing import Any

MAX_CBOR_DEPTH = 32  # claims nest ~5 deep; deeper is hostile
MAX_CBOR_ITEMS = 20_000  # items decoded per call; a claim has a few hundred


class CborError(ValueError):
    """The bytes are not CBOR this decoder reads (or go past a bound)."""


def loads(data: bytes) -> Any:
    """The first CBOR item in `data`."""
    return _Decoder(data).item(0)


class _Decoder:
    def __init__(self, data: bytes) -> None:
        self.data, self.at, self.items = data, 0, 0

    def take(self, size: int) -> bytes:
        if size < 0 or self.at + size > len(self.data):
            raise CborError("CBOR item runs past its box")
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def argument(self, info: int) -> int:
        if info < 24:
            return info
        if info > 27:
            raise CborError("indefinite or reserved CBOR length")
        return int.from_bytes(self.take(1 << (info - 24)), "big")

    def item(self, depth: int) -> Any:
        self.items += 1
        if depth > MAX_CBOR_DEPTH or self.items > MAX_CBOR_ITEMS:
            raise CborError("CBOR nested too deep or too long")
        head = self.take(1)[0]
        major, info = head >> 5, head & 0x1F
        if major == 7:
            return self.simple(info)
        value = self.argument(info)
        if major == 0:
            return value
        if major == 1:
            return -1 - value
        if major == 2:
            return self.take(value)
        if major == 3:
            return self.take(value).decode("utf-8", "replace")
        if major == 4:
            return [self.item(depth + 1) for _ in range(self.bounded(value))]
        if major == 5:
            out: dict[Any, Any] = {}
            for _ in range(self.bounded(value)):
                key = self.item(depth + 1)
                out[key if isinstance(key, str | int) else repr(key)] = self.item(depth + 1)
            return out
        return self.item(depth + 1)  # major 6: a tag; its content is what matters here

    def bounded(self, count: int) -> int:
        if count > len(self.data) - self.at:  # every item takes at least one byte
            raise CborError("CBOR count larger than its box")
        return count

    def simple(self, info: int) -> Any:
        if info in (20, 21):
            return info == 21
        if info in (22, 23):
            return None
        if info == 25:
            return struct.unpack(">e", self.take(2))[0]
        if info == 26:
            return struct.unpack(">f", self.take(4))[0]
        if info == 27:
            return struct.unpack(">d", self.take(8))[0]
        raise CborError("CBOR simple value not read here")
