"""sniff_media_type per format, and probe_image's warnings instead of exceptions."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from service.evidence.hashing import (
    BOMB,
    DAMAGED,
    LARGE,
    UNDECODABLE,
    probe_image,
    sniff_media_type,
)


def encode(fmt: str, size: tuple[int, int] = (6, 4), **params: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 90)).save(out, format=fmt, **params)
    return out.getvalue()


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\x00\x00\x00\x08free"


def png_with_size(width: int, height: int) -> bytes:
    """A well-formed PNG header claiming width x height; pixels are never decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("fmt", "media_type"),
    [
        ("PNG", "image/png"),
        ("JPEG", "image/jpeg"),
        ("WEBP", "image/webp"),
        ("GIF", "image/gif"),
        ("TIFF", "image/tiff"),
        ("BMP", "image/bmp"),
        ("AVIF", "image/avif"),
    ],
)
def test_real_encodings_are_sniffed_and_probed(fmt: str, media_type: str) -> None:
    data = encode(fmt)
    assert sniff_media_type(data[:512]) == media_type
    probe = probe_image(io.BytesIO(data))
    assert (probe.width, probe.height, probe.format, probe.warnings) == (6, 4, fmt, ())


@pytest.mark.parametrize(
    ("head", "media_type"),
    [
        (ftyp(b"avif", b"mif1", b"miaf"), "image/avif"),
        (ftyp(b"avis", b"msf1"), "image/avif"),
        (ftyp(b"mif1", b"miaf", b"avif"), "image/avif"),  # generic major, AVIF compatible
        (ftyp(b"heic", b"mif1", b"heic"), "image/heic"),
        (ftyp(b"heix", b"mif1"), "image/heic"),
        (ftyp(b"mif1", b"heic"), "image/heic"),
        (ftyp(b"mif1", b"miaf"), "image/heif"),
        (ftyp(b"isom", b"mp41"), None),  # an MP4 video is not an image
        (b"MM\x00*\x00\x00\x00\x08", "image/tiff"),
        (b"II+\x00\x08\x00\x00\x00", "image/tiff"),  # BigTIFF
        (b"BM" + b"\x00" * 12 + b"\x28\x00\x00\x00", "image/bmp"),
        (b"BMx is not a bitmap at all", None),  # "BM" alone is too weak a signal
        (b"GIF87a\x01\x00", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", None),  # RIFF but audio
        (b"%PDF-1.7", None),
        (b"", None),
    ],
)
def test_sniffing_from_magic_bytes(head: bytes, media_type: str | None) -> None:
    assert sniff_media_type(head) == media_type


def test_heic_that_pillow_cannot_decode_is_registered_with_a_warning() -> None:
    probe = probe_image(io.BytesIO(ftyp(b"heic", b"mif1") + b"\x00" * 100))
    assert probe.warnings == (UNDECODABLE,)
    assert probe.width is None


@pytest.mark.parametrize(
    "data", [b"", b"hello, not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, b"%!PS-Adobe-3.0"]
)
def test_bytes_that_are_no_image_give_a_warning_not_an_exception(data: bytes) -> None:
    probe = probe_image(io.BytesIO(data))
    assert (probe.width, probe.height, probe.format) == (None, None, None)
    assert probe.warnings == (UNDECODABLE,)


def test_decompression_bomb_is_a_warning_not_an_exception() -> None:
    assert Image.MAX_IMAGE_PIXELS is not None  # the guard is on (Pillow's default)
    probe = probe_image(io.BytesIO(png_with_size(100_000, 100_000)))  # 10^10 pixels
    assert probe.warnings == (BOMB,)
    assert probe.width is None


def test_image_over_the_warning_limit_keeps_its_size_and_warns() -> None:
    side = int((Image.MAX_IMAGE_PIXELS * 1.5) ** 0.5)  # above the warning, below the error
    probe = probe_image(io.BytesIO(png_with_size(side, side)))
    assert (probe.width, probe.height, probe.format) == (side, side, "PNG")
    assert probe.warnings == (LARGE,)


def test_truncated_image_keeps_its_header_facts_and_warns() -> None:
    data = encode("PNG", (64, 64))
    damaged = data[:-20] + bytes(20)  # IEND and part of IDAT overwritten: CRC no longer matches
    probe = probe_image(io.BytesIO(damaged))
    assert (probe.width, probe.height, probe.format) == (64, 64, "PNG")
    assert probe.warnings == (DAMAGED,)


def test_exotic_formats_are_not_handed_to_pillow() -> None:
    data = encode("PPM")
    assert probe_image(io.BytesIO(data)).warnings == (UNDECODABLE,)


def test_probe_rewinds_the_file() -> None:
    fileobj = io.BytesIO(encode("PNG"))
    fileobj.seek(5)
    probe_image(fileobj)
    assert fileobj.tell() == 0
