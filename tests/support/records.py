"""Image files laid out as generating tools write them, built byte by byte or with Pillow.

PNG text goes through Pillow's PngInfo (what A1111, ComfyUI, InvokeAI, Fooocus and NovelAI call)
or raw chunks; EXIF is a TIFF block written here (piexif's layout: big-endian, IFD0 pointing to
the Exif IFD); JPEG segments and WebP chunks are spliced in as the writers place them.
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image
from PIL.PngImagePlugin import PngInfo

ExifEntry = tuple[int, int, bytes]  # tag, TIFF type, value bytes


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_info(info: PngInfo, size: tuple[int, int] = (8, 8)) -> bytes:
    """What `image.save(fp, "PNG", pnginfo=info)` writes, as the tools do."""
    out = io.BytesIO()
    Image.new("RGB", size, (40, 80, 120)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def png_texts(texts: dict[str, str], size: tuple[int, int] = (8, 8)) -> bytes:
    info = PngInfo()
    for key, value in texts.items():
        info.add_text(key, value)
    return png_with_info(info, size)


def png_with_chunks(chunks: list[tuple[bytes, bytes]], *, after_idat: bool = False) -> bytes:
    """A Pillow PNG with raw chunks spliced in after IHDR (or before IEND)."""
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 0, 0)).save(out, "PNG")
    data = out.getvalue()
    extra = b"".join(png_chunk(kind, body) for kind, body in chunks)
    at = len(data) - 12 if after_idat else 8 + 25  # IEND is 12 bytes; IHDR chunk is 25
    return data[:at] + extra + data[at:]


def text_chunk(keyword: str, text: str) -> tuple[bytes, bytes]:
    return b"tEXt", keyword.encode("latin-1") + b"\x00" + text.encode("latin-1")


def ztxt_chunk(keyword: str, text: bytes) -> tuple[bytes, bytes]:
    return b"zTXt", keyword.encode("latin-1") + b"\x00\x00" + zlib.compress(text)


def itxt_chunk(keyword: str, text: bytes, *, compressed: bool = False) -> tuple[bytes, bytes]:
    body = zlib.compress(text) if compressed else text
    return b"iTXt", (keyword.encode("latin-1") + b"\x00" + bytes([int(compressed), 0])
                     + b"\x00\x00" + body)


def tiff(ifd0: list[ExifEntry], exif_ifd: list[ExifEntry] | None = None,
         order: str = ">") -> bytes:
    """A TIFF block: IFD0 (plus an Exif IFD it points to), values after each IFD."""
    head = (b"MM\x00\x2a" if order == ">" else b"II\x2a\x00") + struct.pack(order + "I", 8)

    def ifd(entries: list[ExifEntry], offset: int, pointer: int | None) -> bytes:
        entries = list(entries)
        if pointer is not None:
            entries.append((0x8769, 4, struct.pack(order + "I", pointer)))
        entries.sort()
        table_size = 2 + 12 * len(entries) + 4
        table, data = struct.pack(order + "H", len(entries)), b""
        for tag, kind, value in entries:
            count = len(value) // {3: 2, 4: 4}.get(kind, 1)
            if len(value) <= 4:
                field = value.ljust(4, b"\x00")
            else:
                field = struct.pack(order + "I", offset + table_size + len(data))
                data += value + (b"\x00" if len(value) % 2 else b"")
            table += struct.pack(order + "HHI", tag, kind, count) + field
        return table + struct.pack(order + "I", 0) + data

    if exif_ifd is None:
        return head + ifd(ifd0, 8, None)
    first_size = len(ifd(ifd0, 8, 0))
    return head + ifd(ifd0, 8, 8 + first_size) + ifd(exif_ifd, 8 + first_size, None)


def user_comment_exif(text: str, *, encoding: str = "utf_16_be", order: str = ">") -> bytes:
    """piexif.dump({"Exif": {UserComment: piexif.helper.UserComment.dump(text, "unicode")}})."""
    if encoding == "ascii":
        value = b"ASCII\x00\x00\x00" + text.encode("ascii")
    else:
        value = b"UNICODE\x00" + text.encode(encoding)
    return b"Exif\x00\x00" + tiff([], [(0x9286, 7, value)], order)


def jpeg_with_segments(segments: list[tuple[int, bytes]]) -> bytes:
    """A Pillow JPEG with APPn segments inserted right after SOI (piexif.insert's place)."""
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(out, "JPEG")
    data = out.getvalue()
    extra = b"".join(b"\xff" + bytes([marker]) + struct.pack(">H", len(body) + 2) + body
                     for marker, body in segments)
    return data[:2] + extra + data[2:]


def webp_with_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    """An extended (VP8X) WebP with extra RIFF chunks after the image data."""
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out, "WEBP", lossless=True, exif=b"Exif\x00\x00")
    data = out.getvalue()
    body = data[12:]
    for kind, chunk in chunks:
        body += kind + struct.pack("<I", len(chunk)) + chunk + (b"\x00" if len(chunk) % 2 else b"")
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def xmp_packet(description_xml: str) -> str:
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
            'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            f"{description_xml}</rdf:RDF></x:xmpmeta>"
            '<?xpacket end="w"?>')


