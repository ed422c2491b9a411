"""What format readers see (`Sources`), return (`Found`) and are (`Reader`); the registry of
readers is `registry.READERS`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from service.evidence.records.jsontext import is_json_object_text, parse_json


@dataclass
class Sources:
    """What a file carries, as readers see it: texts by chunk keyword or EXIF tag name, XMP
    properties, IPTC datasets, the C2PA facts, and the warnings list readers add to."""

    texts: dict[str, str] = field(default_factory=dict)
    xmp: dict[str, Any] = field(default_factory=dict)
    iptc: dict[str, Any] = field(default_factory=dict)
    c2pa: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    _json: dict[str, Any] = field(default_factory=dict)

    def json(self, key: str) -> Any:
        """texts[key] parsed as a JSON object (bounded, parsed once), or None."""
        if key not in self._json:
            text = self.texts.get(key)
            self._json[key] = (parse_json(text, key, self.warnings)
                               if text is not None and is_json_object_text(text) else None)
        return self._json[key]


class Found(NamedTuple):
    """A format's reading: its source name, fields (any spelling `normalise` knows), details."""

    source: str
    fields: dict[str, Any]
    details: dict[str, Any]


@dataclass(frozen=True)
class Reader:
    """`name` is unique (conflicts name it); a higher `priority` wins a field two readers state
    and names the record's `source`. Priorities: a tool's own structured record (90-70) over
    infotext text (50), over descriptions (40) and provenance-only XMP and C2PA (20-10).
    A `fallback` reader (provenance only) counts only when no other reader found a record."""

    name: str
    priority: int
    read: Callable[[Sources], Found | None]
    fallback: bool = False
