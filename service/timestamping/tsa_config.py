"""Which Time Stamp Authorities to ask, and how to trust them: TSA definitions from TOML files.

Each file holds `[[tsa]]` tables (see config/tsa.toml for every key, with comments). Paths in
`roots`/`untrusted` are relative to the file that names them, or `data:...` relative to the data
dir; `roots = "builtin"` means the built-in TSA's own root CA, which it creates in the data dir
on first start (so it is resolved here but read only when used). Secrets never sit in a file:
`password_env` names the environment variable holding the basic-auth password.

Environment: CHRONOSEAL_TSA_CONFIG adds files (comma-separated), CHRONOSEAL_TSAS (comma-separated
names) replaces every `enabled` flag.

Also here: each configured TSA's PEM chain as evidence bundles ship it (certs/<tsa>.pem), and the
roots the service itself trusts when it verifies a bundle (`tsa_chain_pem`, `trusted_roots`).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from service.errors import ConfigError
from service.settings import REPO_CONFIG_DIR, SETTINGS, Settings

# Digest length per hash a TSA may be asked to imprint; SHA-1 is left out (collisions are
# practical) and so is anything OpenSSL's `ts` cannot verify.
HASH_SIZES: dict[str, int] = {"sha256": 32, "sha384": 48, "sha512": 64}
DEFAULT_HASH = "sha256"  # the Merkle root is a SHA-256 value
DEFAULT_CONNECT_TIMEOUT_S = 5.0  # a TSA that cannot accept a TCP connection in 5 s is down
DEFAULT_READ_TIMEOUT_S = 30.0  # HSM-backed public TSAs can be slow under load; the worker retries
MAX_TIMEOUT_S = 300.0  # a batch must not wait longer than this on one TSA
MAX_TSAS = 32  # every batch asks every enabled TSA; more is a configuration mistake
MAX_CERT_FILE_BYTES = 1024 * 1024  # a few certificates are kilobytes; refuse anything silly
BUILTIN_ROOTS = "builtin"  # roots value meaning "the built-in TSA's root CA"
# Where the built-in TSA keeps its root: <data_dir>/tsa (cli/tsa.py TSA_SUBDIR), tsa_keys.py names.
BUILTIN_ROOT_FILE = "tsa/root-cert.pem"
BUILTIN_TSA_CERT_FILE = "tsa-cert.pem"  # beside the built-in root (tsa_keys.py FILES)
BUILTIN_URL = "builtin"  # url value meaning "the built-in TSA at CHRONOSEAL_TSA_HOST:PORT"
DEFAULT_BUILTIN_HOST = "127.0.0.1"  # same defaults as service/settings.py tsa_host/tsa_port
DEFAULT_BUILTIN_PORT = 8319
DATA_PREFIX = "data:"  # path prefix meaning "relative to the data dir"
ENV_EXTRA_FILES = "CHRONOSEAL_TSA_CONFIG"
ENV_ENABLED = "CHRONOSEAL_TSAS"

# Names become file names in evidence bundles (tokens/<name>.tsr): keep them plain.
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_OID_RE = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_KEYS = {
    "name", "url", "enabled", "description", "roots", "untrusted", "hash", "policy",
    "username", "password_env", "connect_timeout_s", "read_timeout_s",
}  # fmt: skip


@dataclass(frozen=True)
class TSAConfig:
    """One TSA: where it answers, which roots its tokens must chain to, and request options."""

    name: str
    url: str
    enabled: bool
    roots: tuple[Path, ...]
    untrusted: tuple[Path, ...] = ()
    hash_alg: str = DEFAULT_HASH
    policy: str | None = None
    username: str | None = None
    password_env: str | None = None  # the env var holding the password
    password: str | None = field(default=None, repr=False)  # from the env, never logged
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S
    description: str = ""
    source: Path | None = None  # the file that defined it, for error messages

    @property
    def digest_size(self) -> int:
        """Length in bytes of the digest this TSA is asked to imprint."""
        return HASH_SIZES[self.hash_alg]

    @property
    def timeout(self) -> tuple[float, float]:
        """(connect, read) timeouts in seconds, as requests takes them."""
        return (self.connect_timeout_s, self.read_timeout_s)

    @property
    def auth(self) -> tuple[str, str] | None:
        """Basic-auth credentials, when configured and the password is present."""
        if self.username is None or self.password is None:
            return None
        return (self.username, self.password)


def default_config_paths(config_dir: Path = REPO_CONFIG_DIR) -> list[Path]:
    """The shipped files: the built-in TSA (enabled) and public presets (disabled)."""
    return [config_dir / "tsa.toml", config_dir / "tsa" / "presets.toml"]


def load_tsa_configs(
    paths: Sequence[Path],
    *,
    env: Mapping[str, str],
    data_dir: Path | None = None,
    builtin_url: str | None = None,
) -> list[TSAConfig]:
    """Read every TSA definition from `paths` plus CHRONOSEAL_TSA_CONFIG, in order.

    `url = "builtin"` in a file means the built-in TSA where this deployment runs it
    (`builtin_url`, else derived from CHRONOSEAL_TSA_HOST/PORT in `env`). Returns all TSAs,
    enabled or not (see `enabled_tsas`); raises ConfigError naming the file and TSA for
    anything wrong.
    """
    if data_dir is None:
        data_dir = Path(env.get("CHRONOSEAL_DATA_DIR", _default_data_dir()))
    if builtin_url is None:
        builtin_url = builtin_tsa_url(
            env.get("CHRONOSEAL_TSA_HOST", DEFAULT_BUILTIN_HOST),
            int(env.get("CHRONOSEAL_TSA_PORT", DEFAULT_BUILTIN_PORT)),
        )
    files = [Path(p) for p in paths] + [Path(p) for p in _csv(env.get(ENV_EXTRA_FILES, ""))]
    configs: list[TSAConfig] = []
    seen: dict[str, Path] = {}
    for path in files:
        for index, table in enumerate(_read_tables(path)):
            if isinstance(table, dict) and table.get("url") == BUILTIN_URL:
                table = {**table, "url": builtin_url}
            tsa = _parse(table, path, index, env, data_dir.resolve())
            if tsa.name in seen:
                raise ConfigError(
                    f"{path}: duplicate TSA name {tsa.name!r}, already defined in {seen[tsa.name]}"
                )
            seen[tsa.name] = path
            configs.append(tsa)
    if len(configs) > MAX_TSAS:
        raise ConfigError(f"{len(configs)} TSAs configured; at most {MAX_TSAS}")
    chosen = _csv(env.get(ENV_ENABLED, ""))
    if chosen:
        unknown = sorted(set(chosen) - set(seen))
        if unknown:
            raise ConfigError(f"{ENV_ENABLED} names unknown TSA(s): {', '.join(unknown)}")
        configs = [_with_enabled(t, t.name in chosen, env) for t in configs]
    return configs


def load_tsa_configs_for(settings: Settings, env: Mapping[str, str]) -> list[TSAConfig]:
    """The shipped files plus what `settings` adds (tsa_config files, tsas names, data dir).

    One place for the API, the worker and the CLI to turn Settings into TSA definitions.
    """
    merged = dict(env)
    merged[ENV_EXTRA_FILES] = ",".join(settings.tsa_config)
    merged[ENV_ENABLED] = ",".join(settings.tsas)
    return load_tsa_configs(
        default_config_paths(),
        env=merged,
        data_dir=settings.data_path,
        builtin_url=builtin_tsa_url(settings.tsa_host, settings.tsa_port),
    )


def builtin_tsa_url(host: str, port: int) -> str:
    """Where clients reach the built-in TSA bound to `host`:`port` (a wildcard means loopback)."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a bind address, mapped to a connect address
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def enabled_tsas(configs: Sequence[TSAConfig]) -> list[TSAConfig]:
    """The TSAs to ask for tokens."""
    return [t for t in configs if t.enabled]


