"""Malformed and hostile metadata never raise: the record is kept raw (bounded), with warnings,
in bounded time and memory."""

from __future__ import annotations

import io
import json
import random
import struct
import time
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.evidence.manifest import canonicalize
from service.evidence.records import comfyui, fooocus, invokeai, novelai, read_generation_record
from service.evidence.records.limits import (
    MAX_CONTAINER_ITEMS,
    MAX_FIELD_CHARS,
    MAX_ITEM_BYTES,
    MAX_RAW_FIELD_CHARS,
    MAX_RAW_TOTAL_CHARS,
    RAW_HEAD_CHARS,
)
from service.evidence.records.record import ExtractedRecord, jsonable, normalise
from tests.support.records import (
    itxt_chunk,
    jpeg_with_segments,
    png_chunk,
    png_texts,
    png_with_chunks,
    text_chunk,
    tiff,
    user_comment_exif,
    ztxt_chunk,
)
from tests.unit.test_records_a1111 import INFOTEXT
from tests.unit.test_records_comfyui import API_GRAPH

TIME_LIMIT_S = 2.0  # every hostile file here is read in well under this on a shared core


def read(data: bytes):
    started = time.perf_counter()
    record = read_generation_record(io.BytesIO(data))
    assert time.perf_counter() - started < TIME_LIMIT_S
    canonicalize(record.as_generation())  # always representable in the manifest
    return record


def test_huge_text_chunk_is_skipped_with_its_head_kept() -> None:
    text = "x" * (MAX_ITEM_BYTES + 10)
    record = read(png_with_chunks([text_chunk("parameters", text)]))
    assert record.source == "unknown"
    assert record.raw["parameters"] == {"truncated": True, "bytes": len(text) + 11,
                                        "head": "x" * RAW_HEAD_CHARS}
    assert any("over the limit" in w for w in record.warnings)


def test_zip_bomb_ztxt_stops_at_the_inflate_limit() -> None:
    bomb = ztxt_chunk("parameters", b"\x00" * (64 * 1024 * 1024))
    assert len(bomb[1]) < 100_000
    record = read(png_with_chunks([bomb]))
    assert record.source == "unknown" and record.raw["parameters"]["truncated"] is True
    assert any("over the limit" in w for w in record.warnings)


def test_invalid_utf8_itxt_is_read_with_replacement_and_a_warning() -> None:
    body = INFOTEXT.encode().replace(b"lighthouse", b"light\xff\xfehouse")
    record = read(png_with_chunks([itxt_chunk("parameters", body)]))
    assert record.source == "a1111" and record.fields["steps"] == 30
    assert "light\ufffd\ufffdhouse" in record.fields["prompt"]
    assert any("not valid UTF-8" in w for w in record.warnings)


@pytest.mark.parametrize("text", [
    "[" * 100_000 + "]" * 100_000,  # beyond Python's recursion limit
    json.dumps(json.loads("[" * 80 + "1" + "]" * 80)),  # parses; deeper than MAX_JSON_DEPTH
    '{"3": {"class_type": "KSampler", "inputs": ',  # cut short
    "9" * 50_000,  # an integer beyond Python's digit limit
])
def test_hostile_comfyui_json_is_kept_raw(text: str) -> None:
    record = read(png_texts({"prompt": text}))
    assert record.source == "unknown"
    assert set(record.fields) <= {"prompt"}  # a bare number is flat text, read as a prompt
    assert "prompt" in record.raw
    assert record.warnings


def test_many_chunks_stop_at_the_item_limit() -> None:
    chunks = [(b"tIME", b"\x07\xea\x01\x01\x00\x00\x00")] * (MAX_CONTAINER_ITEMS + 5)
    record = read(png_with_chunks(chunks + [text_chunk("parameters", INFOTEXT)]))
    assert record.source is None
    assert any("more than" in w for w in record.warnings)


