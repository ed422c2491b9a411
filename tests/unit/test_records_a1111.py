"""A1111 / Forge / SD.Next infotext in PNG text chunks and JPEG/WebP EXIF UserComment."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from service.evidence.records import read_generation_record
from service.evidence.records.a1111 import parse_infotext
from tests.support.records import (
    itxt_chunk,
    jpeg_with_segments,
    png_texts,
    png_with_chunks,
    png_with_info,
    user_comment_exif,
    webp_with_chunks,
    ztxt_chunk,
)

INFOTEXT = (
    "masterpiece, a lighthouse at dusk, <lora:add_detail:0.6>\n"
    "dramatic clouds, (volumetric light:1.2)\n"
    "Negative prompt: blurry, lowres\n"
    "bad hands\n"
    "Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 1234567890, "
    "Size: 832x1216, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, VAE hash: 235745af8d, "
    "Denoising strength: 0.4, Hires upscale: 2, Hires steps: 15, Hires upscaler: R-ESRGAN 4x+, "
    'Refiner: sd_xl_refiner_1.0 [7440042bbd], Refiner switch at: 0.8, '
    'Lora hashes: "add_detail: 7c6bad76eb54, more_details: 3b8aa1d351ef", '
    'TI hashes: "easynegative: c74b4e810b03", Hypernet hashes: "anime: 6e3e3ee1c0", '
    'Emphasis: "Original, no norm", Version: v1.10.1'
)

EXPECTED = {
    "prompt": "masterpiece, a lighthouse at dusk, <lora:add_detail:0.6>\n"
              "dramatic clouds, (volumetric light:1.2)",
    "negative_prompt": "blurry, lowres\nbad hands",
    "steps": 30,
    "sampler": "DPM++ 2M",
    "cfg_scale": 7.5,
    "seed": 1234567890,
    "width": 832,
    "height": 1216,
    "model_hash": "31e35c80fc",
    "model": "sd_xl_base_1.0",
    "software": "AUTOMATIC1111 v1.10.1",
}


def _assert_fields(fields, expected=EXPECTED):
    for name, value in expected.items():
        assert fields[name] == value, name
    assert set(fields) == set(expected)


def test_png_parameters_text_chunk_as_a1111_writes_it() -> None:
    # modules/images.py: pnginfo.add_text("parameters", infotext) -> a tEXt chunk (Latin-1 text)
    data = png_texts({"parameters": INFOTEXT})
    assert b"tEXtparameters\x00" in data
    record = read_generation_record(io.BytesIO(data))
    assert record.source == "a1111" and record.container == "png"
    _assert_fields(record.fields)
    assert record.raw == {"parameters": INFOTEXT}
    assert record.warnings == ()


def test_details_keep_hashes_hires_and_refiner() -> None:
    details = read_generation_record(io.BytesIO(png_texts({"parameters": INFOTEXT}))).details
    assert details["Lora hashes"] == {"add_detail": "7c6bad76eb54", "more_details": "3b8aa1d351ef"}
    assert details["TI hashes"] == {"easynegative": "c74b4e810b03"}
    assert details["Hypernet hashes"] == {"anime": "6e3e3ee1c0"}
    assert details["Hires upscale"] == "2" and details["Hires steps"] == "15"
    assert details["Hires upscaler"] == "R-ESRGAN 4x+"
    assert details["Refiner"] == "sd_xl_refiner_1.0 [7440042bbd]"
    assert details["Refiner switch at"] == "0.8"
    assert details["Emphasis"] == "Original, no norm"  # quoted value with a comma
    assert details["Schedule type"] == "Karras" and details["Denoising strength"] == "0.4"


def test_non_latin1_prompt_goes_to_itxt_and_is_read() -> None:
    text = ("灯台、夕暮れ, ciel étoilé\n"
            "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512")
    data = png_texts({"parameters": text})  # Pillow's add_text falls back to iTXt
    assert b"iTXtparameters\x00" in data
    record = read_generation_record(io.BytesIO(data))
    assert record.fields["prompt"] == "灯台、夕暮れ, ciel étoilé"
    assert record.fields["sampler"] == "Euler a" and record.fields["seed"] == 5


@pytest.mark.parametrize("compressed", [False, True])
def test_itxt_utf8_both_compression_flags(compressed: bool) -> None:
    info = PngInfo()
    info.add_itxt("parameters", INFOTEXT, zip=compressed)
    record = read_generation_record(io.BytesIO(png_with_info(info)))
    _assert_fields(record.fields)


def test_ztxt_parameters() -> None:
    info = PngInfo()
    info.add_text("parameters", INFOTEXT, zip=True)
    data = png_with_info(info)
    assert b"zTXtparameters\x00\x00" in data
    _assert_fields(read_generation_record(io.BytesIO(data)).fields)


def test_chunk_after_idat_is_found() -> None:
    data = png_with_chunks([ztxt_chunk("parameters", INFOTEXT.encode())], after_idat=True)
    _assert_fields(read_generation_record(io.BytesIO(data)).fields)


def test_template_lines_of_dynamic_prompts() -> None:
    text = (
        "a red fox in snow\nNegative prompt: ugly\n"
        "Steps: 25, Sampler: Euler, CFG scale: 6, Seed: 77, Size: 768x512, Model: dreamshaper_8\n"
        "Template: a {red|blue} fox in snow\nNegative Template: ugly"
    )
    record = read_generation_record(io.BytesIO(png_texts({"parameters": text})))
    assert record.fields["prompt"] == "a red fox in snow"
    assert record.fields["negative_prompt"] == "ugly"
    assert record.fields["steps"] == 25 and record.fields["width"] == 768
    assert record.details["Template"] == "a {red|blue} fox in snow"
    assert record.details["Negative Template"] == "ugly"


def test_forge_and_sdnext_software() -> None:
    forge = INFOTEXT.replace("v1.10.1", "f2.0.1v1.10.1-previous-313-g8a042934")
    assert read_generation_record(io.BytesIO(png_texts({"parameters": forge}))).fields[
        "software"] == "Forge f2.0.1v1.10.1-previous-313-g8a042934"
    sdnext = ("a cat\nSteps: 20, Seed: 9, Sampler: Euler a, CFG scale: 6, Size: 1024x1024, "
              "App: SD.Next, Version: 13b0bba, Operations: txt2img")
    record = read_generation_record(io.BytesIO(png_texts({"parameters": sdnext})))
    assert record.fields["software"] == "SD.Next 13b0bba"
    assert record.details["Operations"] == "txt2img"


def test_prompt_without_negative_and_no_params_line_is_not_infotext() -> None:
    parsed = parse_infotext("just a prompt\nSteps: 20, Sampler: Euler")  # two pairs: prompt text
    assert parsed["prompt"] == "just a prompt\nSteps: 20, Sampler: Euler"


@pytest.mark.parametrize(("encoding", "order"), [
    ("utf_16_be", ">"),  # piexif (A1111, Forge): big-endian whatever the TIFF order
    ("utf_16_le", "<"),  # ExifTool and Windows write UTF-16 in the TIFF's order
    ("utf_16_le", ">"),  # mismatched: the byte pattern decides
    ("ascii", ">"),
])
def test_jpeg_exif_user_comment(encoding: str, order: str) -> None:
    exif = user_comment_exif(INFOTEXT.encode("ascii", "replace").decode(), encoding=encoding,
                             order=order)
    data = jpeg_with_segments([(0xE1, exif)])
    record = read_generation_record(io.BytesIO(data))
    assert record.source == "a1111" and record.container == "jpeg"
    _assert_fields(record.fields)
    assert record.raw == {"UserComment": INFOTEXT}


def test_jpeg_saved_by_pillow_with_piexif_bytes() -> None:
    out = io.BytesIO()
    Image.new("RGB", (16, 16)).save(out, "JPEG", exif=user_comment_exif(INFOTEXT))
    assert b"\xff\xe1" in out.getvalue()[:40]
    _assert_fields(read_generation_record(io.BytesIO(out.getvalue())).fields)


def test_webp_exif_saved_by_pillow() -> None:
    # modules/images.py saves WebP with exif=piexif bytes; Pillow writes them as the EXIF chunk
    out = io.BytesIO()
    Image.new("RGB", (16, 16)).save(out, "WEBP", exif=user_comment_exif(INFOTEXT))
    record = read_generation_record(io.BytesIO(out.getvalue()))
    assert record.container == "webp"
    _assert_fields(record.fields)


def test_webp_exif_chunk_without_exif_header_utf16le() -> None:
    tiff_only = user_comment_exif(INFOTEXT, encoding="utf_16_le", order="<")[6:]
    record = read_generation_record(io.BytesIO(webp_with_chunks([(b"EXIF", tiff_only)])))
    _assert_fields(record.fields)


def test_path_argument(tmp_path) -> None:
    path = tmp_path / "image.png"
    path.write_bytes(png_texts({"parameters": INFOTEXT}))
    _assert_fields(read_generation_record(path).fields)
    _assert_fields(read_generation_record(str(path)).fields)


def test_raw_itxt_chunk_byte_layout() -> None:
    data = png_with_chunks([itxt_chunk("parameters", INFOTEXT.encode("utf-8"))])
    _assert_fields(read_generation_record(io.BytesIO(data)).fields)
