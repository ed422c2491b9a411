"""Read receipts: one, a page of them, their tokens, their inclusion proof and evidence bundle.

A key sees only its own receipts: another key's id is not found, exactly like an unknown id,
so ids cannot be probed. Public receipts can be read by anyone, in a reduced form (verify).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from service.errors import InvalidInputError, NotFoundError, NotReadyError
from service.evidence.bundle import MAX_HISTORY, Exhibit, HistoryEntry, build_bundle
from service.i18n import DEFAULT_LANGUAGE
from service.storage.evidence import records_of
from service.storage.receipts import (
    Receipt,
    first_stamped_of_image,
    get_receipt,
    list_receipts,
    receipt_states,
    receipts_by_ids,
    session_receipts,
)
from service.storage.tables import RECEIPT_STATUSES
from service.storage.tokens import Token, list_revocations, list_tokens
from service.timestamping.merkle import proof_to_json
from service.timestamping.revocation import RevocationEntry
from service.timestamping.tsa_config import tsa_chain_pem
from service.usecases.authorities import authorities
from service.usecases.picture_source import picture_of
from service.wiring import Services

MAX_PAGE_SIZE = 100  # each item is small, but a page is built in memory: keep it bounded
NO_RECEIPT = "No receipt with this id"
__all__ = ["MAX_PAGE_SIZE", "RECEIPT_STATUSES", "Page", "Receipt", "Token", "ancestors",
           "list_own", "own_receipt", "proof_json", "readable_receipt", "receipt_bundle",
           "receipt_bundles", "receipt_certificate", "revocation_of", "session_page",
           "tokens_of", "wait_settled"]


@dataclass(frozen=True)
class Page:
    """One page of receipts, newest first, and the id to continue after (None: last page)."""

    items: list[Receipt]
    last_id: str | None


def own_receipt(services: Services, receipt_id: str, owner: str) -> Receipt:
    """The receipt if key `owner` owns it; NotFoundError otherwise."""
    with services.engine.connect() as conn:
        receipt = get_receipt(conn, receipt_id, owner)
    if receipt is None:
        raise NotFoundError(NO_RECEIPT)
    return receipt


def readable_receipt(services: Services, receipt_id: str, caller: str | None
                     ) -> tuple[Receipt, bool]:
    """(receipt, full view?) for `caller` (a key id, or None when anonymous).

    The owner gets the full view; anyone else only a public receipt, reduced; a private
    receipt of another key is not found, exactly like an unknown id.
    """
    with services.engine.connect() as conn:
        receipt = get_receipt(conn, receipt_id, None)
    if receipt is None:
        raise NotFoundError(NO_RECEIPT)
    if caller is not None and receipt.api_key_id == caller:
        return receipt, True
    if not receipt.public:
        raise NotFoundError(NO_RECEIPT)
    return receipt, False


def list_own(services: Services, owner: str, *, status: str | None, external_id: str | None,
             limit: int, after: str | None) -> Page:
    """The key's receipts, newest first, `limit` (1..MAX_PAGE_SIZE) after receipt `after`."""
    if status is not None and status not in RECEIPT_STATUSES:
        raise InvalidInputError(f"status must be one of {', '.join(RECEIPT_STATUSES)}")
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInputError(f"limit must be an integer in 1..{MAX_PAGE_SIZE}")
    with services.engine.connect() as conn:
        rows, last_id = list_receipts(conn, owner, status=status, external_id=external_id,
                                      limit=limit, cursor=after)
    return Page(rows, last_id)


def tokens_of(services: Services, receipt: Receipt) -> list[Token]:
    """The receipt's tokens (empty until it is stamped)."""
    if receipt.status != "stamped" or receipt.batch_id is None:
        return []
    with services.engine.connect() as conn:
        return list_tokens(conn, receipt.batch_id)


def proof_json(receipt: Receipt) -> dict[str, Any] | None:
    """The inclusion proof in proof.json form, once the receipt is in a stamped batch."""
    if (
        receipt.status != "stamped" or receipt.proof is None or receipt.root is None
        or receipt.leaf_index is None or receipt.tree_size is None
    ):
        return None
    return proof_to_json(
        bytes.fromhex(receipt.manifest_digest),
        receipt.leaf_index,
        receipt.tree_size,
        [bytes.fromhex(node) for node in receipt.proof],
        bytes.fromhex(receipt.root),
    )


