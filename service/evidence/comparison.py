"""Pictures for people comparing two images: bounded thumbnails and a difference heat map.

Both images are decoded through the same bounds as perceptual hashing (the header's pixel count
checked before decoding, JPEG draft decoding, the process's decode budget), then reduced to at
most THUMB_SIDE pixels a side, so nothing here holds a full-size image for long.
"""

from __future__ import annotations

import io
from typing import BinaryIO

from PIL import Image, ImageChops, ImageFilter, ImageOps, ImageStat

from service.evidence.perceptual import decoded

THUMB_SIDE = 320  # big enough to recognise a picture and see a painted-over corner, small to send
# Differences below this (0..255 luminance, after a slight blur) are re-encoding noise: a JPEG
# at quality 85 of a test picture stays under it, a light watermark goes over it.
NOISE_FLOOR = 8
HEAT_GAIN = 8  # stretches the remaining differences so a retouched area reads at a glance


def thumbnail(fileobj: BinaryIO, side: int = THUMB_SIDE) -> Image.Image:
    """The image as RGB, EXIF orientation applied, at most `side` pixels a side."""
    with decoded(fileobj, side) as opened:
        small = ImageOps.exif_transpose(opened).convert("RGB")
        small.thumbnail((side, side), Image.Resampling.LANCZOS)
    return small


def png_bytes(image: Image.Image) -> bytes:
    """The image encoded as PNG."""
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def _delta(original: Image.Image, copy: Image.Image) -> Image.Image:
    blur = ImageFilter.GaussianBlur(1)
    return ImageChops.difference(original.filter(blur), copy.filter(blur)).convert("L")


def difference_map(original: Image.Image, copy: Image.Image) -> Image.Image:
    """Where `copy` differs from `original`: the original in grey, differences painted red.

    The copy is scaled to the original's size first (a resized repost is not a difference),
    and mirrored back when it is a mirror image (search finds those too); a crop or a
    painted-over watermark then shows as a red area.
    """
    copy = copy.resize(original.size, Image.Resampling.LANCZOS)
    straight, mirrored = _delta(original, copy), _delta(original, ImageOps.mirror(copy))
    delta = min((straight, mirrored), key=lambda d: ImageStat.Stat(d).mean[0])
    heat = delta.point(lambda v: 0 if v < NOISE_FLOOR else min(255, (v - NOISE_FLOOR) * HEAT_GAIN))
    base = ImageOps.grayscale(original).convert("RGB")
    red = Image.new("RGB", original.size, (220, 20, 20))
    return Image.composite(red, base, heat)