def test_oversized_record_is_kept_as_head_and_digest() -> None:
    prompt = "word " * (MAX_RAW_FIELD_CHARS // 4)
    text = f"{prompt}\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 512x512"
    record = read(png_texts({"parameters": text}))
    raw = record.raw["parameters"]
    assert raw["truncated"] is True and raw["chars"] == len(text)
    assert raw["head"] == text[:RAW_HEAD_CHARS] and len(raw["sha256"]) == 64
    assert len(record.fields["prompt"]) == MAX_FIELD_CHARS
    assert record.fields["steps"] == 20
    assert len(json.dumps(record.raw)) < MAX_RAW_TOTAL_CHARS


def test_many_medium_fields_fit_the_raw_total() -> None:
    texts = {f"note{i}": "y" * (MAX_RAW_FIELD_CHARS - 10) for i in range(4)}
    texts["parameters"] = INFOTEXT
    record = read(png_texts(texts))
    assert len(json.dumps(record.raw)) <= MAX_RAW_TOTAL_CHARS + 4096
    assert record.raw["parameters"] == INFOTEXT  # the small record itself is kept whole


def test_long_parameters_line_without_colons_is_fast() -> None:
    hostile = "a" * 60_000 + "\n" + "b " * 30_000 + ": " + '"' * 5_000
    record = read(png_texts({"parameters": hostile + "\nSteps: 1, Sampler: x, Seed: 1"}))
    assert record.source == "a1111"


def test_cyclic_ui_graph_links() -> None:
    workflow = {"nodes": [{"id": 1, "type": "KSampler", "inputs": [
        {"name": "positive", "link": 1}, {"name": "latent_image", "link": 2},
        {"name": "model", "link": 2}]},
        {"id": 2, "type": "Reroute", "inputs": [{"name": "conditioning", "link": 3}]},
        {"id": 3, "type": "Reroute", "inputs": [{"name": "conditioning", "link": 1}]}],
        "links": [[1, 2, 0, 1, 0], [2, 1, 0, 1, 1], [3, 3, 0, 2, 0]]}
    record = read(png_texts({"workflow": json.dumps(workflow)}))
    assert record.source == "comfyui" and "prompt" not in record.fields


def test_exif_with_looping_and_bogus_offsets() -> None:
    looping = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08" + struct.pack(
        ">HHHII", 1, 0x8769, 4, 1, 8) + b"\x00\x00\x00\x00"
    bogus = b"Exif\x00\x00" + tiff([], [(0x9286, 7, b"UNICODE\x00" + b"\x00a" * 10)])[:30]
    huge_count = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\xff\xff"
    for exif in (looping, bogus, huge_count, b"Exif\x00\x00junk"):
        record = read(jpeg_with_segments([(0xE1, exif)]))
        assert record.source is None


def test_truncated_files() -> None:
    whole = png_texts({"parameters": INFOTEXT})
    jpeg = jpeg_with_segments([(0xE1, user_comment_exif(INFOTEXT))])
    for data in (whole, jpeg):
        for cut in range(0, len(data), 97):
            read(data[:cut])


def test_random_mutations_never_raise() -> None:
    samples = [
        png_texts({"parameters": INFOTEXT, "prompt": json.dumps(API_GRAPH)}),
        jpeg_with_segments([(0xE1, user_comment_exif(INFOTEXT))]),
        png_with_chunks([ztxt_chunk("parameters", INFOTEXT.encode())]),
    ]
    rng = random.Random(20261128)
    for _ in range(300):
        data = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        read(bytes(data))


def test_bad_chunk_crc_and_length_past_the_end() -> None:
    broken = png_chunk(b"tEXt", b"parameters\x00" + INFOTEXT.encode())[:-4] + b"\x00\x00\x00\x00"
    assert read(png_with_chunks([])[:33] + broken).source == "a1111"  # CRCs are not checked
    liar = struct.pack(">I", 10**9) + b"tEXt" + b"parameters\x00abc"
    record = read(png_with_chunks([])[:33] + liar)
    assert record.source == "unknown" and record.raw["parameters"]["bytes"] == 10**9


