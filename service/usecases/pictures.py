"""Pictures for the pages: a receipt's thumbnail for a viewer who may see it, and the side by
side comparison of a repost with the registration it looks like.

Pictures come from the kept upload, or once the hashing worker dropped it (CHRONOSEAL_KEEP_IMAGES
off) from the thumbnail it stored (usecases.picture_source); only for a public receipt or its
owner: a private receipt of another key is not found, exactly like an unknown id.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import BinaryIO

from service.evidence.comparison import difference_map, png_bytes, thumbnail
from service.usecases.authorities import authorities
from service.usecases.picture_source import picture_of
from service.usecases.receipts import readable_receipt
from service.wiring import Services


@dataclass(frozen=True)
class Comparison:
    """Three PNGs as data: URIs (the page embeds them; the query image is never stored)."""

    original: str
    copy: str
    difference: str


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def receipt_thumbnail(services: Services, receipt_id: str, caller: str | None) -> bytes | None:
    """The PNG thumbnail of the receipt's image; None when no picture is kept.
    NotFoundError when `caller` may not read the receipt."""
    receipt, _ = readable_receipt(services, receipt_id, caller)
    data = picture_of(services, receipt)
    return png_bytes(thumbnail(io.BytesIO(data))) if data is not None else None


def compare(services: Services, receipt_id: str, caller: str | None,
            copy: BinaryIO) -> Comparison | None:
    """The registration's image, `copy` and where they differ; None when no picture is kept."""
    receipt, _ = readable_receipt(services, receipt_id, caller)
    data = picture_of(services, receipt)
    if data is None:
        return None
    original, other = thumbnail(io.BytesIO(data)), thumbnail(copy)
    return Comparison(_data_uri(png_bytes(original)), _data_uri(png_bytes(other)),
                      _data_uri(png_bytes(difference_map(original, other))))


def operator_run_tsas(services: Services) -> frozenset[str]:
    """Names of the configured TSAs whose root this service's operator created itself (the
    built-in TSA): their times are the operator's word, not an independent party's."""
    found = authorities(services.settings)  # the exhibit's certificate asks the same question
    return frozenset({"builtin"} | {name for name, a in found.items() if a.operator_run})
