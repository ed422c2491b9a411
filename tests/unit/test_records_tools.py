"""InvokeAI, NovelAI, Fooocus, XMP/IPTC and C2PA records, in the files those tools write."""

from __future__ import annotations

import io
import json

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from service.evidence.records import read_generation_record
from tests.support.c2pa_files import created_by
from tests.support.records import (
    itxt_chunk,
    jpeg_with_segments,
    png_texts,
    png_with_chunks,
    png_with_info,
    webp_with_chunks,
    xmp_packet,
)

INVOKEAI_METADATA = {
    "generation_mode": "sdxl_txt2img", "positive_prompt": "a koi pond, ukiyo-e",
    "negative_prompt": "photo", "width": 1024, "height": 1024, "seed": 3105467,
    "rand_device": "cpu", "cfg_scale": 6.5, "cfg_rescale_multiplier": 0, "steps": 35,
    "scheduler": "dpmpp_2m_k",
    "model": {"key": "1b2c", "hash": "blake3:8f2e1d", "name": "Juggernaut XL v9",
              "base": "sdxl", "type": "main"},
    "loras": [{"model": {"key": "9a", "hash": "blake3:aa", "name": "ukiyoe_style",
                         "base": "sdxl", "type": "lora"}, "weight": 0.75}],
    "app_version": "4.2.9",
}


def test_invokeai_metadata_chunk() -> None:
    data = png_texts({"invokeai_metadata": json.dumps(INVOKEAI_METADATA),
                      "invokeai_graph": json.dumps({"id": "g", "nodes": {}, "edges": []})})
    record = read_generation_record(io.BytesIO(data))
    assert record.source == "invokeai"
    assert record.fields == {
        "prompt": "a koi pond, ukiyo-e", "negative_prompt": "photo", "seed": 3105467,
        "steps": 35, "cfg_scale": 6.5, "width": 1024, "height": 1024, "sampler": "dpmpp_2m_k",
        "model": "Juggernaut XL v9", "model_hash": "blake3:8f2e1d", "software": "InvokeAI 4.2.9",
    }
    assert record.details["loras"] == [{"name": "ukiyoe_style", "weight": 0.75}]
    assert set(record.raw) == {"invokeai_metadata", "invokeai_graph"}


def test_invokeai_3_model_name_spelling() -> None:
    meta = {**INVOKEAI_METADATA, "model": {"model_name": "stable-diffusion-v1-5",
                                           "base_model": "sd-1", "model_type": "main"},
            "app_version": "3.0.2"}
    record = read_generation_record(io.BytesIO(png_texts({"invokeai_metadata": json.dumps(meta)})))
    assert record.fields["model"] == "stable-diffusion-v1-5"
    assert "model_hash" not in record.fields
    assert record.fields["software"] == "InvokeAI 3.0.2"


def test_invokeai_2_sd_metadata_and_dream() -> None:
    meta = {"model": "stable diffusion", "model_weights": "stable-diffusion-1.5",
            "model_hash": "cc6cb27103417325ff94f52b7a5d2dde45a7515b25c255d8e396c90014281516",
            "app_id": "invoke-ai/InvokeAI", "app_version": "2.3.5",
            "image": {"prompt": [{"prompt": "a red barn [blurry, fog]", "weight": 1.0}],
                      "steps": 50, "cfg_scale": 7.5, "threshold": 0, "perlin": 0,
                      "height": 512, "width": 768, "seed": 2417185, "seamless": False,
                      "hires_fix": False, "type": "txt2img", "postprocessing": None,
                      "sampler": "k_lms", "variations": []}}
    dream = '"a red barn [blurry, fog]" -s 50 -S 2417185 -W 768 -H 512 -C 7.5 -A k_lms'
    data = png_texts({"Dream": dream, "sd-metadata": json.dumps(meta)})
    record = read_generation_record(io.BytesIO(data))
    assert record.source == "invokeai"
    assert record.fields == {
        "prompt": "a red barn", "negative_prompt": "blurry, fog",
        "model": "stable-diffusion-1.5", "model_hash": meta["model_hash"], "seed": 2417185,
        "steps": 50, "cfg_scale": 7.5, "width": 768, "height": 512, "sampler": "k_lms",
        "software": "InvokeAI 2.3.5",
    }
    assert record.raw["Dream"] == dream


