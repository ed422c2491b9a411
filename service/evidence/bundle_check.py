"""Check an evidence bundle (the ZIP of GET /v1/stamps/{id}/bundle) with Chronoseal's verifier.

The same checks as the bundle's own verify.py, done in-process: image digest vs manifest,
manifest digest -> Merkle leaf -> root (RFC 9162), for proof format 2 the batch head stating
that root and the proof's tree size, and every token over SHA-256(batch-head.json) (format 1:
over the root itself) (timestamping.verify: status, CMS, imprint, ESS, signature, chain at
genTime), then each chain certificate's revocation status at genTime from
revocation/<tsa>/*.crl|.ocsp (timestamping.revocation; none stored is "not checked", said
plainly, not a failure), and the token's evidence as of `now` (renewal_check: RFC 4998 archive
timestamps once its chain has expired). Each check is
one `Check` with a reason a person can read; a bundle is valid iff every check passed.

Trust: with `roots` only those certificates are trusted. Without, each TSA's bundled root
(last certificate of certs/<tsa>.pem) is trusted, which only shows the bundle is consistent;
the verdict says so and carries the root's fingerprint for comparison with the TSA's own.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from service.errors import MalformedInputError
from service.evidence.bundle import (
    DISCLOSURE_MEMBER,
    HISTORY_DIR,
    MAX_CHAIN_CERTS,
    MAX_HISTORY,
    MAX_TOKEN_BYTES,
    MAX_TSAS,
)
from service.evidence.disclosure import disclosure_problems
from service.evidence.renewal_check import check_renewals
from service.evidence.templates.verify import layout_problems, zip_members
from service.timestamping.batch_head import (
    PROOF_FORMAT_HEAD,
    PROOF_FORMAT_ROOT,
    parse_batch_head,
)
from service.timestamping.merkle import MAX_PROOF_LENGTH, verify_inclusion
from service.timestamping.revocation import (
    KIND_CRL,
    KIND_OCSP,
    MAX_CRL_BYTES,
    CertificateStatus,
    RevocationEntry,
    check_chain,
)
from service.timestamping.verify import verify_timestamp

MAX_BUNDLE_BYTES = 4 * 1024 * 1024  # real bundles are ~30 KiB (a record, proofs, a few tokens)
# tokens, chains, evidence records and their renderings, a CRL or OCSP response per
# certificate below each root, + the fixed files; more is not ours
MAX_MEMBERS = 4 * MAX_TSAS + MAX_TSAS * (MAX_CHAIN_CERTS - 1) + 8
# ...and history/: each earlier iteration's manifest, proof, head, and a token and chain for a
# few TSAs (verify.py's own bound, 512 members, is the one that holds for the whole bundle)
MAX_MEMBERS += MAX_HISTORY * (3 + 2 * 4)
MAX_MEMBER_BYTES = 1024 * 1024  # per file, uncompressed: stops a ZIP bomb before inflating it
MAX_PEM_BYTES = 64 * 1024  # a chain of MAX_CHAIN_CERTS certificates is a few KiB
_SHA256_HEX_CHARS = 64


@dataclass(frozen=True)
class Check:
    """One check: what was checked (`name`, stable), whether it passed, and why."""

    name: str
    ok: bool | None  # None: not checked (no image given)
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class StampResult:
    """One TSA's token as verified: its time, who signed it, and which root was trusted."""

    tsa: str
    valid: bool
    gen_time: datetime | None
    signer: str | None
    serial: int | None
    trusted_root: str | None  # subject of the root the chain ended in
    trusted_root_sha256: str | None
    bundled_root_trusted: bool
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    revocation: tuple[CertificateStatus, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "tsa": self.tsa, "valid": self.valid,
            "gen_time": self.gen_time.isoformat().replace("+00:00", "Z") if self.gen_time else None,
            "signer": self.signer, "serial": str(self.serial) if self.serial is not None else None,
            "trusted_root": self.trusted_root, "trusted_root_sha256": self.trusted_root_sha256,
            "bundled_root_trusted": self.bundled_root_trusted,
            "reasons": list(self.reasons), "warnings": list(self.warnings),
            "revocation": [_status_dict(s) for s in self.revocation],
        }


