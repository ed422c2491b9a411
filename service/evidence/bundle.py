"""The evidence bundle: one ZIP that proves a receipt offline, without Chronoseal installed.

Layout (DESIGN.md): manifest.json (the exact bytes hashed), proof.json, batch-head.json (proof
format 2: the exact bytes whose SHA-256 the tokens imprint), tokens/<tsa>.tsr (DER
TimeStampResp), certs/<tsa>.pem (TSA certificate first, root last),
revocation/<tsa>/<sha256 of the certificate's DER>.crl or .ocsp (the DER CRL or OCSP response
fetched for that certificate of the chain when the token was stored; absent when none was),
evidence-records/<tsa>.ers and .json (RFC 4998, once renewed), history/<receipt id>/ (each
ancestor's manifest.json, proof.json, batch-head.json, tokens/ and certs/, as at the top),
disclosure.json (a private record's openings, added by the creator), verify.py, VERIFY.md,
certificate.html and certificate.pdf (the exhibit: the same page, printed). The ZIP is
deterministic (fixed order, times and modes, PDF without dates): the same evidence always gives
the same bytes, so bundles can be compared and cached by digest.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import re
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from service.errors import MalformedInputError
from service.evidence.disclosure import disclosure_problems
from service.evidence.exhibit_pdf import ExhibitRenderError, html_to_pdf, print_language
from service.evidence.facts import (
    AncestorFacts,
    Authority,
    BundleFacts,
    TimestampFacts,
    audit_steps,
)
from service.evidence.instructions import render_verify_md
from service.evidence.manifest import manifest_digest
from service.evidence.renewal_check import coverage, data_objects, render_record
from service.evidence.templates.verify import layout_problems, token_facts
from service.i18n import DEFAULT_LANGUAGE
from service.timestamping import ers
from service.timestamping.batch_head import PROOF_FORMAT_HEAD, BatchHead, parse_batch_head
from service.timestamping.merkle import verify_inclusion
from service.timestamping.revocation import (
    KIND_CRL,
    KIND_OCSP,
    MAX_CRL_BYTES,
    MAX_OCSP_BYTES,
    RevocationEntry,
    cert_sha256,
)
from service.timestamping.tsa_token import granted_response

MAX_TSAS = 16  # receipts are stamped by a handful of TSAs; bounds bundle size and verify time
MAX_TOKEN_BYTES = 64 * 1024  # RFC 3161 responses with embedded certificates are a few KiB
MAX_CHAIN_CERTS = 8  # TSA, intermediates, root: real chains have 2-4
MAX_NAME_CHARS = 64  # a file name, not a description
HEX_SHA256_CHARS = 64
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest ZIP date: fixed, so equal evidence, equal bytes
_ZIP_LEVEL = 9  # fixed too: the compression level changes the bytes
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
log = logging.getLogger(__name__)
# Ancestors carried by one history bundle: a working session's iterations that led to an image;
# each adds a manifest, a proof, a head and a token and chain per TSA.
MAX_HISTORY = 16
HISTORY_DIR = "history"
DISCLOSURE_MEMBER = "disclosure.json"
EXHIBIT_MEMBERS = ("certificate.html", "certificate.pdf")  # the court exhibit, one page twice


@dataclass(frozen=True)
class HistoryEntry:
    """One ancestor's evidence, shipped under history/<receipt id>/ in the same layout."""

    receipt_id: str
    manifest_jcs: bytes
    proof: Mapping[str, Any]
    tokens: Mapping[str, bytes]
    chains: Mapping[str, str]
    batch_head: bytes | None = None
    image_name: str | None = None  # the file name sent at its registration (the exhibit)


