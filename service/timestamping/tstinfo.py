"""Decode TSTInfo (RFC 3161 section 2.4.2) into plain Python values."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyasn1_modules import rfc3161

from service.errors import MalformedInputError
from service.timestamping import tlv
from service.timestamping.cms import decode, directory_name_der

# genTime is GeneralizedTime in UTC ("Z"), optional fraction of a second (RFC 3161 2.4.2).
_GEN_TIME = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,6})\d*)?Z")
# Short names for the name attributes TSAs use; others print as dotted OIDs.
_NAME_ATTRS = {
    "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O",
    "2.5.4.11": "OU", "2.5.4.5": "serialNumber", "1.2.840.113549.1.9.1": "emailAddress",
    "2.5.4.97": "organizationIdentifier",
}


@dataclass(frozen=True)
class TSTInfo:
    """The fields of a TSTInfo the verdict reports or checks."""

    version: int
    policy: str
    hash_oid: str
    hash_params_ok: bool  # parameters absent or NULL, as RFC 5754 requires
    hashed_message: bytes
    serial: int
    gen_time: datetime
    accuracy: dict[str, int] | None
    ordering: bool
    nonce: int | None
    tsa_name: str | None


def parse_tst_info(econtent: bytes) -> TSTInfo:
    """Decode the eContent octets of a timestamp token."""
    info: Any = decode(econtent, rfc3161.TSTInfo(), "TSTInfo")
    imprint = info["messageImprint"]
    params = imprint["hashAlgorithm"]["parameters"]
    params_ok = not params.isValue or bytes(params) == b"\x05\x00"
    accuracy = None
    if info["accuracy"].isValue:
        acc = info["accuracy"]
        accuracy = {k: int(acc[k]) for k in ("seconds", "millis", "micros") if acc[k].isValue}
    return TSTInfo(
        version=int(info["version"]),
        policy=str(info["policy"]),
        hash_oid=str(imprint["hashAlgorithm"]["algorithm"]),
        hash_params_ok=params_ok,
        hashed_message=bytes(imprint["hashedMessage"]),
        serial=int(info["serialNumber"]),
        gen_time=_gen_time(str(info["genTime"])),
        accuracy=accuracy,
        ordering=bool(info["ordering"]),
        nonce=int(info["nonce"]) if info["nonce"].isValue else None,
        tsa_name=_general_name(info["tsa"]) if info["tsa"].isValue else None,
    )


def _gen_time(text: str) -> datetime:
    match = _GEN_TIME.fullmatch(text)
    if not match:
        raise MalformedInputError(f"genTime {text!r} is not UTC GeneralizedTime")
    *parts, fraction = match.groups()
    year, month, day, hour, minute, second = (int(p) for p in parts)
    micros = int((fraction or "0").ljust(6, "0"))
    try:
        return datetime(year, month, day, hour, minute, second, micros, tzinfo=UTC)
    except ValueError as exc:
        raise MalformedInputError(f"genTime {text!r} is not a valid time") from exc


def _general_name(name: Any) -> str:
    """Render the TSA GeneralName for humans (directory names as RFC 4514-like strings)."""
    kind = name.getName()
    value = name.getComponent()
    if kind == "directoryName":
        return format_name(directory_name_der(name))
    if kind in ("dNSName", "rfc822Name", "uniformResourceIdentifier"):
        return f"{kind}:{value}"
    return f"{kind}:{value.prettyPrint()}"


def format_name(der: bytes) -> str:
    """A DER Name as "CN=...,O=..." (most specific first), without needing a full parser."""
    rdns = []
    for rdn in tlv.children(der, tlv.read(der)):
        pairs = []
        for atv in tlv.children(der, rdn):
            parts = tlv.children(der, atv)
            if len(parts) != 2:
                raise MalformedInputError("AttributeTypeAndValue malformed")
            kind, value = parts
            label = _NAME_ATTRS.get(tlv.oid(der, kind), tlv.oid(der, kind))
            text = tlv.content(der, value).decode("utf-8", "replace")
            pairs.append(f"{label}={text}")
        rdns.append("+".join(pairs))
    return ",".join(reversed(rdns))