@dataclass(frozen=True)
class Iteration:
    """An earlier iteration carried under history/: what it registered and when it was stamped."""

    receipt_id: str
    image_sha256: str | None
    session: str | None
    gen_time: datetime | None  # the earliest valid token's time
    valid: bool

    def as_dict(self) -> dict[str, Any]:
        return {"receipt_id": self.receipt_id, "image_sha256": self.image_sha256,
                "session": self.session, "valid": self.valid,
                "gen_time": self.gen_time.isoformat().replace("+00:00", "Z")
                if self.gen_time else None}


@dataclass(frozen=True)
class BundleVerdict:
    """valid iff every check passed (an unchecked image does not make a bundle invalid)."""

    valid: bool
    checks: tuple[Check, ...]
    stamps: tuple[StampResult, ...]
    manifest: dict[str, Any] | None
    manifest_digest: str | None
    image_checked: bool
    trust: str  # "given roots" or "bundled roots"
    proof: dict[str, Any] | None = field(default=None)
    history: tuple[Iteration, ...] = ()  # oldest first

    @property
    def reasons(self) -> tuple[str, ...]:
        """Every failed check, as `name: detail`."""
        return tuple(f"{c.name}: {c.detail}" for c in self.checks if c.ok is False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, shared by `chronoseal verify --json` and POST /v1/verify."""
        return {
            "valid": self.valid, "reasons": list(self.reasons),
            "image_checked": self.image_checked, "trust": self.trust,
            "manifest_digest": self.manifest_digest, "manifest": self.manifest,
            "proof": self.proof,
            "timestamps": [s.as_dict() for s in self.stamps],
            "checks": [c.as_dict() for c in self.checks],
            "history": [i.as_dict() for i in self.history],
        }


class TokenMemo:
    """Token checks shared by the bundles of one run (`chronoseal stamp`): every receipt of a
    Merkle batch carries the same tokens, chains and revocation data, so their checks (most
    of a bundle's check: CMS, signature, chain) are made once per batch and reused.

    The key is SHA-256 over everything the checks read: the imprint, the trusted roots and
    every member but the receipt's own (RECEIPT_MEMBERS and history/: its manifest, proof,
    disclosure and earlier iterations, checked on their own, and renderings no check reads).
    `now` is fixed for the run.
    """

    RECEIPT_MEMBERS = frozenset({"manifest.json", "proof.json", "certificate.html",
                                 "certificate.pdf", "VERIFY.md", "disclosure.json"})
    RECEIPT_PREFIXES = ("history/",)
    MAX_ENTRIES = 256  # batches remembered; one run rarely spans more than a few

    def __init__(self, now: datetime | None = None) -> None:
        self.now = datetime.now(UTC) if now is None else now
        self._done: dict[bytes, tuple[list[Check], list[StampResult]]] = {}

    def key(self, files: dict[str, bytes], imprint: bytes | None,
            roots: Sequence[x509.Certificate] | None, partial_chain: bool) -> bytes:
        h = hashlib.sha256(b"imprint\0" + (imprint or b"") + bytes([partial_chain]))
        for root in roots if roots is not None else ():
            h.update(b"root\0" + root.fingerprint(hashes.SHA256()))
        for path in sorted(set(files) - self.RECEIPT_MEMBERS):
            if path.startswith(self.RECEIPT_PREFIXES):
                continue
            data = files[path]
            h.update(b"%d:%s%d:" % (len(path), path.encode(), len(data)) + data)
        return h.digest()

    def get(self, key: bytes) -> tuple[list[Check], list[StampResult]] | None:
        return self._done.get(key)

    def put(self, key: bytes, checks: list[Check], stamps: list[StampResult]) -> None:
        if len(self._done) >= self.MAX_ENTRIES:
            self._done.pop(next(iter(self._done)))
        self._done[key] = (checks, stamps)


def check_bundle(
    zip_bytes: bytes,
    *,
    image_sha256: str | None = None,
    roots: Sequence[x509.Certificate] | None = None,
    partial_chain: bool = False,
    now: datetime | None = None,
    memo: TokenMemo | None = None,
) -> BundleVerdict:
    """Verify a bundle; MalformedInputError only when it is not a bundle ZIP at all.

    `partial_chain` makes roots that are not self-signed trust anchors (see verify_timestamp).
    `now` (default: the clock) is when the evidence must still hold: a token whose chain has
    expired by then needs an archive timestamp (renewal_check) made before it did. `memo`
    reuses the token checks of earlier bundles with the same tokens (and its `now`).
    """
    if memo is not None:
        now = memo.now
    now = datetime.now(UTC) if now is None else now
    if image_sha256 is not None and not _is_hex64(image_sha256.lower()):
        raise MalformedInputError("the image digest must be 64 hexadecimal characters")
    files, problems = read_bundle(zip_bytes)
    checks: list[Check] = []
    # 0. One member per name, each a relative path of the bundle layout (BUNDLE_LAYOUT): else
    # unzip, zipfile and this check could each read a different manifest.json.
    checks.append(Check("layout", not problems, "; ".join(problems) if problems else
                        "every member name is unique, relative and part of the bundle layout"))
    manifest_bytes = files.get("manifest.json", b"")
    manifest = _json_object(manifest_bytes)
    proof = _json_object(files.get("proof.json", b""))
    # 1. The manifest is a v1 JSON object with an image digest.
    image = manifest.get("image") if manifest else None
    stated = image.get("sha256") if isinstance(image, dict) else None
    ok = manifest is not None and manifest.get("v") == 1 and isinstance(stated, str)
    checks.append(Check("manifest", ok, "manifest.json is a v1 manifest with image.sha256" if ok
                        else "manifest.json is missing or not a v1 manifest with image.sha256"))
    # 2. The image the caller holds is the one registered.
    if image_sha256 is None:
        checks.append(Check("image", None, "no image or digest given: not compared"))
    else:
        same = isinstance(stated, str) and hmac.compare_digest(image_sha256.lower(), stated)
        checks.append(Check("image", same, f"image SHA-256 {image_sha256.lower()} "
                            + ("equals" if same else "differs from") + " the manifest's "
                            f"{stated}"))
    # 3. manifest digest -> leaf -> root: the bytes hashed are manifest.json exactly as stored.
    digest = hashlib.sha256(manifest_bytes).digest()
    root = _check_proof(checks, digest, proof)
    # 4. Format 2: batch-head.json states that root and the proof's size; the tokens imprint it.
    imprint = _check_head(checks, files, proof, root)
    # 5. Every token imprints that value and is signed by a TSA chaining to a trusted root.
    key = memo.key(files, imprint, roots, partial_chain) if memo is not None else None
    known = memo.get(key) if memo is not None and key is not None else None
    if known is not None:
        checks += known[0]
        stamps = known[1]
    else:
        first = len(checks)
        stamps = _check_tokens(checks, files, imprint, roots, partial_chain, now)
        if memo is not None and key is not None:
            memo.put(key, checks[first:], stamps)
    # 8. A private record's revealed fields open their commitments (disclosure.json).
    if DISCLOSURE_MEMBER in files:
        found = disclosure_problems(manifest.get("generation") if manifest else None,
                                    files[DISCLOSURE_MEMBER], digest.hex())
        checks.append(Check("disclosure", not found, "; ".join(found) if found else
                            "every revealed field opens its commitment in the manifest"))
    # 9. Each earlier iteration under history/ holds as the bundle itself does.
    history = [_check_history(checks, receipt_id, sub, roots, partial_chain, now)
               for receipt_id, sub in _history(files).items()]
    _check_links(checks, manifest or {}, files, history)
    history.sort(key=lambda i: (i.gen_time is None, i.gen_time or now, i.receipt_id))
    valid = all(c.ok is not False for c in checks)
    return BundleVerdict(
        valid=valid, checks=tuple(checks), stamps=tuple(stamps), manifest=manifest,
        manifest_digest=digest.hex() if manifest_bytes else None,
        image_checked=image_sha256 is not None,
        trust="given roots" if roots is not None else "bundled roots", proof=proof,
        history=tuple(history),
    )


def _history(files: dict[str, bytes]) -> dict[str, dict[str, bytes]]:
    """history/<receipt id>/... members by receipt id, each with the bundle's own revocation/
    data (the same TSA certificates) beside them, as a bundle of its own."""
    shared = {p: d for p, d in files.items() if p.startswith("revocation/")}
    found: dict[str, dict[str, bytes]] = {}
    for path, data in files.items():
        top, _, rest = path.partition("/")
        receipt_id, _, member = rest.partition("/")
        if top == HISTORY_DIR and member:
            found.setdefault(receipt_id, dict(shared))[member] = data
    return found


def _check_history(checks: list[Check], receipt_id: str, files: dict[str, bytes],
                   roots: Sequence[x509.Certificate] | None, partial_chain: bool,
                   now: datetime) -> Iteration:
    own: list[Check] = []
    data = files.get("manifest.json", b"")
    manifest = _json_object(data) or {}
    root = _check_proof(own, hashlib.sha256(data).digest(), _json_object(files.get("proof.json",
                                                                                   b"")))
    imprint = _check_head(own, files, _json_object(files.get("proof.json", b"")), root)
    stamps = _check_tokens(own, files, imprint, roots, partial_chain, now)
    checks += [Check(f"history:{receipt_id}:{c.name}", c.ok, c.detail) for c in own]
    times = [s.gen_time for s in stamps if s.valid and s.gen_time is not None]
    stated = manifest.get("image")
    image: dict[str, Any] = stated if isinstance(stated, dict) else {}
    session = manifest.get("session")
    return Iteration(receipt_id, image.get("sha256"), session if isinstance(session, str)
                     else None, min(times) if times else None,
                     all(c.ok is not False for c in own))


def _check_links(checks: list[Check], manifest: dict[str, Any], files: dict[str, bytes],
                 history: list[Iteration]) -> None:
    """Each carried iteration is reached from the manifest through `parents` (by manifest
    digest or image digest), as verify.py checks it."""
    carried = {i.receipt_id: files.get(f"{HISTORY_DIR}/{i.receipt_id}/manifest.json", b"")
               for i in history}
    digests = {rid: hashlib.sha256(data).hexdigest() for rid, data in carried.items()}
    parsed = {rid: _json_object(data) or {} for rid, data in carried.items()}
    linked: set[str] = set()
    todo = [p for p in manifest.get("parents", []) if isinstance(p, dict)]
    while todo:
        parent = todo.pop()
        for rid, earlier in parsed.items():
            stated = earlier.get("image")
            image: dict[str, Any] = stated if isinstance(stated, dict) else {}
            if rid not in linked and (parent.get("manifest_sha256") == digests[rid]
                                      or parent.get("image_sha256") == image.get("sha256")):
                linked.add(rid)
                todo += [p for p in earlier.get("parents", []) if isinstance(p, dict)]
    for rid in sorted(carried):
        checks.append(Check(f"history:{rid}:link", rid in linked, "an ancestor of this image, "
                            "named through the manifests' parents" if rid in linked else
                            "not named by any parent of this image or its ancestors"))


def read_bundle(zip_bytes: bytes) -> tuple[dict[str, bytes], list[str]]:
    """The bundle's files by path (of a name given twice, the first) and why its member names
    break the layout; MalformedInputError if it is not a bounded, readable ZIP."""
    if len(zip_bytes) > MAX_BUNDLE_BYTES:
        raise MalformedInputError(f"a bundle is at most {MAX_BUNDLE_BYTES} bytes")
    try:
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_MEMBERS:
                raise MalformedInputError(f"a bundle holds at most {MAX_MEMBERS} files")
            problems = layout_problems(zip_members(infos))
            files: dict[str, bytes] = {}
            for info in infos:
                if info.filename in files:
                    continue
                if info.file_size > MAX_MEMBER_BYTES:
                    raise MalformedInputError(f"{info.filename} is larger than bundle files are")
                with archive.open(info) as member:  # read bounded: file_size is only a claim
                    files[info.filename] = member.read(MAX_MEMBER_BYTES + 1)[:MAX_MEMBER_BYTES]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
            NotImplementedError, RuntimeError) as exc:  # unknown compression; encrypted
        raise MalformedInputError(f"not a readable evidence bundle (ZIP): {exc}") from exc
    return files, problems


def _check_proof(checks: list[Check], digest: bytes, proof: dict[str, Any] | None) -> bytes | None:
    leaf = hashlib.sha256(b"\x00" + digest).digest()
    if proof is None:
        checks.append(Check("proof", False, "proof.json is missing or not a JSON object"))
        return None
    same_leaf = str(proof.get("leaf")) == leaf.hex()
    checks.append(Check("leaf", same_leaf, "SHA-256(0x00 || SHA-256(manifest.json)) "
                        + ("equals" if same_leaf else "differs from") + " proof.json leaf"))
    try:
        path = [bytes.fromhex(p) for p in proof["audit_path"]][: MAX_PROOF_LENGTH + 1]
        root = bytes.fromhex(proof["root"])
        index, size = proof["leaf_index"], proof["tree_size"]
    except (KeyError, TypeError, ValueError):
        checks.append(Check("proof", False, "proof.json is not an RFC 9162 inclusion proof"))
        return None
    ok = proof.get("hash") == "sha256" and verify_inclusion(digest, index, size, path, root)
    checks.append(Check("proof", ok, f"the audit path ({len(path)} hashes) from leaf {index} of "
                        f"{size} " + ("leads" if ok else "does not lead")
                        + " to proof.json root (RFC 9162 2.1.3.2)"))
    return root if ok else None


def _check_head(checks: list[Check], files: dict[str, bytes], proof: dict[str, Any] | None,
                root: bytes | None) -> bytes | None:
    """The imprint the tokens must carry: SHA-256(batch-head.json) (format 2) or the root (1)."""
    if proof is None or root is None:
        return None
    version = proof.get("v", PROOF_FORMAT_ROOT)
    data = files.get("batch-head.json")
    if version == PROOF_FORMAT_ROOT and data is None:
        return root
    if version != PROOF_FORMAT_HEAD or data is None:
        checks.append(Check("batch-head", False, f"proof.json format {version!r} "
                            + ("with" if data is not None else "without") + " batch-head.json: "
                            "format 1 has no head, format 2 needs one"))
        return None
    try:
        head = parse_batch_head(data)
    except MalformedInputError as exc:
        checks.append(Check("batch-head", False, str(exc)))
        return None
    size = proof.get("tree_size")
    ok = hmac.compare_digest(head.root, root) and head.tree_size == size
    checks.append(Check("batch-head", ok, f"batch-head.json states root {head.root.hex()} and "
                        f"tree size {head.tree_size}; " + ("equal to" if ok else "not") +
                        f" the proof's {root.hex()} and {size}"))
    return head.imprint if ok else None


def _check_tokens(checks: list[Check], files: dict[str, bytes], root: bytes | None,
                  roots: Sequence[x509.Certificate] | None,
                  partial_chain: bool, now: datetime) -> list[StampResult]:
    names = sorted(p[len("tokens/"):-len(".tsr")] for p in files
                   if p.startswith("tokens/") and p.endswith(".tsr"))
    if not names:
        checks.append(Check("tokens", False, "the bundle holds no timestamp token"))
    if root is None:
        if names:
            checks.append(Check("tokens", False, "not checked: no valid Merkle root or batch head "
                                "to compare"))
        return []
    return [_check_token(checks, name, files, root, roots, partial_chain, now) for name in names]


def _check_token(checks: list[Check], name: str, files: dict[str, bytes], root: bytes,
                 roots: Sequence[x509.Certificate] | None, partial_chain: bool,
                 now: datetime) -> StampResult:
    what = f"token:{name}"
    token = files[f"tokens/{name}.tsr"][: MAX_TOKEN_BYTES + 1]
    try:
        chain = x509.load_pem_x509_certificates(files.get(f"certs/{name}.pem", b"")[:MAX_PEM_BYTES])
    except ValueError:
        chain = []
    chain = chain[:MAX_CHAIN_CERTS]
    bundled = roots is None
    anchors = list(roots) if roots is not None else chain[-1:]
    if not anchors:
        checks.append(Check(what, False, f"certs/{name}.pem holds no certificate to trust"))
        return StampResult(name, False, None, None, None, None, None, bundled,
                           ("no certificate chain",), ())
    verdict = verify_timestamp(token, digest=root, hash_alg="sha256", roots=anchors,
                               untrusted=chain[:-1] if bundled else chain,
                               partial_chain=partial_chain)
    facts = verdict.facts
    # The bundled root is named even when the chain fails, so a reader can compare it.
    trusted = facts.chain[-1] if facts.chain else (anchors[0] if bundled else None)
    fingerprint = trusted.fingerprint(hashes.SHA256()).hex(":").upper() if trusted else None
    signer = facts.signer_certificate.subject.rfc4514_string() if facts.signer_certificate else None
    trust = ("the bundled root (compare its fingerprint with the TSA's)" if bundled
             else "your roots")
    if verdict.valid:
        over = ("SHA-256 of batch-head.json" if "batch-head.json" in files
                else "the Merkle root")
        detail = (f"signed by {signer} at {facts.gen_time:%Y-%m-%d %H:%M:%S} UTC over {over}; "
                  f"chain to {trust} valid at that time")
    else:
        detail = "; ".join(verdict.reasons) + f" (trusting {trust})"
    checks.append(Check(what, verdict.valid, detail))
    revocation: list[CertificateStatus] = []
    if verdict.valid and facts.gen_time is not None:  # 6. Not revoked at genTime.
        revocation = check_chain(facts.chain, _revocation_entries(files, name), facts.gen_time)
        for status in revocation:
            checks.append(Check(f"revocation:{name}", status.ok, status.detail))
        if not revocation:
            checks.append(Check(f"revocation:{name}", None, "the chain has no certificate "
                                "below its trust anchor whose revocation could be asked"))
    if verdict.valid:  # 7. The evidence still holds at `now`, renewed if it had to be.
        renewed, why = check_renewals(name, files, verdict, roots, partial_chain, now)
        checks.append(Check(f"renewal:{name}", renewed, why))
    return StampResult(
        tsa=name, valid=verdict.valid, gen_time=facts.gen_time, signer=signer,
        serial=facts.serial, trusted_root=trusted.subject.rfc4514_string() if trusted else None,
        trusted_root_sha256=fingerprint, bundled_root_trusted=bundled,
        reasons=verdict.reasons, warnings=verdict.warnings, revocation=tuple(revocation),
    )


def _revocation_entries(files: dict[str, bytes], name: str) -> list[RevocationEntry]:
    """revocation/<name>/<cert sha256>.crl and .ocsp members as entries (the name says which
    certificate, the suffix what kind)."""
    prefix, entries = f"revocation/{name}/", []
    for path, data in sorted(files.items()):
        stem, _, kind = path[len(prefix):].rpartition(".")
        if path.startswith(prefix) and kind in (KIND_CRL, KIND_OCSP) and _is_hex64(stem):
            entries.append(RevocationEntry(stem, kind, None, data[: MAX_CRL_BYTES + 1]))
    return entries


def _status_dict(status: CertificateStatus) -> dict[str, Any]:
    revoked_at = status.revoked_at
    return {"certificate": status.subject, "certificate_sha256": status.cert_sha256,
            "ok": status.ok, "detail": status.detail, "reason": status.reason,
            "revoked_at": revoked_at.isoformat().replace("+00:00", "Z") if revoked_at else None}


def _json_object(data: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _is_hex64(text: str) -> bool:
    return len(text) == _SHA256_HEX_CHARS and all(c in "0123456789abcdef" for c in text)
