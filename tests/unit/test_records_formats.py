"""Formats read through the registry: InvokeAI 2.x, SwarmUI, Easy Diffusion, Draw Things,
Midjourney, Civitai, stealth alpha records; each file built as its tool writes it."""

from __future__ import annotations

import io
import json
import time

from PIL import Image

from service.evidence.records import read_generation_record
from service.evidence.records.registry import READERS
from service.evidence.records.stealth import MAX_STEALTH_PIXELS
from tests.support.records import (
    itxt_chunk,
    png_texts,
    png_with_chunks,
    stealth_png,
    user_comment_exif,
    webp_with_chunks,
    xmp_packet,
)

A1111_TEXT = ("a watercolor fox\nNegative prompt: lowres\nSteps: 24, Sampler: DPM++ 2M, "
              "Schedule type: Karras, CFG scale: 6.5, Seed: 3141592, Size: 512x640, "
              "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.10.1")


def read(data: bytes):  # type: ignore[no-untyped-def]
    return read_generation_record(io.BytesIO(data))


def test_readers_are_registered_once_by_priority() -> None:
    names = [r.name for r in READERS]
    assert len(names) == len(set(names))
    assert [r.priority for r in READERS] == sorted((r.priority for r in READERS), reverse=True)
    assert READERS[0].name == "tensorart" and READERS[-1].name == "c2pa"


def test_invokeai_2_sd_metadata_with_an_images_list() -> None:
    meta = {"model": "stable diffusion", "model_id": "stable-diffusion-1.4",
            "model_hash": "fe4efff1e174c627256e44ec2991ba279b3816e364b49f9be2abc0b3ff3f8556",
            "app_id": "lstein/stable-diffusion", "app_version": "v1.15",
            "images": [{"prompt": [{"prompt": "banana sushi", "weight": 1.0}], "steps": 50,
                        "cfg_scale": 7.5, "height": 512, "width": 512, "seed": 2028635318,
                        "type": "txt2img", "postprocessing": None, "sampler": "k_lms",
                        "variations": []}]}
    record = read(png_texts({"sd-metadata": json.dumps(meta)}))
    assert record.fields == {
        "prompt": "banana sushi", "model": "stable-diffusion-1.4",
        "model_hash": meta["model_hash"], "seed": 2028635318, "steps": 50, "cfg_scale": 7.5,
        "width": 512, "height": 512, "sampler": "k_lms", "software": "InvokeAI v1.15",
    }
    two = {**meta, "images": meta["images"] * 2}  # which image is this one: unknown
    assert set(read(png_texts({"sd-metadata": json.dumps(two)})).fields) <= {"model",
                                                                             "model_hash",
                                                                             "software"}


def test_invokeai_2_dream_chunk_alone() -> None:
    dream = '"banana sushi [burnt]" -s 50 -S 2028635318 -W 512 -H 512 -C 7.5 -A k_lms -f 0.75'
    record = read(png_texts({"Dream": dream}))
    assert record.source == "invokeai"
    assert record.fields == {
        "prompt": "banana sushi", "negative_prompt": "burnt", "seed": 2028635318, "steps": 50,
        "cfg_scale": 7.5, "width": 512, "height": 512, "sampler": "k_lms",
        "software": "InvokeAI",
    }
    assert record.details["strength"] == "0.75"
    for text in ('"unbalanced -s 50', "-s 50 -S 1", "just a title"):
        assert read(png_texts({"Dream": text})).source is None, text


