"""A tiny BER tag-length-value walker that keeps exact byte positions.

CMS signatures cover exact encodings (certificates, signed attributes), and real TSAs emit BER
where DER was expected (unsorted SET OF, long-form or indefinite lengths). Schema decoders lose
the original bytes; this walker keeps them, and `to_der_lengths` rewrites lengths canonically.
"""

from __future__ import annotations

from typing import NamedTuple

from service.errors import MalformedInputError

# Nesting deeper than this is not found in tokens or certificates; it bounds recursion.
MAX_DEPTH = 64
# Length fields above 4 octets would describe more than 4 GiB, far beyond any reply we accept.
MAX_LENGTH_OCTETS = 4

CONSTRUCTED = 0x20


class Tlv(NamedTuple):
    """One element: `tag` is the identifier byte, buf[start:end] its whole encoding."""

    tag: int
    start: int
    body: int  # first content byte
    end: int  # one past the last byte, including an end-of-contents marker if indefinite
    body_end: int  # one past the last content byte

    @property
    def constructed(self) -> bool:
        return bool(self.tag & CONSTRUCTED)


def read_header(buf: bytes, pos: int, limit: int, depth: int) -> tuple[int, int, int | None]:
    """(tag, first content byte, length or None if indefinite) of the element at buf[pos]."""
    if depth > MAX_DEPTH:
        raise MalformedInputError("ASN.1 nesting too deep")
    if pos + 2 > limit:
        raise MalformedInputError("truncated ASN.1 element")
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise MalformedInputError("multi-byte ASN.1 tags are not used in tokens")
    first = buf[pos + 1]
    body = pos + 2
    if first == 0x80:  # indefinite length: children until the end-of-contents marker 00 00
        if not tag & CONSTRUCTED:
            raise MalformedInputError("indefinite length on a primitive element")
        return tag, body, None
    length = first
    if first & 0x80:
        count = first & 0x7F
        if count > MAX_LENGTH_OCTETS or body + count > limit:
            raise MalformedInputError("bad ASN.1 length")
        length = int.from_bytes(buf[body : body + count], "big")
        body += count
    if body + length > limit:
        raise MalformedInputError("ASN.1 length runs past its container")
    return tag, body, length


def read(buf: bytes, pos: int = 0, limit: int | None = None, depth: int = 0) -> Tlv:
    """Read the element starting at buf[pos], which must end by `limit` (default: len(buf))."""
    limit = len(buf) if limit is None else limit
    tag, body, length = read_header(buf, pos, limit, depth)
    if length is not None:
        return Tlv(tag, pos, body, body + length, body + length)
    cur = body
    while True:
        if cur + 2 > limit:
            raise MalformedInputError("missing end-of-contents")
        if buf[cur] == 0 and buf[cur + 1] == 0:
            return Tlv(tag, pos, body, cur + 2, cur)
        cur = read(buf, cur, limit, depth + 1).end


def children(buf: bytes, parent: Tlv, depth: int = 0) -> list[Tlv]:
    """The elements inside a constructed element, in encoded order."""
    if not parent.constructed:
        raise MalformedInputError("expected a constructed ASN.1 element")
    out, cur = [], parent.body
    while cur < parent.body_end:
        child = read(buf, cur, parent.body_end, depth + 1)
        out.append(child)
        cur = child.end
    return out


def expect(tlv: Tlv, tag: int, what: str) -> Tlv:
    """Return tlv if it has the given tag, else raise naming what was expected."""
    if tlv.tag != tag:
        raise MalformedInputError(f"{what}: expected tag 0x{tag:02x}, got 0x{tlv.tag:02x}")
    return tlv


def content(buf: bytes, tlv: Tlv) -> bytes:
    """Content octets; a BER constructed string is the concatenation of its segments."""
    if not tlv.constructed:
        return buf[tlv.body : tlv.body_end]
    out: list[bytes] = []
    _walk(buf, tlv.start, tlv.end, 0, out, None, segments_only=True)
    return b"".join(out)


def encode_length(length: int) -> bytes:
    """DER length octets: short form below 128, else the minimal long form."""
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def to_der_lengths(buf: bytes, tlv: Tlv | None = None, tag: int | None = None) -> bytes:
    """Re-encode an element with minimal definite lengths, keeping element order.

    This is how OpenSSL re-encodes signed attributes before checking the signature: DER lengths
    but SET OF order as received. `tag` replaces the outer tag (e.g. [0] IMPLICIT to 0x31).
    """
    start, end = (0, len(buf)) if tlv is None else (tlv.start, tlv.end)
    out: list[bytes] = []
    _walk(buf, start, end, 0, out, tag, segments_only=False)
    return out[0]


def _walk(
    buf: bytes, pos: int, limit: int, depth: int, out: list[bytes], tag: int | None,
    *, segments_only: bool,
) -> int:
    """One pass over the element at pos, appending its DER-length encoding (or, with
    segments_only, its primitive contents) to out; returns its end. Visiting each element once
    keeps hostile nested indefinite lengths linear rather than quadratic."""
    head = read_header(buf, pos, limit, depth)
    el_tag, body, length = head
    if not el_tag & CONSTRUCTED:
        end = body + length  # type: ignore[operator]  # primitives always have a length
        value = buf[body:end]
        out.append(value if segments_only else bytes([tag or el_tag]) + encode_length(len(value))
                   + value)
        return end
    parts: list[bytes] = []
    stop = limit if length is None else body + length
    cur = body
    while True:
        if length is None and buf[cur : cur + 2] == b"\x00\x00":
            end = cur + 2
            break
        if length is not None and cur >= stop:
            end = stop
            break
        if cur >= stop:
            raise MalformedInputError("missing end-of-contents")
        cur = _walk(buf, cur, stop, depth + 1, parts, None, segments_only=segments_only)
    inner = b"".join(parts)
    out.extend(parts if segments_only else [bytes([tag or el_tag]) + encode_length(len(inner))
                                            + inner])
    return end


def integer(buf: bytes, tlv: Tlv) -> int:
    """Decode an INTEGER element (two's complement)."""
    expect(tlv, 0x02, "INTEGER")
    raw = buf[tlv.body : tlv.body_end]
    if not raw:
        raise MalformedInputError("empty INTEGER")
    return int.from_bytes(raw, "big", signed=True)


def oid(buf: bytes, tlv: Tlv) -> str:
    """Decode an OBJECT IDENTIFIER element to dotted form."""
    expect(tlv, 0x06, "OBJECT IDENTIFIER")
    raw = buf[tlv.body : tlv.body_end]
    if not raw or raw[-1] & 0x80:
        raise MalformedInputError("bad OBJECT IDENTIFIER")
    arcs, value = [], 0
    for byte in raw:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]]))
