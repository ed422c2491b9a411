"""Photographs and scientific pictures for the perceptual benchmarks: scikit-image's bundled data.

The wheel is fetched once with `pip download --no-deps` into bench/.cache (gitignored, never
committed, scikit-image itself is not installed) and its pictures are read from the archive.
Left out, with the reason: tiny or synthetic files (chessboards, multipage TIFFs, an animated
GIF, the phantom), and the right image of the motorcycle stereo pair (the same scene as the left).
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from io import BytesIO
from pathlib import Path

from PIL import Image

CACHE = Path(__file__).resolve().parent / ".cache" / "photos"
PACKAGE = "scikit-image==0.26.0"
NAMES = (
    "astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "clock_motion.png",
    "coffee.png", "coins.png", "color.png", "grass.png", "gravel.png", "horse.png",
    "hubble_deep_field.jpg", "ihc.png", "logo.png", "microaneurysms.png", "moon.png",
    "motorcycle_left.png", "page.png", "retina.jpg", "rocket.jpg", "text.png",
)


def fetch() -> Path:
    """The downloaded wheel, downloading it on first use."""
    wheels = sorted(CACHE.glob("scikit_image-*.whl"))
    if wheels:
        return wheels[-1]
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(CACHE),
                    PACKAGE], check=True, capture_output=True)
    return sorted(CACHE.glob("scikit_image-*.whl"))[-1]


def pictures() -> list[tuple[str, Image.Image]]:
    """(name, RGB picture) for every kept picture, in a stable order."""
    out = []
    with zipfile.ZipFile(fetch()) as wheel:
        for name in NAMES:
            with Image.open(BytesIO(wheel.read(f"skimage/data/{name}"))) as image:
                out.append((name, image.convert("RGB")))
    return out