def build_bundle(
    *,
    manifest_jcs: bytes,
    proof: Mapping[str, Any],
    tokens: Mapping[str, bytes],
    chains: Mapping[str, str],
    receipt_id: str,
    image_name: str | None,
    batch_head: bytes | None = None,
    evidence_records: Mapping[str, tuple[bytes, Sequence[Mapping[str, Any]]]] | None = None,
    revocation: Mapping[str, Sequence[RevocationEntry]] | None = None,
    history: Sequence[HistoryEntry] = (),
    disclosure: bytes | None = None,
    exhibit: Exhibit | None = None,
    only: str | None = None,
    certificates: bool = True,
) -> bytes:
    """The ZIP bytes for a receipt; MalformedInputError if the evidence does not fit together.

    `proof` is merkle.proof_to_json's form; `tokens` and `chains` are keyed by TSA name, each
    chain a PEM string with the TSA certificate first and the root last. With `batch_head`
    (the batch's stored batch-head.json) the bundle is proof format 2: proof.json says "v": 2
    and the tokens imprint SHA-256 of those bytes; without, format 1 (they imprint the root).
    `revocation` (by TSA name too) holds the revocation data stored with each token.
    `evidence_records` (by TSA name: RFC 4998 EvidenceRecord DER and each archive timestamp's
    {"tsa", "chain_pem"}) become evidence-records/<tsa>.ers and its readable .json.
    `history` (at most MAX_HISTORY ancestors) goes under history/<receipt id>/; `disclosure`
    (disclosure.json) must open this manifest's commitments.
    `exhibit` is what certificate.html and certificate.pdf show beyond the evidence. With
    `only` ("certificate.html" or "certificate.pdf") that member's bytes alone are returned,
    after the same checks: the certificate routes make nothing else. `certificates=False`
    leaves certificate.html and .pdf out: for the service's own checks (verify by receipt id),
    which read no exhibit and need not print one.
    """
    digest = manifest_digest(manifest_jcs)
    steps = _check_proof(digest, proof)
    if not 1 <= len(tokens) <= MAX_TSAS:
        raise MalformedInputError(f"a bundle needs 1..{MAX_TSAS} tokens, got {len(tokens)}")
    head = _check_head(batch_head, proof) if batch_head is not None else None
    if head is not None:
        proof = {**proof, "v": PROOF_FORMAT_HEAD}
    files: list[tuple[str, bytes]] = [
        ("manifest.json", manifest_jcs),
        ("proof.json", (json.dumps(dict(proof), indent=2, sort_keys=True) + "\n").encode()),
        *([("batch-head.json", head.jcs)] if head is not None else []),
    ]
    stamps: list[TimestampFacts] = []
    certs_files: list[tuple[str, bytes]] = []
    for tsa in sorted(tokens):
        name = safe_name(tsa)
        if any(t.name == name for t in stamps):
            raise MalformedInputError(f"TSA names {tsa!r} and another both map to {name!r}")
        if tsa not in chains:
            raise MalformedInputError(f"no certificate chain for TSA {tsa!r}")
        crls = revocation_members(name, (revocation or {}).get(tsa, ()))
        token, pem, stamp = _read_tsa(name, tokens[tsa], chains[tsa],
                                      frozenset(p for p, _ in crls))
        files.append((f"tokens/{name}.tsr", token))
        certs_files.append((f"certs/{name}.pem", pem))
        certs_files += crls
        if evidence_records and tsa in evidence_records:
            chain_der = [c.public_bytes(serialization.Encoding.DER)
                         for c in x509.load_pem_x509_certificates(pem)]
            objects = data_objects(name, token, chain_der, crls)
            certs_files += _record_files(name, *evidence_records[tsa], objects)
        stamps.append(stamp)
    if len(history) > MAX_HISTORY:
        raise MalformedInputError(f"a bundle carries at most {MAX_HISTORY} earlier iterations")
    ancestors = []
    for entry in history:
        members, ancestor = history_members(entry)
        certs_files += members
        ancestors.append(ancestor)
    facts = BundleFacts(
        receipt_id=receipt_id,
        image_name=image_name,
        manifest=json.loads(manifest_jcs),
        manifest_digest=digest.hex(),
        proof=dict(proof),
        steps=steps,
        timestamps=tuple(stamps),
        batch_head=head,
        history=tuple(ancestors),
        **_exhibit_facts(exhibit or Exhibit()),
    )
    if disclosure is not None:
        certs_files.append((DISCLOSURE_MEMBER, _checked_disclosure(manifest_jcs, disclosure)))
    template = resources.files("service.evidence.templates").joinpath("verify.py").read_bytes()
    files += certs_files + [
        ("verify.py", template),
        ("VERIFY.md", render_verify_md(facts).encode()),
    ]
    if only is not None:
        wanted = certificate_files(facts, html=only == "certificate.html",
                                   pdf=only == "certificate.pdf")
        if not wanted:
            raise ValueError(f"{only!r} is not a certificate member")
        return wanted[0][1]
    if not certificates:
        return _zip(files)
    try:
        return _zip(files + certificate_files(facts))
    except ExhibitRenderError as exc:  # the evidence matters more than its printout
        log.error("bundle of %s without certificate.pdf: %s", receipt_id, exc)
        return _zip(files + certificate_files(facts, pdf=False))


