"""Check a token's RFC 4998 evidence record: archive timestamps that outlive its certificate.

Evidence lapses when the certificate chain of its newest timestamp expires. Without an
evidence record that is the original token's chain; with one, each archive timestamp must
(1) cover the one before (its reduced hash tree leads from SHA-256 of the original token, or of
the previous archive timestamp's timeStamp, to its imprint), (2) verify at its own genTime, and
(3) have been made before the previous timestamp's chain expired. The verdict holds at `now`
only if the last chain is still valid then.

The first archive timestamp's first list is the token's data object group (RFC 4998 4.2): the
SHA-256 of tokens/<tsa>.tsr, of each certificate of certs/<tsa>.pem (DER) and of each
revocation/<tsa>/* member stored by the time of the renewal. The bundle must hold every one of
them, unchanged: a hash no member matches is a member changed or removed, and fails. A
revocation member whose hash is not in the list was fetched after the renewal (the sweeper fills
gaps later): it is still checked as revocation data, but reported as not covered by the record.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from service.errors import MalformedInputError
from service.timestamping import ers
from service.timestamping.verdict import Verdict
from service.timestamping.verify import verify_timestamp

MAX_RENDERING_BYTES = 256 * 1024  # the readable record: chains and hashes of a few renewals
REVOCATION_PREFIX = "revocation/"


@dataclass(frozen=True)
class Coverage:
    """How the first archive timestamp's first list fits the bundle's members."""

    covered: tuple[str, ...]  # members (certificates as "certs/<tsa>.pem#N") it holds hashes of
    uncovered: tuple[str, ...]  # revocation members it does not: fetched after the renewal
    missing: tuple[str, ...]  # the token or chain certificates it does not cover
    unmatched: int  # hashes in it that no member has: a member changed or removed

    @property
    def problem(self) -> str | None:
        """Why the list does not fit the bundle, None if it does."""
        if self.missing:
            return "archive timestamp 1 does not cover " + ", ".join(self.missing)
        if self.unmatched:
            return (f"archive timestamp 1 covers {self.unmatched} data object(s) the bundle no "
                    "longer holds: a certificate or revocation member was changed or removed")
        return None


def data_objects(name: str, token: bytes, chain: Sequence[bytes],
                 revocation: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """The named data objects of tokens/<name>.tsr: the token, each chain certificate (DER)
    and each revocation member (path, bytes): what a first archive timestamp covers."""
    return [(f"tokens/{name}.tsr", token),
            *((f"certs/{name}.pem#{i}", der) for i, der in enumerate(chain, 1)),
            *revocation]


def bundle_data_objects(name: str, files: Mapping[str, bytes]) -> list[tuple[str, bytes]]:
    """data_objects read from a bundle's members (an unreadable chain counts as none)."""
    try:
        chain = x509.load_pem_x509_certificates(files.get(f"certs/{name}.pem", b""))
    except ValueError:
        chain = []
    prefix = f"{REVOCATION_PREFIX}{name}/"
    return data_objects(name, files.get(f"tokens/{name}.tsr", b""),
                        [c.public_bytes(Encoding.DER) for c in chain],
                        sorted((p, d) for p, d in files.items() if p.startswith(prefix)))


def coverage(objects: Sequence[tuple[str, bytes]], first_list: Sequence[bytes]) -> Coverage:
    """Match the data objects against the hashes of a first archive timestamp's first list."""
    held = set(first_list)
    hashes = [(path, ers.sha256(data)) for path, data in objects]
    covered = tuple(p for p, h in hashes if h in held)
    uncovered = tuple(p for p, h in hashes if h not in held and p.startswith(REVOCATION_PREFIX))
    missing = tuple(p for p, h in hashes if h not in held and not p.startswith(REVOCATION_PREFIX))
    return Coverage(covered, uncovered, missing, len(held - {h for _, h in hashes}))


def chain_expiry(chain: Sequence[x509.Certificate]) -> datetime | None:
    """The first expiry in the chain, None for no chain."""
    return min((c.not_valid_after_utc for c in chain), default=None)


