"""The line `chronoseal up` ends start-up with: where everything is, and how to make a key.

It is printed once GET /readyz says an upload will be stamped (so the key it suggests works at
once), or, after a bounded wait, with what is still not ready instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from service.settings import Settings, hide_url_passwords
from service.usecases.stamp import root_fingerprints

READY_WAIT_S = 60.0  # workers heartbeat on start; past a minute something needs a look
READY_POLL_S = 0.5  # each poll is an access-log line; half a second is quick enough
KEY_COMMAND = ".venv/bin/chronoseal keys create --name NAME"


@dataclass(frozen=True)
class Endpoints:
    """What the ready line names: the API, the database as shown and the Redis in use."""

    api_url: str
    database_url: str  # password already hidden (SchemaState.shown_url)
    redis_url: str
    redis_started: bool  # True when `up` started its own redis-server


def wait_for_readiness(api_url: str, alive: Callable[[], bool],
                       timeout: float = READY_WAIT_S) -> dict[str, Any] | None:
    """Poll GET /readyz until it is 200 (returns None) or `timeout` passes (returns the last
    answer's body, or {} when none came); stops early, returning None, when a child died."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        if not alive():
            return None  # the supervisor reports the exit and stops the rest
        try:
            response = requests.get(f"{api_url}/readyz", timeout=READY_POLL_S * 10)
            if response.status_code == 200:
                return None
            last = response.json()
        except (requests.RequestException, ValueError):
            pass
        time.sleep(READY_POLL_S)
    return last


def ready_line(settings: Settings, endpoints: Endpoints) -> str:
    """One line: API, TSAs with root fingerprints, database, Redis and the key command."""
    tsas = ", ".join(
        f"{name} (root SHA-256 {' / '.join(prints) or 'not readable yet'})"
        for name, prints in root_fingerprints(settings).items()
    ) or "none enabled"
    redis_how = "started by chronoseal up" if endpoints.redis_started else "found"
    return (f"Chronoseal is ready: API {endpoints.api_url} | TSA {tsas} | "
            f"database {endpoints.database_url} | "
            f"Redis {hide_url_passwords(endpoints.redis_url)} ({redis_how}) | "
            f"create an API key in a second terminal in this directory: {KEY_COMMAND}")


def not_ready_line(body: dict[str, Any], waited_s: float = READY_WAIT_S) -> str:
    """What /readyz last said was not ready, on one line."""
    parts = body.get("parts") or {}
    causes = [f"{name}: {part.get('reason') or part.get('state')}"
              for name, part in parts.items()
              if isinstance(part, dict) and part.get("state") != "ok"]
    causes += [f"TSA {name}: {tsa.get('reason')}"
               for name, tsa in (body.get("tsas") or {}).items()
               if isinstance(tsa, dict) and tsa.get("state") == "down"]
    return (f"Chronoseal is not ready after {waited_s:g} s: "
            f"{'; '.join(causes) or 'the API did not answer /readyz'}")
