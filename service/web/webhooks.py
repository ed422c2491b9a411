"""/v1/webhooks and /v1/integrations: callback secret, endpoints, delivery log, integrations.

Secrets are answered only when created or rotated (and the callback secret on request, since
the key's owner needs it to verify callbacks); listings never include them.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, g, jsonify, request, url_for

from service.evidence.manifest import format_timestamp
from service.storage.engine import write_transaction
from service.storage.inbound import (
    create_integration,
    list_integrations,
    rotate_integration_secret,
)
from service.storage.tables import DELIVERY_STATES, NAME_LENGTH
from service.storage.webhooks import (
    MAX_ENDPOINTS_PER_KEY,
    Delivery,
    Endpoint,
    callback_secret,
    create_endpoint,
    delete_endpoint,
    get_delivery,
    list_deliveries,
    list_endpoints,
    redeliver,
    rotate_callback_secret,
    rotate_endpoint_secret,
)
from service.web.auth import require_key
from service.web.context import current_services
from service.web.intake import MAX_JSON_BODY_BYTES
from service.web.problems import INVALID_FIELD, NOT_FOUND, PAYLOAD_TOO_LARGE, URL_REFUSED, ApiError
from service.webhooks.errors import URLRefusedError
from service.webhooks.events import EVENTS
from service.webhooks.signing import new_secret
from service.webhooks.ssrf import Allowlist, check_url

bp = Blueprint("webhooks", __name__)
MAX_LOG_PAGE = 100  # delivery log entries per answer


def _body() -> dict[str, Any]:
    raw = request.stream.read(MAX_JSON_BODY_BYTES + 1)
    if len(raw) > MAX_JSON_BODY_BYTES:
        raise ApiError(PAYLOAD_TOO_LARGE, f"JSON bodies are limited to {MAX_JSON_BODY_BYTES} bytes")
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, RecursionError) as exc:
        raise ApiError(INVALID_FIELD, "the body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise ApiError(INVALID_FIELD, "the body must be a JSON object")
    return data


def _endpoint_json(endpoint: Endpoint) -> dict[str, Any]:
    return {"id": endpoint.id, "url": endpoint.url, "events": endpoint.events,
            "created_at": format_timestamp(endpoint.created_at)}


def _delivery_json(d: Delivery) -> dict[str, Any]:
    def when(moment: Any) -> str | None:
        return format_timestamp(moment) if moment is not None else None

    return {"id": d.id, "event": d.event, "endpoint_id": d.endpoint_id, "receipt_id": d.receipt_id,
            "url": d.url, "status": d.status, "attempts": d.attempts,
            "next_attempt_at": when(d.next_attempt_at), "last_status_code": d.last_status_code,
            "last_error": d.last_error, "created_at": when(d.created_at),
            "delivered_at": when(d.delivered_at)}


@bp.get("/v1/webhooks/secret")
@require_key
def get_secret() -> Response:
    """The key's secret for callbacks to receipts' callback_url (made on first request)."""
    with write_transaction(current_services().engine) as conn:
        return jsonify({"secret": callback_secret(conn, g.api_key.id,
                                                   secret_if_missing=new_secret())})


@bp.post("/v1/webhooks/secret/rotate")
@require_key
def rotate_secret() -> Response:
    with write_transaction(current_services().engine) as conn:
        return jsonify({"secret": rotate_callback_secret(conn, g.api_key.id,
                                                          secret=new_secret())})


@bp.post("/v1/webhooks/endpoints")
@require_key
def create_webhook_endpoint() -> tuple[Response, int]:
    """Register `url` for `events`; answers its `whsec_` secret, once."""
    data = _body()
    url, events = data.get("url"), data.get("events", list(EVENTS))
    if not isinstance(url, str):
        raise ApiError(INVALID_FIELD, "url must be a string")
    if (not isinstance(events, list) or not events
            or not all(isinstance(e, str) and e in EVENTS for e in events)):
        raise ApiError(INVALID_FIELD, f"events must be a non-empty list of {', '.join(EVENTS)}")
    services = current_services()
    try:
        check_url(url, Allowlist.parse(services.settings.webhook_allowlist))
    except URLRefusedError as exc:
        raise ApiError(URL_REFUSED, str(exc)) from exc
    with write_transaction(services.engine) as conn:
        if len(list_endpoints(conn, g.api_key.id)) >= MAX_ENDPOINTS_PER_KEY:
            raise ApiError(INVALID_FIELD, f"at most {MAX_ENDPOINTS_PER_KEY} endpoints per key")
        endpoint, secret = create_endpoint(conn, g.api_key.id, url, events,
                                           secret=new_secret())
    return jsonify({**_endpoint_json(endpoint), "secret": secret}), 201


@bp.get("/v1/webhooks/endpoints")
@require_key
def list_webhook_endpoints() -> Response:
    with current_services().engine.connect() as conn:
        return jsonify({"items": [_endpoint_json(e) for e in list_endpoints(conn, g.api_key.id)]})


@bp.delete("/v1/webhooks/endpoints/<endpoint_id>")
@require_key
def delete_webhook_endpoint(endpoint_id: str) -> tuple[str, int]:
    with write_transaction(current_services().engine) as conn:
        if not delete_endpoint(conn, g.api_key.id, endpoint_id):
            raise ApiError(NOT_FOUND, "No endpoint with this id")
    return "", 204


@bp.post("/v1/webhooks/endpoints/<endpoint_id>/rotate")
@require_key
def rotate_webhook_endpoint(endpoint_id: str) -> Response:
    with write_transaction(current_services().engine) as conn:
        secret = rotate_endpoint_secret(conn, g.api_key.id, endpoint_id,
                                        secret=new_secret())
    if secret is None:
        raise ApiError(NOT_FOUND, "No endpoint with this id")
    return jsonify({"id": endpoint_id, "secret": secret})


@bp.get("/v1/webhooks/deliveries")
@require_key
def list_webhook_deliveries() -> Response:
    """The delivery log, newest first; `endpoint_id`, `status` and `limit` narrow it."""
    status = request.args.get("status")
    if status is not None and status not in DELIVERY_STATES:
        raise ApiError(INVALID_FIELD, f"status must be one of {', '.join(DELIVERY_STATES)}")
    try:
        limit = int(request.args.get("limit", 50))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LOG_PAGE:
        raise ApiError(INVALID_FIELD, f"limit must be an integer in 1..{MAX_LOG_PAGE}")
    with current_services().engine.connect() as conn:
        rows = list_deliveries(conn, g.api_key.id, endpoint_id=request.args.get("endpoint_id"),
                               status=status, limit=limit)
    return jsonify({"items": [_delivery_json(d) for d in rows]})


@bp.get("/v1/webhooks/deliveries/<delivery_id>")
@require_key
def get_webhook_delivery(delivery_id: str) -> Response:
    """One delivery with every attempt: when, how long, what the receiver answered."""
    with current_services().engine.connect() as conn:
        found = get_delivery(conn, g.api_key.id, delivery_id)
    if found is None:
        raise ApiError(NOT_FOUND, "No delivery with this id")
    delivery, attempts = found
    return jsonify({**_delivery_json(delivery), "attempts_log": [
        {"attempt": a.attempt, "started_at": format_timestamp(a.started_at),
         "duration_ms": a.duration_ms, "status_code": a.status_code, "error": a.error}
        for a in attempts]})


@bp.post("/v1/webhooks/deliveries/<delivery_id>/redeliver")
@require_key
def redeliver_webhook(delivery_id: str) -> tuple[Response, int]:
    """Send a delivery again (same webhook-id and body), from the start of the schedule."""
    with write_transaction(current_services().engine) as conn:
        delivery = redeliver(conn, g.api_key.id, delivery_id)
    if delivery is None:
        raise ApiError(NOT_FOUND, "No delivery with this id")
    return jsonify(_delivery_json(delivery)), 202


@bp.post("/v1/integrations")
@require_key
def create_posting_integration() -> tuple[Response, int]:
    """An inbound hook for a posting tool; answers its id, URL and secret (shown once)."""
    name = _body().get("name")
    if not isinstance(name, str) or not 0 < len(name.strip()) <= NAME_LENGTH:
        raise ApiError(INVALID_FIELD, f"name must be a string of 1..{NAME_LENGTH} characters")
    with write_transaction(current_services().engine) as conn:
        integration, secret = create_integration(conn, g.api_key.id, name.strip(),
                                                 secret=new_secret())
    url = url_for("hooks.receive", integration_id=integration.id)
    return jsonify({"id": integration.id, "name": integration.name, "url": url,
                    "secret": secret}), 201


@bp.post("/v1/integrations/<integration_id>/rotate")
@require_key
def rotate_posting_integration(integration_id: str) -> Response:
    """A new secret for the integration; the old one stops verifying at once."""
    with write_transaction(current_services().engine) as conn:
        secret = rotate_integration_secret(conn, g.api_key.id, integration_id,
                                           secret=new_secret())
    if secret is None:
        raise ApiError(NOT_FOUND, "No integration with this id")
    return jsonify({"id": integration_id, "secret": secret})


@bp.get("/v1/integrations")
@require_key
def list_posting_integrations() -> Response:
    with current_services().engine.connect() as conn:
        items = list_integrations(conn, g.api_key.id)
    return jsonify({"items": [
        {"id": i.id, "name": i.name, "url": url_for("hooks.receive", integration_id=i.id),
         "created_at": format_timestamp(i.created_at)} for i in items]})
