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

from sqlalchemy import Connection

from service.evidence.perceptual import (
    CELL_LOOKUP_ORDER,
    CELL_VIEWS,
    PerceptualHash,
    is_cell,
    query_hashes,
)
from service.evidence.similarity import (
    CELLS_NEEDED,
    MAX_PHASH_DISTANCE,
    Closeness,
    closest_matches,
    same_picture,
)
from service.storage.perceptual import (
    MatchedReceipt,
    find_candidates,
    matched_receipts,
    views_of,
)
from service.storage.tables import perceptual_cells
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


def _whole_matches(conn: Connection, query: list[PerceptualHash]) -> dict[str, Closeness]:
    """The receipts whose whole views (perceptual_hashes) match the query's whole views."""
    found = find_candidates(conn, [h.phash for h in query if not is_cell(h.view)],
                            MAX_PHASH_DISTANCE)
    return closest_matches(query, ((v.receipt_id, v.view, v.phash, v.dhash256)
                                   for v in found.views))


def _cell_matches(conn: Connection, query: list[PerceptualHash]) -> dict[str, Closeness]:
    """The receipts whose cells (perceptual_cells) match enough of the query's.

    A match needs at least CELLS_NEEDED of the query's k cells, so at most k - CELLS_NEEDED
    differ: any k - CELLS_NEEDED + 1 of them include one that matches (corners first: a badge
    covers one or two cells), and looking up only those finds every candidate at less than half
    the cost of all nine. Each candidate's cells are then read whole (the rule counts the cells
    that differ as well), and closeness decides."""
    cells = sorted((h for h in query if is_cell(h.view)),
                   key=lambda h: CELL_LOOKUP_ORDER.index(CELL_VIEWS.index(h.view)))
    looked_up = cells[:len(cells) - CELLS_NEEDED + 1]
    if not looked_up:
        return {}
    found = find_candidates(conn, [h.phash for h in looked_up], MAX_PHASH_DISTANCE,
                            perceptual_cells)
    candidates = sorted({v.receipt_id for v in found.views})
    return closest_matches(query, ((v.receipt_id, v.view, v.phash, v.dhash256)
                                   for v in views_of(conn, perceptual_cells, candidates)))


def search(services: Services, image: BinaryIO, caller: str | None) -> SearchResult:
    """Hash `image` (and its mirror image) and return the registrations it matches."""
    with timed_search():
        return _search(services, image, caller)


def _search(services: Services, image: BinaryIO, caller: str | None) -> SearchResult:
    query = query_hashes(image)
    if not query:
        return SearchResult([], None, 0)
    with services.engine.connect() as conn:
        near = _whole_matches(conn, query)
        if not near:
            # Nothing matched the whole picture: its cells then (a badge or logo inside the
            # picture). Only then, so a query that matches costs what it did before.
            near = _cell_matches(conn, query)
        visible = matched_receipts(conn, list(near), caller)  # oldest first
    oldest_first = [Match(r, near[r.id], caller is not None and r.api_key_id == caller)
                    for r in visible]
    if not oldest_first:
        return SearchResult([], None, 0)
    ranked = sorted(oldest_first, key=lambda m: m.closeness.distance)  # stable: older first
    best = ranked[0].closeness
    earliest = next(m for m in oldest_first if same_picture(best, m.closeness))
    return SearchResult(ranked[:MAX_MATCHES], earliest, len(ranked))