def session_page(services: Services, owner: str, session: str, *, limit: int,
                 after: str | None) -> Page:
    """The key's receipts in `session`, oldest first, `limit` (1..MAX_PAGE_SIZE) after `after`."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInputError(f"limit must be an integer in 1..{MAX_PAGE_SIZE}")
    with services.engine.connect() as conn:
        rows, last_id = session_receipts(conn, owner, session, limit=limit, cursor=after)
    return Page(rows, last_id)


def ancestors(services: Services, receipt: Receipt) -> list[Receipt]:
    """The receipt's earlier iterations, nearest first: its manifest's parents, theirs, and so
    on, each once, at most MAX_HISTORY. A parent named by receipt is that receipt; by image
    digest, the key's first stamped receipt of that image (none: not part of the history)."""
    found: dict[str, Receipt] = {}
    queue = [receipt]
    with services.engine.connect() as conn:
        while queue and len(found) < MAX_HISTORY:
            current = queue.pop(0)
            for parent in json.loads(current.manifest_jcs).get("parents", []):
                if "receipt" in parent:
                    earlier = get_receipt(conn, parent["receipt"], receipt.api_key_id)
                else:
                    earlier = first_stamped_of_image(conn, receipt.api_key_id,
                                                     parent["image_sha256"])
                if earlier is None or earlier.id in found or earlier.id == receipt.id:
                    continue
                if len(found) == MAX_HISTORY:
                    break
                found[earlier.id] = earlier
                queue.append(earlier)
    return list(found.values())


def _history_entry(services: Services, receipt: Receipt) -> HistoryEntry:
    tokens, proof = _stamped_evidence(services, receipt)
    return HistoryEntry(
        receipt_id=receipt.id, manifest_jcs=receipt.manifest_jcs, proof=proof,
        tokens={t.tsa: t.reply_der for t in tokens},
        chains={t.tsa: t.chain_pem or tsa_chain_pem(services.settings, t.tsa) for t in tokens},
        batch_head=receipt.head_jcs, image_name=receipt.image_name)


def _stamped_evidence(services: Services, receipt: Receipt) -> tuple[list[Token], dict[str, Any]]:
    tokens = tokens_of(services, receipt)
    proof = proof_json(receipt)
    if receipt.status != "stamped" or proof is None or not tokens:
        raise NotReadyError(f"The receipt {receipt.id} is {receipt.status}", receipt.status)
    return tokens, proof


def receipt_bundle(services: Services, receipt: Receipt, language: str = DEFAULT_LANGUAGE, *,
                   history: bool = False, exhibit: bool = True) -> bytes:
    """The receipt's evidence bundle (ZIP bytes), its exhibit in `language`; NotReadyError
    until it is stamped.

    With `history`, each earlier iteration (`ancestors`) too, which must be stamped as well;
    a private record's disclosure.json when its creator had the server keep it.
    `exhibit=False` leaves the certificate out (the service's own checks read none)."""
    inputs = _bundle_inputs(services, receipt, language, image=exhibit)
    if history:
        inputs["history"] = [_history_entry(services, r) for r in ancestors(services, receipt)]
    return build_bundle(**inputs, certificates=exhibit)


def receipt_certificate(services: Services, receipt: Receipt, language: str, *, pdf: bool
                        ) -> bytes:
    """The bundle's certificate.pdf (pdf=True) or certificate.html alone, in `language`;
    NotReadyError until the receipt is stamped. The same evidence checks as the bundle run."""
    return build_bundle(**_bundle_inputs(services, receipt, language),
                        only="certificate.pdf" if pdf else "certificate.html")


@dataclass(frozen=True)
class _BatchEvidence:
    """What every receipt of one Merkle batch shares: read once for many bundles."""

    tokens: list[Token]
    records: dict[str, Any]
    revocation: dict[int, list[RevocationEntry]]


def _batch_evidence(services: Services, receipt: Receipt) -> _BatchEvidence:
    tokens, _proof = _stamped_evidence(services, receipt)
    assert receipt.batch_id is not None  # stamped
    with services.engine.connect() as conn:
        records = records_of(conn, receipt.batch_id)
    return _BatchEvidence(tokens, records, revocation_of(services, tokens))


def _bundle_inputs(services: Services, receipt: Receipt, language: str, *, image: bool = True,
                   shared: _BatchEvidence | None = None) -> dict[str, Any]:
    """build_bundle's arguments for a stamped receipt (no history), exhibit included;
    `shared`: its batch's evidence when read already (many bundles of one batch)."""
    proof = proof_json(receipt)
    if receipt.status != "stamped" or proof is None:
        raise NotReadyError(f"The receipt {receipt.id} is {receipt.status}", receipt.status)
    batch = shared or _batch_evidence(services, receipt)
    settings = services.settings
    kept = picture_of(services, receipt) if image else None
    tokens = batch.tokens
    return {
        "manifest_jcs": receipt.manifest_jcs,
        "proof": proof,
        "tokens": {t.tsa: t.reply_der for t in tokens},
        "chains": {t.tsa: t.chain_pem or tsa_chain_pem(settings, t.tsa) for t in tokens},
        "receipt_id": receipt.id,
        "image_name": receipt.image_name,
        "batch_head": receipt.head_jcs,
        "evidence_records": {tsa: (r.record_der, r.renewals) for tsa, r in batch.records.items()},
        "revocation": {t.tsa: batch.revocation[t.id] for t in tokens},
        "disclosure": receipt.disclosure_json,
        "exhibit": Exhibit(
            image=kept, authorities=authorities(settings),
            verify_url=f"{settings.effective_public_url}/r/{receipt.id}",
            language=language),
    }


