"""Real pictures for the perceptual benchmarks: Debian's gnome-backgrounds and mate-backgrounds.

Fetched once with `apt-get download` + `dpkg -x` into bench/.cache (gitignored), never committed.
Kept: raster images that are pictures. Left out, with the reason: overlays that are mostly
transparent and flat fills (nothing to recognise), and all but one member of each family of
the same artwork (dark/light variants, the same picture at several resolutions, the same
design recoloured), because those are not unrelated to each other.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

CACHE = Path(__file__).resolve().parent / ".cache" / "wallpapers"
PACKAGES = ("gnome-backgrounds", "mate-backgrounds")
RASTER = (".jpg", ".jpeg", ".png", ".webp")
MIN_OPAQUE = 250  # mean alpha (0..255): below it the file is an overlay, not a picture
MIN_CONTRAST = 4.0  # grey standard deviation: below it the picture is a flat fill
# Names reduced to their artwork: resolution suffixes, light/dark and colour variants.
_FAMILY = (
    (re.compile(r"[-_]\d+x\d+$"), ""),
    (re.compile(r"-(l|d)$"), ""),
    (re.compile(r"^Ubuntu-Mate-(Cold|Dark|Radioactive|Warm)-no-logo$"), "Ubuntu-Mate-no-logo"),
    (re.compile(r"^MATE-Stripes-(Dark|Light)$"), "MATE-Stripes"),
)


def fetch() -> Path:
    """The extracted packages' root, downloading them on first use."""
    root = CACHE / "root"
    if root.is_dir():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=CACHE, check=True,
                   capture_output=True)
    for deb in sorted(CACHE.glob("*.deb")):
        subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    return root


def family(path: Path) -> str:
    name = path.stem
    for pattern, replacement in _FAMILY:
        name = pattern.sub(replacement, name)
    return name


def is_picture(path: Path) -> bool:
    with Image.open(path) as image:
        image.draft("RGB", (512, 512))
        rgba = np.asarray(image.convert("RGBA").resize((64, 64)), dtype=np.float64)
        grey = np.asarray(image.convert("L").resize((64, 64)), dtype=np.float64)
    return bool(rgba[..., 3].mean() >= MIN_OPAQUE and grey.std() >= MIN_CONTRAST)


def pictures() -> list[Path]:
    """One picture per artwork family, in a stable order."""
    chosen: dict[str, Path] = {}
    for path in sorted(fetch().rglob("*")):
        if path.suffix.lower() in RASTER and path.is_file():
            key = family(path)
            if key not in chosen and is_picture(path):
                chosen[key] = path
    return list(chosen.values())


def load_rgb(path: Path, max_side: int = 1600) -> Image.Image:
    """The picture as RGB, at most `max_side` pixels a side (the size a repost would have)."""
    with Image.open(path) as image:
        image.draft("RGB", (max_side, max_side))
        rgb = image.convert("RGB")
    rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return rgb
