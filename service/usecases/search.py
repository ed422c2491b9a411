"""Search: earlier registrations of images that look like a given one (perceptual hashes).

Scope: a key's own receipts and receipts marked public; anonymously, public receipts only.
Matches are oldest first: the first one is the earliest registration held of that picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from service.evidence.perceptual import query_hashes
from service.evidence.similarity import MAX_PHASH_DISTANCE, Closeness, closest_matches
from service.storage.perceptual import MatchedReceipt, find_candidates, matched_receipts
from service.usecases.metrics import timed_search
from service.wiring import Services

MAX_MATCHES = 50  # a picture registered more often than this is not a dispute about one original
__all__ = ["MAX_MATCHES", "Match", "MatchedReceipt", "search"]


@dataclass(frozen=True)
class Match:
    """A registration that looks like the query, how close, and whether the caller owns it."""

    receipt: MatchedReceipt
    closeness: Closeness
    own: bool


def search(services: Services, image: BinaryIO, caller: str | None) -> list[Match]:
    """Hash `image` (and its mirror image) and return the registrations it matches."""
    with timed_search():
        return _search(services, image, caller)


def _search(services: Services, image: BinaryIO, caller: str | None) -> list[Match]:
    query = query_hashes(image)
    if not query:
        return []
    with services.engine.connect() as conn:
        found = find_candidates(conn, [h.phash for h in query], MAX_PHASH_DISTANCE)
        near = closest_matches(query, ((v.receipt_id, v.phash, v.dhash256) for v in found.views))
        visible = matched_receipts(conn, list(near), caller)
    return [Match(r, near[r.id], caller is not None and r.api_key_id == caller)
            for r in visible[:MAX_MATCHES]]
