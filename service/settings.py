"""Settings: one frozen dataclass, built once from config/*.toml overlaid by environment variables.

Every setting is declared once in SETTINGS with its env var, default and the reason for that
default; the README's configuration reference is generated from the same table
(tests/unit/test_readme.py keeps the two in step).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from service.errors import ConfigError

REPO_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
MiB = 1024 * 1024


@dataclass(frozen=True)
class Setting:
    """One setting: its name, environment variable, parser, default and why that default."""

    name: str
    env: str
    parse: Callable[[str], Any]
    default: Any
    reason: str


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _opt_str(text: str) -> str | None:
    return text or None


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise ValueError(f"must not be negative: {text!r}")
    return value


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _delays(text: str) -> tuple[float, ...]:
    values = tuple(_non_negative(part) for part in _csv(text))
    if not values:
        raise ValueError("give at least one delay")
    return values


SETTINGS: tuple[Setting, ...] = (
    Setting("data_dir", "CHRONOSEAL_DATA_DIR", str, "./data",
            "SQLite file and built-in TSA keys live here; relative to the working directory"),
    Setting("database_url", "DATABASE_URL", _opt_str, None,
            "unset means SQLite at DATA_DIR/chronoseal.db; PostgreSQL: postgresql+psycopg://..."),
    Setting("redis_url", "REDIS_URL", _opt_str, None,
            "unset means redis://127.0.0.1:6379/0, started by `chronoseal up` when none answers"),
    Setting("api_host", "CHRONOSEAL_API_HOST", str, "127.0.0.1",
            "loopback by default: exposing the API is a deliberate choice"),
    Setting("api_port", "CHRONOSEAL_API_PORT", int, 8318, "an unassigned port next to the TSA's"),
    Setting("api_workers", "CHRONOSEAL_API_WORKERS", int, 2, "one gunicorn process per core here"),
    Setting("tsa_host", "CHRONOSEAL_TSA_HOST", str, "127.0.0.1", "the built-in TSA's bind address"),
    Setting("tsa_port", "CHRONOSEAL_TSA_PORT", int, 8319, "the built-in TSA's port"),
    Setting("tsa_key_type", "CHRONOSEAL_TSA_KEY_TYPE", str, "ec-p256",
            "ECDSA P-256 signs fast and small; rsa-3072 for relying parties that need RSA"),
    Setting("tsa_config", "CHRONOSEAL_TSA_CONFIG", _csv, (),
            "extra TSA definition files (TOML) on top of config/tsa.toml"),
    Setting("tsas", "CHRONOSEAL_TSAS", _csv, (),
            "names of the TSAs to use; empty means those marked enabled in config"),
    Setting("min_tokens", "CHRONOSEAL_MIN_TOKENS", int, 1,
            "a receipt counts as stamped once this many TSAs gave verified tokens"),
    Setting("max_upload_bytes", "CHRONOSEAL_MAX_UPLOAD_BYTES", int, 50 * MiB,
            "larger than any generated image in practice; bounds disk and hashing time"),
    Setting("keep_images", "CHRONOSEAL_KEEP_IMAGES", _bool, False,
            "uploads are kept only until a worker has their perceptual hashes; true keeps them"),
    Setting("uploads_dir", "CHRONOSEAL_UPLOADS_DIR", str, "",
            "where uploads wait for hashing: a directory API and workers share, or `database`; "
            "empty means DATA_DIR/uploads with SQLite, the database with PostgreSQL"),
    Setting("auth_cache_s", "CHRONOSEAL_AUTH_CACHE_S", _non_negative, 2.0,
            "an API process remembers a valid key this long, so a revoked key works at most "
            "this much longer; 0 looks every request up"),
    Setting("batch_max_size", "CHRONOSEAL_BATCH_MAX_SIZE", int, 256,
            "receipts per Merkle tree: one TSA round trip for many receipts, proofs stay short"),
    Setting("batch_max_wait_ms", "CHRONOSEAL_BATCH_MAX_WAIT_MS", int, 200,
            "how long a receipt may wait for its batch to fill; see bench/e2e.py"),
    Setting("sweep_interval_s", "CHRONOSEAL_SWEEP_INTERVAL_S", int, 30,
            "how often the sweeper looks for receipts Redis lost"),
    Setting("stale_after_s", "CHRONOSEAL_STALE_AFTER_S", int, 60,
            "a receipt pending this long is re-enqueued"),
    Setting("give_up_after_s", "CHRONOSEAL_GIVE_UP_AFTER_S", int, 7 * 24 * 3600,
            "a receipt pending this long is marked failed with the last reason"),
    Setting("tsa_retry_base_s", "CHRONOSEAL_TSA_RETRY_BASE_S", _non_negative,
            2.0, "first retry of a failed TSA; most failures are blips"),
    Setting("tsa_retry_max_s", "CHRONOSEAL_TSA_RETRY_MAX_S", _non_negative, 600.0,
            "backoff ceiling: a TSA down for hours is still asked every ten minutes"),
    Setting("tsa_rejected_retry_s", "CHRONOSEAL_TSA_REJECTED_RETRY_S", _non_negative,
            900.0, "a rejection rarely heals by itself; ask again much later"),
    Setting("tsa_rejected_max_attempts", "CHRONOSEAL_TSA_REJECTED_MAX_ATTEMPTS", int,
            3, "then that TSA is given up for that batch"),
    Setting("batch_lease_margin_s", "CHRONOSEAL_BATCH_LEASE_MARGIN_S", _non_negative,
            30.0,
            "a dead worker's batch is taken over this long after its TSAs' timeouts"),
    Setting("queue_name", "CHRONOSEAL_QUEUE", str, "chronoseal",
            "the RQ queue the workers listen on"),
    Setting("webhook_allowlist", "CHRONOSEAL_WEBHOOK_ALLOWLIST", _csv, (),
            "CIDRs and host names webhooks may reach although private (SSRF guard); none"),
    Setting("webhook_retry_schedule_s", "CHRONOSEAL_WEBHOOK_RETRY_SCHEDULE_S", _delays,
            (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0),
            "delay before each delivery attempt, as Standard Webhooks advises; then failed"),
    Setting("webhook_connect_timeout_s", "CHRONOSEAL_WEBHOOK_CONNECT_TIMEOUT_S", _non_negative,
            3.0, "a receiver that does not accept a connection in 3 s is down for now"),
    Setting("webhook_timeout_s", "CHRONOSEAL_WEBHOOK_TIMEOUT_S", _non_negative, 10.0,
            "whole attempt (connect, send, answer); a slow receiver must not hold a worker"),
    Setting("webhook_poll_interval_s", "CHRONOSEAL_WEBHOOK_POLL_INTERVAL_S", _non_negative,
            1.0, "how often workers look for due deliveries and inbound messages"),
)


@dataclass(frozen=True)
class Settings:
    """Resolved settings; build with `load_settings()` and pass the object around."""

    data_dir: str
    database_url: str | None
    redis_url: str | None
    api_host: str
    api_port: int
    api_workers: int
    tsa_host: str
    tsa_port: int
    tsa_key_type: str
    tsa_config: tuple[str, ...]
    tsas: tuple[str, ...]
    min_tokens: int
    max_upload_bytes: int
    keep_images: bool
    uploads_dir: str
    auth_cache_s: float
    batch_max_size: int
    batch_max_wait_ms: int
    sweep_interval_s: int
    stale_after_s: int
    give_up_after_s: int
    tsa_retry_base_s: float
    tsa_retry_max_s: float
    tsa_rejected_retry_s: float
    tsa_rejected_max_attempts: int
    batch_lease_margin_s: float
    queue_name: str
    webhook_allowlist: tuple[str, ...]
    webhook_retry_schedule_s: tuple[float, ...]
    webhook_connect_timeout_s: float
    webhook_timeout_s: float
    webhook_poll_interval_s: float

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).resolve()

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_path / 'chronoseal.db'}"

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or "redis://127.0.0.1:6379/0"


def load_settings(
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    **overrides: Any,
) -> Settings:
    """Defaults, then config/chronoseal.toml (if present), then the environment, then overrides."""
    env = os.environ if env is None else env
    path = config_file or Path(env.get("CHRONOSEAL_CONFIG", REPO_CONFIG_DIR / "chronoseal.toml"))
    file_values: dict[str, Any] = {}
    if path.is_file():
        try:
            file_values = tomllib.loads(path.read_text()).get("chronoseal", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
    known = {s.name for s in SETTINGS}
    unknown = set(file_values) - known - set(overrides)
    if unknown:
        raise ConfigError(f"unknown setting(s) in {path}: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        value = file_values.get(setting.name, setting.default)
        if isinstance(value, list):
            value = tuple(value)
        if setting.env in env:
            try:
                value = setting.parse(env[setting.env])
            except ValueError as exc:
                raise ConfigError(f"{setting.env}: {exc}") from exc
        values[setting.name] = value
    values.update(overrides)
    assert {f.name for f in fields(Settings)} == known
    return Settings(**values)


def default_of(name: str) -> Any:
    """The built-in default of setting `name` (for modules whose constants it configures)."""
    return next(s.default for s in SETTINGS if s.name == name)


def settings_markdown() -> str:
    """The configuration reference as a Markdown table (used in README.md)."""
    rows = ["| setting | env var | default | why |", "| --- | --- | --- | --- |"]
    for s in SETTINGS:
        default = "(unset)" if s.default in (None, ()) else f"`{s.default}`"
        rows.append(f"| {s.name} | `{s.env}` | {default} | {s.reason} |")
    return "\n".join(rows)
