"""The exhibit's pictures as data: URIs (the exhibit pages load nothing remote).

Decoding and reducing are service.evidence.comparison's (the same bounds as perceptual
hashing); this module only encodes: thumbnails as JPEG, so a photo's costs ~50 KiB in the HTML
and again in the PDF rather than ~500 KiB as PNG.
"""

from __future__ import annotations

import base64
import io

from PIL import Image

from service.errors import ChronosealError
from service.evidence.comparison import thumbnail

THUMBNAIL_SIDE = 480  # px: sharp at 60 mm wide on an A4 print (~200 dpi), small in the PDF
THUMBNAIL_JPEG_QUALITY = 85
# The thumbnail stored with each upload's hashes and kept after the upload is dropped: the
# pages' (320 px) and about the exhibit's picture, a few tens of KB a row, not a full image.
THUMBNAIL_MAX_SIDE = 384
# JPEG, not WebP: the hashing worker encodes one per upload, and at 384 px libjpeg-turbo took
# 0.2 ms where libwebp (method 2) took 2-4 ms, which doubled bench/e2e.py's hashing backlog
# (hashed_after_s 14.9 -> 32.5 s); WebP's bytes were smaller (1.7 against 4.4 KB for a smooth
# picture, the same for noise), which at a few KB a row does not matter.
STORED_THUMBNAIL_QUALITY = 80  # no visible loss at this size
STORED_THUMBNAIL_MEDIA_TYPE = "image/jpeg"


def load_rgb(data: bytes, side: int = THUMBNAIL_SIDE) -> Image.Image | None:
    """The image reduced to at most `side` px a side, in RGB; None when the bytes are not a
    decodable image within the bounds (or the decode budget stayed spent): no picture, not a
    failure of the exhibit."""
    try:
        return thumbnail(io.BytesIO(data), side)
    except ChronosealError:
        return None


def png_data_uri(image: Image.Image) -> str:
    """The image as a PNG data: URI."""
    out = io.BytesIO()
    image.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def thumbnail_uri(data: bytes | None) -> str | None:
    """A JPEG thumbnail of an image's bytes as a data: URI, or None without a decodable image.
    (Same pixels, same libjpeg: same bytes, so bundles stay deterministic.)"""
    image = load_rgb(data) if data else None
    if image is None:
        return None
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=THUMBNAIL_JPEG_QUALITY, optimize=False)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def stored_thumbnail(image: Image.Image) -> bytes:
    """The JPEG kept in place of an uploaded image: `image` (RGB, already reduced to at most
    THUMBNAIL_MAX_SIDE px a side by perceptual.registration_hashes_and_picture) encoded."""
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=STORED_THUMBNAIL_QUALITY, optimize=False)
    return out.getvalue()