def test_a_reader_bug_becomes_a_warning(monkeypatch) -> None:
    import service.evidence.records.reader as reader

    def explode(_embedded):
        raise ZeroDivisionError

    monkeypatch.setattr(reader, "_interpret", explode)
    record = read(png_texts({"parameters": INFOTEXT}))
    assert record.source is None and record.warnings == (reader.UNREADABLE,)


def test_zlib_garbage_in_ztxt() -> None:
    record = read(png_with_chunks([(b"zTXt", b"parameters\x00\x00" + zlib.compress(b"x")[:3])]))
    assert record.source is None or record.source == "unknown"
    assert record.warnings


def test_many_inflating_chunks_stop_at_the_total_budget() -> None:
    one = zlib.compress(b"z" * MAX_ITEM_BYTES, 9)
    chunks = [(b"zTXt", f"k{i}".encode() + b"\x00\x00" + one) for i in range(2000)]
    started = time.perf_counter()
    record = read(png_with_chunks([text_chunk("parameters", INFOTEXT), *chunks]))
    assert time.perf_counter() - started < TIME_LIMIT_S
    assert record.source == "a1111"
    assert record.warnings[0] == "metadata beyond 4194304 bytes not read"
    assert set(record.raw) == {"parameters", "k0", "k1", "k2"}
    assert record.raw["k0"]["truncated"] is True and record.raw["parameters"] == INFOTEXT


def test_duplicate_keywords_are_not_inflated_twice() -> None:
    data = png_with_chunks([text_chunk("parameters", INFOTEXT),
                            ztxt_chunk("parameters", b"other")])
    record = read(data)
    assert record.raw["parameters"] == INFOTEXT
    assert "second 'parameters' text ignored; the first is kept" in record.warnings


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.sampled_from(["3", "4", "KSampler", "CLIPTextEncode", "latent_image", "model", "seed"]),
    lambda children: st.lists(children, max_size=6)
    | st.dictionaries(st.sampled_from(["id", "type", "class_type", "inputs", "nodes", "links",
                                       "widgets_values", "link", "name", "origin_id", "3", "4",
                                       "seed", "positive", "model", "latent_image", "text"]),
                      children, max_size=6),
    max_leaves=40,
)


@settings(max_examples=150, deadline=None)
@given(_JSON)
def test_graph_readers_take_any_json(value) -> None:
    """The ComfyUI readers themselves (not the reader's catch-all) accept any JSON value."""
    for graph in (comfyui.api_graph(value), comfyui.ui_graph(value)):
        if graph is not None:
            comfyui.read_graph(graph)


@pytest.mark.parametrize("value", [
    {"nodes": [{"type": "KSampler", "inputs": 5}], "links": []},
    {"nodes": [{"type": "KSampler", "inputs": [{"name": "model", "link": [1]}]}], "links": []},
    {"nodes": [], "links": [[[1], 2, 3], {"id": [2]}, {"id": 3}]},
    {"nodes": [{"type": "X", "id": [1]}], "links": []},
])
def test_ui_graph_odd_shapes(value) -> None:
    graph = comfyui.ui_graph(value)
    if graph is not None:
        comfyui.read_graph(graph)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(
    ["model", "image", "prompt", "loras", "seed", "resolution", "version", "uc", "scale",
     "positive_prompt", "steps", "width", "app_version", "base_model"]), _JSON, max_size=8))
def test_json_record_readers_take_any_object(meta) -> None:
    warnings: list[str] = []
    for fields, details in (invokeai.read_metadata(meta), invokeai.read_sd_metadata(meta),
                            fooocus.read_record(meta), novelai.read_record({}, meta)):
        record = ExtractedRecord("x", normalise(fields, warnings), {}, jsonable(details))
        canonicalize(record.as_generation())


