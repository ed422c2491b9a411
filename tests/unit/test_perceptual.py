"""Perceptual hashes: normalisation, the views, decoding limits, and the match rule."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageOps

from service.errors import ImageBombError, ImageDecodeError
from service.evidence.perceptual import (
    CELL_VIEWS,
    QUERY_EDGE_VIEWS,
    VIEWS,
    PerceptualHash,
    hamming,
    hash_grey,
    load_grey,
    query_hashes,
    registration_hashes,
)
from service.evidence.similarity import CELLS_NEEDED, UNRELATED_DISTANCE, closeness
from tests.support.alterations import ALTERATIONS, encode
from tests.support.images import bomb_png, png_bytes
from tests.support.pictures import picture, picture_png


def stored(data: bytes) -> list[tuple[int, int, int]]:
    return [(h.view, h.phash, h.dhash256) for h in registration_hashes(io.BytesIO(data))]


def test_registration_stores_one_hash_pair_per_view_then_per_cell() -> None:
    hashes = registration_hashes(io.BytesIO(picture_png(1)))
    assert [h.view for h in hashes] == list(range(len(VIEWS))) + list(CELL_VIEWS)
    assert all(0 <= h.phash < 2**64 and 0 <= h.dhash256 < 2**256 for h in hashes)
    assert len({h.dhash256 for h in hashes}) == len(hashes)  # crops and cells differ


def test_a_flat_cell_is_neither_stored_nor_looked_up() -> None:
    """A flat ninth (a patch of sky) has noise for bits: it would match every other flat one."""
    image = picture(2).copy()
    margin = image.width // 20  # past the cell's edges: the whole top-left cell is flat
    image.paste((90, 140, 200), (0, 0, image.width // 3 + margin, image.height // 3 + margin))
    data = encode(image, "PNG")
    assert [h.view for h in registration_hashes(io.BytesIO(data))][len(VIEWS):] == list(
        CELL_VIEWS[1:])
    assert [h.view for h in query_hashes(io.BytesIO(data))][-len(CELL_VIEWS) + 1:] == list(
        CELL_VIEWS[1:])


@pytest.mark.parametrize(("alteration", "seed"), [("badge_corner_5", 33),
                                                  ("badge_corner_5", 74),
                                                  ("badge_middle_5", 12),
                                                  ("badge_middle_5", 36)])
def test_a_badge_inside_the_picture_is_found_through_its_cells(alteration: str,
                                                               seed: int) -> None:
    """An opaque square logo of 5% of the area, inset in a corner or in the middle, where no
    edge view cuts it away: the whole views miss it (these generated pictures, see
    bench/robustness.py), the cells it leaves alone do not."""
    query = query_hashes(io.BytesIO(ALTERATIONS[alteration](picture(seed), seed)))
    whole = [h for h in query if h.view not in CELL_VIEWS]
    original = stored(picture_png(seed))
    assert closeness(whole, original) is None
    near = closeness(query, original)
    assert near is not None and near.distance <= 32


def test_a_few_matching_cells_are_not_a_match() -> None:
    """A ninth of a picture is weak evidence: all but two of the cells compared must match,
    each in its own place, and never a stored cell against a whole view of the query."""
    original = stored(picture_png(5))
    cells = [h for h in query_hashes(io.BytesIO(picture_png(5))) if h.view in CELL_VIEWS]
    assert len(cells) == len(CELL_VIEWS)
    assert closeness(cells, original) is not None  # all nine
    assert closeness(cells[:CELLS_NEEDED], original) is not None
    assert closeness(cells[:CELLS_NEEDED - 1], original) is None
    spoiled = [PerceptualHash(h.view, h.phash ^ (2**64 - 1), h.dhash256) if i < 3 else h
               for i, h in enumerate(cells)]
    assert closeness(spoiled, original) is None  # 6 of 9 compared: more than two differ
    moved = [PerceptualHash(CELL_VIEWS[(CELL_VIEWS.index(h.view) + 1) % len(CELL_VIEWS)],
                            h.phash, h.dhash256) for h in cells]
    assert closeness(moved, original) is None  # the right hashes in the wrong places
    as_whole = [PerceptualHash(0, h.phash, h.dhash256) for h in cells]
    only_cells = [v for v in original if v[0] in CELL_VIEWS]
    assert closeness(as_whole, only_cells) is None


def test_hashes_are_deterministic_and_format_independent() -> None:
    png = registration_hashes(io.BytesIO(picture_png(2)))
    again = registration_hashes(io.BytesIO(picture_png(2)))
    lossless_webp = registration_hashes(io.BytesIO(encode(picture(2), "WEBP", lossless=True)))
    assert png == again
    assert [h.dhash256 for h in png] == [h.dhash256 for h in lossless_webp]


def test_a_frame_is_trimmed_before_hashing() -> None:
    framed = ImageOps.expand(picture(3), border=40, fill=(255, 255, 255))
    plain = load_grey(io.BytesIO(picture_png(3)))
    trimmed = load_grey(io.BytesIO(encode(framed, "PNG")))
    # Reduced to the working size first (the framed file is larger): the same picture remains.
    assert abs(trimmed.width / trimmed.height - plain.width / plain.height) < 0.02
    assert hamming(hash_grey(trimmed).dhash256, hash_grey(plain).dhash256) <= 8


def test_the_query_includes_the_mirror_image() -> None:
    query = query_hashes(io.BytesIO(encode(ImageOps.mirror(picture(4)), "PNG")))
    assert closeness(query[:1], stored(picture_png(4))) is None  # not without the mirror
    assert closeness(query, stored(picture_png(4))) is not None


def test_crop_views_catch_a_crop_the_full_view_misses() -> None:
    image = picture(5)
    w, h = image.size
    cropped = encode(image.crop((0, int(h * 0.1), int(w * 0.9), h)), "PNG")  # 10% off two edges
    query = query_hashes(io.BytesIO(cropped))
    full_only = stored(picture_png(5))[:1]
    assert closeness(query, full_only) is None
    assert closeness(query, stored(picture_png(5))) is not None


def test_flat_images_get_no_hashes() -> None:
    assert registration_hashes(io.BytesIO(png_bytes(300, 200))) == []
    assert query_hashes(io.BytesIO(png_bytes(300, 200, (9, 9, 9)))) == []


def test_transparency_is_flattened_onto_white() -> None:
    rgba = picture(6).convert("RGBA")
    flattened = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    assert registration_hashes(io.BytesIO(encode(rgba, "PNG"))) == registration_hashes(
        io.BytesIO(encode(flattened.convert("RGB"), "PNG")))


def test_not_an_image_and_bombs_are_refused() -> None:
    with pytest.raises(ImageDecodeError):
        registration_hashes(io.BytesIO(b"GIF89a but nothing else"))
    with pytest.raises(ImageBombError):
        query_hashes(io.BytesIO(bomb_png(10_000)))


def test_unrelated_pictures_do_not_match() -> None:
    query = query_hashes(io.BytesIO(encode(picture(7), "JPEG", quality=70)))
    for seed in range(20, 40):
        assert closeness(query, stored(picture_png(seed))) is None


def test_similarity_is_one_for_identical_and_falls_with_distance() -> None:
    near = closeness(query_hashes(io.BytesIO(picture_png(8))), stored(picture_png(8)))
    assert near is not None and near.distance == 0 and near.similarity == 1.0
    altered = ALTERATIONS["watermark_painted_over"](picture(8), 8)
    copy = closeness(query_hashes(io.BytesIO(altered)), stored(picture_png(8)))
    assert copy is not None and 0 < copy.similarity < 1
    assert copy.similarity == round(1 - copy.distance / UNRELATED_DISTANCE, 4)


def test_exif_orientation_is_applied() -> None:
    upright = picture(9)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    sideways = encode(upright.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=95,
                      exif=exif.tobytes())
    near = closeness(query_hashes(io.BytesIO(picture_png(9))), stored(sideways))
    assert near is not None and near.distance <= 16


@pytest.mark.parametrize("seed", [1, 7, 9, 10, 13])
def test_a_copy_branded_with_an_opaque_bar_is_found(seed: int) -> None:
    """A solid bar with a logo and text over 5% of the picture, along an edge: the query's
    views without that edge meet the original's stored views of the same framing."""
    query = query_hashes(io.BytesIO(ALTERATIONS["overlay_5"](picture(seed), seed)))
    assert len(query) == 2 + len(QUERY_EDGE_VIEWS) + len(CELL_VIEWS)
    near = closeness(query, stored(picture_png(seed)))
    assert near is not None and near.distance <= 8


