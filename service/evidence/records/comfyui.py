"""ComfyUI: the `prompt` (API graph) and `workflow` (UI graph) JSON that SaveImage writes.

Neither names "the" prompt or seed: they are inputs of a sampler node, reached by links. The
API graph maps node ids to {"class_type", "inputs"}, an input being a value or a link
[node id, output slot]. The UI graph lists nodes with positional `widgets_values` and links as
[link id, from node, from slot, to node, to slot, type]; it is converted to the API shape for
the node types whose widget order is known, then both are read the same way. Every walk is
bounded by MAX_LINK_HOPS and remembers the nodes it visited, so cyclic links end.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from service.evidence.records.limits import MAX_GRAPH_NODES, MAX_LINK_HOPS

Graph = dict[str, dict[str, Any]]  # node id -> {"class_type": str, "inputs": {name: value|link}}

# Widget names in `widgets_values` order, for the UI graph; "control_after_generate" is the
# frontend's randomize/fixed switch that follows every seed widget.
_SEED = ("control_after_generate",)
WIDGETS: dict[str, tuple[str, ...]] = {
    "KSampler": ("seed", *_SEED, "steps", "cfg", "sampler_name", "scheduler", "denoise"),
    "KSamplerAdvanced": ("add_noise", "noise_seed", *_SEED, "steps", "cfg", "sampler_name",
                         "scheduler", "start_at_step", "end_at_step",
                         "return_with_leftover_noise"),
    "SamplerCustom": ("add_noise", "noise_seed", *_SEED, "cfg"),
    "RandomNoise": ("noise_seed", *_SEED),
    "KSamplerSelect": ("sampler_name",),
    "BasicScheduler": ("scheduler", "steps", "denoise"),
    "CFGGuider": ("cfg",),
    "FluxGuidance": ("guidance",),
    "CheckpointLoaderSimple": ("ckpt_name",),
    "CheckpointLoader": ("config_name", "ckpt_name"),
    "UNETLoader": ("unet_name", "weight_dtype"),
    "LoraLoader": ("lora_name", "strength_model", "strength_clip"),
    "LoraLoaderModelOnly": ("lora_name", "strength_model"),
    "CLIPTextEncode": ("text",),
    "CLIPTextEncodeSDXL": ("width", "height", "crop_w", "crop_h", "target_width",
                           "target_height", "text_g", "text_l"),
    "EmptyLatentImage": ("width", "height", "batch_size"),
    "EmptySD3LatentImage": ("width", "height", "batch_size"),
    "PrimitiveNode": ("value", *_SEED),
}
SEED_NAMES = ("seed", "noise_seed", "value", "int", "number")
TEXT_NAMES = ("text", "text_g", "string", "value", "prompt")
_CONDITIONING = ("conditioning", "conditioning_1", "conditioning_to", "cond", "conditioning_from")
_MODEL_NAMES = ("ckpt_name", "unet_name", "model_name")


def is_sampler(node: dict[str, Any]) -> bool:
    """KSampler, KSamplerAdvanced, SamplerCustom(Advanced) and custom nodes named after them;
    a latent input tells them from helpers such as KSamplerSelect."""
    kind = node["class_type"]
    named = "KSampler" in kind or kind.startswith("SamplerCustom")
    return named and "latent_image" in node["inputs"]


def api_graph(obj: Any) -> Graph | None:
    """The API graph as {id: node}, or None when `obj` is not one (or is too large)."""
    if not isinstance(obj, dict) or not obj or len(obj) > MAX_GRAPH_NODES:
        return None
    graph: Graph = {}
    for node_id, node in obj.items():
        if isinstance(node, dict) and isinstance(node.get("class_type"), str):
            inputs = node.get("inputs")
            graph[str(node_id)] = {"class_type": node["class_type"],
                                   "inputs": inputs if isinstance(inputs, dict) else {}}
    return graph or None


def ui_graph(obj: Any) -> Graph | None:
    """The UI graph converted to the API shape (known widget orders only), or None."""
    if not isinstance(obj, dict):
        return None
    nodes, links = obj.get("nodes"), obj.get("links")
    if not isinstance(nodes, list) or not isinstance(links, list) or len(nodes) > MAX_GRAPH_NODES:
        return None
    origin: dict[Any, list[Any]] = {}
    for link in links[: MAX_GRAPH_NODES * 8]:
        if isinstance(link, dict):  # workflow schema 1: links as objects
            link = [link.get("id"), link.get("origin_id"), link.get("origin_slot")]
        if isinstance(link, list) and len(link) >= 3 and isinstance(link[0], int | str):
            origin[link[0]] = [str(link[1]), link[2]]
    graph: Graph = {}
    for node in nodes:
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            continue
        inputs: dict[str, Any] = {}
        values = node.get("widgets_values")
        if isinstance(values, list):
            inputs.update(zip(WIDGETS.get(node["type"], ()), values, strict=False))
        slots = node.get("inputs")
        for slot in slots if isinstance(slots, list) else ():
            if not isinstance(slot, dict) or not isinstance(slot.get("name"), str):
                continue
            link_id = slot.get("link")
            if isinstance(link_id, int | str) and link_id in origin:
                inputs[slot["name"]] = origin[link_id]
        graph[str(node.get("id"))] = {"class_type": node["type"], "inputs": inputs}
    return graph or None


def _link(value: Any) -> str | None:
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)):
        return None
    node_id = value[0]
    ok = isinstance(node_id, str | int) and not isinstance(node_id, bool)
    return str(node_id) if ok else None


class _Walker:
    """Follows links from one sampler; every walk is bounded and stops at visited nodes."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph

    def node(self, value: Any) -> dict[str, Any] | None:
        node_id = _link(value)
        return self.graph.get(node_id) if node_id is not None else None

    def scalar(self, value: Any, names: Iterable[str]) -> Any:
        """A literal value, or one found by following links to a node holding one of `names`."""
        names = tuple(names)
        seen: set[str] = set()
        for _ in range(MAX_LINK_HOPS):
            node_id = _link(value)
            if node_id is None:
                return value if isinstance(value, str | int | float) else None
            node = self.graph.get(node_id)
            if node is None or node_id in seen:
                return None
            seen.add(node_id)
            inputs = node["inputs"]
            value = next((inputs[n] for n in names if n in inputs),
                         next(iter(inputs.values()), None) if len(inputs) == 1 else None)
        return None

    def find(self, value: Any, want: Iterable[str], through: Iterable[str]) -> list[dict[str, Any]]:
        """Nodes on the path from `value` (a link) until one has an input in `want`."""
        want, through = tuple(want), tuple(through)
        path: list[dict[str, Any]] = []
        seen: set[int] = set()
        for _ in range(MAX_LINK_HOPS):
            node = self.node(value)
            if node is None or id(node) in seen:
                return path
            seen.add(id(node))
            path.append(node)
            inputs = node["inputs"]
            if any(n in inputs for n in want):
                return path
            value = next((inputs[n] for n in through if _link(inputs.get(n))), None)
        return path

    def text(self, value: Any, side: str) -> str | None:
        """The prompt text reached from a conditioning link, through conditioning pass-throughs."""
        path = self.find(value, TEXT_NAMES, (side, *_CONDITIONING))
        if not path:
            return None
        inputs = path[-1]["inputs"]
        for name in TEXT_NAMES:
            if name in inputs:
                text = self.scalar(inputs[name], TEXT_NAMES)
                if isinstance(text, str):
                    other = None
                    if name == "text_g":
                        other = self.scalar(inputs.get("text_l"), TEXT_NAMES)
                    return text if not other or other == text else f"{text}\n{other}"
        return None


