"""Check a token's RFC 4998 evidence record: archive timestamps that outlive its certificate.

Evidence lapses when the certificate chain of its newest timestamp expires. Without an
evidence record that is the original token's chain; with one, each archive timestamp must
(1) cover the one before (its reduced hash tree leads from SHA-256 of the original token, or of
the previous archive timestamp's timeStamp, to its imprint), (2) verify at its own genTime, and
(3) have been made before the previous timestamp's chain expired. The verdict holds at `now`
only if the last chain is still valid then.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cryptography import x509

from service.errors import MalformedInputError
from service.timestamping import ers
from service.timestamping.verdict import Verdict
from service.timestamping.verify import verify_timestamp

MAX_RENDERING_BYTES = 256 * 1024  # the readable record: chains and hashes of a few renewals


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
    return True, (f"{len(chain)} archive timestamp(s) (RFC 4998) chain the token forward; the "
                  f"last one's chain is valid until {_iso(expires)}")


def render_record(name: str, chain: Sequence[ers.ArchiveTimeStamp],
                  renewals: Sequence[dict[str, Any]], gen_times: Sequence[datetime]) -> bytes:
    """evidence-records/<name>.json: the record readable, with each renewal TSA's chain."""
    items = []
    for number, (ats, renewal, gen_time) in enumerate(zip(chain, renewals, gen_times,
                                                          strict=True), 1):
        items.append({
            "number": number, "tsa": renewal.get("tsa"), "gen_time": _iso(gen_time),
            "covers": f"tokens/{name}.tsr with its chain" if number == 1
            else f"the timeStamp of archive timestamp {number - 1}",
            "reduced_hash_tree": [[h.hex() for h in hashes] for hashes in ats.lists],
            "chain_pem": renewal.get("chain_pem"),
        })
    doc = {"format": f"RFC 4998 EvidenceRecord (DER) in evidence-records/{name}.ers; hash "
                     "lists are SHA-256, sorted and concatenated per level",
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