def test_swarmui_parameters_json() -> None:
    params = {"sui_image_params": {
        "prompt": "a headshot photograph", "model": "Flux/flux1-dev-fp8", "seed": 2042464333,
        "steps": 25, "cfgscale": 1.0, "aspectratio": "Custom", "width": 512, "height": 768,
        "sampler": "euler", "scheduler": "normal", "vae": "ae.sft", "negativeprompt": "",
        "swarm_version": "0.9.1.1", "date": "2024-08-07"},
        "sui_extra_data": {"date": "2024-08-07", "prep_time": "1.2 sec"}}
    record = read(png_texts({"parameters": json.dumps(params)}))
    assert record.source == "swarmui"
    assert record.fields == {
        "prompt": "a headshot photograph", "model": "Flux/flux1-dev-fp8", "seed": 2042464333,
        "steps": 25, "cfg_scale": 1.0, "width": 512, "height": 768, "sampler": "euler",
        "software": "SwarmUI 0.9.1.1",
    }
    assert record.details["scheduler"] == "normal"
    jpeg = io.BytesIO()
    exif = Image.Exif()
    exif[0x9286] = json.dumps(params)
    Image.new("RGB", (8, 8)).save(jpeg, "JPEG", exif=exif)
    assert read(jpeg.getvalue()).fields["seed"] == 2042464333


def test_easy_diffusion_chunks_by_key_and_by_label() -> None:
    by_key = {"prompt": "a red bicycle", "negative_prompt": "people", "seed": "42",
              "use_stable_diffusion_model": "sd-v1-4", "sampler_name": "euler_a",
              "width": "512", "height": "512", "num_inference_steps": "25",
              "guidance_scale": "7.5", "clip_skip": "False", "use_vae_model": ""}
    labels = {"Prompt": "a red bicycle", "Negative Prompt": "people", "Seed": "42",
              "Stable Diffusion model": "sd-v1-4", "Sampler": "euler_a", "Width": "512",
              "Height": "512", "Steps": "25", "Guidance Scale": "7.5"}
    for texts in (by_key, labels):
        record = read(png_texts(texts))
        assert record.source == "easydiffusion", texts
        assert record.fields == {
            "prompt": "a red bicycle", "negative_prompt": "people", "seed": 42,
            "model": "sd-v1-4", "sampler": "euler_a", "width": 512, "height": 512,
            "steps": 25, "cfg_scale": 7.5, "software": "Easy Diffusion",
        }
        assert record.warnings == ()


DRAW_THINGS_JSON = {"c": "a red cube & a <blue> sphere", "uc": "blurry", "model":
                    "sd_xl_base_1.0_f16.ckpt", "sampler": "DPM++ 2M Karras", "scale": 4.5,
                    "seed": 2441935286, "size": "1024x768", "steps": 30, "strength": 1,
                    "v2": {"loras": [{"file": "detail.ckpt", "weight": 0.8}]}}


def _draw_things_xmp(comment: str | None) -> str:
    description = ("a red cube &amp; a &lt;blue&gt; sphere&#xA;-blurry&#xA;Steps: 30, Sampler: "
                   "DPM++ 2M Karras, Guidance Scale: 4.5, Seed: 2441935286, Size: 1024x768, "
                   "Model: sd_xl_base_1.0_f16.ckpt, Strength: 1.0")
    user = ("" if comment is None else '<exif:UserComment><rdf:Alt><rdf:li xml:lang="x-default">'
            f"{comment}</rdf:li></rdf:Alt></exif:UserComment>")
    return xmp_packet(
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:exif="http://ns.adobe.com/exif/1.0/">'
        f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{description}</rdf:li>'
        "</rdf:Alt></dc:description><xmp:CreatorTool>Draw Things</xmp:CreatorTool>"
        f"{user}</rdf:Description>")


def test_draw_things_xmp_json_and_description() -> None:
    comment = json.dumps(DRAW_THINGS_JSON).replace("&", "&amp;").replace("<", "&lt;").replace(
        ">", "&gt;")
    expected = {"prompt": "a red cube & a <blue> sphere", "negative_prompt": "blurry",
                "model": "sd_xl_base_1.0_f16.ckpt", "sampler": "DPM++ 2M Karras",
                "cfg_scale": 4.5, "seed": 2441935286, "width": 1024, "height": 768,
                "steps": 30, "software": "Draw Things"}
    for xmp in (_draw_things_xmp(comment), _draw_things_xmp(None)):  # without the JSON too
        record = read(png_with_chunks([itxt_chunk("XML:com.adobe.xmp", xmp.encode())]))
        assert record.source == "drawthings"
        assert record.fields == expected


