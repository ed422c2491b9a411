"""ComfyUI: the `prompt` (API graph) and `workflow` (UI graph) JSON that save nodes write.

Neither names "the" prompt or seed: they are inputs of a sampler node, reached by links. The
API graph maps node ids to {"class_type", "inputs"}, an input being a value or a link
[node id, output slot]. The UI graph lists nodes with positional `widgets_values` and links as
[link id, from node, from slot, to node, to slot, type]; it is converted to the API shape (with
each input's link type kept) for the node types whose widget order is known.

The output decides: the sampler is found by walking back from the save node along IMAGE and
LATENT links; models, prompts and values are followed along MODEL, CONDITIONING and scalar
links (by the UI graph's link types, or `comfyui_nodes.TYPE_INPUTS` names in API graphs). Where
a walk forks (two models merged, two prompts combined, two outputs from different samplers)
the value is left out rather than guessed. Every walk is bounded by MAX_LINK_HOPS and stops at
nodes it visited, so cyclic links end.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from service.evidence.records.comfyui_nodes import (
    COMPUTING_MARKERS,
    LATENT_SIZE,
    MODEL_NAMES,
    MUTED_MODES,
    PASS_THROUGH_MARKERS,
    PIPE_INPUTS,
    PREVIEW_MARKERS,
    SAVE_MARKERS,
    SEED_NAMES,
    TEXT_NAMES,
    TEXT_PAIRS,
    TYPE_INPUTS,
    WIDGETS,
    ZERO_CONDITIONING,
)
from service.evidence.records.limits import MAX_GRAPH_NODES, MAX_LINK_HOPS

Graph = dict[str, dict[str, Any]]  # node id -> {"class_type", "inputs", "types"?, "mode"?}
AMBIGUOUS_OUTPUT = "ComfyUI graph with outputs from different samplers; sampler values left out"


# Nodes that read an image file from ComfyUI's input folder: their `image` input is its name
# (a sub-folder path, perhaps with an " [input]"/" [output]" annotation). The Chronoseal save
# node (integrations/comfyui) hashes those files and names them as the new image's parents.
LOAD_IMAGE_CLASSES = frozenset({"LoadImage", "LoadImageMask", "LoadImageOutput"})
MAX_LOAD_IMAGE_NAME_CHARS = 1024  # a relative path, not a document


def load_image_inputs(graph: Graph) -> list[str]:
    """The file names the graph's LoadImage nodes read, in node order, each once."""
    names: list[str] = []
    for node in graph.values():
        image = node["inputs"].get("image")
        if node["class_type"] in LOAD_IMAGE_CLASSES and isinstance(image, str) \
                and 0 < len(image) <= MAX_LOAD_IMAGE_NAME_CHARS and image not in names:
            names.append(image)
    return names


def is_sampler(node: dict[str, Any]) -> bool:
    """KSampler, KSamplerAdvanced, SamplerCustom(Advanced) and custom nodes named after them
    (KSampler (Efficient), KSampler //Inspire); a latent input tells them from helpers such as
    KSamplerSelect."""
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
    origin: dict[Any, tuple[list[Any], Any]] = {}
    for link in links[: MAX_GRAPH_NODES * 8]:
        if isinstance(link, dict):  # workflow schema 1: links as objects
            link = [link.get("id"), link.get("origin_id"), link.get("origin_slot"), None, None,
                    link.get("type")]
        if isinstance(link, list) and len(link) >= 3 and isinstance(link[0], int | str):
            origin[link[0]] = ([str(link[1]), link[2]], link[5] if len(link) > 5 else None)
    graph: Graph = {}
    for node in nodes:
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            continue
        inputs: dict[str, Any] = {}
        types: dict[str, str] = {}
        values = node.get("widgets_values")
        if isinstance(values, list):
            inputs.update(zip(WIDGETS.get(node["type"], ()), values, strict=False))
        slots = node.get("inputs")
        for slot in slots if isinstance(slots, list) else ():
            if not isinstance(slot, dict) or not isinstance(slot.get("name"), str):
                continue
            link_id = slot.get("link")
            if isinstance(link_id, int | str) and link_id in origin:
                inputs[slot["name"]], link_type = origin[link_id]
                kind = slot.get("type") if slot.get("type") not in (None, "*") else link_type
                if isinstance(kind, str):
                    types[slot["name"]] = kind
        graph[str(node.get("id"))] = {"class_type": node["type"], "inputs": inputs,
                                      "types": types, "mode": node.get("mode")}
    return graph or None


