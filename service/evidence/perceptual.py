"""Perceptual hashes: what stays the same when an image is re-encoded, resized or touched up.

Two DCT hashes over the image's luminance, after the same normalisation (EXIF orientation,
uniform borders trimmed):

- `phash`: 64 bits, the classic pHash (32x32 grey, 8x8 lowest DCT frequencies, median split).
  Cheap, 8 bytes, and its four 16-bit bands are the search index's keys.
- `dhash256`: 256 bits, the PDQ construction (64x64 grey, 16x16 lowest frequencies, median
  split). Four times the bits over finer detail: it tells near-duplicates from images that only
  share a layout, so it decides what counts as a match.

Crops move the image under the DCT grid, so a registration also stores hashes of a few crops of
itself ("views"); a cropped copy then meets a view cut close to it. A mirrored copy is found by
also searching with the mirror image of the query (search side only, no extra storage).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

from service.errors import ChronosealError, ImageBombError, ImageDecodeError
from service.evidence.decode_gate import GATE

# The decoders we accept (as hashing.PROBE_FORMATS): no exotic parsers on untrusted bytes.
DECODE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "AVIF", "TIFF", "BMP")
# 50 megapixels: above any generated image and most camera files; a decoded RGB image at this
# size is 200 MB (Pillow keeps 4 bytes a pixel), the most one hashing job may hold. Larger
# images are refused as bombs.
MAX_PIXELS = 50_000_000
# A search query decodes at most this many pixels (counted after JPEG's reduction while
# decoding, so a 50-megapixel JPEG is fine): reposts found online are a few megapixels, 25 MP is
# a 5000x5000 PNG, and its 100 MB decoded leave an API process under 300 MiB. Anonymous callers
# send queries, so this bounds what anyone can make the API hold (decode_gate bounds the sum).
MAX_QUERY_PIXELS = 25_000_000
# Converting to grey goes strip by strip of about this many pixels: the RGBA/RGB copies the
# conversion makes stay small, beside the one full-size decoded image and its grey copy.
STRIP_PIXELS = 1_000_000
_ORIENTATION = 0x0112  # the EXIF tag; its values 2..8 name the transposition that undoes it
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90,
}
# JPEG decoders can scale by 1/2..1/8 while decoding: ask for at least this many pixels a side,
# which keeps every later step (trim, crops, 64x64 resize) accurate and decoding fast.
DRAFT_SIDE = 512
# A border is trimmed when its rows/columns differ from the border colour by at most this much
# (0..255 grey); JPEG ringing along a flat border stays under it, picture content does not.
BORDER_TOLERANCE = 12
MAX_BORDER_FRACTION = 0.3  # never trim more than this of a side: a dark sky is not a border
# Views stored per registration: (left, top, right, bottom) fractions cut away. The full image,
# then crops of 5% and 10% of each dimension split between opposite edges in thirds, so a copy
# cropped by up to ~10% anywhere meets a view within a couple of percent of its own framing.
_SPLITS = (0.0, 0.5, 1.0)
VIEWS: tuple[tuple[float, float, float, float], ...] = ((0.0, 0.0, 0.0, 0.0),) + tuple(
    (cut * x, cut * y, cut * (1 - x), cut * (1 - y))
    for cut in (0.05, 0.1) for x in _SPLITS for y in _SPLITS
)
# An image whose 64x64 grey version varies less than this (standard deviation, 0..255) is a
# flat fill: its hash bits are noise, and every flat image would match every other one.
MIN_CONTRAST = 2.0
PHASH_BITS = 64
DHASH_BITS = 256


@dataclass(frozen=True)
class PerceptualHash:
    """The hashes of one view of an image, as integers (bit i = coefficient i above median)."""

    view: int
    phash: int
    dhash256: int


def _dct_matrix(size: int, keep: int) -> NDArray[np.float64]:
    """Rows of the DCT-II basis: `keep` lowest frequencies over `size` samples."""
    x = np.arange(size)
    u = np.arange(keep)[:, None]
    return np.cos(np.pi * (2 * x + 1) * u / (2 * size))


_DCT_32_8 = _dct_matrix(32, 8)
_DCT_64_16 = _dct_matrix(64, 16)


def _bits(coefficients: NDArray[np.float64]) -> int:
    flat = coefficients.ravel()
    above = flat > np.median(flat)
    return int.from_bytes(np.packbits(above).tobytes(), "big")


def _resize(grey: Image.Image, side: int) -> NDArray[np.float64]:
    return np.asarray(grey.resize((side, side), Image.Resampling.BOX), dtype=np.float64)


def hash_grey(grey: Image.Image, view: int = 0) -> PerceptualHash:
    """Both hashes of a greyscale ("L" or "F") image."""
    small = _resize(grey, 32)
    phash = _bits(_DCT_32_8 @ small @ _DCT_32_8.T)
    fine = _resize(grey, 64)
    dhash = _bits(_DCT_64_16 @ fine @ _DCT_64_16.T)
    return PerceptualHash(view, phash, dhash)


@contextmanager
def _decoding_errors() -> Iterator[None]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    except Image.DecompressionBombError as exc:
        raise ImageBombError(MAX_PIXELS) from exc
    except ChronosealError:  # ours, raised on purpose (bomb, busy): as they are
        raise
    except Exception as exc:  # Pillow raises many types for bad bytes; all mean "not an image"
        raise ImageDecodeError("not a decodable image") from exc


@contextmanager
def decoded(fileobj: BinaryIO, draft_side: int, max_pixels: int = MAX_PIXELS
            ) -> Iterator[Image.Image]:
    """`fileobj` decoded within the bounds, for the block: the header's size is checked before
    anything is decoded (`max_pixels` counts what is decoded, after a JPEG's reduction towards
    `draft_side`), and the decode holds its pixels in the process's budget (decode_gate)."""
    fileobj.seek(0)
    with _decoding_errors(), Image.open(fileobj, formats=DECODE_FORMATS) as opened:
        width, height = opened.size
        if width * height > MAX_PIXELS:
            raise ImageBombError(MAX_PIXELS)
        opened.draft("RGB", (draft_side, draft_side))  # JPEG: decoded at 1/2..1/8 scale
        width, height = opened.size
        if width * height > max_pixels:
            raise ImageBombError(max_pixels)
        with GATE.slot(width * height):
            opened.load()
            yield opened


