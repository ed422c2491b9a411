"""POST /v1/stamps reads the generation record embedded in the upload into the manifest."""

from __future__ import annotations

import hashlib
import json

from service.evidence.records.limits import MAX_ITEM_BYTES
from service.usecases.register import RECORD_CONFLICT, RECORD_WARNING
from tests.support.records import png_texts, png_with_chunks, text_chunk
from tests.unit.test_records_comfyui import API_GRAPH, NEGATIVE, POSITIVE, UI_GRAPH

INFOTEXT = ("a lighthouse at dusk, film grain\nNegative prompt: blurry, lowres\n"
            "Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, "
            "Seed: 1234567890, Size: 832x1216, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, "
            'Lora hashes: "add_detail: 7c6bad76eb54", Version: v1.10.1')


def manifest_of(api, response):
    assert response.status_code == 202, response.get_json()
    receipt = api.client.get(response.headers["Location"], headers=api.auth).get_json()
    return receipt["manifest"]


def test_a1111_png_upload_fills_the_generation_fields(api):
    response = api.post_image(png_texts({"parameters": INFOTEXT}, size=(16, 16)))
    assert response.get_json()["warnings"] == []
    generation = manifest_of(api, response)["generation"]
    expected = {
        "prompt": "a lighthouse at dusk, film grain", "negative_prompt": "blurry, lowres",
        "model": "sd_xl_base_1.0", "model_hash": "31e35c80fc", "seed": 1234567890,
        "sampler": "DPM++ 2M", "steps": 30, "cfg_scale": 7.5, "width": 832, "height": 1216,
        "software": "AUTOMATIC1111 v1.10.1",
    }
    for name, value in expected.items():
        assert generation[name] == value, name
    assert generation["source"] == "a1111"
    assert generation["raw"] == {"file": {"parameters": INFOTEXT}}
    assert generation["sources"]["file"]["details"]["Lora hashes"] == {
        "add_detail": "7c6bad76eb54"}
    assert generation["conflicts"] == []
    assert "request" not in generation["sources"]


def test_comfyui_png_upload_with_a_disagreeing_request(api):
    image = png_texts({"prompt": json.dumps(API_GRAPH), "workflow": json.dumps(UI_GRAPH)},
                      size=(16, 16))
    metadata = {"prompt": POSITIVE.strip(), "seed": "42", "note": "first post"}
    response = api.post_image(image, metadata=json.dumps(metadata))
    generation = manifest_of(api, response)["generation"]
    expected = {
        "prompt": POSITIVE.strip(), "negative_prompt": NEGATIVE,
        "model": "v1-5-pruned-emaonly.safetensors", "seed": 156680208700286,
        "sampler": "euler", "steps": 20, "cfg_scale": 8, "width": 512, "height": 512,
        "software": "ComfyUI",
    }
    for name, value in expected.items():
        assert generation[name] == value, name
    assert generation["source"] == "comfyui"
    assert generation["conflicts"] == [
        {"field": "seed", "file": 156680208700286, "request": 42}]
    # The answer says so too: the creator sees at once that the request's seed was not used.
    assert response.get_json()["warnings"] == [RECORD_CONFLICT.format(fields="seed")]
    assert generation["sources"]["request"] == {"prompt": POSITIVE.strip(), "seed": 42,
                                                "source": "request"}
    assert generation["raw"]["request"] == metadata
    assert generation["raw"]["file"]["prompt"] == json.dumps(API_GRAPH)


def test_hostile_chunks_give_warnings_and_a_202(make_api):
    api = make_api(max_upload_bytes=4 * MAX_ITEM_BYTES)
    image = png_with_chunks([text_chunk("parameters", "x" * (MAX_ITEM_BYTES + 1)),
                             text_chunk("prompt", "{" + "[" * 50_000)])
    response = api.post_image(image, metadata=json.dumps({"prompt": "a cat"}))
    warnings = response.get_json()["warnings"]
    assert warnings and all(w.startswith(RECORD_WARNING) for w in warnings)
    assert any("over the limit" in w for w in warnings)
    assert any("not valid JSON" in w for w in warnings)
    generation = manifest_of(api, response)["generation"]
    assert generation["source"] == "unknown" and generation["prompt"] == "a cat"
    assert generation["raw"]["file"]["parameters"]["truncated"] is True
    kept = generation["raw"]["file"]["prompt"]  # over MAX_RAW_FIELD_CHARS: head and digest
    assert kept["truncated"] is True and kept["chars"] == 50_001
    assert kept["sha256"] == hashlib.sha256(b"{" + b"[" * 50_000).hexdigest()
    assert generation["raw"]["request"] == {"prompt": "a cat"}


def test_plain_image_keeps_the_request_shape(api):
    from tests.support.images import png_bytes

    response = api.post_image(png_bytes(), metadata=json.dumps({"prompt": "a cat"}))
    generation = manifest_of(api, response)["generation"]
    assert generation == {"prompt": "a cat", "source": "request", "raw": {"prompt": "a cat"}}


def test_record_too_large_beside_the_request_is_left_out(make_api):
    from service.usecases.register import RECORD_TOO_LARGE

    api = make_api(max_upload_bytes=4 * MAX_ITEM_BYTES)
    prompt = "p" * 8000
    infotext = f"{prompt}\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 512x512"
    texts = {"parameters": infotext, **{f"n{i}": "y" * 30_000 for i in range(3)}}
    metadata = {"prompt": "q" * 63_000}
    response = api.post_image(png_texts(texts), metadata=json.dumps(metadata))
    assert RECORD_TOO_LARGE in response.get_json()["warnings"]
    generation = manifest_of(api, response)["generation"]
    assert generation["source"] == "request" and generation["raw"] == metadata
