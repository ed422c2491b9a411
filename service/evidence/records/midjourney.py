"""Midjourney: the prompt as typed (with its --parameters) followed by "Job ID: <uuid>", in
the PNG `Description` text, EXIF ImageDescription, XMP dc:description or IPTC caption; the
Author text or XMP creator is the account. Only `--seed N` in the prompt states a seed."""

from __future__ import annotations

import re
from typing import Any

from service.evidence.records.record import MIDJOURNEY
from service.evidence.records.sources import Found, Reader, Sources

_JOB = re.compile(r"\s*Job ID:\s*([0-9a-fA-F-]{32,36})\s*$")
_SEED = re.compile(r"(?:^|\s)--seed\s+(\d{1,10})(?=\s|$)")
_VERSION = re.compile(r"(?:^|\s)--(v|version|niji)\s+([0-9.]{1,5})(?=\s|$)")


def read(src: Sources) -> Found | None:
    for text in (src.texts.get("Description"), src.texts.get("ImageDescription"),
                 src.xmp.get("description"), src.iptc.get("caption")):
        match = _JOB.search(text) if isinstance(text, str) else None
        if match is None or not isinstance(text, str):
            continue
        prompt = text[: match.start()].strip()
        fields: dict[str, Any] = {"prompt": prompt, "software": "Midjourney"}
        seed = _SEED.findall(prompt)
        if len(seed) == 1:
            fields["seed"] = seed[0]
        details: dict[str, Any] = {"job_id": match[1]}
        version = _VERSION.findall(prompt)
        if len(version) == 1:
            details["version"] = " ".join(version[0])
        author = src.texts.get("Author")
        if author:
            details["author"] = author
        return Found(MIDJOURNEY, fields, details)
    return None


READER = Reader("midjourney", 40, read)
