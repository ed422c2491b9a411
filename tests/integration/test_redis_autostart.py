"""`chronoseal up` on a machine without a running Redis: it starts one, and stops it again."""

from __future__ import annotations

import shutil
import signal
import socket
import time
from pathlib import Path

import pytest
import redis

from service.errors import ConfigError
from service.runtime import redis_server
from service.runtime.redis_server import INSTALL_HINT, ensure_redis, free_port, redis_answers
from service.runtime.supervisor import Child, Supervisor

RESTART_WAIT_S = 20.0  # redis-server starts in milliseconds; generous on a busy machine

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None and
                                not Path("/usr/bin/redis-server").exists(),
                                reason="redis-server is not installed on this machine")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_starts_redis_where_none_answers_and_stops_it(tmp_path: Path) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    assert not redis_answers(url)
    handle = ensure_redis(None, tmp_path, install=False, default_url=url)
    try:
        assert handle.process is not None and handle.url == url
        assert redis_answers(url)
        assert (tmp_path / "redis").is_dir()  # its files live in the data dir
        # A second `up` finds the running one instead of starting another.
        again = ensure_redis(None, tmp_path, install=False, default_url=url)
        assert again.process is None and again.url == url
    finally:
        handle.stop()
    assert handle.process.poll() is not None and not _port_open(port)


def test_an_unreachable_redis_url_is_an_error_without_the_secret(tmp_path: Path) -> None:
    secret_url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    with pytest.raises(ConfigError) as info:
        ensure_redis(secret_url, tmp_path, install=False)
    assert "hunter2" not in str(info.value)


def test_without_redis_server_it_says_what_to_install(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(redis_server, "find_redis_server", lambda install=True: None)
    with pytest.raises(ConfigError, match="apt-get install redis-server"):
        ensure_redis(None, tmp_path, default_url=f"redis://127.0.0.1:{free_port()}/0")
    assert "redis-server" in INSTALL_HINT


def test_the_redis_up_started_is_restarted_on_its_port_with_its_data(tmp_path: Path) -> None:
    """`up` supervises the redis-server it started: killed with -9, it is started again on the
    same port and reads back what it had (its append-only file in the data dir)."""
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    handle = ensure_redis(None, tmp_path, install=False, default_url=url)
    assert handle.process is not None and handle.argv
    child = Child("redis", handle.argv).adopt(handle.process)
    supervisor = Supervisor([child], backoff_first_s=0.05)
    try:
        redis.Redis.from_url(url).set("queued", b"work")
        handle.process.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + RESTART_WAIT_S
        while child.restarts == 0 or not redis_answers(url, timeout=0.2):
            assert time.monotonic() < deadline, child.describe()
            supervisor.tend(time.monotonic())
            time.sleep(0.05)
        assert child.process is not handle.process and child.last_exit == -signal.SIGKILL
        assert redis.Redis.from_url(url).get("queued") == b"work"
    finally:
        supervisor.stop()
    assert not _port_open(port)
