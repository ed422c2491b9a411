"""Where ComfyUI graphs live in a file, and the ComfyUI reader over them.

PNG: `prompt` (API graph) and `workflow` (UI graph) text chunks (SaveImage). WebP from
SaveAnimatedWEBP: EXIF Model "prompt:<json>" and Make "workflow:<json>". JPEG and WebP from
save-with-metadata nodes: EXIF UserComment or ImageDescription holding
{"prompt": graph, "workflow": graph} (each a JSON object or its text).
"""

from __future__ import annotations

from typing import Any

from service.evidence.records import comfyui
from service.evidence.records.jsontext import is_json_object_text, parse_json
from service.evidence.records.record import COMFYUI
from service.evidence.records.sources import Found, Reader, Sources

NO_SAMPLER = "ComfyUI graph without a sampler node; kept raw"
GRAPH_KEYS = ("prompt", "workflow")


def graphs(src: Sources) -> dict[str, Any]:
    """{"prompt": parsed API graph JSON, "workflow": parsed UI graph JSON}, those found."""
    found: dict[str, Any] = {}
    for key in GRAPH_KEYS:
        value = src.json(key)
        if value is not None:
            found[key] = value
    for tag in ("Model", "Make"):
        name, sep, rest = src.texts.get(tag, "").partition(":")
        if sep and name in GRAPH_KEYS and name not in found and is_json_object_text(rest):
            found[name] = parse_json(rest, f"EXIF {tag}", src.warnings)
    for tag in ("UserComment", "ImageDescription"):
        wrapper = src.json(tag)
        if not isinstance(wrapper, dict):
            continue
        for key in GRAPH_KEYS:
            value = wrapper.get(key)
            if isinstance(value, str) and is_json_object_text(value):
                value = parse_json(value, f"EXIF {tag} {key}", src.warnings)
            if isinstance(value, dict):
                found.setdefault(key, value)
    return found


def read(src: Sources) -> Found | None:
    """The API graph's reading; the UI graph's when there is no API graph or it names no
    sampler (group nodes and nodes the frontend expands are only whole in the UI graph)."""
    found = graphs(src)
    readings = []
    for graph in (comfyui.api_graph(found.get("prompt")), comfyui.ui_graph(found.get("workflow"))):
        if graph is not None:
            readings.append(comfyui.read_graph(graph))
            if "sampler_node" in readings[-1][1] or "ambiguous" in readings[-1][1]:
                break
    if not readings:
        return None
    fields, details = next((r for r in readings if "sampler_node" in r[1]), readings[0])
    if "ambiguous" in details:
        src.warnings.append(details.pop("ambiguous"))
    elif not fields:
        src.warnings.append(NO_SAMPLER)
    return Found(COMFYUI, fields or {"software": "ComfyUI"}, details)


def request_fields(metadata: dict[str, Any]) -> dict[str, Any]:
    """The sampler's fields of ComfyUI graphs sent as a registration's `metadata`
    ({"prompt": API graph, "workflow": UI graph}, as the save node sends them): read as from a
    file, so the manifest names the prompt and seed; {} when the metadata holds no graph."""
    for graph in (comfyui.api_graph(metadata.get("prompt")),
                  comfyui.ui_graph(metadata.get("workflow"))):
        if graph is not None:
            fields, details = comfyui.read_graph(graph)
            if "sampler_node" in details:
                return fields
    return {}


READER = Reader("comfyui", 90, read)
