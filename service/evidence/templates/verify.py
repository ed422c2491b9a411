#!/usr/bin/env python3
"""Check a Chronoseal evidence bundle offline: image, manifest, Merkle proof, timestamps and
the revocation status of each TSA's certificates at the token's time.

Proof format 2 (proof.json "v": 2): the tokens imprint SHA-256 of batch-head.json, which states
the Merkle root and tree size; format 1 (no "v", older bundles): they imprint the root itself.
A token holds while its TSA certificate chain is valid; past that, only with RFC 4998 archive
timestamps (evidence-records/<tsa>.ers) made before each earlier chain expired (see --at).

    python3 verify.py [--image FILE] [--ca ROOTS.pem] [--bundle DIR | BUNDLE.zip] [--at TIME]

Needs Python 3.8+ (standard library only) and the `openssl` command; no network, no Chronoseal.
Every check is printed with its result. Exit status: 0 valid, 1 invalid, 2 unusable input
(openssl missing, an option's file unreadable). VERIFY.md describes the same steps as commands.
Given the ZIP itself (`--bundle BUNDLE.zip`), it also checks what unzip cannot show: a member
name that appears twice, an absolute or `..` path, a link, a member outside the bundle layout.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

EXIT_VALID, EXIT_INVALID, EXIT_UNUSABLE = 0, 1, 2
OPENSSL_TIMEOUT_S = 60  # one signature and chain check; generous for slow machines
MAX_PROOF_LENGTH = 64  # an audit path for any tree of fewer than 2^64 leaves
MAX_TREE_SIZE = 2**63  # tree_size and leaf_index beyond this are not from a real tree
MAX_FILE_BYTES = 64 * 1024 * 1024  # bundle files are small; refuse to read anything huge
PROOF_FORMAT_ROOT, PROOF_FORMAT_HEAD = 1, 2  # tokens imprint the root / SHA-256(batch-head.json)
HEAD_KEYS = {"batch_id", "closed_at", "hash", "root", "tree_size", "type", "v"}
MAX_RENEWALS = 128  # archive timestamps read from one evidence record: a century of renewals
SHA256_OID = bytes.fromhex("0609608648016503040201")  # DER of 2.16.840.1.101.3.4.2.1
_PEM_CERT = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----"
)
_HEX64 = re.compile(r"[0-9a-f]{64}")
# RFC 3161 section 4: a TSA certificate revoked for one of these CRL reason codes leaves the
# tokens from before its revocation valid (unspecified, affiliationChanged, superseded,
# cessationOfOperation); any other reason, or none given, voids every token of the key.
REASONS_KEEPING_EARLIER_TOKENS = {0, 3, 4, 5}
REASON_NAMES = {0: "unspecified", 1: "keyCompromise", 2: "cACompromise", 3: "affiliationChanged",
                4: "superseded", 5: "cessationOfOperation", 6: "certificateHold",
                8: "removeFromCRL", 9: "privilegeWithdrawn", 10: "aACompromise"}
_REASON_CODE_OID = bytes.fromhex("551d15")  # 2.5.29.21 id-ce-cRLReasons

# --- the bundle layout ------------------------------------------------------------------------
# Every member a bundle may hold (DESIGN.md 'Evidence bundle'), as exact names or patterns where
# <name> is one file-name segment in bundle.safe_name's alphabet and <path> one to
# MAX_PATH_SEGMENTS of them. This one table is read by bundle.py (what it may write),
# bundle_check.py (chronoseal verify, POST /v1/verify) and this script, so the three agree.
BUNDLE_LAYOUT = (
    "manifest.json",  # the exact bytes hashed
    "proof.json",  # the Merkle inclusion proof
    "batch-head.json",  # the canonical batch head a token imprints (proof format 2)
    "tokens/<name>.tsr",  # one DER TimeStampResp per TSA
    "certs/<name>.pem",  # that TSA's chain, TSA certificate first
    "revocation/<path>",  # OCSP responses / CRLs per TSA certificate (revocation/<tsa>/...)
    "evidence-records/<name>.ers",  # RFC 4998 EvidenceRecord per token (DER)
    "evidence-records/<name>.json",  # its readable rendering
    "evidence-records/<name>.txt",  # ...or as text
    "history/<path>",  # earlier iterations of the image
    "disclosure.json",  # salts of a private record, kept by the creator
    "verify.py",
    "VERIFY.md",
    "certificate.html",
    "certificate.pdf",
)
# Files VERIFY.md's manual steps write into the extracted directory (split chains); they are
# not bundle members, so they are allowed only when a directory, not a ZIP, is checked.
WORK_FILES = ("<name>-cert<n>.pem", "<name>-untrusted.pem")
MAX_PATH_SEGMENTS = 4  # revocation/<tsa>/<certificate>.der, history/<n>/...: nothing deeper
MAX_MEMBERS = 512  # tokens, chains, revocation data and history of a few TSAs; more is not ours
MAX_PROBLEMS_SHOWN = 10  # one bad bundle can have hundreds of bad names; a few make the point
# No leading "." or "-": never "..", never an option; up to 128 characters, so a SHA-256 in hex
# with its extension (revocation/<tsa>/<hex>.crl) fits.
_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"
_SYMLINK = 0o120000
_FILE_TYPE = 0o170000


def _layout_regex(patterns: Iterable[str]) -> re.Pattern[str]:
    parts = []
    for pattern in patterns:
        regex = re.escape(pattern).replace(re.escape("<name>"), _SEGMENT)
        regex = regex.replace(re.escape("<path>"),
                              f"{_SEGMENT}(?:/{_SEGMENT}){{0,{MAX_PATH_SEGMENTS - 1}}}")
        parts.append(regex.replace(re.escape("<n>"), "[0-9]{1,2}"))
    return re.compile("|".join(f"(?:{p})" for p in parts))


_MEMBER = _layout_regex(BUNDLE_LAYOUT)
_WORK_FILE = _layout_regex(WORK_FILES)
_DIRECTORIES = frozenset(p.split("/")[0] for p in BUNDLE_LAYOUT if "/" in p)


def layout_problems(members: Iterable[tuple[str, bool]], *, work_files: bool = False
                    ) -> list[str]:
    """Why these member names (name, is a link) do not form a bundle; empty when they do.

    Each reason names the member. A directory entry ("tokens/") is allowed under a layout
    directory; `work_files` also admits the files VERIFY.md's steps write (a directory check).
    """
    problems: list[str] = []
    names: set[str] = set()
    seen: dict[str, str] = {}  # case-folded name -> the first name spelt so
    for name, link in members:
        folded = name.casefold()
        if name in names:
            problems.append(f"{name!r} appears more than once: unzip and zipfile would read "
                            "different copies")
        elif folded in seen:
            problems.append(f"{name!r} and {seen[folded]!r} differ only in case: one "
                            "overwrites the other on case-insensitive file systems")
        seen.setdefault(folded, name)
        names.add(name)
        segments = re.split(r"[/\\]", name)
        if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
            problems.append(f"{name!r} is an absolute path")
        elif ".." in segments:
            problems.append(f"{name!r} climbs out of the bundle directory (..)")
        elif link:
            problems.append(f"{name!r} is a symbolic link")
        elif not (_MEMBER.fullmatch(name) or _is_layout_directory(name)
                  or (work_files and _WORK_FILE.fullmatch(name))):
            problems.append(f"{name!r} is not part of the bundle layout")
    if len(problems) > MAX_PROBLEMS_SHOWN:
        problems[MAX_PROBLEMS_SHOWN:] = [f"... and {len(problems) - MAX_PROBLEMS_SHOWN} more"]
    return problems


def _is_layout_directory(name: str) -> bool:
    segments = name.split("/")
    return (name.endswith("/") and segments[0] in _DIRECTORIES
            and len(segments) <= MAX_PATH_SEGMENTS + 1
            and all(re.fullmatch(_SEGMENT, s) for s in segments[1:-1]))


def zip_members(infos: Iterable[zipfile.ZipInfo]) -> list[tuple[str, bool]]:
    """(name, is a symbolic link) of each ZIP member, as layout_problems takes them."""
    return [(i.filename, (i.external_attr >> 16) & _FILE_TYPE == _SYMLINK) for i in infos]


class UnusableInputError(Exception):
    """The check cannot be carried out at all (as opposed to: it was carried out and failed)."""


class Report:
    """Prints each check as it is made and remembers whether any failed."""

    def __init__(self) -> None:
        self.failed = 0
        self.passed = 0
        self.not_checked: list[str] = []  # said again in the RESULT line, so no one misses it

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        self.passed += ok
        self.failed += not ok
        print(f"[{'PASS' if ok else 'FAIL'}] {what}" + (f"\n       {detail}" if detail else ""))
        return ok

    def note(self, label: str, text: str) -> None:
        print(f"[{label}] {text}")

    def unchecked(self, what: str, why: str) -> None:
        self.not_checked.append(what)
        self.note("NOT CHECKED", f"{what}: {why}")

    def result(self) -> str:
        """The last line: the outcome, and what it does not cover."""
        valid = self.failed == 0
        line = (f"RESULT: {'VALID' if valid else 'INVALID'} ({self.passed} checks passed, "
                f"{self.failed} failed)")
        if self.not_checked:
            line += (f"; NOT CHECKED: {', '.join(self.not_checked)} - this result says nothing "
                     "about " + " or ".join(self.not_checked))
        return line


# --- RFC 3161 token facts: a minimal DER reader for the fields printed and used as -attime ----


def _tlv(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at pos; ValueError if malformed."""
    if pos + 2 > end:
        raise ValueError("truncated DER")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4 or pos + count > end:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > end:
        raise ValueError("DER element runs past its parent")
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out, pos = [], start
    while pos < end:
        element = _tlv(data, pos, end)
        out.append(element)
        pos = element[2]
    return out


