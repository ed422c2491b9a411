"""/v1/webhooks and /v1/integrations: callback secret, endpoints, delivery log, integrations.

Secrets are answered only when created or rotated (and the callback secret on request, since
the key's owner needs it to verify callbacks); listings never include them.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, request, url_for

from service.errors import InvalidInputError
from service.evidence.manifest import format_timestamp
from service.usecases import endpoints, integrations
from service.usecases.endpoints import EVENTS, Delivery, Endpoint
from service.web.auth import require_key
from service.web.context import current_services
from service.web.intake import MAX_JSON_BODY_BYTES, read_json_body

bp = Blueprint("webhooks", __name__)


def _body() -> dict[str, Any]:
    data = read_json_body(request, MAX_JSON_BODY_BYTES, empty={})
    if not isinstance(data, dict):
        raise InvalidInputError("the body must be a JSON object")
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
    return jsonify({"secret": endpoints.get_callback_secret(current_services(), g.api_key.id)})


@bp.post("/v1/webhooks/secret/rotate")
@require_key
def rotate_secret() -> Response:
    return jsonify({"secret": endpoints.new_callback_secret(current_services(), g.api_key.id)})


@bp.post("/v1/webhooks/endpoints")
@require_key
def create_webhook_endpoint() -> tuple[Response, int]:
    """Register `url` for `events`; answers its `whsec_` secret, once."""
    data = _body()
    url, events = data.get("url"), data.get("events", list(EVENTS))
    if not isinstance(url, str):
        raise InvalidInputError("url must be a string")
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise InvalidInputError(f"events must be a non-empty list of {', '.join(EVENTS)}")
    endpoint, secret = endpoints.add_endpoint(current_services(), g.api_key.id, url, events)
    return jsonify({**_endpoint_json(endpoint), "secret": secret}), 201


@bp.get("/v1/webhooks/endpoints")
@require_key
def list_webhook_endpoints() -> Response:
    items = endpoints.endpoints_of(current_services(), g.api_key.id)
    return jsonify({"items": [_endpoint_json(e) for e in items]})


@bp.delete("/v1/webhooks/endpoints/<endpoint_id>")
@require_key
def delete_webhook_endpoint(endpoint_id: str) -> tuple[str, int]:
    endpoints.remove_endpoint(current_services(), g.api_key.id, endpoint_id)
    return "", 204


@bp.post("/v1/webhooks/endpoints/<endpoint_id>/rotate")
@require_key
def rotate_webhook_endpoint(endpoint_id: str) -> Response:
    secret = endpoints.new_endpoint_secret(current_services(), g.api_key.id, endpoint_id)
    return jsonify({"id": endpoint_id, "secret": secret})


@bp.get("/v1/webhooks/deliveries")
@require_key
def list_webhook_deliveries() -> Response:
    """The delivery log, newest first; `endpoint_id`, `status` and `limit` narrow it."""
    try:
        limit = int(request.args.get("limit", 50))
    except ValueError:
        limit = 0
    rows = endpoints.delivery_log(current_services(), g.api_key.id,
                                  endpoint_id=request.args.get("endpoint_id"),
                                  status=request.args.get("status"), limit=limit)
    return jsonify({"items": [_delivery_json(d) for d in rows]})


@bp.get("/v1/webhooks/deliveries/<delivery_id>")
@require_key
def get_webhook_delivery(delivery_id: str) -> Response:
    """One delivery with every attempt: when, how long, what the receiver answered."""
    delivery, attempts = endpoints.delivery_with_attempts(current_services(), g.api_key.id,
                                                          delivery_id)
    return jsonify({**_delivery_json(delivery), "attempts_log": [
        {"attempt": a.attempt, "started_at": format_timestamp(a.started_at),
         "duration_ms": a.duration_ms, "status_code": a.status_code, "error": a.error}
        for a in attempts]})


@bp.post("/v1/webhooks/deliveries/<delivery_id>/redeliver")
@require_key
def redeliver_webhook(delivery_id: str) -> tuple[Response, int]:
    """Send a delivery again (same webhook-id and body), from the start of the schedule."""
    delivery = endpoints.send_again(current_services(), g.api_key.id, delivery_id)
    return jsonify(_delivery_json(delivery)), 202


@bp.post("/v1/integrations")
@require_key
def create_posting_integration() -> tuple[Response, int]:
    """An inbound hook for a posting tool; answers its id, URL and secret (shown once)."""
    name = _body().get("name")
    if not isinstance(name, str):
        raise InvalidInputError("name must be a string")
    integration, secret = integrations.add_integration(current_services(), g.api_key.id, name)
    url = url_for("hooks.receive", integration_id=integration.id)
    return jsonify({"id": integration.id, "name": integration.name, "url": url,
                    "secret": secret}), 201


@bp.post("/v1/integrations/<integration_id>/rotate")
@require_key
def rotate_posting_integration(integration_id: str) -> Response:
    """A new secret for the integration; the old one stops verifying at once."""
    secret = integrations.new_integration_secret(current_services(), g.api_key.id,
                                                 integration_id)
    return jsonify({"id": integration_id, "secret": secret})


@bp.get("/v1/integrations")
@require_key
def list_posting_integrations() -> Response:
    items = integrations.integrations_of(current_services(), g.api_key.id)
    return jsonify({"items": [
        {"id": i.id, "name": i.name, "url": url_for("hooks.receive", integration_id=i.id),
         "created_at": format_timestamp(i.created_at)} for i in items]})