def load_trust(tsa: TSAConfig) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    """Read (roots, untrusted intermediates) for `tsa`; ConfigError when a file is unusable."""
    roots = [c for p in tsa.roots for c in _read_certs(p, tsa.name)]
    untrusted = [c for p in tsa.untrusted for c in _read_certs(p, tsa.name)]
    return roots, untrusted


def chain_paths(tsa: TSAConfig, data_dir: Path) -> list[Path]:
    """The PEM files of `tsa`'s chain in order: TSA certificate, intermediates, roots."""
    paths = [*tsa.untrusted, *tsa.roots]
    builtin_root = data_dir / BUILTIN_ROOT_FILE
    if builtin_root in tsa.roots:  # the built-in TSA: its own certificate sits beside its root
        paths.insert(0, builtin_root.parent / BUILTIN_TSA_CERT_FILE)
    return paths


def tsa_chain_pem(settings: Settings, tsa_name: str, env: Mapping[str, str] | None = None) -> str:
    """The PEM chain bundles ship for tokens of `tsa_name` (certs/<tsa>.pem), TSA certificate
    first, root last, so `openssl ts -verify` checks a token offline.

    `env` (default os.environ) is what the TSA definitions read passwords from; ConfigError
    when that TSA is not configured or a file of its chain is unusable.
    """
    tsa = _configs_by_name(settings, os.environ if env is None else env).get(tsa_name)
    if tsa is None:
        raise ConfigError(f"TSA {tsa_name!r} is not configured; its chain is unknown")
    return "".join(_read_pem(p, tsa.name) for p in chain_paths(tsa, settings.data_path))