def history_members(entry: HistoryEntry) -> tuple[list[tuple[str, bytes]], AncestorFacts]:
    """history/<receipt id>/...: an ancestor's manifest, proof, head, tokens and chains, each
    checked as the bundle's own are (its proof leads from its manifest to its root); and what
    the exhibit shows of it (its tokens' times, its file name)."""
    digest = manifest_digest(entry.manifest_jcs)
    _check_proof(digest, entry.proof)
    proof = dict(entry.proof)
    base = f"{HISTORY_DIR}/{safe_name(entry.receipt_id)}"
    files = [(f"{base}/manifest.json", entry.manifest_jcs)]
    if entry.batch_head is not None:
        head = _check_head(entry.batch_head, proof)
        proof["v"] = PROOF_FORMAT_HEAD
    files.append((f"{base}/proof.json", (json.dumps(proof, indent=2, sort_keys=True)
                                          + "\n").encode()))
    if entry.batch_head is not None:
        files.append((f"{base}/batch-head.json", head.jcs))
    if not 1 <= len(entry.tokens) <= MAX_TSAS:
        raise MalformedInputError(f"ancestor {entry.receipt_id} needs 1..{MAX_TSAS} tokens")
    stamps: list[TimestampFacts] = []
    for tsa in sorted(entry.tokens):
        name = safe_name(tsa)
        if tsa not in entry.chains:
            raise MalformedInputError(f"no certificate chain for TSA {tsa!r}")
        token, pem, stamp = _read_tsa(name, entry.tokens[tsa], entry.chains[tsa], frozenset())
        files += [(f"{base}/tokens/{name}.tsr", token), (f"{base}/certs/{name}.pem", pem)]
        stamps.append(stamp)
    return files, AncestorFacts(receipt_id=entry.receipt_id,
                                manifest=json.loads(entry.manifest_jcs),
                                manifest_digest=digest.hex(), timestamps=tuple(stamps),
                                image_name=entry.image_name)


def with_disclosure(zip_bytes: bytes, disclosure: bytes | None) -> bytes:
    """The bundle with its disclosure.json replaced by `disclosure` (None: removed); the other
    members unchanged. The creator's client adds it; the server never needs it."""
    files, manifest = _members_but(zip_bytes, (DISCLOSURE_MEMBER,))
    if disclosure is not None:
        at = next((n for n, (path, _) in enumerate(files) if path == "verify.py"), len(files))
        files.insert(at, (DISCLOSURE_MEMBER, _checked_disclosure(manifest, disclosure)))
    return _zip(files)


def with_exhibit(zip_bytes: bytes, html: bytes, pdf: bytes) -> bytes:
    """The bundle with certificate.html and certificate.pdf, for one written without them (a
    bulk run's): the other members unchanged, so it verifies exactly as before."""
    files, _ = _members_but(zip_bytes, EXHIBIT_MEMBERS)
    return _zip([*files, ("certificate.html", html), ("certificate.pdf", pdf)])


def exhibit_missing(zip_bytes: bytes) -> bool:
    """True when the bundle lacks certificate.html or certificate.pdf."""
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        return not set(EXHIBIT_MEMBERS) <= set(archive.namelist())


def _members_but(zip_bytes: bytes, leaving: Sequence[str]
                 ) -> tuple[list[tuple[str, bytes]], bytes]:
    """The bundle's members in order, but those named in `leaving`, and its manifest.json."""
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        files = [(i.filename, archive.read(i)) for i in archive.infolist()
                 if not i.is_dir() and i.filename not in leaving]
    manifest = dict(files).get("manifest.json")
    if manifest is None:
        raise MalformedInputError("the bundle has no manifest.json")
    return files, manifest


def _checked_disclosure(manifest_jcs: bytes, disclosure: bytes) -> bytes:
    generation = json.loads(manifest_jcs).get("generation")
    problems = disclosure_problems(generation, disclosure, manifest_digest(manifest_jcs).hex())
    if problems:
        raise MalformedInputError("disclosure.json does not open the manifest: "
                                  + "; ".join(problems))
    return disclosure


