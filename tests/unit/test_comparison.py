"""The difference view: a painted-over area shows red, re-encoding noise and mirroring do not."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from service.errors import ImageDecodeError
from service.evidence.comparison import THUMB_SIDE, difference_map, thumbnail
from tests.support.alterations import add_watermark, encode
from tests.support.pictures import picture, picture_png

SEED = 7


def _red_fraction(image: Image.Image, box: tuple[int, int, int, int] | None = None) -> float:
    pixels = np.asarray(image.crop(box) if box else image).astype(int)
    red = (pixels[..., 0] > 150) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    return float(red.mean())


def test_a_painted_over_corner_is_red_and_the_rest_is_not() -> None:
    original = picture(SEED)
    edited = original.copy()
    ImageDraw.Draw(edited).rectangle((0, 0, 120, 80), fill=(255, 255, 255))
    heat = difference_map(thumbnail(io.BytesIO(picture_png(SEED))),
                          thumbnail(io.BytesIO(encode(edited, "JPEG", quality=90))))
    width, height = heat.size
    corner = (0, 0, width * 120 // 480 - 4, height * 80 // 320 - 4)
    assert _red_fraction(heat, corner) > 0.5
    assert _red_fraction(heat, (width // 2, height // 2, width, height)) < 0.05


def test_a_watermark_shows_and_a_mirror_image_is_compared_mirrored_back() -> None:
    base = thumbnail(io.BytesIO(picture_png(SEED)))
    marked = thumbnail(io.BytesIO(encode(add_watermark(picture(SEED)), "JPEG", quality=85)))
    assert _red_fraction(difference_map(base, marked)) > 0.001
    mirrored = thumbnail(io.BytesIO(encode(ImageOps.mirror(picture(SEED)), "JPEG", quality=85)))
    assert _red_fraction(difference_map(base, mirrored)) < 0.01


def test_thumbnails_are_bounded_and_bad_bytes_are_refused() -> None:
    small = thumbnail(io.BytesIO(picture_png(SEED, 2000, 1000)))
    assert max(small.size) == THUMB_SIDE and small.mode == "RGB"
    with pytest.raises(ImageDecodeError):
        thumbnail(io.BytesIO(b"not an image"))