def trusted_roots(
    settings: Settings, env: Mapping[str, str] | None = None
) -> list[x509.Certificate]:
    """The roots of every configured TSA, enabled or not (old tokens stay verifiable).

    What the service itself trusts when it verifies a bundle (POST /v1/verify): never the roots
    a bundle brings along. A TSA whose root file cannot be read (the built-in TSA before its
    first start) adds nothing.
    """
    roots: list[x509.Certificate] = []
    for tsa in _configs_by_name(settings, os.environ if env is None else env).values():
        try:
            roots += load_trust(tsa)[0]
        except ConfigError:
            continue
    return roots


def _configs_by_name(settings: Settings, env: Mapping[str, str]) -> Mapping[str, TSAConfig]:
    # Keyed on everything the definitions depend on, settings and the whole environment
    # (password_env lookups), so a changed environment never meets a stale entry.
    return _cached_configs(settings, frozenset(env.items()))


@lru_cache(maxsize=8)
def _cached_configs(
    settings: Settings, env: frozenset[tuple[str, str]]
) -> Mapping[str, TSAConfig]:
    return {c.name: c for c in load_tsa_configs_for(settings, dict(env))}


def _parse(table: Any, path: Path, index: int, env: Mapping[str, str], data_dir: Path) -> TSAConfig:
    where = f"{path}: [[tsa]] #{index + 1}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    if "password" in table:
        raise ConfigError(f"{where}: no password in files; name its env var in password_env")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {sorted(_KEYS)}")
    name = table.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"{where}: name must match {_NAME_RE.pattern}, got {name!r}")
    where = f"{path}: TSA {name!r}"
    url = table.get("url")
    if url is None:
        raise ConfigError(f"{where}: missing url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: url must be an http(s) URL, got {url!r}")
    hash_alg = table.get("hash", DEFAULT_HASH)
    if hash_alg not in HASH_SIZES:
        raise ConfigError(f"{where}: hash must be one of {sorted(HASH_SIZES)}, got {hash_alg!r}")
    policy = table.get("policy")
    if policy is not None and (not isinstance(policy, str) or not _OID_RE.match(policy)):
        raise ConfigError(f"{where}: policy must be a dotted OID, got {policy!r}")
    enabled = table.get("enabled", True)
    description = table.get("description", "")
    username = table.get("username")
    password_env = table.get("password_env")
    for key, value, kind in (
        ("enabled", enabled, bool),
        ("description", description, str),
        ("username", username, (str, type(None))),
        ("password_env", password_env, (str, type(None))),
    ):
        if not isinstance(value, kind):
            raise ConfigError(f"{where}: {key} has the wrong type ({type(value).__name__})")
    if (username is None) != (password_env is None):
        raise ConfigError(f"{where}: username and password_env go together")
    if "roots" not in table:
        raise ConfigError(f"{where}: missing roots (PEM file(s) of the CA the TSA chains to)")
    roots = _paths(table["roots"], "roots", where, path.parent, data_dir, allow_builtin=True)
    untrusted = _paths(table.get("untrusted", []), "untrusted", where, path.parent, data_dir)
    for pem in (*roots, *untrusted):
        if not _is_builtin_root(pem, data_dir):
            _read_certs(pem, name, where)
    tsa = TSAConfig(
        name=name,
        url=url,
        enabled=enabled,
        roots=roots,
        untrusted=untrusted,
        hash_alg=hash_alg,
        policy=policy,
        username=username,
        password_env=password_env,
        connect_timeout_s=_timeout(table, "connect_timeout_s", DEFAULT_CONNECT_TIMEOUT_S, where),
        read_timeout_s=_timeout(table, "read_timeout_s", DEFAULT_READ_TIMEOUT_S, where),
        description=description,
        source=path,
    )
    return _with_enabled(tsa, enabled, env)


