"""Outbound webhooks of a key: its callback secret, its endpoints, the delivery log, redelivery.

Secrets are answered only when created or rotated (and the callback secret on request, since
the key's owner needs it to verify callbacks); listings never include them.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.errors import InvalidInputError, NotFoundError
from service.storage.engine import write_transaction
from service.storage.tables import DELIVERY_STATES
from service.storage.webhooks import (
    MAX_ENDPOINTS_PER_KEY,
    Attempt,
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
from service.webhooks.events import EVENTS
from service.webhooks.signing import new_secret
from service.webhooks.ssrf import Allowlist, check_url
from service.wiring import Services

MAX_LOG_PAGE = 100  # delivery log entries per answer
NO_ENDPOINT = "No endpoint with this id"
NO_DELIVERY = "No delivery with this id"
__all__ = ["DELIVERY_STATES", "EVENTS", "MAX_LOG_PAGE", "Attempt", "Delivery", "Endpoint"]


def get_callback_secret(services: Services, owner: str) -> str:
    """The key's secret for callbacks to receipts' callback_url (made on first request)."""
    box = services.secrets
    with write_transaction(services.engine) as conn:
        return box.open(callback_secret(conn, owner, secret_if_missing=box.seal(new_secret())))


def new_callback_secret(services: Services, owner: str) -> str:
    secret = new_secret()
    with write_transaction(services.engine) as conn:
        rotate_callback_secret(conn, owner, secret=services.secrets.seal(secret))
    return secret


def add_endpoint(services: Services, owner: str, url: str, events: Sequence[str]
                 ) -> tuple[Endpoint, str]:
    """Register `url` for `events` (SSRF-checked now, and again at every delivery); with its
    `whsec_` secret, shown once."""
    if not events or not all(e in EVENTS for e in events):
        raise InvalidInputError(f"events must be a non-empty list of {', '.join(EVENTS)}")
    check_url(url, Allowlist.parse(services.settings.webhook_allowlist),
              resolver=services.resolver)
    with write_transaction(services.engine) as conn:
        if len(list_endpoints(conn, owner)) >= MAX_ENDPOINTS_PER_KEY:
            raise InvalidInputError(f"at most {MAX_ENDPOINTS_PER_KEY} endpoints per key")
        secret = new_secret()
        endpoint, _ = create_endpoint(conn, owner, url, events,
                                      secret=services.secrets.seal(secret))
        return endpoint, secret


def endpoints_of(services: Services, owner: str) -> list[Endpoint]:
    with services.engine.connect() as conn:
        return list_endpoints(conn, owner)


def remove_endpoint(services: Services, owner: str, endpoint_id: str) -> None:
    with write_transaction(services.engine) as conn:
        if not delete_endpoint(conn, owner, endpoint_id):
            raise NotFoundError(NO_ENDPOINT)


def new_endpoint_secret(services: Services, owner: str, endpoint_id: str) -> str:
    secret = new_secret()
    with write_transaction(services.engine) as conn:
        stored = rotate_endpoint_secret(conn, owner, endpoint_id,
                                        secret=services.secrets.seal(secret))
    if stored is None:
        raise NotFoundError(NO_ENDPOINT)
    return secret


def delivery_log(services: Services, owner: str, *, endpoint_id: str | None,
                 status: str | None, limit: int) -> list[Delivery]:
    """The delivery log, newest first; `endpoint_id`, `status` and `limit` narrow it."""
    if status is not None and status not in DELIVERY_STATES:
        raise InvalidInputError(f"status must be one of {', '.join(DELIVERY_STATES)}")
    if not 1 <= limit <= MAX_LOG_PAGE:
        raise InvalidInputError(f"limit must be an integer in 1..{MAX_LOG_PAGE}")
    with services.engine.connect() as conn:
        return list_deliveries(conn, owner, endpoint_id=endpoint_id, status=status, limit=limit)


def delivery_with_attempts(services: Services, owner: str, delivery_id: str
                           ) -> tuple[Delivery, list[Attempt]]:
    with services.engine.connect() as conn:
        found = get_delivery(conn, owner, delivery_id)
    if found is None:
        raise NotFoundError(NO_DELIVERY)
    return found


def send_again(services: Services, owner: str, delivery_id: str) -> Delivery:
    """Send a delivery again (same webhook-id and body), from the start of the schedule."""
    with write_transaction(services.engine) as conn:
        delivery = redeliver(conn, owner, delivery_id)
    if delivery is None:
        raise NotFoundError(NO_DELIVERY)
    return delivery