@dataclass(frozen=True)
class Exhibit:
    """What the exhibit shows beyond the evidence: the stored image (for its thumbnail), the
    TSAs by configured name, the verification page, the reader's language."""

    image: bytes | None = None
    authorities: Mapping[str, Authority] = field(default_factory=dict)
    verify_url: str | None = None
    language: str = DEFAULT_LANGUAGE


def _exhibit_facts(exhibit: Exhibit) -> dict[str, Any]:
    return {"image": exhibit.image, "verify_url": exhibit.verify_url,
            "language": exhibit.language,
            "authorities": {safe_name(k): v for k, v in exhibit.authorities.items()}}


def certificate_files(facts: BundleFacts, *, html: bool = True, pdf: bool = True
                      ) -> list[tuple[str, bytes]]:
    """certificate.html in the reader's language, and certificate.pdf: the same page printed
    (in English when this machine has no font for the language, see exhibit_pdf)."""
    # Imported here: the verifying side (bundle_check, the stamp client) reads this module's
    # layout, and the exhibit's renderer (Jinja2, Pillow, NumPy) cost it a second at start-up.
    from service.evidence.certificate import render_certificate

    page = render_certificate(facts)
    out = [("certificate.html", page.encode())] if html else []
    if pdf:
        printed = print_language(facts.language)
        if printed != facts.language:
            page = render_certificate(replace(facts, language=printed))
        out.append(("certificate.pdf", html_to_pdf(page)))
    return out


def safe_name(tsa: str) -> str:
    """A TSA name usable as a file name and in shell commands: [A-Za-z0-9._-], no leading . or -."""
    name = _UNSAFE.sub("_", tsa).lstrip(".-")[:MAX_NAME_CHARS]
    return name or "tsa"


def revocation_members(name: str, entries: Sequence[RevocationEntry]
                       ) -> list[tuple[str, bytes]]:
    """revocation/<tsa>/<cert sha256>.crl (or .ocsp) for each stored CRL or OCSP response, by
    certificate digest."""
    members: dict[str, bytes] = {}
    limits = {KIND_CRL: MAX_CRL_BYTES, KIND_OCSP: MAX_OCSP_BYTES}
    for entry in entries:
        if entry.kind in limits and entry.der and len(entry.der) <= limits[entry.kind] \
                and len(entry.cert_sha256) == HEX_SHA256_CHARS:
            path = f"revocation/{name}/{entry.cert_sha256.lower()}.{entry.kind}"
            members.setdefault(path, entry.der)
    return sorted(members.items())


def _check_proof(digest: bytes, proof: Mapping[str, Any]) -> tuple[Any, ...]:
    """Refuse to ship a proof that does not lead from this manifest to its root."""
    try:
        path = [bytes.fromhex(p) for p in proof["audit_path"]]
        root, leaf = bytes.fromhex(proof["root"]), bytes.fromhex(proof["leaf"])
        index, size = proof["leaf_index"], proof["tree_size"]
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedInputError(f"proof is not in proof_to_json form: {exc}") from exc
    if proof.get("hash") != "sha256" or not verify_inclusion(digest, index, size, path, root):
        raise MalformedInputError("the proof does not lead from this manifest to its root")
    if leaf != hashlib.sha256(b"\x00" + digest).digest():
        raise MalformedInputError("the proof's leaf is not this manifest's leaf hash")
    return audit_steps(leaf, index, size, path)


