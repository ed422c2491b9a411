"""XMP provenance fields written by Midjourney, Firefly, DALL-E and editors: IPTC's
DigitalSourceType (trainedAlgorithmicMedia for AI-generated images), credit, creator, creator tool
and description. Properties may be elements or attributes of rdf:Description; both are read.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405 - DTDs are refused before parsing, see below
from typing import Any

from service.evidence.records.limits import MAX_XMP_BYTES
from service.evidence.records.record import XMP
from service.evidence.records.sources import Found, Reader, Sources

IPTC_DIGITAL_SOURCE = "http://cv.iptc.org/newscodes/digitalsourcetype/"
AI_SOURCE_TYPES = ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia",
                   "algorithmicMedia")
# Local property name -> key in the result; namespaces differ between writers, names do not.
PROPERTIES = {
    "DigitalSourceType": "digital_source_type",
    "Credit": "credit",
    "creator": "creator",
    "CreatorTool": "creator_tool",
    "description": "description",
    "title": "title",
    "DigitalSourceFileType": "digital_source_type",  # the pre-2014 IPTC name
    "UserComment": "user_comment",  # exif:UserComment: Draw Things' JSON, converters' infotext
}


def read_xmp(packet: str, warnings: list[str]) -> dict[str, Any]:
    """The PROPERTIES found in an XMP packet; {} (with a warning) when it cannot be read safely."""
    packet = packet[:MAX_XMP_BYTES]
    if "<!DOCTYPE" in packet or "<!ENTITY" in packet:  # entity expansion bombs need a DTD
        warnings.append("XMP with a DTD refused")
        return {}
    start, end = packet.find("<x:xmpmeta"), packet.rfind("</x:xmpmeta>")
    body = packet[start : end + len("</x:xmpmeta>")] if 0 <= start < end else packet.strip()
    try:
        root = ET.fromstring(body)  # noqa: S314 - no DTD (checked above), bounded size
    except ET.ParseError:
        warnings.append("XMP is not well-formed XML; ignored")
        return {}
    out: dict[str, Any] = {}
    for element in root.iter():
        for attr, value in element.attrib.items():
            _put(out, _local(attr), value)
        name = _local(element.tag)
        if name in PROPERTIES:
            items = [li.text.strip() for li in element.iter() if _local(li.tag) == "li" and li.text]
            text = (element.text or "").strip()
            _put(out, name, items[0] if len(items) == 1 else items or text)
    return out


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _put(out: dict[str, Any], name: str, value: Any) -> None:
    key = PROPERTIES.get(name)
    if key is not None and value and key not in out:
        out[key] = value


def is_ai_generated(props: dict[str, Any]) -> bool:
    value = props.get("digital_source_type")
    return isinstance(value, str) and value.rsplit("/", 1)[-1] in AI_SOURCE_TYPES


def read(src: Sources) -> Found | None:
    """An AI-generated mark (Firefly, DALL-E...) with its description and creator tool."""
    if not is_ai_generated(src.xmp):
        return None
    return Found(XMP, {"prompt": src.xmp.get("description"),
                       "software": src.xmp.get("creator_tool")}, {})


READER = Reader("xmp", 20, read, fallback=True)
