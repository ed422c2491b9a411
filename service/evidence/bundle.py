"""The evidence bundle: one ZIP that proves a receipt offline, without Chronoseal installed.

Layout (DESIGN.md): manifest.json (the exact bytes hashed), proof.json, tokens/<tsa>.tsr (DER
TimeStampResp), certs/<tsa>.pem (TSA certificate first, root last), verify.py, VERIFY.md,
certificate.html. The ZIP is deterministic (fixed order, times and modes): the same evidence
always gives the same bytes, so bundles can be compared and cached by digest.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Mapping
from importlib import resources
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from service.errors import MalformedInputError
from service.evidence.certificate import render_certificate
from service.evidence.facts import BundleFacts, TimestampFacts, audit_steps
from service.evidence.instructions import render_verify_md
from service.evidence.manifest import manifest_digest
from service.evidence.templates.verify import layout_problems, token_facts
from service.timestamping.merkle import verify_inclusion

MAX_TSAS = 16  # receipts are stamped by a handful of TSAs; bounds bundle size and verify time
MAX_TOKEN_BYTES = 64 * 1024  # RFC 3161 responses with embedded certificates are a few KiB
MAX_CHAIN_CERTS = 8  # TSA, intermediates, root: real chains have 2-4
MAX_NAME_CHARS = 64  # a file name, not a description
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest ZIP date: fixed, so equal evidence, equal bytes
_ZIP_LEVEL = 9  # fixed too: the compression level changes the bytes
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def build_bundle(
    *,
    manifest_jcs: bytes,
    proof: Mapping[str, Any],
    tokens: Mapping[str, bytes],
    chains: Mapping[str, str],
    receipt_id: str,
    image_name: str | None,
) -> bytes:
    """The ZIP bytes for a receipt; MalformedInputError if the evidence does not fit together.

    `proof` is merkle.proof_to_json's form; `tokens` and `chains` are keyed by TSA name, each
    chain a PEM string with the TSA certificate first and the root last.
    """
    digest = manifest_digest(manifest_jcs)
    steps = _check_proof(digest, proof)
    if not 1 <= len(tokens) <= MAX_TSAS:
        raise MalformedInputError(f"a bundle needs 1..{MAX_TSAS} tokens, got {len(tokens)}")
    files: list[tuple[str, bytes]] = [
        ("manifest.json", manifest_jcs),
        ("proof.json", (json.dumps(dict(proof), indent=2, sort_keys=True) + "\n").encode()),
    ]
    stamps: list[TimestampFacts] = []
    certs_files: list[tuple[str, bytes]] = []
    for tsa in sorted(tokens):
        name = safe_name(tsa)
        if any(t.name == name for t in stamps):
            raise MalformedInputError(f"TSA names {tsa!r} and another both map to {name!r}")
        if tsa not in chains:
            raise MalformedInputError(f"no certificate chain for TSA {tsa!r}")
        token, pem, stamp = _read_tsa(name, tokens[tsa], chains[tsa])
        files.append((f"tokens/{name}.tsr", token))
        certs_files.append((f"certs/{name}.pem", pem))
        stamps.append(stamp)
    facts = BundleFacts(
        receipt_id=receipt_id,
        image_name=image_name,
        manifest=json.loads(manifest_jcs),
        manifest_digest=digest.hex(),
        proof=dict(proof),
        steps=steps,
        timestamps=tuple(stamps),
    )
    template = resources.files("service.evidence.templates").joinpath("verify.py").read_bytes()
    files += certs_files + [
        ("verify.py", template),
        ("VERIFY.md", render_verify_md(facts).encode()),
        ("certificate.html", render_certificate(facts).encode()),
    ]
    return _zip(files)


def safe_name(tsa: str) -> str:
    """A TSA name usable as a file name and in shell commands: [A-Za-z0-9._-], no leading . or -."""
    name = _UNSAFE.sub("_", tsa).lstrip(".-")[:MAX_NAME_CHARS]
    return name or "tsa"


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


def _read_tsa(name: str, token: bytes, chain_pem: str) -> tuple[bytes, bytes, TimestampFacts]:
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
    )
    return token, pem, stamp


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
            archive.writestr(info, data, compresslevel=_ZIP_LEVEL)
    return out.getvalue()
