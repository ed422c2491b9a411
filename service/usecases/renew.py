"""Renew evidence before it lapses: RFC 4998 archive timestamps over many tokens at once.

A token is due when its TSA certificate chain (or, once renewed, its last archive timestamp's
chain) expires within `renew_within_days`, or when it or its certificates use a hash on
`renew_weak_algorithms`. One run puts up to MAX_RENEWED_PER_RUN due tokens, of any number of
batches, into one RFC 4998 hash tree (timestamping.ers), asks the renewal TSA for one token
over its root (verified before it is kept, as stamping does), and appends an archive timestamp
to every covered token's evidence record. A first archive timestamp covers the token, its
chain and the revocation data stored with it by then; data the sweeper fills in later
(stamping.revocation.fill_missing) is not covered, and verifiers say so. The sweeper runs it
once per `renew_interval_s`; `chronoseal renew` runs it now. Running it twice renews nothing
twice: a fresh archive timestamp is not due.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from service.errors import ConfigError
from service.storage.engine import write_transaction
from service.storage.evidence import (
    RenewalCandidate,
    StoredRecord,
    renewal_candidates,
    store_records,
)
from service.storage.tables import utcnow
from service.storage.tokens import list_revocations
from service.timestamping import ers
from service.timestamping.revocation import RevocationEntry, ordered_blobs
from service.timestamping.tsa_config import TSAConfig, tsa_chain_pem
from service.timestamping.verify import imprint_algorithm
from service.usecases.stamp import load_enabled_tsas
from service.usecases.stamping.requester import TokenRequester
from service.wiring import Services

log = logging.getLogger(__name__)

MAX_RENEWED_PER_RUN = 10_000  # leaves of one tree: a 14-level path, one TSA request
SCAN_PAGE = 1000  # tokens read per query while looking for due ones
REVOCATION_PAGE = 100  # tokens whose revocation data is in memory at once: CRLs reach 1 MiB


@dataclass(frozen=True)
class RenewReport:
    """What a run did: tokens covered by the new archive timestamp, and from which TSA."""

    renewed: int
    tsa: str | None
    gen_time: datetime | None

    def __str__(self) -> str:
        if not self.renewed:
            return "renewed 0 tokens (none due)"
        return f"renewed {self.renewed} token(s) with an archive timestamp from {self.tsa}"


def chain_expiry(chain: Sequence[x509.Certificate]) -> datetime:
    """When evidence resting on this chain stops verifying: its first certificate to expire."""
    return min(c.not_valid_after_utc for c in chain)


def uses_weak_hash(reply: bytes, chain: Sequence[x509.Certificate],
                   weak: Sequence[str]) -> bool:
    """True when the token's imprint or a certificate signature uses a hash on the weak list."""
    names = {w.lower().replace("-", "") for w in weak}
    used = {imprint_algorithm(reply) or ""}
    used |= {c.signature_hash_algorithm.name.replace("-", "") for c in chain
             if c.signature_hash_algorithm is not None}
    return bool(names & used)


