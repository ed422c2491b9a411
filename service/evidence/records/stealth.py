""""Stealth" metadata: a record hidden in the least significant bits of the alpha channel, as
the A1111 extension sd-webui-stealth-pnginfo and NovelAI write it.

Bits run column by column (x outer, y inner), most significant bit first: a 15-byte signature
("stealth_pnginfo" plain, "stealth_pngcomp" gzip), a 32-bit length in bits, then the data:
A1111's infotext, or NovelAI's JSON object of its PNG text chunks. Reading needs the pixels, so
it runs only for PNG and WebP files with alpha that carry no other record, within pixel and
inflate bounds.
"""

from __future__ import annotations

import json
import zlib
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from service.evidence.records.limits import MAX_INFLATED_BYTES, MAX_JSON_TEXT_BYTES

MAX_STEALTH_PIXELS = 4096 * 4096  # pixels decoded to look for a record: upscaled 4K outputs
SIGNATURES = {b"stealth_pnginfo": False, b"stealth_pngcomp": True}  # -> gzip-compressed
_HEAD_BITS = 15 * 8 + 32  # signature and length
NOVELAI_KEYS = ("Title", "Description", "Software", "Source", "Comment", "Generation time")


def read_stealth(fileobj: BinaryIO, warnings: list[str]) -> dict[str, str]:
    """The texts hidden in the alpha channel, by the chunk names they stand for; {} if none."""
    head = _alpha(fileobj, warnings, rows=_HEAD_BITS)  # the first column holds the head
    if head is None or _head(head.T.ravel()[:_HEAD_BITS] & 1) is None:
        return {}
    alpha = _alpha(fileobj, warnings)
    if alpha is None:
        return {}
    bits = (alpha.T & 1).ravel()
    found = _head(bits)
    if found is None:
        return {}
    compressed, length = found
    limit = (MAX_INFLATED_BYTES if compressed else MAX_JSON_TEXT_BYTES) * 8
    if length > min(limit, bits.size - _HEAD_BITS):
        warnings.append("alpha-channel record longer than the image or the limit; not read")
        return {}
    data = np.packbits(bits[_HEAD_BITS : _HEAD_BITS + length]).tobytes()
    if compressed:
        inflater = zlib.decompressobj(wbits=31)  # gzip
        try:
            data = inflater.decompress(data, MAX_INFLATED_BYTES)
        except zlib.error:
            warnings.append("alpha-channel record does not inflate; not read")
            return {}
        if inflater.unconsumed_tail:
            warnings.append(f"alpha-channel record inflates past {MAX_INFLATED_BYTES} bytes")
            return {}
    return _texts(data.decode("utf-8", "replace"))


def _head(bits: NDArray[np.integer[Any]]) -> tuple[bool, int] | None:
    """(compressed, length in bits) from a signature and length, or None without one."""
    if bits.size < _HEAD_BITS:
        return None
    compressed = SIGNATURES.get(np.packbits(bits[:120]).tobytes())
    if compressed is None:
        return None
    return compressed, int.from_bytes(np.packbits(bits[120:_HEAD_BITS]).tobytes(), "big")


def _alpha(fileobj: BinaryIO, warnings: list[str], rows: int = 0) -> NDArray[np.uint8] | None:
    """The alpha channel (only its first `rows` rows decoded, when given: PNG rows come in
    order, so a file without a record costs a fraction of decoding it); None without one."""
    fileobj.seek(0)
    try:
        with Image.open(fileobj, formats=("PNG", "WEBP")) as image:
            if "A" not in image.getbands():
                return None
            width, height = image.size
            if width * height > MAX_STEALTH_PIXELS:
                warnings.append(f"image over {MAX_STEALTH_PIXELS} pixels; alpha channel not read")
                return None
            if 0 < rows < height and image.format == "PNG" and not image.info.get("interlace"):
                image.tile = [tile._replace(extents=(0, 0, width, rows)) for tile in image.tile]
                image._size = (width, rows)  # Pillow decodes only the rows of its size
            return np.asarray(image.getchannel("A"))
    except (OSError, ValueError, SyntaxError, AttributeError, Image.DecompressionBombError):
        return None  # pixels that do not decode hold no record we could read


def _texts(text: str) -> dict[str, str]:
    if text.lstrip().startswith("{"):
        try:
            meta: Any = json.loads(text)
        except (ValueError, RecursionError):
            meta = None
        if isinstance(meta, dict) and any(k in meta for k in NOVELAI_KEYS):
            return {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()
                    if isinstance(k, str)}
    return {"parameters": text}
