"""The shared metrics directory: `up` and a lone `serve` empty it of metric files (only those),
a worker or a `serve` started by `up` joins it, other commands leave the environment alone."""

from __future__ import annotations

from pathlib import Path

from service.runtime.metrics_dir import ENV, share_metrics


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"CHRONOSEAL_CONFIG": str(tmp_path / "absent.toml"),
            "CHRONOSEAL_DATA_DIR": str(tmp_path / "data"), **extra}


def _leftovers(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("counter_12.db", "histogram_12.db", "gauge_livesum_12.db", "chronoseal.db"):
        (directory / name).write_bytes(b"x")


def test_up_and_a_lone_serve_empty_the_directory_of_metric_files_only(tmp_path: Path) -> None:
    for command in ("up", "serve"):
        env = _env(tmp_path)
        _leftovers(tmp_path / "data" / "metrics")
        path = share_metrics(command, env)
        assert path == (tmp_path / "data" / "metrics").resolve()
        assert env[ENV] == str(path)
        assert sorted(p.name for p in path.iterdir()) == ["chronoseal.db"]


def test_up_owns_a_given_directory_but_its_serve_and_workers_join(tmp_path: Path) -> None:
    given = tmp_path / "shared"
    for command, emptied in (("serve", False), ("worker", False), ("up", True)):
        _leftovers(given)
        env = _env(tmp_path, **{ENV: str(given)})
        assert share_metrics(command, env) == given
        assert (given / "counter_12.db").exists() is not emptied


def test_the_metrics_dir_setting_and_other_commands(tmp_path: Path) -> None:
    env = _env(tmp_path, CHRONOSEAL_METRICS_DIR=str(tmp_path / "m"))
    assert share_metrics("worker", env) == (tmp_path / "m").resolve()
    for command in ("verify", "keys", None):
        untouched = _env(tmp_path)
        assert share_metrics(command, untouched) is None and ENV not in untouched
