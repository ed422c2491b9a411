"""Perceptual hashes: what stays the same when an image is re-encoded, resized or touched up.

Two DCT hashes over the image's luminance, after the same normalisation (EXIF orientation,
uniform borders trimmed, one reduction to a working size that every view is resampled from):

- `phash`: 64 bits, the classic pHash (32x32 grey, 8x8 lowest DCT frequencies, median split).
  Cheap, 8 bytes, and its bands are the search index's keys.
- `dhash256`: 256 bits, the PDQ construction (64x64 grey, 16x16 lowest frequencies, median
  split). Four times the bits over finer detail: it tells near-duplicates from images that only
  share a layout, so it decides what counts as a match.

Crops move the image under the DCT grid, so a registration also stores hashes of a few crops of
itself ("views"); a cropped copy then meets a view cut close to it. A mirrored copy is found by
also searching with the mirror image of the query (search side only, no extra storage), and a
copy branded with a bar or logo along an edge by also searching with the query's own views
that leave that edge out (QUERY_EDGE_VIEWS).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, BinaryIO, cast

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from threadpoolctl import ThreadpoolController

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
# The thumbnail made beside the hashes is first box-reduced by a whole factor, then resampled:
# a third of the CPU of a full Lanczos over the decoded image, no visible loss at 384 px.
SMALL_REDUCING_GAP = 1.0
# Every view is resampled from one grey image reduced to WORK_SIDE..2*WORK_SIDE pixels on its
# short side: twice the 64 cells of the finer hash across a 10% crop's view, and a sixteenth of
# the pixels the views were resized from before (bench/decode.py: CPU per image before/after).
WORK_SIDE = 256
TRIM_SIDE = 2 * WORK_SIDE
# Resampling matrices kept per side length (19 views x 24 rows x side float32: 0.2-1.9 MB each,
# so at most ~60 MB); a burst of uploads from one generator shares a few sizes.
PROJECTIONS_CACHED = 32
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
# A query also looks up its own views that leave out a tenth along one edge (and 5% at the
# two next to it): a bar or logo laid over an edge or corner of a copy is then cut away, and
# the view meets the original's stored view of the same framing. Reposters brand copies so;
# bench/robustness.py (overlay_2, overlay_5) measures what these views recover.
QUERY_EDGE_VIEWS: tuple[int, ...] = tuple(
    index for index, cut in enumerate(VIEWS)
    if sorted(cut) == [0.0, 0.05, 0.05, 0.1] and cut.count(0.05) == 2
)
# Cells of a 3x3 grid, stored after VIEWS (view ids CELL_VIEWS): a logo or badge laid inside a
# picture rather than along an edge (a corner badge inset from the edges, a logo in the middle),
# which no edge view cuts away, spoils the cells it covers while the others still match their
# stored counterparts (bench/robustness.py badge_*: one of up to a ninth of the area fits in one
# cell, wherever it sits, or straddles two). A cell is a ninth of the picture, weak evidence
# alone: a match through cells needs most of them (similarity.CELLS_NEEDED).
GRID = 3
CELLS: tuple[tuple[float, float, float, float], ...] = tuple(
    (column / GRID, row / GRID, 1 - (column + 1) / GRID, 1 - (row + 1) / GRID)
    for row in range(GRID) for column in range(GRID))
CELL_VIEWS: tuple[int, ...] = tuple(range(len(VIEWS), len(VIEWS) + len(CELLS)))
# The order in which a search takes the query's cells to look up (indexes into CELLS): the
# corners first, the middle last, so the few looked up are spread over the picture.
CELL_LOOKUP_ORDER = (0, 8, 2, 6, 1, 7, 3, 5, 4)
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
_COARSE, _FINE = 8, 16  # DCT rows kept per view for each hash: 8 + 16 stacked in one matmul
# The products here are small (a few hundred rows): OpenBLAS's threads would only spin, and on
# a busy machine cost nine times the CPU of one thread (measured: 0.28 vs 0.03 ms a product).
_BLAS = ThreadpoolController()


def _box(size: int, spans: NDArray[np.float64], cells: int) -> NDArray[np.float64]:
    """Area-averaging matrices, one per (start, stop) span in pixels: (views, cells, size).

    Row i of a matrix averages the pixels under [start + i*step, start + (i+1)*step), each
    weighted by how much of it lies inside: a box resample whose cut need not fall on a pixel
    edge, so every view is resampled from the same image (no per-view crop and resize).
    """
    steps = (spans[:, 1] - spans[:, 0]) / cells
    edges = spans[:, :1] + steps[:, None] * np.arange(cells + 1)
    pixel = np.arange(size, dtype=np.float64)
    overlap: NDArray[np.float64] = np.clip(np.minimum(edges[:, 1:, None], pixel + 1)
                                           - np.maximum(edges[:, :-1, None], pixel), 0.0, None)
    weights: NDArray[np.float64] = overlap / overlap.sum(axis=2, keepdims=True)
    return weights


@lru_cache(maxsize=PROJECTIONS_CACHED)
def _projections(size: int, cuts: tuple[tuple[float, float], ...]) -> NDArray[np.float32]:
    """Per view, the DCT rows of both hashes folded with their box resample along one axis of
    `size` pixels, each view keeping (start, stop) of it as fractions: (views, 24, size)."""
    spans = np.array(cuts, dtype=np.float64) * size
    coarse = np.einsum("kc,vcs->vks", _DCT_32_8, _box(size, spans, 32))
    fine = np.einsum("kc,vcs->vks", _DCT_64_16, _box(size, spans, 64))
    projections: NDArray[np.float32] = np.concatenate([coarse, fine], axis=1).astype(np.float32)
    projections.flags.writeable = False  # shared by every later call of the same size
    return projections


def _row_medians(rows: NDArray[Any]) -> NDArray[Any]:
    """np.median(rows, axis=1, keepdims=True), bit for bit, from one partition: np.median's own
    checks and reductions cost four times as much on these small rows (six calls per image,
    a seventh of hashing's CPU in bench/hashing.py)."""
    middle = rows.shape[1] // 2
    kth = (middle,) if rows.shape[1] % 2 else (middle - 1, middle)
    part = np.partition(rows, kth, axis=1)[:, kth[0]:middle + 1]
    if not np.issubdtype(rows.dtype, np.floating):  # np.median of integers is a float64
        part = part.astype(np.float64)
    medians: NDArray[Any] = part[:, :1] if len(kth) == 1 else (part[:, :1] + part[:, 1:]) / 2
    return medians


def _bits(coefficients: NDArray[np.floating[Any]]) -> list[int]:
    """Per view (first axis), the coefficients above that view's median as an integer."""
    flat = coefficients.reshape(len(coefficients), -1)
    above = flat > _row_medians(flat)
    packed = np.packbits(above, axis=1)
    return [int.from_bytes(row.tobytes(), "big") for row in packed]


def hash_views(pixels: NDArray[np.float32],
               cuts: tuple[tuple[float, float, float, float], ...]) -> list[PerceptualHash]:
    """Both hashes of every view (fractions cut from left, top, right, bottom) of a grey array.

    One matrix product over all views' rows, then a small one per view: pHash is the 8x8
    lowest DCT frequencies of the view averaged to 32x32, the 256-bit hash the 16x16 lowest of
    it averaged to 64x64, each split at its median.
    """
    height, width = pixels.shape
    rows = _projections(height, tuple((top, 1 - bottom) for _, top, _, bottom in cuts))
    columns = _projections(width, tuple((left, 1 - right) for left, _, right, _ in cuts))
    views = len(cuts)
    with _BLAS.limit(limits=1, user_api="blas"):
        folded = (rows.reshape(views * (_COARSE + _FINE), height) @ pixels).reshape(
            views, _COARSE + _FINE, width)
    # Batched matmul rather than np.einsum("vkw,vjw->vkj"): the same sums, ten times faster
    # (einsum does not hand this shape to BLAS; 0.37 of the 0.95 ms of 19 views).
    coarse = folded[:, :_COARSE] @ columns[:, :_COARSE].transpose(0, 2, 1)
    fine = folded[:, _COARSE:] @ columns[:, _COARSE:].transpose(0, 2, 1)
    return [PerceptualHash(index, phash, dhash)
            for index, (phash, dhash) in enumerate(zip(_bits(coarse), _bits(fine), strict=True))]


def grey_array(grey: Image.Image) -> NDArray[np.float32]:
    return np.asarray(grey, dtype=np.float32)


def hash_grey(grey: Image.Image, view: int = 0) -> PerceptualHash:
    """Both hashes of a whole greyscale ("L" or "F") image."""
    hashed = hash_views(grey_array(grey), (VIEWS[0],))[0]
    return PerceptualHash(view, hashed.phash, hashed.dhash256)


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


class _Borrowed:
    """The caller's file as Pillow sees it: Pillow 13 closes the file an image was opened from
    when the image is closed, and callers read the same upload again (find-the-original hashes
    it, then compares it)."""

    def __init__(self, fileobj: BinaryIO) -> None:
        self._fileobj = fileobj

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fileobj, name)

    def close(self) -> None:
        """Not the caller's file: it closes it."""


