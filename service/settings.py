"""Settings: one frozen dataclass, built once from config/*.toml overlaid by environment variables.

Every setting is declared once in SETTINGS with its env var, default and the reason for that
default; the README's configuration reference is generated from the same table
(tests/unit/test_readme.py keeps the two in step).
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

from service.errors import ConfigError

REPO_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
MiB = 1024 * 1024
GiB = 1024 * MiB


# A parser takes the text of an environment variable or a value from the TOML file: strings go
# through the same code either way, native TOML values only where their type is the setting's
# own (bools are never numbers). It raises ValueError with what is wrong ("is not an integer").
Parse = Callable[[object], Any]


@dataclass(frozen=True)
class Setting:
    """One setting: its name, environment variable, parser, default and why that default."""

    name: str
    env: str
    parse: Parse
    default: Any
    reason: str


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("is not a string")
    return value


def _opt_str(value: object) -> str | None:
    return _text(value) or None


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
    raise ValueError("is not a boolean (true/false, yes/no, on/off, 1/0)")


def _integer(minimum: int, maximum: int | None = None) -> Parse:
    """An int parser bounded to [minimum, maximum]: sizes, counts and ports below 1 mean nothing."""

    def parse(value: object) -> int:
        if isinstance(value, str):
            try:
                number = int(value.strip())
            except ValueError:
                raise ValueError("is not an integer") from None
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            raise ValueError("is not an integer")
        if number < minimum:
            raise ValueError(f"must be at least {minimum}")
        if maximum is not None and number > maximum:
            raise ValueError(f"must be at most {maximum}")
        return number

    return parse


_port = _integer(1, 65535)
_positive_int = _integer(1)
_non_negative_int = _integer(0)


def _non_negative(value: object) -> float:
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise ValueError("is not a number") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        raise ValueError("is not a number")
    if not math.isfinite(number) or number < 0:  # nan and inf would disable timeouts silently
        raise ValueError("must be a finite number, not negative")
    return number


def _choice(*choices: str) -> Parse:
    """A parser accepting one of `choices` (case-insensitive), returned in lower case."""

    def parse(value: object) -> str:
        text = _text(value).strip().lower()
        if text not in choices:
            raise ValueError(f"is not one of {', '.join(choices)}")
        return text

    return parse


def _csv(value: object) -> tuple[str, ...]:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        value = ",".join(value)  # a TOML list means what its items joined by commas mean
    if not isinstance(value, str):
        raise ValueError("is not a comma-separated string or a list of strings")
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _delays(value: object) -> tuple[float, ...]:
    if isinstance(value, str):
        items: list[object] = list(_csv(value))
    elif isinstance(value, list):
        items = value
    else:
        raise ValueError("is not a comma-separated string or a list of delays")
    if not items:
        raise ValueError("holds no delay; give at least one")
    delays = []
    for item in items:
        try:
            delays.append(_non_negative(item))
        except ValueError as exc:
            raise ValueError(f"holds {item!r}, which {exc}") from None
    return tuple(delays)


@dataclass(frozen=True)
class Rate:
    """A rate limit: at most `count` requests per fixed window of `period_s` seconds."""

    count: int
    period_s: int

    def __str__(self) -> str:
        """As the setting is written (`100/minute`), so the text parses back to this rate."""
        units = {seconds: unit for unit, seconds in _PERIODS.items()}
        unit = units.get(self.period_s)
        return f"{self.count}/{unit}" if unit else f"{self.count}/{self.period_s} seconds"


_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"(\d+)\s*/\s*(\d*)\s*(second|minute|hour|day)s?")
MAX_RATE_PERIOD_S = 86400  # counters live one window in Redis: a day at most


def _rate(value: object) -> Rate | None:
    """`COUNT/UNIT` or `COUNT/N UNITs` (`100/minute`, `30/10 seconds`); `off` means no limit."""
    if isinstance(value, Rate):  # a default, or a test's override
        return value
    text = _text(value).strip().lower()
    if text in ("off", "none", ""):
        return None
    match = _RATE.fullmatch(text)
    if match is None:
        raise ValueError("is not COUNT/UNIT (e.g. 100/minute, 30/10 seconds) or off")
    count, times, unit = int(match[1]), int(match[2] or 1), match[3]
    period = times * _PERIODS[unit]
    if count < 1 or not 1 <= period <= MAX_RATE_PERIOD_S:
        raise ValueError(f"needs a count of at least 1 and a period of 1..{MAX_RATE_PERIOD_S} s")
    return Rate(count, period)


SETTINGS: tuple[Setting, ...] = (
    Setting("data_dir", "CHRONOSEAL_DATA_DIR", _text, "./data",
            "SQLite file and built-in TSA keys live here; relative to the working directory"),
    Setting("database_url", "DATABASE_URL", _opt_str, None,
            "unset means SQLite at DATA_DIR/chronoseal.db; PostgreSQL: postgresql+psycopg://..."),
    Setting("redis_url", "REDIS_URL", _opt_str, None,
            "unset means redis://127.0.0.1:6379/0, started by `chronoseal up` when none answers"),
    Setting("api_host", "CHRONOSEAL_API_HOST", _text, "127.0.0.1",
            "loopback by default: exposing the API is a deliberate choice"),
    Setting("api_port", "CHRONOSEAL_API_PORT", _port, 8318, "an unassigned port next to the TSA's"),
    Setting("api_workers", "CHRONOSEAL_API_WORKERS", _positive_int, 2,
            "one gunicorn process per core here"),
    Setting("api_request_timeout_s", "CHRONOSEAL_API_REQUEST_TIMEOUT_S", _positive_int, 10,
            "a request's head must arrive within this, and its body may come slower than "
            "1 KiB/s (or pause 3 times this) no longer: slow clients are answered 408, never "
            "holding a thread (docs/operations.md, Slow clients)"),
    Setting("tsa_host", "CHRONOSEAL_TSA_HOST", _text, "127.0.0.1",
            "the built-in TSA's bind address"),
    Setting("tsa_port", "CHRONOSEAL_TSA_PORT", _port, 8319, "the built-in TSA's port"),
    Setting("tsa_crl_url", "CHRONOSEAL_TSA_CRL_URL", _opt_str, None,
            "the built-in TSA's GET /crl URL written into a TSA certificate it creates; unset: "
            "http://TSA_HOST:TSA_PORT/crl (set it when others reach the TSA by another name)"),
    Setting("tsa_key_type", "CHRONOSEAL_TSA_KEY_TYPE", _text, "ec-p256",
            "ECDSA P-256 signs fast and small; rsa-3072 for relying parties that need RSA"),
    Setting("tsa_config", "CHRONOSEAL_TSA_CONFIG", _csv, (),
            "extra TSA definition files (TOML) on top of config/tsa.toml"),
    Setting("tsas", "CHRONOSEAL_TSAS", _csv, (),
            "names of the TSAs to use; empty means those marked enabled in config"),
    Setting("min_tokens", "CHRONOSEAL_MIN_TOKENS", _positive_int, 1,
            "a receipt counts as stamped once this many TSAs gave verified tokens"),
    Setting("min_free_disk_bytes", "CHRONOSEAL_MIN_FREE_DISK_BYTES", _non_negative_int, GiB,
            "/readyz fails below this much free space in DATA_DIR (about 20 uploads of the "
            "largest size): a full disk fails uploads, SQLite and the TSA's serial state; 0 "
            "turns the check off"),
    Setting("disk_reserve_bytes", "CHRONOSEAL_DISK_RESERVE_BYTES", _non_negative_int,
            100 * MiB,
            "a registration that would leave less free in DATA_DIR (or the uploads "
            "directory) gets 507: room kept to stamp what was accepted (tokens, proofs, "
            "SQLite's WAL, the TSA's serials take a few KB a receipt); 0 refuses only a full "
            "disk"),
    Setting("max_upload_bytes", "CHRONOSEAL_MAX_UPLOAD_BYTES", _positive_int, 50 * MiB,
            "larger than any generated image in practice; bounds disk and hashing time"),
    Setting("keep_images", "CHRONOSEAL_KEEP_IMAGES", _bool, False,
            "uploads are kept only until a worker has their perceptual hashes; true keeps them"),
    Setting("uploads_dir", "CHRONOSEAL_UPLOADS_DIR", _text, "",
            "where uploads wait for hashing: a directory API and workers share, or `database`; "
            "empty means DATA_DIR/uploads with SQLite, the database with PostgreSQL"),
    Setting("auth_cache_s", "CHRONOSEAL_AUTH_CACHE_S", _non_negative, 2.0,
            "an API process remembers a valid key this long, so a revoked key works at most "
            "this much longer; 0 looks every request up"),
    Setting("trusted_proxies", "CHRONOSEAL_TRUSTED_PROXIES", _integer(0, 10), 0,
            "how many proxies in front of the API append to X-Forwarded-For; 0 uses the peer "
            "address, since the header is anyone's to write"),
    Setting("rate_limit_register_per_key", "CHRONOSEAL_RATE_LIMIT_REGISTER_PER_KEY", _rate,
            Rate(20000, 60), "POST /v1/stamps: 333/s over a minute, more than one API node on "
            "2 cores accepts (about 500/s), so only a runaway client meets it; bench/e2e.py's "
            "6,000 uploads fit in one window"),
    Setting("rate_limit_register_per_address", "CHRONOSEAL_RATE_LIMIT_REGISTER_PER_ADDRESS",
            _rate, Rate(30000, 60), "above the per-key limit: several keys may share one "
            "address (a NAT, the bench's 127.0.0.1)"),
    Setting("rate_limit_search_per_key", "CHRONOSEAL_RATE_LIMIT_SEARCH_PER_KEY", _rate,
            Rate(600, 60), "POST /v1/search decodes an image of up to 50 megapixels: 10/s "
            "per key is an integration checking every picture it sees"),
    Setting("rate_limit_search_per_address", "CHRONOSEAL_RATE_LIMIT_SEARCH_PER_ADDRESS", _rate,
            Rate(120, 60), "anonymous searches: 2/s per address is a person or a browser "
            "extension, not a crawler"),
    Setting("rate_limit_verify_per_key", "CHRONOSEAL_RATE_LIMIT_VERIFY_PER_KEY", _rate,
            Rate(600, 60), "POST /v1/verify hashes an image and checks every token of a "
            "bundle: 10/s per key"),
    Setting("rate_limit_verify_per_address", "CHRONOSEAL_RATE_LIMIT_VERIFY_PER_ADDRESS", _rate,
            Rate(120, 60), "anonymous verifications: 2/s per address, as for search"),
    Setting("rate_limit_inbound_per_integration",
            "CHRONOSEAL_RATE_LIMIT_INBOUND_PER_INTEGRATION", _rate, Rate(600, 60),
            "signed post.published messages: 10/s per integration is a busy posting tool; "
            "counted once the signature verifies, so others cannot use it up"),
    Setting("rate_limit_inbound_per_address", "CHRONOSEAL_RATE_LIMIT_INBOUND_PER_ADDRESS",
            _rate, Rate(1200, 60), "every /v1/hooks request, counted before the integration "
            "is looked up: one posting service may send for several integrations"),
    Setting("rate_limit_auth_failures_per_address",
            "CHRONOSEAL_RATE_LIMIT_AUTH_FAILURES_PER_ADDRESS", _rate, Rate(30, 60),
            "unknown or revoked keys: a client with a wrong key retries a few times, guessing "
            "needs millions; past this no key from that address is looked up (429)"),
    Setting("batch_max_size", "CHRONOSEAL_BATCH_MAX_SIZE", _positive_int, 256,
            "receipts per Merkle tree: one TSA round trip for many receipts, proofs stay short"),
    Setting("batch_max_wait_ms", "CHRONOSEAL_BATCH_MAX_WAIT_MS", _non_negative_int, 200,
            "how long a receipt may wait for its batch to fill; see bench/e2e.py"),
    Setting("sweep_interval_s", "CHRONOSEAL_SWEEP_INTERVAL_S", _positive_int, 30,
            "how often the sweeper looks for receipts Redis lost"),
    Setting("stale_after_s", "CHRONOSEAL_STALE_AFTER_S", _non_negative_int, 60,
            "a receipt pending this long is re-enqueued"),
    Setting("give_up_after_s", "CHRONOSEAL_GIVE_UP_AFTER_S", _non_negative_int, 7 * 24 * 3600,
            "a receipt pending this long is marked failed with the last reason"),
    Setting("tsa_retry_base_s", "CHRONOSEAL_TSA_RETRY_BASE_S", _non_negative,
            2.0, "first retry of a failed TSA; most failures are blips"),
    Setting("tsa_retry_max_s", "CHRONOSEAL_TSA_RETRY_MAX_S", _non_negative, 600.0,
            "backoff ceiling: a TSA down for hours is still asked every ten minutes"),
    Setting("tsa_rejected_retry_s", "CHRONOSEAL_TSA_REJECTED_RETRY_S", _non_negative,
            900.0, "a rejection rarely heals by itself; ask again much later"),
    Setting("tsa_rejected_max_attempts", "CHRONOSEAL_TSA_REJECTED_MAX_ATTEMPTS", _positive_int,
            3, "then that TSA is given up for that batch"),
    Setting("batch_lease_margin_s", "CHRONOSEAL_BATCH_LEASE_MARGIN_S", _non_negative,
            30.0,
            "a dead worker's batch is taken over this long after its TSAs' timeouts"),
    Setting("queue_name", "CHRONOSEAL_QUEUE", _text, "chronoseal",
            "the RQ queue the workers listen on"),
    Setting("secrets_key", "CHRONOSEAL_SECRETS_KEY", _csv, (),
            "keys sealing webhook and integration secrets at rest, the first seals; unset: "
            "`<data_dir>/secrets.key`, made on first start"),
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
    Setting("metrics_token", "CHRONOSEAL_METRICS_TOKEN", _opt_str, None,
            "when set, /metrics answers only `Authorization: Bearer <token>`; unset leaves it "
            "open, as Prometheus scrapes usually are on a private network"),
    Setting("metrics_port", "CHRONOSEAL_METRICS_PORT", _integer(0, 65535), 0,
            "0 serves /metrics on the API; N serves it only on its own port N (api_host), so "
            "it can be firewalled apart from the API"),
    Setting("metrics_dir", "CHRONOSEAL_METRICS_DIR", _text, "",
            "where API and worker processes of one machine share their metric files "
            "(PROMETHEUS_MULTIPROC_DIR); emptied when `up`/`serve` start; empty means "
            "DATA_DIR/metrics"),
    Setting("log_format", "CHRONOSEAL_LOG_FORMAT", _choice("auto", "json", "text"), "auto",
            "auto: human lines when stderr is a terminal, else one JSON object per line for "
            "collectors; json or text forces either"),
    Setting("log_level", "CHRONOSEAL_LOG_LEVEL", _choice("debug", "info", "warning", "error"),
            "info", "info logs one line per API request, batch, TSA answer and delivery"),
    Setting("renew_within_days", "CHRONOSEAL_RENEW_WITHIN_DAYS", _positive_int, 180,
            "a token whose TSA certificate chain (or last archive timestamp's) expires within "
            "this many days gets an RFC 4998 archive timestamp: half a year survives a long "
            "TSA outage"),
    Setting("renew_weak_algorithms", "CHRONOSEAL_RENEW_WEAK_ALGORITHMS", _csv, ("md5", "sha1"),
            "tokens whose imprint or certificate signatures use these hashes are renewed at "
            "the next run, whatever their expiry (both have published collisions)"),
    Setting("renew_tsa", "CHRONOSEAL_RENEW_TSA", _opt_str, None,
            "the TSA asked for archive timestamps; unset: the first enabled TSA"),
    Setting("renew_interval_s", "CHRONOSEAL_RENEW_INTERVAL_S", _positive_int, 86400,
            "how often the sweeper runs the renewal: certificates expire in years, a day is "
            "early enough"),
    # Content Credentials (issue 17)
    Setting("c2pa_tsa", "CHRONOSEAL_C2PA_TSA", _opt_str, None,
            "the TSA that time-stamps the C2PA claim signature of an embedded copy; unset: the "
            "first enabled TSA (the built-in one by default)"),
    # -- the exhibit (issue 15 §2) --
    Setting("public_url", "CHRONOSEAL_PUBLIC_URL", _opt_str, None,
            "the base URL people reach this service at, for the certificate's QR code and "
            "link (<public_url>/r/<receipt id>); unset means http://API_HOST:API_PORT"),
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
    api_request_timeout_s: int
    tsa_host: str
    tsa_port: int
    tsa_crl_url: str | None
    tsa_key_type: str
    tsa_config: tuple[str, ...]
    tsas: tuple[str, ...]
    min_tokens: int
    min_free_disk_bytes: int
    disk_reserve_bytes: int
    max_upload_bytes: int
    keep_images: bool
    uploads_dir: str
    auth_cache_s: float
    trusted_proxies: int
    rate_limit_register_per_key: Rate | None
    rate_limit_register_per_address: Rate | None
    rate_limit_search_per_key: Rate | None
    rate_limit_search_per_address: Rate | None
    rate_limit_verify_per_key: Rate | None
    rate_limit_verify_per_address: Rate | None
    rate_limit_inbound_per_integration: Rate | None
    rate_limit_inbound_per_address: Rate | None
    rate_limit_auth_failures_per_address: Rate | None
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
    secrets_key: tuple[str, ...] = field(repr=False)  # keys: never in a log line
    webhook_allowlist: tuple[str, ...]
    webhook_retry_schedule_s: tuple[float, ...]
    webhook_connect_timeout_s: float
    webhook_timeout_s: float
    webhook_poll_interval_s: float
    metrics_token: str | None
    metrics_port: int
    metrics_dir: str
    log_format: str
    log_level: str
    renew_within_days: int
    renew_weak_algorithms: tuple[str, ...]
    renew_tsa: str | None
    renew_interval_s: int
    c2pa_tsa: str | None = None  # Content Credentials (issue 17)
    public_url: str | None = None

    @cached_property
    def data_path(self) -> Path:
        """DATA_DIR as an absolute path, resolved once: every registration asks (its disk
        check), and a later change of the working directory must not move the data."""
        return Path(self.data_dir).resolve()

    @property
    def effective_public_url(self) -> str:
        """Where people reach the API (no trailing slash): public_url, else its bind address."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.api_host}]" if ":" in self.api_host else self.api_host
        return f"http://{host}:{self.api_port}"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_path / 'chronoseal.db'}"

    @property
    def metrics_path(self) -> Path:
        return Path(self.metrics_dir).resolve() if self.metrics_dir else self.data_path / "metrics"

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or "redis://127.0.0.1:6379/0"