def test_lone_surrogates_in_json_become_replacement_characters() -> None:
    graph = json.loads(json.dumps(API_GRAPH))
    graph["6"]["inputs"]["text"] = "a fox \ud800 in snow"
    graph["3"]["inputs"]["sampler_name"] = {"\udfff": ["\ud801"]}
    record = read(png_texts({"prompt": json.dumps(graph)}))
    assert record.fields["prompt"] == "a fox \ufffd in snow"


_TEXT_KEYS = ["parameters", "UserComment", "prompt", "workflow", "Dream", "sd-metadata",
              "invokeai_metadata", "Comment", "Software", "Description", "ImageDescription",
              "use_stable_diffusion_model", "Model", "Make", "fooocus_scheme"]


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(_TEXT_KEYS), _JSON.map(json.dumps) | st.text(max_size=40),
                       max_size=5),
       st.dictionaries(st.sampled_from(["creator_tool", "user_comment", "description",
                                        "digital_source_type"]),
                       st.sampled_from(["Draw Things", "{", '{"c": 1}', "Steps: 1, Seed: 2",
                                        "trainedAlgorithmicMedia"]) | _JSON, max_size=4))
def test_every_registered_reader_takes_any_sources(texts, xmp) -> None:
    """A reader that raised would lose the file's whole record: each takes any input."""
    from service.evidence.records.registry import READERS
    from service.evidence.records.sources import Sources

    if texts.get("Software") is not None:
        texts["Software"] = "NovelAI"
    src = Sources(texts=texts, xmp=xmp, iptc={"caption": "x Job ID: " + "a" * 32})
    for reader in READERS:
        found = reader.read(src)
        if found is not None:
            canonicalize(jsonable({"fields": normalise(found.fields, []),
                                   "details": found.details}))


def test_hostile_c2pa_stores_are_a_warning_quickly() -> None:
    from service.evidence.records.c2pa import UNREADABLE
    from tests.support.records import c2pa_store, jumbf_box, jumbf_superbox, png_with_chunks

    deep = jumbf_box(b"cbor", b"\xa0")
    for i in range(40):
        deep = jumbf_superbox(f"level{i}", deep)
    claim = b"\xa1" + b"\x6fclaim_generator" + b"\x81" * 5000 + b"\x00"
    stores = (jumbf_superbox("c2pa", deep),
              jumbf_superbox("c2pa", *[jumbf_box(b"free", b"")] * 5000),
              c2pa_store(claim))
    started = time.perf_counter()
    for store in stores:
        record = read_generation_record(io.BytesIO(png_with_chunks([(b"caBX", store)])))
        assert record.provenance == {"c2pa": {"present": True}}
        assert UNREADABLE in record.warnings
    assert time.perf_counter() - started < TIME_LIMIT_S


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_c2pa_store_of_any_bytes(data) -> None:
    from tests.support.records import jumbf_superbox, png_with_chunks

    for store in (data, jumbf_superbox("c2pa", data)):
        record = read_generation_record(io.BytesIO(png_with_chunks([(b"caBX", store)])))
        assert not store or record.provenance["c2pa"]["present"] is True


def test_stealth_gzip_bomb_stops_at_the_inflate_limit() -> None:
    from service.evidence.records.limits import MAX_INFLATED_BYTES
    from tests.support.records import stealth_png

    bomb = stealth_png(b"a" * (MAX_INFLATED_BYTES * 4), compressed=True, size=(300, 300))
    record = read(bomb)
    assert record.source is None
    assert any("inflates past" in w for w in record.warnings)


def test_long_dream_line_is_not_split() -> None:
    from service.evidence.records.invokeai import MAX_DREAM_CHARS

    text = '"' + "a " * MAX_DREAM_CHARS + '" -s 50 -S 1 -W 512 -H 512 -C 7 -A k_lms'
    record = read(png_texts({"Dream": text}))
    assert record.source is None