MAX_BUNDLES = 100  # per POST /v1/stamps/bundles: ~3 MB of answer, a few hundred ms of a thread


def receipt_bundles(services: Services, owner: str, ids: Sequence[str],
                    language: str = DEFAULT_LANGUAGE, *, exhibit: bool = True
                    ) -> tuple[dict[str, bytes], list[str]]:
    """The bundles of the key's stamped receipts among `ids` (by id), each as
    `receipt_bundle` makes it (`exhibit` as there), and the ids that have none (not stamped,
    or no such receipt for this key). The data receipts of one Merkle batch share (tokens,
    evidence records, revocation data) is read once per batch."""
    if not 1 <= len(ids) <= MAX_BUNDLES:
        raise InvalidInputError(f"ids must list 1..{MAX_BUNDLES} receipt ids")
    with services.engine.connect() as conn:
        found = [r for r in receipts_by_ids(conn, owner, list(dict.fromkeys(ids)))
                 if r.status == "stamped" and r.batch_id is not None]
    by_batch: dict[str, list[Receipt]] = {}
    for receipt in found:
        by_batch.setdefault(str(receipt.batch_id), []).append(receipt)
    bundles: dict[str, bytes] = {}
    for members in by_batch.values():
        try:
            shared = _batch_evidence(services, members[0])
        except NotReadyError:
            continue
        for receipt in members:
            bundles[receipt.id] = build_bundle(
                **_bundle_inputs(services, receipt, language, image=exhibit, shared=shared),
                certificates=exhibit)
    return bundles, [i for i in dict.fromkeys(ids) if i not in bundles]


def revocation_of(services: Services, tokens: list[Token]) -> dict[int, list[RevocationEntry]]:
    """The revocation data stored with each token (by token id; empty for older tokens).
    `timestamping.revocation.ordered_blobs` turns one token's entries into bytes."""
    with services.engine.connect() as conn:
        rows = list_revocations(conn, [t.id for t in tokens])
    return {token_id: [RevocationEntry(*row) for row in found] for token_id, found in rows.items()}


# Long poll on many receipts (POST /v1/stamps/wait): one client waits for a whole run at once.
MAX_WAIT_IDS = 1000  # as many as one batch registers
MAX_WAIT_S = 20.0  # a request holds an API thread this long at most; below graceful_timeout
WAIT_POLL_S = 0.1  # how often a waiting request asks the database: one indexed lookup


@dataclass(frozen=True)
class Settled:
    """The receipts among those asked that are no longer pending, and the others by state."""

    items: list[Receipt]
    pending: list[str]
    unknown: list[str]  # not this key's, or no such receipt (told apart by nobody)


def wait_settled(services: Services, owner: str, ids: Sequence[str], wait_s: float, *,
                 sleep: Callable[[float], None] = time.sleep) -> Settled:
    """Return as soon as one of `ids` is stamped or failed (all of those), or none is pending
    (only unknown ids), or after `wait_s` (0..MAX_WAIT_S) with none; InvalidInputError for
    more than MAX_WAIT_IDS ids."""
    if not 0 <= wait_s <= MAX_WAIT_S:
        raise InvalidInputError(f"wait_s must be a number of seconds in 0..{MAX_WAIT_S:g}")
    if not 1 <= len(ids) <= MAX_WAIT_IDS:
        raise InvalidInputError(f"ids must list 1..{MAX_WAIT_IDS} receipt ids")
    wanted = list(dict.fromkeys(ids))
    deadline = time.monotonic() + wait_s
    while True:
        with services.engine.connect() as conn:
            states = receipt_states(conn, owner, wanted)
            done = [i for i in wanted if states.get(i, "pending") != "pending"]
            items = receipts_by_ids(conn, owner, done) if done else []
        pending = [i for i in wanted if states.get(i) == "pending"]
        left = deadline - time.monotonic()
        if items or not pending or left <= 0:  # unknown ids are never waited for
            return Settled(items, pending, [i for i in wanted if i not in states])
        sleep(min(WAIT_POLL_S, left))