@pytest.mark.parametrize("length", [7, 64, 256, 511])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int16"])
def test_row_medians_are_numpys_bit_for_bit(length: int, dtype: str) -> None:
    """The hash bits split at the median: the partition shortcut must give np.median's values
    and dtype exactly, or stored hashes would change."""
    import numpy as np

    from service.evidence.perceptual import _row_medians

    rng = np.random.default_rng(length)
    rows = (rng.integers(0, 256, size=(19, length)) if dtype == "int16"
            else rng.normal(0, 100, size=(19, length))).astype(dtype)
    rows[3, : length // 2] = rows[3, 0]  # ties
    expected = np.median(rows, axis=1, keepdims=True)
    got = _row_medians(rows)
    assert got.dtype == expected.dtype
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("seed", range(8))
def test_cell_contrast_from_block_sums_is_each_cells_own(seed: int) -> None:
    """The flat-cell test computes nine deviations at once from block sums: they must decide
    as numpy's std() of each cell's part of the averaged image would."""
    import numpy as np

    from service.evidence.perceptual import CELLS, MIN_CONTRAST, _structured_cells

    rng = np.random.default_rng(seed)
    averaged = rng.normal(100, rng.uniform(0, 2 * MIN_CONTRAST), size=(64, 64)).astype(np.float32)
    averaged[:21, :21] = 7.0  # one flat cell whatever the noise
    hashes = [PerceptualHash(view, 0, 0) for view in range(len(CELLS))]
    expected = [view for view, (left, top, right, bottom) in enumerate(CELLS)
                if averaged[round(top * 64):round((1 - bottom) * 64),
                            round(left * 64):round((1 - right) * 64)].std() >= MIN_CONTRAST]
    assert [h.view for h in _structured_cells(averaged, hashes)] == expected
    assert 0 not in expected
