"""The one ASN.1 reader: a tag-length-value walker that keeps exact byte positions, BER or DER.

It is called `tlv` because walking tag-length-value elements is all it does, under either rule
set; `der.py` is the writer, and everything it writes is DER. Two callers need two rule sets:

* lenient (BER, the default) for the verifier. CMS signatures cover exact encodings
  (certificates, signed attributes) and real TSAs emit BER where DER was expected (long-form
  or indefinite lengths, constructed strings, unsorted SET OF). Schema decoders lose the
  original bytes; this walker keeps them, and `to_der_lengths` rewrites lengths canonically.
* `strict=True` (DER) for the built-in TSA reading queries: minimal definite lengths, minimal
  INTEGERs and OID arcs, BOOLEAN 00 or FF, primitive strings. A query that is not DER is
  refused (badDataFormat), never guessed at.

Both refuse multi-byte tags (no RFC 3161 or CMS structure uses one) and every error is a
MalformedInputError.
"""

from __future__ import annotations

from typing import NamedTuple

from service.errors import MalformedInputError
from service.timestamping.der import BOOLEAN, INTEGER, OBJECT_IDENTIFIER, OCTET_STRING, length

# Nesting deeper than this is not found in tokens or certificates; it bounds recursion.
MAX_DEPTH = 64
# Length fields above 4 octets would describe more than 4 GiB, far beyond any reply we accept.
MAX_LENGTH_OCTETS = 4
# No query, reply (cms caps those at 256 KiB) or certificate comes near 1 MiB in one element.
MAX_ELEMENT_BYTES = 1 << 20

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


def read_header(
    buf: bytes, pos: int, limit: int, depth: int, *, strict: bool = False
) -> tuple[int, int, int | None]:
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
        if strict:
            raise MalformedInputError("indefinite length (not DER)")
        if not tag & CONSTRUCTED:
            raise MalformedInputError("indefinite length on a primitive element")
        return tag, body, None
    size = first
    if first & 0x80:
        count = first & 0x7F
        if count > MAX_LENGTH_OCTETS or body + count > limit:
            raise MalformedInputError("bad ASN.1 length")
        size = int.from_bytes(buf[body : body + count], "big")
        if strict and (size < 0x80 or size >> (8 * (count - 1)) == 0):
            raise MalformedInputError("non-minimal length (not DER)")
        body += count
    if size > MAX_ELEMENT_BYTES or body + size > limit:
        raise MalformedInputError("ASN.1 length runs past its container")
    return tag, body, size


def read(
    buf: bytes, pos: int = 0, limit: int | None = None, depth: int = 0, *, strict: bool = False
) -> Tlv:
    """Read the element starting at buf[pos], which must end by `limit` (default: len(buf))."""
    limit = len(buf) if limit is None else limit
    tag, body, size = read_header(buf, pos, limit, depth, strict=strict)
    if size is not None:
        return Tlv(tag, pos, body, body + size, body + size)
    cur = body
    while True:
        if cur + 2 > limit:
            raise MalformedInputError("missing end-of-contents")
        if buf[cur] == 0 and buf[cur + 1] == 0:
            return Tlv(tag, pos, body, cur + 2, cur)
        cur = read(buf, cur, limit, depth + 1).end


def children(buf: bytes, parent: Tlv, depth: int = 0, *, strict: bool = False) -> list[Tlv]:
    """The elements inside a constructed element, in encoded order."""
    if not parent.constructed:
        raise MalformedInputError("expected a constructed ASN.1 element")
    out, cur = [], parent.body
    while cur < parent.body_end:
        child = read(buf, cur, parent.body_end, depth + 1, strict=strict)
        out.append(child)
        cur = child.end
    return out


def expect(tlv: Tlv, tag: int, what: str) -> Tlv:
    """Return tlv if it has the given tag, else raise naming what was expected."""
    if tlv.tag != tag:
        raise MalformedInputError(f"{what}: expected tag 0x{tag:02x}, got 0x{tlv.tag:02x}")
    return tlv


