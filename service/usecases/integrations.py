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
    with write_transaction(services.engine) as conn:
        return create_integration(conn, owner, name, secret=new_secret())


def integrations_of(services: Services, owner: str | None = None) -> list[Integration]:
    """The key's integrations (every key's when `owner` is None: the operator's CLI)."""
    with services.engine.connect() as conn:
        return list_integrations(conn, owner)


def new_integration_secret(services: Services, owner: str, integration_id: str) -> str:
    """A new secret; the old one stops verifying at once."""
    with write_transaction(services.engine) as conn:
        secret = rotate_integration_secret(conn, owner, integration_id,
                                           secret=new_secret())
    if secret is None:
        raise NotFoundError(NO_INTEGRATION)
    return secret