def load_settings(
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    **overrides: Any,
) -> Settings:
    """Defaults, then config/chronoseal.toml (if present), then the environment, then overrides.

    File and environment values go through the same parser, so a setting means the same
    wherever it is written; a bad one raises ConfigError naming the setting, where it was
    written and the value. Overrides (tests) are taken as they are, already typed.
    """
    env = os.environ if env is None else env
    path = config_file or Path(env.get("CHRONOSEAL_CONFIG", REPO_CONFIG_DIR / "chronoseal.toml"))
    file_values = _read_file(path)
    known = {s.name for s in SETTINGS}
    unknown = set(file_values) - known - set(overrides)
    if unknown:
        raise ConfigError(f"unknown setting(s) in {path}: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        value = setting.default
        # The file's value is checked even where the environment replaces it: a bad file
        # must not wait for the day its env var is removed.
        if setting.name in file_values:
            value = _parsed(setting, file_values[setting.name], str(path))
        if setting.env in env:
            value = _parsed(setting, env[setting.env], f"env {setting.env}")
        values[setting.name] = value
    values.update(overrides)
    assert {f.name for f in fields(Settings)} == known
    return Settings(**values)


def _read_file(path: Path) -> dict[str, Any]:
    """The [chronoseal] table of `path`; empty when there is no such file."""
    if not path.is_file():
        return {}
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("chronoseal", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: chronoseal must be a table ([chronoseal])")
    return table


def _parsed(setting: Setting, value: object, source: str) -> Any:
    try:
        return setting.parse(value)
    except ValueError as exc:
        raise ConfigError(f"{setting.name} in {source}: {_shown(setting, value)} {exc}") from exc


# user:password@ in a URL; the password part is replaced by *** before a value is shown.
_URL_PASSWORD = re.compile(r"(://[^/:@\s'\"]*:)[^\s'\"]*@")


def hide_url_passwords(text: str) -> str:
    """`text` with the password of every user:password@ URL in it replaced by ***."""
    return _URL_PASSWORD.sub(r"\1***@", text)


def _shown(setting: Setting, value: object) -> str:
    """`value` as an error message shows it: repr, with URL passwords hidden."""
    text = repr(value)
    return hide_url_passwords(text) if "url" in setting.name else text


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
