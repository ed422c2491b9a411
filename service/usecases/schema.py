"""The database schema: migrate it ahead of a deploy, or tell which revision it is at."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from service.storage.engine import normalize_url
from service.storage.migrate import current_revision, head_revision, upgrade
from service.webhooks.secretbox import SecretBox


@dataclass(frozen=True)
class SchemaState:
    """Where a database is: its URL with any password hidden, its revision and the newest."""

    shown_url: str
    revision: str | None
    head: str | None

    @property
    def up_to_date(self) -> bool:
        return self.revision == self.head


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def shown_url(url: str) -> str:
    """`url` as commands may print it: normalised, any password hidden."""
    return _shown(normalize_url(url))


def database_exists(url: str) -> bool:
    """False for a SQLite file that is not there: opening it would make an empty database, and
    a command run from the wrong directory would then work on that one, not the service's.
    A server database (PostgreSQL) exists once its URL is given; the server says if not."""
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return True
    return Path(parsed.database).is_file()


def migrate(url: str, revision: str = "head", secrets: SecretBox | None = None) -> SchemaState:
    """Apply the migrations up to `revision`; `secrets` seals stored secrets (migration 0012)."""
    url = normalize_url(url)
    reached = upgrade(url, revision, secrets=secrets)
    return SchemaState(_shown(url), reached, head_revision())


def state(url: str) -> SchemaState:
    """The database's revision, beside the newest one."""
    url = normalize_url(url)
    return SchemaState(_shown(url), current_revision(url), head_revision())
