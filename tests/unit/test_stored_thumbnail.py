"""The thumbnail the hashing worker keeps: made from the decode that gives the hashes (the same
hashes as registration_hashes), upright by EXIF orientation, at most THUMBNAIL_MAX_SIDE px,
encoded as a small WebP."""

from __future__ import annotations

import io

from PIL import Image

from service.evidence.perceptual import registration_hashes, registration_hashes_and_picture
from service.evidence.thumbnail import THUMBNAIL_MAX_SIDE, stored_thumbnail
from tests.support.alterations import encode
from tests.support.pictures import picture, picture_png

MAX_BYTES = 60_000  # "a few tens of KB"


def test_one_decode_gives_the_same_hashes_and_a_bounded_jpeg() -> None:
    data = picture_png(12, 1600, 900)
    hashes, small = registration_hashes_and_picture(io.BytesIO(data), THUMBNAIL_MAX_SIDE)
    assert hashes == registration_hashes(io.BytesIO(data))
    assert small.mode == "RGB" and small.size == (THUMBNAIL_MAX_SIDE, 216)
    webp = stored_thumbnail(small)
    assert len(webp) < MAX_BYTES
    assert Image.open(io.BytesIO(webp)).format == "JPEG"


def test_the_thumbnail_is_upright_by_exif_orientation() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    sideways = encode(picture(9, 600, 400).transpose(Image.Transpose.ROTATE_90), "JPEG",
                      quality=95, exif=exif.tobytes())
    _, small = registration_hashes_and_picture(io.BytesIO(sideways), THUMBNAIL_MAX_SIDE)
    assert small.size == (THUMBNAIL_MAX_SIDE, 256)  # landscape again, as displayed


def test_a_small_image_is_not_enlarged() -> None:
    _, small = registration_hashes_and_picture(io.BytesIO(picture_png(3, 200, 100)),
                                               THUMBNAIL_MAX_SIDE)
    assert small.size == (200, 100)
