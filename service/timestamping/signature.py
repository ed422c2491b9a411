"""Check a SignerInfo signature with the signer's public key, for every algorithm TSAs use."""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from pyasn1_modules import rfc4055

from service.errors import MalformedInputError, VerificationError
from service.timestamping import oids
from service.timestamping.cms import SignerInfo, decode

# Curves accepted for ECDSA signers; smaller or exotic curves are not used by TSAs.
EC_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)


def check_signature(public_key: Any, signer: SignerInfo, message: bytes) -> None:
    """Raise VerificationError unless `signature` is valid over `message` (the signed attrs).

    The hash is the SignerInfo digestAlgorithm, as OpenSSL uses it (rsaEncryption and
    id-ecPublicKey name none); a signature algorithm naming another hash is refused. RSA-PSS
    takes its hash from its parameters; Ed25519 signs the message itself (RFC 8419).
    """
    family, named_hash = oids.SIGNATURE_ALGORITHMS.get(signer.signature_alg, (None, None))
    if family is None:
        raise VerificationError(f"unsupported signature algorithm {signer.signature_alg}")
    hash_name = oids.HASH_NAMES.get(signer.digest_alg)
    if named_hash is not None and named_hash != hash_name:
        raise VerificationError("signatureAlgorithm hash differs from digestAlgorithm")
    try:
        if family == "ed25519":
            if not isinstance(public_key, ed25519.Ed25519PublicKey):
                raise VerificationError("Ed25519 signature but the certificate key is not")
            public_key.verify(signer.signature, message)
        elif family == "ec":
            if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
                public_key.curve, EC_CURVES
            ):
                raise VerificationError("ECDSA signature but the key is not P-256/384/521")
            public_key.verify(signer.signature, message, ec.ECDSA(_hash(hash_name)))
        elif not isinstance(public_key, rsa.RSAPublicKey):
            raise VerificationError("RSA signature but the certificate key is not RSA")
        elif family == "rsa-pss":
            pss, pss_hash = _pss_padding(signer.signature_params)
            public_key.verify(signer.signature, message, pss, _hash(pss_hash))
        else:
            public_key.verify(signer.signature, message, padding.PKCS1v15(), _hash(hash_name))
    except InvalidSignature as exc:
        raise VerificationError("signature does not verify with the signer certificate") from exc
    except (UnsupportedAlgorithm, ValueError) as exc:
        raise VerificationError(f"signature cannot be checked: {exc}") from exc


def _hash(name: str | None) -> Any:
    if name is None:
        raise VerificationError("signature hash algorithm is not supported")
    return oids.hash_class(name)


def _pss_padding(params: bytes | None) -> tuple[padding.PSS, str]:
    """PSS parameters from RSASSA-PSS-params; absent fields take the RFC 4055 SHA-1 defaults."""
    if params is None:
        raise VerificationError("RSASSA-PSS signature without parameters")
    try:
        return _pss_fields(params)
    except MalformedInputError as exc:
        raise VerificationError(str(exc)) from exc


def _pss_fields(params: bytes) -> tuple[padding.PSS, str]:
    value: Any = decode(params, rfc4055.RSASSA_PSS_params(), "RSASSA-PSS-params")
    hash_oid = mgf_hash_oid = oids.HASH_OIDS["sha1"]
    if value["hashAlgorithm"].isValue:
        hash_oid = str(value["hashAlgorithm"]["algorithm"])
    if value["maskGenAlgorithm"].isValue:
        mgf = value["maskGenAlgorithm"]
        if str(mgf["algorithm"]) != oids.MGF1:
            raise VerificationError("RSASSA-PSS mask generation is not MGF1")
        inner: Any = decode(
            bytes(mgf["parameters"]), rfc4055.rfc5280.AlgorithmIdentifier(), "MGF1 parameters"
        )
        mgf_hash_oid = str(inner["algorithm"])
    if int(value["trailerField"]) != 1:
        raise VerificationError("RSASSA-PSS trailerField must be 1")
    hash_name = oids.HASH_NAMES.get(hash_oid)
    mgf_hash = oids.HASH_NAMES.get(mgf_hash_oid)
    if hash_name is None or mgf_hash is None:
        raise VerificationError("RSASSA-PSS hash is not supported")
    salt = int(value["saltLength"])
    return padding.PSS(padding.MGF1(oids.hash_class(mgf_hash)), salt), hash_name
