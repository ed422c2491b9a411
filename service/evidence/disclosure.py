"""Private records: salted commitments to generation fields, and the disclosure that opens them.

Committed bytes, per field: commitment = SHA-256(salt || JCS(value)), where salt is 16 random
bytes (128 bits, from `secrets`), JCS(value) is the RFC 8785 encoding of the field's value in
UTF-8, and `||` is concatenation; the commitment is written as 64 lower-case hex digits. The
manifest of a private record holds `generation = {"private": true, "commitments": {field:
commitment}}` instead of the values. disclosure.json (kept by the creator, never needed by the
server) holds, per field, the salt (32 hex digits), the exact JCS bytes as a string (`jcs`) and
the value itself; a verifier recomputes the commitment from salt and `jcs` and checks that `jcs`
parses to `value`, so no JCS implementation is needed to check it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from service.errors import InvalidInputError, MalformedInputError
from service.evidence.manifest import MAX_METADATA_BYTES, canonicalize

SALT_BYTES = 16  # 128 bits: a guessable value (a seed, a model) cannot be found by trying salts
DISCLOSURE_VERSION = 1
DISCLOSURE_TYPE = "chronoseal.disclosure"
# Generation fields are the normalised record's dozen names plus raw and conflicts; a record
# with more committed fields than this is not one we made.
MAX_COMMITTED_FIELDS = 64
MAX_FIELD_NAME_CHARS = 64
MAX_DISCLOSURE_BYTES = 4 * MAX_METADATA_BYTES  # values (raw included) plus salts and framing
_FIELD_NAME = re.compile(rf"[A-Za-z0-9_][A-Za-z0-9_.-]{{0,{MAX_FIELD_NAME_CHARS - 1}}}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX_SALT = re.compile(rf"[0-9a-f]{{{2 * SALT_BYTES}}}")


@dataclass(frozen=True)
class Opening:
    """What opens one commitment: the salt and the exact JCS bytes of the value."""

    salt: bytes
    jcs: bytes

    @property
    def commitment(self) -> str:
        return commit(self.salt, self.jcs)

    def as_json(self) -> dict[str, Any]:
        text = self.jcs.decode()
        return {"salt": self.salt.hex(), "jcs": text, "value": json.loads(text)}


def commit(salt: bytes, jcs: bytes) -> str:
    """SHA-256(salt || jcs) in hex: the commitment to one field."""
    return hashlib.sha256(salt + jcs).hexdigest()


def commit_generation(generation: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Opening]]:
    """(the private generation object for the manifest, the openings per field)."""
    if len(generation) > MAX_COMMITTED_FIELDS:
        raise MalformedInputError(f"a private record commits at most {MAX_COMMITTED_FIELDS} fields")
    openings = {name: Opening(secrets.token_bytes(SALT_BYTES),
                              canonicalize(value, what=f"generation.{name}"))
                for name, value in generation.items()}
    return private_generation({n: o.commitment for n, o in openings.items()}), openings


def private_generation(commitments: Mapping[str, str]) -> dict[str, Any]:
    """The manifest's generation object for these commitments, checked."""
    return {"private": True, "commitments": dict(check_commitments(commitments))}


def check_commitments(commitments: Any) -> dict[str, str]:
    """Commitments as a caller sent them: {field name: 64 hex}; InvalidInputError otherwise."""
    if not isinstance(commitments, dict) or not 0 < len(commitments) <= MAX_COMMITTED_FIELDS:
        raise InvalidInputError(f"commitments must be an object of 1..{MAX_COMMITTED_FIELDS} "
                                "fields")
    for name, value in commitments.items():
        if not _FIELD_NAME.fullmatch(name):
            raise InvalidInputError(f"commitment field names are 1..{MAX_FIELD_NAME_CHARS} of "
                                    "A-Z a-z 0-9 _ . -")
        if not isinstance(value, str) or not _HEX64.fullmatch(value):
            raise InvalidInputError(f"commitment {name!r} must be 64 lower-case hex digits")
    return dict(commitments)


def disclosure_document(manifest_digest: str, openings: Mapping[str, Opening]) -> bytes:
    """disclosure.json: the openings of the named fields, bound to one manifest digest."""
    doc = {"type": DISCLOSURE_TYPE, "v": DISCLOSURE_VERSION, "manifest_sha256": manifest_digest,
           "fields": {name: o.as_json() for name, o in sorted(openings.items())}}
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def read_disclosure(data: bytes) -> tuple[str, dict[str, Opening]]:
    """(manifest digest, openings) of a disclosure.json; MalformedInputError if not one."""
    if len(data) > MAX_DISCLOSURE_BYTES:
        raise MalformedInputError(f"disclosure.json is larger than {MAX_DISCLOSURE_BYTES} bytes")
    try:
        doc = json.loads(data)
        fields = doc["fields"]
        if doc.get("type") != DISCLOSURE_TYPE or not isinstance(fields, dict):
            raise ValueError("not a Chronoseal disclosure")
        openings = {}
        for name, item in fields.items():
            if not _HEX_SALT.fullmatch(item["salt"]):
                raise ValueError(f"salt of {name!r} is not {SALT_BYTES} bytes in hex")
            json.loads(item["jcs"])  # the committed bytes must be JSON
            openings[name] = Opening(bytes.fromhex(item["salt"]), item["jcs"].encode())
        return str(doc["manifest_sha256"]), openings
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MalformedInputError(f"disclosure.json is not readable: {exc}") from exc


def disclosure_problems(generation: Any, data: bytes, manifest_digest: str) -> list[str]:
    """Why disclosure.json does not open this manifest's commitments; empty when it does."""
    try:
        digest, openings = read_disclosure(data)
        doc_fields = json.loads(data)["fields"]
    except MalformedInputError as exc:
        return [str(exc)]
    commitments = generation.get("commitments") if isinstance(generation, dict) else None
    if not isinstance(commitments, dict):
        return ["disclosure.json is present but the manifest holds no commitments"]
    problems = [] if hmac.compare_digest(digest, manifest_digest) else [
        "disclosure.json names another manifest"]
    for name, opening in openings.items():
        stated = commitments.get(name)
        if not isinstance(stated, str) or not hmac.compare_digest(opening.commitment, stated):
            problems.append(f"field {name!r}: SHA-256(salt || jcs) is not its commitment")
        elif json.loads(opening.jcs) != doc_fields[name].get("value"):
            problems.append(f"field {name!r}: value differs from the committed jcs")
    return problems


def select_fields(openings: Mapping[str, Opening], names: Iterable[str]) -> dict[str, Opening]:
    """The openings of just these fields; MalformedInputError naming any not in the record."""
    wanted = list(dict.fromkeys(names))
    missing = [n for n in wanted if n not in openings]
    if missing:
        raise MalformedInputError(f"the disclosure holds no field {', '.join(missing)}; it has "
                                  f"{', '.join(sorted(openings))}")
    return {n: openings[n] for n in wanted}
