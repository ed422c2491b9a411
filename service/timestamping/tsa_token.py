"""Assemble and sign RFC 3161 timeStampTokens (CMS SignedData over a TSTInfo) as raw DER.

Everything that does not change between tokens — certificates, the signer identifier, the
ESS signing-certificate-v2 attribute, algorithm identifiers, the TSA name — is encoded once in
__init__; a token then costs one SHA-256, one signature and some byte concatenation.

What is hashed and signed (RFC 5652 section 5.4, RFC 3161 section 2.4.2):
  * message-digest attribute = SHA-256(DER of TSTInfo), i.e. the eContent OCTET STRING's content;
  * signature = Sign(SHA-256, DER of the signed attributes encoded as a SET OF (tag 0x31),
    elements sorted as DER requires) — the same bytes sit in the SignerInfo under tag [0] (0xA0).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from service.timestamping import der
from service.timestamping.tsa_keys import TSAKeyMaterial
from service.timestamping.tsa_query import TimeStampQuery

ID_SIGNED_DATA = der.oid("1.2.840.113549.1.7.2")
ID_CT_TSTINFO = der.oid("1.2.840.113549.1.9.16.1.4")
ID_CONTENT_TYPE = der.oid("1.2.840.113549.1.9.3")
ID_MESSAGE_DIGEST = der.oid("1.2.840.113549.1.9.4")
ID_SIGNING_TIME = der.oid("1.2.840.113549.1.9.5")
ID_SIGNING_CERTIFICATE_V2 = der.oid("1.2.840.113549.1.9.16.2.47")
# SHA-256 AlgorithmIdentifier with absent parameters (RFC 5754 section 2).
SHA256_ALG = der.sequence(der.oid("2.16.840.1.101.3.4.2.1"))
ECDSA_SHA256_ALG = der.sequence(der.oid("1.2.840.10045.4.3.2"))  # RFC 5758: no parameters
RSA_SHA256_ALG = der.sequence(der.oid("1.2.840.113549.1.1.11"), der.null())  # RFC 4055: NULL
GRANTED_STATUS = der.sequence(der.integer(0))  # PKIStatusInfo { status granted(0) }


@dataclass(frozen=True)
class Accuracy:
    """TSTInfo accuracy: how far genTime may be from true UTC (RFC 3161 section 2.4.2)."""

    seconds: int = 1
    millis: int = 0
    micros: int = 0

    def to_der(self) -> bytes:
        """Accuracy ::= SEQUENCE { seconds INTEGER OPT, millis [0] OPT, micros [1] OPT }."""
        parts = [der.integer(self.seconds)] if self.seconds else []
        if self.millis:
            parts.append(der.tlv(der.CONTEXT | 0, der.integer(self.millis)[2:]))
        if self.micros:
            parts.append(der.tlv(der.CONTEXT | 1, der.integer(self.micros)[2:]))
        return der.sequence(*parts) if parts else b""


def _attribute(attr_type: bytes, value: bytes) -> bytes:
    """Attribute ::= SEQUENCE { attrType OID, attrValues SET OF value } with one value."""
    return der.sequence(attr_type, der.tlv(der.SET, value))


def _signing_time(moment: datetime) -> bytes:
    """RFC 5652 11.3: UTCTime for 1950-2049, else GeneralizedTime without fractions."""
    if 1950 <= moment.year < 2050:
        return der.utc_time(moment)
    return der.generalized_time(moment.replace(microsecond=0))


class TokenSigner:
    """Signs tokens for one TSA key and certificate; thread-safe (holds no per-token state)."""

    def __init__(self, material: TSAKeyMaterial, *, accuracy: Accuracy,
                 signing_time: bool) -> None:
        cert = material.tsa_cert
        cert_der = cert.public_bytes(serialization.Encoding.DER)
        issuer_der = cert.issuer.public_bytes()
        self._key = material.tsa_key
        self._signing_time = signing_time
        self._accuracy = accuracy.to_der()
        # TSTInfo.tsa = [0] EXPLICIT GeneralName, directoryName [4] EXPLICIT Name (a CHOICE).
        self._tsa_name = der.explicit(0, der.explicit(4, cert.subject.public_bytes()))
        self._content_type_attr = _attribute(ID_CONTENT_TYPE, ID_CT_TSTINFO)
        # ESSCertIDv2 { hashAlgorithm DEFAULT sha256 (so omitted in DER), certHash =
        # SHA-256(DER of the TSA certificate), issuerSerial { GeneralNames, serialNumber } }.
        issuer_serial = der.sequence(der.sequence(der.explicit(4, issuer_der)),
                                     der.integer(cert.serial_number))
        ess_cert_id = der.sequence(der.octet_string(hashlib.sha256(cert_der).digest()),
                                   issuer_serial)
        self._ess_attr = _attribute(ID_SIGNING_CERTIFICATE_V2,
                                    der.sequence(der.sequence(ess_cert_id)))
        # SignerInfo version 1 with sid = IssuerAndSerialNumber, digestAlgorithm sha256.
        self._signer_head = (der.integer(1)
                             + der.sequence(issuer_der, der.integer(cert.serial_number))
                             + SHA256_ALG)
        rsa_key = isinstance(self._key, rsa.RSAPrivateKey)
        self._sig_alg = RSA_SHA256_ALG if rsa_key else ECDSA_SHA256_ALG
        # SignedData head: version 3 (eContentType is not id-data), digestAlgorithms SET.
        self._signed_data_head = der.integer(3) + der.tlv(der.SET, SHA256_ALG)
        # certificates [0] IMPLICIT SET OF Certificate: the TSA certificate; the root is the
        # relying party's trust anchor and is left out, as is usual.
        self._certificates = der.tlv(der.CONSTRUCTED_CONTEXT | 0, cert_der)

    def tst_info(self, query: TimeStampQuery, *, policy: bytes, serial: int,
                 gen_time: datetime) -> bytes:
        """DER TSTInfo; the imprint and nonce are the query's own DER elements, echoed."""
        return der.sequence(
            der.integer(1), policy, query.imprint_der, der.integer(serial),
            der.generalized_time(gen_time), self._accuracy, query.nonce_der or b"",
            self._tsa_name,
        )

    def _sign(self, data: bytes) -> bytes:
        if isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))

    def sign(self, query: TimeStampQuery, *, policy: bytes, serial: int,
             gen_time: datetime) -> bytes:
        """The timeStampToken: DER ContentInfo { id-signedData, [0] SignedData }."""
        tst_info = self.tst_info(query, policy=policy, serial=serial, gen_time=gen_time)
        attrs = [self._content_type_attr, self._ess_attr,
                 _attribute(ID_MESSAGE_DIGEST, der.octet_string(hashlib.sha256(tst_info).digest()))]
        if self._signing_time:
            attrs.append(_attribute(ID_SIGNING_TIME, _signing_time(gen_time)))
        signed_attrs = der.set_of(attrs)  # exactly the bytes signed (tag 0x31)
        signature = self._sign(signed_attrs)
        signer_info = der.sequence(
            self._signer_head,
            bytes((der.CONSTRUCTED_CONTEXT | 0,)) + signed_attrs[1:],  # [0] IMPLICIT, same body
            self._sig_alg, der.octet_string(signature),
        )
        signed_data = der.sequence(
            self._signed_data_head,
            der.sequence(ID_CT_TSTINFO, der.explicit(0, der.octet_string(tst_info))),
            self._certificates if query.cert_req else b"",
            der.tlv(der.SET, signer_info),
        )
        return der.sequence(ID_SIGNED_DATA, der.explicit(0, signed_data))


def granted_response(token: bytes) -> bytes:
    """TimeStampResp { status granted, timeStampToken }."""
    return der.sequence(GRANTED_STATUS, token)


def rejection_response(fail_bit: int, text: str) -> bytes:
    """TimeStampResp { status { rejection(2), statusString, failInfo } } with no token."""
    status = der.sequence(der.integer(2), der.sequence(der.utf8_string(text)),
                          der.named_bits([fail_bit]))
    return der.sequence(status)
