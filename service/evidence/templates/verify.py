#!/usr/bin/env python3
"""Check a Chronoseal evidence bundle offline: image, manifest, Merkle proof and timestamps.

    python3 verify.py [--image FILE] [--ca ROOTS.pem] [--bundle DIR | --bundle BUNDLE.zip]

Needs Python 3.8+ (standard library only) and the `openssl` command; no network, no Chronoseal.
Every check is printed with its result. Exit status: 0 valid, 1 invalid, 2 unusable input
(openssl missing, an option's file unreadable). VERIFY.md describes the same steps as commands.
Given the ZIP itself (`--bundle BUNDLE.zip`), it also checks what unzip cannot show: a member
name that appears twice, an absolute or `..` path, a link, a member outside the bundle layout.
"""

from __future__ import annotations

import argparse
import base64
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
_PEM_CERT = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----"
)
_HEX64 = re.compile(r"[0-9a-f]{64}")

# --- the bundle layout ------------------------------------------------------------------------
# Every member a bundle may hold (DESIGN.md 'Evidence bundle'), as exact names or patterns where
# <name> is one file-name segment in bundle.safe_name's alphabet and <path> one to
# MAX_PATH_SEGMENTS of them. This one table is read by bundle.py (what it may write),
# bundle_check.py (chronoseal verify, POST /v1/verify) and this script, so the three agree.
BUNDLE_LAYOUT = (
    "manifest.json",  # the exact bytes hashed
    "proof.json",  # the Merkle inclusion proof
    "batch-head.json",  # the canonical batch head a token imprints (issue 11, long-term evidence)
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
_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}"  # no leading "." or "-": never "..", never an option
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


def check_token(report: Report, bundle: Path, name: str, root: bytes, ca: Path | None) -> None:
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
        return
    bundled_root = certs[-1]
    report.note("INFO", "bundled root certificate SHA-256 fingerprint: "
                f"{_fingerprint(bundled_root)}\n       compare it with the one the TSA publishes")
    with tempfile.TemporaryDirectory() as tmp:
        anchors, untrusted = (ca, certs) if ca else (Path(tmp, "root.pem"), certs[:-1])
        if ca is None:
            anchors.write_bytes(bundled_root + b"\n")
        args = ["openssl", "ts", "-verify", "-digest", root.hex(), "-in", str(token),
                "-CAfile", str(anchors)]
        if untrusted:
            Path(tmp, "untrusted.pem").write_bytes(b"\n".join(untrusted) + b"\n")
            args += ["-untrusted", str(Path(tmp, "untrusted.pem"))]
        # Certificates are judged as they stood at genTime, so an expired TSA certificate does
        # not void an older timestamp. (Later revocation cannot be checked offline.)
        if facts is not None:
            args += ["-attime", str(int(facts.gen_time.timestamp()))]
        try:
            proc = subprocess.run(args, capture_output=True, text=True,
                                  timeout=OPENSSL_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            report.check(False, f"{name}: openssl ts -verify answered in time")
            return
    output = (proc.stdout + proc.stderr).strip()
    trust = f"your --ca {ca}" if ca else "the bundled root (weaker: compare its fingerprint)"
    ok = proc.returncode == 0 and "Verification: OK" in proc.stdout
    # A PASS shows openssl's verdict only; anything else it said (warnings such as "is not a CA
    # cert") is printed as a note of its own, never inside the PASS.
    said = [line for line in output.splitlines() if line.strip()
            and line != "Verification: OK" and not line.startswith("Using configuration from")]
    report.check(ok, f"{name}: openssl ts -verify: token imprint equals the Merkle root, "
                 f"signature and certificate chain valid, trusting {trust}",
                 "Verification: OK" if ok else output.replace("\n", "\n       "))
    if ok and said:
        leaf = " (expected: the TSA's own certificate is a leaf, handed to openssl with the " \
               "chain)" if any("is not a CA cert" in line for line in said) else ""
        report.note("NOTE", f"{name}: openssl also said: " + " / ".join(said) + leaf)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, help="the image file to compare with the manifest")
    parser.add_argument("--ca", type=Path, help="PEM file of roots you trust (stronger check)")
    parser.add_argument("--bundle", type=Path, default=Path(__file__).resolve().parent,
                        help="the extracted bundle directory (default: this script's directory),"
                        " or the bundle ZIP itself (also checks its member names)")
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
        names = sorted(p.stem for p in (bundle / "tokens").glob("*.tsr"))
        if report.check(bool(names), "the bundle holds at least one timestamp token") and root:
            for name in names:
                check_token(report, bundle, name, root, args.ca)
    print(report.result())
    return EXIT_VALID if report.failed == 0 else EXIT_INVALID


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


def _fingerprint(pem: bytes) -> str:
    body = b"".join(pem.splitlines()[1:-1])
    digest = hashlib.sha256(base64.b64decode(body)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


if __name__ == "__main__":
    sys.exit(main())
