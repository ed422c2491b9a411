"""Each configured TSA's PEM chain (certs/<tsa>.pem in bundles) and the roots the service trusts,
read from Settings and an explicit environment, with no stale cache behind them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from service.errors import ConfigError
from service.settings import Settings, load_settings
from service.timestamping.authority import AuthoritySettings, TimeStampAuthority
from service.timestamping.tsa_config import (
    BUILTIN_TSA_CERT_FILE,
    chain_paths,
    load_tsa_configs_for,
    trusted_roots,
    tsa_chain_pem,
)

REPO = Path(__file__).resolve().parents[2]
FREETSA_ROOT = REPO / "config" / "tsa" / "certs" / "freetsa-root.pem"


def settings_for(tmp_path: Path, **overrides: object) -> Settings:
    return load_settings(env={}, config_file=tmp_path / "absent.toml",
                         data_dir=str(tmp_path / "data"), **overrides)


def start_builtin(settings: Settings) -> TimeStampAuthority:
    """Create the built-in TSA's keys in the data dir, as its first start does."""
    return TimeStampAuthority.open(AuthoritySettings(data_dir=settings.data_path / "tsa"))


def test_builtin_chain_is_its_certificate_then_its_root(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    authority = start_builtin(settings)
    assert tsa_chain_pem(settings, "builtin", env={}).encode() == authority.certs_pem()


def test_a_preset_chain_is_its_files_in_order(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    (freetsa,) = [t for t in load_tsa_configs_for(settings, {}) if t.name == "freetsa"]
    assert chain_paths(freetsa, settings.data_path) == [FREETSA_ROOT]
    assert tsa_chain_pem(settings, "freetsa", env={}) == FREETSA_ROOT.read_text()


def test_an_unknown_tsa_or_an_unusable_file_is_a_config_error(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    with pytest.raises(ConfigError, match="'nope' is not configured"):
        tsa_chain_pem(settings, "nope", env={})
    with pytest.raises(ConfigError, match="TSA 'builtin': cannot read"):
        tsa_chain_pem(settings, "builtin", env={})  # before the built-in TSA's first start
    start_builtin(settings)
    (settings.data_path / "tsa" / BUILTIN_TSA_CERT_FILE).write_bytes(b"\xff\xfe not PEM")
    with pytest.raises(ConfigError, match="is not a PEM certificate file"):
        tsa_chain_pem(settings, "builtin", env={})


def test_the_environment_given_is_read_each_time_not_cached_or_bypassed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A TSA with basic auth needs its password in env: the answer follows the env passed."""
    extra = tmp_path / "extra.toml"
    extra.write_text(f'[[tsa]]\nname = "one"\nurl = "https://tsa.example/"\n'
                     f'roots = "{FREETSA_ROOT}"\nusername = "u"\npassword_env = "ONE_PW"\n')
    settings = settings_for(tmp_path, tsa_config=(str(extra),))
    assert tsa_chain_pem(settings, "one", env={"ONE_PW": "pw"}) == FREETSA_ROOT.read_text()
    monkeypatch.setenv("ONE_PW", "pw")  # not the env passed: must not be read behind it
    with pytest.raises(ConfigError, match="ONE_PW"):
        tsa_chain_pem(settings, "one", env={})
    with pytest.raises(ConfigError, match="ONE_PW"):
        trusted_roots(settings, env={})
    assert tsa_chain_pem(settings, "one") == FREETSA_ROOT.read_text()  # default: os.environ


def test_trusted_roots_cover_every_tsa_and_the_builtin_once_started(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    before = trusted_roots(settings, env={})
    assert x509.load_pem_x509_certificate(FREETSA_ROOT.read_bytes()) in before  # disabled too
    authority = start_builtin(settings)
    builtin_root = x509.load_pem_x509_certificates(authority.certs_pem())[-1]
    after = trusted_roots(settings, env={})
    assert builtin_root not in before and builtin_root in after
    assert len(after) == len(before) + 1


def test_timestamping_imports_no_web_queue_or_wiring_code() -> None:
    code = (
        "import pkgutil, importlib, sys, service.timestamping as p\n"
        "for m in pkgutil.iter_modules(p.__path__):\n"
        "    importlib.import_module(f'{p.__name__}.{m.name}')\n"
        "bad = {'flask', 'rq', 'redis', 'service.wiring'} & set(sys.modules)\n"
        "sys.exit(', '.join(sorted(bad)) or None)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