def _with_enabled(tsa: TSAConfig, enabled: bool, env: Mapping[str, str]) -> TSAConfig:
    """Set `enabled`; an enabled TSA with basic auth takes its password from env now."""
    password = None
    if enabled and tsa.password_env is not None:
        password = env.get(tsa.password_env)
        if not password:
            raise ConfigError(
                f"{tsa.source}: TSA {tsa.name!r} is enabled but env var {tsa.password_env} "
                "(its password_env) is not set"
            )
    return replace(tsa, enabled=enabled, password=password)


def _paths(
    value: Any, key: str, where: str, base: Path, data_dir: Path, *, allow_builtin: bool = False
) -> tuple[Path, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v for v in items):
        raise ConfigError(f"{where}: {key} must be a path or a list of paths")
    if key == "roots" and not items:
        raise ConfigError(f"{where}: roots is empty")
    out = []
    for item in items:
        if item == BUILTIN_ROOTS:
            if not allow_builtin:
                raise ConfigError(f"{where}: {BUILTIN_ROOTS!r} is only meaningful in roots")
            out.append(data_dir / BUILTIN_ROOT_FILE)
        elif item.startswith(DATA_PREFIX):
            out.append((data_dir / item.removeprefix(DATA_PREFIX)).resolve())
        else:
            out.append((base / item).resolve())
    return tuple(out)


def _is_builtin_root(path: Path, data_dir: Path) -> bool:
    # Made by the built-in TSA on its first start, which may come after the config is read.
    return path == data_dir / BUILTIN_ROOT_FILE


def _timeout(table: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: {key} must be a number of seconds")
    if not 0 < value <= MAX_TIMEOUT_S:
        raise ConfigError(f"{where}: {key} must be in (0, {MAX_TIMEOUT_S:g}] seconds")
    return float(value)


def _read_tables(path: Path) -> list[Any]:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read TSA config {path}: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    unknown = sorted(set(doc) - {"tsa"})
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {', '.join(unknown)}; use [[tsa]]")
    tables = doc.get("tsa", [])
    if not isinstance(tables, list):
        raise ConfigError(f"{path}: write TSAs as [[tsa]] tables")
    return tables


def _read_cert_file(path: Path, where: str) -> bytes:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_CERT_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_CERT_FILE_BYTES:
        raise ConfigError(f"{where}: {path} is larger than {MAX_CERT_FILE_BYTES} bytes")
    return data


def _read_pem(path: Path, tsa: str) -> str:
    """One file of a chain as text, as it goes into a bundle: PEM, ending with a newline."""
    where = f"TSA {tsa!r}"
    data = _read_cert_file(path, where)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        text = ""
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ConfigError(f"{where}: {path} is not a PEM certificate file")
    return text if text.endswith("\n") else text + "\n"


def _read_certs(path: Path, tsa: str, where: str | None = None) -> list[x509.Certificate]:
    where = where or f"TSA {tsa!r}"
    data = _read_cert_file(path, where)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ConfigError(f"{where}: {path} holds no usable PEM certificate: {exc}") from exc
    return certs


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _default_data_dir() -> str:
    return str(next(s.default for s in SETTINGS if s.name == "data_dir"))