def load_grey(fileobj: BinaryIO, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode `fileobj` to a normalised grey image of at most 2 x DRAFT_SIDE pixels a side.

    EXIF orientation is applied and uniform borders are trimmed, so a copy with an added frame
    or a rotated-by-metadata copy hashes like the original. Memory: decoded within the bounds
    (`decoded`), and only the decoded image and its grey copy are ever full-size.
    """
    with decoded(fileobj, DRAFT_SIDE, max_pixels) as opened:
        method = _TRANSPOSE.get(opened.getexif().get(_ORIENTATION, 1))  # after load: PNG
        grey = _grey_of(opened)
        opened.close()  # the decoded pixels go now, not when the file object does
        if method is not None:
            grey = grey.transpose(method)
        grey.thumbnail((DRAFT_SIDE * 2, DRAFT_SIDE * 2), Image.Resampling.BOX)
    return trim_borders(grey)


def _grey_of(image: Image.Image) -> Image.Image:
    """The grey ("L") copy of a decoded image, transparent parts over white, made in strips.

    Every step is per pixel, so strips give exactly what converting the whole would; whole,
    the RGBA copies for compositing would take 8 more bytes a pixel.
    """
    width, height = image.size
    transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    grey = Image.new("L", (width, height))
    rows = max(1, STRIP_PIXELS // width)
    for top in range(0, height, rows):
        strip = image.crop((0, top, width, min(height, top + rows)))
        if transparent:
            background = Image.new("RGBA", strip.size, (255, 255, 255, 255))
            strip = Image.alpha_composite(background, strip.convert("RGBA"))
        grey.paste(strip.convert("L"), (0, top))
    return grey


def trim_borders(grey: Image.Image) -> Image.Image:
    """Cut away uniform bands along the edges (a frame added around a copy)."""
    pixels = np.asarray(grey, dtype=np.int16)
    height, width = pixels.shape
    if height < 8 or width < 8:
        return grey

    def depth(lines: NDArray[np.int16], limit: int) -> int:
        colour = np.median(lines[0])
        for index in range(limit):
            if np.abs(lines[index] - colour).max() > BORDER_TOLERANCE:
                return index
        return limit

    top = depth(pixels, int(height * MAX_BORDER_FRACTION))
    bottom = depth(pixels[::-1], int(height * MAX_BORDER_FRACTION))
    left = depth(pixels.T, int(width * MAX_BORDER_FRACTION))
    right = depth(pixels.T[::-1], int(width * MAX_BORDER_FRACTION))
    if top + bottom + left + right == 0:
        return grey
    return grey.crop((left, top, width - right, height - bottom))


def _view(grey: Image.Image, cut: tuple[float, float, float, float]) -> Image.Image:
    width, height = grey.size
    left, top, right, bottom = cut
    box = (round(width * left), round(height * top),
           round(width * (1 - right)), round(height * (1 - bottom)))
    return grey.crop(box)


def is_flat(grey: Image.Image) -> bool:
    """True when the image has too little structure to hash (see MIN_CONTRAST)."""
    return float(_resize(grey, 64).std()) < MIN_CONTRAST


def registration_hashes(fileobj: BinaryIO) -> list[PerceptualHash]:
    """The hashes stored for a registered image: one per entry of VIEWS; none when flat."""
    grey = load_grey(fileobj)
    if is_flat(grey):
        return []
    return [hash_grey(_view(grey, cut), index) for index, cut in enumerate(VIEWS)]


def query_hashes(fileobj: BinaryIO) -> list[PerceptualHash]:
    """The hashes a search looks up: the image and its mirror image; none when flat."""
    grey = load_grey(fileobj, MAX_QUERY_PIXELS)
    if is_flat(grey):
        return []
    return [hash_grey(grey, 0), hash_grey(ImageOps.mirror(grey), 1)]


def hamming(a: int, b: int) -> int:
    """Number of differing bits."""
    return (a ^ b).bit_count()
