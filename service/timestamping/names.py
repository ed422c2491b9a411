"""Compare X.500 names as RFC 5280 section 7.1 asks, not as bytes.

Two encodings of one name (a SignerIdentifier issuer written "nv-sa" and the certificate's
"nv-Sa", a PrintableString against a UTF8String) must match, as they do for OpenSSL, which
compares a canonical form too. `name_key` is that canonical form: the RDN sequence kept in
order, the attributes of each RDN as a set, string values case-folded and whitespace-normalised
(RFC 4518 reduced to NFKC, case folding and insignificant space), any other value exact.
"""

from __future__ import annotations

import functools
import unicodedata

from service.errors import MalformedInputError
from service.timestamping import tlv
from service.timestamping.der import SEQUENCE, SET

# Directory string tags and how their octets decode (T.61 is read as Latin-1, as OpenSSL does).
_STRING_CODECS: dict[int, str] = {
    0x0C: "utf-8",  # UTF8String
    0x13: "ascii",  # PrintableString
    0x14: "latin-1",  # TeletexString
    0x16: "ascii",  # IA5String
    0x1A: "ascii",  # VisibleString
    0x1C: "utf-32-be",  # UniversalString
    0x1E: "utf-16-be",  # BMPString
}
# Real names have a handful of RDNs; this bounds work on hostile input.
MAX_RDNS = 64

Value = tuple[str, str] | tuple[str, int, bytes]
NameKey = tuple[tuple[tuple[str, Value], ...], ...]


@functools.lru_cache(maxsize=1024)
def name_key(der: bytes) -> NameKey:
    """The comparison form of a DER (or BER) Name; MalformedInputError if it is not a Name."""
    outer = tlv.expect(tlv.read(der), SEQUENCE, "Name")
    rdns = tlv.children(der, outer)
    if len(rdns) > MAX_RDNS:
        raise MalformedInputError(f"Name with more than {MAX_RDNS} RDNs")
    key = []
    for rdn in rdns:
        atvs = []
        for atv in tlv.children(der, tlv.expect(rdn, SET, "RelativeDistinguishedName")):
            parts = tlv.children(der, tlv.expect(atv, SEQUENCE, "AttributeTypeAndValue"))
            if len(parts) != 2:
                raise MalformedInputError("AttributeTypeAndValue malformed")
            atvs.append((tlv.oid(der, parts[0]), _value(der, parts[1])))
        key.append(tuple(sorted(atvs)))
    return tuple(key)


def same_name(a: bytes, b: bytes) -> bool:
    """RFC 5280 7.1 equality of two DER Names; exact bytes decide if either does not parse."""
    if a == b:
        return True
    try:
        return name_key(a) == name_key(b)
    except MalformedInputError:
        return False


def _value(der: bytes, value: tlv.Tlv) -> Value:
    codec = _STRING_CODECS.get(value.tag)
    if codec is None:
        return ("exact", value.tag, tlv.content(der, value))
    try:
        text = tlv.content(der, value).decode(codec)
    except UnicodeDecodeError:
        return ("exact", value.tag, tlv.content(der, value))
    return ("text", " ".join(unicodedata.normalize("NFKC", text).casefold().split()))
