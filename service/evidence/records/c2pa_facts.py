"""The facts recorded of a C2PA manifest store, from c2pa-python's report (`Reader.json()`):
the active manifest's generator, signer, actions, ingredients, validation, and, on a
Chronoseal copy, the registration it is a copy of. Every text and list is bounded."""

from __future__ import annotations

from typing import Any

from service.evidence.credentials.definition import REGISTRATION_LABEL
from service.evidence.records.validation import read_validation

MAX_TEXT_CHARS = 512  # a generator, signer or title is a name and a version
MAX_ACTIONS = 32  # actions kept from the active manifest; real ones list a handful
MAX_INGREDIENTS = 16  # ingredients kept; an edit names one or a few
ACTION_KEYS = ("action", "softwareAgent", "digitalSourceType", "when")
SIGNER_KEYS = ("issuer", "common_name", "alg", "time", "cert_serial_number")


def facts_of(report: dict[str, Any]) -> dict[str, Any]:
    """The recorded facts from the SDK's manifest-store report (its `Reader.json()`)."""
    manifests = report.get("manifests") or {}
    label = report.get("active_manifest")
    active = manifests.get(label) if isinstance(label, str) else None
    out: dict[str, Any] = {"manifests": len(manifests)}
    if not isinstance(active, dict):
        out["validation"] = read_validation(report)
        return out
    out["active_manifest"] = _text(label)
    out.update(_generator(active))
    signer = active.get("signature_info")
    if isinstance(signer, dict):
        out["signer"] = {k: _text(signer[k]) for k in SIGNER_KEYS if signer.get(k) is not None}
    out["validation"] = read_validation(report)
    actions = [_action(a) for a in _actions(active)]
    if actions:
        out["actions"] = actions[:MAX_ACTIONS]
    link = _chronoseal_link(active)
    if link:
        out["chronoseal_registration"] = link
    ingredients = [_ingredient(i, manifests) for i in (active.get("ingredients") or [])
                   if isinstance(i, dict)][:MAX_INGREDIENTS]
    if ingredients:
        out["ingredients"] = ingredients
    return out


def _text(value: Any) -> str:
    return str(value)[:MAX_TEXT_CHARS]


def _generator(manifest: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    info = manifest.get("claim_generator_info")
    first = info[0] if isinstance(info, list) and info else info
    generator = manifest.get("claim_generator")
    if not isinstance(generator, str) and isinstance(first, dict):
        name, version = first.get("name"), first.get("version")
        generator = f"{name} {version}" if name and version else name
    if isinstance(generator, str):
        out["claim_generator"] = _text(generator)
    if isinstance(first, dict):
        out["claim_generator_info"] = {k: _text(v) for k, v in first.items()
                                       if k in ("name", "version") and v is not None}
    return out


def _actions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for assertion in manifest.get("assertions") or []:
        if not isinstance(assertion, dict):
            continue
        if str(assertion.get("label", "")).split("__")[0] in ("c2pa.actions", "c2pa.actions.v2"):
            data = assertion.get("data")
            items = data.get("actions") if isinstance(data, dict) else None
            found.extend(a for a in (items or [])[:MAX_ACTIONS] if isinstance(a, dict))
    return found


def _chronoseal_link(manifest: dict[str, Any]) -> dict[str, str]:
    """A Chronoseal copy's manifest names the registration it is a copy of: recorded, so the
    copy's own receipt links to the original's (issue 17)."""
    for assertion in manifest.get("assertions") or []:
        data = assertion.get("data") if isinstance(assertion, dict) else None
        if assertion.get("label") == REGISTRATION_LABEL and isinstance(data, dict):
            return {k: _text(data[k]) for k in ("receipt_id", "manifest_digest")
                    if isinstance(data.get(k), str)}
    return {}


def _action(action: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ACTION_KEYS:
        value = action.get(key)
        if isinstance(value, dict):  # softwareAgent as claim_generator_info (actions v2)
            value = value.get("name")
        if isinstance(value, str):
            out[key] = _text(value)
    return out


def _ingredient(ingredient: dict[str, Any], manifests: dict[str, Any]) -> dict[str, Any]:
    out = {k: _text(ingredient[k]) for k in ("title", "format", "relationship", "active_manifest")
           if isinstance(ingredient.get(k), str)}
    own = manifests.get(str(ingredient.get("active_manifest")))
    if isinstance(own, dict):
        out.update(_generator(own))
    return out
