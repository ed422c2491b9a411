"""Hash uploads in bounded memory, and say what kind of image the bytes are.

The image digest is SHA-256 over the exact bytes received, nothing decoded or re-encoded: that is
what a relying party can recompute with `sha256sum` on the file they hold.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from PIL import Image

from service.errors import UploadTooLargeError

CHUNK_SIZE = 64 * 1024  # one read at a time: memory stays at this size whatever the upload's size
HEAD_SIZE = 512  # kept for sniffing: magic numbers and an ftyp box's brand list fit in this
# Only these Pillow decoders may look at uploads: the image formats we register, and no exotic
# parsers (EPS, FITS, PSD...) that widen the attack surface for nothing.
PROBE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "AVIF", "TIFF", "BMP")

UNDECODABLE = "not a decodable image; registered by its bytes"
DAMAGED = "image data failed Pillow's integrity check; registered by its bytes"
BOMB = "image exceeds the decompression-bomb pixel limit; not decoded, registered by its bytes"
LARGE = "image has more pixels than the decompression-bomb warning limit"


class Readable(Protocol):
    """Anything with `read(n)`: a file, Werkzeug's upload stream, a socket file."""

    def read(self, n: int = ..., /) -> bytes: ...


@dataclass(frozen=True)
class HashedUpload:
    """The digest and size of an upload, and its first HEAD_SIZE bytes for sniffing."""

    sha256: bytes
    size: int
    head: bytes


def hash_stream(
    stream: Readable,
    *,
    limit: int,
    chunk_size: int = CHUNK_SIZE,
    spool: BinaryIO | None = None,
) -> HashedUpload:
    """SHA-256 `stream` chunk by chunk, raising UploadTooLargeError past `limit` bytes.

    At most `limit + 1` bytes are read, so an oversized upload costs no more than a full one.
    With `spool` (e.g. a SpooledTemporaryFile) every byte is also written there and the spool is
    rewound at the end, so image probing can read the same bytes again.
    """
    if limit < 0 or chunk_size < 1:
        raise ValueError("limit must be >= 0 and chunk_size >= 1")
    digest = hashlib.sha256()
    head = bytearray()
    size = 0
    while True:
        # Ask for no more than one byte past the limit: that byte is the proof of excess.
        chunk = stream.read(min(chunk_size, limit - size + 1))
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise UploadTooLargeError(limit)
        digest.update(chunk)
        if len(head) < HEAD_SIZE:
            head += chunk[: HEAD_SIZE - len(head)]
        if spool is not None:
            spool.write(chunk)
    if spool is not None:
        spool.flush()
        spool.seek(0)
    return HashedUpload(sha256=digest.digest(), size=size, head=bytes(head))


# ISO BMFF (HEIF family) brands: the ftyp box names the major brand and compatible brands.
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"})
_HEIF_BRANDS = frozenset({b"mif1", b"msf1"})
# A BMP's DIB header size says which header version follows; other values mean "not a BMP".
_BMP_DIB_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})


def sniff_media_type(head: bytes) -> str | None:
    """The image media type from magic bytes, or None; the client's Content-Type is not trusted."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):  # classic and BigTIFF
        return "image/tiff"
    if head[:2] == b"BM" and len(head) >= 18 and _dib_size(head) in _BMP_DIB_SIZES:
        return "image/bmp"
    if head[4:8] == b"ftyp":
        return _sniff_ftyp(head)
    return None


def _dib_size(head: bytes) -> int:
    return int.from_bytes(head[14:18], "little")


def _sniff_ftyp(head: bytes) -> str | None:
    box_size = int.from_bytes(head[:4], "big")
    end = min(box_size, len(head))
    major = {head[8:12]}
    compatible = {head[i : i + 4] for i in range(16, end - 3, 4)}
    # The major brand decides; compatible brands count only when the major one is generic.
    for brands in (major, compatible):
        if brands & _AVIF_BRANDS:
            return "image/avif"
        if brands & _HEIC_BRANDS:
            return "image/heic"
    if (major | compatible) & _HEIF_BRANDS:
        return "image/heif"
    return None


@dataclass(frozen=True)
class ImageProbe:
    """What the image headers say; warnings explain anything that could not be read."""

    width: int | None
    height: int | None
    format: str | None
    warnings: tuple[str, ...] = ()


def probe_image(fileobj: BinaryIO) -> ImageProbe:
    """Read the image's headers with Pillow and run its `verify()`; never raises for bad bytes.

    A receipt is about bytes, so an image Pillow cannot read is still registered; the probe only
    reports why. Pillow's decompression-bomb guard (Image.MAX_IMAGE_PIXELS) stays on: headers
    are read, pixels are never decoded. The file is rewound before and after.
    """
    fileobj.seek(0)
    notes: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", Image.DecompressionBombWarning)
            with Image.open(fileobj, formats=PROBE_FORMATS) as image:
                width, height = image.size
                fmt = image.format
                try:
                    image.verify()
                except Exception:  # Pillow raises many types for damaged data; all mean the same
                    notes.append(DAMAGED)
        if any(issubclass(w.category, Image.DecompressionBombWarning) for w in caught):
            notes.insert(0, LARGE)
        return ImageProbe(width, height, fmt, tuple(notes))
    except Image.DecompressionBombError:
        return ImageProbe(None, None, None, (BOMB,))
    except Exception:  # any parser failure on untrusted bytes is "undecodable", never a 500
        return ImageProbe(None, None, None, (UNDECODABLE,))
    finally:
        fileobj.seek(0)