def read_graph(graph: Graph) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fields for normalisation, details) of the graph's main sampler; empty when it has none."""
    samplers = sorted((k for k, n in graph.items() if is_sampler(n)),
                      key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
    if not samplers:
        return {}, {}
    walk = _Walker(graph)
    # Hires-fix graphs have two samplers: the first pass starts from an empty latent.
    main = next((k for k in samplers if _starts_empty(walk, graph[k])), samplers[0])
    inputs = graph[main]["inputs"]
    guider = walk.node(inputs.get("guider")) or {"inputs": {}}
    g_inputs = guider["inputs"]
    noise = walk.node(inputs.get("noise")) or {"inputs": {}}
    sigmas = walk.node(inputs.get("sigmas")) or {"inputs": {}}
    chooser = walk.node(inputs.get("sampler")) or {"inputs": {}}

    def first(*candidates: tuple[dict[str, Any], str], names: Iterable[str] = ()) -> Any:
        for where, name in candidates:
            if name in where:
                return walk.scalar(where[name], names or (name,))
        return None

    fields: dict[str, Any] = {"software": "ComfyUI"}
    fields["seed"] = first((inputs, "seed"), (inputs, "noise_seed"),
                           (noise["inputs"], "noise_seed"), names=SEED_NAMES)
    fields["steps"] = first((inputs, "steps"), (sigmas["inputs"], "steps"))
    fields["cfg"] = first((inputs, "cfg"), (g_inputs, "cfg"))
    fields["sampler_name"] = first((inputs, "sampler_name"), (chooser["inputs"], "sampler_name"))
    positive = inputs.get("positive", g_inputs.get("positive", g_inputs.get("conditioning")))
    negative = inputs.get("negative", g_inputs.get("negative"))
    fields["prompt"] = walk.text(positive, "positive")
    fields["negative_prompt"] = walk.text(negative, "negative")
    details: dict[str, Any] = {"sampler_node": main, "sampler_class": graph[main]["class_type"],
                               "sampler_nodes": len(samplers)}
    models = walk.find(inputs.get("model", g_inputs.get("model")), _MODEL_NAMES, ("model",))
    loras = [n["inputs"]["lora_name"] for n in models
             if isinstance(n["inputs"].get("lora_name"), str)]
    if models and any(n in models[-1]["inputs"] for n in _MODEL_NAMES):
        fields["model"] = first(*((models[-1]["inputs"], n) for n in _MODEL_NAMES))
    if loras:
        details["loras"] = loras
    latent = walk.find(inputs.get("latent_image"), ("width",), ("samples",))
    if latent and "width" in latent[-1]["inputs"]:
        fields["width"] = walk.scalar(latent[-1]["inputs"].get("width"), ("width", "value"))
        fields["height"] = walk.scalar(latent[-1]["inputs"].get("height"), ("height", "value"))
    for name, where in (("scheduler", (inputs, sigmas["inputs"])),
                        ("denoise", (inputs, sigmas["inputs"]))):
        value = first(*((w, name) for w in where))
        if value is not None:
            details[name] = value
    return {k: v for k, v in fields.items() if v is not None}, details


def _starts_empty(walk: _Walker, sampler: dict[str, Any]) -> bool:
    node = walk.node(sampler["inputs"].get("latent_image"))
    return node is not None and node["class_type"].startswith("Empty")