NOVELAI_COMMENT = {
    "prompt": "1girl, library, sunlight", "steps": 28, "height": 1216, "width": 832,
    "scale": 5.0, "uncond_scale": 0.0, "cfg_rescale": 0.0, "seed": 2630443711,
    "n_samples": 1, "hide_debug_overlay": False, "noise_schedule": "karras",
    "legacy_v3_extend": False, "reference_information_extracted_multiple": [],
    "reference_strength_multiple": [], "sampler": "k_euler_ancestral",
    "controlnet_strength": 1.0, "controlnet_model": None, "dynamic_thresholding": False,
    "sm": False, "sm_dyn": False, "uc": "lowres, bad anatomy", "request_type":
    "PromptGenerateRequest", "signed_hash": "dGVzdA==",
}


def test_novelai_chunks() -> None:
    texts = {"Title": "NovelAI generated image",
             "Description": "1girl, library, sunlight",
             "Software": "NovelAI", "Source": "Stable Diffusion XL C1E1DE52",
             "Generation time": "6.0124", "Comment": json.dumps(NOVELAI_COMMENT)}
    record = read_generation_record(io.BytesIO(png_texts(texts)))
    assert record.source == "novelai"
    assert record.fields == {
        "prompt": "1girl, library, sunlight", "negative_prompt": "lowres, bad anatomy",
        "seed": 2630443711, "steps": 28, "cfg_scale": 5.0, "sampler": "k_euler_ancestral",
        "width": 832, "height": 1216, "model": "Stable Diffusion XL", "model_hash": "C1E1DE52",
        "software": "NovelAI",
    }
    assert record.details["noise_schedule"] == "karras"
    assert record.details["generation_time"] == "6.0124"
    assert record.raw == texts


FOOOCUS = {
    "adm_guidance": "(1.5, 0.8, 0.3)", "base_model": "juggernautXL_v8Rundiffusion.safetensors",
    "base_model_hash": "aeb7e9e689", "full_negative_prompt": ["(worst quality:2)"],
    "full_prompt": ["a cozy cabin, snowy forest, cinematic"], "guidance_scale": 4.0,
    "metadata_scheme": "fooocus", "negative_prompt": "", "performance": "Speed",
    "prompt": "a cozy cabin", "prompt_expansion": "a cozy cabin, snowy forest",
    "refiner_model": "None", "refiner_switch": 0.5, "resolution": "(1152, 896)",
    "sampler": "dpmpp_2m_sde_gpu", "scheduler": "karras", "seed": "4086522218015836000",
    "sharpness": 2.0, "steps": 30, "styles": "['Fooocus V2', 'Fooocus Enhance']",
    "lora_combined_1": "sd_xl_offset_example-lora_1.0.safetensors : 0.1",
    "vae": "Default (model)", "version": "Fooocus v2.5.5",
}
FOOOCUS_FIELDS = {
    "prompt": "a cozy cabin", "seed": "4086522218015836000", "steps": 30, "cfg_scale": 4.0,
    "sampler": "dpmpp_2m_sde_gpu", "model": "juggernautXL_v8Rundiffusion.safetensors",
    "model_hash": "aeb7e9e689", "software": "Fooocus v2.5.5", "width": 1152, "height": 896,
}


def test_fooocus_png() -> None:
    # modules/private_logger.py: add_text('parameters', json), add_text('fooocus_scheme', ...)
    info = PngInfo()
    info.add_text("parameters", json.dumps(dict(sorted(FOOOCUS.items()))))
    info.add_text("fooocus_scheme", "fooocus")
    record = read_generation_record(io.BytesIO(png_with_info(info)))
    assert record.source == "fooocus"
    assert record.fields == FOOOCUS_FIELDS
    assert record.details["styles"] == "['Fooocus V2', 'Fooocus Enhance']"
    assert record.details["loras"] == {"lora_combined_1": FOOOCUS["lora_combined_1"]}


