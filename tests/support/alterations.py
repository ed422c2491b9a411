"""The alterations a re-posted copy goes through, for search tests and bench/robustness.py.

Each takes an RGB image and a seed (crops use it to place the cut, so they do not line up with
any stored view by construction) and returns the encoded copy's bytes.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable

from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

Alteration = Callable[[Image.Image, int], bytes]
WATERMARK_TEXT = "(c) reposted by someone else"


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _jpeg(quality: int) -> Alteration:
    return lambda image, seed: encode(image, "JPEG", quality=quality)


def _resize(factor: float) -> Alteration:
    def alter(image: Image.Image, seed: int) -> bytes:
        size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
        return encode(image.resize(size, Image.Resampling.LANCZOS), "JPEG", quality=90)
    return alter


def _crop(fraction: float) -> Alteration:
    """Cut `fraction` of the width and of the height, split at random between opposite edges."""
    def alter(image: Image.Image, seed: int) -> bytes:
        rng = random.Random(seed)
        left_share, top_share = rng.random(), rng.random()
        cut_w, cut_h = image.width * fraction, image.height * fraction
        left, top = round(cut_w * left_share), round(cut_h * top_share)
        box = (left, top, left + round(image.width - cut_w), top + round(image.height - cut_h))
        return encode(image.crop(box), "JPEG", quality=90)
    return alter


def _watermark_box(image: Image.Image) -> tuple[ImageFont.ImageFont | ImageFont.FreeTypeFont,
                                                   tuple[int, int, int, int]]:
    font = ImageFont.load_default(size=max(10, image.height // 20))
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((0, 0), WATERMARK_TEXT, font=font)
    x = image.width - (right - left) - image.width // 30
    y = image.height - (bottom - top) - image.height // 20
    return font, (x, y, x + right - left, y + bottom - top)


def add_watermark(image: Image.Image) -> Image.Image:
    copy = image.convert("RGBA")
    layer = Image.new("RGBA", copy.size, (0, 0, 0, 0))
    font, (x, y, _, _) = _watermark_box(copy)
    ImageDraw.Draw(layer).text((x, y), WATERMARK_TEXT, font=font, fill=(255, 255, 255, 160))
    return Image.alpha_composite(copy, layer).convert("RGB")


def _watermark(image: Image.Image, seed: int) -> bytes:
    return encode(add_watermark(image), "JPEG", quality=90)


def _watermark_painted_over(image: Image.Image, seed: int) -> bytes:
    """Watermark, then a flat patch of the surrounding colour over it (a crude removal)."""
    marked = add_watermark(image)
    _, (x0, y0, x1, y1) = _watermark_box(marked)
    pad = max(4, (y1 - y0) // 4)
    box = (max(0, x0 - pad), max(0, y0 - pad), min(image.width, x1 + pad),
           min(image.height, y1 + pad))
    region = marked.crop(box).resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    ImageDraw.Draw(marked).rectangle(box, fill=region)
    return encode(marked, "JPEG", quality=90)


def _brightness(factor: float) -> Alteration:
    return lambda image, seed: encode(ImageEnhance.Brightness(image).enhance(factor), "JPEG",
                                      quality=90)


def _border(image: Image.Image, seed: int) -> bytes:
    """A frame 10% of the shorter side wide on every edge."""
    width = max(1, min(image.size) // 10)
    return encode(ImageOps.expand(image, border=width, fill=(0, 0, 0)), "JPEG", quality=90)


def _mirror(image: Image.Image, seed: int) -> bytes:
    return encode(ImageOps.mirror(image), "JPEG", quality=90)


OVERLAY_TEXT = "@reposter"


def _overlay(share: float) -> Alteration:
    """An opaque bar across a corner holding a logo and white text, `share` of the area: how
    reposters brand copies. The corner and the bar's shade come from the seed."""
    def alter(image: Image.Image, seed: int) -> bytes:
        rng = random.Random(seed)
        copy = image.copy()
        bar_h = max(8, round(image.height * 0.08))
        bar_w = min(image.width, round(share * image.width * image.height / bar_h))
        x = 0 if rng.random() < 0.5 else image.width - bar_w
        y = 0 if rng.random() < 0.5 else image.height - bar_h
        draw = ImageDraw.Draw(copy)
        shade = rng.randrange(0, 60)
        draw.rectangle((x, y, x + bar_w, y + bar_h), fill=(shade, shade, shade))
        pad = max(2, bar_h // 6)
        logo = bar_h - 2 * pad  # a round logo, then the handle beside it
        draw.ellipse((x + pad, y + pad, x + pad + logo, y + pad + logo), fill=(230, 60, 40))
        font = ImageFont.load_default(size=max(8, bar_h // 2))
        draw.text((x + 2 * pad + logo, y + bar_h // 4), OVERLAY_TEXT, font=font,
                  fill=(255, 255, 255))
        return encode(copy, "JPEG", quality=85)
    return alter


def _badge(share: float, where: str) -> Alteration:
    """An opaque square logo badge with a line of text, `share` of the area: in a corner (inset
    by 2% of the sides, the corner from the seed) or in the middle."""
    def alter(image: Image.Image, seed: int) -> bytes:
        rng = random.Random(seed)
        copy = image.copy()
        side = max(8, round((share * image.width * image.height) ** 0.5))
        if where == "middle":
            x, y = (image.width - side) // 2, (image.height - side) // 2
        else:
            inset_x, inset_y = round(image.width * 0.02), round(image.height * 0.02)
            x = inset_x if rng.random() < 0.5 else image.width - side - inset_x
            y = inset_y if rng.random() < 0.5 else image.height - side - inset_y
        draw = ImageDraw.Draw(copy)
        shade = rng.randrange(0, 256)
        draw.rectangle((x, y, x + side, y + side), fill=(shade, 255 - shade, 90))
        draw.ellipse((x + side // 5, y + side // 8, x + 4 * side // 5, y + 5 * side // 8),
                     fill=(240, 240, 240))
        font = ImageFont.load_default(size=max(8, side // 7))
        draw.text((x + side // 10, y + 3 * side // 4), OVERLAY_TEXT, font=font, fill=(0, 0, 0))
        return encode(copy, "JPEG", quality=85)
    return alter


def _banner(share: float) -> Alteration:
    """A full-width opaque strip along the top or bottom edge with text, `share` of the area."""
    def alter(image: Image.Image, seed: int) -> bytes:
        rng = random.Random(seed)
        copy = image.copy()
        height = max(8, round(share * image.height))
        y = 0 if rng.random() < 0.5 else image.height - height
        draw = ImageDraw.Draw(copy)
        draw.rectangle((0, y, image.width, y + height), fill=(20, 20, 20))
        font = ImageFont.load_default(size=max(8, height * 2 // 3))
        draw.text((height, y + height // 8), f"{OVERLAY_TEXT}  follow for more", font=font,
                  fill=(255, 255, 255))
        return encode(copy, "JPEG", quality=85)
    return alter


ALTERATIONS: dict[str, Alteration] = {
    "jpeg_q50": _jpeg(50),
    "jpeg_q70": _jpeg(70),
    "jpeg_q90": _jpeg(90),
    "resize_50": _resize(0.5),
    "resize_200": _resize(2.0),
    "crop_5": _crop(0.05),
    "crop_10": _crop(0.10),
    "watermark": _watermark,
    "watermark_painted_over": _watermark_painted_over,
    "brightness_plus_15": _brightness(1.15),
    "brightness_minus_15": _brightness(0.85),
    "border_10": _border,
    "mirror": _mirror,
    "overlay_2": _overlay(0.02),
    "overlay_5": _overlay(0.05),
    "badge_corner_2": _badge(0.02, "corner"),
    "badge_corner_5": _badge(0.05, "corner"),
    "badge_middle_2": _badge(0.02, "middle"),
    "badge_middle_5": _badge(0.05, "middle"),
    "banner_5": _banner(0.05),
}
