"""Tolerant parsing of a TimeStampResp or TimeStampToken into the CMS parts a verifier needs.

The structure is walked with `tlv` so the exact bytes of certificates, eContent and signed
attributes survive; OpenSSL emits unsorted SET OFs and other TSAs BER lengths, which strict
DER decoders refuse. Typed values (status, TSTInfo, ESS attributes) are decoded with pyasn1.
Every malformation raises MalformedInputError; the verifier turns it into a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyasn1.codec.ber import decoder as ber_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.error import PyAsn1Error
from pyasn1_modules import rfc3161

from service.errors import MalformedInputError
from service.timestamping import tlv
from service.timestamping.der import CONSTRUCTED_CONTEXT, OCTET_STRING, SEQUENCE, SET
from service.timestamping.tlv import Tlv

# A token with a full chain is under 20 KiB; 256 KiB leaves room for long chains while keeping
# hostile nested indefinite-length input (walked once per level of descent) well under 0.5 s.
MAX_REPLY_BYTES = 256 << 10
# A TSA sends its own certificate and a few intermediates; more is abuse, not a chain.
MAX_CERTIFICATES = 16
# Real signed attributes are five or six; the bound stops quadratic work on hostile input.
MAX_SIGNED_ATTRIBUTES = 32

CTX0, CTX1 = CONSTRUCTED_CONTEXT | 0, CONSTRUCTED_CONTEXT | 1


@dataclass(frozen=True)
class StatusInfo:
    """PKIStatusInfo of a TimeStampResp."""

    status: int
    text: str | None
    fail_info: tuple[str, ...]


@dataclass(frozen=True)
class SignerInfo:
    """The one SignerInfo of a token, with the exact bytes the signature covers."""

    issuer: bytes | None  # DER Name, when identified by issuerAndSerialNumber
    serial: int | None
    subject_key_id: bytes | None  # when identified by subjectKeyIdentifier
    digest_alg: str
    signed_attrs: dict[str, list[bytes]]  # attribute type -> DER values; empty if absent
    signed_attrs_der: bytes | None  # SET OF (tag 0x31) with DER lengths: the signed message
    signature_alg: str
    signature_params: bytes | None  # DER parameters of signatureAlgorithm, if any
    signature: bytes


@dataclass(frozen=True)
class SignedData:
    """The parts of CMS SignedData a timestamp verifier looks at."""

    econtent_type: str
    econtent: bytes | None
    certificates: tuple[bytes, ...]  # DER, in the order received
    signers: tuple[SignerInfo, ...]


@dataclass(frozen=True)
class Envelope:
    """A reply split into its status (None for a bare token) and token ContentInfo."""

    status: StatusInfo | None
    content_type: str | None
    content: tuple[bytes, Tlv] | None  # the [0] EXPLICIT content of ContentInfo


def decode(buf: bytes, spec: object, what: str) -> object:
    """BER-decode one value with a pyasn1 spec, insisting on no trailing bytes."""
    try:
        value, rest = ber_decoder.decode(buf, asn1Spec=spec)
    except (PyAsn1Error, ValueError, TypeError, IndexError, KeyError, OverflowError) as exc:
        raise MalformedInputError(f"{what} does not decode: {exc.__class__.__name__}") from exc
    if rest:
        raise MalformedInputError(f"{what} has trailing bytes")
    return value


def directory_name_der(general_name: Any) -> bytes:
    """DER Name of a pyasn1 GeneralName directoryName, without the [4] tag pyasn1 keeps."""
    der: bytes = der_encoder.encode(general_name.getComponent())
    outer = tlv.read(der)
    if outer.tag != SEQUENCE:
        inner = tlv.children(der, outer)
        if len(inner) != 1:
            raise MalformedInputError("directoryName malformed")
        return der[inner[0].start : inner[0].end]
    return der


def parse_envelope(reply: bytes) -> Envelope:
    """Tell a TimeStampResp from a bare ContentInfo and split it."""
    if len(reply) > MAX_REPLY_BYTES:
        raise MalformedInputError(f"reply larger than {MAX_REPLY_BYTES} bytes")
    outer = tlv.expect(tlv.read(reply), SEQUENCE, "TimeStampResp or ContentInfo")
    if outer.end != len(reply):
        raise MalformedInputError("trailing bytes after the reply")
    parts = tlv.children(reply, outer)
    if parts and parts[0].tag == 0x06:  # ContentInfo starts with contentType
        return _content_info(reply, outer, None)
    if not parts or parts[0].tag != SEQUENCE or len(parts) > 2:
        raise MalformedInputError("neither a TimeStampResp nor a TimeStampToken")
    status = _status(reply[parts[0].start : parts[0].end])
    if len(parts) == 1:
        return Envelope(status, None, None)
    return _content_info(reply, tlv.expect(parts[1], SEQUENCE, "timeStampToken"), status)


def _content_info(buf: bytes, info: Tlv, status: StatusInfo | None) -> Envelope:
    parts = tlv.children(buf, info)
    if len(parts) != 2:
        raise MalformedInputError("ContentInfo needs contentType and content")
    content = tlv.expect(parts[1], CTX0, "ContentInfo content")
    inner = tlv.children(buf, content)
    if len(inner) != 1:
        raise MalformedInputError("ContentInfo content must hold one value")
    return Envelope(status, tlv.oid(buf, parts[0]), (buf, inner[0]))


def _status(der: bytes) -> StatusInfo:
    info: Any = decode(der, rfc3161.PKIStatusInfo(), "PKIStatusInfo")
    text = None
    if info["statusString"].isValue:
        text = "; ".join(str(s) for s in info["statusString"])
    fail: tuple[str, ...] = ()
    if info["failInfo"].isValue:
        names = {bit: name for name, bit in rfc3161.PKIFailureInfo.namedValues.items()}
        fail = tuple(names.get(i, f"bit{i}") for i, on in enumerate(info["failInfo"]) if on)
    return StatusInfo(int(info["status"]), text, fail)


def parse_signed_data(buf: bytes, sd: Tlv) -> SignedData:
    """Split SignedData; certificates are kept as received (re-encoded only if not DER)."""
    parts = tlv.children(buf, tlv.expect(sd, SEQUENCE, "SignedData"))
    if len(parts) < 4:
        raise MalformedInputError("SignedData too short")
    tlv.integer(buf, parts[0])  # version: any value, as OpenSSL accepts
    tlv.expect(parts[1], SET, "digestAlgorithms")
    encap = tlv.children(buf, tlv.expect(parts[2], SEQUENCE, "encapContentInfo"))
    if not 1 <= len(encap) <= 2:
        raise MalformedInputError("encapContentInfo malformed")
    econtent = None
    if len(encap) == 2:
        wrapped = tlv.children(buf, tlv.expect(encap[1], CTX0, "eContent"))
        if len(wrapped) != 1:
            raise MalformedInputError("eContent is not an OCTET STRING")
        econtent = tlv.octet_string(buf, wrapped[0])
    rest = parts[3:]
    certs: list[bytes] = []
    if rest and rest[0].tag == CTX0:
        certs = _certificates(buf, rest.pop(0))
    if rest and rest[0].tag == CTX1:  # crls: not used for timestamps
        rest.pop(0)
    if len(rest) != 1:
        raise MalformedInputError("SignedData has unexpected fields")
    infos = tlv.children(buf, tlv.expect(rest[0], SET, "signerInfos"))
    # RFC 3161 allows exactly one signer; parsing two is enough to report "more than one".
    signers = tuple(_signer_info(buf, s) for s in infos[:2])
    return SignedData(tlv.oid(buf, encap[0]), econtent, tuple(certs), signers)


def _certificates(buf: bytes, field: Tlv) -> list[bytes]:
    choices = tlv.children(buf, field)
    if len(choices) > MAX_CERTIFICATES:
        raise MalformedInputError(f"more than {MAX_CERTIFICATES} certificates")
    # Only plain X.509 certificates (SEQUENCE); attribute and other certificate kinds are skipped.
    return [buf[c.start : c.end] for c in choices if c.tag == SEQUENCE]


def _signer_info(buf: bytes, info: Tlv) -> SignerInfo:
    parts = tlv.children(buf, tlv.expect(info, SEQUENCE, "SignerInfo"))
    if len(parts) < 5:
        raise MalformedInputError("SignerInfo too short")
    version = tlv.integer(buf, parts[0])
    issuer = serial = ski = None
    sid = parts[1]
    if sid.tag == SEQUENCE:
        ias = tlv.children(buf, sid)
        if len(ias) != 2 or ias[0].tag != SEQUENCE:
            raise MalformedInputError("issuerAndSerialNumber malformed")
        issuer, serial = tlv.to_der_lengths(buf, ias[0]), tlv.integer(buf, ias[1])
    elif sid.tag & ~0x20 == 0x80:  # [0] IMPLICIT SubjectKeyIdentifier
        ski = tlv.content(buf, sid)
    else:
        raise MalformedInputError("unknown SignerIdentifier")
    if version != (1 if ski is None else 3):  # RFC 5652 5.3: the version follows the sid kind
        raise MalformedInputError(f"SignerInfo version {version} does not fit its identifier")
    digest_alg = _algorithm(buf, parts[2])[0]
    rest = parts[3:]
    attrs: dict[str, list[bytes]] = {}
    attrs_der = None
    if rest[0].tag == CTX0:
        attrs_der = tlv.to_der_lengths(buf, rest.pop(0), tag=SET)
        attrs = _attributes(attrs_der)
    if len(rest) < 2:
        raise MalformedInputError("SignerInfo lacks signature")
    sig_alg, sig_params = _algorithm(buf, rest[0])
    signature = tlv.content(buf, tlv.expect(rest[1], OCTET_STRING, "signature"))
    return SignerInfo(issuer, serial, ski, digest_alg, attrs, attrs_der, sig_alg, sig_params,
                      signature)


def _algorithm(buf: bytes, alg: Tlv) -> tuple[str, bytes | None]:
    parts = tlv.children(buf, tlv.expect(alg, SEQUENCE, "AlgorithmIdentifier"))
    if not 1 <= len(parts) <= 2:
        raise MalformedInputError("AlgorithmIdentifier malformed")
    params = tlv.to_der_lengths(buf, parts[1]) if len(parts) == 2 else None
    return tlv.oid(buf, parts[0]), params


def _attributes(der: bytes) -> dict[str, list[bytes]]:
    attrs: dict[str, list[bytes]] = {}
    items = tlv.children(der, tlv.read(der))
    if len(items) > MAX_SIGNED_ATTRIBUTES:
        raise MalformedInputError(f"more than {MAX_SIGNED_ATTRIBUTES} signed attributes")
    for item in items:
        parts = tlv.children(der, tlv.expect(item, SEQUENCE, "Attribute"))
        if len(parts) != 2:
            raise MalformedInputError("Attribute malformed")
        values = tlv.children(der, tlv.expect(parts[1], SET, "attrValues"))
        # A repeated attribute type is kept as extra values; single-valued checks reject it.
        attrs.setdefault(tlv.oid(der, parts[0]), []).extend(
            der[v.start : v.end] for v in values
        )
    return attrs