def _record_files(name: str, der: bytes, renewals: Sequence[Mapping[str, Any]],
                  objects: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """evidence-records/<name>.ers and its rendering, which names the members the first
    archive timestamp covers (revocation data fetched after it is listed as not covered)."""
    chain = ers.decode_record(der)
    if len(renewals) != len(chain):
        raise MalformedInputError(f"the evidence record of {name} lists other renewals")
    times = [token_facts(granted_response(ats.token)).gen_time for ats in chain]
    fit = coverage(objects, chain[0].lists[0] if chain[0].lists else ())
    rendering = render_record(name, chain, [dict(r) for r in renewals], times, fit)
    return [(f"evidence-records/{name}.ers", der), (f"evidence-records/{name}.json", rendering)]


def _check_head(data: bytes, proof: Mapping[str, Any]) -> BatchHead:
    """Refuse to ship a head that does not state this proof's root and tree size."""
    head = parse_batch_head(data)
    if head.root.hex() != proof["root"] or head.tree_size != proof["tree_size"]:
        raise MalformedInputError("the batch head does not state the proof's root and tree size")
    return head


# Every receipt of a batch has the same token and chain: they are read once per batch (the
# bundles of a whole run are built in a few hundred milliseconds less). Pure, so cacheable.
@functools.lru_cache(maxsize=64)
def _read_tsa(name: str, token: bytes, chain_pem: str, crl_paths: frozenset[str]
              ) -> tuple[bytes, bytes, TimestampFacts]:
    if len(token) > MAX_TOKEN_BYTES:
        raise MalformedInputError(f"token from {name} is larger than {MAX_TOKEN_BYTES} bytes")
    try:
        facts = token_facts(token)
        certs = x509.load_pem_x509_certificates(chain_pem.encode())
    except (ValueError, IndexError) as exc:
        raise MalformedInputError(f"unreadable token or chain for {name}: {exc}") from exc
    if len(certs) > MAX_CHAIN_CERTS:
        raise MalformedInputError(f"chain for {name} has more than {MAX_CHAIN_CERTS} certificates")
    root = certs[-1]
    if root.subject != root.issuer:
        raise MalformedInputError(f"chain for {name} must end with its (self-issued) root")
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
    stamp = TimestampFacts(
        name=name,
        subject=certs[0].subject.rfc4514_string(),
        gen_time=facts.gen_time,
        serial=facts.serial,
        policy=facts.policy,
        chain_length=len(certs),
        root_fingerprint=root.fingerprint(hashes.SHA256()).hex(":").upper(),
        revocation=tuple(
            (place, cert_sha256(cert), _serial_hex(cert.serial_number),
             next((path for kind in (KIND_CRL, KIND_OCSP)
                   if (path := f"revocation/{name}/{cert_sha256(cert)}.{kind}") in crl_paths),
                  ""))
            for place, cert in enumerate(certs[:-1], 1)),
    )
    return token, pem, stamp


def _serial_hex(serial: int) -> str:
    """As `openssl x509 -serial` and `openssl crl -text` print it: upper case, even length."""
    text = f"{serial:X}"
    return text.zfill(len(text) + len(text) % 2)


def _zip(files: list[tuple[str, bytes]]) -> bytes:
    problems = layout_problems((path, False) for path, _ in files)
    if problems:  # a member added here must be added to BUNDLE_LAYOUT, or verifiers refuse it
        raise MalformedInputError("bundle members break the layout: " + "; ".join(problems))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for path, data in files:
            info = zipfile.ZipInfo(path, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so the mode bits below are honoured by unzip
            mode = 0o755 if path == "verify.py" else 0o644
            info.external_attr = (0o100000 | mode) << 16
            if len(data) < _REUSED_MEMBER_BYTES:
                archive.writestr(info, data, compresslevel=_ZIP_LEVEL)
                continue
            info._compresslevel = _ZIP_LEVEL  # type: ignore[attr-defined]  # noqa: SLF001
            with archive.open(info, mode="w") as member:
                if hasattr(member, "_compressor"):  # zipfile's writer of one member
                    member._compressor = _Deflated(_deflate(data))  # noqa: SLF001
                member.write(data)
    return out.getvalue()


# verify.py (~50 KiB) is the same in every bundle and took two thirds of building one at level
# 9: its deflated bytes are made once and reused. zipfile would write exactly these bytes (raw
# deflate of the whole member at _ZIP_LEVEL): the bundle is the same, byte for byte.
_REUSED_MEMBER_BYTES = 16 * 1024


@functools.lru_cache(maxsize=8)
def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(_ZIP_LEVEL, zlib.DEFLATED, -15)  # as zipfile's ZIP_DEFLATED
    return compressor.compress(data) + compressor.flush()


class _Deflated:
    """Stands in for zipfile's compressor of one member: its output, already made."""

    def __init__(self, deflated: bytes) -> None:
        self._deflated = deflated

    def compress(self, data: bytes) -> bytes:
        return b""

    def flush(self) -> bytes:
        return self._deflated