def test_midjourney_png_description_text() -> None:
    texts = {"Author": "u1234", "Description": "a koi pond at night --ar 3:2 --seed 777 --v 6.1 "
             "Job ID: 0d8a5f42-9c3e-4b7a-8f00-1e2d3c4b5a69", "Creation Time": "2024-11-02"}
    record = read(png_texts(texts))
    assert record.source == "midjourney"
    assert record.fields == {"prompt": "a koi pond at night --ar 3:2 --seed 777 --v 6.1",
                             "seed": 777, "software": "Midjourney"}
    assert record.details == {"job_id": "0d8a5f42-9c3e-4b7a-8f00-1e2d3c4b5a69",
                              "version": "v 6.1", "author": "u1234"}


def test_civitai_infotext_with_bare_json_values() -> None:
    resources = [{"type": "checkpoint", "modelVersionId": 290640, "modelName":
                  "Pony Diffusion V6 XL", "modelVersionName": "V6 (start with this one)"},
                 {"type": "lora", "weight": 0.8, "modelVersionId": 1, "modelName": "a, b"}]
    text = ("score_9, a castle\nNegative prompt: score_1\nSteps: 25, CFG scale: 7, Sampler: "
            "DPM++ 2M Karras, Seed: 1537, Size: 832x1216, Clip skip: 2, Created Date: "
            f"2024-06-01T0000:00.0000000Z, Civitai resources: {json.dumps(resources)}, "
            'Civitai metadata: {"remixOfId": 5}')
    exif = user_comment_exif(text)
    record = read(webp_with_chunks([(b"EXIF", exif)]))
    assert record.source == "a1111"
    assert record.fields == {"prompt": "score_9, a castle", "negative_prompt": "score_1",
                             "steps": 25, "cfg_scale": 7, "sampler": "DPM++ 2M Karras",
                             "seed": 1537, "width": 832, "height": 1216,
                             "model": "Pony Diffusion V6 XL", "software": "Civitai"}
    assert record.details["Civitai resources"] == resources
    assert record.details["Civitai metadata"] == {"remixOfId": 5}


def test_a1111_infotext_in_xmp_user_comment() -> None:
    xmp = xmp_packet('<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/">'
                     '<exif:UserComment><rdf:Alt><rdf:li xml:lang="x-default">'
                     f"{A1111_TEXT}</rdf:li></rdf:Alt></exif:UserComment></rdf:Description>")
    record = read(webp_with_chunks([(b"XMP ", xmp.encode())]))
    assert record.source == "a1111" and record.fields["seed"] == 3141592
    assert record.fields["software"] == "AUTOMATIC1111 v1.10.1"


def test_stealth_a1111_plain_and_compressed() -> None:
    # 64x64: the head runs over several columns; 200x300: the first column holds it, and only
    # its rows are decoded before the whole image is.
    for compressed, size in ((False, (64, 64)), (True, (64, 64)), (True, (200, 300))):
        record = read(stealth_png(A1111_TEXT.encode(), compressed=compressed, size=size))
        assert record.source == "a1111", compressed
        assert record.fields["prompt"] == "a watercolor fox"
        assert record.fields["seed"] == 3141592 and record.fields["width"] == 512
        assert record.raw["stealth"] == {"parameters": A1111_TEXT}