def test_fooocus_jpeg_exif_as_pillow_writes_it() -> None:
    # get_exif(): exif[0x9286] = metadata; exif[0x0131] = 'Fooocus v...'; exif[0x927C] = scheme
    exif = Image.Exif()
    exif[0x9286] = json.dumps(FOOOCUS)
    exif[0x0131] = "Fooocus v2.5.5"
    exif[0x927C] = "fooocus"
    out = io.BytesIO()
    Image.new("RGB", (16, 16)).save(out, "JPEG", quality=95, exif=exif)
    record = read_generation_record(io.BytesIO(out.getvalue()))
    assert record.source == "fooocus"
    assert record.fields == FOOOCUS_FIELDS
    assert record.raw["Software"] == "Fooocus v2.5.5" and record.raw["MakerNote"] == "fooocus"


def test_fooocus_a1111_scheme() -> None:
    text = ("a cozy cabin\nNegative prompt: blur\nSteps: 30, Sampler: DPM++ 2M SDE Karras, "
            "Seed: 12, Size: 1152x896, CFG scale: 4, Model: juggernautXL, Version: Fooocus v2.5.5")
    record = read_generation_record(io.BytesIO(png_texts({"parameters": text,
                                                          "fooocus_scheme": "a1111"})))
    assert record.source == "fooocus"
    assert record.fields["software"] == "Fooocus v2.5.5" and record.fields["seed"] == 12


FIREFLY_XMP = xmp_packet(
    '<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
    'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
    'xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" '
    'xmp:CreatorTool="Adobe Firefly" '
    'Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/'
    'trainedAlgorithmicMedia" photoshop:Credit="Made with Firefly"/>')
MIDJOURNEY_XMP = xmp_packet(
    '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/">'
    "<Iptc4xmpExt:DigitalSourceType>http://cv.iptc.org/newscodes/digitalsourcetype/"
    "trainedAlgorithmicMedia</Iptc4xmpExt:DigitalSourceType>"
    "<dc:creator><rdf:Seq><rdf:li>someone</rdf:li></rdf:Seq></dc:creator>"
    '<dc:description><rdf:Alt><rdf:li xml:lang="x-default">a paper boat on a puddle '
    "--ar 16:9 --v 6.1 Job ID: 1f9c8a2e-1111-4c2b-9e2d-5b8f0a7c3d21</rdf:li></rdf:Alt>"
    "</dc:description></rdf:Description>")


def test_xmp_attributes_in_jpeg_app1() -> None:
    data = jpeg_with_segments([(0xE1, b"http://ns.adobe.com/xap/1.0/\x00"
                                + FIREFLY_XMP.encode())])
    record = read_generation_record(io.BytesIO(data))
    assert record.source == "xmp"
    assert record.fields == {"software": "Adobe Firefly"}
    assert record.provenance["xmp"] == {
        "creator_tool": "Adobe Firefly", "credit": "Made with Firefly",
        "digital_source_type":
            "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
    }


def test_xmp_elements_in_png_itxt() -> None:
    data = png_with_chunks([itxt_chunk("XML:com.adobe.xmp", MIDJOURNEY_XMP.encode())])
    record = read_generation_record(io.BytesIO(data))
    assert record.source == "midjourney"  # its description names the job: Midjourney's layout
    assert record.fields == {"prompt": "a paper boat on a puddle --ar 16:9 --v 6.1",
                             "software": "Midjourney"}
    assert record.details["job_id"] == "1f9c8a2e-1111-4c2b-9e2d-5b8f0a7c3d21"
    assert record.details["version"] == "v 6.1"
    assert record.provenance["xmp"]["creator"] == "someone"


