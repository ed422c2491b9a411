"""Verify an RFC 3161 timestamp token over a digest, as small numbered steps.

Each step adds reasons (the token is invalid) or warnings (valid but worth knowing) to the run;
a step whose failure leaves nothing to check further raises _Stop. Hostile input never
raises: it yields an invalid Verdict. Only unusable caller arguments raise
MalformedInputError.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from service.errors import MalformedInputError, VerificationError
from service.timestamping import certificates, chain, cms, der, ess, oids
from service.timestamping.names import same_name
from service.timestamping.signature import check_signature
from service.timestamping.tstinfo import TSTInfo, parse_tst_info
from service.timestamping.verdict import TokenFacts, Verdict

__all__ = ["TokenFacts", "Verdict", "digest_data", "imprint_algorithm", "verify_timestamp"]

PKI_STATUS = {0: "granted", 1: "grantedWithMods", 2: "rejection", 3: "waiting",
              4: "revocationWarning", 5: "revocationNotification"}
# DER of the OID id-ct-TSTInfo, the only value the content-type attribute may hold.
_TST_INFO_OID_DER = bytes.fromhex("060b2a864886f70d0109100104")


class _Stop(Exception):
    """A step failed in a way that leaves nothing further to check."""


@dataclass
class _Run:
    """Inputs, what the steps parsed so far, and what they concluded."""

    reply: bytes
    digest: bytes
    hash_name: str
    store: chain.TrustStore
    untrusted: tuple[x509.Certificate, ...]
    nonce: int | None
    policy: str | None
    now: datetime
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    facts: TokenFacts = field(default_factory=TokenFacts)
    envelope: cms.Envelope | None = None
    signed: cms.SignedData | None = None
    tst: TSTInfo | None = None
    token_certs: list[x509.Certificate] = field(default_factory=list)
    signer_cert: x509.Certificate | None = None

    def stop(self, reason: str) -> _Stop:
        self.reasons.append(reason)
        return _Stop(reason)


def digest_data(data: bytes, hash_alg: str) -> bytes:
    """Hash data with a supported algorithm: the bytes a TSA imprints for this data."""
    return hashlib.new(_hash_name(hash_alg), data).digest()


def verify_timestamp(
    reply: bytes,
    *,
    digest: bytes,
    hash_alg: str = "sha256",
    roots: Sequence[x509.Certificate],
    untrusted: Sequence[x509.Certificate] = (),
    nonce: int | None = None,
    policy: str | None = None,
    now: datetime | None = None,
    partial_chain: bool = False,
) -> Verdict:
    """Check that `reply` (TimeStampResp or bare TimeStampToken) timestamps `digest`.

    The signer certificate must chain to one of `roots` at the token's genTime; `untrusted`
    may supply intermediates or the TSA certificate when the token carries none. Only
    self-signed `roots` are trust anchors unless `partial_chain` (OpenSSL's -partial_chain)
    makes every one of them an anchor, a TSA certificate or an intermediate too. `now` (naive
    means UTC) only decides warnings such as "expired since genTime".
    """
    hash_name = _hash_name(hash_alg)
    if len(digest) != hashlib.new(hash_name).digest_size:
        raise MalformedInputError(f"digest length {len(digest)} does not fit {hash_name}")
    if not roots:
        raise MalformedInputError("no trusted root certificates given")
    now = datetime.now(UTC) if now is None else now
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    store = chain.trust_store(tuple(roots), partial_chain)
    run = _Run(bytes(reply), bytes(digest), hash_name, store, tuple(untrusted), nonce, policy,
               now)
    try:
        for step in STEPS:
            step(run)
    except _Stop:
        pass
    return Verdict(not run.reasons, tuple(run.reasons), tuple(run.warnings), run.facts)


def imprint_algorithm(reply: bytes) -> str | None:
    """The hash name of the token's message imprint, None if unreadable or unsupported.

    What `openssl ts -verify -data` does: the data is hashed with the token's own algorithm.
    """
    try:
        env = cms.parse_envelope(reply)
        if env.content is None:
            return None
        signed = cms.parse_signed_data(*env.content)
        if signed.econtent is None:
            return None
        return oids.HASH_NAMES.get(parse_tst_info(signed.econtent).hash_oid)
    except MalformedInputError:
        return None


def _hash_name(hash_alg: str) -> str:
    name = hash_alg.lower().replace("-", "")
    if name not in oids.HASH_OIDS:
        raise MalformedInputError(f"unsupported hash algorithm {hash_alg!r}")
    return name


def step1_parse(run: _Run) -> None:
    """Split the reply into status and token; unparseable input ends the run."""
    try:
        run.envelope = cms.parse_envelope(run.reply)
    except MalformedInputError as exc:
        raise run.stop(f"reply is not a timestamp response or token: {exc}") from None


def step2_status(run: _Run) -> None:
    """PKIStatus must be granted or grantedWithMods, and a token must come with it."""
    env = run.envelope
    assert env is not None
    if env.status is not None:
        st = env.status
        name = PKI_STATUS.get(st.status, str(st.status))
        run.facts = replace(run.facts, status=name, status_text=st.text, fail_info=st.fail_info)
        if st.status not in (0, 1):
            raise run.stop(f"TSA status is {name}" + (f" ({', '.join(st.fail_info)})"
                                                      if st.fail_info else ""))
    if env.content is None:
        raise run.stop("reply carries no timeStampToken")


def step3_signed_data(run: _Run) -> None:
    """ContentInfo is id-signedData with one signer over an id-ct-TSTInfo eContent."""
    env = run.envelope
    assert env is not None and env.content is not None
    if env.content_type != oids.ID_SIGNED_DATA:
        raise run.stop(f"token contentType is {env.content_type}, not id-signedData")
    try:
        run.signed = signed = cms.parse_signed_data(*env.content)
    except MalformedInputError as exc:
        raise run.stop(f"token SignedData is malformed: {exc}") from None
    if signed.econtent_type != oids.ID_CT_TST_INFO:
        raise run.stop(f"eContentType is {signed.econtent_type}, not id-ct-TSTInfo")
    if signed.econtent is None:
        raise run.stop("token has no eContent (TSTInfo)")
    if len(signed.signers) != 1:
        raise run.stop("token must have exactly one SignerInfo")
    run.facts = replace(run.facts, signature_algorithm=signed.signers[0].signature_alg)


def step4_tst_info(run: _Run) -> None:
    """The imprint is the caller's digest; nonce and policy are the requested ones if given."""
    assert run.signed is not None and run.signed.econtent is not None
    try:
        run.tst = tst = parse_tst_info(run.signed.econtent)
    except MalformedInputError as exc:
        raise run.stop(f"TSTInfo is malformed: {exc}") from None
    imprint_hash = oids.HASH_NAMES.get(tst.hash_oid)
    run.facts = replace(
        run.facts, gen_time=tst.gen_time, serial=tst.serial, tsa_name=tst.tsa_name,
        policy=tst.policy, hash_algorithm=imprint_hash or tst.hash_oid,
        hashed_message=tst.hashed_message, nonce=tst.nonce, accuracy=tst.accuracy,
        ordering=tst.ordering,
    )
    if tst.version != 1:
        run.reasons.append(f"TSTInfo version is {tst.version}, not 1")
    if imprint_hash != run.hash_name or not tst.hash_params_ok:
        run.reasons.append(f"imprint hash algorithm is {imprint_hash or tst.hash_oid}, "
                           f"expected {run.hash_name}")
    elif tst.hashed_message != run.digest:
        run.reasons.append("imprint does not match the data's digest")
    if imprint_hash in oids.WEAK_HASHES:
        run.warnings.append(f"imprint uses {imprint_hash}, which is no longer collision resistant")
    if run.nonce is not None and tst.nonce != run.nonce:
        run.reasons.append("nonce does not match the request")
    if run.policy is not None and tst.policy != run.policy:
        run.reasons.append(f"policy {tst.policy} is not the requested {run.policy}")


def step5_signed_attributes(run: _Run) -> None:
    """content-type names TSTInfo; message-digest is the digest of the eContent octets."""
    assert run.signed is not None and run.signed.econtent is not None
    signer = run.signed.signers[0]
    if signer.signed_attrs_der is None:
        raise run.stop("SignerInfo has no signed attributes")
    content_type = signer.signed_attrs.get(oids.ID_CONTENT_TYPE, [])
    if content_type != [_TST_INFO_OID_DER]:
        run.reasons.append("content-type attribute is not exactly id-ct-TSTInfo")
    digest_name = oids.HASH_NAMES.get(signer.digest_alg)
    if digest_name is None:
        raise run.stop(f"unsupported SignerInfo digest algorithm {signer.digest_alg}")
    if digest_name in oids.WEAK_HASHES:
        run.warnings.append(f"signature uses {digest_name}, which is no longer collision resistant")
    # The message-digest attribute covers the eContent octets, without their OCTET STRING header.
    actual = hashlib.new(digest_name, run.signed.econtent).digest()
    wanted = der.octet_string(actual)
    if signer.signed_attrs.get(oids.ID_MESSAGE_DIGEST, []) != [wanted]:
        run.reasons.append("message-digest attribute does not match the TSTInfo")


def step6_signer_certificate(run: _Run) -> None:
    """Find the certificate the SignerIdentifier names, in the token or the supplied ones."""
    assert run.signed is not None
    signer = run.signed.signers[0]
    for cert_der in run.signed.certificates:
        try:
            run.token_certs.append(certificates.load_certificate(cert_der))
        except ValueError:
            run.reasons.append("token carries a certificate that does not parse")
    for cert in run.token_certs:
        if certificates.certificate_serial(cert) <= 0:  # parsed without cryptography's warning
            run.warnings.append(f"certificate {cert.subject.rfc4514_string()} has a serial "
                                "number that is not positive (RFC 5280 4.1.2.2)")
    for cert in [*run.token_certs, *run.untrusted, *run.store.roots]:
        if _identifies(signer, cert):
            run.signer_cert = cert
            run.facts = replace(run.facts, signer_certificate=cert)
            return
    raise run.stop("signer certificate not found in the token or the supplied certificates")


def _identifies(signer: cms.SignerInfo, cert: x509.Certificate) -> bool:
    if signer.subject_key_id is not None:
        try:
            ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        except (x509.ExtensionNotFound, ValueError):
            return False
        return ski.value.digest == signer.subject_key_id
    # RFC 5280 7.1 name comparison: TSAs re-encode the issuer (case, string type) in the sid.
    return (signer.serial == certificates.certificate_serial(cert) and signer.issuer is not None
            and same_name(signer.issuer, cert.issuer.public_bytes()))


def step7_signature(run: _Run) -> None:
    """The signature covers the DER SET OF signed attributes (RFC 5652 section 5.4)."""
    assert run.signed is not None and run.signer_cert is not None
    signer = run.signed.signers[0]
    assert signer.signed_attrs_der is not None
    try:
        check_signature(run.signer_cert.public_key(), signer, signer.signed_attrs_der)
    except (VerificationError, ValueError, UnsupportedAlgorithm) as exc:  # key cannot be loaded
        run.reasons.append(str(exc) or "signer public key cannot be loaded")


def step8_tsa_purpose(run: _Run) -> None:
    """The signer certificate is meant for timestamping only (RFC 3161 section 2.3)."""
    assert run.signer_cert is not None
    try:
        run.reasons.extend(chain.check_tsa_purpose(run.signer_cert))
    except ValueError as exc:  # malformed extensions surface lazily
        run.reasons.append(f"TSA certificate extensions do not parse: {exc}")


def step9_chain_and_ess(run: _Run) -> None:
    """Chain to a root valid at genTime, not now; then the ESS attribute binds that chain."""
    assert run.signed is not None and run.signer_cert is not None and run.tst is not None
    pool = [*run.token_certs, *run.untrusted]
    path = [run.signer_cert]
    try:
        path = chain.build_chain(run.signer_cert, pool, run.store, run.tst.gen_time)
    except VerificationError as exc:
        run.reasons.append(str(exc))
    except ValueError as exc:
        run.reasons.append(f"a chain certificate does not parse: {exc}")
    else:
        run.facts = replace(run.facts, chain=tuple(path))
        run.warnings.extend(chain.weak_signatures(path))
        for depth, cert in enumerate(path):
            if cert.not_valid_after_utc < run.now:
                who = "TSA certificate" if depth == 0 else cert.subject.rfc4514_string()
                run.warnings.append(f"{who} expired {cert.not_valid_after_utc.isoformat()}, "
                                    "after genTime; the token stays valid")
    run.reasons.extend(ess.check_signing_certificate(run.signed.signers[0].signed_attrs, path))


STEPS: tuple[Callable[[_Run], None], ...] = (
    step1_parse, step2_status, step3_signed_data, step4_tst_info, step5_signed_attributes,
    step6_signer_certificate, step7_signature, step8_tsa_purpose, step9_chain_and_ess,
)