class TokenFacts(NamedTuple):
    """What a token states about itself (read, not verified)."""

    gen_time: datetime
    serial: int
    policy: str


def token_facts(der: bytes) -> TokenFacts:
    """genTime (aware datetime), serial number and policy OID of a DER TimeStampResp.

    Raises ValueError when the bytes do not have a TimeStampResp's shape. This reads, it does
    not verify: `openssl ts -verify` decides whether the token is genuine.
    """
    _, start, end = _tlv(der, 0, len(der))  # TimeStampResp
    parts = _children(der, start, end)
    if len(parts) < 2:
        raise ValueError("no TimeStampToken in the response")
    _, start, end = parts[1]  # ContentInfo
    _, start, end = _children(der, start, end)[1]  # [0] EXPLICIT content
    _, start, end = _children(der, start, end)[0]  # SignedData
    encap = _children(der, start, end)[2]  # version, digestAlgorithms, encapContentInfo
    _, start, end = _children(der, encap[1], encap[2])[1]  # [0] EXPLICIT eContent
    _, start, end = _children(der, start, end)[0]  # OCTET STRING holding TSTInfo
    _, start, end = _tlv(der, start, end)  # TSTInfo
    fields = _children(der, start, end)  # version, policy, messageImprint, serialNumber, genTime
    if [f[0] for f in fields[:5]] != [0x02, 0x06, 0x30, 0x02, 0x18]:
        raise ValueError("TSTInfo does not have the RFC 3161 layout")
    gen_time = der[fields[4][1] : fields[4][2]].decode("ascii")
    match = re.fullmatch(r"(\d{14})(?:\.(\d{1,6})\d*)?Z", gen_time)
    if match is None:
        raise ValueError(f"genTime {gen_time!r} is not GeneralizedTime in UTC")
    utc = timezone.utc  # noqa: UP017 - datetime.UTC needs 3.11; this script runs on 3.8+
    moment = datetime.strptime(match[1], "%Y%m%d%H%M%S").replace(
        microsecond=int((match[2] or "0").ljust(6, "0")), tzinfo=utc
    )
    return TokenFacts(
        gen_time=moment,
        serial=int.from_bytes(der[fields[3][1] : fields[3][2]], "big", signed=True),
        policy=_oid(der[fields[1][1] : fields[1][2]]),
    )


def _oid(body: bytes) -> str:
    arcs, value = [], 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2) if arcs else 0
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]]) if arcs else ""


def _der_time(data: bytes, tag: int, start: int, end: int) -> datetime:
    """UTCTime (RFC 5280: years 1950-2049) or GeneralizedTime, in UTC, as an aware datetime."""
    text = data[start:end].decode("ascii")
    if tag == 0x17:
        text = ("19" if int(text[:2]) >= 50 else "20") + text
    match = re.fullmatch(r"(\d{14})(?:\.\d+)?Z", text)
    if match is None:
        raise ValueError(f"time {text!r} is not in UTC")
    utc = timezone.utc  # noqa: UP017 - see token_facts
    return datetime.strptime(match[1], "%Y%m%d%H%M%S").replace(tzinfo=utc)


class CertFacts(NamedTuple):
    serial: int
    issuer: bytes  # DER of the issuer Name, compared as bytes with the CRL's
    subject: bytes


