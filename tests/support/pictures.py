"""Generated pictures with the structure of illustrations: shading, shapes of every size, edges.

Flat colours or pure noise would make perceptual-hash tests meaningless (the first hashes to
nothing, the second to random bits), so each picture is a shaded background with a few dozen
overlapping shapes of random size, colour and brightness, softened a little, all drawn from
`seed`: different seeds give unrelated pictures.
"""

from __future__ import annotations

import random

from PIL import Image, ImageDraw, ImageFilter

from tests.support.alterations import encode

SHAPES = 40
# A series: the same scene rendered again with small variations (an AI creator's other seeds for
# one prompt). The background and the larger shapes stay; the smaller ones move and recolour.
SERIES_KEPT_SHAPES = 12


def picture(seed: int, width: int = 480, height: int = 320) -> Image.Image:
    """An RGB picture determined by `seed`."""
    return _draw(seed, width, height, None)


def _draw(seed: int, width: int, height: int, jitter: random.Random | None) -> Image.Image:
    """The picture of `seed`; with `jitter`, its smaller shapes moved and recoloured a little."""
    rng = random.Random(seed)
    top = tuple(rng.randrange(256) for _ in range(3))
    bottom = tuple(rng.randrange(256) for _ in range(3))
    image = Image.linear_gradient("L").resize((width, height))
    image = Image.composite(Image.new("RGB", (width, height), bottom),
                            Image.new("RGB", (width, height), top), image)
    draw = ImageDraw.Draw(image)
    for index in range(SHAPES):
        scale = 0.5 / (1 + index / 8)  # large shapes first, then ever smaller detail
        w = rng.uniform(0.3, 1.0) * scale * width
        h = rng.uniform(0.3, 1.0) * scale * height
        x, y = rng.uniform(-w / 2, width - w / 2), rng.uniform(-h / 2, height - h / 2)
        colour = tuple(rng.randrange(256) for _ in range(3))
        ellipse = rng.random() < 0.5
        if jitter is not None and index >= SERIES_KEPT_SHAPES:  # details differ per render
            x += jitter.uniform(-0.04, 0.04) * width
            y += jitter.uniform(-0.04, 0.04) * height
            colour = tuple(max(0, min(255, c + jitter.randrange(-40, 41))) for c in colour)
        box = (x, y, x + w, y + h)
        if ellipse:
            draw.ellipse(box, fill=colour)
        else:
            draw.rectangle(box, fill=colour)
    return image.filter(ImageFilter.GaussianBlur(1.5))


def picture_png(seed: int, width: int = 480, height: int = 320) -> bytes:
    return encode(picture(seed, width, height), "PNG")


def series_picture(seed: int, variant: int, width: int = 480, height: int = 320) -> Image.Image:
    """Variant `variant` of the scene `seed`; variant 0 is `picture(seed)` itself."""
    if variant == 0:
        return picture(seed, width, height)
    return _draw(seed, width, height, random.Random(seed * 1_000_003 + variant))
