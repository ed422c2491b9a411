"""Build RFC 3161 tokens in Python for edge cases `openssl ts -reply` cannot produce.

`make_pki(...)` issues a root (and optionally an intermediate) and a TSA certificate with
cryptography; `build_reply(pki, digest, ...)` assembles TimeStampResp DER by hand, so each
field (eContentType, attributes, ESS, SignerIdentifier, algorithm) can be set or broken.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from service.timestamping import oids
from service.timestamping.der import length

NOW = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)
_KEYS: dict[str, Any] = {}


# --- DER building blocks -------------------------------------------------------------------
def tlv(tag: int, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return bytes([tag]) + length(len(body)) + body


def seq(*parts: bytes) -> bytes:
    return tlv(0x30, *parts)


def set_of(*parts: bytes) -> bytes:
    return tlv(0x31, *sorted(parts))


def integer(n: int) -> bytes:
    return tlv(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big", signed=True))


def octets(b: bytes) -> bytes:
    return tlv(0x04, b)


def oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return tlv(0x06, bytes(body))


def alg(dotted: str, params: bytes | None = b"\x05\x00") -> bytes:
    return seq(oid(dotted), params or b"")


def gentime(t: datetime) -> bytes:
    return tlv(0x18, t.strftime("%Y%m%d%H%M%SZ").encode())


# --- PKI --------------------------------------------------------------------------------------
def key_for(kind: str, slot: str = "") -> Any:
    """Keys are cached per kind and slot: generation (RSA especially) is the slow part."""
    if (kind, slot) not in _KEYS:
        if kind in ("rsa2048", "rsa-pss"):
            _KEYS[kind, slot] = rsa.generate_private_key(65537, 2048)
        elif kind == "ed25519":
            _KEYS[kind, slot] = ed25519.Ed25519PrivateKey.generate()
        else:
            curve = {"ec-p256": ec.SECP256R1, "ec-p384": ec.SECP384R1, "ec-p521": ec.SECP521R1}
            _KEYS[kind, slot] = ec.generate_private_key(curve[kind]())
    return _KEYS[kind, slot]


@dataclass
class PyPKI:
    root: x509.Certificate
    root_key: Any
    tsa: x509.Certificate
    tsa_key: Any
    intermediates: list[x509.Certificate] = field(default_factory=list)
    key_kind: str = "ec-p256"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Chronoseal Test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def issue(subject: str, key: Any, issuer: x509.Certificate | None, issuer_key: Any, *,
          ca: bool, pathlen: int | None = None, eku: list[x509.ObjectIdentifier] | None = None,
          eku_critical: bool = True, key_usage: dict[str, bool] | None = None,
          not_before: datetime = NOW - timedelta(days=30),
          not_after: datetime = NOW + timedelta(days=365), serial: int | None = None,
          basic_constraints: bool = True) -> x509.Certificate:
    """One certificate; every extension that the verifier checks can be set or left out."""
    issuer_name = issuer.subject if issuer is not None else _name(subject)
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer_name)
         .public_key(key.public_key()).serial_number(serial or x509.random_serial_number())
         .not_valid_before(not_before).not_valid_after(not_after)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False))
    if basic_constraints:
        b = b.add_extension(x509.BasicConstraints(ca, pathlen if ca else None), True)
    ku = dict(digital_signature=False, content_commitment=False, key_encipherment=False,
              data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
              encipher_only=False, decipher_only=False)
    if key_usage is None:
        key_usage = {"key_cert_sign": True, "crl_sign": True} if ca else {"digital_signature": True}
    if key_usage:
        b = b.add_extension(x509.KeyUsage(**{**ku, **key_usage}), True)
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), eku_critical)
    algorithm = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return b.sign(issuer_key, algorithm)


def make_pki(key: str = "ec-p256", *, intermediates: int = 0, tsa_kwargs: dict[str, Any] | None
             = None, inter_kwargs: dict[str, Any] | None = None, slot: str = "") -> PyPKI:
    """Root (P-256) -> intermediates (P-256) -> TSA with `key`; kwargs go to `issue`."""
    root_key = key_for("ec-p256", "root" + slot)
    root = issue("Py Root CA", root_key, None, root_key, ca=True,
                 not_before=NOW - timedelta(days=3650), not_after=NOW + timedelta(days=3650))
    issuer, issuer_key, chain = root, root_key, []
    for i in range(intermediates):
        k = key_for("ec-p256", f"inter{i}{slot}")
        issuer = issue(f"Py Intermediate {i}", k, issuer, issuer_key,
                       **{"ca": True, **(inter_kwargs or {})})
        issuer_key = k
        chain.insert(0, issuer)
    tsa_key = key_for(key, "tsa" + slot)
    tsa = issue(f"Py TSA {key}", tsa_key, issuer, issuer_key, ca=False,
                **{"eku": [ExtendedKeyUsageOID.TIME_STAMPING], **(tsa_kwargs or {})})
    return PyPKI(root, root_key, tsa, tsa_key, chain, key)


# --- tokens -----------------------------------------------------------------------------------
def der_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def ess_v2(cert: x509.Certificate, *, hash_name: str = "sha256", issuer_serial: bool = True,
           serial_delta: int = 0, cert_hash: bytes | None = None) -> bytes:
    """SigningCertificateV2 attribute value naming `cert`."""
    h = cert_hash or hashlib.new(hash_name, der_cert(cert)).digest()
    hash_alg = b"" if hash_name == "sha256" else alg(oids.HASH_OIDS[hash_name], None)
    isr = seq(seq(tlv(0xA4, cert.issuer.public_bytes())), integer(cert.serial_number
                                                                   + serial_delta))
    return seq(seq(seq(hash_alg, octets(h), isr if issuer_serial else b"")))


def ess_v1(cert: x509.Certificate) -> bytes:
    """SigningCertificate (v1, SHA-1) attribute value naming `cert`."""
    return seq(seq(seq(octets(hashlib.sha1(der_cert(cert)).digest()))))


def tst_info(digest: bytes, *, hash_name: str = "sha256", gen_time: datetime = NOW,
             nonce: int | None = 12345, policy: str = "1.2.3.4.1", serial: int = 7,
             version: int = 1) -> bytes:
    return seq(integer(version), oid(policy), seq(alg(oids.HASH_OIDS[hash_name]), octets(digest)),
               integer(serial), gentime(gen_time), seq(integer(1)),
               integer(nonce) if nonce is not None else b"")


def build_reply(pki: PyPKI, digest: bytes, *, status: int = 0, content_type: str =
                oids.ID_SIGNED_DATA, econtent_type: str = oids.ID_CT_TST_INFO,
                tst: bytes | None = None, tst_kwargs: dict[str, Any] | None = None,
                ct_attr: str = oids.ID_CT_TST_INFO, md_override: bytes | None = None,
                ess: str | bytes | None = "v2", signed_attrs: bool = True,
                sid: str = "issuer_serial", digest_name: str | None = None,
                certs: list[x509.Certificate] | None = None, bare: bool = False,
                signers: int = 1) -> bytes:
    """A TimeStampResp (or bare token) with the given fields set or broken."""
    econtent = tst if tst is not None else tst_info(digest, **(tst_kwargs or {}))
    key, kind = pki.tsa_key, pki.key_kind
    digest_name = digest_name or ("sha512" if kind == "ed25519" else "sha256")
    attrs = [seq(oid(oids.ID_CONTENT_TYPE), set_of(oid(ct_attr))),
             seq(oid(oids.ID_MESSAGE_DIGEST), set_of(octets(
                 md_override or hashlib.new(digest_name, econtent).digest())))]
    if ess == "v2":
        attrs.append(seq(oid(oids.ID_AA_SIGNING_CERTIFICATE_V2), set_of(ess_v2(pki.tsa))))
    elif ess == "v1":
        attrs.append(seq(oid(oids.ID_AA_SIGNING_CERTIFICATE), set_of(ess_v1(pki.tsa))))
    elif isinstance(ess, bytes):
        attrs.append(seq(oid(oids.ID_AA_SIGNING_CERTIFICATE_V2), set_of(ess)))
    signed = set_of(*attrs)
    message = signed if signed_attrs else econtent
    sig_alg, sig = _sign(key, kind, digest_name, message)
    if sid == "ski":
        ski = x509.SubjectKeyIdentifier.from_public_key(pki.tsa.public_key()).digest
        sid_der, version = tlv(0x80, ski), 3
    else:
        sid_der, version = seq(pki.tsa.issuer.public_bytes(), integer(pki.tsa.serial_number)), 1
    signer = seq(integer(version), sid_der, alg(oids.HASH_OIDS[digest_name], None),
                 (b"\xa0" + signed[1:]) if signed_attrs else b"", sig_alg, octets(sig))
    cert_list = [pki.tsa, *pki.intermediates] if certs is None else certs
    certs_der = tlv(0xA0, *(der_cert(c) for c in cert_list)) if cert_list else b""
    sd = seq(integer(3), set_of(alg(oids.HASH_OIDS[digest_name], None)),
             seq(oid(econtent_type), tlv(0xA0, octets(econtent))), certs_der,
             tlv(0x31, *[signer] * signers))
    token = seq(oid(content_type), tlv(0xA0, sd))
    return token if bare else seq(seq(integer(status)), token if status in (0, 1) else b"")


def _sign(key: Any, kind: str, digest_name: str, message: bytes) -> tuple[bytes, bytes]:
    h = oids.hash_class(digest_name)
    if kind == "ed25519":
        return alg(oids.ED25519, None), key.sign(message)
    if kind == "rsa-pss":
        params = seq(tlv(0xA0, alg(oids.HASH_OIDS[digest_name])),
                     tlv(0xA1, alg(oids.MGF1, alg(oids.HASH_OIDS[digest_name]))),
                     tlv(0xA2, integer(32)))
        pss = padding.PSS(padding.MGF1(h), 32)
        return alg(oids.RSASSA_PSS, params), key.sign(message, pss, h)
    if kind == "rsa2048":
        return alg(oids.RSA_ENCRYPTION), key.sign(message, padding.PKCS1v15(), h)
    ecdsa_oid = {"sha256": "1.2.840.10045.4.3.2", "sha384": "1.2.840.10045.4.3.3",
                 "sha512": "1.2.840.10045.4.3.4", "sha1": "1.2.840.10045.4.1"}[digest_name]
    return alg(ecdsa_oid, None), key.sign(message, ec.ECDSA(h))


def to_long_form(der: bytes, max_depth: int = 64, octets: int = 4) -> bytes:
    """Re-encode lengths down to max_depth in `octets`-byte long form (BER, not DER).

    OpenSSL reads such lengths down to the certificates and SignerInfo (depth 5) but refuses
    them inside TBSCertificate or signed attributes; the verifier reads them everywhere.
    """
    from service.timestamping import tlv as walker

    def walk(buf: bytes, el: walker.Tlv, depth: int) -> bytes:
        if depth > max_depth:
            return buf[el.start : el.end]
        if el.constructed:
            inner = b"".join(walk(buf, c, depth + 1) for c in walker.children(buf, el))
        else:
            inner = buf[el.body : el.body_end]
        return bytes([el.tag, 0x80 | octets]) + len(inner).to_bytes(octets, "big") + inner

    return walk(der, walker.read(der), 0)
