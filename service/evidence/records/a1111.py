"""AUTOMATIC1111 / Forge / SD.Next "infotext": the `parameters` text these web UIs embed.

Layout (modules/infotext_utils.py in stable-diffusion-webui): prompt lines, then optional lines
starting "Negative prompt:", then one line of `Key: value` pairs separated by ", " where a value
containing commas or quotes is JSON-quoted (`Lora hashes: "a: 1f2e, b: 3c4d"`). The Dynamic
Prompts extension appends "Template:" and "Negative Template:" lines after it. Civitai's
generator adds `Civitai resources: [...]` and `Civitai metadata: {...}` as bare JSON.

Found in PNG `parameters`, EXIF UserComment (JPEG/WebP), and XMP `exif:UserComment` or
`dc:description` (converters and forks saving WebP/JPEG with XMP).
"""

from __future__ import annotations

import json
import re
from typing import Any

from service.evidence.records.fooocus import SCHEME_KEY
from service.evidence.records.jsontext import is_json_object_text
from service.evidence.records.limits import MAX_INFOTEXT_LINE_CHARS, MAX_INFOTEXT_PARAMS
from service.evidence.records.record import A1111, FOOOCUS
from service.evidence.records.sources import Found, Reader, Sources

# The web UI's own pattern (re_param_code) with its repeats bounded: unbounded, a long line
# without colons costs quadratic time. Real keys are under 40 characters.
# A bare JSON value (Civitai) runs to the bracket before the next "Key:" or the line's end.
_PARAM = re.compile(r'\s*(\w[\w \-/]{0,63}):\s*("(?:\\.|[^\\"]){1,8192}"'
                    r'|[\[{][^\n]{0,16384}?[\]}](?=\s*,\s*\w[\w \-/]{0,63}:|\s*$)'
                    r'|[^,]*)(?:,|$)')
_TEMPLATE_HEADS = ("Template:", "Negative Template:")
_HASH_LISTS = ("Lora hashes", "TI hashes", "Hypernet hashes", "Hashes")
_JSON_VALUES = ("Civitai resources", "Civitai metadata")
XMP_KEYS = ("user_comment", "description")  # XMP properties that may hold infotext
MIN_PARAMS = 3  # as the web UI: a last line with fewer pairs is still prompt text


def looks_like_infotext(text: str) -> bool:
    """True when the text has an infotext parameters line (Steps and Sampler or Seed)."""
    return "Steps: " in text and ("Sampler: " in text or "Seed: " in text)


def parse_infotext(text: str) -> dict[str, Any]:
    """The infotext as a flat record: "prompt", "Negative prompt", then every `Key: value` pair.

    Quoted values are unquoted; hash lists ("Lora hashes", "TI hashes", "Hypernet hashes") become
    {name: hash} objects and the "Hashes" JSON object is parsed; "Template" and "Negative Template"
    are kept as text.
    """
    lines = text.strip().replace("\r\n", "\n").split("\n")
    templates: dict[str, str] = {}
    current: str | None = None
    body: list[str] = []
    for line in lines:  # the Dynamic Prompts section runs from its first head to the end
        head = next((h for h in _TEMPLATE_HEADS if line.startswith(h)), None)
        if head is not None:
            current = head[:-1]
            templates[current] = line[len(head) :].strip()
        elif current is not None:
            templates[current] += "\n" + line
        else:
            body.append(line)
    params_line = ""
    last = body[-1] if body and len(body[-1]) <= MAX_INFOTEXT_LINE_CHARS else ""
    if len(_PARAM.findall(last)) >= MIN_PARAMS:
        params_line = body.pop()
    prompt: list[str] = []
    negative: list[str] = []
    for raw_line in body:
        line = raw_line.strip()
        if line.startswith("Negative prompt:"):
            negative.append(line[len("Negative prompt:") :].strip())
        elif negative:
            negative.append(line)
        else:
            prompt.append(line)
    record: dict[str, Any] = {"prompt": "\n".join(prompt)}
    if negative:
        record["Negative prompt"] = "\n".join(negative)
    for key, value in _PARAM.findall(params_line)[:MAX_INFOTEXT_PARAMS]:
        record[key.strip()] = _value(key.strip(), value)
    record.update(templates)
    return record


def _value(key: str, value: str) -> Any:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            value = json.loads(value)
        except ValueError:
            value = value[1:-1]
    if key in _JSON_VALUES and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if key == "Hashes":
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        return parsed if isinstance(parsed, dict) else value
    if key in _HASH_LISTS:
        pairs = [part.rpartition(":") for part in value.split(",")]
        if all(sep and name.strip() for name, sep, _ in pairs):
            return {name.strip(): digest.strip() for name, _, digest in pairs}
    return value


def software(record: dict[str, Any]) -> str:
    """Which web UI wrote it: SD.Next says "App"; Forge versions start "f<digit>"; Fooocus and
    others writing this layout put their name in "Version" ("Fooocus v2.5.5")."""
    app = record.get("App")
    version = record.get("Version")
    if isinstance(version, str) and re.match(r"[A-Za-z]{3,}", version):
        return version
    if isinstance(app, str) and app:
        name = app
    elif version is None and any(key in record for key in _JSON_VALUES):
        return "Civitai"
    elif isinstance(version, str) and re.match(r"f\d", version):
        name = "Forge"
    else:
        name = "AUTOMATIC1111"
    return f"{name} {version}" if isinstance(version, str) and version else name


def read(src: Sources) -> Found | None:
    """Infotext from the first place that holds it; Fooocus with its "a1111" scheme too."""
    for key in ("parameters", "UserComment"):
        text = src.texts.get(key)
        if text is not None and not is_json_object_text(text) and looks_like_infotext(text):
            scheme = src.texts.get(SCHEME_KEY, src.texts.get("MakerNote", ""))
            return _found(text, FOOOCUS if scheme == "a1111" else A1111)
    if src.xmp.get("creator_tool") != "Draw Things":  # its description is its own dialect
        for key in XMP_KEYS:
            text = src.xmp.get(key)
            if isinstance(text, str) and looks_like_infotext(text):
                return _found(text, A1111)
    return None


def _found(text: str, source: str) -> Found:
    record = parse_infotext(text)
    details = {k: v for k, v in record.items() if k not in ("prompt", "Negative prompt")}
    fields = {**record, "software": software(record)}
    if "Model" not in record:
        fields["model"] = civitai_checkpoint(record.get("Civitai resources"))
    return Found(source, fields, details)


def civitai_checkpoint(resources: Any) -> str | None:
    """The checkpoint's name when Civitai's resources list exactly one; else None."""
    if not isinstance(resources, list):
        return None
    names = [r.get("modelName") for r in resources
             if isinstance(r, dict) and r.get("type") == "checkpoint"]
    return names[0] if len(names) == 1 and isinstance(names[0], str) else None


READER = Reader("a1111", 50, read)
