"""JSON text from image metadata, parsed within bounds: size, nesting depth, integer digits."""

from __future__ import annotations

import json
from typing import Any

from service.evidence.records.limits import MAX_JSON_DEPTH, MAX_JSON_TEXT_BYTES


def parse_json(text: str, what: str, warnings: list[str]) -> Any:
    """The parsed value, or None (with a warning) when it is too large, deep or not JSON."""
    if len(text) > MAX_JSON_TEXT_BYTES:
        warnings.append(f"{what}: JSON of {len(text)} characters not parsed; kept raw")
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting beyond Python's stack
        warnings.append(f"{what}: not valid JSON; kept raw")
        return None
    if _depth_exceeds(value, MAX_JSON_DEPTH):
        warnings.append(f"{what}: JSON nested deeper than {MAX_JSON_DEPTH}; kept raw")
        return None
    return value


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def is_json_object_text(text: str | None) -> bool:
    """Cheap test before parsing: the text looks like a JSON object."""
    return isinstance(text, str) and text.lstrip()[:1] == "{"
