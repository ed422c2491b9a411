"""Real-layout C2PA files, made with c2pa-python's Builder and a test PKI (ES256 root and signer),
and the alterations tests apply to them (pixels changed after signing)."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image, ImageDraw

TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
COMPOSITE = ("http://cv.iptc.org/newscodes/digitalsourcetype/"
             "compositeWithTrainedAlgorithmicMedia")
INGREDIENT_ID = "original"  # the edit's c2pa.opened names its parent ingredient by this label
MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


@dataclass(frozen=True)
class FixturePki:
    chain_pem: bytes  # signer first, root last
    key_pem: bytes
    root_pem: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Generator Inc"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@cache
def fixture_pki() -> FixturePki:
    """A root CA and an ES256 signing certificate it issued, as C2PA's profile wants them."""
    now = datetime.now(UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = (x509.CertificateBuilder().subject_name(_name("Test C2PA root"))
            .issuer_name(_name("Test C2PA root")).public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()),
                           critical=False)
            .sign(root_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(_name("Test signer"))
            .issuer_name(root.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                         False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return FixturePki(
        leaf.public_bytes(pem) + root.public_bytes(pem),
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()),
        root.public_bytes(pem))


def plain_image(fmt: str, size: tuple[int, int] = (64, 48),
                colour: tuple[int, int, int] = (200, 40, 30)) -> bytes:
    """An image with structure (not flat: perceptual hashing skips flat images)."""
    image = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(image)
    width, height = size
    draw.rectangle((width // 4, height // 4, width // 2, height - 4), fill=(20, 20, 220))
    draw.ellipse((width // 2, 2, width - 2, height // 2), fill=(240, 240, 40))
    out = io.BytesIO()
    image.save(out, fmt.upper())
    return out.getvalue()


def manifest_definition(generator: str, version: str,
                        actions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"claim_generator_info": [{"name": generator, "version": version}],
            "title": f"made by {generator}",
            "assertions": [{"label": "c2pa.actions", "data": {"actions": actions}}]}


def sign(fmt: str, source: bytes, definition: dict[str, Any],
         ingredient: bytes | None = None) -> bytes:
    """`source` with a manifest from `definition` signed by the test signer; with `ingredient`
    (an earlier signed file), that file's manifest store is kept as its parent."""
    import c2pa

    signer_pem = fixture_pki()
    info = c2pa.C2paSignerInfo(b"es256", signer_pem.chain_pem, signer_pem.key_pem, None)
    mime = MEDIA_TYPES[fmt]
    with c2pa.Signer.from_info(info) as signer, c2pa.Builder(definition) as builder:
        if ingredient is not None:
            builder.add_ingredient({"title": "original", "relationship": "parentOf",
                                    "label": INGREDIENT_ID}, mime,
                                   io.BytesIO(ingredient))
        out = io.BytesIO()
        builder.sign(signer, mime, io.BytesIO(source), out)
    return out.getvalue()


def created_by(fmt: str, generator: str = "Test Generator", version: str = "2.1",
               source: bytes | None = None) -> bytes:
    """A generated image as AI tools sign it: c2pa.created, trainedAlgorithmicMedia."""
    return sign(fmt, source or plain_image(fmt), manifest_definition(generator, version, [
        {"action": "c2pa.created", "digitalSourceType": TRAINED,
         "softwareAgent": {"name": generator, "version": version}}]))


def edited(fmt: str, original: bytes, editor: str = "Test Editor") -> bytes:
    """An edit of `original` (its manifest kept as the ingredient): opened, then composited."""
    return sign(fmt, original, manifest_definition(editor, "1.0", [
        {"action": "c2pa.opened", "parameters": {"ingredientIds": [INGREDIENT_ID]}},
        {"action": "c2pa.edited", "digitalSourceType": COMPOSITE,
         "softwareAgent": {"name": editor}}]), ingredient=original)


def change_one_pixel(fmt: str, data: bytes) -> bytes:
    """`data` with its image data changed after signing, the manifest store left in place."""
    if fmt == "png":
        return _png_pixel(data)
    if fmt == "jpeg":
        start = data.rindex(b"\xff\xda")  # the image's scan: the store's thumbnail has one too
        at = start + 2 + struct.unpack(">H", data[start + 2 : start + 4])[0] + 4
        while data[at] in (0xFF, 0xFE, 0x00) or data[at - 1] == 0xFF:
            at += 1
        return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]
    at = data.find(b"VP8 ") + 8 + 10 + 24  # past the frame header, into the partitions
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def _png_pixel(data: bytes) -> bytes:
    """Inflate the IDAT, change the first pixel's red byte, deflate it again (new CRC)."""
    at = 8
    while True:
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        if kind == b"IDAT":
            break
        at += 12 + length
    raw = bytearray(zlib.decompress(data[at + 8 : at + 8 + length]))
    raw[1] ^= 0x01  # byte 0 of a scanline is its filter type
    body = zlib.compress(bytes(raw))
    chunk = struct.pack(">I", len(body)) + b"IDAT" + body
    chunk += struct.pack(">I", zlib.crc32(b"IDAT" + body))
    return data[:at] + chunk + data[at + 12 + length :]