def jumbf_box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


C2PA_UUID = bytes.fromhex("6332706100110010800000aa00389b71")  # "c2pa" + the JUMBF suffix


def jumbf_superbox(label: str, *children: bytes) -> bytes:
    """A jumb box: its jumd (type UUID, toggles 0x03: requestable, labelled), then children."""
    description = jumbf_box(b"jumd", C2PA_UUID + b"\x03" + label.encode() + b"\x00")
    return jumbf_box(b"jumb", description + b"".join(children))


def c2pa_manifest(label: str, claim_cbor: bytes, actions_cbor: bytes | None = None,
                  claim_label: str = "c2pa.claim") -> bytes:
    """One manifest superbox: assertion store (with c2pa.actions when given), claim, signature."""
    assertions = []
    if actions_cbor is not None:
        assertions.append(jumbf_superbox("c2pa.actions", jumbf_box(b"cbor", actions_cbor)))
    return jumbf_superbox(label, jumbf_superbox("c2pa.assertions", *assertions),
                          jumbf_superbox(claim_label, jumbf_box(b"cbor", claim_cbor)),
                          jumbf_superbox("c2pa.signature", jumbf_box(b"cbor", b"\xa0")))


def c2pa_store(claim_cbor: bytes, *, earlier: list[bytes] = ()) -> bytes:  # type: ignore[assignment]
    """The store as c2pa-rs writes it: superbox "c2pa", ingredients' manifests first, the
    active manifest (holding `claim_cbor`) last."""
    manifests = [c2pa_manifest(f"urn:uuid:{i:04d}", claim) for i, claim in enumerate(earlier)]
    manifests.append(c2pa_manifest("urn:uuid:active", claim_cbor))
    return jumbf_superbox("c2pa", *manifests)


def stealth_png(payload: bytes, *, compressed: bool = True, size: tuple[int, int] = (64, 64),
                texts: dict[str, str] | None = None) -> bytes:
    """An RGBA PNG carrying `payload` in the alpha LSBs as sd-webui-stealth-pnginfo writes it:
    column by column (x outer, y inner), signature, 32-bit bit length, then the (gzip) data."""
    import gzip

    import numpy as np

    data = gzip.compress(payload) if compressed else payload
    signature = b"stealth_pngcomp" if compressed else b"stealth_pnginfo"
    bits = np.unpackbits(np.frombuffer(
        signature + (len(data) * 8).to_bytes(4, "big") + data, dtype=np.uint8))
    width, height = size
    assert bits.size <= width * height, "image too small for the payload"
    pixels = np.full((height, width, 4), 200, dtype=np.uint8)
    pixels[..., 3] = 255
    column_major = pixels[..., 3].T.copy().ravel()  # index = x * height + y
    column_major[: bits.size] = (column_major[: bits.size] & 0xFE) | bits
    pixels[..., 3] = column_major.reshape(width, height).T
    info = PngInfo()
    for key, value in (texts or {}).items():
        info.add_text(key, value)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(out, "PNG", pnginfo=info)
    return out.getvalue()