def _link(value: Any) -> str | None:
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)):
        return None
    node_id = value[0]
    ok = isinstance(node_id, str | int) and not isinstance(node_id, bool)
    return str(node_id) if ok else None


class _Walker:
    """Follows links; every walk is bounded and stops at visited nodes."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph

    def node(self, value: Any) -> dict[str, Any] | None:
        node_id = _link(value)
        return self.graph.get(node_id) if node_id is not None else None

    def links(self, node: dict[str, Any], kinds: Iterable[str], role: str = "") -> list[Any]:
        """The link inputs of `node` carrying one of `kinds`: its `role` input when it has one,
        else those of that type, else its pipe (followed to the node that built it)."""
        inputs, types = node["inputs"], node.get("types") or {}
        if role and _link(inputs.get(role)):
            return [inputs[role]]
        kinds = tuple(kinds)
        if types:
            found = [v for n, v in inputs.items() if types.get(n) in kinds and _link(v)]
        else:
            found = [inputs[n] for kind in kinds for n in TYPE_INPUTS[kind] if _link(inputs.get(n))]
        return found or [inputs[n] for n in PIPE_INPUTS if _link(inputs.get(n))]

    def scalar(self, value: Any, names: Iterable[str]) -> Any:
        """A literal value, or one found by following links to a node holding one of `names`
        (or `value`, as primitive nodes do; a reroute's only input). A node computing its
        output (math, random, wildcard generators) gives None: the value is not stated."""
        names = (*names, "value")
        seen: set[str] = set()
        for _ in range(MAX_LINK_HOPS):
            node_id = _link(value)
            if node_id is None:
                return value if isinstance(value, str | int | float) else None
            node = self.graph.get(node_id)
            kind = node["class_type"] if node is not None else ""
            if node is None or node_id in seen or any(m in kind for m in COMPUTING_MARKERS):
                return None
            seen.add(node_id)
            inputs = node["inputs"]
            through = len(inputs) == 1 and any(m in kind for m in PASS_THROUGH_MARKERS)
            value = next((inputs[n] for n in names if n in inputs),
                         next(iter(inputs.values())) if through else None)
        return None

    def path(self, value: Any, kind: str, role: str, stop: Iterable[str]) -> list[dict[str, Any]]:
        """Nodes along `kind` links from `value` until one holds an input in `stop`; the path
        ends early (its last node without `stop`) where the links fork or run out."""
        stop = tuple(stop)
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for _ in range(MAX_LINK_HOPS):
            node_id = _link(value)
            node = self.graph.get(node_id) if node_id is not None else None
            if node is None or node_id in seen:
                return out
            seen.add(node_id)  # type: ignore[arg-type]
            out.append(node)
            inputs = node["inputs"]
            if any(n in inputs for n in stop) or isinstance(inputs.get(role), str):
                return out
            following = self.links(node, (kind,), role)
            if len(following) != 1:
                return out
            value = following[0]
        return out

    def text(self, value: Any, role: str) -> str | None:
        """The prompt reached from a conditioning link; None where conditionings combine."""
        path = self.path(value, "CONDITIONING", role, TEXT_NAMES)
        if not path:
            return None
        inputs = path[-1]["inputs"]
        if any(path_node["class_type"] in ZERO_CONDITIONING for path_node in path):
            return None  # zeroed: no prompt text reaches the sampler
        if isinstance(inputs.get(role), str):  # Efficient Loader: `positive`/`negative` text
            return str(inputs[role])
        for name in TEXT_NAMES:
            if name in inputs:
                text = self.scalar(inputs[name], (name, "populated_text"))
                if not isinstance(text, str):
                    return None
                pair = TEXT_PAIRS.get(name)
                other = self.scalar(inputs.get(pair), (pair,)) if pair else None
                return text if not isinstance(other, str) or other in ("", text) else (
                    f"{text}\n{other}")
        return None

    def model(self, value: Any) -> tuple[str | None, list[str]]:
        """The model file reached along MODEL links, and the LoRAs on the way."""
        path = self.path(value, "MODEL", "model", MODEL_NAMES)
        loras = [n["inputs"]["lora_name"] for n in path
                 if isinstance(n["inputs"].get("lora_name"), str)
                 and n["inputs"]["lora_name"] != "None" and n.get("mode") not in MUTED_MODES]
        inputs = path[-1]["inputs"] if path else {}
        for name in MODEL_NAMES:
            if name in inputs:
                found = self.scalar(inputs[name], (name, "string"))
                return (found if isinstance(found, str) else None), loras
        return None, loras

    def upstream_samplers(self, start: str) -> set[str]:
        """Samplers whose output reaches node `start` along IMAGE and LATENT links."""
        found: set[str] = set()
        seen: set[str] = set()
        pending = [start]
        while pending and len(seen) < MAX_GRAPH_NODES:
            node_id = pending.pop()
            node = self.graph.get(node_id)
            if node is None or node_id in seen:
                continue
            seen.add(node_id)
            if node_id != start and is_sampler(node):
                found.add(node_id)
                following = [node["inputs"].get("latent_image")]
            else:
                following = self.links(node, ("IMAGE", "LATENT"))
            pending.extend(i for i in map(_link, following) if i is not None)
        return found


def _outputs(graph: Graph, markers: Iterable[str]) -> list[str]:
    markers = tuple(markers)
    return [k for k, n in graph.items() if n.get("mode") not in MUTED_MODES
            and any(m in n["class_type"] for m in markers)
            and any(name in n["inputs"] for name in TYPE_INPUTS["IMAGE"])]


def main_sampler(graph: Graph, walk: _Walker) -> str | None:
    """The sampler whose values the saved image states: of the samplers upstream of a save
    node (else a preview, else of the whole graph), the first pass of the chain (hires fix:
    the sampler no other one feeds). With several save nodes (each pass saved) their chains
    must agree on it; None when different samplers could have made the file."""
    for markers in (SAVE_MARKERS, PREVIEW_MARKERS):
        chains = {frozenset(walk.upstream_samplers(k)) for k in _outputs(graph, markers)}
        chains.discard(frozenset())
        if chains:
            firsts = {_first_pass(walk, chain) for chain in chains}
            return firsts.pop() if len(firsts) == 1 else None
    return _first_pass(walk, frozenset(k for k, n in graph.items() if is_sampler(n)))


def _first_pass(walk: _Walker, chain: frozenset[str]) -> str | None:
    firsts = [k for k in chain if not walk.upstream_samplers(k) & chain]
    return firsts[0] if len(firsts) == 1 else None


def read_graph(graph: Graph) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fields for normalisation, details) of the graph's output sampler; {} when none is
    certain (details say why)."""
    samplers = [k for k, n in graph.items() if is_sampler(n)]
    if not samplers:
        return {}, {}
    walk = _Walker(graph)
    main = main_sampler(graph, walk)
    if main is None:
        return {}, {"sampler_nodes": len(samplers), "ambiguous": AMBIGUOUS_OUTPUT}
    inputs = graph[main]["inputs"]
    empty: dict[str, Any] = {"inputs": {}}
    g_inputs = (walk.node(inputs.get("guider")) or empty)["inputs"]
    noise = (walk.node(inputs.get("noise")) or empty)["inputs"]
    sigmas = (walk.node(inputs.get("sigmas")) or empty)["inputs"]
    chooser = (walk.node(inputs.get("sampler")) or empty)["inputs"]

    def first(*candidates: tuple[dict[str, Any], str], names: Iterable[str] = ()) -> Any:
        for where, name in candidates:
            if name in where:
                return walk.scalar(where[name], names or (name,))
        return None

    fields: dict[str, Any] = {"software": "ComfyUI"}
    fields["seed"] = first((inputs, "seed"), (inputs, "noise_seed"), (noise, "noise_seed"),
                           names=SEED_NAMES)
    fields["steps"] = first((inputs, "steps"), (sigmas, "steps"))
    fields["cfg"] = first((inputs, "cfg"), (g_inputs, "cfg"))
    fields["sampler_name"] = first((inputs, "sampler_name"), (chooser, "sampler_name"))
    positive = inputs.get("positive", g_inputs.get("positive", g_inputs.get("conditioning")))
    fields["prompt"] = walk.text(positive, "positive")
    fields["negative_prompt"] = walk.text(inputs.get("negative", g_inputs.get("negative")),
                                          "negative")
    details: dict[str, Any] = {"sampler_node": main, "sampler_class": graph[main]["class_type"],
                               "sampler_nodes": len(samplers)}
    fields["model"], loras = walk.model(inputs.get("model", g_inputs.get("model")))
    if loras:
        details["loras"] = loras
    latent = walk.path(inputs.get("latent_image"), "LATENT", "samples",
                       [w for w, _ in LATENT_SIZE])
    size = latent[-1]["inputs"] if latent else {}
    for width, height in LATENT_SIZE:
        if width in size:
            fields["width"] = walk.scalar(size[width], (width,))
            fields["height"] = walk.scalar(size.get(height), (height,))
            break
    for name in ("scheduler", "denoise"):
        value = first((inputs, name), (sigmas, name))
        if value is not None:
            details[name] = value
    return {k: v for k, v in fields.items() if v is not None}, details