def cert_facts(der: bytes) -> CertFacts:
    """Serial, issuer and subject of a DER certificate (read, not verified)."""
    _, start, end = _tlv(der, 0, len(der))
    _, start, end = _children(der, start, end)[0]  # tbsCertificate
    fields = _children(der, start, end)
    if fields and fields[0][0] == 0xA0:  # [0] version
        fields = fields[1:]
    serial, issuer, subject = fields[0], fields[2], fields[4]
    return CertFacts(int.from_bytes(der[serial[1]:serial[2]], "big", signed=True),
                     der[issuer[1]:issuer[2]], der[subject[1]:subject[2]])


class CRLFacts(NamedTuple):
    issuer: bytes
    this_update: datetime
    next_update: datetime | None
    revoked: dict[int, tuple[datetime, int | None]]  # serial -> (revocation date, reason code)


def crl_facts(der: bytes) -> CRLFacts:
    """Issuer, thisUpdate, nextUpdate and the revoked serials of a DER CRL (RFC 5280 5.1)."""
    _, start, end = _tlv(der, 0, len(der))
    _, start, end = _children(der, start, end)[0]  # tbsCertList
    fields = _children(der, start, end)
    if fields and fields[0][0] == 0x02:  # version
        fields = fields[1:]
    issuer, this_update = fields[1], fields[2]
    rest = fields[3:]
    next_update = None
    if rest and rest[0][0] in (0x17, 0x18):
        next_update = _der_time(der, *rest[0])
        rest = rest[1:]
    revoked: dict[int, tuple[datetime, int | None]] = {}
    if rest and rest[0][0] == 0x30:
        for _, e_start, e_end in _children(der, rest[0][1], rest[0][2]):
            parts = _children(der, e_start, e_end)
            serial = int.from_bytes(der[parts[0][1]:parts[0][2]], "big", signed=True)
            reason = None
            if len(parts) > 2:
                for _, x_start, x_end in _children(der, parts[2][1], parts[2][2]):
                    ext = _children(der, x_start, x_end)
                    if der[ext[0][1]:ext[0][2]] == _REASON_CODE_OID:
                        _, v_start, v_end = _tlv(der, ext[-1][1], ext[-1][2])  # ENUMERATED
                        reason = int.from_bytes(der[v_start:v_end], "big")
            revoked[serial] = (_der_time(der, *parts[1]), reason)
    return CRLFacts(der[issuer[1]:issuer[2]], _der_time(der, *this_update), next_update, revoked)


# --- the checks -------------------------------------------------------------------------------