@contextmanager
def decoded(fileobj: BinaryIO, draft_side: int, max_pixels: int = MAX_PIXELS
            ) -> Iterator[Image.Image]:
    """`fileobj` decoded within the bounds, for the block: the header's size is checked before
    anything is decoded (`max_pixels` counts what is decoded, after a JPEG's reduction towards
    `draft_side`), and the decode holds its pixels in the process's budget (decode_gate)."""
    fileobj.seek(0)
    borrowed = cast(BinaryIO, _Borrowed(fileobj))
    with _decoding_errors(), Image.open(borrowed, formats=DECODE_FORMATS) as opened:
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
    """Decode `fileobj` to a normalised grey image at its working size (normalise).

    EXIF orientation is applied and uniform borders are trimmed, so a copy with an added frame
    or a rotated-by-metadata copy hashes like the original. Memory: decoded within the bounds
    (`decoded`), and only the decoded image and its grey copy are ever full-size.
    """
    return _load(fileobj, max_pixels, None)[0]


def _load(fileobj: BinaryIO, max_pixels: int, side: int | None
          ) -> tuple[Image.Image, Image.Image | None]:
    """load_grey's image and, with `side`, an RGB copy of at most `side` px a side from the
    same decode (the hashing worker's stored thumbnail: no second decode)."""
    with decoded(fileobj, DRAFT_SIDE, max_pixels) as opened:
        method = _TRANSPOSE.get(opened.getexif().get(_ORIENTATION, 1))  # after load: PNG
        small = None
        if side is not None:
            small = opened.copy() if opened.mode == "RGB" else opened.convert("RGB")
            small.thumbnail((side, side), Image.Resampling.LANCZOS, reducing_gap=SMALL_REDUCING_GAP)
        grey = _grey_of(opened)
        opened.close()  # the decoded pixels go now, not when the file object does
        if method is not None:
            grey = grey.transpose(method)
            small = small.transpose(method) if small is not None else None
    return normalise(grey), small


