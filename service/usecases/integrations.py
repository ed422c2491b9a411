"""Integrations: a posting tool's inbound hook, with a secret of its own, per API key.

The secret is stored (it must be, to verify signatures) but answered only when created or
rotated, and never logged.
"""

from __future__ import annotations

from service.errors import NotFoundError
from service.storage.engine import write_transaction
from service.storage.inbound import (
    Integration,
    create_integration,
    list_integrations,
    rotate_integration_secret,
)
from service.usecases.keys import checked_name
from service.webhooks.signing import new_secret
from service.wiring import Services

NO_INTEGRATION = "No integration with this id"
__all__ = ["Integration", "add_integration", "integrations_of", "new_integration_secret"]


def add_integration(services: Services, owner: str, name: str) -> tuple[Integration, str]:
    """A hook for key `owner`, with its secret (shown once)."""
    name = checked_name(name)
    secret = new_secret()
    with write_transaction(services.engine) as conn:
        integration, _ = create_integration(conn, owner, name,
                                            secret=services.secrets.seal(secret))
    return integration, secret


def integrations_of(services: Services, owner: str | None = None) -> list[Integration]:
    """The key's integrations (every key's when `owner` is None: the operator's CLI)."""
    with services.engine.connect() as conn:
        return list_integrations(conn, owner)


def new_integration_secret(services: Services, owner: str, integration_id: str) -> str:
    """A new secret; the old one stops verifying at once."""
    secret = new_secret()
    with write_transaction(services.engine) as conn:
        stored = rotate_integration_secret(conn, owner, integration_id,
                                           secret=services.secrets.seal(secret))
    if stored is None:
        raise NotFoundError(NO_INTEGRATION)
    return secret