def content(buf: bytes, tlv: Tlv, *, strict: bool = False) -> bytes:
    """Content octets; a BER constructed string is the concatenation of its segments."""
    if not tlv.constructed:
        return buf[tlv.body : tlv.body_end]
    if strict:
        raise MalformedInputError("constructed string (not DER)")
    out: list[bytes] = []
    _walk(buf, tlv.start, tlv.end, 0, out, None, segments_only=True)
    return b"".join(out)


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
    el_tag, body, size = read_header(buf, pos, limit, depth)
    if not el_tag & CONSTRUCTED:
        end = body + size  # type: ignore[operator]  # primitives always have a length
        value = buf[body:end]
        out.append(value if segments_only else bytes([tag or el_tag]) + length(len(value))
                   + value)
        return end
    parts: list[bytes] = []
    stop = limit if size is None else body + size
    cur = body
    while True:
        if size is None and buf[cur : cur + 2] == b"\x00\x00":
            end = cur + 2
            break
        if size is not None and cur >= stop:
            end = stop
            break
        if cur >= stop:
            raise MalformedInputError("missing end-of-contents")
        cur = _walk(buf, cur, stop, depth + 1, parts, None, segments_only=segments_only)
    inner = b"".join(parts)
    out.extend(parts if segments_only else [bytes([tag or el_tag]) + length(len(inner))
                                            + inner])
    return end


def integer(buf: bytes, tlv: Tlv, *, strict: bool = False) -> int:
    """Decode an INTEGER element (two's complement); strict refuses padded encodings."""
    expect(tlv, INTEGER, "INTEGER")
    raw = buf[tlv.body : tlv.body_end]
    if not raw:
        raise MalformedInputError("empty INTEGER")
    if strict and len(raw) > 1 and (
        (raw[0] == 0 and raw[1] < 0x80) or (raw[0] == 0xFF and raw[1] >= 0x80)
    ):
        raise MalformedInputError("non-minimal INTEGER (not DER)")
    return int.from_bytes(raw, "big", signed=True)


def oid(buf: bytes, tlv: Tlv, *, strict: bool = False) -> str:
    """Decode an OBJECT IDENTIFIER element to dotted form; strict refuses padded arcs."""
    expect(tlv, OBJECT_IDENTIFIER, "OBJECT IDENTIFIER")
    raw = buf[tlv.body : tlv.body_end]
    if not raw or raw[-1] & 0x80:
        raise MalformedInputError("bad OBJECT IDENTIFIER")
    arcs, value, fresh = [], 0, True
    for byte in raw:
        if strict and fresh and byte == 0x80:
            raise MalformedInputError("non-minimal OBJECT IDENTIFIER arc (not DER)")
        value = (value << 7) | (byte & 0x7F)
        fresh = not byte & 0x80
        if fresh:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]]))


def boolean(buf: bytes, tlv: Tlv, *, strict: bool = False) -> bool:
    """Decode a BOOLEAN element: one octet, any non-zero TRUE in BER, only FF in DER."""
    expect(tlv, BOOLEAN, "BOOLEAN")
    raw = buf[tlv.body : tlv.body_end]
    if len(raw) != 1:
        raise MalformedInputError("BOOLEAN is not 1 octet")
    if strict and raw not in (b"\x00", b"\xff"):
        raise MalformedInputError("BOOLEAN is neither 00 nor FF (not DER)")
    return raw != b"\x00"


def octet_string(buf: bytes, tlv: Tlv, *, strict: bool = False) -> bytes:
    """Decode an OCTET STRING element; BER also allows the constructed (segmented) form."""
    if tlv.tag & ~CONSTRUCTED != OCTET_STRING:
        raise MalformedInputError(f"OCTET STRING: expected tag 0x04, got 0x{tlv.tag:02x}")
    return content(buf, tlv, strict=strict)  # strict refuses the constructed form