def check_renewals(name: str, files: dict[str, bytes], original: Verdict,
                   roots: Sequence[x509.Certificate] | None, partial_chain: bool,
                   now: datetime) -> tuple[bool, str]:
    """(ok, detail) for the evidence of tokens/<name>.tsr as of `now`."""
    expires = chain_expiry(original.facts.chain)
    if expires is None:
        return False, "no validated chain for the token, so no expiry to judge"
    record = files.get(f"evidence-records/{name}.ers")
    if record is None:
        if now < expires:
            return True, f"no archive timestamp; the TSA chain is valid until {_iso(expires)}"
        return False, (f"the TSA certificate chain expired at {_iso(expires)} and no archive "
                       "timestamp (RFC 4998) renews the token")
    try:
        chain = ers.decode_record(record)
        renewals = _renewals(files.get(f"evidence-records/{name}.json", b""), len(chain))
    except MalformedInputError as exc:
        return False, f"evidence-records/{name}: {exc}"
    fit = coverage(bundle_data_objects(name, files), chain[0].lists[0] if chain[0].lists else ())
    if fit.problem is not None:
        return False, fit.problem
    covered = ers.sha256(files[f"tokens/{name}.tsr"])
    for number, (ats, certs) in enumerate(zip(chain, renewals, strict=True), 1):
        root = ers.reduce(covered, ats.lists)
        what = f"archive timestamp {number}"
        if root is None:
            return False, f"{what} does not cover the " + (
                "token" if number == 1 else f"archive timestamp {number - 1}")
        anchors = list(roots) if roots is not None else certs[-1:]
        if not anchors:
            return False, f"{what}: no certificate to trust"
        verdict = verify_timestamp(ats.token, digest=root, roots=anchors, untrusted=certs,
                                   partial_chain=partial_chain, now=now)
        if not verdict.valid or verdict.facts.gen_time is None:
            return False, f"{what}: " + "; ".join(verdict.reasons)
        if verdict.facts.gen_time >= expires:
            return False, (f"{what} was made at {_iso(verdict.facts.gen_time)}, after the "
                           f"chain it renews expired ({_iso(expires)})")
        expires = chain_expiry(verdict.facts.chain) or verdict.facts.gen_time
        covered = ers.sha256(ats.token)
    if now >= expires:
        return False, (f"the last of {len(chain)} archive timestamp(s) lapsed at "
                       f"{_iso(expires)}: renew again")
    revoked = sum(p.startswith(REVOCATION_PREFIX) for p in fit.covered)
    late = (f"; not covered (fetched after the first renewal): {', '.join(fit.uncovered)}"
            if fit.uncovered else "")
    return True, (f"{len(chain)} archive timestamp(s) (RFC 4998) chain the token, its chain "
                  f"and {revoked} revocation member(s) forward; the last one's chain is valid "
                  f"until {_iso(expires)}{late}")


def render_record(name: str, chain: Sequence[ers.ArchiveTimeStamp],
                  renewals: Sequence[dict[str, Any]], gen_times: Sequence[datetime],
                  fit: Coverage) -> bytes:
    """evidence-records/<name>.json: the record readable, with each renewal TSA's chain and,
    for the first archive timestamp, the bundle members its first list covers (`fit`)."""
    items = []
    for number, (ats, renewal, gen_time) in enumerate(zip(chain, renewals, gen_times,
                                                          strict=True), 1):
        first = {"covers": f"tokens/{name}.tsr with its chain and revocation data",
                 "data_objects": list(fit.covered),
                 "not_covered": list(fit.uncovered)}
        items.append({
            "number": number, "tsa": renewal.get("tsa"), "gen_time": _iso(gen_time),
            **(first if number == 1
               else {"covers": f"the timeStamp of archive timestamp {number - 1}"}),
            "reduced_hash_tree": [[h.hex() for h in hashes] for hashes in ats.lists],
            "chain_pem": renewal.get("chain_pem"),
        })
    doc = {"format": f"RFC 4998 EvidenceRecord (DER) in evidence-records/{name}.ers; hash "
                     "lists are SHA-256, sorted and concatenated per level; data_objects are "
                     "the members whose SHA-256 the first list holds (certs/<tsa>.pem#N: the "
                     "Nth certificate, DER)",
           "archive_timestamps": items}
    return (json.dumps(doc, indent=2) + "\n").encode()


def _renewals(data: bytes, count: int) -> list[list[x509.Certificate]]:
    """Each archive timestamp's certificate chain, from the readable rendering."""
    if len(data) > MAX_RENDERING_BYTES:
        raise MalformedInputError("the readable evidence record is too large")
    try:
        items = json.loads(data)["archive_timestamps"]
        pems = [item.get("chain_pem") or "" for item in items]
        chains = [x509.load_pem_x509_certificates(p.encode()) if p else [] for p in pems]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MalformedInputError("the readable evidence record is unreadable") from exc
    if len(chains) != count:
        raise MalformedInputError("the readable record does not list every archive timestamp")
    return chains


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