def root_from_path(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes | None:
    """The tree head an audit path leads to, per RFC 9162 section 2.1.3.2; None if malformed."""
    if not 0 <= index < size or len(path) > MAX_PROOF_LENGTH:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while fn & 1 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def check_image(report: Report, manifest: dict[str, Any], image: Path | None) -> None:
    image_record = manifest.get("image")
    stated = str(image_record.get("sha256", "")) if isinstance(image_record, dict) else ""
    if image is None:
        report.unchecked("the image", "no --image given, so no file was compared with the "
                         f"registered digest {stated}")
        return
    try:
        digest = _sha256_file(image)
    except OSError as exc:
        raise UnusableInputError(f"cannot read --image {image}: {exc}") from exc
    report.check(hmac.compare_digest(digest, stated), f"image: SHA-256 of {image.name} equals "
                 "manifest.json image.sha256", f"file {digest}\n       manifest {stated}")


def check_proof(report: Report, manifest_bytes: bytes, proof: dict[str, Any]) -> bytes | None:
    """Manifest digest -> leaf -> root; returns the root the manifest leads to, if any."""
    digest = hashlib.sha256(manifest_bytes).digest()
    leaf = hashlib.sha256(b"\x00" + digest).digest()
    report.note("INFO", f"manifest digest SHA-256(manifest.json) = {digest.hex()}")
    report.check(proof.get("hash") == "sha256", "proof: hash algorithm is sha256")
    report.check(str(proof.get("leaf")) == leaf.hex(), "proof: leaf SHA-256(0x00 || manifest "
                 "digest) equals proof.json leaf", f"computed {leaf.hex()}\n       proof.json "
                 f"{proof.get('leaf')}")
    index, size, path = proof.get("leaf_index"), proof.get("tree_size"), proof.get("audit_path")
    well_formed = (
        type(index) is int and type(size) is int and 0 <= index < size <= MAX_TREE_SIZE
        and isinstance(path, list) and all(isinstance(p, str) and _HEX64.fullmatch(p)
                                           for p in path)
        and isinstance(proof.get("root"), str) and _HEX64.fullmatch(proof["root"])
    )
    if not report.check(bool(well_formed), "proof: leaf_index, tree_size, audit_path and root "
                        "are well formed"):
        return None
    assert isinstance(index, int) and isinstance(size, int) and isinstance(path, list)
    root = root_from_path(leaf, index, size, [bytes.fromhex(p) for p in path])
    ok = root is not None and hmac.compare_digest(root.hex(), proof["root"])
    report.check(ok, f"proof: audit path ({len(path)} hashes) from leaf {index} of {size} leads "
                 "to proof.json root (RFC 9162 2.1.3.2)", f"computed {root.hex() if root else '-'}"
                 f"\n       proof.json {proof['root']}")
    return root if ok else None


def check_head(report: Report, bundle: Path, proof: dict[str, Any],
               root: bytes) -> list[str] | None:
    """The openssl arguments naming what the tokens imprint, or None if the head check fails.

    Format 2: batch-head.json must state the root the audit path led to and proof.json's
    tree_size, and openssl hashes its exact bytes (-data). Format 1: the root (-digest).
    """
    version = proof.get("v", PROOF_FORMAT_ROOT)
    path = bundle / "batch-head.json"
    if version == PROOF_FORMAT_ROOT and not path.exists():
        report.note("INFO", "proof format 1 (made before batch heads): the tokens imprint the "
                    "Merkle root; the tree size is not signed")
        return ["-digest", root.hex()]
    if not report.check(version == PROOF_FORMAT_HEAD and path.is_file(), "batch head: proof.json "
                        "format 2 with batch-head.json", f"format {version!r}, batch-head.json "
                        + ("present" if path.exists() else "missing")):
        return None
    data = _read(path)
    head = _json(data)
    ok = (isinstance(head, dict) and set(head) == HEAD_KEYS
          and head.get("type") == "chronoseal.batch-head" and head.get("v") == 1
          and head.get("hash") == "sha256")
    if not report.check(ok, "batch head: batch-head.json is a v1 batch head"):
        return None
    assert isinstance(head, dict)
    report.note("INFO", f"batch head: batch {head['batch_id']}, closed {head['closed_at']}; "
                f"SHA-256(batch-head.json) = {hashlib.sha256(data).hexdigest()}")
    same = (isinstance(head["root"], str) and hmac.compare_digest(head["root"], root.hex())
            and type(head["tree_size"]) is int and head["tree_size"] == proof["tree_size"])
    if not report.check(same, "batch head: states the root the audit path leads to and "
                        "proof.json tree_size", f"head root {head['root']}, tree_size "
                        f"{head['tree_size']}\n       proof root {root.hex()}, tree_size "
                        f"{proof['tree_size']}"):
        return None
    return ["-data", str(path)]


def check_token(report: Report, bundle: Path, name: str, imprint: list[str],
                ca: Path | None, crl_root: Path | None = None) -> bool:
    """One TSA's token by openssl; `crl_root`: where revocation/ lies (an earlier iteration
    under history/ is judged with the bundle's own revocation data)."""
    token, chain_file = bundle / "tokens" / f"{name}.tsr", bundle / "certs" / f"{name}.pem"
    print(f"--- timestamp from {name}")
    facts: TokenFacts | None = None
    try:
        facts = token_facts(_read(token))
    except (ValueError, IndexError) as exc:  # openssl below still judges the token itself
        report.note("INFO", f"could not read genTime ({exc}); certificates are checked as of now")
    else:
        report.note("INFO", "time stated in the token (genTime): {gen_time:%Y-%m-%dT%H:%M:%S.%fZ}; "
                    "serial {serial}; policy {policy}".format(**facts._asdict()))
    certs = _PEM_CERT.findall(_read(chain_file)) if chain_file.is_file() else []
    if not report.check(bool(certs), f"{name}: certs/{name}.pem holds the certificate chain"):
        return False
    bundled_root = certs[-1]
    report.note("INFO", "bundled root certificate SHA-256 fingerprint: "
                f"{_fingerprint(bundled_root)}\n       compare it with the one the TSA publishes")
    with tempfile.TemporaryDirectory() as tmp:
        anchors, untrusted = (ca, certs) if ca else (Path(tmp, "root.pem"), certs[:-1])
        if ca is None:
            anchors.write_bytes(bundled_root + b"\n")
        args = ["openssl", "ts", "-verify", *imprint, "-in", str(token),
                "-CAfile", str(anchors)]
        if untrusted:
            Path(tmp, "untrusted.pem").write_bytes(b"\n".join(untrusted) + b"\n")
            args += ["-untrusted", str(Path(tmp, "untrusted.pem"))]
        # Certificates are judged as they stood at genTime, so an expired TSA certificate does
        # not void an older timestamp. Revocation is checked after, from the bundled CRLs.
        if facts is not None:
            args += ["-attime", str(int(facts.gen_time.timestamp()))]
        try:
            proc = subprocess.run(args, capture_output=True, text=True,
                                  timeout=OPENSSL_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            report.check(False, f"{name}: openssl ts -verify answered in time")
            return False
    output = (proc.stdout + proc.stderr).strip()
    trust = f"your --ca {ca}" if ca else "the bundled root (weaker: compare its fingerprint)"
    ok = proc.returncode == 0 and "Verification: OK" in proc.stdout
    # A PASS shows openssl's verdict only; anything else it said (warnings such as "is not a CA
    # cert") is printed as a note of its own, never inside the PASS.
    said = [line for line in output.splitlines() if line.strip()
            and line != "Verification: OK" and not line.startswith("Using configuration from")]
    over = "SHA-256(batch-head.json)" if imprint[0] == "-data" else "the Merkle root"
    report.check(ok, f"{name}: openssl ts -verify: token imprint equals {over}, "
                 f"signature and certificate chain valid, trusting {trust}",
                 "Verification: OK" if ok else output.replace("\n", "\n       "))
    if ok and said:
        leaf = " (expected: the TSA's own certificate is a leaf, handed to openssl with the " \
               "chain)" if any("is not a CA cert" in line for line in said) else ""
        report.note("NOTE", f"{name}: openssl also said: " + " / ".join(said) + leaf)
    if ok and facts is not None:
        check_revocation(report, crl_root or bundle, name, certs, facts.gen_time)
    return ok


# --- private records and the iteration history -------------------------------------------------
# A private record's manifest holds generation = {"private": true, "commitments": {field: hex}},
# each commitment SHA-256(salt || JCS(value)) with a 16-byte salt; disclosure.json opens some.
SALT_HEX = re.compile(r"[0-9a-f]{32}")
DISCLOSURE_TYPE = "chronoseal.disclosure"


def check_disclosure(report: Report, bundle: Path, manifest: dict[str, Any],
                     manifest_bytes: bytes) -> None:
    """Each revealed field of disclosure.json against its commitment in the manifest."""
    generation = manifest.get("generation")
    commitments = generation.get("commitments") if isinstance(generation, dict) else None
    private = isinstance(generation, dict) and generation.get("private") is True \
        and isinstance(commitments, dict)
    path = bundle / "disclosure.json"
    if not path.is_file():
        if private and isinstance(commitments, dict):
            report.note("INFO", "private record: the manifest holds only commitments to "
                        f"{', '.join(sorted(commitments))}; this bundle reveals none of them")
        return
    doc = _json(_read(path))
    fields = doc.get("fields") if isinstance(doc, dict) else None
    if not report.check(private and isinstance(doc, dict) and isinstance(fields, dict)
                        and doc.get("type") == DISCLOSURE_TYPE,
                        "disclosure: disclosure.json opens a private record"):
        return
    assert isinstance(doc, dict) and isinstance(fields, dict) and isinstance(commitments, dict)
    digest = hashlib.sha256(manifest_bytes).hexdigest()
    report.check(doc.get("manifest_sha256") == digest, "disclosure: disclosure.json names this "
                 "manifest's digest")
    for name, item in sorted(fields.items()):
        salt = item.get("salt") if isinstance(item, dict) else None
        jcs = item.get("jcs") if isinstance(item, dict) else None
        if not report.check(isinstance(salt, str) and bool(SALT_HEX.fullmatch(salt))
                            and isinstance(jcs, str), f"disclosure: {name} has a 16-byte salt "
                            "and the JCS bytes of its value"):
            continue
        assert isinstance(item, dict) and isinstance(salt, str) and isinstance(jcs, str)
        computed = hashlib.sha256(bytes.fromhex(salt) + jcs.encode("utf-8")).hexdigest()
        stated = commitments.get(name)
        report.check(isinstance(stated, str) and hmac.compare_digest(computed, stated),
                     f"disclosure: {name}: SHA-256(salt || JCS(value)) equals the manifest's "
                     "commitment", f"computed {computed}\n       manifest {stated}")
        try:
            same = json.loads(jcs) == item.get("value")
        except ValueError:
            same = False
        report.check(same, f"disclosure: {name}: the value shown is the committed JCS text")
        report.note("REVEALED", f"{name} = {jcs[:200]}")
    hidden = sorted(set(commitments) - set(fields))
    if hidden:
        report.note("INFO", f"private record: not revealed here: {', '.join(hidden)}")


def check_history(report: Report, bundle: Path, manifest: dict[str, Any], manifest_bytes: bytes,
                  ca: Path | None) -> None:
    """Each earlier iteration under history/<receipt id>/ checked like the bundle itself, linked
    to this manifest through `parents`, then all listed in the order they were timestamped."""
    base = bundle / "history"
    stated = manifest.get("parents")
    parents: list[Any] = stated if isinstance(stated, list) else []
    if not base.is_dir():
        if parents:
            report.note("INFO", f"the manifest names {len(parents)} parent(s); this bundle "
                        "carries no history (ask for the bundle with ?history=true)")
        return
    carried: dict[str, tuple[str, dict[str, Any], datetime | None]] = {}
    for entry in sorted(p for p in base.iterdir() if p.is_dir()):
        print(f"=== earlier iteration {entry.name}")
        data = _read(entry / "manifest.json")
        earlier, proof = _json(data), _json(_read(entry / "proof.json"))
        if not report.check(isinstance(earlier, dict) and isinstance(proof, dict),
                            f"history {entry.name}: manifest.json and proof.json are JSON "
                            "objects"):
            continue
        assert isinstance(earlier, dict) and isinstance(proof, dict)
        root = check_proof(report, data, proof)
        imprint = check_head(report, entry, proof, root) if root else None
        names = sorted(p.stem for p in (entry / "tokens").glob("*.tsr"))
        times = []
        if report.check(bool(names), f"history {entry.name}: holds at least one timestamp "
                        "token") and imprint:
            for name in names:
                if check_token(report, entry, name, imprint, ca, crl_root=bundle):
                    with contextlib.suppress(ValueError, IndexError):
                        times.append(token_facts(_read(entry / "tokens" / f"{name}.tsr"))
                                     .gen_time)
        carried[hashlib.sha256(data).hexdigest()] = (entry.name, earlier,
                                                     min(times) if times else None)
    # Linked: reached from this manifest's parents (by manifest digest, or by image digest).
    linked: set[str] = set()
    todo = list(parents)
    while todo:
        parent = todo.pop()
        if not isinstance(parent, dict):
            continue
        for digest, (_, earlier, _) in carried.items():
            image = _object(earlier.get("image"))
            if digest not in linked and (parent.get("manifest_sha256") == digest
                                         or parent.get("image_sha256") == image.get("sha256")):
                linked.add(digest)
                todo += [p for p in earlier.get("parents", []) if isinstance(p, dict)]
    for digest, (receipt, _, _) in sorted(carried.items()):
        report.check(digest in linked, f"history {receipt}: an ancestor of this image, named "
                     "through the manifests' parents")
    own = [(moment, receipt) for receipt, _, moment in carried.values()]
    by_id = {r: m for r, m, _ in carried.values()}
    utc = timezone.utc  # noqa: UP017 - 3.8+
    own.sort(key=lambda item: (item[0] or datetime.max.replace(tzinfo=utc),
                               str(by_id[item[1]].get("submitted_at"))))
    print("--- the iteration history, oldest first")
    for number, (moment, receipt) in enumerate(own, 1):
        m = by_id[receipt]
        image = _object(m.get("image"))
        when = f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else "(no valid timestamp)"
        report.note("HISTORY", f"{number}. {when}  {receipt}  image {image.get('sha256')}"
                    + (f"  session {m['session']}" if m.get("session") else ""))
    image = _object(manifest.get("image"))
    report.note("HISTORY", f"{len(own) + 1}. this image {image.get('sha256')}, submitted "
                f"{manifest.get('submitted_at')}"
                + (f"  session {manifest['session']}" if manifest.get("session") else ""))


# --- RFC 4998 evidence records ----------------------------------------------------------------


def _elements(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, element start, content start, content end) of each element in data[start:end]."""
    out, pos = [], start
    while pos < end:
        tag, body, stop = _tlv(data, pos, end)
        out.append((tag, pos, body, stop))
        pos = stop
    return out


def read_evidence_record(der: bytes) -> list[tuple[list[list[bytes]], bytes]]:
    """Each archive timestamp of a DER EvidenceRecord: (reduced hash tree, TimeStampToken)."""
    _, start, end = _tlv(der, 0, len(der))
    parts = _elements(der, start, end)  # version, digestAlgorithms, [cryptoInfos], sequence
    if der[parts[0][1]:parts[0][3]] != b"\x02\x01\x01":
        raise ValueError("not a version 1 EvidenceRecord")
    algorithms = der[parts[1][2]:parts[1][3]]
    if SHA256_OID not in algorithms or algorithms.count(b"\x06") != 1:
        raise ValueError("only SHA-256 evidence records are read")
    chains = _elements(der, parts[-1][2], parts[-1][3])
    if len(chains) != 1:
        raise ValueError("one ArchiveTimeStampChain expected")
    out = []
    for _, _, ats_start, ats_end in _elements(der, chains[0][2], chains[0][3])[:MAX_RENEWALS]:
        fields = _elements(der, ats_start, ats_end)
        lists = []
        for tag, at, body, stop in fields[:-1]:
            if tag == 0xA0 and SHA256_OID not in der[at:stop]:  # digestAlgorithm [0]
                raise ValueError("an archive timestamp that is not SHA-256")
            if tag == 0xA2:  # reducedHashtree [2]
                lists = [[der[h[2]:h[3]] for h in _elements(der, p[2], p[3])]
                         for p in _elements(der, body, stop)]
        out.append((lists, der[fields[-1][1]:fields[-1][3]]))  # timeStamp: the ContentInfo
    return out


def reduce_tree(h: bytes, lists: list[list[bytes]]) -> bytes | None:
    """RFC 4998 4.3: from h through each list (sorted, concatenated, SHA-256) to the root."""
    if not lists:
        return h
    if h not in lists[0]:
        return None
    value = hashlib.sha256(b"".join(sorted(lists[0]))).digest()
    for hashes in lists[1:]:
        value = hashlib.sha256(b"".join(sorted([*hashes, value]))).digest()  # siblings + value
    return value


def chain_expiry(certs: list[bytes]) -> datetime | None:
    """The first notAfter of the PEM certificates, as `openssl x509 -enddate` states it."""
    ends = []
    for pem in certs:
        proc = subprocess.run(["openssl", "x509", "-noout", "-enddate"], input=pem,
                              capture_output=True, timeout=OPENSSL_TIMEOUT_S, check=False)
        text = proc.stdout.decode().strip().split("=", 1)[-1]
        try:
            ends.append(datetime.strptime(text, "%b %d %H:%M:%S %Y GMT").replace(
                tzinfo=timezone.utc))  # noqa: UP017 - 3.8+
        except ValueError:
            return None
    return min(ends) if ends else None


def check_renewal(report: Report, bundle: Path, name: str, ca: Path | None,
                  at: datetime) -> None:
    """The token's evidence still holds at `at`: its chain is valid then, or archive
    timestamps carry it, each valid at its genTime, covering the previous, made in time."""
    expires = chain_expiry(_PEM_CERT.findall(_read(bundle / "certs" / f"{name}.pem")))
    record = bundle / "evidence-records" / f"{name}.ers"
    what = f"{name}: evidence holds at {at:%Y-%m-%dT%H:%M:%SZ}"
    if expires is None:
        report.check(False, what, "the certificate chain's expiry could not be read")
        return
    if not record.is_file():
        report.check(at < expires, what, "no archive timestamp; the TSA chain "
                     + ("is valid until" if at < expires else "expired at")
                     + f" {expires:%Y-%m-%dT%H:%M:%SZ}")
        return
    try:
        chain = read_evidence_record(_read(record))
        items: Any = _json(_read(bundle / "evidence-records" / f"{name}.json"))
        pems = [(i.get("chain_pem") or "").encode() for i in items["archive_timestamps"]]
    except (ValueError, IndexError, TypeError, KeyError, AttributeError) as exc:
        report.check(False, what, f"evidence-records/{name} is unreadable: {exc}")
        return
    if not report.check(len(pems) == len(chain) > 0, f"{name}: evidence-records/{name}.json "
                        "lists every archive timestamp's certificate chain"):
        return
    first = chain[0][0][0] if chain[0][0] else []
    problem, covered_names, late = data_object_coverage(bundle, name, first)
    if not report.check(problem is None, f"{name}: archive timestamp 1 covers the token, its "
                        "certificate chain and the revocation data stored before the renewal",
                        problem or ", ".join(covered_names)):
        return
    if late:
        report.note("NOTE", f"{name}: not covered by the evidence record (fetched after the "
                    f"first renewal; still checked as revocation data above): {', '.join(late)}")
    covered = hashlib.sha256(_read(bundle / "tokens" / f"{name}.tsr")).digest()
    with tempfile.TemporaryDirectory() as tmp:
        # lengths checked above; zip(strict=) needs 3.10 and this script runs on 3.8+
        for number, ((lists, token), pem) in enumerate(zip(chain, pems), 1):  # noqa: B905
            root = reduce_tree(covered, lists)
            label = f"{name}: archive timestamp {number}"
            if not report.check(root is not None, f"{label} covers the "
                                + ("token" if number == 1 else "previous archive timestamp")):
                return
            assert root is not None
            resp = Path(tmp, f"ats{number}.tsr")
            status = b"\x30\x03\x02\x01\x00"  # PKIStatusInfo granted: openssl reads a reply
            body = status + token
            resp.write_bytes(b"\x30" + _der_length(len(body)) + body)
            try:
                facts = token_facts(resp.read_bytes())
            except (ValueError, IndexError) as exc:
                report.check(False, f"{label}: its timeStamp is a token", str(exc))
                return
            certs = _PEM_CERT.findall(pem)
            Path(tmp, "ats-chain.pem").write_bytes(b"\n".join(certs) + b"\n")
            anchors = ca or Path(tmp, "ats-root.pem")
            if ca is None and certs:
                anchors.write_bytes(certs[-1] + b"\n")
            args = ["openssl", "ts", "-verify", "-digest", root.hex(), "-in", str(resp),
                    "-CAfile", str(anchors), "-untrusted", str(Path(tmp, "ats-chain.pem")),
                    "-attime", str(int(facts.gen_time.timestamp()))]
            proc = subprocess.run(args, capture_output=True, text=True,
                                  timeout=OPENSSL_TIMEOUT_S, check=False)
            ok = proc.returncode == 0 and "Verification: OK" in proc.stdout
            if not report.check(ok, f"{label}: openssl ts -verify at its genTime "
                                f"{facts.gen_time:%Y-%m-%dT%H:%M:%SZ}",
                                (proc.stdout + proc.stderr).strip().replace("\n", "\n       ")):
                return
            if not report.check(facts.gen_time < expires, f"{label} was made before the chain "
                                f"it renews expired ({expires:%Y-%m-%dT%H:%M:%SZ})"):
                return
            expires = chain_expiry(certs) or facts.gen_time
            covered = hashlib.sha256(token).digest()
    report.check(at < expires, what, f"{len(chain)} archive timestamp(s); the last chain "
                 + ("is valid until" if at < expires else "expired at")
                 + f" {expires:%Y-%m-%dT%H:%M:%SZ}" + ("" if at < expires else ": renew again"))


def data_object_coverage(bundle: Path, name: str, first: list[bytes]
                         ) -> tuple[str | None, list[str], list[str]]:
    """(problem or None, members covered, revocation members not covered) for the first list
    of archive timestamp 1: it holds SHA-256 of tokens/<name>.tsr, of each certificate of
    certs/<name>.pem (DER) and of each revocation/<name>/* member stored before the renewal.
    A hash no member matches means a member was changed or removed."""
    objects = [(f"tokens/{name}.tsr", _read(bundle / "tokens" / f"{name}.tsr"))]
    pems = _PEM_CERT.findall(_read(bundle / "certs" / f"{name}.pem"))
    objects += [(f"certs/{name}.pem#{i}", _pem_der(pem)) for i, pem in enumerate(pems, 1)]
    folder = bundle / "revocation" / name
    members = sorted(folder.iterdir()) if folder.is_dir() else []
    objects += [(f"revocation/{name}/{m.name}", _read(m)) for m in members if m.is_file()]
    held = set(first)
    hashes = [(path, hashlib.sha256(data).digest()) for path, data in objects]
    covered = [p for p, h in hashes if h in held]
    late = [p for p, h in hashes if h not in held and p.startswith("revocation/")]
    missing = [p for p, h in hashes if h not in held and not p.startswith("revocation/")]
    unmatched = len(held - {h for _, h in hashes})
    if missing:
        return "archive timestamp 1 does not cover " + ", ".join(missing), covered, late
    if unmatched:
        return (f"archive timestamp 1 covers {unmatched} data object(s) the bundle no longer "
                "holds: a certificate or revocation member was changed or removed"), covered, late
    return None, covered, late


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _moment(text: str) -> datetime:
    """--at: an ISO 8601 time, UTC unless it says otherwise."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)  # noqa: UP017


def check_revocation(report: Report, bundle: Path, name: str, certs: list[bytes],
                     gen_time: datetime) -> None:
    """Each certificate below the root, against revocation/<tsa>/<its SHA-256>.crl at genTime:
    signed by its issuer (openssl crl -CAfile), current at genTime or issued after it (then it
    lists every earlier revocation with its date), and the serial not listed, or revoked after
    genTime for a reason that keeps earlier tokens valid (RFC 3161 section 4)."""
    ders = [_pem_der(pem) for pem in certs]
    missing: list[str] = []
    for index, der in enumerate(ders[:-1]):
        try:
            cert = cert_facts(der)
        except (ValueError, IndexError):
            report.check(False, f"{name}: certificate {index + 1} of certs/{name}.pem is readable")
            continue
        who = f"{name} certificate {index + 1} (serial {cert.serial:x})"
        crl_path = bundle / "revocation" / name / f"{hashlib.sha256(der).hexdigest()}.crl"
        ocsp_path = crl_path.with_suffix(".ocsp")
        if not crl_path.is_file() and not ocsp_path.is_file():
            report.note("NOT CHECKED", f"{who}: no revocation data was available when the token "
                        "was stored, so whether it was revoked is not known")
            missing.append(str(index + 1))
            continue
        # zip(strict=) needs 3.10; both lists are the same length here.
        above = zip(certs[index + 1:], ders[index + 1:])  # noqa: B905
        issuer = next((pem for pem, d in above if cert_facts(d).subject == cert.issuer), None)
        if issuer is None:
            report.check(False, f"{who}: its issuer is in certs/{name}.pem")
            continue
        if not crl_path.is_file():
            check_ocsp(report, who, ocsp_path, certs[index], issuer, certs[-1], gen_time)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "issuer.pem").write_bytes(issuer + b"\n")
            args = ["openssl", "crl", "-inform", "DER", "-in", str(crl_path), "-noout",
                    "-CAfile", str(Path(tmp, "issuer.pem"))]
            try:
                proc = subprocess.run(args, capture_output=True, text=True,
                                      timeout=OPENSSL_TIMEOUT_S, check=False)
            except subprocess.TimeoutExpired:
                report.check(False, f"{who}: openssl crl answered in time")
                continue
        said = (proc.stdout + proc.stderr).strip()
        if not report.check(proc.returncode == 0 and "verify OK" in said,
                            f"{who}: openssl crl: the CRL is signed by the issuer",
                            said.replace("\n", "\n       ")):
            continue
        try:
            crl = crl_facts(_read(crl_path))
        except (ValueError, IndexError) as exc:
            report.check(False, f"{who}: the CRL is readable", str(exc))
            continue
        report.check(crl.issuer == cert.issuer, f"{who}: the CRL names the certificate's issuer")
        stamp = f"{gen_time:%Y-%m-%d %H:%M:%S} UTC"
        fresh = crl.next_update is not None and crl.next_update >= gen_time
        period = (f"thisUpdate {crl.this_update:%Y-%m-%d %H:%M:%S}, nextUpdate "
                  + (f"{crl.next_update:%Y-%m-%d %H:%M:%S}" if crl.next_update else "none"))
        when = "current at genTime" if crl.this_update <= gen_time else "issued after genTime"
        if not report.check(fresh, f"{who}: the CRL speaks for genTime {stamp} ({when})",
                            period):
            continue
        entry = crl.revoked.get(cert.serial)
        if entry is None:
            report.check(True, f"{who}: not revoked (not listed in the CRL)")
            continue
        revoked_at, reason = entry
        reason_name = REASON_NAMES.get(reason, str(reason)) if reason is not None else "not given"
        later = revoked_at > gen_time and reason in REASONS_KEEPING_EARLIER_TOKENS
        report.check(later, f"{who}: " + (
            "revoked after genTime, for a reason that keeps earlier tokens valid" if later else
            "revoked at or before genTime, or for a reason that voids every token"),
            f"revoked at {revoked_at:%Y-%m-%d %H:%M:%S} UTC, reason {reason_name}; genTime "
            f"{stamp} (RFC 3161 section 4)")
    what = (f"revocation of {name}'s certificate(s) {', '.join(missing)} (no revocation data "
            "was available)")
    if missing and what not in report.not_checked:  # an earlier iteration's token: said once
        report.not_checked.append(what)


_OCSP_STATUS = re.compile(r"cert\.pem: (good|revoked|unknown)")
_OCSP_FIELD = re.compile(r"^\s*(This Update|Next Update|Reason|Revocation Time): (.+)$", re.M)


def check_ocsp(report: Report, who: str, path: Path, cert: bytes, issuer: bytes, root: bytes,
               gen_time: datetime) -> None:
    """The certificate against its OCSP response at genTime: `openssl ocsp -respin` checks the
    signature (by the issuer, or a responder the issuer authorised) and reads the status; the
    period and revocation time are then judged as for a CRL."""
    with tempfile.TemporaryDirectory() as tmp:
        for file, pem in (("cert.pem", cert), ("issuer.pem", issuer), ("root.pem", root)):
            Path(tmp, file).write_bytes(pem + b"\n")
        # -VAfile trusts the issuer as a responder; a delegated responder is chained to the
        # root. Times are judged below, at genTime, not by openssl's clock.
        args = ["openssl", "ocsp", "-respin", str(path), "-issuer", "issuer.pem", "-cert",
                "cert.pem", "-VAfile", "issuer.pem", "-CAfile", "root.pem", "-no_nonce"]
        try:
            proc = subprocess.run(args, capture_output=True, text=True, cwd=tmp,
                                  timeout=OPENSSL_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            report.check(False, f"{who}: openssl ocsp answered in time")
            return
    said = (proc.stdout + proc.stderr).strip()
    status = _OCSP_STATUS.search(proc.stdout)
    if not report.check(proc.returncode == 0 and "Response verify OK" in said
                        and status is not None, f"{who}: openssl ocsp: the OCSP response is "
                        "signed by the issuer or its responder, for this certificate",
                        said.replace("\n", "\n       ")):
        return
    assert status is not None
    fields: dict[str, str] = dict(_OCSP_FIELD.findall(proc.stdout))
    try:
        this_update = _openssl_time(fields["This Update"])
        next_update = _openssl_time(fields.get("Next Update", fields["This Update"]))
    except (KeyError, ValueError) as exc:
        report.check(False, f"{who}: the OCSP response states its period", str(exc))
        return
    stamp = f"{gen_time:%Y-%m-%d %H:%M:%S} UTC"
    when = "current at genTime" if this_update <= gen_time else "produced after genTime"
    if not report.check(next_update >= gen_time, f"{who}: the OCSP response speaks for genTime "
                        f"{stamp} ({when})", f"thisUpdate {this_update:%Y-%m-%d %H:%M:%S}, "
                        f"nextUpdate {next_update:%Y-%m-%d %H:%M:%S}"):
        return
    if status[1] != "revoked":
        report.check(status[1] == "good", f"{who}: OCSP status {status[1]}")
        return
    try:
        revoked_at = _openssl_time(fields["Revocation Time"])
    except (KeyError, ValueError) as exc:
        report.check(False, f"{who}: the OCSP response states the revocation time", str(exc))
        return
    reason_name = fields.get("Reason", "not given").strip()
    codes = {v: k for k, v in REASON_NAMES.items()}
    later = revoked_at > gen_time and codes.get(reason_name) in REASONS_KEEPING_EARLIER_TOKENS
    report.check(later, f"{who}: " + (
        "revoked after genTime, for a reason that keeps earlier tokens valid" if later else
        "revoked at or before genTime, or for a reason that voids every token"),
        f"revoked at {revoked_at:%Y-%m-%d %H:%M:%S} UTC, reason {reason_name}; genTime "
        f"{stamp} (RFC 3161 section 4)")


def _openssl_time(text: str) -> datetime:
    """A time as openssl prints it ("Dec  1 23:41:00 2026 GMT"), aware UTC."""
    utc = timezone.utc  # noqa: UP017 - see token_facts
    return datetime.strptime(text.strip(), "%b %d %H:%M:%S %Y GMT").replace(tzinfo=utc)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, help="the image file to compare with the manifest")
    parser.add_argument("--ca", type=Path, help="PEM file of roots you trust (stronger check)")
    parser.add_argument("--bundle", type=Path, default=Path(__file__).resolve().parent,
                        help="the extracted bundle directory (default: this script's directory),"
                        " or the bundle ZIP itself (also checks its member names)")
    parser.add_argument("--at", type=_moment, default=None,
                        help="judge certificate expiry as of this ISO 8601 time (default: now)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    report = Report()
    try:
        return _run(report, args)
    except UnusableInputError as exc:
        print(f"RESULT: NOT VERIFIED (unusable input): {exc}")
        return EXIT_UNUSABLE


def _run(report: Report, args: argparse.Namespace) -> int:
    if shutil.which("openssl") is None:
        raise UnusableInputError("the openssl command is not installed or not on PATH")
    if args.ca is not None and not args.ca.is_file():
        raise UnusableInputError(f"--ca {args.ca} is not a readable file")
    bundle: Path = args.bundle
    print(f"Chronoseal bundle: {bundle}")
    if bundle.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            if _unpack(report, bundle, Path(tmp)):
                return _check(report, Path(tmp), args)
            print(report.result())
            return EXIT_INVALID
    if not bundle.is_dir():
        raise UnusableInputError(f"--bundle {bundle} is neither a directory nor a file")
    own = {p.resolve() for p in (args.image, args.ca) if p is not None}
    members = [(name, path.is_symlink()) for name, path in _walk(bundle)
               if path.resolve() not in own]
    problems = layout_problems(members, work_files=True)
    report.check(not problems, "the directory holds only files of the bundle layout",
                 "\n       ".join(problems))
    report.note("NOTE", "an extracted directory cannot show names the ZIP held twice or "
                "unsafe paths unzip rewrote; to check those too: "
                "python3 verify.py --bundle BUNDLE.zip")
    return _check(report, bundle, args)


def _unpack(report: Report, bundle: Path, into: Path) -> bool:
    """Check the ZIP's member names against the layout and extract it if they pass."""
    try:
        with zipfile.ZipFile(bundle) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_MEMBERS:
                raise UnusableInputError(f"{bundle} holds more than {MAX_MEMBERS} members")
            problems = layout_problems(zip_members(infos))
            if not report.check(not problems, "the ZIP's member names are unique, relative and "
                                "all part of the bundle layout", "\n       ".join(problems)):
                return False
            left = MAX_FILE_BYTES  # for all members together: a ZIP bomb stops here
            for info in infos:
                if not info.is_dir():
                    target = into / info.filename  # checked above: relative, no "..", no link
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(info) as member:
                        data = member.read(left + 1)
                    if len(data) > left:
                        raise UnusableInputError(f"{bundle} unpacks to more than "
                                                 f"{MAX_FILE_BYTES} bytes")
                    left -= len(data)
                    target.write_bytes(data)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError,
            RuntimeError) as exc:  # not a ZIP; unknown compression; encrypted
        raise UnusableInputError(f"--bundle {bundle} is not a readable ZIP: {exc}") from exc
    return True


def _walk(root: Path) -> list[tuple[str, Path]]:
    """(relative POSIX name, path) of every file and link under root, links not followed."""
    out = []
    for directory, dirs, files in os.walk(root):
        base = Path(directory)
        for name in files + [d for d in dirs if (base / d).is_symlink()]:
            out.append(((base / name).relative_to(root).as_posix(), base / name))
        if len(out) > MAX_MEMBERS:
            raise UnusableInputError(f"{root} holds more than {MAX_MEMBERS} files")
    return out


def _check(report: Report, bundle: Path, args: argparse.Namespace) -> int:
    manifest_bytes = _read(bundle / "manifest.json")
    manifest, proof = _json(manifest_bytes), _json(_read(bundle / "proof.json"))
    if report.check(isinstance(manifest, dict) and isinstance(proof, dict),
                    "manifest.json and proof.json are JSON objects"):
        assert isinstance(manifest, dict) and isinstance(proof, dict)
        check_image(report, manifest, args.image)
        root = check_proof(report, manifest_bytes, proof)
        imprint = check_head(report, bundle, proof, root) if root else None
        names = sorted(p.stem for p in (bundle / "tokens").glob("*.tsr"))
        if report.check(bool(names), "the bundle holds at least one timestamp token") and imprint:
            at = args.at or datetime.now(timezone.utc)  # noqa: UP017 - 3.8+
            for name in names:
                if check_token(report, bundle, name, imprint, args.ca):
                    check_renewal(report, bundle, name, args.ca, at)
        check_disclosure(report, bundle, manifest, manifest_bytes)
        check_history(report, bundle, manifest, manifest_bytes, args.ca)
    print(report.result())
    return EXIT_VALID if report.failed == 0 else EXIT_INVALID


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _read(path: Path) -> bytes:
    """A bundle file's bytes; a missing one reads as empty so that its check fails."""
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_FILE_BYTES)
    except OSError:
        return b""


def _json(data: bytes) -> object:
    try:
        return json.loads(data)
    except ValueError:
        return None


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def _pem_der(pem: bytes) -> bytes:
    return base64.b64decode(b"".join(pem.splitlines()[1:-1]))


def _fingerprint(pem: bytes) -> str:
    digest = hashlib.sha256(_pem_der(pem)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


if __name__ == "__main__":
    sys.exit(main())
