"""RFC 3161 TimeStampReq, both ways: the client's encoder and the built-in TSA's strict parser.

One module owns the query so a request the client builds is, by construction, one the
built-in TSA parses: `encode_query` only takes what `parse_query` accepts (the hashes in
ACCEPTED_HASHES, their digest sizes, nonces up to MAX_NONCE_OCTETS), and a test round-trips
every accepted hash. A bad query earns the PKIFailureInfo bit `parse_query` names.

    TimeStampReq ::= SEQUENCE {
        version        INTEGER { v1(1) },
        messageImprint MessageImprint,           -- SEQUENCE { AlgorithmIdentifier, OCTET STRING }
        reqPolicy      TSAPolicyId OPTIONAL,     -- OBJECT IDENTIFIER
        nonce          INTEGER OPTIONAL,
        certReq        BOOLEAN DEFAULT FALSE,
        extensions     [0] IMPLICIT Extensions OPTIONAL }
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import rfc3161ng
from pyasn1.codec.der import encoder
from pyasn1.error import PyAsn1Error

from service.errors import ChronosealError, MalformedInputError
from service.timestamping import der, tlv
from service.timestamping.tlv import Tlv

# Hash algorithms the TSA stamps, by OID, with their digest length: the SHA-2 sizes our verifier
# (oids.py) and `openssl ts` both handle. SHA-1 and MD5 are refused (badAlg): a collision-prone
# imprint would make the token prove nothing.
ACCEPTED_HASHES: dict[str, tuple[str, int]] = {
    "2.16.840.1.101.3.4.2.1": ("sha256", 32),
    "2.16.840.1.101.3.4.2.2": ("sha384", 48),
    "2.16.840.1.101.3.4.2.3": ("sha512", 64),
}
# A nonce is an opaque random number; 64 octets is far more than any client sends and bounds
# what we echo back.
MAX_NONCE_OCTETS = 64


class FailInfo(IntEnum):
    """PKIFailureInfo bit numbers (RFC 3161 section 2.4.2)."""

    BAD_ALG = 0
    BAD_REQUEST = 2
    BAD_DATA_FORMAT = 5
    TIME_NOT_AVAILABLE = 14
    UNACCEPTED_POLICY = 15
    UNACCEPTED_EXTENSION = 16
    ADD_INFO_NOT_AVAILABLE = 17
    SYSTEM_FAILURE = 25


class QueryRejectedError(ChronosealError):
    """The query cannot be stamped; `fail_info` is the bit the rejection carries."""

    def __init__(self, fail_info: FailInfo, message: str) -> None:
        super().__init__(message)
        self.fail_info = fail_info


@dataclass(frozen=True, slots=True)
class TimeStampQuery:
    """A parsed query. The raw DER pieces are echoed verbatim into the TSTInfo."""

    hash_oid: str
    digest: bytes
    imprint_der: bytes  # the whole MessageImprint element, copied into TSTInfo.messageImprint
    req_policy: str | None
    nonce_der: bytes | None  # the whole nonce INTEGER element, copied into TSTInfo.nonce
    cert_req: bool

    @property
    def hash_name(self) -> str:
        return ACCEPTED_HASHES[self.hash_oid][0]

    @property
    def nonce(self) -> int | None:
        if self.nonce_der is None:
            return None
        return tlv.integer(self.nonce_der, tlv.read(self.nonce_der, strict=True), strict=True)


def encode_query(digest: bytes, *, hash_name: str, nonce: int | None, cert_req: bool,
                 policy: str | None) -> bytes:
    """The DER TimeStampReq a client sends: v1, the imprint `digest` under `hash_name`
    (parameters absent, RFC 5754), `nonce` and `reqPolicy` when given, certReq as asked.

    Every parameter is explicit: rfc3161ng's defaults (SHA-1, no nonce) never apply. Encoded
    with rfc3161ng's schema and pyasn1's DER encoder (the team's RFC 3161 dependency, and off
    the hot path: one query per TSA per batch), so `parse_query` is checked against an
    independent encoder rather than its own writer.
    """
    sizes = dict(ACCEPTED_HASHES.values())
    if hash_name not in sizes:
        raise MalformedInputError(f"hash algorithm {hash_name!r} is not one of {sorted(sizes)}")
    if len(digest) != sizes[hash_name]:
        raise MalformedInputError(f"a {hash_name} digest is {sizes[hash_name]} bytes")
    # Octets of the nonce INTEGER's content, as der.integer writes it and parse_query bounds it.
    if nonce is not None and (nonce + (nonce < 0)).bit_length() // 8 + 1 > MAX_NONCE_OCTETS:
        raise MalformedInputError(f"nonce longer than {MAX_NONCE_OCTETS} octets")
    try:
        request = rfc3161ng.make_timestamp_request(
            digest=digest, hashname=hash_name, nonce=nonce, tsa_policy_id=policy,
            include_tsa_certificate=cert_req,  # certReq; FALSE is the DEFAULT, so omitted
        )
        return bytes(encoder.encode(request))
    except PyAsn1Error as exc:  # a policy that is not a dotted OID
        raise MalformedInputError(f"cannot encode the query: {exc}") from exc


def _malformed(message: str) -> QueryRejectedError:
    return QueryRejectedError(FailInfo.BAD_DATA_FORMAT, message)


def _parse_imprint(data: bytes, imprint: Tlv) -> tuple[str, bytes]:
    parts = tlv.children(data, imprint, strict=True)
    if len(parts) != 2 or parts[0].tag != der.SEQUENCE or parts[1].tag != der.OCTET_STRING:
        raise _malformed("messageImprint is not SEQUENCE { AlgorithmIdentifier, OCTET STRING }")
    alg = tlv.children(data, parts[0], strict=True)
    if not alg or alg[0].tag != der.OBJECT_IDENTIFIER:
        raise _malformed("hashAlgorithm has no OID")
    if len(alg) > 2 or (len(alg) == 2 and data[alg[1].start:alg[1].end] != der.null()):
        raise _malformed("hashAlgorithm parameters must be absent or NULL")
    hash_oid = tlv.oid(data, alg[0], strict=True)
    digest = tlv.octet_string(data, parts[1], strict=True)
    if hash_oid not in ACCEPTED_HASHES:
        raise QueryRejectedError(FailInfo.BAD_ALG, f"hash algorithm {hash_oid} is not accepted")
    if len(digest) != ACCEPTED_HASHES[hash_oid][1]:
        raise _malformed(f"imprint is {len(digest)} octets, {ACCEPTED_HASHES[hash_oid][0]} "
                         f"gives {ACCEPTED_HASHES[hash_oid][1]}")
    return hash_oid, digest


def parse_query(data: bytes) -> TimeStampQuery:
    """Parse a DER TimeStampReq; raises QueryRejectedError with the failInfo to answer."""
    try:
        return _parse(data)
    except MalformedInputError as exc:
        raise _malformed(f"not a DER TimeStampReq: {exc}") from exc


def _parse(data: bytes) -> TimeStampQuery:
    outer = tlv.read(data, strict=True)
    if outer.tag != der.SEQUENCE or outer.end != len(data):
        raise _malformed("not a single DER SEQUENCE")
    fields = tlv.children(data, outer, strict=True)
    if len(fields) < 2 or fields[0].tag != der.INTEGER or fields[1].tag != der.SEQUENCE:
        raise _malformed("missing version or messageImprint")
    if tlv.integer(data, fields[0], strict=True) != 1:
        raise _malformed("version is not v1")
    hash_oid, digest = _parse_imprint(data, fields[1])
    imprint_der = data[fields[1].start:fields[1].end]
    req_policy: str | None = None
    nonce_der: bytes | None = None
    cert_req = False
    # The optional fields must come in schema order; `expected` is what may still follow.
    expected = [der.OBJECT_IDENTIFIER, der.INTEGER, der.BOOLEAN, der.CONSTRUCTED_CONTEXT]
    for field in fields[2:]:
        if field.tag not in expected:
            raise _malformed(f"unexpected or out-of-order field with tag 0x{field.tag:02x}")
        expected = expected[expected.index(field.tag) + 1:]
        if field.tag == der.OBJECT_IDENTIFIER:
            req_policy = tlv.oid(data, field, strict=True)
        elif field.tag == der.INTEGER:
            tlv.integer(data, field, strict=True)
            if field.body_end - field.body > MAX_NONCE_OCTETS:
                raise _malformed(f"nonce longer than {MAX_NONCE_OCTETS} octets")
            nonce_der = data[field.start:field.end]
        elif field.tag == der.BOOLEAN:
            cert_req = tlv.boolean(data, field, strict=True)
        else:
            raise QueryRejectedError(FailInfo.UNACCEPTED_EXTENSION, "no request extension is "
                                     "supported")
    return TimeStampQuery(hash_oid, digest, imprint_der, req_policy, nonce_der, cert_req)
