"""Object identifiers and hash algorithms the verifier recognises, in one place."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes

ID_SIGNED_DATA = "1.2.840.113549.1.7.2"
ID_CT_TST_INFO = "1.2.840.113549.1.9.16.1.4"
ID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
ID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
ID_AA_SIGNING_CERTIFICATE = "1.2.840.113549.1.9.16.2.12"
ID_AA_SIGNING_CERTIFICATE_V2 = "1.2.840.113549.1.9.16.2.47"

# Hash name (as callers spell it) -> OID. SHA-1 is kept so old tokens still verify; the verdict
# warns about it. MD5 and friends are not listed, so tokens using them do not verify.
HASH_OIDS: dict[str, str] = {
    "sha1": "1.3.14.3.2.26",
    "sha224": "2.16.840.1.101.3.4.2.4",
    "sha256": "2.16.840.1.101.3.4.2.1",
    "sha384": "2.16.840.1.101.3.4.2.2",
    "sha512": "2.16.840.1.101.3.4.2.3",
}
HASH_NAMES: dict[str, str] = {v: k for k, v in HASH_OIDS.items()}
WEAK_HASHES = frozenset({"sha1"})

_HASH_CLASSES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
RSASSA_PSS = "1.2.840.113549.1.1.10"
MGF1 = "1.2.840.113549.1.1.8"
EC_PUBLIC_KEY = "1.2.840.10045.2.1"
ED25519 = "1.3.101.112"

# Signature algorithm OID -> (key family, hash name or None when the SignerInfo digest decides).
SIGNATURE_ALGORITHMS: dict[str, tuple[str, str | None]] = {
    RSA_ENCRYPTION: ("rsa", None),
    "1.2.840.113549.1.1.5": ("rsa", "sha1"),
    "1.2.840.113549.1.1.14": ("rsa", "sha224"),
    "1.2.840.113549.1.1.11": ("rsa", "sha256"),
    "1.2.840.113549.1.1.12": ("rsa", "sha384"),
    "1.2.840.113549.1.1.13": ("rsa", "sha512"),
    RSASSA_PSS: ("rsa-pss", None),
    EC_PUBLIC_KEY: ("ec", None),
    "1.2.840.10045.4.1": ("ec", "sha1"),
    "1.2.840.10045.4.3.1": ("ec", "sha224"),
    "1.2.840.10045.4.3.2": ("ec", "sha256"),
    "1.2.840.10045.4.3.3": ("ec", "sha384"),
    "1.2.840.10045.4.3.4": ("ec", "sha512"),
    ED25519: ("ed25519", None),
}


def hash_class(name: str) -> hashes.HashAlgorithm:
    """A fresh `cryptography` hash object for a name from HASH_OIDS; KeyError if unknown."""
    return _HASH_CLASSES[name]()