def _reduce(grey: Image.Image, side: int) -> Image.Image:
    """An integer reduction (Image.reduce, a plain block average) to side..2*side pixels on the
    short side, and at most 8*side on the long one (a panorama)."""
    factor = min(grey.size) // side
    if factor > 1:
        grey = grey.reduce(factor)
    if max(grey.size) > 8 * side:
        grey.thumbnail((8 * side, 8 * side), Image.Resampling.BOX)
    return grey


def normalise(grey: Image.Image) -> Image.Image:
    """`grey` with its borders trimmed (at TRIM_SIDE: a fine pattern still has its contrast
    there, and would pass for a uniform border once averaged further), then reduced to what
    every view is resampled from (WORK_SIDE)."""
    return _reduce(trim_borders(_reduce(grey, TRIM_SIDE)), WORK_SIDE)


def _grey_of(image: Image.Image) -> Image.Image:
    """The grey ("L") copy of a decoded image, transparent parts over white, made in strips.

    Every step is per pixel, so strips give exactly what converting the whole would; whole,
    the RGBA copies for compositing would take 8 more bytes a pixel.
    """
    width, height = image.size
    transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    rows = max(1, STRIP_PIXELS // width)
    if rows >= height and not transparent:  # one strip: no copy to cut and paste
        return image.convert("L")  # a copy even when already grey: the caller closes `image`
    grey = Image.new("L", (width, height))
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
        first = lines[0]
        if int(first.max()) - int(first.min()) > 2 * BORDER_TOLERANCE:
            return 0  # some pixel is further than the tolerance from any colour: no border
        colour = _row_medians(first[np.newaxis])[0, 0]
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


_FLAT_CELLS = 64  # contrast is judged on the image averaged to this many cells a side
# Where each cell of the GRID starts along a side of that averaged image (CELLS' fractions).
_CELL_STARTS = np.array([round(i / GRID * _FLAT_CELLS) for i in range(GRID)])


@lru_cache(maxsize=PROJECTIONS_CACHED)
def _averaging(size: int) -> NDArray[np.float32]:
    matrix: NDArray[np.float32] = _box(size, np.array([[0.0, float(size)]]),
                                       _FLAT_CELLS)[0].astype(np.float32)
    matrix.flags.writeable = False
    return matrix


def _averaged(pixels: NDArray[np.float32]) -> NDArray[np.floating[Any]]:
    """The image averaged to _FLAT_CELLS x _FLAT_CELLS: what contrast is judged on."""
    height, width = pixels.shape
    with _BLAS.limit(limits=1, user_api="blas"):
        averaged = _averaging(height) @ pixels @ _averaging(width).T
    return averaged


def _contrast(pixels: NDArray[np.float32]) -> float:
    return float(_averaged(pixels).std())


def is_flat(grey: Image.Image) -> bool:
    """True when the image has too little structure to hash (see MIN_CONTRAST)."""
    return _contrast(grey_array(grey)) < MIN_CONTRAST


def registration_hashes(fileobj: BinaryIO) -> list[PerceptualHash]:
    """The hashes stored for a registered image: one per entry of VIEWS, then one per cell
    (CELLS) that is not flat; none when the image is flat."""
    return _stored_hashes(grey_array(load_grey(fileobj)))


def _stored_hashes(pixels: NDArray[np.float32]) -> list[PerceptualHash]:
    averaged = _averaged(pixels)
    if float(averaged.std()) < MIN_CONTRAST:
        return []
    hashes = hash_views(pixels, VIEWS + CELLS)
    return hashes[:len(VIEWS)] + _structured_cells(averaged, hashes[len(VIEWS):])


def _structured_cells(averaged: NDArray[np.floating[Any]], hashes: list[PerceptualHash]
                      ) -> list[PerceptualHash]:
    """The cell hashes (in CELLS order) of the cells that are not flat, judged on their part
    of the image's `averaged` grid: a flat ninth (a patch of sky) has noise for bits, and would
    match every other flat one. The nine deviations come from block sums (np.add.reduceat),
    not one std() call per cell (0.15 ms an image under cProfile, 9 small numpy calls)."""
    starts = _CELL_STARTS
    values = averaged.astype(np.float64)
    sums = np.add.reduceat(np.add.reduceat(values, starts, axis=0), starts, axis=1)
    squares = np.add.reduceat(np.add.reduceat(values * values, starts, axis=0), starts, axis=1)
    sizes = np.outer(*(np.diff(np.append(starts, _FLAT_CELLS)),) * 2)
    deviations = np.sqrt(np.maximum(squares / sizes - (sums / sizes) ** 2, 0.0)).ravel()
    return [h for h, deviation in zip(hashes, deviations, strict=True)
            if deviation >= MIN_CONTRAST]


def registration_hashes_and_picture(fileobj: BinaryIO, side: int
                                    ) -> tuple[list[PerceptualHash], Image.Image]:
    """registration_hashes and the image in RGB at most `side` px a side, from one decode."""
    grey, small = _load(fileobj, MAX_PIXELS, side)
    assert small is not None  # asked for
    return _stored_hashes(grey_array(grey)), small


def query_hashes(fileobj: BinaryIO) -> list[PerceptualHash]:
    """The hashes a search looks up: the image, its mirror image, then its views without one
    edge (QUERY_EDGE_VIEWS), then its cells that are not flat, labelled with the stored view
    they compare with (CELL_VIEWS); none when flat."""
    pixels = grey_array(load_grey(fileobj, MAX_QUERY_PIXELS))
    averaged = _averaged(pixels)
    if float(averaged.std()) < MIN_CONTRAST:
        return []
    edges = tuple(VIEWS[i] for i in QUERY_EDGE_VIEWS)
    own = hash_views(pixels, (VIEWS[0],) + edges + CELLS)
    mirror = hash_views(np.ascontiguousarray(pixels[:, ::-1]), (VIEWS[0],))[0]
    edge_hashes, cell_hashes = own[1:1 + len(edges)], own[1 + len(edges):]
    cells = [PerceptualHash(view, h.phash, h.dhash256)
             for view, h in zip(CELL_VIEWS, cell_hashes, strict=True)]
    return [own[0], PerceptualHash(1, mirror.phash, mirror.dhash256),
            *(PerceptualHash(2 + i, h.phash, h.dhash256) for i, h in enumerate(edge_hashes)),
            *_structured_cells(averaged, cells)]


def is_cell(view: int) -> bool:
    """Whether a (stored or query) view id names a cell of the grid (see CELLS)."""
    return view in CELL_VIEWS


def hamming(a: int, b: int) -> int:
    """Number of differing bits."""
    return (a ^ b).bit_count()
