"""Small pictures of registered images for the exhibit: a thumbnail and a difference view.

Decoding goes through the same bounds as perceptual hashing (a header size check, the JPEG
draft reduction, the process's decoded-pixel budget), so a hostile image costs what it costs
there. Output is PNG as a data: URI: the exhibit page loads nothing remote.
"""

from __future__ import annotations

import base64
import io

from PIL import Image, ImageChops, ImageOps

from service.errors import ChronosealError
from service.evidence.decode_gate import GATE
from service.evidence.perceptual import DECODE_FORMATS, MAX_PIXELS

THUMBNAIL_SIDE = 480  # px: sharp at 60 mm wide on an A4 print (~200 dpi), small in the PDF
THUMBNAIL_JPEG_QUALITY = 85  # a photo's thumbnail in ~50 KiB (PNG: ~500 KiB, in HTML and PDF)
DIFFERENCE_GAIN = 4  # small changes (a re-encode) stay dark, painted-over areas stand out


def load_rgb(data: bytes, side: int = THUMBNAIL_SIDE) -> Image.Image | None:
    """The image reduced to at most `side` px a side, EXIF orientation applied, in RGB; None
    when the bytes are not a decodable image within the bounds."""
    try:
        with Image.open(io.BytesIO(data), formats=DECODE_FORMATS) as opened:
            width, height = opened.size
            if width * height > MAX_PIXELS:
                return None
            opened.draft("RGB", (side, side))  # JPEG: decoded at 1/2..1/8 scale
            width, height = opened.size
            with GATE.slot(width * height):
                opened.load()
                ImageOps.exif_transpose(opened, in_place=True)  # no copy of the full image
                opened.thumbnail((side, side), Image.Resampling.LANCZOS)  # reduces first
                return _on_white(opened)
    except ChronosealError:  # the decode budget stayed spent: no picture, not a failure
        return None
    except Exception:  # Pillow raises many types for bad bytes; all mean "no picture"
        return None


def _on_white(image: Image.Image) -> Image.Image:
    """RGB, with transparent parts over white (as a print shows them)."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")  # a copy: the caller closes the decoded original


def png_data_uri(image: Image.Image) -> str:
    """The image as a PNG data: URI (optimised off: deterministic and fast)."""
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


def difference_image(original: Image.Image, copy: Image.Image) -> Image.Image:
    """Where the copy differs from the original: the copy scaled onto the original's size, the
    per-pixel difference amplified, shown red over a faded grey original."""
    scaled = copy.resize(original.size, Image.Resampling.LANCZOS)
    diff = ImageChops.difference(original, scaled).convert("L")
    mask = diff.point(lambda v: min(255, v * DIFFERENCE_GAIN))
    faded = Image.blend(ImageOps.grayscale(original).convert("RGB"),
                        Image.new("RGB", original.size, (255, 255, 255)), 0.6)
    red = Image.new("RGB", original.size, (220, 0, 0))
    return Image.composite(red, faded, mask)
