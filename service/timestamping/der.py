"""A small DER writer for the built-in TSA's hot path, and the universal tag numbers.

pyasn1 spends most of a request building and encoding objects; the TSA only needs a handful of
fixed shapes, so it writes them with these helpers (and precomputes the constant parts) instead.
Reading, BER or strict DER, is `tlv.py`'s job.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

# Universal tags (X.690) and the context-specific bases the TSA uses.
BOOLEAN = 0x01
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
NULL = 0x05
OBJECT_IDENTIFIER = 0x06
UTF8_STRING = 0x0C
SEQUENCE = 0x30
SET = 0x31
UTC_TIME = 0x17
GENERALIZED_TIME = 0x18
CONTEXT = 0x80
CONSTRUCTED_CONTEXT = 0xA0


def length(n: int) -> bytes:
    """Definite length octets in the minimal form DER requires."""
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, content: bytes) -> bytes:
    """One element: tag, length, content."""
    return bytes((tag,)) + length(len(content)) + content


def sequence(*parts: bytes) -> bytes:
    return tlv(SEQUENCE, b"".join(parts))


def set_of(parts: Iterable[bytes], tag: int = SET) -> bytes:
    """SET OF with its elements sorted by encoding, as DER requires (signers re-encode this)."""
    return tlv(tag, b"".join(sorted(parts)))


def integer(value: int) -> bytes:
    """Two's-complement INTEGER in the fewest octets."""
    size = (value + (value < 0)).bit_length() // 8 + 1
    return tlv(INTEGER, value.to_bytes(size, "big", signed=True))


def boolean(value: bool) -> bytes:
    return tlv(BOOLEAN, b"\xff" if value else b"\x00")


def null() -> bytes:
    return b"\x05\x00"


def octet_string(data: bytes) -> bytes:
    return tlv(OCTET_STRING, data)


def utf8_string(text: str) -> bytes:
    return tlv(UTF8_STRING, text.encode("utf-8"))


def oid(dotted: str) -> bytes:
    """OBJECT IDENTIFIER from its dotted form (arcs of any size, e.g. 2.25.<uuid>)."""
    arcs = [int(part) for part in dotted.split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] > 39):
        raise ValueError(f"not an OID: {dotted!r}")
    out = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return tlv(OBJECT_IDENTIFIER, bytes(out))


def explicit(number: int, content: bytes) -> bytes:
    """[number] EXPLICIT wrapper (constructed context tag)."""
    return tlv(CONSTRUCTED_CONTEXT | number, content)


def named_bits(bits: Iterable[int]) -> bytes:
    """BIT STRING of a NamedBitList (e.g. PKIFailureInfo): trailing zero bits dropped (DER)."""
    positions = set(bits)
    if not positions:
        return tlv(BIT_STRING, b"\x00")
    top = max(positions)
    body = bytearray(top // 8 + 1)
    for bit in positions:
        body[bit // 8] |= 0x80 >> (bit % 8)
    return tlv(BIT_STRING, bytes((7 - top % 8,)) + bytes(body))


def generalized_time(moment: datetime) -> bytes:
    """GeneralizedTime in UTC, 'YYYYMMDDHHMMSS[.fff]Z' with no trailing fraction zeros (DER)."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y%m%d%H%M%S")
    millis = moment.microsecond // 1000
    if millis:
        text += f".{millis:03d}".rstrip("0")
    return tlv(GENERALIZED_TIME, (text + "Z").encode("ascii"))


def utc_time(moment: datetime) -> bytes:
    """UTCTime 'YYMMDDHHMMSSZ' (CMS signing-time for years 1950-2049)."""
    return tlv(UTC_TIME, moment.astimezone(UTC).strftime("%y%m%d%H%M%SZ").encode("ascii"))
