"""GET /openapi.json: the hand-written OpenAPI 3.1 document; a test checks it covers every route."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from service.web.problems import ALL_PROBLEMS, PROBLEM_MEDIA_TYPE
from service.webhooks.events import EVENTS

bp = Blueprint("openapi", __name__)

_REF = "#/components/schemas/"
_BEARER: list[dict[str, list[str]]] = [{"apiKey": []}]
_ID = {"name": "receipt_id", "in": "path", "required": True, "schema": {"type": "string"},
       "description": "Receipt id (rcp_...)"}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": _REF + "Problem"}}}}


def _json(ref: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": _REF + ref}}}}


def _rate_limited(description: str) -> dict[str, Any]:
    return {**_problem(f"rate-limited: {description}"), "headers": {"Retry-After": {
        "schema": {"type": "integer", "minimum": 1}, "description": "seconds to wait"}}}


_AUTH_ERRORS = {"401": _problem("Missing, unknown or revoked API key (WWW-Authenticate: Bearer)"),
                "429": _rate_limited("too many unknown keys from this address; keys from it "
                                     "are not looked up until Retry-After")}
_ROUTE_LIMITED = {"429": _rate_limited("over the route's limit for this key or address "
                                       "(rate_limit_* settings), or too many unknown keys")}
_NOT_FOUND = {"404": _problem("No such receipt for this key")}
_NULLABLE_STR = {"type": ["string", "null"]}

SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object", "description": "RFC 9457 problem details",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string", "enum": sorted(p.type for p in ALL_PROBLEMS)},
            "title": {"type": "string"}, "status": {"type": "integer"},
            "detail": {"type": "string"},
        },
    },
    "Links": {
        "type": "object", "required": ["self", "bundle", "tokens"],
        "properties": {k: {"type": "string"} for k in ("self", "bundle", "tokens")},
    },
    "Accepted": {
        "type": "object", "required": ["id", "status", "links", "warnings"],
        "properties": {
            "id": {"type": "string"}, "status": {"enum": ["pending", "stamped", "failed"]},
            "manifest_digest": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "links": {"$ref": _REF + "Links"},
            "warnings": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Summary": {
        "type": "object", "required": ["id", "status", "manifest_digest", "links", "warnings"],
        "properties": {
            "id": {"type": "string"}, "status": {"enum": ["pending", "stamped", "failed"]},
            "created_at": {"type": "string", "format": "date-time"},
            "manifest_digest": {"type": "string"}, "image_sha256": {"type": "string"},
            "external_id": _NULLABLE_STR,
            "stamped_at": {"type": ["string", "null"], "format": "date-time"},
            "failure": {"type": ["string", "null"], "description": "why it failed (failed only)"},
            "last_error": {"type": "string", "description": "latest TSA error (pending only)"},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "links": {"$ref": _REF + "Links"},
        },
    },
    "Token": {
        "type": "object", "required": ["tsa", "gen_time", "serial", "token"],
        "properties": {
            "tsa": {"type": "string"}, "gen_time": {"type": "string", "format": "date-time"},
            "serial": {"type": "string", "description": "TSTInfo serial number, decimal"},
            "token": {"type": "string", "contentEncoding": "base64",
                      "description": "DER TimeStampResp (RFC 3161)"},
            "links": {"type": "object", "properties": {"self": {"type": "string"}}},
        },
    },
    "Receipt": {
        "allOf": [{"$ref": _REF + "Summary"}, {
            "type": "object",
            "properties": {
                "manifest": {"type": "object", "description": "the manifest whose JCS was hashed"},
                "public": {"type": "boolean"},
                "proof": {"type": ["object", "null"],
                          "description": "RFC 9162 inclusion proof (proof.json), once stamped"},
                "tokens": {"type": "array", "items": {"$ref": _REF + "Token"}},
            },
        }],
    },
    "ReceiptPage": {
        "type": "object", "required": ["items", "next_cursor"],
        "properties": {"items": {"type": "array", "items": {"$ref": _REF + "Summary"}},
                       "next_cursor": _NULLABLE_STR},
    },
    "Health": {
        "type": "object", "required": ["status", "disk"],
        "properties": {"status": {"enum": ["ok", "degraded"]},
                       "disk": {"type": "object", "required": ["state"],
                                "description": "the disk registrations write to: ok, low "
                                               "(under min_free_disk_bytes) or full (under "
                                               "disk_reserve_bytes), with free_bytes",
                                "properties": {"state": {"enum": ["ok", "low", "full"]}}}},
    },
    "PartState": {
        "type": "object", "required": ["state"],
        "description": "reason says why when state is not ok; other members are facts "
                       "(free_bytes, live workers, last_token_at, failed_at, ...)",
        "properties": {"state": {"enum": ["ok", "down", "unknown"]},
                       "reason": {"type": "string"}},
    },
    "Readiness": {
        "type": "object", "required": ["status", "parts", "tsas"],
        "properties": {
            "status": {"const": "ok"},
            "parts": {"type": "object", "description": "database, redis, workers, disk, tsas",
                      "additionalProperties": {"$ref": _REF + "PartState"}},
            "tsas": {"type": "object", "description": "each enabled TSA by name: its last "
                                                      "recorded outcome (never probed)",
                     "additionalProperties": {"$ref": _REF + "PartState"}},
        },
    },
}

_REGISTER_FIELDS = {
    "metadata": {"type": "string", "description": "the generation record: a JSON object"},
    "callback_url": {"anyOf": [{"type": "string", "format": "uri", "maxLength": 2048},
                               {"const": ""}], "description": "empty or omitted for none"},
    "external_id": {"type": "string", "minLength": 1, "maxLength": 200,
                    "description": "omit it for none (null is refused)"},
}

REGISTER = {
    "summary": "Register an image (or its SHA-256) for timestamping",
    "security": _BEARER,
    "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                    "schema": {"type": "string", "maxLength": 255},
                    "description": "a repeat with the same body returns the same receipt"}],
    "requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {
            "type": "object", "required": ["image"],
            "properties": {"image": {"type": "string",
                                     "contentMediaType": "application/octet-stream"},
                           **_REGISTER_FIELDS,
                           "public": {"type": "string", "enum": ["true", "false"]}},
        }},
        "application/json": {"schema": {
            "type": "object", "required": ["sha256"], "additionalProperties": False,
            "properties": {"sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
                           **_REGISTER_FIELDS, "metadata": {"type": "object"},
                           "public": {"type": "boolean"},
                           "record": {"$ref": _REF + "FileRecord"}},
        }},
    }},
    "responses": {
        "202": {**_json("Accepted", "Receipt created (or replayed), pending stamping"),
                "headers": {"Location": {"schema": {"type": "string"}}}},
        "400": _problem("invalid-metadata, metadata-out-of-bounds, invalid-digest, "
                        "invalid-callback-url, url-refused, invalid-field"),
        **_AUTH_ERRORS,
        "409": _problem("idempotency-conflict: the key was used with another body"),
        "413": _problem("payload-too-large: the image exceeds max_upload_bytes"),
        "415": _problem("unsupported-media-type"),
        **_ROUTE_LIMITED,
        "507": _problem("insufficient-storage: the data directory has no room left (under "
                        "disk_reserve_bytes); nothing was stored, Retry-After says when to "
                        "try again"),
    },
}


def _get(summary: str, ok: dict[str, Any], *, params: list[Any], errors: dict[str, Any],
         secured: bool = True) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "parameters": params,
                          "responses": {"200": ok, **errors}}
    op["security"] = _BEARER if secured else []
    return {"get": op}


def _binary(media_type: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {media_type: {"schema": {"type": "string", "contentMediaType": media_type}}}}


PATHS: dict[str, Any] = {
    "/healthz": _get("Liveness: a stamping worker heartbeats and no child is in a crash loop "
                     "(asks no database); status degraded while the disk is low or full",
                     _json("Health", "Alive"), params=[],
                     errors={"503": _problem("unavailable: failing names the parts (workers, "
                                             "supervisor), detail says why")},
                     secured=False),
    "/readyz": _get("Readiness: an upload made now will be stamped",
                    _json("Readiness", "Every part is ready"), params=[],
                    errors={"503": _problem("unavailable: not_ready names the parts, with the "
                                            "same parts and tsas members as the 200")},
                    secured=False),
    "/openapi.json": _get("This document", {"description": "OpenAPI 3.1",
                                            "content": {"application/json": {}}},
                          params=[], errors={}, secured=False),
    "/metrics": _get("Prometheus metrics (text format); not served here when metrics_port is set",
                     {"description": "Every metric family",
                      "content": {"text/plain": {"schema": {"type": "string"}}}},
                     params=[], errors={"401": _problem("unauthorized: metrics_token is set and "
                                                        "the Bearer token is not it")},
                     secured=False),
    "/v1/stamps": {
        "post": REGISTER,
        **_get("List the key's receipts, newest first", _json("ReceiptPage", "A page"), params=[
            {"name": "status", "in": "query", "schema": {"enum": ["pending", "stamped", "failed"]}},
            {"name": "external_id", "in": "query", "schema": {"type": "string"}},
            {"name": "limit", "in": "query",
             "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
            {"name": "cursor", "in": "query", "schema": {"type": "string"},
             "description": "next_cursor of the previous page (opaque)"},
        ], errors={"400": _problem("invalid-field"), **_AUTH_ERRORS}),
    },
    "/v1/stamps/{receipt_id}": _get(
        "Status, manifest, proof and tokens", _json("Receipt", "The receipt"),
        params=[_ID], errors={**_AUTH_ERRORS, **_NOT_FOUND}),
    "/v1/stamps/{receipt_id}/tokens": _get(
        "The receipt's tokens", {"description": "Tokens (empty until stamped)", "content": {
            "application/json": {"schema": {"type": "object", "properties": {"tokens": {
                "type": "array", "items": {"$ref": _REF + "Token"}}}}}}},
        params=[_ID], errors={**_AUTH_ERRORS, **_NOT_FOUND}),
    "/v1/stamps/{receipt_id}/tokens/{tsa}.tsr": _get(
        "One TSA's DER TimeStampResp", _binary("application/timestamp-reply", "RFC 3161 reply"),
        params=[_ID, {"name": "tsa", "in": "path", "required": True,
                      "schema": {"type": "string"}}],
        errors={**_AUTH_ERRORS, **_NOT_FOUND}),
    "/v1/stamps/{receipt_id}/bundle": _get(
        "The evidence bundle (ZIP, verifiable offline)",
        _binary("application/zip", "manifest.json, proof.json, tokens/, certs/, verify.py..."),
        params=[_ID, {"name": "lang", "in": "query", "schema": {"enum": ["en", "zh"]},
                      "description": "the exhibit's language; overrides Accept-Language"}],
        errors={**_AUTH_ERRORS, **_NOT_FOUND,
                "409": _problem("not-ready: the receipt is not stamped yet")}),
    # -- the exhibit (issue 15 §2) --
    **{f"/v1/stamps/{{receipt_id}}/certificate.{kind}": _get(
        f"The bundle's certificate.{kind} (the exhibit), in the language of lang or "
        "Accept-Language", _binary(media_type, f"certificate.{kind}, A4"),
        params=[_ID, {"name": "lang", "in": "query", "schema": {"enum": ["en", "zh"]},
                      "description": "overrides Accept-Language"}],
        errors={**_AUTH_ERRORS, **_NOT_FOUND,
                "409": _problem("not-ready: the receipt is not stamped yet"),
                **({"503": _problem("exhibit-unavailable: this server cannot print PDFs")}
                   if kind == "pdf" else {})})
       for kind, media_type in (("pdf", "application/pdf"), ("html", "text/html"))},
}

SCHEMAS["BundleVerdict"] = {
    "type": "object", "required": ["valid", "reasons", "checks", "timestamps"],
    "description": "check_bundle's verdict; the service trusts only its configured TSAs' roots",
    "properties": {
        "valid": {"type": "boolean"},
        "reasons": {"type": "array", "items": {"type": "string"},
                    "description": "each failed check as 'name: detail'"},
        "image_checked": {"type": "boolean"}, "trust": {"type": "string"},
        "manifest_digest": _NULLABLE_STR, "manifest": {"type": ["object", "null"]},
        "proof": {"type": ["object", "null"]},
        "timestamps": {"type": "array", "items": {"type": "object"}},
        "checks": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string", "description": "manifest, image, leaf, proof, tokens, "
                                                      "token:<tsa>"},
            "ok": {"type": ["boolean", "null"]}, "detail": {"type": "string"}}}},
    },
}
SCHEMAS["PublicVerdict"] = {
    "type": "object", "required": ["valid", "failed_checks", "timestamps"],
    "description": "for a public receipt asked about without its owner's key",
    "properties": {
        "valid": {"type": "boolean"}, "image_checked": {"type": "boolean"},
        "failed_checks": {"type": "array", "items": {"type": "string"}},
        "timestamps": {"type": "array", "items": {"type": "object", "properties": {
            "tsa": {"type": "string"}, "valid": {"type": "boolean"},
            "gen_time": {"type": ["string", "null"], "format": "date-time"}}}},
    },
}
_VERIFY_FIELDS = {
    "sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$",
               "description": "the image's digest (instead of the image)"},
    "receipt_id": {"type": "string", "minLength": 1, "maxLength": 100,
                   "description": "instead of a bundle: the service builds the receipt's bundle"},
    "partial_chain": {"type": "boolean", "default": False,
                      "description": "also trust configured roots that are not self-signed (an "
                                     "intermediate or TSA certificate), as openssl's "
                                     "-partial_chain; the verdict names the anchor used. In a "
                                     "form: true or false"},
}
PATHS["/v1/verify"] = {"post": {
    "summary": "Verify an image (or digest) against an evidence bundle or a receipt",
    "description": "No key needed. A receipt id answers in full for its owner's key "
                   "(Authorization: Bearer); otherwise only public receipts answer, with "
                   "PublicVerdict; a private one is a 404. Bundles are checked against the "
                   "roots of the TSAs the service is configured with, never bundled roots.",
    "security": [{}, {"apiKey": []}],
    "requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "image": {"type": "string", "contentMediaType": "application/octet-stream",
                      "description": "at most max_upload_bytes"},
            "bundle": {"type": "string", "contentMediaType": "application/zip",
                       "description": "the ZIP of /v1/stamps/{id}/bundle, at most 4 MiB"},
            **_VERIFY_FIELDS}}},
        "application/json": {"schema": {"type": "object", "additionalProperties": False,
                                        "required": ["receipt_id"],
                                        "properties": _VERIFY_FIELDS}},
    }},
    "responses": {
        "200": {"description": "The verdict, valid or not",
                "content": {"application/json": {"schema": {"oneOf": [
                    {"$ref": _REF + "BundleVerdict"}, {"$ref": _REF + "PublicVerdict"}]}}}},
        "400": _problem("invalid-field (not a bundle, bundle and receipt_id both or neither, "
                        "partial_chain not a boolean), invalid-digest"),
        **_AUTH_ERRORS,
        "404": _problem("no such receipt, or private and not the caller's"),
        "409": _problem("not-ready: the receipt is not stamped yet"),
        "413": _problem("payload-too-large"),
        "415": _problem("unsupported-media-type"),
        **_ROUTE_LIMITED,
    },
}}
SCHEMAS["SearchMatch"] = {
    "type": "object", "required": ["id", "distance", "similarity", "stamped_at", "tsa_times"],
    "description": "an earlier registration that looks like the image; anonymous callers get "
                   "id, times and digest only",
    "properties": {
        "id": {"type": "string"},
        "distance": {"type": "integer", "minimum": 0, "maximum": 256,
                     "description": "differing bits of the 256-bit perceptual hash"},
        "similarity": {"type": "number", "minimum": 0, "maximum": 1},
        "stamped_at": {"type": ["string", "null"], "format": "date-time"},
        "tsa_times": {"type": "object", "additionalProperties": {"type": "string"},
                      "description": "genTime of each TSA's token, by TSA name"},
        "created_at": {"type": "string", "format": "date-time"},
        "image_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "public": {"type": "boolean"}, "links": {"$ref": _REF + "Links"},
    },
}
PATHS["/v1/search"] = {"post": {
    "summary": "Find earlier registrations of images that look like this one",
    "description": "Perceptual search (re-encoded, resized, cropped, watermarked, mirrored "
                   "copies). With a key: the key's receipts and public ones; without: public "
                   "receipts only. Closest first (ties: older first), at most 50; `earliest` "
                   "is the earliest registration of the same picture among all matches (the "
                   "priority claim), `total` how many matched; empty when nothing is close.",
    "security": [{}, {"apiKey": []}],
    "requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["image"],
                                           "properties": {"image": {
            "type": "string", "contentMediaType": "application/octet-stream",
            "description": "at most max_upload_bytes and 25 megapixels decoded (a JPEG "
                           "is decoded reduced, so up to 50 megapixels)"}}}}}},
    "responses": {
        "200": {"description": "Matches, closest first", "content": {"application/json": {
            "schema": {"type": "object", "required": ["matches", "earliest", "total"],
                       "properties": {
                "matches": {"type": "array", "maxItems": 50,
                            "items": {"$ref": _REF + "SearchMatch"}},
                "earliest": {"oneOf": [{"$ref": _REF + "SearchMatch"}, {"type": "null"}],
                             "description": "the earliest registration among the matches "
                                            "that are the same picture (within 32 bits, or "
                                            "as close as the closest match)"},
                "total": {"type": "integer", "minimum": 0,
                          "description": "matches in all, beyond the cap too"}}}}}},
        "400": _problem("unreadable-image (not an image), invalid-field"),
        **_AUTH_ERRORS,
        "413": _problem("payload-too-large, image-too-many-pixels (over the query's "
                        "pixel bound, or a decompression bomb)"),
        "415": _problem("unsupported-media-type"),
        **_ROUTE_LIMITED,
        "503": _problem("decode-busy: this process is decoding all the pixels its memory "
                        "allows; Retry-After says when to try again"),
    },
}}

# Webhooks (issue 5): callback secret, endpoints, delivery log, integrations, inbound hooks.
_SECRET = {"type": "string", "pattern": "^whsec_", "description": "Standard Webhooks secret"}
_EVENTS = {"type": "array", "items": {"enum": list(EVENTS)}}
SCHEMAS["Secret"] = {"type": "object", "required": ["secret"],
                     "properties": {"id": {"type": "string"}, "secret": _SECRET}}
SCHEMAS["Endpoint"] = {
    "type": "object", "required": ["id", "url", "events"],
    "properties": {"id": {"type": "string"}, "url": {"type": "string", "format": "uri"},
                   "events": _EVENTS, "created_at": {"type": "string", "format": "date-time"},
                   "secret": {**_SECRET, "description": "only when created"}},
}
SCHEMAS["Delivery"] = {
    "type": "object", "required": ["id", "event", "status", "attempts"],
    "properties": {
        "id": {"type": "string", "description": "the webhook-id header, the same on retries"},
        "event": {"type": "string"}, "endpoint_id": _NULLABLE_STR, "receipt_id": _NULLABLE_STR,
        "url": {"type": "string"}, "status": {"enum": ["pending", "succeeded", "failed"]},
        "attempts": {"type": "integer"}, "next_attempt_at": _NULLABLE_STR,
        "last_status_code": {"type": ["integer", "null"]}, "last_error": _NULLABLE_STR,
        "created_at": {"type": "string"}, "delivered_at": _NULLABLE_STR,
    },
}
SCHEMAS["Integration"] = {
    "type": "object", "required": ["id", "name", "url"],
    "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                   "url": {"type": "string", "description": "POST /v1/hooks/{integration}"},
                   "secret": {**_SECRET, "description": "only when created"}},
}
SCHEMAS["PostPublished"] = {
    "type": "object", "required": ["type", "data"],
    "properties": {"type": {"const": "post.published"}, "timestamp": {"type": "string"},
                   "data": {"type": "object", "required": ["image", "publication"],
                            "properties": {
                                "image": {"type": "object", "description":
                                          '{"base64": ...} or {"url": "https://..."}'},
                                "generation": {"type": "object"},
                                "publication": {"type": "object", "required": [
                                    "platform", "post_url", "published_at"]},
                                "external_id": {"type": "string"},
                                "callback_url": {"type": "string"}}}},
}


def _items(ref: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {
        "type": "object", "properties": {"items": {"type": "array",
                                                   "items": {"$ref": _REF + ref}}}}}}}


def _op(summary: str, responses: dict[str, Any], *, params: list[Any] | None = None,
        body: dict[str, Any] | None = None, secured: bool = True) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "parameters": params or [],
                          "security": _BEARER if secured else [],
                          "responses": {**responses, **(_AUTH_ERRORS if secured else {})}}
    if body is not None:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": body}}}
    return op


def _path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


PATHS["/v1/webhooks/secret"] = {"get": _op(
    "The key's secret for callbacks to receipts' callback_url",
    {"200": _json("Secret", "The secret")})}
PATHS["/v1/webhooks/secret/rotate"] = {"post": _op(
    "Replace the callback secret", {"200": _json("Secret", "The new secret")})}
PATHS["/v1/webhooks/endpoints"] = {
    "post": _op("Register an endpoint for events; its secret is shown once",
                {"201": _json("Endpoint", "Created, with its secret"),
                 "400": _problem("invalid-field, url-refused (SSRF guard)")},
                body={"type": "object", "required": ["url"],
                      "properties": {"url": {"type": "string", "format": "uri", "minLength": 1,
                                             "maxLength": 2048},
                                     "events": _EVENTS}}),
    "get": _op("The key's endpoints (no secrets)", {"200": _items("Endpoint", "Endpoints")}),
}
PATHS["/v1/webhooks/endpoints/{endpoint_id}"] = {"delete": _op(
    "Stop sending to an endpoint (its log stays)",
    {"204": {"description": "Deleted"}, **_NOT_FOUND}, params=[_path_id("endpoint_id")])}
PATHS["/v1/webhooks/endpoints/{endpoint_id}/rotate"] = {"post": _op(
    "A new secret for the endpoint", {"200": _json("Secret", "The new secret"), **_NOT_FOUND},
    params=[_path_id("endpoint_id")])}
PATHS["/v1/webhooks/deliveries"] = {"get": _op(
    "The delivery log, newest first", {"200": _items("Delivery", "Deliveries"),
                                       "400": _problem("invalid-field")},
    params=[{"name": "endpoint_id", "in": "query", "schema": {"type": "string"}},
            {"name": "status", "in": "query",
             "schema": {"enum": ["pending", "succeeded", "failed"]}},
            {"name": "limit", "in": "query",
             "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}}])}
PATHS["/v1/webhooks/deliveries/{delivery_id}"] = {"get": _op(
    "One delivery with its attempts (when, duration, status code, error)",
    {"200": {"description": "The delivery", "content": {"application/json": {"schema": {
        "allOf": [{"$ref": _REF + "Delivery"}, {"type": "object", "properties": {
            "attempts_log": {"type": "array", "items": {"type": "object", "properties": {
                "attempt": {"type": "integer"}, "started_at": {"type": "string"},
                "duration_ms": {"type": "integer"},
                "status_code": {"type": ["integer", "null"]}, "error": _NULLABLE_STR}}}}}]}}}},
     **_NOT_FOUND}, params=[_path_id("delivery_id")])}
PATHS["/v1/webhooks/deliveries/{delivery_id}/redeliver"] = {"post": _op(
    "Send a delivery again from the start of the schedule (same id and body)",
    {"202": _json("Delivery", "Pending again"), **_NOT_FOUND}, params=[_path_id("delivery_id")])}
PATHS["/v1/integrations"] = {
    "post": _op("Create an inbound hook for a posting tool; its secret is shown once",
                {"201": _json("Integration", "Created, with its secret"),
                 "400": _problem("invalid-field")},
                body={"type": "object", "required": ["name"],
                      "properties": {"name": {"type": "string", "minLength": 1,
                                              "maxLength": 200}}}),
    "get": _op("The key's integrations (no secrets)",
               {"200": _items("Integration", "Integrations")}),
}
PATHS["/v1/integrations/{integration_id}/rotate"] = {"post": _op(
    "A new secret for the integration (the old one stops verifying at once)",
    {"200": _json("Secret", "The new secret"), **_NOT_FOUND},
    params=[_path_id("integration_id")])}
PATHS["/v1/hooks/{integration_id}"] = {"post": _op(
    "A posting tool announces a publication (Standard Webhooks, signed with the integration's "
    "secret); the image is registered in the queue",
    {"202": _json("Accepted", "Accepted (or a repeated webhook-id: the same receipt)"),
     "400": _problem("bad-request, url-refused"),
     "401": _problem("invalid-signature: missing, stale (over 5 minutes) or wrong signature"),
     "404": _problem("not-found: no such integration"),
     "413": _problem("payload-too-large"),
     "429": _rate_limited("over rate_limit_inbound_per_address (every request) or "
                          "rate_limit_inbound_per_integration (signed messages)")},
    params=[_path_id("integration_id")] + [
        {"name": h, "in": "header", "required": True, "schema": {"type": "string"}}
        for h in ("webhook-id", "webhook-timestamp", "webhook-signature")],
    body={"$ref": _REF + "PostPublished"}, secured=False)}


# Content Credentials (issue 17)
PATHS["/v1/stamps/{receipt_id}/content-credentials"] = {"get": {
    "summary": "A copy of the uploaded image with a signed C2PA manifest of its registration",
    "description": "The copy is registered too, as a child of this receipt: its receipt id is "
                   "in the Chronoseal-Receipt header, the original's in Chronoseal-Copy-Of. "
                   "Registered once: later calls answer the same copy (Idempotent-Replayed: "
                   "true) while its bytes are kept. Needs the image kept on the server "
                   "(keep_images).",
    "parameters": [_ID], "security": _BEARER,
    "responses": {
        "200": {"description": "The image with its Content Credentials", "content": {
            t: {"schema": {"type": "string", "contentMediaType": t}}
            for t in ("image/png", "image/jpeg", "image/webp")},
            "headers": {h: {"schema": {"type": "string"}}
                        for h in ("Chronoseal-Receipt", "Chronoseal-Copy-Of", "Link",
                                  "Idempotent-Replayed")}},
        **_AUTH_ERRORS, **_ROUTE_LIMITED, **_NOT_FOUND,
        "409": _problem("not-ready (not stamped yet) or image-not-kept (only a digest was "
                        "registered, or the image was dropped after hashing)"),
        "502": _problem("embed-failed: the C2PA SDK or its TSA failed"),
    }}}
PATHS["/c2pa/root.pem"] = _get(
    "The root of Chronoseal's C2PA signing certificate (add it to a viewer's trust list)",
    _binary("application/x-pem-file", "PEM certificate"), params=[], errors={}, secured=False)

# Issue 14 §2 and §4 (the iteration history, private records): the fields usecases.lineage
# reads on every registration path, GET /v1/sessions/{id} and ?history=true on bundles.
_SESSION = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$",
            "description": "the working session this registration belongs to"}
_PARENT = {"type": "string", "pattern": "^(rcp_[0-9A-HJKMNP-TV-Z]{26}|[0-9a-fA-F]{64})$"}
_COMMITMENTS = {"type": "object", "maxProperties": 64,
                "additionalProperties": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                "description": "private record computed by the client: field -> "
                               "SHA-256(16-byte salt || RFC 8785 value), hex; with no metadata"}
_LINEAGE_JSON = {
    "session": _SESSION,
    "parents": {"type": "array", "maxItems": 16, "items": _PARENT,
                "description": "earlier iterations: receipt ids of this key (resolved to their "
                               "manifest digests) or image SHA-256 digests"},
    "private_record": {"type": "boolean", "description": "the manifest holds salted "
                       "commitments instead of the generation fields; the answer's disclosure "
                       "opens them"},
    "commitments": _COMMITMENTS,
    "store_disclosure": {"type": "boolean", "description": "keep the disclosure with the "
                         "receipt (its bundle then carries disclosure.json)"},
}
_BODIES = REGISTER["requestBody"]["content"]
_BODIES["application/json"]["schema"]["properties"].update(_LINEAGE_JSON)
_BODIES["multipart/form-data"]["schema"]["properties"].update({
    "session": _SESSION,
    "parents": {"type": "string", "description": "a JSON array or comma-separated list"},
    "private_record": {"type": "string", "enum": ["true", "false"]},
    "store_disclosure": {"type": "string", "enum": ["true", "false"]},
})
REGISTER["responses"]["400"] = _problem(
    "invalid-metadata, metadata-out-of-bounds, invalid-digest, invalid-callback-url, "
    "url-refused, invalid-field, unknown-parent (a parent receipt this key does not own)")
SCHEMAS["Accepted"]["properties"]["disclosure"] = {
    "type": "object", "description": "a private record's disclosure.json (salts and values), "
    "answered once: keep it; only when the server computed the commitments"}
SCHEMAS["Summary"]["properties"].update({
    "session": {"type": "string"},
    "parents": {"type": "array", "items": {"type": "object"},
                "description": "as the manifest states them: {receipt, manifest_sha256} or "
                               "{image_sha256}"},
})
SCHEMAS["SessionPage"] = {
    "type": "object", "required": ["session", "items", "next_cursor"],
    "properties": {"session": {"type": "string"},
                   "items": {"type": "array", "items": {"$ref": _REF + "Summary"}},
                   "next_cursor": _NULLABLE_STR},
}
PATHS["/v1/sessions/{session_id}"] = _get(
    "A working session's receipts, oldest first (empty for another key's)",
    _json("SessionPage", "A page"), params=[
        {"name": "session_id", "in": "path", "required": True, "schema": _SESSION},
        {"name": "limit", "in": "query",
         "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 100}},
        {"name": "cursor", "in": "query", "schema": {"type": "string"}}],
    errors={"400": _problem("invalid-field"), **_AUTH_ERRORS})
PATHS["/v1/stamps/{receipt_id}/bundle"]["get"]["parameters"].append(
    {"name": "history", "in": "query", "schema": {"enum": ["true", "false", "1", "0"]},
     "description": "also carry each earlier iteration under history/<receipt id>/ (409 "
                    "not-ready until they are stamped)"})
PATHS["/v1/stamps/{receipt_id}/bundle"]["get"]["responses"]["400"] = _problem("invalid-field")
SCHEMAS["BundleVerdict"]["properties"]["history"] = {
    "type": "array", "description": "earlier iterations carried under history/, oldest first",
    "items": {"type": "object", "properties": {
        "receipt_id": {"type": "string"}, "image_sha256": _NULLABLE_STR,
        "session": _NULLABLE_STR, "valid": {"type": "boolean"},
        "gen_time": {"type": ["string", "null"], "format": "date-time"}}}}
# --- bulk registration and waiting (h-client) ---
SCHEMAS["FileRecord"] = {
    "type": "object", "required": ["source"],
    "description": "digest-only: the generation record the client read from the file (as "
                   "`chronoseal stamp --hash-only` sends it); merged like a record the server "
                   "reads, so the manifest has source, sources and conflicts",
    "properties": {"source": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,31}$"},
                   "raw": {"type": "object"}, "details": {"type": "object"},
                   "provenance": {"type": "object"}},
}
_DIGEST_ITEM = {
    "type": "object", "required": ["sha256"], "additionalProperties": False,
    "properties": {**REGISTER["requestBody"]["content"]["application/json"]["schema"][
        "properties"], "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 255,
                                           "description": "as the Idempotency-Key header, "
                                                          "per item"}},
}
SCHEMAS["BatchResult"] = {
    "type": "object", "required": ["items", "accepted", "refused"],
    "properties": {
        "items": {"type": "array", "description": "one per item, in order", "items": {
            "type": "object", "required": ["status"],
            "properties": {"status": {"type": "integer"},
                           "receipt": {"$ref": _REF + "Accepted"},
                           "problem": {"$ref": _REF + "Problem"}}}},
        "accepted": {"type": "integer"}, "refused": {"type": "integer"},
    },
}
SCHEMAS["Settled"] = {
    "type": "object", "required": ["items", "pending", "unknown"],
    "properties": {"items": {"type": "array", "items": {"$ref": _REF + "Summary"},
                             "description": "the asked receipts that are stamped or failed"},
                   "pending": {"type": "array", "items": {"type": "string"}},
                   "unknown": {"type": "array", "items": {"type": "string"},
                               "description": "no such receipt for this key"}},
}
PATHS["/v1/stamps/batch"] = {"post": _op(
    "Register up to 1,000 digests in one request and one transaction; a result per item",
    {"200": _json("BatchResult", "Each item's receipt (202) or its own problem"),
     "400": _problem("invalid-field: not {items: [1..1000 objects]}"),
     "413": _problem("payload-too-large: over 16 MiB"),
     "415": _problem("unsupported-media-type"),
     **_ROUTE_LIMITED,
     "507": _problem("insufficient-storage: nothing was stored")},
    body={"type": "object", "required": ["items"], "additionalProperties": False,
          "properties": {"items": {"type": "array", "minItems": 1, "maxItems": 1000,
                                   "items": {"type": "object", "description": (
                                       "a DigestItem; one that is not gets its own problem "
                                       "in the answer, the others are still registered")}}}})}
SCHEMAS["DigestItem"] = _DIGEST_ITEM
PATHS["/v1/stamps/bundles"] = {"post": _op(
    "Many evidence bundles at once, each the bytes GET /v1/stamps/{id}/bundle gives",
    {"200": {"description": "bundles by receipt id (base64 ZIP) and the ids without one",
             "content": {"application/json": {"schema": {
                 "type": "object", "required": ["bundles", "missing"],
                 "properties": {"bundles": {"type": "object", "additionalProperties": {
                     "type": "string", "contentEncoding": "base64"}},
                                "missing": {"type": "array", "items": {"type": "string"}}}}}}},
     "400": _problem("invalid-field"), "415": _problem("unsupported-media-type")},
    body={"type": "object", "required": ["ids"], "additionalProperties": False,
          "properties": {"ids": {"type": "array", "minItems": 1, "maxItems": 100,
                                 "items": {"type": "string", "minLength": 1, "maxLength": 64}},
                         "exhibit": {"type": "boolean", "default": True,
                                     "description": "false: without certificate.html and "
                                                    "certificate.pdf"}}})}
PATHS["/v1/stamps/wait"] = {"post": _op(
    "Long poll: answers as soon as one of the receipts is stamped or failed, or after wait_s",
    {"200": _json("Settled", "The settled receipts (none when wait_s passed)"),
     "400": _problem("invalid-field"), "415": _problem("unsupported-media-type")},
    body={"type": "object", "required": ["ids"], "additionalProperties": False,
          "properties": {"ids": {"type": "array", "minItems": 1, "maxItems": 1000,
                                 "items": {"type": "string", "minLength": 1, "maxLength": 64}},
                         "wait_s": {"type": "number", "minimum": 0, "maximum": 20,
                                    "default": 10}}})}


DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Chronoseal", "version": "1",
             "description": "RFC 3161 timestamping for AI-generated images. Errors are RFC 9457 "
                            "application/problem+json."},
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                       "description": "chronoseal keys create --name NAME"}},
    },
}


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """The document; no key needed."""
    return jsonify(DOCUMENT)
