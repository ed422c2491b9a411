"""Settings: the TOML file and the environment go through the same parser per setting, and a bad
value stops every start-up command with a message naming the setting, its source and the value."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from service.errors import ConfigError
from service.settings import SETTINGS, Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
CLI_TIMEOUT_S = 60  # importing Flask, RQ and SQLAlchemy on a busy 2-core machine


def from_toml(tmp_path: Path, body: str, env: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "chronoseal.toml"
    path.write_text(f"[chronoseal]\n{body}\n")
    return load_settings(env=env or {}, config_file=path)


def toml_error(tmp_path: Path, body: str) -> str:
    with pytest.raises(ConfigError) as info:
        from_toml(tmp_path, body)
    return str(info.value)


@pytest.mark.parametrize(("value", "expected"), [
    ('"no"', False), ("false", False), ('"OFF"', False), ('""', False), ('"0"', False),
    ('"yes"', True), ("true", True), ('"On"', True), ('"1"', True),
])
def test_toml_booleans_are_parsed_not_truthy(tmp_path: Path, value: str, expected: bool) -> None:
    assert from_toml(tmp_path, f"keep_images = {value}").keep_images is expected


def test_a_bad_toml_value_names_setting_file_and_value(tmp_path: Path) -> None:
    message = toml_error(tmp_path, 'batch_max_size = "lots"')
    assert message == f"batch_max_size in {tmp_path / 'chronoseal.toml'}: 'lots' is not an integer"


def test_a_bad_env_value_names_setting_variable_and_value() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={"CHRONOSEAL_API_PORT": "http"})
    assert str(info.value) == "api_port in env CHRONOSEAL_API_PORT: 'http' is not an integer"


# (setting, text as an env var would hold it, the same value as a native TOML literal)
SAME_VALUES = [
    ("keep_images", "no", "false"),
    ("keep_images", "true", "true"),
    ("batch_max_size", "12", "12"),
    ("api_port", "9000", "9000"),
    ("auth_cache_s", "0.5", "0.5"),
    ("auth_cache_s", "3", "3"),
    ("tsas", "builtin, freetsa", '["builtin", "freetsa"]'),
    ("tsa_config", "", "[]"),
    ("webhook_allowlist", "10.0.0.0/8", '["10.0.0.0/8"]'),
    ("webhook_retry_schedule_s", "0, 5, 60", "[0, 5, 60.0]"),
    ("webhook_retry_schedule_s", "1", '["1"]'),
    ("database_url", "", '""'),
    ("queue_name", "other", '"other"'),
]


@pytest.mark.parametrize(("name", "text", "literal"), SAME_VALUES)
def test_env_and_toml_give_the_same_settings(
    tmp_path: Path, name: str, text: str, literal: str
) -> None:
    env_var = next(s.env for s in SETTINGS if s.name == name)
    by_env = load_settings(env={env_var: text}, config_file=tmp_path / "absent.toml")
    by_toml_text = from_toml(tmp_path, f"{name} = {_toml_string(text)}")
    by_toml_native = from_toml(tmp_path, f"{name} = {literal}")
    assert by_env == by_toml_text == by_toml_native


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def test_env_overrides_the_file_and_both_are_checked(tmp_path: Path) -> None:
    settings = from_toml(tmp_path, "batch_max_size = 12", env={"CHRONOSEAL_BATCH_MAX_SIZE": "7"})
    assert settings.batch_max_size == 7
    with pytest.raises(ConfigError, match="batch_max_size in .*chronoseal.toml: 'lots'"):
        from_toml(tmp_path, 'batch_max_size = "lots"', env={"CHRONOSEAL_BATCH_MAX_SIZE": "7"})


@pytest.mark.parametrize(("body", "problem"), [
    ("batch_max_size = true", "True is not an integer"),
    ("batch_max_size = 12.0", "12.0 is not an integer"),
    ("keep_images = 3", "3 is not a boolean"),
    ("keep_images = 1", "1 is not a boolean"),
    ("auth_cache_s = true", "True is not a number"),
    ("api_host = 8318", "8318 is not a string"),
    ("tsas = [1, 2]", "[1, 2] is not a comma-separated string or a list of strings"),
    ("tsas = true", "True is not a comma-separated string"),
    ("webhook_retry_schedule_s = [1, true]", "holds True, which is not a number"),
    ("webhook_retry_schedule_s = []", "holds no delay"),
    ("webhook_retry_schedule_s = 5", "5 is not a comma-separated string or a list of delays"),
])
def test_wrong_toml_types_are_refused_not_coerced(tmp_path: Path, body: str, problem: str) -> None:
    assert problem in toml_error(tmp_path, body)


@pytest.mark.parametrize(("name", "text", "problem"), [
    ("api_port", "0", "must be at least 1"),
    ("tsa_port", "65536", "must be at most 65535"),
    ("api_workers", "0", "must be at least 1"),
    ("batch_max_size", "0", "must be at least 1"),
    ("min_tokens", "0", "must be at least 1"),
    ("max_upload_bytes", "-1", "must be at least 1"),
    ("sweep_interval_s", "0", "must be at least 1"),
    ("stale_after_s", "-5", "must be at least 0"),
    ("auth_cache_s", "-1", "must be a finite number, not negative"),
    ("webhook_timeout_s", "nan", "must be a finite number"),
    ("webhook_retry_schedule_s", "1,soon", "holds 'soon', which is not a number"),
])
def test_out_of_range_values_are_refused_from_either_source(
    tmp_path: Path, name: str, text: str, problem: str
) -> None:
    env_var = next(s.env for s in SETTINGS if s.name == name)
    with pytest.raises(ConfigError, match=f"{name} in env {env_var}: .*{problem}"):
        load_settings(env={env_var: text}, config_file=tmp_path / "absent.toml")
    assert problem in toml_error(tmp_path, f"{name} = {_toml_string(text)}")


def test_url_passwords_are_never_echoed(tmp_path: Path) -> None:
    message = toml_error(tmp_path, 'database_url = ["postgresql+psycopg://app:hunter2@db/x"]')
    assert "database_url" in message and "app:***@db/x" in message
    assert "hunter2" not in message
    assert "hunter2" not in toml_error(tmp_path, 'redis_url = ["redis://:hunter2@r:6379/0"]')


def test_the_file_must_hold_a_table(tmp_path: Path) -> None:
    path = tmp_path / "chronoseal.toml"
    path.write_text('chronoseal = "yes"\n')
    with pytest.raises(ConfigError, match="must be a table"):
        load_settings(env={}, config_file=path)


def test_overrides_are_taken_as_typed(tmp_path: Path) -> None:
    settings = load_settings(env={"CHRONOSEAL_BATCH_MAX_SIZE": "7"},
                             config_file=tmp_path / "absent.toml", batch_max_size=3, tsas=("a",))
    assert settings.batch_max_size == 3 and settings.tsas == ("a",)


def test_every_default_passes_its_own_parser() -> None:
    """Defaults are typed values; each must also be what its parser would accept."""
    for setting in SETTINGS:
        default: Any = setting.default
        if default is None:
            continue
        native = list(default) if isinstance(default, tuple) else default
        assert setting.parse(native) == default, setting.name


# Each reads settings before it binds a port, connects anywhere or starts a child.
@pytest.mark.parametrize("command", ["serve", "worker", "up", "tsa"])
def test_a_bad_setting_stops_start_up_without_a_traceback(tmp_path: Path, command: str) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[chronoseal]\nbatch_max_size = "lots"\n')
    code, stderr = _run_cli(tmp_path, command, CHRONOSEAL_CONFIG=str(bad))
    assert code != 0
    assert "batch_max_size" in stderr and str(bad) in stderr and "'lots'" in stderr
    assert "Traceback" not in stderr


def test_a_bad_env_value_stops_start_up_too(tmp_path: Path) -> None:
    code, stderr = _run_cli(tmp_path, "up", CHRONOSEAL_CONFIG=str(tmp_path / "absent.toml"),
                            CHRONOSEAL_TSA_PORT="99999")
    assert code != 0 and "Traceback" not in stderr
    assert "tsa_port in env CHRONOSEAL_TSA_PORT: '99999' must be at most 65535" in stderr


def _run_cli(tmp_path: Path, *argv: str, **extra_env: str) -> tuple[int, str]:
    """Run `chronoseal argv` from this checkout; kill its process group if it ever hangs."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CHRONOSEAL_") and k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(PYTHONPATH=str(REPO), CHRONOSEAL_DATA_DIR=str(tmp_path / "data"), **extra_env)
    process = subprocess.Popen([sys.executable, "-m", "service.cli", *argv], env=env, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        _, stderr = process.communicate(timeout=CLI_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"chronoseal {' '.join(argv)} did not stop on a bad setting")
    return process.returncode, stderr