def test_xmp_in_webp_and_non_ai_xmp_is_no_record() -> None:
    photo = FIREFLY_XMP.replace("trainedAlgorithmicMedia", "digitalCapture")
    record = read_generation_record(io.BytesIO(webp_with_chunks([(b"XMP ", photo.encode())])))
    assert record.source is None and not record.found


def test_xmp_with_entities_is_refused() -> None:
    bomb = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><x:xmpmeta>&b;</x:xmpmeta>')
    record = read_generation_record(io.BytesIO(png_with_chunks(
        [itxt_chunk("XML:com.adobe.xmp", bomb.encode())])))
    assert record.source is None and "XMP with a DTD refused" in record.warnings


def test_plain_images_have_no_record() -> None:
    for fmt in ("PNG", "JPEG", "WEBP", "GIF"):
        out = io.BytesIO()
        Image.new("RGB", (4, 4)).save(out, fmt)
        record = read_generation_record(io.BytesIO(out.getvalue()))
        assert record.source is None and record.fields == {} and record.raw == {}, fmt
        assert record.warnings == (), fmt


def _iim(dataset: int, text: str) -> bytes:
    data = text.encode()
    return b"\x1c\x02" + bytes([dataset]) + len(data).to_bytes(2, "big") + data


def test_iptc_iim_in_jpeg_app13_beside_c2pa() -> None:
    iim = (b"\x1c\x01\x5a\x00\x03\x1b%G"  # 1:90 coded character set: UTF-8
           + _iim(80, "Jane Doe") + _iim(110, "Generated with AI") + _iim(120, "A paper boat")
           + _iim(65, "Midjourney"))
    resource = b"8BIM" + b"\x04\x04" + b"\x00\x00" + len(iim).to_bytes(4, "big") + iim
    resource += b"\x00" * (len(iim) & 1)
    other = b"8BIM" + b"\x04\x0c" + b"\x03abc" + (2).to_bytes(4, "big") + b"\x00\x00"
    app13 = b"Photoshop 3.0\x00" + other + resource
    data = created_by("jpeg", "Midjourney", "7", source=jpeg_with_segments([(0xED, app13)]))
    record = read_generation_record(io.BytesIO(data))
    assert record.source == "c2pa"
    assert record.provenance["iptc"] == {"by_line": "Jane Doe", "credit": "Generated with AI",
                                         "caption": "A paper boat",
                                         "originating_program": "Midjourney"}
    assert record.raw["IPTC"] == record.provenance["iptc"]
    # software: XMP's creator tool, else the claim generator, else IPTC's originating program
    assert record.fields == {"software": "Midjourney 7"}


def test_comfyui_webp_exif_tags_as_save_animated_webp_writes_them() -> None:
    from tests.unit.test_records_comfyui import API_GRAPH, UI_GRAPH

    image = Image.new("RGB", (16, 16))
    exif = image.getexif()
    exif[0x0110] = "prompt:" + json.dumps(API_GRAPH)  # Model
    exif[0x010F] = "workflow:" + json.dumps(UI_GRAPH)  # Make
    out = io.BytesIO()
    image.save(out, "WEBP", exif=exif, lossless=False, quality=80)
    record = read_generation_record(io.BytesIO(out.getvalue()))
    assert record.source == "comfyui" and record.container == "webp"
    assert record.fields["seed"] == 156680208700286 and record.fields["steps"] == 20
    assert record.fields["model"] == "v1-5-pruned-emaonly.safetensors"
    assert record.raw["Model"] == "prompt:" + json.dumps(API_GRAPH)


def test_flat_text_chunks_of_an_unknown_tool() -> None:
    data = png_texts({"prompt": "a watercolor fox", "negative_prompt": "photo", "Steps": "20",
                      "Software": "SomeApp 1.2"})
    record = read_generation_record(io.BytesIO(data))
    assert record.source == "unknown"
    assert record.fields == {"prompt": "a watercolor fox", "negative_prompt": "photo",
                             "steps": 20, "software": "SomeApp 1.2"}
    assert "the embedded generation record is in no format known here; kept raw" in (
        record.warnings)



