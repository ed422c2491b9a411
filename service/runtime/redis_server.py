"""Find a reachable Redis, or start a private `redis-server` when none answers.

`make run` must work on a fresh machine: when REDIS_URL is unset and nothing answers on
127.0.0.1:6379 we start `redis-server` (installing Debian's package first when we are root and
apt-get exists), bound to loopback, persisting into the data dir so queued work survives a restart.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import redis

from service.errors import ConfigError
from service.runtime.supervisor import die_with_parent

DEFAULT_PORT = 6379
DEFAULT_URL = f"redis://127.0.0.1:{DEFAULT_PORT}/0"
PING_TIMEOUT_S = 1.0  # a local Redis answers in milliseconds; anything slower is not usable
START_TIMEOUT_S = 10.0  # redis-server starts in well under a second; allow for a slow disk
INSTALL_HINT = (
    "No Redis is reachable and redis-server is not installed: install it with "
    "'sudo apt-get install redis-server' (or set REDIS_URL) and run the command again."
)


@dataclass
class RedisHandle:
    """The Redis URL to use, and the process when we started it ourselves."""

    url: str
    process: subprocess.Popen[bytes] | None = None
    argv: list[str] | None = None  # how to start it again (`up` restarts it when it dies)

    def stop(self, timeout: float = 5.0) -> None:
        """Shut down the Redis we started (saving its data); no-op for an external one."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def redis_answers(url: str, timeout: float = PING_TIMEOUT_S) -> bool:
    """True when a Redis at `url` answers PING."""
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_redis_server(install: bool = True) -> str | None:
    """Path of redis-server; installs Debian's package when allowed, root and apt-get exist."""
    found = shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.access(p, os.X_OK)),
        None,
    )
    if found or not install:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server"], env=env, check=False)
    return shutil.which("redis-server")


def start_redis(data_dir: Path, port: int | None = None, *, install: bool = True) -> RedisHandle:
    """Start a private redis-server on loopback with its files in `data_dir`/redis."""
    binary = find_redis_server(install=install)
    if binary is None:
        raise ConfigError(INSTALL_HINT)
    port = port or free_port()
    workdir = data_dir / "redis"
    workdir.mkdir(parents=True, exist_ok=True)
    args = [
        binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(workdir),
        "--appendonly", "yes", "--save", "", "--protected-mode", "yes",
        "--logfile", str(workdir / "redis.log"),
    ]
    # A session of its own: a terminal's Ctrl-C reaches `up`, which stops Redis last.
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True, preexec_fn=die_with_parent)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if redis_answers(url, timeout=0.2):
            return RedisHandle(url, process, args)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise ConfigError(f"redis-server did not start; see {workdir / 'redis.log'}")


def ensure_redis(
    redis_url: str | None,
    data_dir: Path,
    *,
    install: bool = True,
    default_url: str = DEFAULT_URL,
) -> RedisHandle:
    """Use REDIS_URL when given (it must answer), else `default_url`, else start our own there."""
    if redis_url:
        if not redis_answers(redis_url):
            raise ConfigError("REDIS_URL is set but no Redis answers there")
        return RedisHandle(redis_url)
    if redis_answers(default_url):
        return RedisHandle(default_url)
    port = urlsplit(default_url).port or DEFAULT_PORT
    return start_redis(data_dir, port=port, install=install)
