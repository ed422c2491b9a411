"""Loading certificates from tokens and checking their signatures, defensively.

Real TSA chains carry what cryptography's strict paths refuse or warn about: BER lengths,
SHA-1 signatures, zero or negative serial numbers. These helpers accept them where OpenSSL
does, leaving the decision (and the warning in the verdict) to the verifier.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.utils import CryptographyDeprecationWarning

from service.errors import MalformedInputError
from service.timestamping import tlv
from service.timestamping.der import BIT_STRING, CONSTRUCTED_CONTEXT

_E = TypeVar("_E", bound=x509.ExtensionType)


def check_certificate_signature(cert: x509.Certificate, key: Any) -> None:
    """Raise InvalidSignature unless `key` signed `cert`; UnsupportedAlgorithm if unknown."""
    oid = cert.signature_algorithm_oid.dotted_string
    try:
        params = cert.signature_algorithm_parameters
        hash_alg = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        raise UnsupportedAlgorithm(f"signature algorithm {oid} is not supported") from None
    if hash_alg is not None and hash_alg.name not in _CERT_HASHES:
        raise UnsupportedAlgorithm(f"signature hash {hash_alg.name} ({oid}) is not accepted")
    if _signature_unused_bits(cert):
        raise InvalidSignature("the signature BIT STRING has unused bits")
    sig, tbs = cert.signature, cert.tbs_certificate_bytes
    # cryptography gives no parameters for the legacy SHA-1 OIDs: PKCS#1 v1.5 and ECDSA then.
    if isinstance(key, rsa.RSAPublicKey) and hash_alg is not None:
        pad = params if isinstance(params, padding.PSS) else padding.PKCS1v15()
        key.verify(sig, tbs, pad, hash_alg)
    elif isinstance(key, ec.EllipticCurvePublicKey) and hash_alg is not None:
        key.verify(sig, tbs, ec.ECDSA(hash_alg))
    elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey) and hash_alg is None:
        key.verify(sig, tbs)
    elif isinstance(key, dsa.DSAPublicKey) and hash_alg is not None:
        key.verify(sig, tbs, hash_alg)
    else:
        raise InvalidSignature  # the algorithm does not fit the issuer's key


def _signature_unused_bits(cert: x509.Certificate) -> int:
    """The unused-bits octet of signatureValue, which cryptography drops and OpenSSL checks.

    A signature is a whole number of octets; OpenSSL's ASN1_item_verify refuses any other
    count ("invalid bit string bits leftover"), so a certificate whose signature encoding was
    altered there must not verify here either.
    """
    der = cert.public_bytes(serialization.Encoding.DER)
    try:
        signature = tlv.children(der, tlv.read(der))[2]
        return tlv.content(der, tlv.expect(signature, BIT_STRING, "signatureValue"))[0]
    except (MalformedInputError, IndexError):
        return 1  # no readable signatureValue: nothing to verify against


# Hashes accepted in certificate signatures: SHA-1 for old hierarchies (with a warning), not MD5.
_CERT_HASHES = frozenset({"sha1", "sha224", "sha256", "sha384", "sha512"})


def extension(cert: x509.Certificate, kind: type[_E]) -> _E | None:
    """The extension's value, None when the certificate has none."""
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None



# What cryptography raises for certificates it cannot parse or use.
_CERT_ERRORS = (ValueError, x509.InvalidVersion, x509.DuplicateExtension,
                x509.UnsupportedGeneralNameType, UnsupportedAlgorithm)


@functools.lru_cache(maxsize=256)
def load_certificate(der: bytes) -> x509.Certificate:
    """Load a token certificate; BER lengths are normalised first. Cached: TSAs repeat them.

    Raises ValueError for anything that is not a usable certificate.
    """
    try:
        return _parsed(_load_der(der))
    except _CERT_ERRORS:
        pass
    try:
        return _parsed(_load_der(tlv.to_der_lengths(der)))
    except (*_CERT_ERRORS, MalformedInputError) as exc:
        raise ValueError(f"certificate does not parse: {exc}") from exc


def _load_der(der: bytes) -> x509.Certificate:
    """Load DER; a zero or negative serial (seen in real TSA chains) loads without the
    deprecation warning cryptography would print to the user for it.

    The warning filter is changed only for such certificates: `catch_warnings` is process-wide.
    """
    if _der_serial_positive(der):
        return x509.load_der_x509_certificate(der)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return x509.load_der_x509_certificate(der)


def _der_serial_positive(der: bytes) -> bool:
    """Certificate -> TBSCertificate -> [0] version? -> serialNumber > 0; True if unreadable."""
    try:
        tbs = tlv.children(der, tlv.read(der))[0]
        fields = tlv.children(der, tbs)
        if fields and fields[0].tag == CONSTRUCTED_CONTEXT:
            fields = fields[1:]
        return tlv.integer(der, fields[0]) > 0
    except (MalformedInputError, IndexError):
        return True  # cryptography will say what is wrong


@functools.lru_cache(maxsize=1024)
def certificate_serial(cert: x509.Certificate) -> int:
    """The serial number, read from the TBSCertificate DER rather than `cert.serial_number`.

    cryptography warns on every read of a zero or negative serial (and says it will refuse
    them); some TSA hierarchies have one, so the verifier reads it itself, without warning.
    """
    tbs = cert.tbs_certificate_bytes
    try:
        fields = tlv.children(tbs, tlv.read(tbs))
        if fields and fields[0].tag == CONSTRUCTED_CONTEXT:  # [0] EXPLICIT version
            fields = fields[1:]
        return tlv.integer(tbs, fields[0])
    except (MalformedInputError, IndexError) as exc:
        raise ValueError("certificate serial number does not parse") from exc


def _parsed(cert: x509.Certificate) -> x509.Certificate:
    """cryptography parses fields lazily; touch every one the steps use so errors surface here."""
    _ = (cert.issuer.rfc4514_string(), cert.subject.rfc4514_string(), certificate_serial(cert),
         cert.not_valid_before_utc, cert.not_valid_after_utc, list(cert.extensions),
         cert.public_key())
    return cert
