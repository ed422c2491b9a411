"""When two perceptual hashes count as the same picture, and how close they are.

A match needs both hashes close (see service.evidence.perceptual): the 64-bit pHash within
MAX_PHASH_DISTANCE (the search index finds every view within 5 bits, and those within 11 whose
errors leave one band nearly intact; bench/search.py measures what that costs against an exact
scan) and the 256-bit hash within MAX_DHASH_DISTANCE. The limits come from
bench/robustness.py on the Debian wallpapers: every
altered copy that is found at all is found within them, and no unrelated pair comes within both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from service.evidence.perceptual import DHASH_BITS, PerceptualHash, hamming, is_cell

MAX_PHASH_DISTANCE = 11  # of 64; with the limit below no unrelated pair in the bench passes
MAX_DHASH_DISTANCE = 76  # of 256; unrelated pictures measured at 100+ on the wallpaper set
# Unrelated images sit around half the bits apart: similarity 0 there, 1 for identical hashes.
UNRELATED_DISTANCE = DHASH_BITS // 2
# Copies of one picture vs other pictures of one series (the same prompt, other seeds): altered
# copies measured within 26 bits of their original (every alteration of bench/robustness.py but
# a 10% crop), renders of the same scene 38 bits and more apart (the 120 renders, and
# tests/support/pictures.series_picture). A match this close to the query is the same picture.
SAME_PICTURE_DISTANCE = 32
# A match through cells (a badge or logo inside the picture): of the cells structured in both
# images, all but CELLS_SPARED match, each within both limits above, and at least CELLS_NEEDED
# of them. On bench/robustness.py's three sets no unrelated pair came that close (2,484 pairs
# of originals, 216,480 of queries and registrations); CELLS_SPARED = 2 lets a badge straddle two.
CELLS_NEEDED = 6
CELLS_SPARED = 2


@dataclass(frozen=True)
class Closeness:
    """The closest pair of views between a query and a stored image."""

    distance: int  # bits of the 256-bit hash
    phash_distance: int  # bits of the 64-bit hash

    @property
    def similarity(self) -> float:
        return round(max(0.0, 1 - self.distance / UNRELATED_DISTANCE), 4)


def closeness(query: Sequence[PerceptualHash], stored: Iterable[tuple[int, int, int]]
              ) -> Closeness | None:
    """The closest match between a query's views and a stored image's (view, phash, dhash256),
    or None: the closest pair of whole views (the image, crops, mirror, edge views), or, when
    enough cells match their own stored cells (CELLS_NEEDED, CELLS_SPARED), the farthest of
    those."""
    whole = [view for view in query if not is_cell(view.view)]
    cells = {view.view: view for view in query if is_cell(view.view)}
    best: Closeness | None = None
    compared, matched = 0, []
    for view_id, phash, dhash in stored:
        if is_cell(view_id):
            own = cells.get(view_id)
            if own is not None:
                compared += 1
                if (near := _near(own, phash, dhash)) is not None:
                    matched.append(near)
            continue
        for view in whole:
            near = _near(view, phash, dhash)
            if near is not None and (best is None or near.distance < best.distance):
                best = near
    if len(matched) >= max(CELLS_NEEDED, compared - CELLS_SPARED):
        farthest = max(matched, key=lambda c: c.distance)
        if best is None or farthest.distance < best.distance:
            best = farthest
    return best


def _near(view: PerceptualHash, phash: int, dhash: int) -> Closeness | None:
    """How close one pair of views is, when both hashes are within the limits."""
    near = hamming(view.phash, phash)
    if near > MAX_PHASH_DISTANCE:
        return None
    distance = hamming(view.dhash256, dhash)
    return Closeness(distance, near) if distance <= MAX_DHASH_DISTANCE else None


def closest_matches(query: Sequence[PerceptualHash],
                    views: Iterable[tuple[str, int, int, int]]) -> dict[str, Closeness]:
    """Per image key, the closest match among its (key, view, phash, dhash256) views; keys of
    images that do not match are left out."""
    by_key: dict[str, list[tuple[int, int, int]]] = {}
    for key, view, phash, dhash in views:
        by_key.setdefault(key, []).append((view, phash, dhash))
    return {key: near for key, stored in by_key.items()
            if (near := closeness(query, stored)) is not None}


def same_picture(best: Closeness, other: Closeness) -> bool:
    """Whether `other` is a copy of the picture whose closest match is `best`: within
    SAME_PICTURE_DISTANCE, or no farther than the closest match (a heavily altered query)."""
    return other.distance <= max(SAME_PICTURE_DISTANCE, best.distance)