def renew(services: Services, *, now: datetime | None = None) -> RenewReport:
    """One renewal run (see the module docstring); TSAError if the renewal TSA fails."""
    settings = services.settings
    now = now or utcnow()
    horizon = now + timedelta(days=settings.renew_within_days)
    due = _due(services, horizon)
    if not due:
        return RenewReport(0, None, None)
    tsa = _renewal_tsa(services)
    leaves: list[list[bytes]] = []
    for start in range(0, len(due), REVOCATION_PAGE):  # only hashes are kept past a page
        page = due[start:start + REVOCATION_PAGE]
        revocation = _revocation_blobs(services, [c for c, _ in page if c.record is None])
        leaves += [_leaf(c, chain, revocation.get(c.token_id, [])) for c, chain in page]
    tree = ers.build_tree(leaves)
    token = TokenRequester([tsa])(tsa, tree.root)  # verified: imprint, signature, chain
    chain = x509.load_pem_x509_certificates(token.chain_pem.encode()) if token.chain_pem else []
    if not chain:
        raise ConfigError(f"the renewal TSA {tsa.name} gave no certificate chain")
    ats_token = ers.token_of(token.reply_der)
    renewal = {"tsa": tsa.name, "chain_pem": token.chain_pem}
    records = []
    for i, (candidate, _) in enumerate(due):
        earlier = ers.decode_record(candidate.record.record_der) if candidate.record else []
        ats = ers.ArchiveTimeStamp(tree.reduced(i), ats_token)
        records.append(StoredRecord(
            candidate.batch_id, candidate.tsa, ers.encode_record([*earlier, ats]),
            [*(candidate.record.renewals if candidate.record else []), renewal],
            chain_expiry(chain)))
    with write_transaction(services.engine) as conn:
        store_records(conn, records, now)
    log.info("renewed %d token(s) with an archive timestamp from %s", len(records), tsa.name,
             extra={"renewed": len(records), "tsa": tsa.name})
    return RenewReport(len(records), tsa.name, token.gen_time)


def _due(services: Services, horizon: datetime
         ) -> list[tuple[RenewalCandidate, list[x509.Certificate]]]:
    """Due tokens with the chain each one's first archive timestamp must cover."""
    settings = services.settings
    due: list[tuple[RenewalCandidate, list[x509.Certificate]]] = []
    after: tuple[str, str] | None = None
    while len(due) < MAX_RENEWED_PER_RUN:
        with services.engine.connect() as conn:
            page = renewal_candidates(conn, record_expiring_before=horizon, after=after,
                                      limit=SCAN_PAGE)
        if not page:
            break
        for candidate in page:
            chain = _chain(services, candidate)
            if candidate.record is not None:
                due.append((candidate, chain))  # the query found its last ATS expiring
            elif chain and (chain_expiry(chain) < horizon or uses_weak_hash(
                    candidate.reply_der, chain, settings.renew_weak_algorithms)):
                due.append((candidate, chain))
        after = (page[-1].batch_id, page[-1].tsa)
    return due[:MAX_RENEWED_PER_RUN]


def _chain(services: Services, candidate: RenewalCandidate) -> list[x509.Certificate]:
    pem = candidate.chain_pem
    if pem is None:
        try:
            pem = tsa_chain_pem(services.settings, candidate.tsa)
        except ConfigError:
            return []
    try:
        return x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        return []


def _revocation_blobs(services: Services, first: Sequence[RenewalCandidate]
                      ) -> dict[int, list[bytes]]:
    """The revocation data stored with each token (by token id) that gets its first ATS."""
    with services.engine.connect() as conn:
        rows = list_revocations(conn, [c.token_id for c in first])
    return {token_id: ordered_blobs([RevocationEntry(*row) for row in found])
            for token_id, found in rows.items()}


def _leaf(candidate: RenewalCandidate, chain: Sequence[x509.Certificate],
          revocation: Sequence[bytes]) -> list[bytes]:
    """The first list: the original token with its chain and revocation data (first ATS),
    else the last ATS. These are the bytes of the bundle's tokens/<tsa>.tsr, each certificate
    of certs/<tsa>.pem (DER) and each revocation/<tsa>/* member."""
    if candidate.record is None:
        return ers.data_object_hashes(candidate.reply_der,
                                      [c.public_bytes(Encoding.DER) for c in chain], revocation)
    last = ers.decode_record(candidate.record.record_der)[-1]
    return [ers.sha256(last.token)]


def _renewal_tsa(services: Services) -> TSAConfig:
    tsas = load_enabled_tsas(services.settings)
    name = services.settings.renew_tsa
    chosen = [t for t in tsas if name is None or t.name == name]
    if not chosen:
        raise ConfigError(f"renew_tsa {name!r} is not an enabled TSA" if name
                          else "no TSA is enabled to renew evidence with")
    return chosen[0]
