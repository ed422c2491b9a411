"""The registry of format readers: each format module offers a `Reader`, ranked by priority.

A reader looks at what the container walk found (`Sources`) and returns what its format states
(`Found`), or None when the file carries none of it. Every reader whose format is present is
run; `reader.py` merges their fields, the highest priority first. Adding a format is one module
with its `READER` and one line in `READERS` below.
"""

from __future__ import annotations

from service.evidence.records import (
    a1111,
    c2pa,
    comfyui_reader,
    drawthings,
    easydiffusion,
    fooocus,
    invokeai,
    midjourney,
    novelai,
    swarmui,
    tensorart,
    xmp,
)
from service.evidence.records.sources import Reader

READERS: tuple[Reader, ...] = tuple(sorted(
    (tensorart.READER, comfyui_reader.READER, swarmui.READER, invokeai.READER,
     invokeai.DREAM_READER, novelai.READER, fooocus.READER, drawthings.READER,
     easydiffusion.READER, a1111.READER, midjourney.READER, xmp.READER, c2pa.READER),
    key=lambda reader: -reader.priority,
))
