"""Search: earlier registrations of images that look like a given one (perceptual hashes).

Scope: a key's own receipts and receipts marked public; anonymously, public receipts only.
Matches are closest first and capped, so the original (or an exact copy) is never crowded out
by a series of similar pictures; ties go to the older registration. The priority claim is
answered separately: the earliest registration among the matches that are the same picture
(similarity.same_picture), whatever its rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import Connection, Table

from service.evidence.perceptual import PerceptualHash, is_cell, query_hashes
from service.evidence.similarity import (
    MAX_PHASH_DISTANCE,
    Closeness,
    closest_matches,
    same_picture,
)
from service.storage.perceptual import MatchedReceipt, find_candidates, matched_receipts
from service.storage.tables import perceptual_cells, perceptual_hashes
from service.usecases.metrics import timed_search
from service.wiring import Services

MAX_MATCHES = 50  # a picture registered more often than this is not a dispute about one original
__all__ = ["MAX_MATCHES", "Match", "MatchedReceipt", "SearchResult", "search"]


@dataclass(frozen=True)
class Match:
    """A registration that looks like the query, how close, and whether the caller owns it."""

    receipt: MatchedReceipt
    closeness: Closeness
    own: bool


@dataclass(frozen=True)
class SearchResult:
    """The closest matches (at most MAX_MATCHES), the earliest registration of the same
    picture among all matches, and how many matched in all."""

    matches: list[Match]
    earliest: Match | None
    total: int


def _matches(conn: Connection, query: list[PerceptualHash], table: Table
             ) -> dict[str, Closeness]:
    """The receipts matching `query` among the views of `table` its hashes find (the whole
    views' in perceptual_hashes, the cells' in perceptual_cells)."""
    cells = table is perceptual_cells
    looked_up = [h.phash for h in query if is_cell(h.view) == cells]
    if not looked_up:
        return {}
    found = find_candidates(conn, looked_up, MAX_PHASH_DISTANCE, table)
    return closest_matches(query, ((v.receipt_id, v.view, v.phash, v.dhash256)
                                   for v in found.views))


def search(services: Services, image: BinaryIO, caller: str | None) -> SearchResult:
    """Hash `image` (and its mirror image) and return the registrations it matches."""
    with timed_search():
        return _search(services, image, caller)


def _search(services: Services, image: BinaryIO, caller: str | None) -> SearchResult:
    query = query_hashes(image)
    if not query:
        return SearchResult([], None, 0)
    with services.engine.connect() as conn:
        near = _matches(conn, query, perceptual_hashes)
        if not near:
            # Nothing matched the whole picture: its cells then (a badge or logo inside the
            # picture). Only then, so a query that matches costs what it did before.
            near = _matches(conn, query, perceptual_cells)
        visible = matched_receipts(conn, list(near), caller)  # oldest first
    oldest_first = [Match(r, near[r.id], caller is not None and r.api_key_id == caller)
                    for r in visible]
    if not oldest_first:
        return SearchResult([], None, 0)
    ranked = sorted(oldest_first, key=lambda m: m.closeness.distance)  # stable: older first
    best = ranked[0].closeness
    earliest = next(m for m in oldest_first if same_picture(best, m.closeness))
    return SearchResult(ranked[:MAX_MATCHES], earliest, len(ranked))