def test_stealth_novelai_json() -> None:
    comment = {"prompt": "1girl, lighthouse", "steps": 28, "height": 1216, "width": 832,
               "scale": 5.0, "uncond_scale": 1.0, "cfg_rescale": 0.0, "seed": 2870305519,
               "n_samples": 1, "noise_schedule": "native", "sampler": "k_euler_ancestral",
               "uc": "lowres"}
    payload = {"Title": "NovelAI generated image", "Description": "1girl, lighthouse",
               "Software": "NovelAI", "Source": "Stable Diffusion XL C1E1DE52",
               "Generation time": "6.1", "Comment": json.dumps(comment)}
    record = read(stealth_png(json.dumps(payload).encode(), size=(80, 80)))
    assert record.source == "novelai"
    assert record.fields == {"prompt": "1girl, lighthouse", "negative_prompt": "lowres",
                             "seed": 2870305519, "steps": 28, "cfg_scale": 5.0,
                             "sampler": "k_euler_ancestral", "width": 832, "height": 1216,
                             "model": "Stable Diffusion XL", "model_hash": "C1E1DE52",
                             "software": "NovelAI"}


def test_stealth_is_not_read_when_a_text_record_exists_or_bounds_are_passed() -> None:
    record = read(stealth_png(b"other\nSteps: 1, Seed: 2, Sampler: x",
                              texts={"parameters": A1111_TEXT}))
    assert record.fields["seed"] == 3141592 and "stealth" not in record.raw
    # A length field larger than the image: not read, a warning.
    data = bytearray(stealth_png(A1111_TEXT.encode(), compressed=False))
    image = Image.open(io.BytesIO(bytes(data))).convert("RGBA")
    pixels = image.load()
    height = image.size[1]
    for bit in range(120, 152):  # the length bits: all ones
        x, y = divmod(bit, height)
        r, g, b, a = pixels[x, y]
        pixels[x, y] = (r, g, b, a | 1)
    out = io.BytesIO()
    image.save(out, "PNG")
    record = read(out.getvalue())
    assert record.source is None and any("alpha-channel" in w for w in record.warnings)
    # Plain RGBA without a signature: nothing, quickly.
    blank = io.BytesIO()
    Image.new("RGBA", (1024, 1024), (1, 2, 3, 255)).save(blank, "PNG")
    started = time.perf_counter()
    assert read(blank.getvalue()).source is None
    assert time.perf_counter() - started < 0.5


def test_stealth_pixel_bound() -> None:
    side = int(MAX_STEALTH_PIXELS ** 0.5) + 1
    big = io.BytesIO()
    Image.new("RGBA", (side, side)).save(big, "PNG", compress_level=1)
    record = read(big.getvalue())
    assert record.source is None and any("not read" in w for w in record.warnings)


def test_tensor_art_generation_data_beside_its_comfyui_graph() -> None:
    from tests.unit.test_records_comfyui import API_GRAPH

    data = {"prompt": "ein Fuchs im Schnee, 雪", "negativePrompt": "blur", "width": 512,
            "height": 512, "seed": "156680208700286", "steps": 20, "cfgScale": 8,
            "clipSkip": 2, "baseModel": {"modelFileName": "v1-5-pruned-emaonly.safetensors",
                                         "hash": "6ce0161689"}}
    graph = json.loads(json.dumps(API_GRAPH))
    graph["6"]["inputs"]["text"] = data["prompt"]
    graph["7"]["inputs"]["text"] = "blur"
    raw = json.dumps(data, ensure_ascii=False).encode()  # UTF-8 bytes in tEXt, as it writes
    chunks = [(b"tEXt", b"generation_data\x00" + raw),
              (b"tEXt", b"prompt\x00" + json.dumps(graph).encode())]
    record = read(png_with_chunks(chunks))
    assert record.source == "tensorart"
    assert record.fields == {
        "prompt": "ein Fuchs im Schnee, 雪", "negative_prompt": "blur", "seed": 156680208700286,
        "steps": 20, "cfg_scale": 8, "width": 512, "height": 512, "sampler": "euler",
        "model": "v1-5-pruned-emaonly.safetensors", "model_hash": "6ce0161689",
        "software": "Tensor.art"}
    assert record.details["formats"] == ["tensorart", "comfyui"]
    assert "conflicts" not in record.details
