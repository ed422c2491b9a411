"""Embedded: what a container walk found, with the per-file work budget every reader spends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, BinaryIO

from service.evidence.records.limits import MAX_TOTAL_TEXT_BYTES, RAW_HEAD_CHARS


@dataclass
class Embedded:
    """Metadata found in a file: texts by keyword or EXIF tag name, XMP, and C2PA bytes."""

    container: str | None = None
    texts: dict[str, str] = field(default_factory=dict)
    xmp: str | None = None
    c2pa: bytes | None = None
    iptc: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, dict[str, Any]] = field(default_factory=dict)  # too large to read
    warnings: list[str] = field(default_factory=list)
    alpha: bool = False  # the image has an alpha channel (PNG colour type 4/6, WebP flag)
    work_left: int = MAX_TOTAL_TEXT_BYTES  # metadata bytes still to read or inflate

    def spend(self, size: int) -> bool:
        """Take `size` bytes of the work budget; False (warned once) when it is spent."""
        if size > self.work_left:
            if self.work_left >= 0:
                self.warnings.append(f"metadata beyond {MAX_TOTAL_TEXT_BYTES} bytes not read")
            self.work_left = -1
            return False
        self.work_left -= size
        return True

    def add_text(self, key: str, text: str) -> None:
        if key in self.texts:
            self.warnings.append(f"second {key!r} text ignored; the first is kept")
            return
        self.texts[key] = text

    def skip(self, key: str, size: int, head: bytes = b"") -> None:
        """Note a chunk too large to read: its size and first RAW_HEAD_CHARS bytes stay in raw."""
        self.skipped[key] = {"truncated": True, "bytes": size,
                             "head": head[:RAW_HEAD_CHARS].decode("utf-8", "replace")}
        self.warnings.append(f"{key!r} metadata of {size} bytes is over the limit; skipped")


def read_exact(fileobj: BinaryIO, size: int) -> bytes | None:
    data = fileobj.read(size)
    return data if len(data) == size else None
